using QRCoder;
using static Gatehouse.Idp.Html;

namespace Gatehouse.Idp;

/// <summary>
/// The sign-in pages. Field names are part of the product (design/CLI.md): <c>username</c>, <c>password</c>,
/// <c>new_password</c>, <c>otp</c>, and the consent button <c>name="consent" value="allow|deny"</c>; each form
/// carries its antiforgery token and the protected transaction.
/// </summary>
internal static class SignInPages
{
    /// <summary>The hidden inputs every form carries.</summary>
    internal sealed record FormContext(string Action, string Transaction, string AntiforgeryField, string AntiforgeryToken);

    /// <summary>
    /// The user-name page: the name (autocomplete <c>username webauthn</c>, so the browser's conditional UI offers the
    /// passkeys it has for this site) and, when the browser has WebAuthn, "Sign in with a passkey". The script (allowed
    /// by this response's <paramref name="nonce"/>) posts the assertion in the hidden <c>passkey</c> field; without
    /// JavaScript the page is the plain password sign-in. A page shown again with an error does not start the conditional
    /// request by itself (the button asks again), so a refused passkey is not offered in a loop.
    /// </summary>
    public static string Username(FormContext form, string? prefill, string? error, string nonce, string passkeyOptions, string purpose = "to connect to a remote desktop") => $"""
        <h1>Sign in</h1>
        <p class="hint">{E(purpose)}</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin" data-passkey-options="{E(passkeyOptions)}" data-conditional="{(error is null ? "true" : "false")}">
        {Hidden(form)}
        {Html.Hidden("passkey", string.Empty)}
        <label for="username">Email or user name</label>
        <input type="email" id="username" name="username" value="{E(prefill)}" autocomplete="username webauthn" required autofocus>
        <button type="submit" id="next">Next</button>
        <p class="error" role="alert" id="passkey-error" hidden></p>
        <p><button type="button" class="secondary" id="passkey-signin" hidden>Sign in with a passkey</button></p>
        </form>
        {PasskeyScript(nonce)}
        """;

