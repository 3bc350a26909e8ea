using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Protocol.FastPath;

namespace Gatehouse.Protocol.Front;

/// <summary>
/// [MS-RDPBCGR] 2.2.9.1.2 Fast-Path Update PDUs the hold front paints with: uncompressed Bitmap Updates in tiles of at
/// most 64×64 (one rectangle per update, widths padded to a multiple of 4, rows bottom-up), fragmented so that every
/// PDU stays within 16,383 bytes and every reassembled update within the client's MaxRequestSize; and PTR_DEFAULT.
/// </summary>
public static class FrontOutput
{
    /// <summary>Largest fast-path PDU the front writes (the 15-bit length minus the first bit's worth, as IronRDP and FreeRDP keep).</summary>
    public const int MaxFastPathPduSize = 16_383;

    /// <summary>Largest tile side.</summary>
    public const int TileSize = 64;

    /// <summary>fpOutputHeader (1) + the two-byte length (2).</summary>
    public const int FastPathHeaderSize = 3;

    /// <summary>TS_FP_UPDATE updateHeader (1) + size (2).</summary>
    public const int UpdateHeaderSize = 3;

    /// <summary>Largest updateData in one fast-path PDU.</summary>
    public const int MaxUpdateDataPerPdu = MaxFastPathPduSize - FastPathHeaderSize - UpdateHeaderSize;

    /// <summary>TS_UPDATE_BITMAP_DATA updateType (2) + numberRectangles (2).</summary>
    public const int BitmapUpdateHeaderSize = 4;

    /// <summary>TS_BITMAP_DATA without bitmapDataStream.</summary>
    public const int BitmapDataHeaderSize = 2 * 9;

    /// <summary>TS_CD_HEADER: cbCompFirstRowSize, cbCompMainBodySize, cbScanWidth, cbUncompressedSize.</summary>
    public const int CompressedDataHeaderSize = 8;

    /// <summary>TS_BITMAP_DATA flags BITMAP_COMPRESSION.</summary>
    public const ushort BitmapCompression = 0x0001;

    /// <summary>FASTPATH_UPDATETYPE_BITMAP.</summary>
    public const byte UpdateCodeBitmap = 0x1;

    /// <summary>
    /// FASTPATH_UPDATETYPE_PTR_DEFAULT ([MS-RDPBCGR] 2.2.9.1.2.1). Not 0xB, which is FASTPATH_UPDATETYPE_POINTER (a new
    /// pointer shape): FreeRDP 3.10 drops the connection when it gets 0xB with no data.
    /// </summary>
    public const byte UpdateCodePointerDefault = 0x6;

    /// <summary>FASTPATH_FRAGMENT_SINGLE.</summary>
    public const byte FragmentSingle = 0x0;

    /// <summary>FASTPATH_FRAGMENT_LAST.</summary>
    public const byte FragmentLast = 0x1;

    /// <summary>FASTPATH_FRAGMENT_FIRST.</summary>
    public const byte FragmentFirst = 0x2;

    /// <summary>FASTPATH_FRAGMENT_NEXT.</summary>
    public const byte FragmentNext = 0x3;

    /// <summary>
    /// The rows of a 64-pixel-wide tile that fit one update: 64, unless the client's MaxRequestSize (the largest update
    /// it reassembles) is smaller than a whole tile; an update that fits one PDU is always allowed.
    /// </summary>
    public static int TileRows(int bitsPerPixel, uint maxRequestSize)
    {
        var limit = Math.Max((long)maxRequestSize, MaxUpdateDataPerPdu) - BitmapUpdateHeaderSize - BitmapDataHeaderSize;
        var rowBytes = TileSize * (bitsPerPixel / 8);
        return (int)Math.Clamp(limit / rowBytes, 1, TileSize);
    }

