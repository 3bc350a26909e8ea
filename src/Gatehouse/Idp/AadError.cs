namespace Gatehouse.Idp;

/// <summary>
/// An Entra-style error: the AADSTS code users and support search for, the OAuth <c>error</c> value, and words a
/// user understands. Messages never reveal whether an account exists.
/// </summary>
internal sealed record AadError(int Code, string OAuthError, string Message)
{
    /// <summary>"AADSTS50126: …", or only the message for form checks that have no Entra code (code 0).</summary>
    public string Describe() => Code == 0 ? Message : $"AADSTS{Code}: {Message}";

    public static readonly AadError InvalidCredentials = new(50126, "invalid_grant", "Error validating credentials due to invalid username or password.");
    public static readonly AadError MfaRequired = new(50076, "interaction_required", "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this remote desktop.");
    public static readonly AadError PasswordExpired = new(50055, "invalid_grant", "The password is expired. Choose a new password to continue.");
    public static readonly AadError AccountDisabled = new(50057, "invalid_grant", "The user account is disabled. Contact your administrator.");
    public static readonly AadError AccountLocked = new(50053, "invalid_grant", "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password. Wait a minute and try again.");
    public static readonly AadError NoRole = new(50105, "access_denied", Gatehouse.Access.RbacEvaluator.NoAccessMessage + " Ask your administrator for the Virtual Machine User Login role on this remote desktop.");
    public static readonly AadError BlockedByConditionalAccess = new(53003, "access_denied", Gatehouse.Access.AccessEvaluation.BlockedMessage);
    public static readonly AadError MethodNotAvailable = new(53003, "access_denied", Gatehouse.Access.AccessEvaluation.MethodNotAllowedMessage + " This remote desktop requires {0}, which this sign-in page can't offer.");
    // An enforced authentication strength the sign-in's methods do not meet. Entra reports it as a Conditional Access
    // failure; no dedicated AADSTS code for "authentication strength not satisfied" was found in the references at hand,
    // so it keeps Conditional Access's 53003 with its own words (change the code here only).
    public static readonly AadError AuthenticationStrengthUnmet = new(53003, "access_denied", Gatehouse.Access.AccessEvaluation.MethodNotAllowedMessage + " This remote desktop requires the authentication strength '{0}'. {1}");
    public static readonly AadError ReauthenticationRequired = new(53003, "access_denied", Gatehouse.Access.AccessEvaluation.ReauthenticateMessage);
    public static readonly AadError WrongOneTimeCode = new(500121, "invalid_grant", "Authentication failed during strong authentication request.");
    public static readonly AadError ConsentRequired = new(65001, "consent_required", "The user has not consented to the remote desktop connection to this host.");
    public static readonly AadError ConsentDenied = new(65004, "access_denied", "The user declined to consent to the remote desktop connection.");
    public static readonly AadError PasskeyRefused = new(0, "invalid_grant", "The passkey was refused.");
    public static readonly AadError InvalidOtp = new(0, "invalid_grant", "The one-time code is not valid. Enter the current code from your authenticator app.");
    public static readonly AadError InvalidEnrollmentOtp = new(0, "invalid_grant", "That code didn't work. Scan the QR code on this page (or type the key) into your authenticator app, check that your device's clock is right, and enter the code it shows now.");
    public static readonly AadError WeakPassword = new(0, "invalid_request", "The new password does not meet the requirements: at least 12 characters, and different from the current one.");
    public static readonly AadError UnknownTenant = new(90002, "invalid_tenant", "Tenant not found. Check the tenant name or ID in the address; 'common' works for every user.");
    public static readonly AadError UnknownClient = new(700016, "unauthorized_client", "Application not found in the directory. Check the client_id.");
    public static readonly AadError RedirectMismatch = new(50011, "invalid_request", "The redirect URI specified in the request does not match the redirect URIs configured for the application.");
    public static readonly AadError UnsupportedResponseType = new(70005, "unsupported_response_type", "Only response_type=code is supported.");
    public static readonly AadError InvalidScope = new(70011, "invalid_scope", "The provided value for the input parameter 'scope' is not valid. Request ms-device-service://termsrv.wvd.microsoft.com/name/<host>/user_impersonation.");
    public static readonly AadError UnknownHost = new(500011, "invalid_resource", "The remote desktop host was not found in the directory. Use the host's registered name (as in 'gatehouse host list'), not its address.");
    public static readonly AadError IpAddressHost = new(500011, "invalid_resource", "IP address can't be used with web account sign-in; use the host name.");
    public static readonly AadError PkceRequired = new(50148, "invalid_request", "The code_challenge (PKCE, S256) is required for this application.");
    public static readonly AadError PkcePlain = new(50148, "invalid_request", "Only code_challenge_method=S256 is supported.");
    public static readonly AadError CodeInvalid = new(70008, "invalid_grant", "The provided authorization code or refresh token has expired or was already used. Sign in again.");
    public static readonly AadError CodeVerifierMismatch = new(50148, "invalid_grant", "The code_verifier does not match the code_challenge supplied in the authorization request.");
    public static readonly AadError RefreshTokenInvalid = new(700082, "invalid_grant", "The refresh token has expired, was revoked or was already used. Sign in again.");
    public static readonly AadError UnsupportedGrant = new(70003, "unsupported_grant_type", "The app requested an unsupported grant type.");
    public static readonly AadError MissingParameter = new(900144, "invalid_request", "The request body must contain the following parameter: '{0}'.");
    public static readonly AadError ReqCnfInvalid = new(50148, "invalid_request", "The req_cnf parameter is not a valid proof-of-possession key reference (base64url of {\"kid\":\"<RFC 7638 thumbprint>\"}).");
    public static readonly AadError LoginRequired = new(50058, "login_required", "A silent sign-in request was sent but no user is signed in. Sign in without prompt=none: Gatehouse keeps no sign-in session, so every sign-in shows the sign-in page.");
    public static readonly AadError SessionExpired = new(50058, "invalid_request", "The sign-in page expired or was opened in another browser. Start the sign-in again from your remote desktop client.");
    public static readonly AadError TooManyRequests = new(0, "temporarily_unavailable", "Too many requests. Wait a minute and try again.");
    public static readonly AadError DeviceDenied = new(70000, "access_denied", "The user cancelled the sign-in of the device.");
    public static readonly AadError DeviceCodeExpired = new(70019, "expired_token", "The code has expired or was already used. Run 'gatehouse login' again on your device and enter the new code.");
    public static readonly AadError DevicePending = new(70016, "authorization_pending", "OAuth 2.0 device flow error. Authorization is pending. Continue polling.");
    public static readonly AadError DeviceSlowDown = new(70016, "slow_down", "Polling faster than the interval; wait the interval (now 5 seconds longer) between requests.");
    public static readonly AadError BadDeviceCode = new(70000, "bad_verification_code", "The device_code is not valid: it is unknown, was issued to another client, or was already redeemed.");
    public static readonly AadError TooManyDeviceCodes = new(0, "slow_down", "Too many device sign-ins are pending from this address. Finish or let expire the ones started, then try again in a few minutes.");
    public static readonly AadError UserCodeInvalid = new(0, "invalid_request", "That code didn't work. Check the code shown on your device and try again; a code expires after 15 minutes.");
    public static readonly AadError UserCodeThrottled = new(0, "temporarily_unavailable", "Too many wrong codes. Wait a few minutes, then enter the code shown on your device.");
    public static readonly AadError CliBlockedByConditionalAccess = new(53003, "invalid_grant", Gatehouse.Access.AccessEvaluation.BlockedMessage);
    public static readonly AadError CliMfaRequired = new(50076, "invalid_grant", "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the Gatehouse admin API. Run 'gatehouse login' to sign in again.");
    public static readonly AadError CliReauthenticationRequired = new(53003, "invalid_grant", "Your sign-in has expired for the Gatehouse admin API (sign-in frequency). Run 'gatehouse login' to sign in again.");
    public static readonly AadError CliScopeInvalid = new(70011, "invalid_scope", "The provided value for the input parameter 'scope' is not valid. The Gatehouse CLI may request api://gatehouse-admin/admin (and openid profile offline_access) only.");
    public static readonly AadError BadRequest = new(900144, "invalid_request", "The request is not valid: {0}.");

    /// <summary>The same error with <c>{0}</c> filled in.</summary>
    public AadError With(string detail) => this with { Message = string.Format(System.Globalization.CultureInfo.InvariantCulture, Message, detail) };

    /// <summary>The same error with <c>{0}</c> and <c>{1}</c> filled in.</summary>
    public AadError With(string first, string second) => this with { Message = string.Format(System.Globalization.CultureInfo.InvariantCulture, Message, first, second) };
}
