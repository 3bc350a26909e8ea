namespace Gatehouse.Gateway.Hold;

/// <summary>
/// <c>Gatehouse:Gateway:HoldScreen:*</c>: the screens the gateway paints inside the client's RDP window before it hands
/// the client to the host. On by default; each use can be switched off.
/// </summary>
public sealed class HoldScreenOptions
{
    /// <summary>Longest a routing token may live (the design's bound).</summary>
    public static readonly TimeSpan MaxRoutingTokenLifetime = TimeSpan.FromSeconds(60);

    /// <summary>All hold screens; off means every sign-in is answered inside its protocol as before.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Ask NLA users for their one-time code when a policy requires MFA, instead of refusing.</summary>
    public bool StepUpMfa { get; set; } = true;

    /// <summary>Show refusals after a right password as a screen with the reason, what to do and the reference id.</summary>
    public bool Refusals { get; set; } = true;

    /// <summary>Offer the hosts the user may sign in to when the client named none the gateway knows (its own name, say).</summary>
    public bool HostPicker { get; set; } = true;

    /// <summary>
    /// TLS clients that have proven nothing yet are held from the start: their password (when SignInMethods has Tls) or
    /// their QR sign-in (when it has QrSignIn) is proven on the gateway's own front, so MFA prompts, readable refusals and
    /// the host picker work for them too and the host sees only signed-in clients; then they are handed over. Off: a TLS
    /// password sign-in relays the host's connection sequence from the start (for clients that do not follow a server
    /// redirection), and the QR sign-in is unavailable.
    /// </summary>
    public bool TlsSignIn { get; set; } = true;

    /// <summary>How long the QR sign-in waits for the user to finish on the phone (the device code lives as long).</summary>
    public TimeSpan QrSignInTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the user has to type the code (the whole hold, from the first paint).</summary>
    public TimeSpan PromptTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Wrong codes before the client is disconnected (the identity provider's per-account limit applies too).</summary>
    public int MaxCodeAttempts { get; set; } = 3;

    /// <summary>How long a handover's routing token is valid (at most 60 s).</summary>
    public TimeSpan RoutingTokenLifetime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most routing tokens outstanding at once (each is a few hundred bytes until it is used or expires).</summary>
    public int MaxOutstandingRoutingTokens { get; set; } = 10_000;

    /// <summary>
    /// Most clients held at once (each holds a framebuffer of its desktop: 8 MiB at 1920×1080); beyond it a refusal is
    /// answered inside the client's protocol, as with the hold screen off.
    /// </summary>
    public int MaxConcurrentHolds { get; set; } = 64;

    /// <summary>Largest desktop the hold screen paints (pixels); a larger one is refused with Set Error Info.</summary>
    public int MaxDesktopPixels { get; set; } = 3840 * 2400;

    /// <summary>The organisation name on the screens.</summary>
    public string OrganisationName { get; set; } = "Gatehouse";

    /// <summary>An optional logo for the screens (a small 8-bit RGB or RGBA PNG).</summary>
    public string? LogoPath { get; set; }

    /// <summary>Checks the values; the message names the setting.</summary>
    public IEnumerable<string> Validate()
    {
        if (PromptTimeout < TimeSpan.FromSeconds(10) || PromptTimeout > TimeSpan.FromMinutes(15))
        {
            yield return "Gatehouse:Gateway:HoldScreen:PromptTimeout must be between 10 seconds and 15 minutes.";
        }

        if (QrSignInTimeout < TimeSpan.FromMinutes(1) || QrSignInTimeout > TimeSpan.FromMinutes(15))
        {
            yield return "Gatehouse:Gateway:HoldScreen:QrSignInTimeout must be between 1 and 15 minutes.";
        }

        if (MaxCodeAttempts is < 1 or > 10)
        {
            yield return "Gatehouse:Gateway:HoldScreen:MaxCodeAttempts must be between 1 and 10.";
        }

        if (RoutingTokenLifetime < TimeSpan.FromSeconds(5) || RoutingTokenLifetime > MaxRoutingTokenLifetime)
        {
            yield return "Gatehouse:Gateway:HoldScreen:RoutingTokenLifetime must be between 5 and 60 seconds.";
        }

        if (MaxConcurrentHolds is < 1 or > 100_000)
        {
            yield return "Gatehouse:Gateway:HoldScreen:MaxConcurrentHolds must be between 1 and 100000.";
        }

        if (MaxDesktopPixels is < 640 * 480 or > Painting.Framebuffer.MaxPixels)
        {
            yield return $"Gatehouse:Gateway:HoldScreen:MaxDesktopPixels must be between {640 * 480} and {Painting.Framebuffer.MaxPixels}.";
        }

        if (MaxOutstandingRoutingTokens is < 1 or > 1_000_000)
        {
            yield return "Gatehouse:Gateway:HoldScreen:MaxOutstandingRoutingTokens must be between 1 and 1000000.";
        }

        if (string.IsNullOrWhiteSpace(OrganisationName) || OrganisationName.Length > 64 || OrganisationName.EnumerateRunes().Any(Protocol.DisplayText.IsUnsafe))
        {
            yield return "Gatehouse:Gateway:HoldScreen:OrganisationName must be 1 to 64 characters, without control or bidirectional characters.";
        }
    }
}
