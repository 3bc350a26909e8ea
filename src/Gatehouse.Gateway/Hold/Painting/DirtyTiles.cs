using System.Buffers.Binary;

namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// One tile to send as a Bitmap Update rectangle: destination (<see cref="X"/>, <see cref="Y"/>),
/// <see cref="DestinationWidth"/> × <see cref="Height"/> pixels on screen, and <see cref="Pixels"/> of
/// <see cref="Width"/> × <see cref="Height"/>, where <see cref="Width"/> is the bitmap width, always a multiple of 4
/// (clients take it as the stride and crop to the destination): a right-edge tile is padded by repeating its last
/// column. <see cref="Pixels"/> are top-down; RDP wants bottom-up rows, which <see cref="CopyBottomUp"/> writes.
/// </summary>
public sealed class DirtyTile(int x, int y, int width, int destinationWidth, int height, uint[] pixels)
{
    /// <summary>The left column on screen.</summary>
    public int X { get; } = x;

    /// <summary>The top row on screen.</summary>
    public int Y { get; } = y;

    /// <summary>The bitmap width: a multiple of 4, at least <see cref="DestinationWidth"/>.</summary>
    public int Width { get; } = width;

    /// <summary>The columns of the screen the tile covers (destRight = X + DestinationWidth − 1).</summary>
    public int DestinationWidth { get; } = destinationWidth;

    /// <summary>The rows of the tile.</summary>
    public int Height { get; } = height;

    /// <summary><see cref="Width"/> × <see cref="Height"/> pixels, top row first.</summary>
    public ReadOnlySpan<uint> Pixels => pixels;

    /// <summary>The screen rectangle the tile covers.</summary>
    public PixelRect Destination => new(X, Y, DestinationWidth, Height);

    /// <summary>The size of the bitmap data in bytes at 32 bpp (<see cref="Width"/> × <see cref="Height"/> × 4).</summary>
    public int ByteCount => Width * Height * 4;

    /// <summary>
    /// Writes the bitmap as RDP's 32 bpp uncompressed bitmap data: rows from the bottom up, each pixel as B, G, R, A.
    /// <paramref name="destination"/> must hold <see cref="ByteCount"/> bytes.
    /// </summary>
    public void CopyBottomUp(Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, ByteCount, nameof(destination));
        var rowBytes = Width * 4;
        for (var row = 0; row < Height; row++)
        {
            var source = pixels.AsSpan((Height - 1 - row) * Width, Width);
            var target = destination.Slice(row * rowBytes, rowBytes);
            for (var i = 0; i < source.Length; i++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(target[(i * 4)..], source[i]);
            }
        }
    }

    /// <summary>The bitmap as bottom-up B, G, R, A bytes (see <see cref="CopyBottomUp"/>).</summary>
    public byte[] ToBottomUpBytes()
    {
        var bytes = new byte[ByteCount];
        CopyBottomUp(bytes);
        return bytes;
    }
}

/// <summary>
/// Remembers what the client was last sent and finds what changed: the screen is cut into
/// <see cref="TileSize"/> × <see cref="TileSize"/> tiles (one rectangle per Bitmap Update, see hold-screen.md §2),
/// and <see cref="CollectChanges"/> returns the tiles whose pixels differ from what was last sent, then takes them
/// as sent. The first call returns every tile. It keeps a 64-bit digest per tile, not a copy of the screen (about 4 KiB
/// for 1920×1080 instead of 8 MiB); a changed tile whose digest stays the same has a chance of 2^-64.
/// </summary>
public sealed class TileTracker
{
    /// <summary>The side of a tile in pixels.</summary>
    public const int TileSize = 64;

    private readonly ulong[] sent;
    private readonly int tilesPerRow;
    private bool hasSent;

