using System.Buffers.Binary;
using System.IO.Compression;
using Gatehouse.Fuzz;
using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class PngDecoderTests
{
    // Made with Python's zlib and struct (not with the decoder under test): 3×5 RGB and 4×6 RGBA, row y using filter
    // type y % 5 (None, Sub, Up, Average, Paeth), with a tEXt chunk; pixel (x, y) is Expected(x, y).
    private const string Rgb3x5 =
        "89504e470d0a1a0a0000000d49484452000000030000000508020000000f13c1f50000001074455874436f6d6d656e740068616e646d6164658b21d5130000002d4944415478da63606766d067e60a6716616437e5d26000212606232e08626649131191e402221690000308010059bf03597b478e7a0000000049454e44ae426082";

    private const string Rgba4x6 =
        "89504e470d0a1a0a0000000d4948445200000004000000060806000000e4393f750000001074455874436f6d6d656e740068616e646d6164658b21d5130000004c4944415478da63606766f8afcfccf53a9c59e47a3db3dc61467653aeff1a0c5c6f609889c1888b011933b3a489348848727d836116b00c031266ff6bf45fffafcdebf0bf6ed7ebff061c0600682518d96c00baf10000000049454e44ae426082";

    [Theory]
    [InlineData(Rgb3x5, 3, 5, false)]
    [InlineData(Rgba4x6, 4, 6, true)]
    public void TryDecode_HandmadePng_GivesEveryPixelThroughEveryFilter(string hex, int width, int height, bool alpha)
    {
        Assert.True(PngDecoder.TryDecode(Convert.FromHexString(hex), out var image, out var error), error?.ToString());
        Assert.Equal(width, image!.Width);
        Assert.Equal(height, image.Height);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                Assert.Equal(Expected(x, y, alpha).ToString("X8"), image.Pixels[(y * width) + x].ToString("X8"));
            }
        }
    }

    [Fact]
    public void TryDecode_BuiltPng_MatchesTheBuilder()
    {
        var png = PngBuilder.Image(2, 2, colourType: 6, [0xFF, 0, 0, 0xFF, 0, 0xFF, 0, 0x80, 0, 0, 0xFF, 0, 1, 2, 3, 4]);
        Assert.True(PngDecoder.TryDecode(png, out var image, out var error), error?.ToString());
        Assert.Equal([0xFFFF0000u, 0x8000FF00u, 0x000000FFu, 0x04010203u], image!.Pixels.ToArray());
    }

    public static TheoryData<string, byte[], PngErrorKind> Malformed() => new()
    {
        { "empty", [], PngErrorKind.NotPng },
        { "not a PNG", "GIF89a.........."u8.ToArray(), PngErrorKind.NotPng },
        { "signature only", PngBuilder.Signature, PngErrorKind.Truncated },
        { "truncated inside IHDR", Convert.FromHexString(Rgb3x5)[..20], PngErrorKind.Truncated },
        { "no IEND", Convert.FromHexString(Rgb3x5)[..^12], PngErrorKind.Truncated },
        { "bad CRC", FlipByte(Convert.FromHexString(Rgb3x5), 29), PngErrorKind.BadChecksum },
        { "IDAT first", PngBuilder.Png(PngBuilder.Chunk("IDAT", [1, 2, 3]), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "chunk runs past the end", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2), [0x7F, 0xFF, 0xFF, 0xFF, (byte)'I', (byte)'D', (byte)'A', (byte)'T', 0, 0, 0, 0]), PngErrorKind.Truncated },
        { "zero width", PngBuilder.Png(PngBuilder.Header(0, 1, 8, 2), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "palette", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 3), PngBuilder.Chunk("IEND", [])), PngErrorKind.Unsupported },
        { "16-bit", PngBuilder.Png(PngBuilder.Header(1, 1, 16, 2), PngBuilder.Chunk("IEND", [])), PngErrorKind.Unsupported },
        { "interlaced", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2, interlace: 1), PngBuilder.Chunk("IEND", [])), PngErrorKind.Unsupported },
        { "interlace 7", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2, interlace: 7), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "4 billion wide", PngBuilder.Png(PngBuilder.Header(0xFFFFFFFF, 1, 8, 2), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "5000 × 5000", PngBuilder.Png(PngBuilder.Header(5000, 5000, 8, 6), PngBuilder.Chunk("IEND", [])), PngErrorKind.ImageTooLarge },
        { "unknown critical chunk", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2), PngBuilder.Chunk("ZZZZ", []), PngBuilder.Chunk("IEND", [])), PngErrorKind.Unsupported },
        { "not zlib", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2), PngBuilder.Chunk("IDAT", [1, 2, 3, 4, 5, 6]), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "short data", PngBuilder.Png(PngBuilder.Header(2, 2, 8, 2), PngBuilder.Chunk("IDAT", PngBuilder.Deflate(new byte[5])), PngBuilder.Chunk("IEND", [])), PngErrorKind.Truncated },
        { "bomb", PngBuilder.Png(PngBuilder.Header(1, 1, 8, 2), PngBuilder.Chunk("IDAT", PngBuilder.Deflate(new byte[4 * 1024 * 1024])), PngBuilder.Chunk("IEND", [])), PngErrorKind.Malformed },
        { "filter 5", PngBuilder.Image(1, 1, 2, [1, 2, 3], filter: 5), PngErrorKind.Malformed },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void TryDecode_MalformedPng_IsRefusedWithTheKind(string name, byte[] png, PngErrorKind kind)
    {
        Assert.False(PngDecoder.TryDecode(png, out var image, out var error), name);
        Assert.Null(image);
        Assert.Equal(kind, error!.Kind);
        Assert.False(string.IsNullOrWhiteSpace(error.Detail));
    }

    [Fact]
    public void TryDecode_FileOverTheCap_IsRefusedBeforeParsing()
    {
        var png = Convert.FromHexString(Rgb3x5);
        Assert.False(PngDecoder.TryDecode(png, out _, out var error, new PngLimits { MaxFileBytes = png.Length - 1 }));
        Assert.Equal(PngErrorKind.FileTooLarge, error!.Kind);
        Assert.True(PngDecoder.TryDecode(png, out _, out _, new PngLimits { MaxFileBytes = png.Length }));
    }

    [Fact]
    public void TryDecode_ImageOverTheLimits_IsRefused()
    {
        var png = Convert.FromHexString(Rgba4x6);
        Assert.Equal(PngErrorKind.ImageTooLarge, Refusal(png, new PngLimits { MaxWidth = 3 }));
        Assert.Equal(PngErrorKind.ImageTooLarge, Refusal(png, new PngLimits { MaxHeight = 5 }));
        Assert.True(PngDecoder.TryDecode(png, out _, out _, new PngLimits { MaxWidth = 4, MaxHeight = 6 }));
    }

    [Fact]
    public void TryLoad_MissingOrOversizedFile_IsATypedError()
    {
        var directory = Directory.CreateTempSubdirectory("gatehouse-png-");
        try
        {
            Assert.False(PngFile.TryLoad(Path.Combine(directory.FullName, "missing.png"), out _, out var missing));
            Assert.Equal(PngErrorKind.Unreadable, missing!.Kind);

            var path = Path.Combine(directory.FullName, "logo.png");
            File.WriteAllBytes(path, Convert.FromHexString(Rgb3x5));
            Assert.True(PngFile.TryLoad(path, out var image, out _));
            Assert.Equal(3, image!.Width);
            Assert.False(PngFile.TryLoad(path, out _, out var large, new PngLimits { MaxFileBytes = 10 }));
            Assert.Equal(PngErrorKind.FileTooLarge, large!.Kind);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The fuzz rule for parsers: mutated PNGs are decoded or refused with a PngError, never an exception.</summary>
    [Fact]
    public void TryDecode_MutatedPngs_NeverThrow()
    {
        var seeds = new[]
        {
            Convert.FromHexString(Rgb3x5),
            Convert.FromHexString(Rgba4x6),
            PngBuilder.Image(2, 2, 6, new byte[16]),
        };
        var mutator = new Mutator(new Random(1414), maxLength: 4096);
        var decoded = 0;
        var refused = new HashSet<PngErrorKind>();
        for (var i = 0; i < 20_000; i++)
        {
            var input = mutator.Mutate(seeds[i % seeds.Length], seeds);
            if (PngDecoder.TryDecode(input, out var image, out var error, new PngLimits { MaxWidth = 256, MaxHeight = 256 }))
            {
                Assert.Equal(image!.Width * image.Height, image.Pixels.Length);
                decoded++;
            }
            else
            {
                Assert.NotNull(error);
                refused.Add(error.Kind);
            }
        }

        // The mutations reach past the checksum into the decoder, not only the first checks.
        Assert.True(decoded > 0);
        Assert.Contains(PngErrorKind.BadChecksum, refused);
    }

    [Fact]
    public void TryDecode_FuzzFindings_AreRefusedNotThrown()
    {
        // crash-667451eac47749c3: deflate data that zlib rejects with ZLibException rather than InvalidDataException.
        var folder = Path.Combine(RepoPaths.RegressionsDirectory, "png-logo-fixed-crc");
        var target = FuzzTargets.Find("png-logo-fixed-crc")!;
        var files = Directory.GetFiles(folder, "*.bin");
        Assert.NotEmpty(files);
        Assert.All(files, file => Assert.Null(FuzzEngine.RunOne(target, File.ReadAllBytes(file))));
    }

    internal static uint Expected(int x, int y, bool alpha)
    {
        var r = (uint)((x * 40) + 7) & 0xFF;
        var g = (uint)((y * 50) + 3) & 0xFF;
        var b = (uint)((x + y) * 10) & 0xFF;
        var a = alpha ? (uint)(255 - (x * 20)) & 0xFF : 0xFF;
        return (a << 24) | (r << 16) | (g << 8) | b;
    }

    private static PngErrorKind? Refusal(byte[] png, PngLimits limits) =>
        PngDecoder.TryDecode(png, out _, out var error, limits) ? null : error!.Kind;

    private static byte[] FlipByte(byte[] bytes, int index)
    {
        bytes[index] ^= 0x01;
        return bytes;
    }
}

/// <summary>Writes PNG files for tests, with its own CRC-32 (not the decoder's).</summary>
internal static class PngBuilder
{
    public static byte[] Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public static byte[] Png(params byte[][] chunks) => [.. Signature, .. chunks.SelectMany(c => c)];

    public static byte[] Header(uint width, uint height, byte depth, byte colourType, byte interlace = 0)
    {
        var body = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(body, width);
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(4), height);
        body[8] = depth;
        body[9] = colourType;
        body[12] = interlace;
        return Chunk("IHDR", body);
    }

    public static byte[] Chunk(string type, byte[] body)
    {
        var bytes = new byte[12 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)body.Length);
        System.Text.Encoding.ASCII.GetBytes(type, bytes.AsSpan(4));
        body.CopyTo(bytes, 8);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8 + body.Length), Crc(bytes.AsSpan(4, 4 + body.Length)));
        return bytes;
    }

    /// <summary>An 8-bit image from its raw pixel bytes, every row with the given filter byte and unfiltered data.</summary>
    public static byte[] Image(int width, int height, byte colourType, byte[] pixels, byte filter = 0)
    {
        var channels = colourType == 6 ? 4 : 3;
        var raw = new List<byte>();
        for (var y = 0; y < height; y++)
        {
            raw.Add(filter);
            raw.AddRange(pixels.Skip(y * width * channels).Take(width * channels));
        }

        return Png(Header((uint)width, (uint)height, 8, colourType), Chunk("IDAT", Deflate([.. raw])), Chunk("IEND", []));
    }

    public static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal))
        {
            zlib.Write(data);
        }

        return output.ToArray();
    }

    private static uint Crc(ReadOnlySpan<byte> bytes)
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
