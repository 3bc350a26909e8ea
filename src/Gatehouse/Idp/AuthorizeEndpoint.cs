using System.Net;
using System.Security.Cryptography;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Antiforgery;

namespace Gatehouse.Idp;

/// <summary>
/// <c>/{tenant}/oauth2/v2.0/authorize</c>: validates the request (client, redirect URI, scope and its host), then is a
/// thin page over <see cref="SignInEngine"/>: each post is read, handed to the engine's step, and what the engine decides
/// is rendered (the next page, the Entra-shaped error page, the code's redirect). The steps (user name → password →
/// forced password change → one-time code → consent → code), Conditional Access and the sign-in log live in the engine.
/// Requests that fail before the redirect URI is known to be registered get an error page, never a redirect
/// (RFC 6749 §4.1.2.1); so do requests to the <c>ms-appx-web:</c> redirect a browser cannot follow.
/// The device sign-ins of <c>/devicelogin</c> (<see cref="DeviceLoginEndpoint"/>) post here through <see cref="StepAsync"/>
/// with a transaction that names its device code: <c>gatehouse login</c> (the admin API), or an RDP device code (the hold
/// screen's QR sign-in, to the host its scope names).
/// </summary>
internal sealed class AuthorizeEndpoint(
    DirectoryService directory,
    SignInEngine engine,
    PasskeyService passkeys,
    SignInTransactionProtector transactions,
    IAntiforgery antiforgery,
    IdpUrls urls)
{
    /// <summary>The issuer authenticator apps show next to the account (as <see cref="DirectoryService.BeginTotpEnrollmentAsync"/> uses).</summary>
    internal const string TotpIssuer = "Gatehouse";

    public async Task GetAsync(HttpContext context, string tenant)
    {
        var query = context.Request.Query;
        var found = await directory.FindTenantAsync(tenant).ConfigureAwait(false);
        if (found is null)
        {
            await ErrorAsync(context, AadError.UnknownTenant, StatusCodes.Status400BadRequest).ConfigureAwait(false);
            return;
        }

        var clientId = Single(query, "client_id");
        if (clientId is null)
        {
            await ErrorAsync(context, AadError.MissingParameter.With("client_id")).ConfigureAwait(false);
            return;
        }

        if (GatehousePortalClient.Is(clientId))
        {
            await BeginPortalAsync(context, tenant, found.Id, query).ConfigureAwait(false);
            return;
        }

        if (!string.Equals(clientId, RdpClient.ClientId, StringComparison.OrdinalIgnoreCase))
        {
            await ErrorAsync(context, AadError.UnknownClient).ConfigureAwait(false);
            return;
        }

        var redirectUri = Single(query, "redirect_uri");
        if (redirectUri is null || !IsRegisteredRedirect(redirectUri, tenant))
        {
            await ErrorAsync(context, AadError.RedirectMismatch).ConfigureAwait(false);
            return;
        }

        if (Single(query, "response_type") != "code")
        {
            await ErrorAsync(context, AadError.UnsupportedResponseType).ConfigureAwait(false);
            return;
        }

        var scope = Single(query, "scope");
        if (scope is null)
        {
            await ErrorAsync(context, AadError.MissingParameter.With("scope")).ConfigureAwait(false);
            return;
        }

        var deviceScope = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(s => s.StartsWith(RdpScope.ResourcePrefix, StringComparison.OrdinalIgnoreCase));
        if (!RdpScope.TryParse(deviceScope, out var label, out var scopeError))
        {
            await ErrorAsync(context, scopeError == RdpScope.IpAddressError ? AadError.IpAddressHost : AadError.InvalidScope).ConfigureAwait(false);
            return;
        }

        var host = await directory.FindHostByLabelAsync(found.Id, label).ConfigureAwait(false);
        if (host is null)
        {
            await ErrorAsync(context, AadError.UnknownHost).ConfigureAwait(false);
            return;
        }

        var challenge = Single(query, "code_challenge");
        var method = Single(query, "code_challenge_method");
        if (challenge is not null || method is not null)
        {
            if (method is not "S256")
            {
                await ErrorAsync(context, AadError.PkcePlain).ConfigureAwait(false);
                return;
            }

            if (challenge is null || challenge.Length != 43)
            {
                await ErrorAsync(context, AadError.BadRequest.With("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")).ConfigureAwait(false);
                return;
            }
        }

        // Gatehouse keeps no sign-in session: every sign-in walks the pages, so a silent one cannot succeed
        // (OpenID Connect Core §3.1.2.6: login_required, to the redirect URI).
        if (Single(query, "prompt") is { } prompt && prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("none", StringComparer.Ordinal))
        {
            await LoginRequiredAsync(context, redirectUri, Single(query, "state"), found.Id).ConfigureAwait(false);
            return;
        }

        var browser = EnsureBrowserCookie(context);
        var transaction = new SignInTransaction
        {
            TenantSegment = tenant,
            TenantId = found.Id,
            ClientId = RdpClient.ClientId,
            RedirectUri = redirectUri,
            Scope = deviceScope!,
            State = Single(query, "state"),
            CodeChallenge = challenge,
            CodeChallengeMethod = method,
            HostId = host.Id,
            HostName = host.Name,
            Step = SignInStep.Username,
            BrowserBinding = SignInTransactionProtector.Bind(browser),
            TraceParent = Gatehouse.Gateway.Diagnostics.SignInTraces.CurrentTraceParent(),
        };
        var hint = Single(query, "login_hint");
        await RenderAsync(context, transaction, StatusCodes.Status200OK, error: null, prefill: hint).ConfigureAwait(false);
    }

    /// <summary>
    /// The portal's sign-in (<see cref="GatehousePortalClient"/>): its one redirect URI on this server's public origin,
    /// <c>response_type=code</c>, PKCE with S256 (required: the portal is a public client), scope <c>openid</c>
    /// (<c>profile</c> allowed); no host, so the transaction names none and Conditional Access evaluates the admin API's
    /// application policies. Errors before the redirect URI is known to be ours get the error page.
    /// </summary>
    private async Task BeginPortalAsync(HttpContext context, string tenant, Guid tenantId, IQueryCollection query)
    {
        var redirectUri = Single(query, "redirect_uri");
        if (redirectUri is null || !string.Equals(redirectUri, GatehousePortalClient.RedirectUri(urls.PublicName), StringComparison.Ordinal))
        {
            await ErrorAsync(context, AadError.RedirectMismatch).ConfigureAwait(false);
            return;
        }

        if (Single(query, "response_type") != "code")
        {
            await ErrorAsync(context, AadError.UnsupportedResponseType).ConfigureAwait(false);
            return;
        }

        var scope = Single(query, "scope");
        if (!GatehousePortalClient.IsAllowedScope(scope))
        {
            await ErrorAsync(context, AadError.InvalidScope).ConfigureAwait(false);
            return;
        }

        var challenge = Single(query, "code_challenge");
        if (Single(query, "code_challenge_method") is not "S256" || challenge is not { Length: 43 })
        {
            await ErrorAsync(context, AadError.BadRequest.With("the portal signs in with PKCE: code_challenge_method=S256 and code_challenge, the base64url SHA-256 of the code_verifier (43 characters)")).ConfigureAwait(false);
            return;
        }

        var browser = EnsureBrowserCookie(context);
        var transaction = new SignInTransaction
        {
            TenantSegment = tenant,
            TenantId = tenantId,
            ClientId = GatehousePortalClient.ClientId,
            RedirectUri = redirectUri,
            Scope = scope!,
            State = Single(query, "state"),
            CodeChallenge = challenge,
            CodeChallengeMethod = "S256",
            HostId = Guid.Empty,
            HostName = string.Empty,
            Step = SignInStep.Username,
            BrowserBinding = SignInTransactionProtector.Bind(browser),
        };
        await RenderAsync(context, transaction, StatusCodes.Status200OK, error: null, prefill: Single(query, "login_hint")).ConfigureAwait(false);
    }

    /// <summary>
    /// <c>/{tenant}/mysignins/security-info</c>: the user's own passkeys. Gatehouse keeps no sign-in session, so the page
    /// is reached by a sign-in of its own (user name or passkey, password, MFA when the user has it) that ends on the
    /// page instead of issuing anything; the page's actions post the sealed transaction like any step.
    /// </summary>
    public async Task SecurityInfoGetAsync(HttpContext context, string tenant)
    {
        var found = await directory.FindTenantAsync(tenant).ConfigureAwait(false);
        if (found is null)
        {
            await ErrorAsync(context, AadError.UnknownTenant, StatusCodes.Status400BadRequest).ConfigureAwait(false);
            return;
        }

        var browser = EnsureBrowserCookie(context);
        var transaction = new SignInTransaction
        {
            TenantSegment = tenant,
            TenantId = found.Id,
            ClientId = "gatehouse-security-info",
            RedirectUri = string.Empty,
            Scope = string.Empty,
            HostId = Guid.Empty,
            HostName = string.Empty,
            Step = SignInStep.Username,
            BrowserBinding = SignInTransactionProtector.Bind(browser),
            SecurityInfo = true,
        };
        await RenderAsync(context, transaction, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
    }

    public async Task PostAsync(HttpContext context, string tenant, bool securityInfo = false)
    {
        if (!context.Request.HasFormContentType)
        {
            await ErrorAsync(context, AadError.BadRequest.With("the form must be posted as application/x-www-form-urlencoded")).ConfigureAwait(false);
            return;
        }

        var read = await OAuthForm.TryReadFormAsync(context).ConfigureAwait(false);
        if (read.Form is null)
        {
            await ErrorAsync(context, read.Error!, read.Status).ConfigureAwait(false);
            return;
        }

        await StepAsync(context, read.Form, tenant, securityInfo).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves the posted transaction on by one step: an authorize transaction for <paramref name="tenant"/>, or with
    /// <paramref name="tenant"/> null (<c>/devicelogin</c>) a device transaction.
    /// </summary>
    internal async Task StepAsync(HttpContext context, IFormCollection form, string? tenant, bool securityInfo = false)
    {
        if (!transactions.TryUnprotect(form[SignInTransactionProtector.FormField], context.Request.Cookies[SignInTransactionProtector.BrowserCookie], out var tx)
            || tx.SecurityInfo != securityInfo
            || (tenant is null ? !tx.IsDevice : tx.IsDevice || !string.Equals(tx.TenantSegment, tenant, StringComparison.OrdinalIgnoreCase)))
        {
            await ErrorAsync(context, AadError.SessionExpired).ConfigureAwait(false);
            return;
        }

        try
        {
            await antiforgery.ValidateRequestAsync(context).ConfigureAwait(false);
        }
        catch (AntiforgeryValidationException)
        {
            await ErrorAsync(context, AadError.SessionExpired).ConfigureAwait(false);
            return;
        }

        var input = new SignInInput
        {
            Username = form["username"],
            Password = form["password"],
            NewPassword = form["new_password"],
            Code = form["otp"],
            Consent = form["consent"],
            Passkey = form["passkey"],
            Method = form["method"],
            Credential = form["credential"],
            NewPasskeyName = form["new_passkey_name"],
            PasskeyName = form["passkey_name"],
            NewName = form["new_name"],
            Remove = form["remove"],
        };
        var result = await engine.StepAsync(tx, input, ClientAddress(context)).ConfigureAwait(false);
        await RenderResultAsync(context, result).ConfigureAwait(false);
    }

    /// <summary>Starts the sign-in that approves <paramref name="deviceCode"/> (found from the user code): the user name page.</summary>
    internal async Task BeginDeviceSignInAsync(HttpContext context, Gatehouse.Storage.DeviceCode deviceCode)
    {
        var browser = EnsureBrowserCookie(context);
        var result = await engine.BeginDeviceAsync(deviceCode, SignInTransactionProtector.Bind(browser), ClientAddress(context)).ConfigureAwait(false);
        await RenderResultAsync(context, result).ConfigureAwait(false);
    }

    /// <summary>Renders what a step of the engine decided: a page, a refusal, the code's redirect, or the end of a device sign-in.</summary>
    private Task RenderResultAsync(HttpContext context, SignInResult result) => result switch
    {
        SignInNext next => RenderAsync(context, next.Transaction, next.Problem switch
        {
            SignInInputProblem.Throttled => StatusCodes.Status429TooManyRequests,
            SignInInputProblem.Invalid => StatusCodes.Status400BadRequest,
            _ => StatusCodes.Status200OK,
        }, next.Error),
        SignInRefused refused => ErrorAsync(context, refused.Error, refused.Forbidden ? StatusCodes.Status403Forbidden : StatusCodes.Status400BadRequest, refused.CorrelationId),
        SignInCodeIssued issued => RedirectWithCodeAsync(context, issued.Transaction, issued.Code),
        SignInDeviceApproved approved => Responses.HtmlAsync(context, StatusCodes.Status200OK, SignInEngine.DeviceApplicationName(approved.Transaction), _ => SignInPages.DeviceSignedIn(approved.UserPrincipalName, DevicePurpose(approved.Transaction))),
        SignInDeviceDenied denied => Responses.HtmlAsync(context, StatusCodes.Status200OK, "Sign-in cancelled", _ => SignInPages.DeviceDenied(denied.UserPrincipalName, DevicePurpose(denied.Transaction))),
        _ => throw new InvalidOperationException($"Internal Gatehouse bug: the sign-in engine returned {result.GetType().Name}, which the pages cannot render."),
    };

    /// <summary>The code goes to the redirect URI: a 302 to an https one, the copy page for the broker redirect.</summary>
    private async Task RedirectWithCodeAsync(HttpContext context, SignInTransaction tx, string code)
    {
        // The code goes first and is never the last parameter: FreeRDP keeps the newline of the pasted line
        // (design/protocol/freerdp-aad-client.md §3). iss answers mix-up attacks (RFC 9207).
        var redirect = QueryStringBuilder(tx.RedirectUri)
            .Add("code", code)
            .AddIf("state", tx.State)
            .Add("iss", urls.Issuer(tx.TenantId))
            .Add("session_state", Guid.NewGuid().ToString("D"))
            .ToString();

        if (tx.RedirectUri.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            context.Response.StatusCode = StatusCodes.Status302Found;
            context.Response.Headers.Location = redirect;
            context.Response.Headers.CacheControl = "no-store";
            return;
        }

        await Responses.HtmlAsync(context, StatusCodes.Status200OK, "Copy the address", nonce => SignInPages.CopyRedirect(nonce, redirect, tx.HostName)).ConfigureAwait(false);
    }

    /// <summary>What a device sign-in's pages say the sign-in is for: the Gatehouse CLI, or a Remote Desktop connection.</summary>
    private static SignInPages.DevicePurpose DevicePurpose(SignInTransaction tx) =>
        new(SignInEngine.DeviceApplicationName(tx), tx.IsRdpDevice);

    /// <summary>
    /// <c>prompt=none</c>: <c>login_required</c> (AADSTS50058) sent to a registered https redirect URI as Entra does, with
    /// the state and the issuer; the broker redirect a browser cannot follow gets the error page instead.
    /// </summary>
    private Task LoginRequiredAsync(HttpContext context, string redirectUri, string? state, Guid tenantId)
    {
        var error = AadError.LoginRequired;
        if (!redirectUri.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            return ErrorAsync(context, error);
        }

        context.Response.StatusCode = StatusCodes.Status302Found;
        context.Response.Headers.Location = QueryStringBuilder(redirectUri)
            .Add("error", error.OAuthError)
            .Add("error_description", error.Describe())
            .AddIf("state", state)
            .Add("iss", urls.Issuer(tenantId))
            .ToString();
        context.Response.Headers.CacheControl = "no-store";
        return Task.CompletedTask;
    }

    private async Task RenderAsync(HttpContext context, SignInTransaction tx, int status, string? error, string? prefill = null)
    {
        // Every rendering of a step that offers a passkey gets a fresh challenge, sealed in the transaction it posts back.
        if (tx.Step is SignInStep.Username or SignInStep.PasskeyMfa)
        {
            var ceremony = passkeys.BeginAssertion();
            tx = tx with { PasskeyOptions = ceremony.OptionsJson, PasskeyExpiresAt = ceremony.ExpiresAt };
        }

        IReadOnlyList<Gatehouse.Storage.Passkey> owned = [];
        var canRegister = false;
        if (tx.Step == SignInStep.SecurityInfo && tx.UserId is { } userId)
        {
            owned = await passkeys.ListAsync(userId).ConfigureAwait(false);
            canRegister = engine.CanRegisterPasskey(tx);
            var registration = canRegister ? await passkeys.BeginRegistrationAsync(userId).ConfigureAwait(false) : null;
            tx = tx with { RegistrationOptions = registration?.OptionsJson, RegistrationExpiresAt = registration?.ExpiresAt };
        }

        var tokens = antiforgery.GetAndStoreTokens(context);
        var form = new SignInPages.FormContext(
            tx.IsDevice ? urls.DeviceLogin : tx.SecurityInfo ? urls.SecurityInfo(tx.TenantSegment) : urls.Authorize(tx.TenantSegment),
            transactions.Protect(tx),
            tokens.FormFieldName,
            tokens.RequestToken!);
        var username = tx.Username ?? string.Empty;
        var options = tx.PasskeyOptions ?? string.Empty;
        var (title, body) = tx.Step switch
        {
            SignInStep.Username when tx.SecurityInfo => ("Sign in", (Func<string, string>)(n => SignInPages.Username(form, prefill, error, n, options, "to see and change your security info (passkeys)"))),
            SignInStep.SecurityInfo => ("Security info", n => SignInPages.SecurityInfo(form, username, owned, tx.Notice, error, n, tx.RegistrationOptions, canRegister)),
            SignInStep.Username when tx.IsRdpDevice => ("Sign in", n => SignInPages.Username(form, prefill, error, n, options, $"to {SignInEngine.DeviceApplicationName(tx)}, for the remote desktop window that showed you the code")),
            SignInStep.Username when tx.IsDevice => ("Sign in", n => SignInPages.Username(form, prefill, error, n, options, $"to {GatehouseCliClient.DisplayName} on your device")),
            SignInStep.Username when tx.IsPortal => ("Sign in", n => SignInPages.Username(form, prefill, error, n, options, $"to the {GatehousePortalClient.DisplayName}")),
            SignInStep.Username => ("Sign in", n => SignInPages.Username(form, prefill, error, n, options)),
            SignInStep.PasskeyMfa => ("Verify your identity", n => SignInPages.PasskeyMfa(form, username, error, n, options, tx.MfaFallback == SignInStep.EnrollTotp)),
            SignInStep.Password => ("Enter password", _ => SignInPages.Password(form, username, error)),
            SignInStep.ChangePassword => ("Update your password", _ => SignInPages.ChangePassword(form, username, error)),
            SignInStep.Otp => ("Enter code", _ => SignInPages.Otp(form, username, error)),
            SignInStep.EnrollTotp => ("Set up your authenticator app", _ => SignInPages.EnrollTotp(form, username, EnrollmentUri(tx), Totp.Base32Encode(tx.TotpEnrollmentSecret, pad: false), error)),
            _ when tx.IsDevice => ("Sign in to " + SignInEngine.DeviceApplicationName(tx), _ => SignInPages.DeviceConsent(form, username, DevicePurpose(tx), error)),
            _ => ("Permissions requested", _ => SignInPages.Consent(form, username, tx.HostName, error)),
        };
        await Responses.HtmlAsync(context, status, title, body).ConfigureAwait(false);
    }

    /// <summary>The otpauth:// URI of the secret being set up, labelled with the account as the user typed it.</summary>
    private static string EnrollmentUri(SignInTransaction tx) =>
        Totp.OtpAuthUri(TotpIssuer, tx.Username ?? string.Empty, tx.TotpEnrollmentSecret ?? throw new InvalidOperationException("the enrolment step has no secret"));

    private static Task ErrorAsync(HttpContext context, AadError error, int status = StatusCodes.Status400BadRequest, string? correlationId = null) =>
        Responses.HtmlAsync(context, status, "Sign-in error", _ => SignInPages.ErrorPage(error, context.TraceIdentifier, correlationId));


    private bool IsRegisteredRedirect(string redirectUri, string tenant) =>
        RdpClient.IsRegisteredRedirectUri(redirectUri, urls.PublicName, tenant)
        || RdpClient.IsRegisteredRedirectUri(redirectUri, urls.PublicName, DirectoryService.CommonTenant);

    /// <summary>A parameter that appears exactly once (a repeated OAuth parameter is an error, RFC 6749 §3.1).</summary>
    private static string? Single(IQueryCollection query, string name) =>
        query.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;

    internal static IPAddress ClientAddress(HttpContext context) => context.Connection.RemoteIpAddress ?? IPAddress.None;

    internal static string EnsureBrowserCookie(HttpContext context)
    {
        var existing = context.Request.Cookies[SignInTransactionProtector.BrowserCookie];
        if (existing is { Length: 43 })
        {
            return existing;
        }

        var value = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        context.Response.Cookies.Append(SignInTransactionProtector.BrowserCookie, value, new CookieOptions
        {
            Secure = true,
            HttpOnly = true,
            SameSite = SameSiteMode.Lax,
            Path = "/",
            IsEssential = true,
        });
        return value;
    }

    private static RedirectBuilder QueryStringBuilder(string redirectUri) => new(redirectUri);

    private sealed class RedirectBuilder(string baseUri)
    {
        private readonly System.Text.StringBuilder _url = new(baseUri);
        private bool _hasQuery = baseUri.Contains('?', StringComparison.Ordinal);

        public RedirectBuilder Add(string name, string value)
        {
            _url.Append(_hasQuery ? '&' : '?').Append(name).Append('=').Append(Uri.EscapeDataString(value));
            _hasQuery = true;
            return this;
        }

        public RedirectBuilder AddIf(string name, string? value) => value is null ? this : Add(name, value);

        public override string ToString() => _url.ToString();
    }
}
