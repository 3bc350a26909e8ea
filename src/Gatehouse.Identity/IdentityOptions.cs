namespace Gatehouse.Identity;

/// <summary>Settings of the identity services.</summary>
public sealed class GatehouseIdentityOptions
{
    /// <summary>Public host name (and port, if not 443) of the IdP, e.g. <c>login.example.org</c>.</summary>
    public string PublicName { get; set; } = "localhost";

    /// <summary>Lifetime of RDP access tokens (at most 1 h).</summary>
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Lifetime of authorization codes (at most 60 s).</summary>
    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Lifetime of refresh tokens.</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>
    /// How long one sign-in (a grant) can be kept alive by refreshing (configuration key
    /// <c>Gatehouse:Identity:RefreshTokenMaxLifetime</c>, default 14 days): a rotated refresh token never outlives the
    /// grant's creation plus this, whatever <see cref="RefreshTokenLifetime"/> says; after it the user signs in again.
    /// </summary>
    public TimeSpan RefreshTokenMaxLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Lifetime of a srv_challenge nonce.</summary>
    public TimeSpan ServerChallengeLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Clock skew tolerated when validating tokens (at most 5 min).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Every sign-in needs a second factor: a user without a confirmed authenticator app is asked to set one up
    /// (configuration key <c>Gatehouse:Identity:RequireMfaEnrollment</c>, default off). A tenant-wide trigger on top of
    /// Conditional Access policies that require MFA (<see cref="SignInService.IsMfaRequiredByPolicy"/>).
    /// </summary>
    public bool RequireMfaEnrollment { get; set; }

    /// <summary>
    /// How recent a sign-in with MFA must be for the user to add a passkey on the security-info page
    /// (<c>Gatehouse:Identity:Passkeys:RecentMfaWindow</c>, default 10 minutes).
    /// </summary>
    public TimeSpan PasskeyRecentMfaWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The authenticator models (AAGUIDs) a new passkey may come from (<c>Gatehouse:Identity:Passkeys:AllowedAaguids</c>);
    /// empty allows any. With attestation <c>none</c> the AAGUID is what the authenticator says, not a proof.
    /// </summary>
    public IReadOnlyList<Guid> PasskeyAllowedAaguids { get; set; } = [];

    /// <summary>Issuer for <paramref name="tenantId"/>: <c>https://&lt;public-name&gt;/&lt;tenant id&gt;/v2.0</c>.</summary>
    public string IssuerFor(Guid tenantId) => $"https://{PublicName}/{tenantId:D}/v2.0";
}
