namespace Gatehouse.Portal;

/// <summary>The web portal's settings (<c>Gatehouse:Portal</c>).</summary>
internal sealed class PortalOptions
{
    public const string Section = "Gatehouse:Portal";

    /// <summary>
    /// How long a portal session lasts without a request (sliding: each request past half of it renews the cookie);
    /// default 30 minutes. Each request checks the user again (enabled, rights), so a shorter session only limits how
    /// long an unattended browser stays signed in.
    /// </summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How long the user has to finish the IdP's pages after the portal sends them there (default 10 minutes).</summary>
    public TimeSpan SignInTimeout { get; set; } = TimeSpan.FromMinutes(10);
}
