using System.Buffers.Binary;
using System.IO.Compression;

namespace Gatehouse.Tools.FontGen;

/// <summary>
/// Reads the glyphs of a fixed-cell X11 PCF font (the format of /usr/share/fonts/X11/misc) into one 1-bit row
/// table: <see cref="Rows"/> holds, for each code 0x20–0xFF, <see cref="CellHeight"/> rows of two bytes, most
/// significant bit = leftmost pixel. A dev-time reader of a trusted system file, not a parser of hostile input.
/// </summary>
public sealed class PcfFont
{
    private const int PcfMetrics = 1 << 2;
    private const int PcfBitmaps = 1 << 3;
    private const int PcfBdfEncodings = 1 << 5;
    private const int PcfBdfAccelerators = 1 << 8;
    private const int PcfAccelerators = 1 << 1;
    private const int PcfCompressedMetrics = 0x100;
    private const int PcfByteMask = 1 << 2;
    private const int PcfBitMask = 1 << 3;

    public const int FirstCode = 0x20;
    public const int LastCode = 0xFF;
    public const int CellWidth = 10;
    public const int CellHeight = 20;
    public const int BytesPerRow = 2;

    private PcfFont(byte[] rows) => Rows = rows;

    /// <summary>(LastCode − FirstCode + 1) × CellHeight × BytesPerRow bytes.</summary>
    public byte[] Rows { get; }

    public static PcfFont Load(string path)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gzip.CopyTo(memory);
        return Parse(memory.ToArray());
    }

    public static PcfFont Parse(byte[] data)
    {
        if (data.Length < 8 || data[0] != 1 || data[1] != (byte)'f' || data[2] != (byte)'c' || data[3] != (byte)'p')
        {
            throw new InvalidDataException("not a PCF file");
        }

        var tableCount = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(4));
        var tables = new Dictionary<int, int>();
        for (var i = 0; i < tableCount; i++)
        {
            var entry = data.AsSpan(8 + (i * 16));
            tables[BinaryPrimitives.ReadInt32LittleEndian(entry)] = BinaryPrimitives.ReadInt32LittleEndian(entry[12..]);
        }

        var ascent = ReadAscent(data, tables.TryGetValue(PcfBdfAccelerators, out var acc) ? acc : tables[PcfAccelerators]);
        var metrics = ReadMetrics(data, tables[PcfMetrics]);
        var bitmaps = ReadBitmaps(data, tables[PcfBitmaps], out var bitmapFormat);
        var encoding = ReadEncoding(data, tables[PcfBdfEncodings]);

        var padBytes = 1 << (bitmapFormat & 3);
        var msbBitFirst = (bitmapFormat & PcfBitMask) != 0;
        var rows = new byte[(LastCode - FirstCode + 1) * CellHeight * BytesPerRow];
        for (var code = FirstCode; code <= LastCode; code++)
        {
            if (!encoding.TryGetValue(code, out var glyph))
            {
                continue;
            }

            var (left, right, glyphAscent, descent) = metrics[glyph];
            var width = right - left;
            var height = glyphAscent + descent;
            var stride = (((width + 7) / 8) + padBytes - 1) / padBytes * padBytes;
            var offset = bitmaps[glyph];
            for (var y = 0; y < height; y++)
            {
                var cellY = ascent - glyphAscent + y;
                if (cellY is < 0 or >= CellHeight)
                {
                    continue;
                }

                for (var x = 0; x < width; x++)
                {
                    var b = data[offset + (y * stride) + (x / 8)];
                    var bit = msbBitFirst ? (b >> (7 - (x % 8))) & 1 : (b >> (x % 8)) & 1;
                    var cellX = left + x;
                    if (bit == 0 || cellX is < 0 or >= CellWidth)
                    {
                        continue;
                    }

                    var index = ((((code - FirstCode) * CellHeight) + cellY) * BytesPerRow) + (cellX / 8);
                    rows[index] |= (byte)(0x80 >> (cellX % 8));
                }
            }
        }

        return new PcfFont(rows);
    }

    private static int Format(byte[] data, int offset) => BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));

    private static int I32(byte[] data, int offset, int format) =>
        (format & PcfByteMask) != 0 ? BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(offset)) : BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));

    private static int I16(byte[] data, int offset, int format) =>
        (format & PcfByteMask) != 0 ? BinaryPrimitives.ReadInt16BigEndian(data.AsSpan(offset)) : BinaryPrimitives.ReadInt16LittleEndian(data.AsSpan(offset));

    private static int ReadAscent(byte[] data, int offset)
    {
        var format = Format(data, offset);
        return I32(data, offset + 4 + 8, format);
    }

    private static List<(int Left, int Right, int Ascent, int Descent)> ReadMetrics(byte[] data, int offset)
    {
        var format = Format(data, offset);
        var list = new List<(int, int, int, int)>();
        if ((format & PcfCompressedMetrics) != 0)
        {
            var count = I16(data, offset + 4, format);
            for (var i = 0; i < count; i++)
            {
                var p = offset + 6 + (i * 5);
                list.Add((data[p] - 0x80, data[p + 1] - 0x80, data[p + 3] - 0x80, data[p + 4] - 0x80));
            }
        }
        else
        {
            var count = I32(data, offset + 4, format);
            for (var i = 0; i < count; i++)
            {
                var p = offset + 8 + (i * 12);
                list.Add((I16(data, p, format), I16(data, p + 2, format), I16(data, p + 6, format), I16(data, p + 8, format)));
            }
        }

        return list;
    }

    private static int[] ReadBitmaps(byte[] data, int offset, out int format)
    {
        format = Format(data, offset);
        var count = I32(data, offset + 4, format);
        var dataStart = offset + 8 + (count * 4) + 16;
        var offsets = new int[count];
        for (var i = 0; i < count; i++)
        {
            offsets[i] = dataStart + I32(data, offset + 8 + (i * 4), format);
        }

        return offsets;
    }

    private static Dictionary<int, int> ReadEncoding(byte[] data, int offset)
    {
        var format = Format(data, offset);
        var min2 = I16(data, offset + 4, format);
        var max2 = I16(data, offset + 6, format);
        var min1 = I16(data, offset + 8, format);
        var max1 = I16(data, offset + 10, format);
        var map = new Dictionary<int, int>();
        var index = 0;
        for (var b1 = min1; b1 <= max1; b1++)
        {
            for (var b2 = min2; b2 <= max2; b2++)
            {
                var glyph = I16(data, offset + 14 + (index * 2), format) & 0xFFFF;
                index++;
                if (glyph != 0xFFFF)
                {
                    map[(b1 << 8) | b2] = glyph;
                }
            }
        }

        return map;
    }
}
