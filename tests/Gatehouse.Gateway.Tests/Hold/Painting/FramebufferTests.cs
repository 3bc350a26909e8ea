using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class FramebufferTests
{
    [Theory]
    [InlineData(0, 480)]
    [InlineData(640, 0)]
    [InlineData(-1, 480)]
    [InlineData(8193, 100)]
    [InlineData(100, 8193)]
    [InlineData(8192, 8192)]
    [InlineData(int.MaxValue, int.MaxValue)]
    public void TryCreate_SizeOutsideTheCaps_IsRefused(int width, int height)
    {
        Assert.False(Framebuffer.TryCreate(width, height, out var fb, out var error));
        Assert.Null(fb);
        Assert.Contains("screen size", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(640, 480)]
    [InlineData(3840, 2160)]
    [InlineData(7680, 2160)]
    [InlineData(8192, 2048)]
    public void TryCreate_SizeWithinTheCaps_IsBlack(int width, int height)
    {
        Assert.True(Framebuffer.TryCreate(width, height, out var fb, out _));
        Assert.Equal(width * height, fb!.Pixels.Length);
        Assert.Equal(0u, fb[width - 1, height - 1]);
    }

    [Fact]
    public void FillRect_ClipsToTheBuffer()
    {
        var fb = Framebuffer.Create(10, 10);
        fb.FillRect(new PixelRect(-5, -5, 8, 8), Bgra.White);
        fb.FillRect(new PixelRect(int.MaxValue - 1, 0, int.MaxValue, 5), Bgra.White);
        fb.FillRect(new PixelRect(int.MinValue, int.MinValue, int.MaxValue, int.MaxValue), Bgra.White);
        Assert.Equal(9, fb.Pixels.ToArray().Count(p => p == Bgra.White));
        Assert.Equal(Bgra.White, fb[2, 2]);
        Assert.Equal(0u, fb[3, 3]);
    }

    [Fact]
    public void DrawRect_DrawsOnlyTheOutline()
    {
        var fb = Framebuffer.Create(10, 10);
        fb.DrawRect(new PixelRect(1, 1, 6, 5), Bgra.White, thickness: 2);
        Assert.Equal(Bgra.White, fb[1, 1]);
        Assert.Equal(Bgra.White, fb[6, 5]);
        Assert.Equal(Bgra.White, fb[2, 2]);
        Assert.Equal(0u, fb[3, 3]);
        Assert.Equal(0u, fb[7, 1]);
        Assert.Equal((6 * 5) - (2 * 1), fb.Pixels.ToArray().Count(p => p == Bgra.White));
    }

    [Fact]
    public void FillRoundedRect_LeavesTheCornersAndFillsTheMiddle()
    {
        var fb = Framebuffer.Create(40, 40);
        fb.FillRoundedRect(new PixelRect(0, 0, 40, 40), 10, Bgra.White);
        Assert.Equal(0u, fb[0, 0]);
        Assert.Equal(0u, fb[39, 39]);
        Assert.Equal(0u, fb[39, 0]);
        Assert.Equal(Bgra.White, fb[20, 0]);
        Assert.Equal(Bgra.White, fb[0, 20]);
        Assert.Equal(Bgra.White, fb[20, 20]);
        Assert.Equal(Bgra.White, fb[5, 5]);

        // Symmetric: the same count of pixels in each corner.
        var pixels = fb.Pixels.ToArray();
        int Count(int x0, int y0) => Enumerable.Range(0, 10).Sum(dy => Enumerable.Range(0, 10).Count(dx => pixels[((y0 + dy) * 40) + x0 + dx] == Bgra.White));
        Assert.Equal(Count(0, 0), Count(30, 30));
        Assert.Equal(Count(30, 0), Count(0, 30));
    }

    [Fact]
    public void DrawLine_CoversBothEndsAndIsOnePixelWide()
    {
        var fb = Framebuffer.Create(20, 20);
        fb.DrawLine(2, 3, 17, 11, Bgra.White);
        Assert.Equal(Bgra.White, fb[2, 3]);
        Assert.Equal(Bgra.White, fb[17, 11]);
        Assert.Equal(16, fb.Pixels.ToArray().Count(p => p == Bgra.White));
        fb.DrawLine(-1_000_000, 5, 1_000_000, 5, Bgra.Black);
        Assert.Equal(Bgra.Black, fb[10, 5]);
    }

    [Fact]
    public void BlitMask_ScalesEachBitToABlock()
    {
        var fb = Framebuffer.Create(8, 8);
        byte[] mask = [0b1000_0000, 0b0100_0000];
        fb.BlitMask(mask, 2, 2, 1, 1, 1, 3, Bgra.White);
        Assert.Equal(Bgra.White, fb[1, 1]);
        Assert.Equal(Bgra.White, fb[3, 3]);
        Assert.Equal(0u, fb[4, 1]);
        Assert.Equal(Bgra.White, fb[4, 4]);
        Assert.Equal(Bgra.White, fb[6, 6]);
        Assert.Equal(0u, fb[1, 4]);
        Assert.Equal(18, fb.Pixels.ToArray().Count(p => p == Bgra.White));
    }

    [Fact]
    public void DrawImage_BlendsAlpha()
    {
        var fb = Framebuffer.Create(4, 1);
        fb.Clear(Bgra.FromRgb(0, 0, 200));
        var image = new PngImage(2, 1, [0xFFFF0000u, 0x00FF0000u]);
        fb.DrawImage(image, new PixelRect(0, 0, 4, 1));
        Assert.Equal(0xFFFF0000u, fb[0, 0]);
        Assert.Equal(0xFFFF0000u, fb[1, 0]);
        Assert.Equal(0xFF0000C8u, fb[3, 0]);
        Assert.Equal(0xFF800064u, Bgra.Blend(0xFF0000C8u, 0x80FF0000u));
    }
}
