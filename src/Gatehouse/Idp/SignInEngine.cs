using System.Globalization;
using System.Net;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;

namespace Gatehouse.Idp;

/// <summary>What a step's input was wrong with, when the same step is shown again.</summary>
internal enum SignInInputProblem
{
    /// <summary>Nothing: the step is shown for the first time.</summary>
    None,

    /// <summary>The input was refused (empty, wrong, too weak); the page says why.</summary>
    Invalid,

    /// <summary>The per-account attempt limit is reached; the input was not checked.</summary>
    Throttled,
}

/// <summary>What one step of a sign-in decided (<see cref="SignInEngine"/>); the driver renders it.</summary>
internal abstract record SignInResult;

/// <summary>
/// Show the step <see cref="SignInTransaction.Step"/> of <paramref name="Transaction"/>: the next one, or the same one
/// again with <paramref name="Error"/> (what the user reads) when <paramref name="Problem"/> is not <see cref="SignInInputProblem.None"/>.
/// </summary>
internal sealed record SignInNext(SignInTransaction Transaction, string? Error = null, SignInInputProblem Problem = SignInInputProblem.None) : SignInResult;

/// <summary>
/// The sign-in ends refused: the Entra-shaped <paramref name="Error"/>, the log's <paramref name="Reason"/>, <paramref name="Fix"/> and
/// <paramref name="PoliciesJson"/> (already written to the sign-in log, unless the refusal is only that the transaction is
/// no longer valid), the transaction id the user can quote (<paramref name="CorrelationId"/>), and whether the user or a
/// policy said no (<paramref name="Forbidden"/>) rather than the request having become invalid.
/// </summary>
internal sealed record SignInRefused(AadError Error, string Reason, string? Fix = null, string? PoliciesJson = null, string? CorrelationId = null, bool Forbidden = false) : SignInResult;

/// <summary>An authorize sign-in is complete: <paramref name="Code"/> is the authorization code for the redirect URI.</summary>
internal sealed record SignInCodeIssued(SignInTransaction Transaction, string Code) : SignInResult;

/// <summary>A device sign-in is complete: the device code is approved for <paramref name="UserPrincipalName"/>.</summary>
internal sealed record SignInDeviceApproved(SignInTransaction Transaction, string UserPrincipalName) : SignInResult;

/// <summary>The user answered Cancel to a device sign-in: the device code is denied.</summary>
internal sealed record SignInDeviceDenied(SignInTransaction Transaction, string UserPrincipalName) : SignInResult;

/// <summary>What the user entered on a step's page (only the fields that step reads are looked at).</summary>
internal sealed record SignInInput
{
    public string? Username { get; init; }

    public string? Password { get; init; }

    public string? NewPassword { get; init; }

    /// <summary>A one-time code (the code step and the enrolment step).</summary>
    public string? Code { get; init; }

    /// <summary>The answer to the last question: <c>allow</c> or <c>deny</c>.</summary>
    public string? Consent { get; init; }

    /// <summary>The browser's WebAuthn assertion (the page's script posts it as JSON, binary members base64url).</summary>
    public string? Passkey { get; init; }

    /// <summary>At the passkey step: <c>otp</c> is "Use your authenticator app instead".</summary>
    public string? Method { get; init; }

    /// <summary>Security info: the browser's registration response (JSON, binary members base64url) of a passkey being added.</summary>
    public string? Credential { get; init; }

    /// <summary>Security info: the name for the passkey being added.</summary>
    public string? NewPasskeyName { get; init; }

    /// <summary>Security info: the passkey to rename.</summary>
    public string? PasskeyName { get; init; }

    /// <summary>Security info: its new name.</summary>
    public string? NewName { get; init; }

    /// <summary>Security info: the name of the passkey to remove.</summary>
    public string? Remove { get; init; }
}

/// <summary>What checking a one-time code said (<see cref="SignInEngine.CheckOneTimeCodeAsync"/>).</summary>
internal enum OneTimeCodeOutcome
{
    /// <summary>The authenticator app's code for now, not used before.</summary>
    Accepted,

    /// <summary>Not the code (or empty, or already used).</summary>
    Wrong,

    /// <summary>The per-account attempt limit is reached; not checked.</summary>
    Throttled,
}

