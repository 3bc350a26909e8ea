using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Gatehouse.Access;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Antiforgery;

namespace Gatehouse.Idp;

/// <summary>
/// <c>/{tenant}/oauth2/v2.0/authorize</c>: validates the request (client, redirect URI, scope and its host) and walks
/// the user through user name → password → forced password change → one-time code → consent → code.
/// Requests that fail before the redirect URI is known to be registered get an error page, never a redirect
/// (RFC 6749 §4.1.2.1); so do requests to the <c>ms-appx-web:</c> redirect a browser cannot follow.
/// Once the password is verified, the tenant's Conditional Access policies decide what else the sign-in needs (the
/// one-time code when MFA would satisfy them) or stop it (AADSTS53003); no role is required here, as in Entra (the
/// gateway checks roles). Every attempt that ends or fails a step is written to the sign-in log (protocol
/// <c>browser</c>, correlation id = the transaction id, the same for every step of one sign-in); never a password or code.
/// The device sign-in of <c>gatehouse login</c> (<see cref="DeviceLoginEndpoint"/>) walks the same steps with a
/// transaction that names its device code instead of a host: Conditional Access for the admin API application, the
/// "Are you trying to sign in to Gatehouse CLI?" question every time, and the device code approved (or denied) at the end.
/// </summary>
internal sealed class AuthorizeEndpoint(
    DirectoryService directory,
    SignInService signIn,
    AccessService access,
    ConsentService consents,
    AuthorizationCodeService codes,
    DeviceCodeService deviceCodes,
    PasswordHasher hasher,
    AccountAttemptLimiter attempts,
    SignInTransactionProtector transactions,
    IAntiforgery antiforgery,
    IdpUrls urls,
    IdpSignInLog log,
    TimeProvider time)
{
    private const int MinimumPasswordLength = 12;

    /// <summary>The issuer authenticator apps show next to the account (as <see cref="DirectoryService.BeginTotpEnrollmentAsync"/> uses).</summary>
    private const string TotpIssuer = "Gatehouse";

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
        };
        var hint = Single(query, "login_hint");
        await RenderAsync(context, transaction, StatusCodes.Status200OK, error: null, prefill: hint).ConfigureAwait(false);
    }

    public async Task PostAsync(HttpContext context, string tenant)
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

        await StepAsync(context, read.Form, tenant).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves the posted transaction on by one step: an authorize transaction for <paramref name="tenant"/>, or with
    /// <paramref name="tenant"/> null (<c>/devicelogin</c>) a device transaction.
    /// </summary>
    internal async Task StepAsync(HttpContext context, IFormCollection form, string? tenant)
    {
        if (!transactions.TryUnprotect(form[SignInTransactionProtector.FormField], context.Request.Cookies[SignInTransactionProtector.BrowserCookie], out var tx)
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

        switch (tx.Step)
        {
            case SignInStep.Username:
                await UsernameAsync(context, tx, form).ConfigureAwait(false);
                break;
            case SignInStep.Password:
                await PasswordAsync(context, tx, form).ConfigureAwait(false);
                break;
            case SignInStep.ChangePassword:
                await ChangePasswordAsync(context, tx, form).ConfigureAwait(false);
                break;
            case SignInStep.Otp:
                await OtpAsync(context, tx, form).ConfigureAwait(false);
                break;
            case SignInStep.EnrollTotp:
                await EnrollTotpAsync(context, tx, form).ConfigureAwait(false);
                break;
            default:
                await ConsentAsync(context, tx, form).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Starts the sign-in that approves <paramref name="deviceCode"/> (found from the user code): the user name page.</summary>
    internal Task BeginDeviceSignInAsync(HttpContext context, Gatehouse.Storage.DeviceCode deviceCode)
    {
        var browser = EnsureBrowserCookie(context);
        var transaction = new SignInTransaction
        {
            TenantSegment = deviceCode.TenantId.ToString("D"),
            TenantId = deviceCode.TenantId,
            ClientId = deviceCode.ClientId,
            RedirectUri = string.Empty,
            Scope = deviceCode.Scope,
            HostId = Guid.Empty,
            HostName = string.Empty,
            Step = SignInStep.Username,
            BrowserBinding = SignInTransactionProtector.Bind(browser),
            DeviceCodeHash = deviceCode.DeviceCodeHash,
        };
        return RenderAsync(context, transaction, StatusCodes.Status200OK, error: null);
    }

    private async Task UsernameAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var username = ((string?)form["username"])?.Trim();
        if (string.IsNullOrEmpty(username) || username.Length > 256 || Gatehouse.Protocol.DisplayText.ContainsUnsafe(username))
        {
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, "Enter a valid email address or user name.").ConfigureAwait(false);
            return;
        }

        // The next page is the password page whether or not the account exists: no user enumeration.
        await RenderAsync(context, tx with { Step = SignInStep.Password, Username = username }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
    }

    private async Task PasswordAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var password = (string?)form["password"];
        if (string.IsNullOrEmpty(password))
        {
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, "Please enter your password.").ConfigureAwait(false);
            return;
        }

        if (!attempts.TryAttempt(tx.Username!))
        {
            await LogFailureAsync(context, tx, null, null, $"throttled: more password or code attempts for '{tx.Username}' this minute than the per-account limit allows (a spray or a stuck client?); the password was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            await RenderAsync(context, tx, StatusCodes.Status429TooManyRequests, AadError.TooManyRequests.Describe()).ConfigureAwait(false);
            return;
        }

        var now = time.GetUtcNow();
        var user = await directory.FindUserByUpnAsync(tx.Username!).ConfigureAwait(false);
        if (user is not null && user.TenantId != tx.TenantId)
        {
            user = null;
        }

        var result = user is null
            ? signIn.CheckUnknownUser(password)
            : await signIn.CheckPasswordAsync(user, password, ClientAddress(context), now).ConfigureAwait(false);
        switch (result.Result)
        {
            case PasswordCheckResult.Success:
                await ContinueAsync(context, tx with { UserId = user!.Id, Amr = ["pwd"], AuthTime = now }, user).ConfigureAwait(false);
                return;
            case PasswordCheckResult.MustChangePassword:
                await RenderAsync(context, tx with { Step = SignInStep.ChangePassword, UserId = user!.Id, Amr = ["pwd"], AuthTime = now }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
                return;
            case PasswordCheckResult.Locked:
                var until = result.LockedUntil?.ToString("u", CultureInfo.InvariantCulture) ?? "(unknown)";
                await LogFailureAsync(context, tx, user, AadError.AccountLocked.Describe(), $"account_locked: {user!.UserPrincipalName} is locked by smart lockout after {SignInService.LockoutThreshold} wrong passwords from this kind of network, until {until}; the password was not checked", AadError.AccountLocked, $"Wait until {until}, or find the failed attempts in the sign-in log (a saved old password, or someone guessing).").ConfigureAwait(false);
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.AccountLocked.Describe()).ConfigureAwait(false);
                return;
            case PasswordCheckResult.Disabled:
                await LogFailureAsync(context, tx, user, AadError.AccountDisabled.Describe(), $"user_disabled: {user!.UserPrincipalName} is disabled", AadError.AccountDisabled, $"gatehouse user enable {user.UserPrincipalName}").ConfigureAwait(false);
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.AccountDisabled.Describe()).ConfigureAwait(false);
                return;
            default:
                // The user sees the same words either way (no user enumeration); the log says which.
                var message = "Your account or password is incorrect. " + AadError.InvalidCredentials.Describe();
                var (reason, fix) = user is null
                    ? ($"unknown_user: there is no user '{tx.Username}' in tenant '{tx.TenantSegment}'", "Check the user name ('gatehouse user list'); the user is told only that the account or password is incorrect.")
                    : ($"wrong_password: the password does not match {user.UserPrincipalName}", "Sign in with the current password, or have an administrator set a temporary one.");
                await LogFailureAsync(context, tx, user, message, reason, AadError.InvalidCredentials, fix).ConfigureAwait(false);
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, message).ConfigureAwait(false);
                return;
        }
    }

    private async Task ChangePasswordAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var user = await FindEnabledUserAsync(context, tx).ConfigureAwait(false);
        if (user is null)
        {
            return;
        }

        var newPassword = (string?)form["new_password"];
        if (string.IsNullOrEmpty(newPassword) || newPassword.Length < MinimumPasswordLength || newPassword.Length > 256)
        {
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.WeakPassword.Describe()).ConfigureAwait(false);
            return;
        }

        if (hasher.Verify(user.PasswordHash, newPassword) != PasswordVerification.Failed)
        {
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.WeakPassword.Describe()).ConfigureAwait(false);
            return;
        }

        await directory.SetPasswordAsync(user, newPassword, mustChange: false).ConfigureAwait(false);
        await ContinueAsync(context, tx, user).ConfigureAwait(false);
    }

    private async Task OtpAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var user = await FindEnabledUserAsync(context, tx).ConfigureAwait(false);
        if (user is null)
        {
            return;
        }

        if (!attempts.TryAttempt(user.UserPrincipalName))
        {
            await LogFailureAsync(context, tx, user, AadError.TooManyRequests.Describe(), $"throttled: more password or code attempts for {user.UserPrincipalName} this minute than the per-account limit allows; the one-time code was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            await RenderAsync(context, tx, StatusCodes.Status429TooManyRequests, AadError.TooManyRequests.Describe()).ConfigureAwait(false);
            return;
        }

        var code = ((string?)form["otp"])?.Trim();
        if (string.IsNullOrEmpty(code) || !await signIn.VerifyTotpAsync(user, code, time.GetUtcNow()).ConfigureAwait(false))
        {
            var reason = string.IsNullOrEmpty(code)
                ? $"wrong_one_time_code: {user.UserPrincipalName} entered no code"
                : $"wrong_one_time_code: the code {user.UserPrincipalName} entered is not the authenticator app's code for now (±30 s), or it was already used";
            await LogFailureAsync(context, tx, user, AadError.InvalidOtp.Describe(), reason, AadError.WrongOneTimeCode, "Enter the current code from the authenticator app; if codes keep failing, check the device's clock, or reset the method ('gatehouse user mfa').").ConfigureAwait(false);
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.InvalidOtp.Describe()).ConfigureAwait(false);
            return;
        }

        await ContinueAsync(context, tx with { Amr = [.. tx.Amr.Union(["mfa", "otp"])] }, user).ConfigureAwait(false);
    }

    /// <summary>
    /// The first code from the authenticator app being set up: it confirms the method (the secret sealed in the
    /// transaction is stored for the user only now) and counts as the second factor of this sign-in.
    /// </summary>
    private async Task EnrollTotpAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        // Only a transaction that passed the password step reaches this step (it is sealed); check anyway.
        if (tx.UserId is null || tx.TotpEnrollmentSecret is null || !tx.Amr.Contains("pwd"))
        {
            await ErrorAsync(context, AadError.SessionExpired).ConfigureAwait(false);
            return;
        }

        var user = await FindEnabledUserAsync(context, tx).ConfigureAwait(false);
        if (user is null)
        {
            return;
        }

        if (!attempts.TryAttempt(user.UserPrincipalName))
        {
            await LogFailureAsync(context, tx, user, AadError.TooManyRequests.Describe(), $"throttled: more password or code attempts for {user.UserPrincipalName} this minute than the per-account limit allows; the enrolment code was not checked", AadError.TooManyRequests).ConfigureAwait(false);
            await RenderAsync(context, tx, StatusCodes.Status429TooManyRequests, AadError.TooManyRequests.Describe()).ConfigureAwait(false);
            return;
        }

        var code = ((string?)form["otp"])?.Trim();
        if (string.IsNullOrEmpty(code) || !await directory.ConfirmTotpAsync(user, tx.TotpEnrollmentSecret, code).ConfigureAwait(false))
        {
            var reason = string.IsNullOrEmpty(code)
                ? $"wrong_enrollment_code: {user.UserPrincipalName} entered no code while setting up an authenticator app"
                : $"wrong_enrollment_code: the first code from the authenticator app {user.UserPrincipalName} is setting up does not match the key on the page (or was already used); the method is not stored";
            await LogFailureAsync(context, tx, user, AadError.InvalidEnrollmentOtp.Describe(), reason, AadError.WrongOneTimeCode, "Scan the QR code on the page again, check the device's clock, and enter the code the app shows now.").ConfigureAwait(false);
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.InvalidEnrollmentOtp.Describe()).ConfigureAwait(false);
            return;
        }

        await ContinueAsync(context, tx with { Amr = [.. tx.Amr.Union(["mfa", "otp"])], TotpEnrollmentSecret = null }, user).ConfigureAwait(false);
    }

    private async Task ConsentAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var answer = (string?)form["consent"];
        if (answer is "allow" or "deny")
        {
            var user = await FindEnabledUserAsync(context, tx).ConfigureAwait(false);
            if (user is null)
            {
                return;
            }

            if (tx.IsDevice)
            {
                await DeviceAnswerAsync(context, tx, user, answer == "allow").ConfigureAwait(false);
                return;
            }

            if (answer == "allow")
            {
                await consents.GrantAsync(user.Id, tx.HostId, time.GetUtcNow()).ConfigureAwait(false);

                // Through the policies again: the code is issued only after an evaluation that allows it.
                await ContinueAsync(context, tx, user, consented: true).ConfigureAwait(false);
                return;
            }

            await LogFailureAsync(context, tx, user, AadError.ConsentDenied.Describe(), $"consent_denied: {user.UserPrincipalName} answered No to 'Allow remote desktop connection to {tx.HostName}?'", AadError.ConsentDenied, "Sign in again and answer Yes to connect.").ConfigureAwait(false);
            await ErrorAsync(context, AadError.ConsentDenied, StatusCodes.Status403Forbidden, tx.Id).ConfigureAwait(false);
            return;
        }

        await RenderAsync(context, tx, StatusCodes.Status400BadRequest, tx.IsDevice ? "Choose Continue or Cancel." : "Choose Yes or No.").ConfigureAwait(false);
    }

    /// <summary>The answer to "Are you trying to sign in to Gatehouse CLI?": Continue goes through the policies once more; Cancel denies the device code.</summary>
    private async Task DeviceAnswerAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user, bool allow)
    {
        if (allow)
        {
            await ContinueAsync(context, tx, user, consented: true).ConfigureAwait(false);
            return;
        }

        await deviceCodes.DenyAsync(tx.DeviceCodeHash!, user.Id).ConfigureAwait(false);
        await LogFailureAsync(context, tx, user, AadError.DeviceDenied.Describe(), $"device_denied: {user.UserPrincipalName} answered Cancel to 'Are you trying to sign in to {GatehouseCliClient.DisplayName}?'; the device that polls gets access_denied", AadError.DeviceDenied, "If it was you, run 'gatehouse login' again and answer Continue; if not, someone tried to get you to sign in their device (device-code phishing).").ConfigureAwait(false);
        await Responses.HtmlAsync(context, StatusCodes.Status200OK, "Sign-in cancelled", _ => SignInPages.DeviceDenied(user.UserPrincipalName)).ConfigureAwait(false);
    }

    /// <summary>
    /// After a proof: ask for what is still missing (password change, MFA, consent), or finish. Conditional Access is
    /// evaluated with the methods done so far: allowed goes on; refused-but-satisfiable-with-MFA asks for the one-time
    /// code (or sets up the app); blocked, or a control this page cannot do, ends the sign-in with AADSTS53003.
    /// </summary>
    private async Task ContinueAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user, bool consented = false)
    {
        if (user.MustChangePassword)
        {
            await RenderAsync(context, tx with { Step = SignInStep.ChangePassword }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
            return;
        }

        var decision = tx.IsDevice
            ? await access.EvaluateApplicationConditionalAccessAsync(new AccessRequest
            {
                UserId = user.Id,
                HostId = Guid.Empty,
                ClientAddress = ClientAddress(context),
                AuthenticationMethods = tx.Amr,
                AuthenticatedAt = tx.AuthTime ?? time.GetUtcNow(),
                Application = GatehouseApplications.AdminApi,
            }).ConfigureAwait(false)
            : await access.EvaluateConditionalAccessAsync(new AccessRequest
            {
                UserId = user.Id,
                HostId = tx.HostId,
                ClientAddress = ClientAddress(context),
                AuthenticationMethods = tx.Amr,
                AuthenticatedAt = tx.AuthTime ?? time.GetUtcNow(),
                Application = RdpApplications.AzureWindowsVmSignIn, // Counts for both RDP applications (RdpApplications.Both).
            }).ConfigureAwait(false);
        var mfaWouldDo = !tx.Amr.Contains("mfa") && decision is { Refusal: AccessRefusal.PolicyControlMissing, Policies.SatisfiableWithMfa: true };
        if (!decision.Allowed && !mfaWouldDo)
        {
            await RefuseAsync(context, tx, user, decision).ConfigureAwait(false);
            return;
        }

        if (!tx.Amr.Contains("mfa"))
        {
            switch (signIn.GetMfaRequirement(user, decision.Host, decision.Policies))
            {
                case MfaRequirement.Verify:
                    await RenderAsync(context, tx with { Step = SignInStep.Otp }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
                    return;
                case MfaRequirement.Enroll:
                    // An enrolment the administrator started keeps its secret (the user may have scanned it already).
                    var secret = tx.TotpEnrollmentSecret ?? directory.PendingTotpSecret(user) ?? DirectoryService.NewTotpSecret();
                    await RenderAsync(context, tx with { Step = SignInStep.EnrollTotp, TotpEnrollmentSecret = secret }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
                    return;
                default:
                    break;
            }
        }

        if (!decision.Allowed)
        {
            // Unreachable while GetMfaRequirement asks whenever MFA would satisfy the policies; refuse rather than issue.
            await RefuseAsync(context, tx, user, decision).ConfigureAwait(false);
            return;
        }

        // A device sign-in asks every time (device-code phishing); an RDP sign-in remembers the answer per host.
        if (!consented && (tx.IsDevice || !await consents.HasConsentAsync(user.Id, tx.HostId, time.GetUtcNow()).ConfigureAwait(false)))
        {
            await RenderAsync(context, tx with { Step = SignInStep.Consent }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
            return;
        }

        await CompleteAsync(context, tx, user, decision, consented).ConfigureAwait(false);
    }

    /// <summary>Ends the sign-in on a Conditional Access refusal: the Entra-shaped page, and the log with every policy's outcome.</summary>
    private async Task RefuseAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user, AccessDecision decision)
    {
        var error = decision.Refusal switch
        {
            AccessRefusal.PolicyBlocked => AadError.BlockedByConditionalAccess,
            AccessRefusal.PolicyControlMissing => AadError.MethodNotAvailable.With(string.Join(" or ", (decision.Policies?.MissingControls ?? []).Select(ConditionalAccessEvaluator.DescribeControl))),
            AccessRefusal.ReauthenticationRequired => AadError.ReauthenticationRequired,
            AccessRefusal.UnknownHost => AadError.UnknownHost,
            _ => AadError.InvalidCredentials,
        };
        await LogFailureAsync(context, tx, user, error.Describe(), decision.Reason, error, decision.Fix, decision.PoliciesJson).ConfigureAwait(false);
        await ErrorAsync(context, error, StatusCodes.Status403Forbidden, tx.Id).ConfigureAwait(false);
    }

    private async Task CompleteAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user, AccessDecision decision, bool consented)
    {
        if (tx.IsDevice)
        {
            await CompleteDeviceAsync(context, tx, user, decision).ConfigureAwait(false);
            return;
        }

        var code = await codes.IssueAsync(new AuthorizationCodeRequest
        {
            ClientId = tx.ClientId,
            RedirectUri = tx.RedirectUri,
            UserId = user.Id,
            Scope = tx.Scope,
            HostId = tx.HostId,
            CodeChallenge = tx.CodeChallenge,
            CodeChallengeMethod = tx.CodeChallengeMethod,
            Amr = tx.Amr,
            AuthTime = tx.AuthTime ?? time.GetUtcNow(),
        }).ConfigureAwait(false);
        await log.WriteAsync(Entry(context, tx, user) with
        {
            Succeeded = true,
            Reason = $"signed_in: authorization code issued for {tx.HostName} with {string.Join(' ', tx.Amr)}{(consented ? ", consent given now" : string.Empty)}; Conditional Access satisfied",
            PoliciesJson = decision.PoliciesJson,
        }).ConfigureAwait(false);
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

    /// <summary>Approves the device code (the polling client gets its tokens) and says so; a code that expired or was answered meanwhile is refused.</summary>
    private async Task CompleteDeviceAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user, AccessDecision decision)
    {
        var authTime = tx.AuthTime ?? time.GetUtcNow();
        if (!await deviceCodes.ApproveAsync(tx.DeviceCodeHash!, user.Id, tx.Amr, authTime).ConfigureAwait(false))
        {
            await LogFailureAsync(context, tx, user, AadError.DeviceCodeExpired.Describe(), $"device_code_expired: {user.UserPrincipalName} finished the sign-in after the device code expired (or was answered in another window); nothing was approved", AadError.DeviceCodeExpired, "Run 'gatehouse login' again and finish the sign-in within 15 minutes.", decision.PoliciesJson).ConfigureAwait(false);
            await ErrorAsync(context, AadError.DeviceCodeExpired, StatusCodes.Status400BadRequest, tx.Id).ConfigureAwait(false);
            return;
        }

        await log.WriteAsync(Entry(context, tx, user) with
        {
            Succeeded = true,
            Reason = $"signed_in: device code approved for {GatehouseCliClient.DisplayName} (admin API) with {string.Join(' ', tx.Amr)}; Conditional Access satisfied",
            PoliciesJson = decision.PoliciesJson,
        }).ConfigureAwait(false);
        await Responses.HtmlAsync(context, StatusCodes.Status200OK, GatehouseCliClient.DisplayName, _ => SignInPages.DeviceSignedIn(user.UserPrincipalName)).ConfigureAwait(false);
    }

    private async Task RenderAsync(HttpContext context, SignInTransaction tx, int status, string? error, string? prefill = null)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        var form = new SignInPages.FormContext(
            tx.IsDevice ? urls.DeviceLogin : urls.Authorize(tx.TenantSegment),
            transactions.Protect(tx),
            tokens.FormFieldName,
            tokens.RequestToken!);
        var username = tx.Username ?? string.Empty;
        var (title, body) = tx.Step switch
        {
            SignInStep.Username when tx.IsDevice => ("Sign in", SignInPages.Username(form, prefill, error, $"to {GatehouseCliClient.DisplayName} on your device")),
            SignInStep.Username => ("Sign in", SignInPages.Username(form, prefill, error)),
            SignInStep.Password => ("Enter password", SignInPages.Password(form, username, error)),
            SignInStep.ChangePassword => ("Update your password", SignInPages.ChangePassword(form, username, error)),
            SignInStep.Otp => ("Enter code", SignInPages.Otp(form, username, error)),
            SignInStep.EnrollTotp => ("Set up your authenticator app", SignInPages.EnrollTotp(form, username, EnrollmentUri(tx), Totp.Base32Encode(tx.TotpEnrollmentSecret, pad: false), error)),
            _ when tx.IsDevice => ("Sign in to " + GatehouseCliClient.DisplayName, SignInPages.DeviceConsent(form, username, error)),
            _ => ("Permissions requested", SignInPages.Consent(form, username, tx.HostName, error)),
        };
        await Responses.HtmlAsync(context, status, title, _ => body).ConfigureAwait(false);
    }

    /// <summary>The otpauth:// URI of the secret being set up, labelled with the account as the user typed it.</summary>
    private static string EnrollmentUri(SignInTransaction tx) =>
        Totp.OtpAuthUri(TotpIssuer, tx.Username ?? string.Empty, tx.TotpEnrollmentSecret ?? throw new InvalidOperationException("the enrolment step has no secret"));

    private static Task ErrorAsync(HttpContext context, AadError error, int status = StatusCodes.Status400BadRequest, string? correlationId = null) =>
        Responses.HtmlAsync(context, status, "Sign-in error", _ => SignInPages.ErrorPage(error, context.TraceIdentifier, correlationId));

    /// <summary>The user of a transaction past the password step, if still there and enabled; otherwise logs and shows AADSTS50057.</summary>
    private async Task<Gatehouse.Storage.User?> FindEnabledUserAsync(HttpContext context, SignInTransaction tx)
    {
        var user = tx.UserId is { } id ? await directory.FindUserAsync(id).ConfigureAwait(false) : null;
        if (user is not null && user.Enabled)
        {
            return user;
        }

        var reason = user is null
            ? $"user_not_found: the user who passed the password step ({tx.Username}) no longer exists"
            : $"user_disabled: {user.UserPrincipalName} was disabled during the sign-in";
        await LogFailureAsync(context, tx, user, AadError.AccountDisabled.Describe(), reason, AadError.AccountDisabled, user is null ? null : $"gatehouse user enable {user.UserPrincipalName}").ConfigureAwait(false);
        await ErrorAsync(context, AadError.AccountDisabled, StatusCodes.Status400BadRequest, tx.Id).ConfigureAwait(false);
        return null;
    }

    /// <summary>The log entry of this sign-in so far: who, where, from which address, with which methods.</summary>
    private static SignInEntry Entry(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User? user) => new()
    {
        TenantId = tx.TenantId,
        CorrelationId = tx.Id,
        Protocol = IdpSignInLog.Protocol,
        Succeeded = false,
        Reason = string.Empty,
        UserId = user?.Id ?? tx.UserId,
        UserPrincipalName = user?.UserPrincipalName ?? tx.Username,
        Application = tx.ClientId,
        HostName = tx.IsDevice ? null : tx.HostName,
        ClientAddress = ClientAddress(context).ToString(),
        Methods = tx.Amr,
    };

    private Task LogFailureAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User? user, string? userMessage, string reason, AadError error, string? fix = null, string? policiesJson = null) =>
        log.WriteAsync(Entry(context, tx, user) with
        {
            Reason = reason,
            Code = error.Code == 0 ? error.OAuthError : $"AADSTS{error.Code}",
            UserMessage = userMessage,
            Fix = fix,
            PoliciesJson = policiesJson,
        });

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
