namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// Colours as RDP's 32 bpp pixels: one <see cref="uint"/> 0xAARRGGBB, which in memory (little-endian) is the byte
/// order B, G, R, A that a 32 bpp Bitmap Update carries.
/// </summary>
public static class Bgra
{
    /// <summary>Opaque black.</summary>
    public const uint Black = 0xFF000000;

    /// <summary>Opaque white.</summary>
    public const uint White = 0xFFFFFFFF;

    /// <summary>An opaque colour from its red, green and blue components.</summary>
    public static uint FromRgb(byte red, byte green, byte blue) => 0xFF000000u | ((uint)red << 16) | ((uint)green << 8) | blue;

    /// <summary>An opaque colour from 0xRRGGBB (the alpha byte, if any, is ignored).</summary>
    public static uint FromRgb(uint rgb) => 0xFF000000u | (rgb & 0x00FFFFFFu);

    /// <summary>The red component.</summary>
    public static byte Red(uint pixel) => unchecked((byte)(pixel >> 16));

    /// <summary>The green component.</summary>
    public static byte Green(uint pixel) => unchecked((byte)(pixel >> 8));

    /// <summary>The blue component.</summary>
    public static byte Blue(uint pixel) => unchecked((byte)pixel);

    /// <summary>
    /// <paramref name="over"/> (with its own alpha, straight, not premultiplied) composed onto the opaque
    /// <paramref name="under"/>; the result is opaque.
    /// </summary>
    public static uint Blend(uint under, uint over)
    {
        var alpha = over >> 24;
        if (alpha == 0xFF)
        {
            return over;
        }

        if (alpha == 0)
        {
            return under | 0xFF000000u;
        }

        var inverse = 255 - alpha;
        var r = ((Red(over) * alpha) + (Red(under) * inverse) + 127) / 255;
        var g = ((Green(over) * alpha) + (Green(under) * inverse) + 127) / 255;
        var b = ((Blue(over) * alpha) + (Blue(under) * inverse) + 127) / 255;
        return 0xFF000000u | (r << 16) | (g << 8) | b;
    }

    /// <summary>A colour between <paramref name="from"/> (amount 0) and <paramref name="to"/> (amount 255).</summary>
    public static uint Mix(uint from, uint to, byte amount) => Blend(from, (to & 0x00FFFFFFu) | ((uint)amount << 24));
}
