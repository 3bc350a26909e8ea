using Gatehouse.Fuzz.Corpus;
using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Fuzz.Targets;

/// <summary>The hold screens' PNG logo decoder (Gatehouse.Gateway): decoded or refused with a PngError, never thrown.</summary>
public static class PngTargets
{
    /// <summary>Small caps, so the allocation bound holds: a logo's real caps allow a few MiB from a small file by design.</summary>
    private static readonly PngLimits Limits = new() { MaxWidth = 64, MaxHeight = 64 };

    public static IEnumerable<FuzzTarget> All()
    {
        byte[][] seeds = [PngCorpus.Rgb3x5, PngCorpus.Rgba4x6];
        yield return new FuzzTarget("png-logo", seeds, Decode);

        // Most mutations break a chunk CRC and stop there; this target repairs every CRC first, so mutations reach
        // the header checks, the inflater and the row filters.
        yield return new FuzzTarget("png-logo-fixed-crc", seeds, input => Decode(FixCrcs(input.ToArray())));
    }

    private static void Decode(ReadOnlySpan<byte> input)
    {
        {
            if (PngDecoder.TryDecode(input, out var image, out var error, Limits))
            {
                if (image is null || image.Width < 1 || image.Height < 1 || image.Width > Limits.MaxWidth || image.Height > Limits.MaxHeight
                    || image.Pixels.Length != image.Width * image.Height)
                {
                    throw new OracleViolationException("a decoded image breaks the limits or its own size");
                }
            }
            else if (error is null || image is not null)
            {
                throw new OracleViolationException("a refusal without a PngError, or with an image");
            }
        }
    }

    /// <summary>Rewrites the CRC of every whole chunk after the signature (stops at the first chunk that runs past the end).</summary>
    private static byte[] FixCrcs(byte[] png)
    {
        var position = 8;
        while (png.Length - position >= 12)
        {
            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(position));
            if (length > (uint)(png.Length - position - 12))
            {
                break;
            }

            var end = position + 8 + (int)length;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(end), Crc32(png.AsSpan(position + 4, 4 + (int)length)));
            position = end + 4;
        }

        return png;
    }

    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
            }
        }

        return ~crc;
    }
}
