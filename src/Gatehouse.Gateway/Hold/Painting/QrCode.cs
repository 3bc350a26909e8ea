using QRCoder;

namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// A QR code's module grid (true = dark), without a quiet zone, made with QRCoder's encoder (never its image
/// renderers) and drawn by <see cref="Draw"/> as black modules on white with a four-module quiet zone.
/// </summary>
public sealed class QrCode
{
    /// <summary>The quiet zone around the code, in modules, as ISO/IEC 18004 asks.</summary>
    public const int QuietZone = 4;

    /// <summary>The most UTF-8 bytes encoded (a sign-in URL is far shorter; QR version 40 holds 2,331 bytes at level M).</summary>
    public const int MaxTextLength = 1024;

    private readonly bool[] modules;

    private QrCode(int size, bool[] modules)
    {
        Size = size;
        this.modules = modules;
    }

    /// <summary>Modules per side, without the quiet zone (21 for version 1, up to 177).</summary>
    public int Size { get; }

    /// <summary>Modules per side with the quiet zone on both sides.</summary>
    public int SizeWithQuietZone => Size + (2 * QuietZone);

    /// <summary>True when the module at column <paramref name="x"/>, row <paramref name="y"/> (quiet zone excluded) is dark.</summary>
    public bool IsDark(int x, int y) => modules[(y * Size) + x];

    /// <summary>
    /// Encodes <paramref name="text"/> (UTF-8, error correction level M). Throws <see cref="ArgumentException"/>
    /// when it is empty or longer than <see cref="MaxTextLength"/> UTF-8 bytes: the gateway builds this text itself.
    /// </summary>
    public static QrCode Encode(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(System.Text.Encoding.UTF8.GetByteCount(text), MaxTextLength, nameof(text));
        using var data = QRCodeGenerator.GenerateQrCode(text, QRCodeGenerator.ECCLevel.M);
        var matrix = data.ModuleMatrix;
        var size = 21 + (4 * (data.Version - 1));

        // QRCoder's matrix may already carry its own quiet zone; take the code from the middle either way.
        var offset = (matrix.Count - size) / 2;
        var modules = new bool[size * size];
        for (var y = 0; y < size; y++)
        {
            var row = matrix[y + offset];
            for (var x = 0; x < size; x++)
            {
                modules[(y * size) + x] = row[x + offset];
            }
        }

        return new QrCode(size, modules);
    }

    /// <summary>
    /// The largest module size (whole pixels) at which the code and its quiet zone fit a square of
    /// <paramref name="box"/> pixels, at least 1.
    /// </summary>
    public int ModulePixels(int box) => Math.Max(1, box / SizeWithQuietZone);

    /// <summary>
    /// Draws the code centred in <paramref name="area"/>: a white square with the quiet zone, dark modules in black,
    /// each <see cref="ModulePixels"/> pixels wide. Returns the square drawn (quiet zone included).
    /// </summary>
    public PixelRect Draw(Framebuffer target, PixelRect area)
    {
        ArgumentNullException.ThrowIfNull(target);
        var module = ModulePixels(Math.Min(area.Width, area.Height));
        var side = SizeWithQuietZone * module;
        var square = new PixelRect(area.X + ((area.Width - side) / 2), area.Y + ((area.Height - side) / 2), side, side);
        target.FillRect(square, Bgra.White);
        var left = square.X + (QuietZone * module);
        var top = square.Y + (QuietZone * module);
        for (var y = 0; y < Size; y++)
        {
            for (var x = 0; x < Size; x++)
            {
                if (IsDark(x, y))
                {
                    target.FillRect(new PixelRect(left + (x * module), top + (y * module), module, module), Bgra.Black);
                }
            }
        }

        return square;
    }
}