    /// <summary>A tracker for a screen of this size (take it from the framebuffer it will compare).</summary>
    public TileTracker(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)width * height, Framebuffer.MaxPixels, nameof(width));
        Width = width;
        Height = height;
        tilesPerRow = (width + TileSize - 1) / TileSize;
        sent = new ulong[tilesPerRow * ((height + TileSize - 1) / TileSize)];
    }

    /// <summary>The screen width.</summary>
    public int Width { get; }

    /// <summary>The screen height.</summary>
    public int Height { get; }

    /// <summary>Forgets what was sent: the next <see cref="CollectChanges"/> returns every tile (after a reactivation, say).</summary>
    public void Invalidate() => hasSent = false;

    /// <summary>
    /// The tiles of <paramref name="screen"/> that differ from what was last sent (every tile the first time), in
    /// rows from the top, left to right; they are recorded as sent.
    /// </summary>
    public IReadOnlyList<DirtyTile> CollectChanges(Framebuffer screen)
    {
        CheckSize(screen);
        var tiles = new List<DirtyTile>();
        var pixels = screen.Pixels;
        for (var ty = 0; ty < Height; ty += TileSize)
        {
            for (var tx = 0; tx < Width; tx += TileSize)
            {
                var area = new PixelRect(tx, ty, Math.Min(TileSize, Width - tx), Math.Min(TileSize, Height - ty));
                var index = (ty / TileSize * tilesPerRow) + (tx / TileSize);
                var digest = Digest(pixels, area);
                if (hasSent && sent[index] == digest)
                {
                    continue;
                }

                tiles.Add(Cut(screen, area));
                sent[index] = digest;
            }
        }

        hasSent = true;
        return tiles;
    }

    /// <summary>
    /// Every tile of <paramref name="screen"/> that meets <paramref name="area"/>, changed or not (to answer a Refresh
    /// Rect PDU from the kept screen). Does not change what counts as sent.
    /// </summary>
    public IReadOnlyList<DirtyTile> TilesIn(Framebuffer screen, PixelRect area)
    {
        CheckSize(screen);
        var clip = screen.Clip(area);
        var tiles = new List<DirtyTile>();
        if (clip.IsEmpty)
        {
            return tiles;
        }

        for (var ty = clip.Y / TileSize * TileSize; ty < clip.Bottom; ty += TileSize)
        {
            for (var tx = clip.X / TileSize * TileSize; tx < clip.Right; tx += TileSize)
            {
                tiles.Add(Cut(screen, new PixelRect(tx, ty, Math.Min(TileSize, Width - tx), Math.Min(TileSize, Height - ty))));
            }
        }

        return tiles;
    }

    private static DirtyTile Cut(Framebuffer screen, PixelRect area)
    {
        var padded = (area.Width + 3) & ~3;
        var pixels = new uint[padded * area.Height];
        var source = screen.Pixels;
        for (var row = 0; row < area.Height; row++)
        {
            var line = source.Slice(((area.Y + row) * screen.Width) + area.X, area.Width);
            var target = pixels.AsSpan(row * padded, padded);
            line.CopyTo(target);
            target[area.Width..].Fill(line[^1]);
        }

        return new DirtyTile(area.X, area.Y, padded, area.Width, area.Height, pixels);
    }

    /// <summary>A 64-bit digest of a tile's pixels (multiply-xorshift over each pixel with its position in the row).</summary>
    private ulong Digest(ReadOnlySpan<uint> pixels, PixelRect area)
    {
        var h = 0x9E3779B97F4A7C15UL ^ (ulong)area.Width ^ ((ulong)area.Height << 32);
        for (var row = area.Y; row < area.Bottom; row++)
        {
            foreach (var pixel in pixels.Slice((row * Width) + area.X, area.Width))
            {
                h = unchecked((h ^ pixel) * 0xFF51AFD7ED558CCDUL);
                h ^= h >> 29;
            }

            h = unchecked((h ^ (ulong)row) * 0xC4CEB9FE1A85EC53UL);
        }

        return h ^ (h >> 32);
    }

    private void CheckSize(Framebuffer screen)
    {
        ArgumentNullException.ThrowIfNull(screen);
        if (screen.Width != Width || screen.Height != Height)
        {
            throw new ArgumentException($"the tracker is for {Width}×{Height}, the screen is {screen.Width}×{screen.Height}", nameof(screen));
        }
    }
}
