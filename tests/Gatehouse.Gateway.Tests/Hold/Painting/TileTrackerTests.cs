using System.Buffers.Binary;
using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class TileTrackerTests
{
    [Theory]
    [InlineData(640, 480)]
    [InlineData(1366, 768)]
    [InlineData(1023, 767)]
    [InlineData(1, 1)]
    public void CollectChanges_FirstPaint_ReturnsEveryTileOnce(int width, int height)
    {
        var fb = Framebuffer.Create(width, height);
        var tracker = new TileTracker(width, height);
        var tiles = tracker.CollectChanges(fb);
        Assert.Equal(((width + 63) / 64) * ((height + 63) / 64), tiles.Count);
        Assert.Equal((long)width * height, tiles.Sum(t => (long)t.DestinationWidth * t.Height));
        Assert.All(tiles, t =>
        {
            Assert.Equal(0, t.Width % 4);
            Assert.InRange(t.Width - t.DestinationWidth, 0, 3);
            Assert.Equal(t.Width * t.Height, t.Pixels.Length);
            Assert.True(t.Height <= 64 && t.DestinationWidth <= 64);
        });
        Assert.Empty(tracker.CollectChanges(fb));
    }

    [Fact]
    public void CollectChanges_OnePixelChanged_ReturnsOnlyItsTile()
    {
        var fb = Framebuffer.Create(300, 200);
        var tracker = new TileTracker(300, 200);
        _ = tracker.CollectChanges(fb);
        fb.SetPixel(130, 70, Bgra.White);
        var tile = Assert.Single(tracker.CollectChanges(fb));
        Assert.Equal((128, 64, 64, 64), (tile.X, tile.Y, tile.Width, tile.Height));
        Assert.Equal(Bgra.White, tile.Pixels[(6 * 64) + 2]);
        Assert.Empty(tracker.CollectChanges(fb));

        tracker.Invalidate();
        Assert.Equal(5 * 4, tracker.CollectChanges(fb).Count);
    }

    [Fact]
    public void CollectChanges_RightEdgeTile_IsPaddedToAMultipleOfFourWithItsLastColumn()
    {
        var fb = Framebuffer.Create(70, 3);
        for (var x = 0; x < 70; x++)
        {
            fb.SetPixel(x, 1, 0xFF000000u | (uint)x);
        }

        var tiles = new TileTracker(70, 3).CollectChanges(fb);
        var edge = tiles[1];
        Assert.Equal((64, 6, 8, 3), (edge.X, edge.DestinationWidth, edge.Width, edge.Height));
        Assert.Equal(new PixelRect(64, 0, 6, 3), edge.Destination);
        Assert.Equal([64u, 65, 66, 67, 68, 69, 69, 69], edge.Pixels.Slice(8, 8).ToArray().Select(p => p & 0xFF).ToArray());
    }

    [Fact]
    public void CopyBottomUp_WritesTheLastRowFirstAsBgra()
    {
        var fb = Framebuffer.Create(4, 3);
        fb.SetPixel(0, 0, Bgra.FromRgb(0x11, 0x22, 0x33));
        fb.SetPixel(0, 2, Bgra.FromRgb(0xAA, 0xBB, 0xCC));
        var tile = Assert.Single(new TileTracker(4, 3).CollectChanges(fb));
        var bytes = tile.ToBottomUpBytes();
        Assert.Equal(4 * 3 * 4, bytes.Length);
        Assert.Equal([0xCC, 0xBB, 0xAA, 0xFF], bytes[..4]); // Bottom row first, B, G, R, A.
        Assert.Equal([0x33, 0x22, 0x11, 0xFF], bytes[32..36]); // The top row last.
        Assert.Equal(Bgra.FromRgb(0x11, 0x22, 0x33), tile.Pixels[0]); // The top-down copy keeps screen order.
        Assert.Equal(tile.Pixels[8], BinaryPrimitives.ReadUInt32LittleEndian(bytes));
    }

    [Fact]
    public void TilesIn_ReturnsTheTilesMeetingTheArea_WithoutChangingWhatWasSent()
    {
        var fb = Framebuffer.Create(200, 200);
        var tracker = new TileTracker(200, 200);
        _ = tracker.CollectChanges(fb);
        var tiles = tracker.TilesIn(fb, new PixelRect(60, 60, 10, 10));
        Assert.Equal([(0, 0), (64, 0), (0, 64), (64, 64)], tiles.Select(t => (t.X, t.Y)).ToArray());
        Assert.Empty(tracker.TilesIn(fb, new PixelRect(500, 500, 10, 10)));
        Assert.Empty(tracker.CollectChanges(fb));
    }

    [Fact]
    public void CollectChanges_OtherSize_Throws()
    {
        var tracker = new TileTracker(10, 10);
        Assert.Throws<ArgumentException>(() => tracker.CollectChanges(Framebuffer.Create(10, 11)));
    }
}
