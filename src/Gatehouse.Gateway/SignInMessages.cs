namespace Gatehouse.Gateway;

/// <summary>
/// The sentences a user sees when a gateway sign-in fails (the sign-in log's user message, and what the client is
/// told). They are product surface: the seeds' words, kept here once so every sign-in method says the same thing.
/// The refusals of access decisions (no role on the host, a policy that needs another sign-in method) come with their
/// own sentence from Gatehouse.Access (<c>Rbac.NoAccessMessage</c>, <c>ConditionalAccessEvaluator.MethodNotAllowedMessage</c>).
/// </summary>
public static class SignInMessages
{
    /// <summary>A wrong password, an unknown user, a token or proof that did not verify.</summary>
    public const string CredentialsDidNotWork = "Your credentials didn't work.";

    /// <summary>The host could not be reached, or the gateway could not sign in to it.</summary>
    public const string HostUnreachable = "The remote computer can't be reached right now. Try again later or contact your system administrator.";

    /// <summary>Smart lockout holds the account.</summary>
    public const string AccountLocked = "Your account is locked. Try again later.";

    /// <summary>The account is disabled.</summary>
    public const string AccountDisabled = "Your account has been disabled. Contact your administrator.";

    /// <summary>The password is temporary and must be changed on the identity provider's sign-in page first.</summary>
    public const string MustChangePassword = "You must change your password before signing in.";

    /// <summary>The name typed is not a work account (<c>DOMAIN\user</c>, a bare name): the sentence Windows shows.</summary>
    public const string NotAWorkAccount = "Remote machine is Microsoft Entra joined. If you are signing in to your work account, try using your work email address.";

    /// <summary>The client named no host, or an IP address, so the host cannot be identified.</summary>
    public const string UseHostName = "IP address can't be used with this sign-in; connect with the host name.";

    /// <summary>The hold screen's one-time code was wrong too many times.</summary>
    public const string WrongOneTimeCode = "The code you entered didn't work. Sign in again and enter the current code from your authenticator app.";

    /// <summary>Too many code or password attempts for the account.</summary>
    public const string TooManyAttempts = "You've tried to sign in too many times. Wait a minute and try again.";

    /// <summary>A policy requires MFA and the user has no method yet.</summary>
    public const string MfaEnrollmentRequired = "Your organization requires more information to keep your account secure. Set up your authenticator app, then sign in again.";

    /// <summary>The user did not finish on the hold screen in time.</summary>
    public const string HoldTimeout = "The sign-in took too long. Connect again to start over.";

    /// <summary>The client cannot be handed over to the host (it does not follow a server redirection).</summary>
    public const string HandoverUnsupported = "This Remote Desktop client can't continue to the remote computer through the gateway. Connect with FreeRDP 3, the Remote Desktop Connection app (mstsc) or Windows App.";

    /// <summary>The QR sign-in was answered "no" on the phone, or refused there.</summary>
    public const string QrSignInDenied = "The sign-in on your phone was cancelled or refused. Connect again to start over.";

    /// <summary>The QR sign-in screen's instructions (the device-code page's address follows them).</summary>
    public const string QrSignInInstructions = "Scan the code with your phone's camera and sign in with your work account, or open this address on any device and enter the code:";
}
