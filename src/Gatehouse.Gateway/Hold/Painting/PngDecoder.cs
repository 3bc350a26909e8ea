using System.Buffers.Binary;
using System.IO.Compression;

namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>Why a PNG was refused.</summary>
public enum PngErrorKind
{
    /// <summary>The file is larger than <see cref="PngLimits.MaxFileBytes"/>.</summary>
    FileTooLarge,

    /// <summary>The file does not start with the PNG signature.</summary>
    NotPng,

    /// <summary>The file ends inside a chunk, or before IEND, or the image data is shorter than the image.</summary>
    Truncated,

    /// <summary>A chunk's CRC does not match its bytes.</summary>
    BadChecksum,

    /// <summary>A field holds a value the PNG specification does not allow (or chunks are out of order).</summary>
    Malformed,

    /// <summary>A valid PNG this decoder does not read: not 8-bit RGB or RGBA, interlaced, or with an unknown critical chunk.</summary>
    Unsupported,

    /// <summary>The image is wider, taller or larger than <see cref="PngLimits"/> allows.</summary>
    ImageTooLarge,

    /// <summary>The file could not be read (missing, no permission, an I/O error).</summary>
    Unreadable,
}

/// <summary>A refused PNG: the kind and a sentence for the log.</summary>
public sealed record PngError(PngErrorKind Kind, string Detail)
{
    /// <inheritdoc />
    public override string ToString() => $"PNG {Kind}: {Detail}";
}

/// <summary>The caps the decoder applies before it allocates anything.</summary>
public sealed record PngLimits
{
    /// <summary>The defaults for a logo: 1 MiB, 1024 × 1024.</summary>
    public static PngLimits Default { get; } = new();

    /// <summary>The largest file accepted, in bytes.</summary>
    public int MaxFileBytes { get; init; } = 1024 * 1024;

    /// <summary>The widest image accepted.</summary>
    public int MaxWidth { get; init; } = 1024;

    /// <summary>The tallest image accepted.</summary>
    public int MaxHeight { get; init; } = 1024;
}

/// <summary>A decoded image: <see cref="Bgra"/> pixels with straight (not premultiplied) alpha, rows from the top.</summary>
public sealed class PngImage(int width, int height, uint[] pixels)
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; } = width;

    /// <summary>Height in pixels.</summary>
    public int Height { get; } = height;

    /// <summary>Width × Height pixels, 0xAARRGGBB.</summary>
    public ReadOnlySpan<uint> Pixels => pixels;
}

