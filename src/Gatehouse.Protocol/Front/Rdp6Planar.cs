namespace Gatehouse.Protocol.Front;

/// <summary>
/// [MS-RDPEGDI] 2.2.2.5.1 / 3.1.9 RDP 6.0 bitmap compression, the planar codec with RLE, encoder side only: no alpha
/// plane (NA), no colour loss, no chroma subsampling, so the planes are red, green and blue. Each plane's first
/// scanline is absolute, the others are deltas to the scanline before (modulo 256, sign in the low bit), and every
/// scanline is cut into segments of at most 15 raw bytes and a run of the last value.
/// </summary>
public static class Rdp6Planar
{
    /// <summary>FormatHeader: RLE (0x10) | NA (0x20), CLL 0, CS 0.</summary>
    public const byte FormatHeader = 0x30;

    /// <summary>The most a plane of <paramref name="width"/>×<paramref name="height"/> can take (every byte raw, one control byte per 15).</summary>
    public static int MaxPlaneSize(int width, int height) => height * (width + ((width + 14) / 15));

    /// <summary>The most an encoded stream can take.</summary>
    public static int MaxSize(int width, int height) => 1 + (3 * MaxPlaneSize(width, height));

    /// <summary>
    /// Encodes BGRA pixels (4 bytes each, <paramref name="width"/> per row, rows in the order they are sent) into
    /// <paramref name="destination"/>, which holds at least <see cref="MaxSize"/> bytes. Returns the bytes written.
    /// </summary>
    public static int Encode(ReadOnlySpan<byte> bgra, int width, int height, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bgra.Length, width * height * 4);
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, MaxSize(width, height));
        destination[0] = FormatHeader;
        var o = 1;
        Span<byte> line = stackalloc byte[width];
        foreach (var channel in (ReadOnlySpan<int>)[2, 1, 0])
        {
            for (var y = 0; y < height; y++)
            {
                var row = bgra.Slice(y * width * 4, width * 4);
                for (var x = 0; x < width; x++)
                {
                    var value = row[(4 * x) + channel];
                    if (y == 0)
                    {
                        line[x] = value;
                        continue;
                    }

                    // The delta wraps to a signed byte; the sign goes to the low bit: 2d, or 2|d| - 1 when negative.
                    var delta = unchecked((sbyte)(value - bgra[((y - 1) * width * 4) + (4 * x) + channel]));
                    line[x] = unchecked((byte)(delta >= 0 ? delta << 1 : ((-delta) << 1) - 1));
                }

                o += EncodeScanline(line, destination[o..]);
            }
        }

        return o;
    }

    /// <summary>Cuts one scanline of plane values into RDP6_RLE_SEGMENTs.</summary>
    private static int EncodeScanline(ReadOnlySpan<byte> line, Span<byte> destination)
    {
        var o = 0;
        var pos = 0;
        byte last = 0; // A run with no raw bytes repeats the scanline's last value, 0 at its start.
        while (pos < line.Length)
        {
            var same = Count(line, pos, last);
            if (same >= 3)
            {
                // Runs of the last value need no raw byte: 3-15 in nRunLength, 16-31 and 32-47 in the two long forms (nRunLength 1
                // and 2, the extra length in cRawBytes).
                var n = Math.Min(same, 47);
                destination[o++] = n switch
                {
                    >= 32 => (byte)(((n - 32) << 4) | 2),
                    >= 16 => (byte)(((n - 16) << 4) | 1),
                    _ => (byte)n,
                };
                pos += n;
                continue;
            }

            var control = o++;
            var raw = 0;
            var run = 0;
            while (pos < line.Length && raw < 15)
            {
                var value = line[pos];
                destination[o++] = value;
                raw++;
                pos++;
                last = value;
                var repeats = Count(line, pos, value);
                if (repeats >= 3)
                {
                    run = Math.Min(repeats, 15);
                    pos += run;
                    break;
                }
            }

            // controlByte: cRawBytes in the high nibble, nRunLength in the low one ([MS-RDPEGDI] 3.1.9.2's 0x13 is one raw byte, a run of 3).
            destination[control] = (byte)((raw << 4) | run);
        }

        return o;
    }

    private static int Count(ReadOnlySpan<byte> line, int start, byte value)
    {
        var n = 0;
        while (start + n < line.Length && line[start + n] == value)
        {
            n++;
        }

        return n;
    }
}