/// <summary>
/// The steps of a sign-in, with no HTTP and no HTML: user name → password → forced password change → one-time code or
/// authenticator-app enrolment → the last question (consent per host, or "Are you trying to sign in to …?" for a device
/// sign-in) → an authorization code or an approved device code. Each step takes the transaction as it stands and the
/// step's input, writes the attempt to the sign-in log (protocol <c>browser</c>, correlation id = the transaction id;
/// never a password or code) and returns what to show next, a refusal, or the completion.
/// After every proof Conditional Access is evaluated with the methods done so far: for an authorize sign-in or an RDP
/// device sign-in the policies of the RDP applications at the host (or with no host for <see cref="RdpScope.AnyHostScope"/>),
/// for a <c>gatehouse login</c> device sign-in those of the admin API. An RDP device sign-in also needs a role that lets
/// the user sign in to the host (nobody else will check it before the gateway is handed the approved code).
/// Drivers: <see cref="AuthorizeEndpoint"/> (the authorize pages), <see cref="DeviceLoginEndpoint"/> (<c>/devicelogin</c>),
/// and the hold screen's one-time code (<see cref="Gatehouse.Gateway.IdentityHoldDirectory"/>, through <see cref="CheckOneTimeCodeAsync"/>).
/// </summary>
internal sealed class SignInEngine(
    DirectoryService directory,
    SignInService signIn,
    AccessService access,
    ConsentService consents,
    AuthorizationCodeService codes,
    DeviceCodeService deviceCodes,
    PasswordHasher hasher,
    AccountAttemptLimiter attempts,
    PasskeyService passkeys,
    TemporaryAccessPassService accessPasses,
    GatehouseIdentityOptions identityOptions,
    IdpSignInLog log,
    TimeProvider time)
{
    /// <summary>Shortest new password the forced change accepts.</summary>
    public const int MinimumPasswordLength = 12;

    /// <summary>The display name of an RDP device sign-in's application, as the last question names it.</summary>
    public const string RemoteDesktopName = "Remote Desktop";

    /// <summary>
    /// Starts the sign-in that approves <paramref name="deviceCode"/> (found from the user code) in the browser bound
    /// by <paramref name="browserBinding"/>: the user name step. A device code of the RDP client names its host in the
    /// scope; a host that is not in the code's tenant refuses the sign-in (and denies the code, so the device stops waiting).
    /// </summary>
    public async Task<SignInResult> BeginDeviceAsync(DeviceCode deviceCode, string browserBinding, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(deviceCode);
        var tx = new SignInTransaction
        {
            TenantSegment = deviceCode.TenantId.ToString("D"),
            TenantId = deviceCode.TenantId,
            ClientId = deviceCode.ClientId,
            RedirectUri = string.Empty,
            Scope = deviceCode.Scope,
            HostId = Guid.Empty,
            HostName = string.Empty,
            Step = SignInStep.Username,
            BrowserBinding = browserBinding,
            DeviceCodeHash = deviceCode.DeviceCodeHash,
            TraceParent = Gatehouse.Gateway.Diagnostics.SignInTraces.CurrentTraceParent(),
        };
        if (!tx.IsRdpDevice || string.Equals(deviceCode.Scope, RdpScope.AnyHostScope, StringComparison.OrdinalIgnoreCase))
        {
            return new SignInNext(tx);
        }

        var host = RdpScope.TryParse(deviceCode.Scope, out var label, out _) ? await directory.FindHostByLabelAsync(deviceCode.TenantId, label).ConfigureAwait(false) : null;
        if (host is null)
        {
            await deviceCodes.DenyAsync(deviceCode.DeviceCodeHash, null).ConfigureAwait(false);
            var reason = $"unknown_host: the device code asks for '{deviceCode.Scope}', which names no host of this tenant; the code is denied";
            const string fix = "Connect to a host by its registered name ('gatehouse host list').";
            await LogFailureAsync(tx, null, client, AadError.UnknownHost.Describe(), reason, AadError.UnknownHost, fix).ConfigureAwait(false);
            return new SignInRefused(AadError.UnknownHost, reason, fix, CorrelationId: tx.Id);
        }

        return new SignInNext(tx with { HostId = host.Id, HostName = host.Name });
    }

    /// <summary>Moves <paramref name="tx"/> on by the step it stands at, with the user's <paramref name="input"/>.</summary>
    public Task<SignInResult> StepAsync(SignInTransaction tx, SignInInput input, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(input);
        return tx.Step switch
        {
            SignInStep.Username when !string.IsNullOrEmpty(input.Passkey) => PasskeySignInAsync(tx, input.Passkey, client),
            SignInStep.Username => Task.FromResult(Username(tx, input.Username)),
            SignInStep.PasskeyMfa => PasskeyMfaAsync(tx, input, client),
            SignInStep.SecurityInfo => SecurityInfoAsync(tx, input, client),
            SignInStep.Password => PasswordAsync(tx, input.Password, client),
            SignInStep.ChangePassword => ChangePasswordAsync(tx, input.NewPassword, client),
            SignInStep.Otp => OneTimeCodeAsync(tx, input.Code, client),
            SignInStep.EnrollTotp => EnrollTotpAsync(tx, input.Code, client),
            _ => ConsentAsync(tx, input.Consent, client),
        };
    }

    /// <summary>The user name step: any plausible name goes on to the password (whether or not the account exists: no user enumeration).</summary>
    public static SignInResult Username(SignInTransaction tx, string? typed)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var username = typed?.Trim();
        if (string.IsNullOrEmpty(username) || username.Length > 256 || Gatehouse.Protocol.DisplayText.ContainsUnsafe(username))
        {
            return new SignInNext(tx, "Enter a valid email address or user name.", SignInInputProblem.Invalid);
        }

        return new SignInNext(tx with { Step = SignInStep.Password, Username = username });
    }

    /// <summary>The password step: counted against the per-account limit, checked (smart lockout), then what the sign-in still needs.</summary>
    public async Task<SignInResult> PasswordAsync(SignInTransaction tx, string? password, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (string.IsNullOrEmpty(password))
        {
            return new SignInNext(tx, "Please enter your password.", SignInInputProblem.Invalid);
        }

        if (!await attempts.TryAttemptAsync(tx.Username!, CancellationToken.None).ConfigureAwait(false))
        {
            await LogFailureAsync(tx, null, client, null, $"throttled: more password or code attempts for '{tx.Username}' this minute than the per-account limit allows (a spray or a stuck client?); the password was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            return new SignInNext(tx, AadError.TooManyRequests.Describe(), SignInInputProblem.Throttled);
        }

        var now = time.GetUtcNow();
        var user = await directory.FindUserByUpnAsync(tx.Username!).ConfigureAwait(false);
        if (user is not null && user.TenantId != tx.TenantId)
        {
            user = null;
        }

        // A Temporary Access Pass typed instead of the password: checked before the password, so it never counts
        // towards smart lockout; good only for the security-info page (to register a passkey).
        if (user is { Enabled: true } && await accessPasses.IsPassOfAsync(user.Id, password).ConfigureAwait(false))
        {
            return await TemporaryAccessPassAsync(tx, user, password, client, now).ConfigureAwait(false);
        }

        var result = user is null
            ? signIn.CheckUnknownUser(password)
            : await signIn.CheckPasswordAsync(user, password, client, now).ConfigureAwait(false);
        switch (result.Result)
        {
            case PasswordCheckResult.Success:
                return await ContinueAsync(tx with { UserId = user!.Id, Amr = [AuthenticationMethods.Password], AuthTime = now }, user, client).ConfigureAwait(false);
            case PasswordCheckResult.MustChangePassword:
                return new SignInNext(tx with { Step = SignInStep.ChangePassword, UserId = user!.Id, Amr = [AuthenticationMethods.Password], AuthTime = now });
            case PasswordCheckResult.Locked:
                var until = result.LockedUntil?.ToString("u", CultureInfo.InvariantCulture) ?? "(unknown)";
                await LogFailureAsync(tx, user, client, AadError.AccountLocked.Describe(), $"account_locked: {user!.UserPrincipalName} is locked by smart lockout after {SignInService.LockoutThreshold} wrong passwords from this kind of network, until {until}; the password was not checked", AadError.AccountLocked, $"Wait until {until}, or find the failed attempts in the sign-in log (a saved old password, or someone guessing).").ConfigureAwait(false);
                return new SignInNext(tx, AadError.AccountLocked.Describe(), SignInInputProblem.Invalid);
            case PasswordCheckResult.Disabled:
                await LogFailureAsync(tx, user, client, AadError.AccountDisabled.Describe(), $"user_disabled: {user!.UserPrincipalName} is disabled", AadError.AccountDisabled, $"gatehouse user enable {user.UserPrincipalName}").ConfigureAwait(false);
                return new SignInNext(tx, AadError.AccountDisabled.Describe(), SignInInputProblem.Invalid);
            default:
                // The user sees the same words either way (no user enumeration); the log says which.
                var message = "Your account or password is incorrect. " + AadError.InvalidCredentials.Describe();
                var (reason, fix) = user is null
                    ? ($"unknown_user: there is no user '{tx.Username}' in tenant '{tx.TenantSegment}'", "Check the user name ('gatehouse user list'); the user is told only that the account or password is incorrect.")
                    : ($"wrong_password: the password does not match {user.UserPrincipalName}", "Sign in with the current password, or have an administrator set a temporary one.");
                await LogFailureAsync(tx, user, client, message, reason, AadError.InvalidCredentials, fix).ConfigureAwait(false);
                return new SignInNext(tx, message, SignInInputProblem.Invalid);
        }
    }

    /// <summary>
    /// "Sign in with a passkey" on the user-name page (username-less: the credential's user handle names the user). A
    /// verified passkey is password-free multi-factor (<c>["fido","mfa"]</c>); a refusal is logged with its precise
    /// reason and the user-name page is shown again with a plain message.
    /// </summary>
    public async Task<SignInResult> PasskeySignInAsync(SignInTransaction tx, string? response, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var (passkey, refused) = await CheckPasskeyAsync(tx, response, null, client).ConfigureAwait(false);
        if (passkey is null)
        {
            return refused!;
        }

        var user = await directory.FindUserAsync(passkey.UserId).ConfigureAwait(false);
        if (user is null || user.TenantId != tx.TenantId || !user.Enabled)
        {
            var reason = user is null
                ? "passkey_user_unavailable: the passkey's owner no longer exists"
                : user.Enabled
                    ? $"passkey_other_tenant: the passkey of {user.UserPrincipalName} was used to sign in to tenant '{tx.TenantSegment}', which is not the user's"
                    : $"passkey_user_unavailable: {user.UserPrincipalName} is disabled";
            await LogFailureAsync(tx, user, client, PasskeyMessage(PasskeyRefusal.UserUnavailable), reason, AadError.PasskeyRefused).ConfigureAwait(false);
            return new SignInNext(ClearPasskey(tx), PasskeyMessage(PasskeyRefusal.UserUnavailable), SignInInputProblem.Invalid);
        }

        var signedIn = ClearPasskey(tx) with
        {
            UserId = user.Id,
            Username = user.UserPrincipalName,
            Amr = [AuthenticationMethods.Fido, AuthenticationMethods.Mfa],
            AuthTime = time.GetUtcNow(),
        };
        return await ContinueAsync(signedIn, user, client).ConfigureAwait(false);
    }

    /// <summary>
    /// The passkey as the second factor after the password: the passkey must be the signed-in user's own; it adds
    /// <c>fido</c> and <c>mfa</c>. "Use your authenticator app instead" (<c>method=otp</c>) goes to the code step (or to
    /// setting up the app).
    /// </summary>
    public async Task<SignInResult> PasskeyMfaAsync(SignInTransaction tx, SignInInput input, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(input);
        if (string.Equals(input.Method, "otp", StringComparison.Ordinal))
        {
            return new SignInNext(ClearPasskey(tx) with { Step = tx.MfaFallback ?? SignInStep.Otp, MfaFallback = null });
        }

        if (string.IsNullOrEmpty(input.Passkey))
        {
            return new SignInNext(tx, "Use your passkey, or choose to use your authenticator app instead.", SignInInputProblem.Invalid);
        }

        var (user, refusedUser) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refusedUser!;
        }

        if (!await attempts.TryAttemptAsync(user.UserPrincipalName, CancellationToken.None).ConfigureAwait(false))
        {
            await LogFailureAsync(tx, user, client, AadError.TooManyRequests.Describe(), $"throttled: more password, code or passkey attempts for {user.UserPrincipalName} this minute than the per-account limit allows; the passkey was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            return new SignInNext(tx, AadError.TooManyRequests.Describe(), SignInInputProblem.Throttled);
        }

        var (passkey, refused) = await CheckPasskeyAsync(tx, input.Passkey, user, client).ConfigureAwait(false);
        if (passkey is null)
        {
            return refused!;
        }

        return await ContinueAsync(ClearPasskey(tx) with { Amr = [.. tx.Amr.Union([AuthenticationMethods.Fido, AuthenticationMethods.Mfa])], MfaFallback = null }, user, client).ConfigureAwait(false);
    }

    /// <summary>
    /// Verifies a posted assertion against the options sealed in <paramref name="tx"/> (for the second factor: it must be
    /// a passkey of <paramref name="owner"/>). On a refusal the attempt is logged (<c>passkey_…</c> reasons) and the
    /// result is the same step shown again with a message.
    /// </summary>
    private async Task<(Passkey? Passkey, SignInResult? Refused)> CheckPasskeyAsync(SignInTransaction tx, string? response, User? owner, IPAddress client)
    {
        PasskeyOutcome outcome;
        if (!Gatehouse.Protocol.WebAuthn.WebAuthnAssertionForm.TryParse(response, out _, out var formError))
        {
            outcome = new PasskeyOutcome { Refusal = PasskeyRefusal.Malformed, Reason = $"{PasskeyService.ReasonFor(PasskeyRefusal.Malformed)} ({formError})" };
        }
        else if (tx.PasskeyOptions is null || tx.PasskeyExpiresAt is null)
        {
            outcome = new PasskeyOutcome { Refusal = PasskeyRefusal.Expired, Reason = $"{PasskeyService.ReasonFor(PasskeyRefusal.Expired)} (the page offered no passkey request)" };
        }
        else
        {
            outcome = await passkeys.CompleteAssertionAsync(new PasskeyCeremony(tx.PasskeyOptions, tx.PasskeyExpiresAt.Value), response!).ConfigureAwait(false);
        }

        if (outcome.Succeeded && owner is not null && outcome.Passkey!.UserId != owner.Id)
        {
            const string message = "That passkey belongs to another account. Use a passkey of the account you signed in with, or your authenticator app.";
            var other = await directory.FindUserAsync(outcome.Passkey.UserId).ConfigureAwait(false);
            await LogFailureAsync(tx, owner, client, message, $"passkey_wrong_user: {owner.UserPrincipalName} presented a passkey of {other?.UserPrincipalName ?? "another user"} as the second factor", AadError.PasskeyRefused).ConfigureAwait(false);
            return (null, new SignInNext(ClearPasskey(tx), message, SignInInputProblem.Invalid));
        }

        if (outcome.Succeeded)
        {
            return (outcome.Passkey, null);
        }

        var refusal = outcome.Refusal!.Value;
        var user = owner ?? (outcome.Passkey is { } presented ? await directory.FindUserAsync(presented.UserId).ConfigureAwait(false) : null);
        var named = outcome.Passkey is { } p ? $" (passkey '{p.Name}' of {user?.UserPrincipalName ?? "an unknown user"})" : string.Empty;
        var reason = $"passkey_{SnakeCase(refusal)}: {outcome.Reason}{named}";
        var userMessage = PasskeyMessage(refusal);
        await LogFailureAsync(tx, user, client, userMessage, reason, AadError.PasskeyRefused, PasskeyFix(refusal)).ConfigureAwait(false);
        return (null, new SignInNext(ClearPasskey(tx), userMessage, SignInInputProblem.Invalid));
    }

    /// <summary>When MFA is asked and the user has a passkey, the passkey is offered first; the authenticator app stays the alternative.</summary>
    private async Task<SignInResult> OfferPasskeyFirstAsync(SignInTransaction tx, User user)
    {
        if ((await passkeys.ListAsync(user.Id).ConfigureAwait(false)).Count == 0)
        {
            return new SignInNext(tx);
        }

        return new SignInNext(tx with { MfaFallback = tx.Step, Step = SignInStep.PasskeyMfa });
    }

    private static SignInTransaction ClearPasskey(SignInTransaction tx) => tx with { PasskeyOptions = null, PasskeyExpiresAt = null };

    /// <summary>What the user reads when a passkey is refused (the log has the precise reason).</summary>
    internal static string PasskeyMessage(PasskeyRefusal refusal) => refusal switch
    {
        PasskeyRefusal.WrongOrigin or PasskeyRefusal.WrongRpId => "This passkey was made for a different website, so it can't be used here. Check that the address in your browser is your organisation's sign-in page.",
        PasskeyRefusal.UnknownCredential => "We don't recognise this passkey. It may have been removed from your account. Sign in with your password, or use another passkey.",
        PasskeyRefusal.CounterRegression => "This passkey was refused to protect your account (it may have been copied). Sign in another way and tell your administrator.",
        PasskeyRefusal.UserVerificationMissing => "Your device didn't verify that it's you (PIN, fingerprint or face). Try again and complete the check on your device.",
        PasskeyRefusal.Expired or PasskeyRefusal.ChallengeMismatch or PasskeyRefusal.ChallengeReplayed => "The passkey request expired. Try again.",
        PasskeyRefusal.UserUnavailable => AadError.AccountDisabled.Describe(),
        _ => "That passkey didn't work. Try again, or sign in with your password.",
    };

    private static string? PasskeyFix(PasskeyRefusal refusal) => refusal switch
    {
        PasskeyRefusal.WrongOrigin or PasskeyRefusal.WrongRpId => "The passkey was made for another site or used through a look-alike page (phishing?); passkeys work only at https://<Gatehouse:PublicName>.",
        PasskeyRefusal.UnknownCredential => "The passkey was removed or never registered here ('gatehouse user passkey list <upn>').",
        PasskeyRefusal.CounterRegression => "Treat the authenticator as cloned: remove the passkey ('gatehouse user passkey remove <upn> --name <name>') and have the user register a new one.",
        PasskeyRefusal.ChallengeReplayed => "One answer of the passkey was presented twice. A double submit is harmless; if it repeats, look for something on the path that records and replays sign-in traffic.",
        _ => null,
    };

    /// <summary><c>WrongRpId</c> → <c>wrong_rp_id</c>, the log's failure-code style.</summary>
    internal static string SnakeCase(PasskeyRefusal refusal)
    {
        var name = refusal.ToString();
        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0 && !char.IsUpper(name[i - 1]))
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(name[i]));
        }

        return builder.ToString();
    }

    /// <summary>
    /// True when the sign-in may add a passkey: a sign-in with MFA within <see cref="GatehouseIdentityOptions.PasskeyRecentMfaWindow"/>,
    /// or a Temporary Access Pass sign-in within the same window.
    /// </summary>
    public bool CanRegisterPasskey(SignInTransaction tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        // The window holds for a pass too: the page re-seals its transaction on every action, so without it a pass
        // redeemed once (then removed or expired) would keep the page able to add passkeys for as long as it is open.
        return AuthenticationMethods.IsRecentStrongSignIn(tx.Amr, tx.AuthTime, time.GetUtcNow(), identityOptions.PasskeyRecentMfaWindow);
    }

    /// <summary>
    /// A security-info sign-in that has proved who it is: a user with an authenticator app or a passkey is asked for MFA
    /// (the passkey first), so that a password alone can neither add nor remove a passkey; a user with neither may only look.
    /// </summary>
    private async Task<SignInResult> ContinueToSecurityInfoAsync(SignInTransaction tx, User user, IPAddress client)
    {
        if (!tx.Amr.Contains(AuthenticationMethods.Mfa) && !tx.Amr.Contains(AuthenticationMethods.Tap)
            && (user.TotpConfirmedAt is not null || (await passkeys.ListAsync(user.Id).ConfigureAwait(false)).Count > 0))
        {
            return await OfferPasskeyFirstAsync(tx with { Step = SignInStep.Otp }, user).ConfigureAwait(false);
        }

        await log.WriteAsync(Entry(tx, user, client) with
        {
            Succeeded = true,
            Reason = $"signed_in: security info opened with {string.Join(' ', tx.Amr)}",
        }).ConfigureAwait(false);
        return new SignInNext(ClearPasskey(tx) with { Step = SignInStep.SecurityInfo, MfaFallback = null });
    }

    /// <summary>
    /// One action on the security-info page: add a passkey (the browser's registration response and a name; only when
    /// <see cref="CanRegisterPasskey"/>), rename one, or remove one. Each is written to the sign-in log.
    /// </summary>
    public async Task<SignInResult> SecurityInfoAsync(SignInTransaction tx, SignInInput input, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        ArgumentNullException.ThrowIfNull(input);
        if (!tx.SecurityInfo)
        {
            return new SignInRefused(AadError.SessionExpired, "session_expired: a security-info action was posted by a transaction that is not a security-info sign-in");
        }

        var (user, refused) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refused!;
        }

        var page = tx with { Notice = null, RegistrationOptions = null, RegistrationExpiresAt = null };
        if (!string.IsNullOrEmpty(input.Credential))
        {
            if (!CanRegisterPasskey(tx))
            {
                const string message = "To add a passkey, sign in again with multi-factor authentication (it must be recent), or with a Temporary Access Pass from your administrator.";
                await LogFailureAsync(tx, user, client, message, $"passkey_registration_refused: {user.UserPrincipalName} tried to add a passkey with {string.Join(' ', tx.Amr)}, without MFA in the last {identityOptions.PasskeyRecentMfaWindow.TotalMinutes:0} minutes or a Temporary Access Pass", AadError.PasskeyRefused).ConfigureAwait(false);
                return new SignInNext(page, message, SignInInputProblem.Invalid);
            }

            var outcome = tx.RegistrationOptions is null || tx.RegistrationExpiresAt is null
                ? new PasskeyOutcome { Refusal = PasskeyRefusal.Expired, Reason = PasskeyService.ReasonFor(PasskeyRefusal.Expired) }
                : await passkeys.CompleteRegistrationAsync(user.Id, new PasskeyCeremony(tx.RegistrationOptions, tx.RegistrationExpiresAt.Value), input.Credential, input.NewPasskeyName ?? string.Empty).ConfigureAwait(false);
            if (!outcome.Succeeded)
            {
                var message = RegistrationMessage(outcome.Refusal!.Value);
                await LogFailureAsync(tx, user, client, message, $"passkey_registration_{SnakeCase(outcome.Refusal.Value)}: {outcome.Reason}", AadError.PasskeyRefused).ConfigureAwait(false);
                return new SignInNext(page, message, SignInInputProblem.Invalid);
            }

            await log.WriteAsync(Entry(tx, user, client) with
            {
                Succeeded = true,
                Reason = $"passkey_registered: {user.UserPrincipalName} added the passkey '{outcome.Passkey!.Name}' (AAGUID {outcome.Passkey.Aaguid:D}) after signing in with {string.Join(' ', tx.Amr)}",
            }).ConfigureAwait(false);
            return new SignInNext(page with { Notice = $"Passkey '{outcome.Passkey.Name}' added. You can now sign in with it." });
        }

        if ((!string.IsNullOrEmpty(input.Remove) || !string.IsNullOrEmpty(input.PasskeyName)) && !CanRegisterPasskey(tx))
        {
            // Removing or renaming a passkey needs the same recent MFA (or pass) as adding one: a phished password alone
            // must not strip a user of the passkeys a phishing-resistant policy relies on.
            const string message = "To change your passkeys, sign in again with multi-factor authentication (it must be recent).";
            await LogFailureAsync(tx, user, client, message, $"passkey_change_refused: {user.UserPrincipalName} tried to remove or rename a passkey with {string.Join(' ', tx.Amr)}, without MFA in the last {identityOptions.PasskeyRecentMfaWindow.TotalMinutes:0} minutes", AadError.PasskeyRefused).ConfigureAwait(false);
            return new SignInNext(page, message, SignInInputProblem.Invalid);
        }

        if (!string.IsNullOrEmpty(input.Remove))
        {
            if (!await passkeys.RemoveAsync(user.Id, input.Remove).ConfigureAwait(false))
            {
                return new SignInNext(page, "There is no passkey with that name.", SignInInputProblem.Invalid);
            }

            await log.WriteAsync(Entry(tx, user, client) with { Succeeded = true, Reason = $"passkey_removed: {user.UserPrincipalName} removed the passkey '{input.Remove.Trim()}'" }).ConfigureAwait(false);
            return new SignInNext(page with { Notice = $"Passkey '{input.Remove.Trim()}' removed." });
        }

        if (!string.IsNullOrEmpty(input.PasskeyName))
        {
            return await passkeys.RenameAsync(user.Id, input.PasskeyName, input.NewName ?? string.Empty).ConfigureAwait(false) switch
            {
                null => new SignInNext(page with { Notice = $"Passkey renamed to '{input.NewName!.Trim()}'." }),
                PasskeyRefusal.UnknownCredential => new SignInNext(page, "There is no passkey with that name.", SignInInputProblem.Invalid),
                _ => new SignInNext(page, NameMessage, SignInInputProblem.Invalid),
            };
        }

        return new SignInNext(page, "Choose what to do: add, rename or remove a passkey.", SignInInputProblem.Invalid);
    }

    private const string NameMessage = "Give the passkey a name of 1 to 64 characters (letters, digits, spaces, punctuation) that none of your other passkeys has.";

    private static string RegistrationMessage(PasskeyRefusal refusal) => refusal switch
    {
        PasskeyRefusal.InvalidName => NameMessage,
        PasskeyRefusal.CredentialAlreadyRegistered => "This passkey is already registered.",
        PasskeyRefusal.AuthenticatorNotAllowed => "Your organisation doesn't allow passkeys from this kind of authenticator. Use another device or security key, or ask your administrator which ones are allowed.",
        PasskeyRefusal.UserVerificationMissing => "Your device didn't verify that it's you (PIN, fingerprint or face). Try again and complete the check on your device.",
        PasskeyRefusal.Expired or PasskeyRefusal.ChallengeMismatch => "The request to add a passkey expired. Try again.",
        PasskeyRefusal.WrongOrigin or PasskeyRefusal.WrongRpId => "This passkey was made for a different website. Add it from your organisation's sign-in page.",
        _ => "The passkey could not be added. Try again, or use another device or security key.",
    };

    /// <summary>
    /// A Temporary Access Pass in the password field. On the security-info page it signs the user in with <c>["tap"]</c>
    /// (a single-use pass is spent); anywhere else (a host, a device) it is refused without being spent.
    /// </summary>
    private async Task<SignInResult> TemporaryAccessPassAsync(SignInTransaction tx, User user, string password, IPAddress client, DateTimeOffset now)
    {
        if (!tx.SecurityInfo)
        {
            const string message = "A Temporary Access Pass can't sign you in here. Use it on your organisation's security-info page (/common/mysignins/security-info) to add a passkey, then sign in with the passkey.";
            var what = tx.IsDevice ? $"the device sign-in of {DeviceApplicationName(tx)}" : $"a sign-in to {tx.HostName}";
            await LogFailureAsync(tx, user, client, message, $"tap_not_allowed: {user.UserPrincipalName} entered a Temporary Access Pass for {what}; a pass only opens the security-info page to register a passkey (the pass was not spent)", AadError.InvalidCredentials, $"Have {user.UserPrincipalName} open https://<public-name>/common/mysignins/security-info with the pass and add a passkey.").ConfigureAwait(false);
            return new SignInNext(tx, message, SignInInputProblem.Invalid);
        }

        switch (await accessPasses.RedeemAsync(user.Id, password).ConfigureAwait(false))
        {
            case TapRedemption.Accepted:
                await log.WriteAsync(Entry(tx, user, client) with
                {
                    Succeeded = true,
                    Reason = $"tap_used: {user.UserPrincipalName} signed in to the security-info page with a Temporary Access Pass",
                    Methods = [AuthenticationMethods.Tap],
                }).ConfigureAwait(false);
                return await ContinueAsync(tx with { UserId = user.Id, Amr = [AuthenticationMethods.Tap], AuthTime = now }, user, client).ConfigureAwait(false);
            default:
                const string spentMessage = "That Temporary Access Pass has expired or was already used. Ask your administrator for a new one.";
                await LogFailureAsync(tx, user, client, spentMessage, $"tap_expired_or_used: {user.UserPrincipalName} entered a Temporary Access Pass that has expired or (single use) was already used", AadError.InvalidCredentials, $"gatehouse user tap create {user.UserPrincipalName} --lifetime 1h").ConfigureAwait(false);
                return new SignInNext(tx, spentMessage, SignInInputProblem.Invalid);
        }
    }

    /// <summary>The forced password change: at least <see cref="MinimumPasswordLength"/> characters and not the current one.</summary>
    public async Task<SignInResult> ChangePasswordAsync(SignInTransaction tx, string? newPassword, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (!tx.Amr.Contains(AuthenticationMethods.Password))
        {
            return new SignInRefused(AadError.SessionExpired, "session_expired: the password change was posted by a transaction that did not pass the password step");
        }

        var (user, refused) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refused!;
        }

        if (string.IsNullOrEmpty(newPassword) || newPassword.Length < MinimumPasswordLength || newPassword.Length > 256
            || await hasher.VerifyAsync(user.PasswordHash, newPassword).ConfigureAwait(false) != PasswordVerification.Failed)
        {
            return new SignInNext(tx, AadError.WeakPassword.Describe(), SignInInputProblem.Invalid);
        }

        await directory.SetPasswordAsync(user, newPassword, mustChange: false).ConfigureAwait(false);
        return await ContinueAsync(tx, user, client).ConfigureAwait(false);
    }

    /// <summary>
    /// Checks a one-time code of <paramref name="user"/>'s confirmed authenticator app: counted against the per-account
    /// attempt limit the password shares, and a code is accepted once (replay protection). Writes nothing to the sign-in
    /// log: the code step below logs for the pages, and the hold screen's session writes its own single row.
    /// </summary>
    public async Task<OneTimeCodeOutcome> CheckOneTimeCodeAsync(User user, string? code, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!await attempts.TryAttemptAsync(user.UserPrincipalName, cancellationToken).ConfigureAwait(false))
        {
            return OneTimeCodeOutcome.Throttled;
        }

        var trimmed = code?.Trim();
        return !string.IsNullOrEmpty(trimmed) && await signIn.VerifyTotpAsync(user, trimmed, now, cancellationToken).ConfigureAwait(false)
            ? OneTimeCodeOutcome.Accepted
            : OneTimeCodeOutcome.Wrong;
    }

    /// <summary>The one-time code step: a right code adds <c>mfa</c> and <c>otp</c> to the sign-in's methods.</summary>
    public async Task<SignInResult> OneTimeCodeAsync(SignInTransaction tx, string? code, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var (user, refused) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refused!;
        }

        switch (await CheckOneTimeCodeAsync(user, code, time.GetUtcNow()).ConfigureAwait(false))
        {
            case OneTimeCodeOutcome.Throttled:
                await LogFailureAsync(tx, user, client, AadError.TooManyRequests.Describe(), $"throttled: more password or code attempts for {user.UserPrincipalName} this minute than the per-account limit allows; the one-time code was not checked", AadError.TooManyRequests).ConfigureAwait(false);
                return new SignInNext(tx, AadError.TooManyRequests.Describe(), SignInInputProblem.Throttled);
            case OneTimeCodeOutcome.Wrong:
                var reason = string.IsNullOrWhiteSpace(code)
                    ? $"wrong_one_time_code: {user.UserPrincipalName} entered no code"
                    : $"wrong_one_time_code: the code {user.UserPrincipalName} entered is not the authenticator app's code for now (±30 s), or it was already used";
                await LogFailureAsync(tx, user, client, AadError.InvalidOtp.Describe(), reason, AadError.WrongOneTimeCode, "Enter the current code from the authenticator app; if codes keep failing, check the device's clock, or reset the method ('gatehouse user mfa').").ConfigureAwait(false);
                return new SignInNext(tx, AadError.InvalidOtp.Describe(), SignInInputProblem.Invalid);
            default:
                return await ContinueAsync(tx with { Amr = [.. tx.Amr.Union([AuthenticationMethods.Mfa, AuthenticationMethods.Otp])] }, user, client).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The first code from the authenticator app being set up: it confirms the method (the secret sealed in the
    /// transaction is stored for the user only now) and counts as the second factor of this sign-in.
    /// </summary>
    public async Task<SignInResult> EnrollTotpAsync(SignInTransaction tx, string? code, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);

        // Only a transaction that passed the password step reaches this step (it is sealed); check anyway.
        if (tx.UserId is null || tx.TotpEnrollmentSecret is null || !tx.Amr.Contains(AuthenticationMethods.Password))
        {
            return new SignInRefused(AadError.SessionExpired, "session_expired: the enrolment step was posted by a transaction that did not pass the password step");
        }

        var (user, refused) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refused!;
        }

        if (!await attempts.TryAttemptAsync(user.UserPrincipalName, CancellationToken.None).ConfigureAwait(false))
        {
            await LogFailureAsync(tx, user, client, AadError.TooManyRequests.Describe(), $"throttled: more password or code attempts for {user.UserPrincipalName} this minute than the per-account limit allows; the enrolment code was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            return new SignInNext(tx, AadError.TooManyRequests.Describe(), SignInInputProblem.Throttled);
        }

        var trimmed = code?.Trim();
        if (string.IsNullOrEmpty(trimmed) || !await directory.ConfirmTotpAsync(user, tx.TotpEnrollmentSecret, trimmed).ConfigureAwait(false))
        {
            var reason = string.IsNullOrEmpty(trimmed)
                ? $"wrong_enrollment_code: {user.UserPrincipalName} entered no code while setting up an authenticator app"
                : $"wrong_enrollment_code: the first code from the authenticator app {user.UserPrincipalName} is setting up does not match the key on the page (or was already used); the method is not stored";
            await LogFailureAsync(tx, user, client, AadError.InvalidEnrollmentOtp.Describe(), reason, AadError.WrongOneTimeCode, "Scan the QR code on the page again, check the device's clock, and enter the code the app shows now.").ConfigureAwait(false);
            return new SignInNext(tx, AadError.InvalidEnrollmentOtp.Describe(), SignInInputProblem.Invalid);
        }

        return await ContinueAsync(tx with { Amr = [.. tx.Amr.Union([AuthenticationMethods.Mfa, AuthenticationMethods.Otp])], TotpEnrollmentSecret = null }, user, client).ConfigureAwait(false);
    }

    /// <summary>
    /// The last question. An authorize sign-in: Yes stores the consent for the host and goes through the policies once
    /// more; No ends it (AADSTS65004). A device sign-in: Continue goes through the policies once more; Cancel denies the device code.
    /// </summary>
    public async Task<SignInResult> ConsentAsync(SignInTransaction tx, string? answer, IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (answer is not ("allow" or "deny"))
        {
            return new SignInNext(tx, tx.IsDevice ? "Choose Continue or Cancel." : "Choose Yes or No.", SignInInputProblem.Invalid);
        }

        var (user, refused) = await FindEnabledUserAsync(tx, client).ConfigureAwait(false);
        if (user is null)
        {
            return refused!;
        }

        if (answer == "allow")
        {
            if (!tx.IsDevice)
            {
                await consents.GrantAsync(user.Id, tx.HostId, time.GetUtcNow()).ConfigureAwait(false);
            }

            // Through the policies again: the code is issued (or approved) only after an evaluation that allows it.
            return await ContinueAsync(tx, user, client, consented: true).ConfigureAwait(false);
        }

        if (!tx.IsDevice)
        {
            const string fix = "Sign in again and answer Yes to connect.";
            var reason = $"consent_denied: {user.UserPrincipalName} answered No to 'Allow remote desktop connection to {tx.HostName}?'";
            await LogFailureAsync(tx, user, client, AadError.ConsentDenied.Describe(), reason, AadError.ConsentDenied, fix).ConfigureAwait(false);
            return new SignInRefused(AadError.ConsentDenied, reason, fix, CorrelationId: tx.Id, Forbidden: true);
        }

        await deviceCodes.DenyAsync(tx.DeviceCodeHash!, user.Id).ConfigureAwait(false);
        var deviceFix = tx.IsRdpDevice
            ? "If it was you, connect again and answer Continue; if not, someone tried to get you to sign in their connection (device-code phishing)."
            : "If it was you, run 'gatehouse login' again and answer Continue; if not, someone tried to get you to sign in their device (device-code phishing).";
        await LogFailureAsync(tx, user, client, AadError.DeviceDenied.Describe(), $"device_denied: {user.UserPrincipalName} answered Cancel to 'Are you trying to sign in to {DeviceApplicationName(tx)}?'; the device that polls gets access_denied", AadError.DeviceDenied, deviceFix).ConfigureAwait(false);
        return new SignInDeviceDenied(tx, user.UserPrincipalName);
    }

    /// <summary>What the last question of a device sign-in names: the Gatehouse CLI, "vm1 (Remote Desktop)", or "Remote Desktop".</summary>
    public static string DeviceApplicationName(SignInTransaction tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (!tx.IsRdpDevice)
        {
            return GatehouseCliClient.DisplayName;
        }

        return tx.HostId == Guid.Empty ? RemoteDesktopName : $"{tx.HostName} ({RemoteDesktopName})";
    }

    /// <summary>
    /// After a proof: ask for what is still missing (password change, MFA, consent), or finish. Conditional Access is
    /// evaluated with the methods done so far: allowed goes on; refused-but-satisfiable-with-MFA asks for the one-time
    /// code (or sets up the app); blocked, or a control these pages cannot do, ends the sign-in with AADSTS53003.
    /// </summary>
    private async Task<SignInResult> ContinueAsync(SignInTransaction tx, User user, IPAddress client, bool consented = false)
    {
        // A Temporary Access Pass proves nothing about the password: it never leads to setting one.
        if (user.MustChangePassword && !tx.Amr.Contains(AuthenticationMethods.Tap))
        {
            return new SignInNext(tx with { Step = SignInStep.ChangePassword });
        }

        if (tx.SecurityInfo)
        {
            return await ContinueToSecurityInfoAsync(tx, user, client).ConfigureAwait(false);
        }

        if (tx.IsRdpDevice && await RoleRefusalAsync(tx, user, client).ConfigureAwait(false) is { } noRole)
        {
            return noRole;
        }

        var request = new AccessRequest
        {
            UserId = user.Id,
            HostId = tx.HostId,
            ClientAddress = client,
            AuthenticationMethods = tx.Amr,
            AuthenticatedAt = tx.AuthTime ?? time.GetUtcNow(),
            Application = (tx.IsDevice && !tx.IsRdpDevice) || tx.IsPortal ? GatehouseApplications.AdminApi : RdpApplications.AzureWindowsVmSignIn, // Counts for both RDP applications (RdpApplications.Both).
        };

        // A sign-in with no host (the CLI, or Remote Desktop before the host is picked) evaluates the application's policies only.
        var decision = tx.HostId == Guid.Empty
            ? await access.EvaluateApplicationConditionalAccessAsync(request).ConfigureAwait(false)
            : await access.EvaluateConditionalAccessAsync(request).ConfigureAwait(false);
        var mfaWouldDo = !tx.Amr.Contains(AuthenticationMethods.Mfa) && decision is { Refusal: AccessRefusal.PolicyControlMissing, Policies.SatisfiableWithMfa: true };
        if (!decision.Allowed && !mfaWouldDo)
        {
            return await RefuseAsync(tx, user, client, decision).ConfigureAwait(false);
        }

        if (!tx.Amr.Contains(AuthenticationMethods.Mfa))
        {
            switch (signIn.GetMfaRequirement(user, decision.Host, decision.Policies))
            {
                case MfaRequirement.Verify:
                    return await OfferPasskeyFirstAsync(tx with { Step = SignInStep.Otp }, user).ConfigureAwait(false);
                case MfaRequirement.Enroll:
                    // An enrolment the administrator started keeps its secret (the user may have scanned it already).
                    var secret = tx.TotpEnrollmentSecret ?? directory.PendingTotpSecret(user) ?? DirectoryService.NewTotpSecret();
                    return await OfferPasskeyFirstAsync(tx with { Step = SignInStep.EnrollTotp, TotpEnrollmentSecret = secret }, user).ConfigureAwait(false);
                default:
                    break;
            }
        }

        if (!decision.Allowed)
        {
            // Unreachable while GetMfaRequirement asks whenever MFA would satisfy the policies; refuse rather than issue.
            return await RefuseAsync(tx, user, client, decision).ConfigureAwait(false);
        }

        // A device sign-in asks every time (device-code phishing); an RDP sign-in remembers the answer per host.
        // The portal is first-party and signs in to no host: nothing to consent to.
        if (!consented && !tx.IsPortal && (tx.IsDevice || !await consents.HasConsentAsync(user.Id, tx.HostId, time.GetUtcNow()).ConfigureAwait(false)))
        {
            return new SignInNext(tx with { Step = SignInStep.Consent });
        }

        return tx.IsDevice
            ? await CompleteDeviceAsync(tx, user, client, decision).ConfigureAwait(false)
            : await CompleteAsync(tx, user, client, decision, consented).ConfigureAwait(false);
    }

    /// <summary>
    /// An RDP device sign-in needs a role that lets the user sign in to its host (to some host, when it names none):
    /// the device code is what the gateway acts on, so it is not approved for a user the gateway would refuse anyway.
    /// </summary>
    private async Task<SignInRefused?> RoleRefusalAsync(SignInTransaction tx, User user, IPAddress client)
    {
        var hosts = await access.HostsUserMaySignInToAsync(user, int.MaxValue).ConfigureAwait(false);
        if (tx.HostId == Guid.Empty ? hosts.Count > 0 : hosts.Any(h => h.Id == tx.HostId))
        {
            return null;
        }

        var (reason, fix) = tx.HostId == Guid.Empty
            ? ($"no_role_assignment: {user.UserPrincipalName} has no role assignment that lets them sign in to any host", $"gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee {user.UserPrincipalName} --scope /hosts/<host>")
            : ($"no_role_assignment: {user.UserPrincipalName} on {tx.HostName}: no role assignment at the host, its host group or / lets them sign in", $"gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee {user.UserPrincipalName} --scope /hosts/{tx.HostName}");
        await LogFailureAsync(tx, user, client, AadError.NoRole.Describe(), reason, AadError.NoRole, fix).ConfigureAwait(false);
        return new SignInRefused(AadError.NoRole, reason, fix, CorrelationId: tx.Id, Forbidden: true);
    }

    /// <summary>Ends the sign-in on a Conditional Access refusal, logged with every policy's outcome.</summary>
    private async Task<SignInResult> RefuseAsync(SignInTransaction tx, User user, IPAddress client, AccessDecision decision)
    {
        // Authentication strengths (issue 19): the one question the pages ask is decision.Policies.NextStrengthStep(tx.Amr).
        // AskAppCode never gets here (the one-time code step is asked as for MFA); NeedsPasskey and Unachievable are
        // refused with the strength's name and the fix. The passkey step offers a passkey on NeedsPasskey instead.
        var strengthStep = decision.Policies?.NextStrengthStep(tx.Amr) ?? StrengthStep.Satisfied;
        if (decision.Refusal is AccessRefusal.PolicyControlMissing && strengthStep is StrengthStep.NeedsPasskey
            && !tx.Amr.Contains(AuthenticationMethods.Fido) && !tx.Amr.Contains(AuthenticationMethods.Otp) && tx.Step != SignInStep.PasskeyMfa
            && (await passkeys.ListAsync(user.Id).ConfigureAwait(false)).Count > 0)
        {
            // A passkey would meet the strength and the user has one: ask for it (the authenticator app cannot help, so
            // "use the app instead" leads back here and to the refusal with the fix).
            return new SignInNext(ClearPasskey(tx) with { MfaFallback = null, Step = SignInStep.PasskeyMfa });
        }

        var error = decision.Refusal switch
        {
            AccessRefusal.PolicyControlMissing when strengthStep is StrengthStep.NeedsPasskey or StrengthStep.Unachievable
                => AadError.AuthenticationStrengthUnmet.With(decision.Policies!.UnmetStrengths[0].Requirement.Strength.Name, decision.Fix ?? string.Empty),
            AccessRefusal.PolicyBlocked => AadError.BlockedByConditionalAccess,
            AccessRefusal.PolicyControlMissing => AadError.MethodNotAvailable.With(string.Join(" or ", (decision.Policies?.MissingControls ?? []).Select(ConditionalAccessEvaluator.DescribeControl))),
            AccessRefusal.ReauthenticationRequired => AadError.ReauthenticationRequired,
            AccessRefusal.UnknownHost => AadError.UnknownHost,
            _ => AadError.InvalidCredentials,
        };
        await LogFailureAsync(tx, user, client, error.Describe(), decision.Reason, error, decision.Fix, decision.PoliciesJson).ConfigureAwait(false);
        return new SignInRefused(error, decision.Reason, decision.Fix, decision.PoliciesJson, tx.Id, Forbidden: true);
    }

    private async Task<SignInResult> CompleteAsync(SignInTransaction tx, User user, IPAddress client, AccessDecision decision, bool consented)
    {
        var code = await codes.IssueAsync(new AuthorizationCodeRequest
        {
            ClientId = tx.ClientId,
            RedirectUri = tx.RedirectUri,
            UserId = user.Id,
            Scope = tx.Scope,
            HostId = tx.IsPortal ? null : tx.HostId,
            CodeChallenge = tx.CodeChallenge,
            CodeChallengeMethod = tx.CodeChallengeMethod,
            Amr = tx.Amr,
            AuthTime = tx.AuthTime ?? time.GetUtcNow(),
        }).ConfigureAwait(false);
        await log.WriteAsync(Entry(tx, user, client) with
        {
            Succeeded = true,
            Reason = $"signed_in: authorization code issued for {(tx.IsPortal ? GatehousePortalClient.DisplayName : tx.HostName)} with {string.Join(' ', tx.Amr)}{(consented ? ", consent given now" : string.Empty)}; Conditional Access satisfied",
            PoliciesJson = decision.PoliciesJson,
        }).ConfigureAwait(false);
        return new SignInCodeIssued(tx, code);
    }

    /// <summary>Approves the device code (the polling client gets its answer); a code that expired or was answered meanwhile is refused.</summary>
    private async Task<SignInResult> CompleteDeviceAsync(SignInTransaction tx, User user, IPAddress client, AccessDecision decision)
    {
        var authTime = tx.AuthTime ?? time.GetUtcNow();
        if (!await deviceCodes.ApproveAsync(tx.DeviceCodeHash!, user.Id, tx.Amr, authTime).ConfigureAwait(false))
        {
            var reason = $"device_code_expired: {user.UserPrincipalName} finished the sign-in after the device code expired (or was answered in another window); nothing was approved";
            var fix = tx.IsRdpDevice
                ? "Connect again and finish the sign-in within 15 minutes."
                : "Run 'gatehouse login' again and finish the sign-in within 15 minutes.";
            await LogFailureAsync(tx, user, client, AadError.DeviceCodeExpired.Describe(), reason, AadError.DeviceCodeExpired, fix, decision.PoliciesJson).ConfigureAwait(false);
            return new SignInRefused(AadError.DeviceCodeExpired, reason, fix, decision.PoliciesJson, tx.Id);
        }

        var what = tx.IsRdpDevice ? DeviceApplicationName(tx) : $"{GatehouseCliClient.DisplayName} (admin API)";
        await log.WriteAsync(Entry(tx, user, client) with
        {
            Succeeded = true,
            Reason = $"signed_in: device code approved for {what} with {string.Join(' ', tx.Amr)}; Conditional Access satisfied",
            PoliciesJson = decision.PoliciesJson,
        }).ConfigureAwait(false);
        return new SignInDeviceApproved(tx, user.UserPrincipalName);
    }

    /// <summary>The user of a transaction past the password step, if still there and enabled; otherwise the logged AADSTS50057 refusal.</summary>
    private async Task<(User? User, SignInRefused? Refused)> FindEnabledUserAsync(SignInTransaction tx, IPAddress client)
    {
        var user = tx.UserId is { } id ? await directory.FindUserAsync(id).ConfigureAwait(false) : null;
        if (user is not null && user.Enabled)
        {
            return (user, null);
        }

        var reason = user is null
            ? $"user_not_found: the user who passed the password step ({tx.Username}) no longer exists"
            : $"user_disabled: {user.UserPrincipalName} was disabled during the sign-in";
        var fix = user is null ? null : $"gatehouse user enable {user.UserPrincipalName}";
        await LogFailureAsync(tx, user, client, AadError.AccountDisabled.Describe(), reason, AadError.AccountDisabled, fix).ConfigureAwait(false);
        return (null, new SignInRefused(AadError.AccountDisabled, reason, fix, CorrelationId: tx.Id));
    }

    /// <summary>The log entry of this sign-in so far: who, where, from which address, with which methods.</summary>
    private static SignInEntry Entry(SignInTransaction tx, User? user, IPAddress client) => new()
    {
        TenantId = tx.TenantId,
        CorrelationId = tx.Id,
        Protocol = IdpSignInLog.Protocol,
        Succeeded = false,
        Reason = string.Empty,
        UserId = user?.Id ?? tx.UserId,
        UserPrincipalName = user?.UserPrincipalName ?? tx.Username,
        Application = tx.ClientId,
        HostName = tx.HostId == Guid.Empty ? null : tx.HostName,
        ClientAddress = client.ToString(),
        Methods = tx.Amr,
    };

    private Task LogFailureAsync(SignInTransaction tx, User? user, IPAddress client, string? userMessage, string reason, AadError error, string? fix = null, string? policiesJson = null) =>
        log.WriteAsync(Entry(tx, user, client) with
        {
            Reason = reason,
            Code = error.Code == 0 ? error.OAuthError : $"AADSTS{error.Code}",
            UserMessage = userMessage,
            Fix = fix,
            PoliciesJson = policiesJson,
        });
}
