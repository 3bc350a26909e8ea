using System.Net;
using System.Security.Cryptography;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Antiforgery;

namespace Gatehouse.Idp;

/// <summary>
/// <c>/{tenant}/oauth2/v2.0/authorize</c>: validates the request (client, redirect URI, scope and its host) and walks
/// the user through user name → password → forced password change → one-time code → consent → code.
/// Requests that fail before the redirect URI is known to be registered get an error page, never a redirect
/// (RFC 6749 §4.1.2.1); so do requests to the <c>ms-appx-web:</c> redirect a browser cannot follow.
/// </summary>
internal sealed class AuthorizeEndpoint(
    DirectoryService directory,
    SignInService signIn,
    ConsentService consents,
    AuthorizationCodeService codes,
    PasswordHasher hasher,
    AccountAttemptLimiter attempts,
    SignInTransactionProtector transactions,
    IAntiforgery antiforgery,
    IdpUrls urls,
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

        var form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        if (!transactions.TryUnprotect(form[SignInTransactionProtector.FormField], context.Request.Cookies[SignInTransactionProtector.BrowserCookie], out var tx)
            || !string.Equals(tx.TenantSegment, tenant, StringComparison.OrdinalIgnoreCase))
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

    private async Task UsernameAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var username = ((string?)form["username"])?.Trim();
        if (string.IsNullOrEmpty(username) || username.Length > 256)
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
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.AccountLocked.Describe()).ConfigureAwait(false);
                return;
            case PasswordCheckResult.Disabled:
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.AccountDisabled.Describe()).ConfigureAwait(false);
                return;
            default:
                await RenderAsync(context, tx, StatusCodes.Status400BadRequest, "Your account or password is incorrect. " + AadError.InvalidCredentials.Describe()).ConfigureAwait(false);
                return;
        }
    }

    private async Task ChangePasswordAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var user = await directory.FindUserAsync(tx.UserId!.Value).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            await ErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
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
        var user = await directory.FindUserAsync(tx.UserId!.Value).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            await ErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
            return;
        }

        if (!attempts.TryAttempt(user.UserPrincipalName))
        {
            await RenderAsync(context, tx, StatusCodes.Status429TooManyRequests, AadError.TooManyRequests.Describe()).ConfigureAwait(false);
            return;
        }

        var code = ((string?)form["otp"])?.Trim();
        if (string.IsNullOrEmpty(code) || !await signIn.VerifyTotpAsync(user, code, time.GetUtcNow()).ConfigureAwait(false))
        {
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

        var user = await directory.FindUserAsync(tx.UserId.Value).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            await ErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
            return;
        }

        if (!attempts.TryAttempt(user.UserPrincipalName))
        {
            await RenderAsync(context, tx, StatusCodes.Status429TooManyRequests, AadError.TooManyRequests.Describe()).ConfigureAwait(false);
            return;
        }

        var code = ((string?)form["otp"])?.Trim();
        if (string.IsNullOrEmpty(code) || !await directory.ConfirmTotpAsync(user, tx.TotpEnrollmentSecret, code).ConfigureAwait(false))
        {
            await RenderAsync(context, tx, StatusCodes.Status400BadRequest, AadError.InvalidEnrollmentOtp.Describe()).ConfigureAwait(false);
            return;
        }

        await ContinueAsync(context, tx with { Amr = [.. tx.Amr.Union(["mfa", "otp"])], TotpEnrollmentSecret = null }, user).ConfigureAwait(false);
    }

    private async Task ConsentAsync(HttpContext context, SignInTransaction tx, IFormCollection form)
    {
        var answer = (string?)form["consent"];
        if (answer == "allow")
        {
            await consents.GrantAsync(tx.UserId!.Value, tx.HostId, time.GetUtcNow()).ConfigureAwait(false);
            await CompleteAsync(context, tx).ConfigureAwait(false);
            return;
        }

        if (answer == "deny")
        {
            await ErrorAsync(context, AadError.ConsentDenied, StatusCodes.Status403Forbidden).ConfigureAwait(false);
            return;
        }

        await RenderAsync(context, tx, StatusCodes.Status400BadRequest, "Choose Yes or No.").ConfigureAwait(false);
    }

    /// <summary>After a proof: ask for what is still missing (password change, MFA, consent), or finish.</summary>
    private async Task ContinueAsync(HttpContext context, SignInTransaction tx, Gatehouse.Storage.User user)
    {
        if (user.MustChangePassword)
        {
            await RenderAsync(context, tx with { Step = SignInStep.ChangePassword }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
            return;
        }

        if (!tx.Amr.Contains("mfa"))
        {
            var host = await directory.FindHostAsync(tx.HostId).ConfigureAwait(false);
            switch (signIn.GetMfaRequirement(user, host))
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

        if (!await consents.HasConsentAsync(user.Id, tx.HostId, time.GetUtcNow()).ConfigureAwait(false))
        {
            await RenderAsync(context, tx with { Step = SignInStep.Consent }, StatusCodes.Status200OK, error: null).ConfigureAwait(false);
            return;
        }

        await CompleteAsync(context, tx).ConfigureAwait(false);
    }

    private async Task CompleteAsync(HttpContext context, SignInTransaction tx)
    {
        var code = await codes.IssueAsync(new AuthorizationCodeRequest
        {
            ClientId = tx.ClientId,
            RedirectUri = tx.RedirectUri,
            UserId = tx.UserId!.Value,
            Scope = tx.Scope,
            HostId = tx.HostId,
            CodeChallenge = tx.CodeChallenge,
            CodeChallengeMethod = tx.CodeChallengeMethod,
            Amr = tx.Amr,
            AuthTime = tx.AuthTime ?? time.GetUtcNow(),
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

    private async Task RenderAsync(HttpContext context, SignInTransaction tx, int status, string? error, string? prefill = null)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        var form = new SignInPages.FormContext(
            urls.Authorize(tx.TenantSegment),
            transactions.Protect(tx),
            tokens.FormFieldName,
            tokens.RequestToken!);
        var username = tx.Username ?? string.Empty;
        var (title, body) = tx.Step switch
        {
            SignInStep.Username => ("Sign in", SignInPages.Username(form, prefill, error)),
            SignInStep.Password => ("Enter password", SignInPages.Password(form, username, error)),
            SignInStep.ChangePassword => ("Update your password", SignInPages.ChangePassword(form, username, error)),
            SignInStep.Otp => ("Enter code", SignInPages.Otp(form, username, error)),
            SignInStep.EnrollTotp => ("Set up your authenticator app", SignInPages.EnrollTotp(form, username, EnrollmentUri(tx), Totp.Base32Encode(tx.TotpEnrollmentSecret, pad: false), error)),
            _ => ("Permissions requested", SignInPages.Consent(form, username, tx.HostName, error)),
        };
        await Responses.HtmlAsync(context, status, title, _ => body).ConfigureAwait(false);
    }

    /// <summary>The otpauth:// URI of the secret being set up, labelled with the account as the user typed it.</summary>
    private static string EnrollmentUri(SignInTransaction tx) =>
        Totp.OtpAuthUri(TotpIssuer, tx.Username ?? string.Empty, tx.TotpEnrollmentSecret ?? throw new InvalidOperationException("the enrolment step has no secret"));

    private static Task ErrorAsync(HttpContext context, AadError error, int status = StatusCodes.Status400BadRequest) =>
        Responses.HtmlAsync(context, status, "Sign-in error", _ => SignInPages.ErrorPage(error, context.TraceIdentifier));

    private bool IsRegisteredRedirect(string redirectUri, string tenant) =>
        RdpClient.IsRegisteredRedirectUri(redirectUri, urls.PublicName, tenant)
        || RdpClient.IsRegisteredRedirectUri(redirectUri, urls.PublicName, DirectoryService.CommonTenant);

    /// <summary>A parameter that appears exactly once (a repeated OAuth parameter is an error, RFC 6749 §3.1).</summary>
    private static string? Single(IQueryCollection query, string name) =>
        query.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;

    private static IPAddress ClientAddress(HttpContext context) => context.Connection.RemoteIpAddress ?? IPAddress.None;

    private static string EnsureBrowserCookie(HttpContext context)
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
