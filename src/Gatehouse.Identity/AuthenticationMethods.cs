namespace Gatehouse.Identity;

/// <summary>
/// The <c>amr</c> values (RFC 8176, as Entra writes them) a sign-in's transaction, its tokens and the sign-in log
/// carry: a password sign-in is <c>["pwd"]</c>, with an authenticator-app code <c>["pwd","mfa","otp"]</c>, a passkey
/// sign-in <c>["fido","mfa"]</c>, a password with a passkey as the second factor <c>["pwd","fido","mfa"]</c>, and a
/// Temporary Access Pass sign-in <c>["tap"]</c> (never <c>mfa</c>).
/// </summary>
public static class AuthenticationMethods
{
    /// <summary>A password was checked.</summary>
    public const string Password = "pwd";

    /// <summary>A one-time code (authenticator app) was checked.</summary>
    public const string Otp = "otp";

    /// <summary>The sign-in counts as multi-factor.</summary>
    public const string Mfa = "mfa";

    /// <summary>A FIDO2 passkey (WebAuthn assertion with user verification) was checked.</summary>
    public const string Fido = "fido";

    /// <summary>A Temporary Access Pass was checked (good only for registering a passkey).</summary>
    public const string Tap = "tap";

    /// <summary>
    /// The rule for changing one's own security info (adding or removing a passkey on the IdP's security-info page,
    /// replacing the authenticator app in the portal): the sign-in proved MFA, or redeemed a Temporary Access Pass, no
    /// longer than <paramref name="window"/> before <paramref name="now"/>
    /// (<see cref="GatehouseIdentityOptions.PasskeyRecentMfaWindow"/>).
    /// </summary>
    /// <param name="amr">The sign-in's authentication methods.</param>
    /// <param name="authTime">When the user authenticated; null when unknown (never recent).</param>
    /// <param name="now">The current time.</param>
    /// <param name="window">How recent the sign-in must be.</param>
    public static bool IsRecentStrongSignIn(IEnumerable<string> amr, DateTimeOffset? authTime, DateTimeOffset now, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(amr);
        return (amr.Contains(Tap, StringComparer.Ordinal) || amr.Contains(Mfa, StringComparer.Ordinal))
            && authTime is { } at && now - at <= window;
    }
}