/// <summary>
/// A minimal PNG decoder for logos: 8-bit truecolour (RGB, colour type 2) or truecolour with alpha (RGBA, colour type
/// 6), not interlaced. Every chunk's CRC is checked, sizes are capped by <see cref="PngLimits"/> before anything is
/// allocated, and the image data is inflated into a buffer of exactly the size the header implies, so a
/// decompression bomb stops there. Bad input never throws: it returns a <see cref="PngError"/>.
/// </summary>
public static class PngDecoder
{
    /// <summary>The most bytes the inflated image data may take, whatever the limits say (64 MiB).</summary>
    public const int MaxRawBytes = 64 * 1024 * 1024;

    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Decodes <paramref name="data"/>, or returns false with the reason.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> data, out PngImage? image, out PngError? error, PngLimits? limits = null)
    {
        limits ??= PngLimits.Default;
        image = null;
        error = Decode(data, limits, out image);
        return error is null;
    }

    private static PngError? Decode(ReadOnlySpan<byte> data, PngLimits limits, out PngImage? image)
    {
        image = null;
        if (data.Length > limits.MaxFileBytes)
        {
            return new(PngErrorKind.FileTooLarge, $"{data.Length} bytes, more than {limits.MaxFileBytes}");
        }

        if (data.Length < Signature.Length || !data[..Signature.Length].SequenceEqual(Signature))
        {
            return new(PngErrorKind.NotPng, "no PNG signature");
        }

        var position = Signature.Length;
        var width = 0;
        var height = 0;
        var channels = 0;
        var sawHeader = false;
        using var compressed = new MemoryStream();
        while (true)
        {
            if (data.Length - position < 12)
            {
                return new(PngErrorKind.Truncated, "the file ends before IEND");
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(data[position..]);
            if (length > (uint)(data.Length - position - 12))
            {
                return new(PngErrorKind.Truncated, $"a chunk of {length} bytes runs past the end of the file");
            }

            var typeAndBody = data.Slice(position + 4, 4 + (int)length);
            var type = typeAndBody[..4];
            var body = typeAndBody[4..];
            var crc = BinaryPrimitives.ReadUInt32BigEndian(data[(position + 8 + (int)length)..]);
            position += 12 + (int)length;
            if (Crc32(typeAndBody) != crc)
            {
                return new(PngErrorKind.BadChecksum, $"chunk {Name(type)}: CRC mismatch");
            }

            if (!sawHeader)
            {
                if (!type.SequenceEqual("IHDR"u8) || length != 13)
                {
                    return new(PngErrorKind.Malformed, "the first chunk is not a 13-byte IHDR");
                }

                var headerError = ReadHeader(body, limits, out width, out height, out channels);
                if (headerError is not null)
                {
                    return headerError;
                }

                sawHeader = true;
            }
            else if (type.SequenceEqual("IDAT"u8))
            {
                compressed.Write(body);
            }
            else if (type.SequenceEqual("IEND"u8))
            {
                break;
            }
            else if (type.SequenceEqual("IHDR"u8))
            {
                return new(PngErrorKind.Malformed, "a second IHDR");
            }
            else if ((type[0] & 0x20) == 0 && !type.SequenceEqual("PLTE"u8))
            {
                // Critical chunks (upper-case first letter) must be understood; a suggested palette (PLTE) for
                // truecolour may be ignored, ancillary chunks always may.
                return new(PngErrorKind.Unsupported, $"critical chunk {Name(type)}");
            }
        }

        var stride = width * channels;
        var raw = new byte[height * (stride + 1)];
        var inflateError = Inflate(compressed, raw);
        if (inflateError is not null)
        {
            return inflateError;
        }

        var pixels = new uint[width * height];
        var previous = new byte[stride];
        var current = new byte[stride];
        for (var y = 0; y < height; y++)
        {
            var line = raw.AsSpan(y * (stride + 1), stride + 1);
            var filter = line[0];
            line[1..].CopyTo(current);
            if (!Unfilter(filter, current, previous, channels))
            {
                return new(PngErrorKind.Malformed, $"row {y}: filter type {filter}");
            }

            for (var x = 0; x < width; x++)
            {
                var p = x * channels;
                var alpha = channels == 4 ? current[p + 3] : (byte)0xFF;
                pixels[(y * width) + x] = ((uint)alpha << 24) | ((uint)current[p] << 16) | ((uint)current[p + 1] << 8) | current[p + 2];
            }

            (previous, current) = (current, previous);
        }

        image = new PngImage(width, height, pixels);
        return null;
    }

    private static PngError? ReadHeader(ReadOnlySpan<byte> body, PngLimits limits, out int width, out int height, out int channels)
    {
        var rawWidth = BinaryPrimitives.ReadUInt32BigEndian(body);
        var rawHeight = BinaryPrimitives.ReadUInt32BigEndian(body[4..]);
        width = height = channels = 0;
        if (rawWidth == 0 || rawHeight == 0 || rawWidth > int.MaxValue || rawHeight > int.MaxValue)
        {
            return new(PngErrorKind.Malformed, $"image size {rawWidth}×{rawHeight}");
        }

        if (rawWidth > (long)limits.MaxWidth || rawHeight > (long)limits.MaxHeight)
        {
            return new(PngErrorKind.ImageTooLarge, $"{rawWidth}×{rawHeight}, more than {limits.MaxWidth}×{limits.MaxHeight}");
        }

        var (bitDepth, colourType, compression, filter, interlace) = (body[8], body[9], body[10], body[11], body[12]);
        if (compression != 0 || filter != 0 || interlace > 1)
        {
            return new(PngErrorKind.Malformed, $"compression {compression}, filter {filter}, interlace {interlace}");
        }

        if (bitDepth != 8 || colourType is not (2 or 6) || interlace != 0)
        {
            return new(PngErrorKind.Unsupported, $"bit depth {bitDepth}, colour type {colourType}, interlace {interlace} (only 8-bit RGB or RGBA, not interlaced)");
        }

        channels = colourType == 6 ? 4 : 3;
        if ((long)rawHeight * ((rawWidth * channels) + 1) > MaxRawBytes)
        {
            channels = 0;
            return new(PngErrorKind.ImageTooLarge, $"{rawWidth}×{rawHeight} needs more than {MaxRawBytes} bytes");
        }

        width = (int)rawWidth;
        height = (int)rawHeight;
        return null;
    }

    private static PngError? Inflate(MemoryStream compressed, byte[] raw)
    {
        compressed.Position = 0;
        try
        {
            using var zlib = new ZLibStream(compressed, CompressionMode.Decompress);
            var filled = 0;
            while (filled < raw.Length)
            {
                var read = zlib.Read(raw, filled, raw.Length - filled);
                if (read == 0)
                {
                    return new(PngErrorKind.Truncated, $"the image data inflates to {filled} bytes, {raw.Length} expected");
                }

                filled += read;
            }

            // Bytes beyond the image are allowed by no encoder we know; one extra byte is enough to tell.
            Span<byte> extra = stackalloc byte[1];
            if (zlib.Read(extra) != 0)
            {
                return new(PngErrorKind.Malformed, "the image data inflates to more bytes than the image holds");
            }
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException)
        {
            // Corrupt deflate data surfaces as InvalidDataException, or as ZLibException (an IOException) for some
            // streams zlib itself rejects (found by the png-logo-fixed-crc fuzz target); the stream is in memory, so
            // no other I/O can fail here.
            return new(PngErrorKind.Malformed, $"the image data is not valid zlib: {exception.Message}");
        }

        return null;
    }

    private static bool Unfilter(byte filter, Span<byte> current, ReadOnlySpan<byte> previous, int bpp)
    {
        switch (filter)
        {
            case 0:
                return true;
            case 1:
                for (var i = bpp; i < current.Length; i++)
                {
                    current[i] = unchecked((byte)(current[i] + current[i - bpp]));
                }

                return true;
            case 2:
                for (var i = 0; i < current.Length; i++)
                {
                    current[i] = unchecked((byte)(current[i] + previous[i]));
                }

                return true;
            case 3:
                for (var i = 0; i < current.Length; i++)
                {
                    var left = i >= bpp ? current[i - bpp] : 0;
                    current[i] = unchecked((byte)(current[i] + ((left + previous[i]) >> 1)));
                }

                return true;
            case 4:
                for (var i = 0; i < current.Length; i++)
                {
                    var a = i >= bpp ? current[i - bpp] : 0;
                    var b = previous[i];
                    var c = i >= bpp ? previous[i - bpp] : 0;
                    current[i] = unchecked((byte)(current[i] + Paeth(a, b, c)));
                }

                return true;
            default:
                return false;
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var pa = Math.Abs(p - a);
        var pb = Math.Abs(p - b);
        var pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>The CRC-32 of PNG (ISO 3309, the same as zlib's), over a chunk's type and data.</summary>
    internal static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (var n = 0u; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }

    private static string Name(ReadOnlySpan<byte> type)
    {
        Span<char> chars = stackalloc char[4];
        for (var i = 0; i < 4; i++)
        {
            chars[i] = type[i] is >= 0x21 and <= 0x7E ? (char)type[i] : '?';
        }

        return new string(chars);
    }
}
