using Gatehouse.Gateway.Hold.Painting;
using QRCoder;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class QrCodeTests
{
    [Theory]
    [InlineData("https://gatehouse.example/d/ABCD-1234", 300)]
    [InlineData("x", 100)]
    [InlineData("https://gatehouse.example/device?user_code=WDJB-MJHT&client=rdp-gateway&tenant=contoso-east-europe", 500)]
    public void Draw_ReadBackFromThePixels_IsQrCodersMatrix(string text, int box)
    {
        var fb = Framebuffer.Create(box + 40, box + 40);
        fb.Clear(Bgra.FromRgb(0x20, 0x40, 0x60));
        var qr = QrCode.Encode(text);
        var square = qr.Draw(fb, new PixelRect(20, 20, box, box));

        var grid = ReadBack(fb, square, qr.SizeWithQuietZone);
        var expected = Reference(text);
        Assert.Equal(expected.Length, grid.Length);
        for (var y = 0; y < grid.Length; y++)
        {
            Assert.Equal(Render(expected[y]), Render(grid[y]));
        }
    }

    [Fact]
    public void Draw_FitsTheBoxAndLeavesTheRestAlone()
    {
        var fb = Framebuffer.Create(400, 300);
        var qr = QrCode.Encode("https://gatehouse.example/d/ABCD-1234");
        var area = new PixelRect(50, 40, 200, 150);
        var square = qr.Draw(fb, area);
        Assert.True(area.Contains(square));
        Assert.Equal(square.Width, square.Height);
        Assert.Equal(0, square.Width % qr.SizeWithQuietZone);
        Assert.Equal(0u, fb[square.X - 1, square.Y]);
        Assert.Equal(Bgra.White, fb[square.X, square.Y]);
    }

    [Fact]
    public void Encode_TooLongOrEmpty_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => QrCode.Encode(new string('a', QrCode.MaxTextLength + 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => QrCode.Encode(new string('é', (QrCode.MaxTextLength / 2) + 1)));
        Assert.Throws<ArgumentException>(() => QrCode.Encode(string.Empty));
        Assert.InRange(QrCode.Encode(new string('é', QrCode.MaxTextLength / 2)).Size, 21, 177); // The longest text still encodes.
    }

    /// <summary>QRCoder's own matrix with a 4-module quiet zone, true = dark.</summary>
    internal static bool[][] Reference(string text)
    {
        using var data = QRCodeGenerator.GenerateQrCode(text, QRCodeGenerator.ECCLevel.M);
        var matrix = data.ModuleMatrix;
        var size = 21 + (4 * (data.Version - 1));
        var border = (matrix.Count - size) / 2;
        var full = size + 8;
        return [.. Enumerable.Range(0, full).Select(y => Enumerable.Range(0, full).Select(x =>
        {
            var (mx, my) = (x - 4 + border, y - 4 + border);
            return x >= 4 && y >= 4 && x < size + 4 && y < size + 4 && matrix[my][mx];
        }).ToArray())];
    }

    /// <summary>Samples the centre of each module; a module must be pure black or pure white.</summary>
    internal static bool[][] ReadBack(Framebuffer fb, PixelRect square, int modules)
    {
        var module = square.Width / modules;
        return [.. Enumerable.Range(0, modules).Select(y => Enumerable.Range(0, modules).Select(x =>
        {
            var pixel = fb[square.X + (x * module) + (module / 2), square.Y + (y * module) + (module / 2)];
            Assert.True(pixel is Bgra.Black or Bgra.White, $"module ({x}, {y}) is {pixel:X8}");
            return pixel == Bgra.Black;
        }).ToArray())];
    }

    private static string Render(bool[] row) => new([.. row.Select(dark => dark ? '#' : '.')]);
}