    /// <summary>
    /// Writes <paramref name="width"/>×<paramref name="height"/> pixels at (<paramref name="x"/>, <paramref name="y"/>) as Bitmap
    /// Updates. <paramref name="pixels"/> are 0xAARRGGBB values (BGRA bytes in memory), row-major top-down, with
    /// <paramref name="stride"/> pixels per row. With <paramref name="compress"/> at 32 bpp, each tile is sent RDP 6.0
    /// planar compressed when that is smaller. Returns the number of tiles written.
    /// </summary>
    /// <exception cref="ArgumentException">The rectangle or the pixel buffer is inconsistent (a caller bug).</exception>
    public static int WriteBitmap(IBufferWriter<byte> output, int x, int y, int width, int height, ReadOnlySpan<uint> pixels, int stride, int bitsPerPixel, uint maxRequestSize, bool compress = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(x);
        ArgumentOutOfRangeException.ThrowIfNegative(y);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, width);
        if (x + width > ushort.MaxValue + 1 || y + height > ushort.MaxValue + 1)
        {
            throw new ArgumentException("The rectangle does not fit 16-bit coordinates.");
        }

        if (pixels.Length < ((long)(height - 1) * stride) + width)
        {
            throw new ArgumentException($"{pixels.Length} pixels are fewer than the rectangle needs.", nameof(pixels));
        }

        if (bitsPerPixel is not (16 or 32))
        {
            throw new ArgumentOutOfRangeException(nameof(bitsPerPixel), bitsPerPixel, "only 16 and 32 bits per pixel are written");
        }

        // Planar compression exists for 32 bpp only; below 32 bpp the codec would be interleaved RLE, not written here.
        compress &= bitsPerPixel == 32;
        var bytesPerPixel = bitsPerPixel / 8;
        var rows = TileRows(bitsPerPixel, maxRequestSize);
        var raw = new byte[TileSize * rows * bytesPerPixel];
        var planar = compress ? new byte[Rdp6Planar.MaxSize(TileSize, rows)] : [];
        var update = new byte[BitmapUpdateHeaderSize + BitmapDataHeaderSize + CompressedDataHeaderSize + Math.Max(raw.Length, planar.Length)];
        var tiles = 0;
        for (var ty = 0; ty < height; ty += rows)
        {
            var tileHeight = Math.Min(rows, height - ty);
            for (var tx = 0; tx < width; tx += TileSize)
            {
                var tileWidth = Math.Min(TileSize, width - tx);
                var paddedWidth = (tileWidth + 3) & ~3;
                var rowBytes = paddedWidth * bytesPerPixel;
                var rawLength = rowBytes * tileHeight;
                var data = raw.AsSpan(0, rawLength);
                data.Clear();
                for (var row = 0; row < tileHeight; row++)
                {
                    // Bitmap rows are stored bottom-up; the padding columns stay zero (clients crop to destRight).
                    var source = pixels.Slice(((ty + tileHeight - 1 - row) * stride) + tx, tileWidth);
                    var line = data.Slice(row * rowBytes, rowBytes);
                    if (bytesPerPixel == 4)
                    {
                        for (var i = 0; i < source.Length; i++)
                        {
                            BinaryPrimitives.WriteUInt32LittleEndian(line[(4 * i)..], source[i]);
                        }
                    }
                    else
                    {
                        for (var i = 0; i < source.Length; i++)
                        {
                            BinaryPrimitives.WriteUInt16LittleEndian(line[(2 * i)..], ToRgb565(source[i]));
                        }
                    }
                }

                // A compressed tile is sent only when it is smaller than the raw one, header included.
                var compressedLength = compress ? Rdp6Planar.Encode(data, paddedWidth, tileHeight, planar) : int.MaxValue;
                var compressed = compressedLength < int.MaxValue && compressedLength + CompressedDataHeaderSize < rawLength;
                var bitmapLength = compressed ? CompressedDataHeaderSize + compressedLength : rawLength;
                var length = BitmapUpdateHeaderSize + BitmapDataHeaderSize + bitmapLength;
                var u = update.AsSpan(0, length);
                BinaryPrimitives.WriteUInt16LittleEndian(u, 1); // updateType UPDATETYPE_BITMAP
                BinaryPrimitives.WriteUInt16LittleEndian(u[2..], 1); // numberRectangles
                var left = x + tx;
                var top = y + ty;
                BinaryPrimitives.WriteUInt16LittleEndian(u[4..], unchecked((ushort)left)); // destLeft
                BinaryPrimitives.WriteUInt16LittleEndian(u[6..], unchecked((ushort)top)); // destTop
                BinaryPrimitives.WriteUInt16LittleEndian(u[8..], unchecked((ushort)(left + tileWidth - 1))); // destRight (inclusive)
                BinaryPrimitives.WriteUInt16LittleEndian(u[10..], unchecked((ushort)(top + tileHeight - 1))); // destBottom (inclusive)
                BinaryPrimitives.WriteUInt16LittleEndian(u[12..], unchecked((ushort)paddedWidth)); // width
                BinaryPrimitives.WriteUInt16LittleEndian(u[14..], unchecked((ushort)tileHeight)); // height
                BinaryPrimitives.WriteUInt16LittleEndian(u[16..], unchecked((ushort)bitsPerPixel)); // bitsPerPixel
                BinaryPrimitives.WriteUInt16LittleEndian(u[18..], compressed ? BitmapCompression : (ushort)0); // flags
                BinaryPrimitives.WriteUInt16LittleEndian(u[20..], unchecked((ushort)bitmapLength)); // bitmapLength
                var body = u[(BitmapUpdateHeaderSize + BitmapDataHeaderSize)..];
                if (compressed)
                {
                    // TS_CD_HEADER: the General capability set did not offer NO_BITMAP_COMPRESSION_HDR.
                    BinaryPrimitives.WriteUInt16LittleEndian(body, 0); // cbCompFirstRowSize
                    BinaryPrimitives.WriteUInt16LittleEndian(body[2..], unchecked((ushort)compressedLength)); // cbCompMainBodySize
                    BinaryPrimitives.WriteUInt16LittleEndian(body[4..], unchecked((ushort)rowBytes)); // cbScanWidth
                    BinaryPrimitives.WriteUInt16LittleEndian(body[6..], unchecked((ushort)rawLength)); // cbUncompressedSize
                    planar.AsSpan(0, compressedLength).CopyTo(body[CompressedDataHeaderSize..]);
                }
                else
                {
                    data.CopyTo(body);
                }

                WriteUpdate(output, UpdateCodeBitmap, u);
                tiles++;
            }
        }

