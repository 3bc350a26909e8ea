using System.Runtime.CompilerServices;
using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class HoldScreenPainterTests
{
    private static readonly HoldScreenAppearance Look = new() { OrganisationName = "Contoso Remote Access" };
    private static readonly HoldScreenPainter Painter = new(Look);

    public static TheoryData<int, int> Sizes => new() { { 640, 480 }, { 1024, 768 }, { 1920, 1080 }, { 3840, 2160 } };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void CodePrompt_RendersInsideItsCard(int width, int height)
    {
        var fb = Framebuffer.Create(width, height);
        var layout = Painter.Paint(fb, new CodePromptView("alice@contoso.example", 6, 2, "That code didn't work. 2 attempts left.", "This prompt closes in 4 minutes."));
        AssertCardOnBackground(fb, layout);
        Assert.True(layout.Card.Contains(layout.Interactive));
        Assert.True(layout.Interactive.Width >= 6 * 20, $"digit row {layout.Interactive}");
        Assert.True(Count(fb, layout.Card, Bgra.FromRgb(Look.Error)) > 100, "no error line");
        Assert.True(Count(fb, layout.Card, Bgra.FromRgb(Look.Accent)) > 100, "no heading");
        Assert.True(Count(fb, layout.Interactive, Bgra.FromRgb(Look.Text)) > 0, "no dots for typed digits");
    }

    [Theory]
    [InlineData(640, 480)]
    [InlineData(1024, 768)]
    [InlineData(1920, 1080)]
    public void CodePrompt_TypingADigit_DirtiesOnlyTheDigitBoxTiles(int width, int height)
    {
        // Arrange: two digits typed and sent.
        var fb = Framebuffer.Create(width, height);
        var tracker = new TileTracker(width, height);
        var view = new CodePromptView("alice", 6, 2, "That code didn't work. 2 attempts left.", "This prompt closes in 4 minutes.");
        var layout = Painter.Paint(fb, view);
        var before = fb.Pixels.ToArray();
        Assert.Equal(((width + 63) / 64) * ((height + 63) / 64), tracker.CollectChanges(fb).Count);

        // Act: the third digit.
        var after = Painter.Paint(fb, view with { TypedDigits = 3 });
        var tiles = tracker.CollectChanges(fb);

        // Assert: the layout did not move, pixels changed only inside the digit row, and only its tiles are sent.
        Assert.Equal(layout, after);
        var changed = ChangedArea(before, fb);
        Assert.False(changed.IsEmpty);
        Assert.True(layout.Interactive.Contains(changed), $"{changed} outside {layout.Interactive}");
        Assert.NotEmpty(tiles);
        Assert.All(tiles, tile => Assert.True(tile.Destination.Overlaps(changed), $"tile {tile.Destination} is not where {changed} is"));
        Assert.True(tiles.Count <= 8, $"{tiles.Count} tiles for one digit");
    }

    [Fact]
    public void CodePrompt_SamePaintTwice_IsIdentical()
    {
        var fb = Framebuffer.Create(1024, 768);
        var view = new CodePromptView("alice", 8, 5);
        Painter.Paint(fb, view);
        var first = fb.Pixels.ToArray();
        Painter.Paint(fb, view);
        Assert.Equal(first, fb.Pixels.ToArray());
    }

    [Theory]
    [InlineData("\u202Egnp.exe")]
    [InlineData("\u001B[2J\u001B]0;pwned\u0007")]
    [InlineData("\uD800\uDC00\uD800 \uFEFF\u200B\u2066x\u2069")]
    public void CodePrompt_HostileUserName_StaysInsideTheCard(string hostile)
    {
        foreach (var user in new[] { hostile, hostile + new string('W', 200_000), string.Concat(Enumerable.Repeat(hostile + " ", 5000)) })
        {
            var fb = Framebuffer.Create(640, 480);
            var layout = Painter.Paint(fb, new CodePromptView(user, 6, 0, user, user));
            AssertCardOnBackground(fb, layout);
        }
    }

    [Fact]
    public void EveryScreen_HostileTextEverywhere_StaysInsideTheCard()
    {
        var evil = "\u202E\u001B[2J\u0007\u0085\u200B" + new string('M', 100_000);
        var painter = new HoldScreenPainter(Look with { OrganisationName = evil });
        foreach (var (width, height) in new[] { (640, 480), (1024, 768) })
        {
            var fb = Framebuffer.Create(width, height);
            AssertCardOnBackground(fb, painter.Paint(fb, new QrSignInView("https://gatehouse.example/d", evil, evil, evil)));
            AssertCardOnBackground(fb, painter.Paint(fb, new RefusalView(evil, evil, evil)));
            AssertCardOnBackground(fb, painter.Paint(fb, new HostPickerView([evil, evil, "ok"], 1, evil)));
            AssertCardOnBackground(fb, painter.Paint(fb, new CodePromptView(evil, int.MaxValue, int.MinValue, evil, evil)));
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void QrSignIn_QrCodeReadsBackFromTheScreen(int width, int height)
    {
        const string Url = "https://gatehouse.example/device?code=WDJB-MJHT";
        var fb = Framebuffer.Create(width, height);
        var layout = Painter.Paint(fb, new QrSignInView(Url, "WDJB-MJHT", "build-server-01.contoso.example"));
        AssertCardOnBackground(fb, layout);

        var qr = QrCode.Encode(Url);
        var module = qr.ModulePixels(Math.Min(layout.Interactive.Width, layout.Interactive.Height));
        Assert.True(module >= 2, $"modules of {module} px at {width}×{height}");
        var side = module * qr.SizeWithQuietZone;
        var square = new PixelRect(layout.Interactive.X + ((layout.Interactive.Width - side) / 2), layout.Interactive.Y + ((layout.Interactive.Height - side) / 2), side, side);
        Assert.Equal(QrCodeTests.Reference(Url), QrCodeTests.ReadBack(fb, square, qr.SizeWithQuietZone));
        Assert.True(Count(fb, layout.Card, Bgra.FromRgb(Look.Accent)) > 500, "no user code in large type");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Refusal_RendersMessageAndReference(int width, int height)
    {
        var fb = Framebuffer.Create(width, height);
        var layout = Painter.Paint(fb, new RefusalView(
            "You are not allowed to connect to this computer.",
            "Ask your administrator for access, and quote the reference below.",
            "GH-7Q2K-93XD"));
        AssertCardOnBackground(fb, layout);
        Assert.True(Count(fb, layout.Interactive, Bgra.FromRgb(Look.Error)) > 100, "no message");
        Assert.True(Count(fb, layout.Card, Bgra.FromRgb(Look.MutedText)) > 100, "no reference");
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void HostPicker_HighlightsTheSelectedHostAndScrollsToIt(int width, int height)
    {
        var hosts = Enumerable.Range(1, 60).Select(i => $"host-{i:00}.contoso.example").ToArray();
        var fb = Framebuffer.Create(width, height);
        var layout = Painter.Paint(fb, new HostPickerView(hosts, 47));
        AssertCardOnBackground(fb, layout);

        // The highlighted row is one band of accent colour inside the list.
        var accent = Bgra.FromRgb(Look.Accent);
        var rows = Enumerable.Range(layout.Interactive.Y, layout.Interactive.Height)
            .Where(y => fb[layout.Interactive.X + (layout.Interactive.Width / 2), y] == accent).ToArray();
        Assert.NotEmpty(rows);
        Assert.Equal(rows.Length, rows[^1] - rows[0] + 1);
        Assert.True(rows.Length >= FixedFont.CellHeight, $"highlight of {rows.Length} rows");
    }

    [Fact]
    public void HostPicker_MovingWithinAPage_LeavesTheHeadingAlone()
    {
        var hosts = Enumerable.Range(1, 60).Select(i => $"host-{i:00}").ToArray();
        var fb = Framebuffer.Create(1024, 768);
        var tracker = new TileTracker(1024, 768);
        var layout = Painter.Paint(fb, new HostPickerView(hosts, 0));
        _ = tracker.CollectChanges(fb);
        Painter.Paint(fb, new HostPickerView(hosts, 1));
        var tiles = tracker.CollectChanges(fb);
        Assert.NotEmpty(tiles);
        Assert.All(tiles, t => Assert.True(t.Y + t.Height > layout.Interactive.Y - 64, $"tile at {t.Y} above the list at {layout.Interactive.Y}"));
    }

    [Fact]
    public void HostPicker_NoHosts_SaysSo()
    {
        var fb = Framebuffer.Create(640, 480);
        var layout = Painter.Paint(fb, new HostPickerView([], 3));
        AssertCardOnBackground(fb, layout);
        Assert.True(Count(fb, layout.Interactive, Bgra.FromRgb(Look.MutedText)) > 50);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(100, 50)]
    [InlineData(320, 200)]
    [InlineData(8192, 2048)]
    public void EveryScreen_TinyOrHugeScreens_DoNotThrow(int width, int height)
    {
        var fb = Framebuffer.Create(width, height);
        Painter.Paint(fb, new CodePromptView("alice", 10, 10, "error", "deadline"));
        Painter.Paint(fb, new QrSignInView("https://gatehouse.example/d", "ABCD", "host"));
        Painter.Paint(fb, new RefusalView("no", "ask", "REF"));
        Painter.Paint(fb, new HostPickerView(["a", "b"], 1));
    }

    [Fact]
    public void Logo_IsDrawnAboveTheName()
    {
        var red = new byte[8 * 8 * 3];
        for (var i = 0; i < red.Length; i += 3)
        {
            red[i] = 0xFF;
        }

        Assert.True(PngDecoder.TryDecode(PngBuilder.Image(8, 8, 2, red), out var logo, out _));
        var painter = new HoldScreenPainter(Look, logo);
        var fb = Framebuffer.Create(1024, 768);
        var withLogo = painter.Paint(fb, new RefusalView("no", "ask", "REF"));
        Assert.Equal(8 * 8, Count(fb, withLogo.Card, Bgra.FromRgb(0xFF, 0, 0)));
        Painter.Paint(fb, new RefusalView("no", "ask", "REF"));
        Assert.Equal(0, Count(fb, fb.Bounds, Bgra.FromRgb(0xFF, 0, 0)));
    }

    [Fact]
    public void TryCreate_BadLogoPath_IsATypedError()
    {
        Assert.False(HoldScreenPainter.TryCreate(Look with { LogoPath = "/nonexistent/logo.png" }, out var painter, out var error));
        Assert.Null(painter);
        Assert.Equal(PngErrorKind.Unreadable, error!.Kind);
        Assert.True(HoldScreenPainter.TryCreate(Look, out painter, out _));
        Assert.NotNull(painter);
    }

    /// <summary>The card is on the screen, and every pixel outside it is the background: nothing spilled over.</summary>
    private static void AssertCardOnBackground(Framebuffer fb, HoldScreenLayout layout, [CallerMemberName] string test = "")
    {
        Assert.True(fb.Bounds.Contains(layout.Card), $"card {layout.Card} off a {fb.Width}×{fb.Height} screen");
        var background = Bgra.FromRgb(Look.Background);
        for (var y = 0; y < fb.Height; y++)
        {
            for (var x = 0; x < fb.Width; x++)
            {
                if (!layout.Card.Contains(new PixelRect(x, y, 1, 1)) && fb[x, y] != background)
                {
                    Assert.Fail($"pixel ({x}, {y}) outside the card {layout.Card} is {fb[x, y]:X8}");
                }
            }
        }

        Dump(fb, test);
    }

    private static int Count(Framebuffer fb, PixelRect area, uint color)
    {
        var count = 0;
        var clip = fb.Clip(area);
        for (var y = clip.Y; y < clip.Bottom; y++)
        {
            for (var x = clip.X; x < clip.Right; x++)
            {
                count += fb[x, y] == color ? 1 : 0;
            }
        }

        return count;
    }

    private static PixelRect ChangedArea(uint[] before, Framebuffer after)
    {
        var area = default(PixelRect);
        for (var i = 0; i < before.Length; i++)
        {
            if (before[i] != after.Pixels[i])
            {
                area = area.Union(new PixelRect(i % after.Width, i / after.Width, 1, 1));
            }
        }

        return area;
    }

    /// <summary>With GATEHOUSE_HOLD_DUMP set to a folder, writes each screen checked as a PNG there (to look at).</summary>
    private static void Dump(Framebuffer fb, string test)
    {
        var folder = Environment.GetEnvironmentVariable("GATEHOUSE_HOLD_DUMP");
        if (string.IsNullOrEmpty(folder) || fb.Width * fb.Height > 4_000_000)
        {
            return;
        }

        var rgb = new byte[fb.Width * fb.Height * 3];
        for (var i = 0; i < fb.Pixels.Length; i++)
        {
            (rgb[i * 3], rgb[(i * 3) + 1], rgb[(i * 3) + 2]) = (Bgra.Red(fb.Pixels[i]), Bgra.Green(fb.Pixels[i]), Bgra.Blue(fb.Pixels[i]));
        }

        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, $"{test.Split('_')[0]}-{fb.Width}x{fb.Height}-{Guid.NewGuid().ToString("N")[..6]}.png"), PngBuilder.Image(fb.Width, fb.Height, 2, rgb));
    }
}
