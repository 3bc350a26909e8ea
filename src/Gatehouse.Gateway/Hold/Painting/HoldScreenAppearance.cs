namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// How the hold screens look: the organisation's name and logo and the colours (0xRRGGBB; the alpha byte is
/// ignored). Plain configuration data; <see cref="HoldScreenPainter"/> turns it into pixels.
/// </summary>
public sealed record HoldScreenAppearance
{
    /// <summary>The name shown as the heading of every screen.</summary>
    public string OrganisationName { get; init; } = "Gatehouse";

    /// <summary>
    /// A small PNG (8-bit RGB or RGBA, not interlaced, at most 1 MiB and 1024 × 1024) shown above the name, or null
    /// for none. Load it with <see cref="HoldScreenPainter.TryCreate"/>.
    /// </summary>
    public string? LogoPath { get; init; }

    /// <summary>The screen behind the card.</summary>
    public uint Background { get; init; } = 0x1E293B;

    /// <summary>The card the content sits on.</summary>
    public uint Card { get; init; } = 0xF8FAFC;

    /// <summary>Body text.</summary>
    public uint Text { get; init; } = 0x0F172A;

    /// <summary>Secondary text: deadlines, hints, reference ids.</summary>
    public uint MutedText { get; init; } = 0x475569;

    /// <summary>Headings, the focused digit box, the selected host.</summary>
    public uint Accent { get; init; } = 0x1D4ED8;

    /// <summary>Text on the accent colour.</summary>
    public uint AccentText { get; init; } = 0xFFFFFF;

    /// <summary>Error lines.</summary>
    public uint Error { get; init; } = 0xB91C1C;

    /// <summary>Borders of digit boxes and list rows.</summary>
    public uint Border { get; init; } = 0x94A3B8;
}