    /// <summary>
    /// The second factor when the user has a passkey: the passkey first, "Use your authenticator app instead" (a plain
    /// submit, <c>method=otp</c>) as the alternative, so the page works without JavaScript too.
    /// </summary>
    public static string PasskeyMfa(FormContext form, string username, string? error, string nonce, string passkeyOptions, bool appNotSetUp) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Verify your identity</h1>
        <p>Use the passkey on this device, your phone or your security key.</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin" data-passkey-options="{E(passkeyOptions)}" data-conditional="false">
        {Hidden(form)}
        {Html.Hidden("passkey", string.Empty)}
        <p class="error" role="alert" id="passkey-error" hidden></p>
        <noscript><p class="hint">Passkeys need JavaScript in this browser. Use your authenticator app instead.</p></noscript>
        <button type="button" id="passkey-signin" hidden>Use your passkey</button>
        <p><button type="submit" class="secondary" name="method" value="otp" id="use-otp">{(appNotSetUp ? "Set up an authenticator app instead" : "Use your authenticator app instead")}</button></p>
        </form>
        {PasskeyScript(nonce)}
        """;

    /// <summary>
    /// The signed-in user's security info: their passkeys (name, created, last used; every name escaped), a Remove
    /// button per passkey, renaming, and "Add a passkey" (the registration ceremony in the browser, then the name)
    /// when the sign-in allows it (recent MFA or a Temporary Access Pass). One form, so the page works as the other steps.
    /// </summary>
    public static string SecurityInfo(FormContext form, string username, IReadOnlyList<Gatehouse.Storage.Passkey> passkeys, string? notice, string? error, string nonce, string? registrationOptions, bool canRegister) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Security info</h1>
        <p>These are the passkeys you can sign in with. A passkey signs you in without a password, and can't be used by a look-alike site.</p>
        {(notice is null ? string.Empty : $"<p class=\"hint\" role=\"status\" id=\"notice\">{E(notice)}</p>")}
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin" data-registration-options="{E(registrationOptions)}">
        {Hidden(form)}
        {Html.Hidden("credential", string.Empty)}
        {(passkeys.Count == 0 ? "<p id=\"no-passkeys\">You have no passkeys yet.</p>" : PasskeyTable(passkeys))}
        {(passkeys.Count == 0 ? string.Empty : $"""
        <label for="passkey_name">Rename a passkey</label>
        <select id="passkey_name" name="passkey_name"><option value="">(choose)</option>{string.Concat(passkeys.Select(p => $"<option value=\"{E(p.Name)}\">{E(p.Name)}</option>"))}</select>
        <input type="text" id="new_name" name="new_name" maxlength="64" placeholder="New name">
        <button type="submit" class="secondary" id="rename">Rename</button>
        """)}
        <h2>Add a passkey</h2>
        {(canRegister ? """
        <label for="new_passkey_name">Name for the new passkey (for example, the device it's on)</label>
        <input type="text" id="new_passkey_name" name="new_passkey_name" maxlength="64">
        <p class="error" role="alert" id="passkey-error" hidden></p>
        <noscript><p class="hint">Adding a passkey needs JavaScript in this browser.</p></noscript>
        <button type="button" id="add-passkey" hidden>Add a passkey</button>
        """ : """
        <p class="hint" id="add-needs-mfa">To add a passkey, sign in here again with multi-factor authentication (the authenticator app), or with a Temporary Access Pass from your administrator.</p>
        """)}
        </form>
        {PasskeyScript(nonce)}
        """;

    private static string PasskeyTable(IReadOnlyList<Gatehouse.Storage.Passkey> passkeys) =>
        "<table id=\"passkeys\"><tr><th>Name</th><th>Added</th><th>Last used</th><th></th></tr>"
        + string.Concat(passkeys.Select(p => $"<tr><td class=\"passkey-name\">{E(p.Name)}</td><td>{E(p.CreatedAt.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture))}</td><td>{E(p.LastUsedAt?.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture) ?? "never")}</td><td><button type=\"submit\" class=\"secondary\" name=\"remove\" value=\"{E(p.Name)}\">Remove</button></td></tr>"))
        + "</table>";

    /// <summary>
    /// The pages' WebAuthn script: reads the options from the form's <c>data-passkey-options</c> (sign-in) or
    /// <c>data-registration-options</c> (adding a passkey), calls <c>navigator.credentials.get</c> (conditional
    /// mediation on the user-name page where the browser offers it, or on the button) or <c>create</c>, and posts the
    /// credential as JSON with base64url members in the hidden <c>passkey</c> or <c>credential</c> field.
    /// </summary>
    internal static string PasskeyScript(string nonce) => $$"""
        <script nonce="{{E(nonce)}}">
        (function () {
          var form = document.getElementById('signin');
          var problem = document.getElementById('passkey-error');
          if (!form || !window.PublicKeyCredential || !navigator.credentials) { return; }
          function decode(s) {
            s = s.replace(/-/g, '+').replace(/_/g, '/');
            while (s.length % 4) { s += '='; }
            var b = atob(s), a = new Uint8Array(b.length);
            for (var i = 0; i < b.length; i++) { a[i] = b.charCodeAt(i); }
            return a.buffer;
          }
          function encode(buffer) {
            var a = new Uint8Array(buffer), s = '';
            for (var i = 0; i < a.length; i++) { s += String.fromCharCode(a[i]); }
            return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          }
          function read(name) { return JSON.parse(form.getAttribute(name) || '{}'); }
          function fail(text) { if (problem) { problem.textContent = text; problem.hidden = false; } }

          var field = form.elements['passkey'];
          var button = document.getElementById('passkey-signin');
          if (field && read('data-passkey-options').challenge) {
            var pending = null;
            var ask = function (conditional) {
              if (pending) { pending.abort(); }
              pending = new AbortController();
              var o = read('data-passkey-options');
              var call = { publicKey: { challenge: decode(o.challenge), rpId: o.rpId, timeout: o.timeout, userVerification: 'required', allowCredentials: [] }, signal: pending.signal };
              if (conditional) { call.mediation = 'conditional'; }
              navigator.credentials.get(call).then(function (c) {
                if (!c) { return; }
                var r = c.response;
                var response = { authenticatorData: encode(r.authenticatorData), clientDataJSON: encode(r.clientDataJSON), signature: encode(r.signature) };
                if (r.userHandle) { response.userHandle = encode(r.userHandle); }
                field.value = JSON.stringify({ id: c.id, rawId: encode(c.rawId), type: c.type, response: response, clientExtensionResults: {} });
                form.submit();
              }, function (e) {
                if (!conditional && e && e.name !== 'AbortError') { fail('No passkey was used. Try again, or sign in another way.'); }
              });
            };
            if (button) {
              button.hidden = false;
              button.addEventListener('click', function () { ask(false); });
            }
            if (form.getAttribute('data-conditional') === 'true' && PublicKeyCredential.isConditionalMediationAvailable) {
              PublicKeyCredential.isConditionalMediationAvailable().then(function (available) { if (available) { ask(true); } });
            }
          }

          var credential = form.elements['credential'];
          var add = document.getElementById('add-passkey');
          if (credential && add && read('data-registration-options').challenge) {
            add.hidden = false;
            add.addEventListener('click', function () {
              var name = form.elements['new_passkey_name'];
              if (name && !name.value.trim()) { fail('Give the passkey a name first.'); name.focus(); return; }
              var o = read('data-registration-options');
              var selection = o.authenticatorSelection || {};
              var publicKey = {
                rp: { id: o.rp.id, name: o.rp.name },
                user: { id: decode(o.user.id), name: o.user.name, displayName: o.user.displayName },
                challenge: decode(o.challenge),
                pubKeyCredParams: (o.pubKeyCredParams || []).map(function (p) { return { type: p.type, alg: p.alg }; }),
                timeout: o.timeout,
                excludeCredentials: (o.excludeCredentials || []).map(function (c) { return { type: c.type, id: decode(c.id) }; }),
                authenticatorSelection: { residentKey: selection.residentKey || 'required', requireResidentKey: true, userVerification: selection.userVerification || 'required' },
                attestation: 'none'
              };
              navigator.credentials.create({ publicKey: publicKey }).then(function (c) {
                var r = c.response;
                credential.value = JSON.stringify({ id: c.id, rawId: encode(c.rawId), type: c.type, response: { attestationObject: encode(r.attestationObject), clientDataJSON: encode(r.clientDataJSON), transports: r.getTransports ? r.getTransports() : [] }, clientExtensionResults: {} });
                form.submit();
              }, function (e) {
                fail(e && e.name === 'InvalidStateError' ? 'This device already has a passkey for your account.' : 'No passkey was added. Try again.');
              });
            });
          }
        })();
        </script>
        """;

    public static string Password(FormContext form, string username, string? error) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Enter password</h1>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required autofocus>
        <button type="submit" id="next">Sign in</button>
        </form>
        """;

    public static string ChangePassword(FormContext form, string username, string? error) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Update your password</h1>
        <p>You need to update your password because this is the first time you are signing in, or because your password has expired.</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <label for="new_password">New password</label>
        <input type="password" id="new_password" name="new_password" autocomplete="new-password" minlength="12" required autofocus>
        <p class="hint">At least 12 characters.</p>
        <button type="submit" id="next">Sign in</button>
        </form>
        """;

    public static string Otp(FormContext form, string username, string? error) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Enter code</h1>
        <p>Enter the code displayed in the authenticator app on your mobile device.</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <label for="otp">Code</label>
        <input type="text" id="otp" name="otp" inputmode="numeric" pattern="[0-9]{"{6,8}"}" autocomplete="one-time-code" required autofocus>
        <button type="submit" id="next">Verify</button>
        </form>
        """;

    /// <summary>
    /// "More information required": set up an authenticator app. The QR code of <paramref name="otpAuthUri"/> is a PNG
    /// data URI (the pages' Content-Security-Policy allows <c>img-src data:</c> and nothing else), the key is shown in
    /// groups of four for typing, and the first code confirms the method.
    /// </summary>
    public static string EnrollTotp(FormContext form, string username, string otpAuthUri, string secretBase32, string? error) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Set up your authenticator app</h1>
        <p>Your organisation needs more information to keep your account secure. Scan this QR code with an authenticator app (Microsoft Authenticator, Google Authenticator, FreeOTP…), then enter the 6-digit code the app shows.</p>
        <img id="totp-qr" class="qr" src="data:image/png;base64,{QrCodePngBase64(otpAuthUri)}" alt="QR code to scan with your authenticator app">
        <p class="hint">Can't scan the image? In the app, add an account by key: time-based, 6 digits, 30 seconds, account <strong>{E(username)}</strong>, key</p>
        <p class="url" id="totp-secret">{E(Group(secretBase32))}</p>
        <p class="hint"><a id="totp-uri" href="{E(otpAuthUri)}">Open in an authenticator app on this device</a></p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <label for="otp">Code</label>
        <input type="text" id="otp" name="otp" inputmode="numeric" pattern="[0-9]{"{6,8}"}" autocomplete="one-time-code" required autofocus>
        <button type="submit" id="next">Verify</button>
        </form>
        """;

    /// <summary>The QR code of <paramref name="text"/> as a PNG, base64 (error correction M, 4 pixels a module, with the quiet zone).</summary>
    internal static string QrCodePngBase64(string text) =>
        Convert.ToBase64String(PngByteQRCodeHelper.GetQRCode(text, QRCodeGenerator.ECCLevel.M, 4, drawQuietZones: true));

    public static string Consent(FormContext form, string username, string hostName, string? error = null) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>Allow remote desktop connection to {E(hostName)}?</h1>
        <p>Gatehouse will sign you in to <strong>{E(hostName)}</strong> with your organisation account. Your answer is remembered for 30 days.</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <button type="submit" class="secondary" name="consent" value="deny" id="deny">No</button>
        <button type="submit" name="consent" value="allow" id="allow">Yes</button>
        </form>
        """;

    /// <summary>
    /// The end of a sign-in whose redirect a browser cannot follow (<c>ms-appx-web:</c>), or the native-client page:
    /// the whole URL to paste into the RDP client.
    /// </summary>
    public static string CopyRedirect(string nonce, string redirectUrl, string hostName) => $$"""
        <h1>Almost there</h1>
        <p>Copy this address and paste it into your remote desktop client{{(hostName.Length > 0 ? $" (connecting to <strong>{E(hostName)}</strong>)" : string.Empty)}}, at the prompt <em>Paste redirect URL here</em>.</p>
        <p class="url" id="redirect-url">{{E(redirectUrl)}}</p>
        <button type="button" id="copy">Copy</button>
        <p class="hint" id="copied" hidden>Copied. You can close this window after pasting.</p>
        <p class="hint">The address works once, within one minute.</p>
        <script nonce="{{E(nonce)}}">
        document.getElementById('copy').addEventListener('click', function () {
          navigator.clipboard.writeText(document.getElementById('redirect-url').textContent).then(function () {
            document.getElementById('copied').hidden = false;
          });
        });
        </script>
        """;

    /// <summary>
    /// <c>/devicelogin</c>: "Enter code" (field <c>otc</c>, as Entra's page names it). The form carries only the
    /// antiforgery token: the sign-in transaction starts once a pending code is found.
    /// </summary>
    public static string DeviceCode(string action, string antiforgeryField, string antiforgeryToken, string? prefill, string? error) => $"""
        <h1>Enter code</h1>
        <p>Enter the code displayed on your device (by <code>gatehouse login</code>) to allow access.</p>
        {Error(error)}
        <form method="post" action="{E(action)}" id="signin">
        {Html.Hidden(antiforgeryField, antiforgeryToken)}
        <label for="otc">Code</label>
        <input type="text" id="otc" name="otc" value="{E(prefill)}" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="32" required autofocus>
        <button type="submit" id="next">Next</button>
        </form>
        """;

    /// <summary>
    /// The device sign-in's last question, asked every time (a device code can be phished: someone else may have
    /// started <c>gatehouse login</c>, or connected, and sent the code). Same buttons as the consent page:
    /// <c>consent=allow|deny</c>. "Are you trying to sign in to Gatehouse CLI?", or for the hold screen's QR sign-in
    /// "… to vm1 (Remote Desktop)?" (or "… to Remote Desktop?" when the connection named no host).
    /// </summary>
    public static string DeviceConsent(FormContext form, string username, DevicePurpose purpose, string? error = null) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1 id="question">Are you trying to sign in to {E(purpose.Name)}?</h1>
        <p>{(purpose.RemoteDesktop
            ? "Only continue if you are connecting to this remote desktop yourself and its screen shows the code you entered. Continuing signs that connection in as you."
            : "Only continue if you started <code>gatehouse login</code> yourself on a device you trust. Continuing lets that device administer Gatehouse as you until you run <code>gatehouse logout</code>.")}</p>
        {Error(error)}
        <form method="post" action="{E(form.Action)}" id="signin">
        {Hidden(form)}
        <button type="submit" class="secondary" name="consent" value="deny" id="deny">Cancel</button>
        <button type="submit" name="consent" value="allow" id="allow">Continue</button>
        </form>
        """;

    /// <summary>The end of an approved device sign-in.</summary>
    public static string DeviceSignedIn(string username, DevicePurpose purpose) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>{E(purpose.Name)}</h1>
        <p id="done">{(purpose.RemoteDesktop
            ? $"You have signed in to {E(purpose.Name)}. The remote desktop connection goes on; you may now close this window."
            : $"You have signed in to the {E(purpose.Name)} application on your device. You may now close this window.")}</p>
        """;

    /// <summary>The end of a device sign-in the user cancelled.</summary>
    public static string DeviceDenied(string username, DevicePurpose purpose) => $"""
        <p class="who" id="who">{E(username)}</p>
        <h1>{E(purpose.Name)}</h1>
        <p id="denied">{(purpose.RemoteDesktop
            ? $"You have not signed in to {E(purpose.Name)}. The connection that showed you the code gets no access. You may now close this window."
            : $"You have not signed in to the {E(purpose.Name)} application. The device that showed you the code gets no access. You may now close this window.")}</p>
        """;

    /// <summary>What a device sign-in is for: its name on the pages, and whether it is a Remote Desktop connection (else the Gatehouse CLI).</summary>
    internal sealed record DevicePurpose(string Name, bool RemoteDesktop);

    /// <summary>The page that ends a sign-in; the correlation id finds the attempt in the sign-in log.</summary>
    public static string ErrorPage(AadError error, string? traceId, string? correlationId = null) => $"""
        <h1>Sorry, but we're having trouble signing you in.</h1>
        <p class="error" role="alert" id="error">{E(error.Describe())}</p>
        <p class="hint">Trace ID: {E(traceId)}</p>
        {(correlationId is null ? string.Empty : $"<p class=\"hint\" id=\"correlation\">Correlation ID: {E(correlationId)}</p>")}
        """;

    /// <summary>ABCD EFGH …: groups of four, as authenticator apps show keys.</summary>
    private static string Group(string key) =>
        string.Join(' ', Enumerable.Range(0, (key.Length + 3) / 4).Select(i => key.Substring(i * 4, Math.Min(4, key.Length - (i * 4)))));

    private static string Hidden(FormContext form) =>
        Html.Hidden(SignInTransactionProtector.FormField, form.Transaction) + Html.Hidden(form.AntiforgeryField, form.AntiforgeryToken);
}