        return tiles;
    }

    /// <summary>Writes PTR_DEFAULT: the client shows its default arrow.</summary>
    public static void WriteDefaultPointer(IBufferWriter<byte> output) => WriteUpdate(output, UpdateCodePointerDefault, []);

    /// <summary>0xAARRGGBB to RGB 5-6-5.</summary>
    public static ushort ToRgb565(uint pixel)
    {
        var r = (pixel >> 16) & 0xFF;
        var g = (pixel >> 8) & 0xFF;
        var b = pixel & 0xFF;
        return unchecked((ushort)(((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)));
    }

    /// <summary>Writes one update as one PDU, or fragmented FIRST/NEXT/LAST when it does not fit one.</summary>
    public static void WriteUpdate(IBufferWriter<byte> output, byte updateCode, ReadOnlySpan<byte> updateData)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (updateData.Length <= MaxUpdateDataPerPdu)
        {
            WritePdu(output, updateCode, FragmentSingle, updateData);
            return;
        }

        for (var offset = 0; offset < updateData.Length; offset += MaxUpdateDataPerPdu)
        {
            var chunk = updateData.Slice(offset, Math.Min(MaxUpdateDataPerPdu, updateData.Length - offset));
            var fragment = offset == 0 ? FragmentFirst : offset + chunk.Length == updateData.Length ? FragmentLast : FragmentNext;
            WritePdu(output, updateCode, fragment, chunk);
        }
    }

    private static void WritePdu(IBufferWriter<byte> output, byte updateCode, byte fragmentation, ReadOnlySpan<byte> chunk)
    {
        var length = UpdateHeaderSize + chunk.Length;
        var longForm = length + 2 > 0x7F;
        var header = new FastPathHeader(0x00, length + (longForm ? 3 : 2), longForm);
        var total = header.Length;
        var span = output.GetSpan(total)[..total];
        var o = header.WriteTo(span);
        span[o] = (byte)(updateCode | (fragmentation << 4)); // compression 0
        BinaryPrimitives.WriteUInt16LittleEndian(span[(o + 1)..], unchecked((ushort)chunk.Length));
        chunk.CopyTo(span[(o + UpdateHeaderSize)..]);
        output.Advance(total);
    }
}
