using System.Security.Cryptography;
using System.Text;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Gatehouse.Portal;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;

namespace Gatehouse.Pages;

/// <summary>
/// <c>/my/security-info</c>: the signed-in user's authenticator app, as Entra's My Sign-ins security info. Setting one
/// up shows a QR code and the secret, and a first code confirms it (the IdP's enrolment: <see cref="DirectoryService.ConfirmTotpAsync(Storage.User, ReadOnlyMemory{byte}, string, CancellationToken)"/>);
/// replacing one needs what the IdP's security-info page needs to change passkeys (a sign-in with MFA within
/// <see cref="GatehouseIdentityOptions.PasskeyRecentMfaWindow"/>: <see cref="AuthenticationMethods.IsRecentStrongSignIn"/>)
/// or a code of the current app (checked as the sign-in pages check it, with their attempt limit). Until it is
/// confirmed the new secret lives only in the page, sealed with Data Protection for this user and
/// <see cref="EnrollmentLifetime"/>. Passkeys stay on the IdP's page, which this one links.
/// </summary>
internal sealed class SecurityInfoModel(
    DirectoryService directory,
    PasskeyService passkeys,
    SignInEngine engine,
    IdpUrls urls,
    IDataProtectionProvider dataProtection,
    IOptions<GatehouseIdentityOptions> identityOptions,
    TimeProvider time) : PortalPageModel
{
    /// <summary>How long a started enrolment (the sealed secret in the page) can be confirmed.</summary>
    public static readonly TimeSpan EnrollmentLifetime = TimeSpan.FromMinutes(10);

    private const string Purpose = "Gatehouse.Portal.TotpEnrollment.v1";

    /// <summary>True when the user has a confirmed authenticator app.</summary>
    public bool HasApp { get; private set; }

    /// <summary>When the current app was confirmed.</summary>
    public DateTimeOffset? ConfirmedAt { get; private set; }

    /// <summary>The enrolment being set up: the secret as base32, the QR code (PNG, base64) and the sealed secret for the form.</summary>
    public (string Secret, string QrPngBase64, string Sealed)? Enrollment { get; private set; }

    /// <summary>True when replacing the app needs a code of the current app (no recent MFA in this session).</summary>
    public bool NeedsCurrentCode { get; private set; }

    /// <summary>True when this portal session signed in with MFA within the recent-sign-in window.</summary>
    public bool RecentStrongSignIn { get; private set; }

    /// <summary>The result of the last action.</summary>
    public string? Message { get; private set; }

    /// <summary>Why the last action was refused.</summary>
    public string? Error { get; private set; }

    /// <summary>The IdP's security-info page, where passkeys are added and removed.</summary>
    public string PasskeysUrl => urls.SecurityInfo(PortalSignIn.TenantSegment);

    public void OnGet() => Load();

    /// <summary>Starts setting up (or replacing) the authenticator app: a new secret, shown and sealed in the page.</summary>
    public void OnPostBegin()
    {
        Load();
        var user = Caller.User!;
        var secret = DirectoryService.NewTotpSecret();
        var payload = user.Id.ToString("N") + ":" + Convert.ToBase64String(secret);
        var sealedSecret = dataProtection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Protect(payload, EnrollmentLifetime);
        var uri = Totp.OtpAuthUri(AuthorizeEndpoint.TotpIssuer, user.UserPrincipalName, secret);
        Enrollment = (Totp.Base32Encode(secret, pad: false), SignInPages.QrCodePngBase64(uri), sealedSecret);
    }

    /// <summary>Confirms the app with its first code (and, when replacing without a recent MFA, a code of the current app).</summary>
    public async Task OnPostConfirmAsync(string? enrollment, string? code, string? currentCode, CancellationToken cancellationToken)
    {
        Load();
        var user = Caller.User!;
        var secret = Unseal(enrollment, user.Id);
        if (secret is null)
        {
            Error = "This set-up has expired or is not yours. Start again.";
            return;
        }

        Enrollment = (Totp.Base32Encode(secret, pad: false), SignInPages.QrCodePngBase64(Totp.OtpAuthUri(AuthorizeEndpoint.TotpIssuer, user.UserPrincipalName, secret)), enrollment!);
        var trimmed = (code ?? string.Empty).Trim();
        if (trimmed.Length is 0 or > 10)
        {
            Error = "Enter the 6-digit code the authenticator app shows for the new account.";
            return;
        }

        if (!HasApp && !RecentStrongSignIn && (await passkeys.ListAsync(user.Id, cancellationToken)).Count > 0)
        {
            // A user with a passkey adds an app only after signing in with MFA, as on the IdP's security-info page: a
            // password alone must not add a second factor to an account that has one.
            Error = "Your account has a passkey: sign out, sign in again with your passkey, then set up the app within 10 minutes.";
            return;
        }

        if (HasApp)
        {
            if (NeedsCurrentCode)
            {
                var outcome = await engine.CheckOneTimeCodeAsync(user, currentCode is { Length: <= 10 } ? currentCode : null, time.GetUtcNow(), cancellationToken);
                if (outcome != OneTimeCodeOutcome.Accepted)
                {
                    Error = outcome == OneTimeCodeOutcome.Throttled
                        ? "Too many codes were tried for your account this minute. Wait a minute, then try again."
                        : "The code of your current authenticator app is not right (or was already used). Enter the code it shows now, or sign out and sign in again with MFA.";
                    return;
                }
            }

            if (!await directory.ReplaceTotpAsync(user, secret, trimmed, cancellationToken))
            {
                Error = "That code is not the new account's code for now (±30 s), or it was already used. Enter the code the app shows now.";
                return;
            }

            Message = "Your authenticator app is replaced: sign-ins now ask for the new app's codes.";
        }
        else
        {
            if (!await directory.ConfirmTotpAsync(user, secret, trimmed, cancellationToken))
            {
                Error = "That code is not the new account's code for now (±30 s), or it was already used. Enter the code the app shows now.";
                return;
            }

            Message = "Your authenticator app is set up: sign-ins that need MFA ask for its code.";
        }

        Enrollment = null;
        Load();
    }

    private void Load()
    {
        var user = Caller.User ?? throw new InvalidOperationException("The portal's security info is for a signed-in user.");
        HasApp = user.TotpConfirmedAt is not null;
        ConfirmedAt = user.TotpConfirmedAt;
        RecentStrongSignIn = AuthenticationMethods.IsRecentStrongSignIn(SessionAmr, SessionAuthTime, time.GetUtcNow(), identityOptions.Value.PasskeyRecentMfaWindow);
        NeedsCurrentCode = HasApp && !RecentStrongSignIn;
    }

    private byte[]? Unseal(string? sealedSecret, Guid userId)
    {
        if (string.IsNullOrEmpty(sealedSecret) || sealedSecret.Length > 1024)
        {
            return null;
        }

        try
        {
            var payload = dataProtection.CreateProtector(Purpose).ToTimeLimitedDataProtector().Unprotect(sealedSecret);
            var parts = payload.Split(':');
            return parts.Length == 2 && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(parts[0]), Encoding.ASCII.GetBytes(userId.ToString("N")))
                ? Convert.FromBase64String(parts[1])
                : null;
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            return null;
        }
    }
}
