using BenchmarkDotNet.Attributes;
using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Benchmarks;

/// <summary>
/// The hold screens (issue 14): painting each screen, finding the tiles a keystroke dirtied, the first full paint as
/// bottom-up Bitmap Update data, and what one held client costs in memory (a framebuffer and a digest per tile).
/// </summary>
[MemoryDiagnoser]
public class HoldScreenBenchmarks
{
    private static readonly HoldScreenPainter Painter = new(new HoldScreenAppearance { OrganisationName = "Contoso Remote Access" });
    private static readonly CodePromptView Code = new("alice@contoso.example", 6, 2, "That code didn't work. 2 attempts left.", "This prompt closes in 4 minutes.");
    private static readonly QrSignInView Qr = new("https://gatehouse.example/device?code=WDJB-MJHT", "WDJB-MJHT", "build-server-01.contoso.example");
    private static readonly RefusalView Refusal = new("You are not allowed to connect to this computer.", "Ask your administrator for access, and quote the reference below.", "GH-7Q2K-93XD");
    private static readonly HostPickerView Hosts = new([.. Enumerable.Range(1, 60).Select(i => $"host-{i:00}.contoso.example")], 17);

    private Framebuffer _screen = null!;
    private TileTracker _tracker = null!;
    private byte[] _bitmap = [];
    private int _typed;

    /// <summary>The client's desktop size.</summary>
    [Params("640x480", "1024x768", "1920x1080")]
    public string Size { get; set; } = "1920x1080";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Size.Split('x');
        _screen = Framebuffer.Create(int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        _tracker = new TileTracker(_screen.Width, _screen.Height);
        _bitmap = new byte[TileTracker.TileSize * TileTracker.TileSize * 4];
        Painter.Paint(_screen, Code);
        _ = _tracker.CollectChanges(_screen);
    }

    [Benchmark]
    public HoldScreenLayout PaintCodePrompt() => Painter.Paint(_screen, Code);

    [Benchmark]
    public HoldScreenLayout PaintQrSignIn() => Painter.Paint(_screen, Qr);

    [Benchmark]
    public HoldScreenLayout PaintRefusal() => Painter.Paint(_screen, Refusal);

    [Benchmark]
    public HoldScreenLayout PaintHostPicker() => Painter.Paint(_screen, Hosts);

    /// <summary>One typed digit: repaint the prompt, find the dirty tiles, write them bottom-up.</summary>
    [Benchmark]
    public int Keystroke()
    {
        _typed = (_typed + 1) % 7;
        Painter.Paint(_screen, Code with { TypedDigits = _typed });
        var bytes = 0;
        foreach (var tile in _tracker.CollectChanges(_screen))
        {
            tile.CopyBottomUp(_bitmap);
            bytes += tile.ByteCount;
        }

        return bytes;
    }

    /// <summary>The first paint: every tile, written bottom-up.</summary>
    [Benchmark]
    public int FirstPaintTiles()
    {
        _tracker.Invalidate();
        var bytes = 0;
        foreach (var tile in _tracker.CollectChanges(_screen))
        {
            tile.CopyBottomUp(_bitmap);
            bytes += tile.ByteCount;
        }

        return bytes;
    }

    /// <summary>What a held client keeps: its framebuffer and the tracker's per-tile digests (see Allocated).</summary>
    [Benchmark]
    public int NewHeldClient()
    {
        var screen = Framebuffer.Create(_screen.Width, _screen.Height);
        var tracker = new TileTracker(screen.Width, screen.Height);
        return screen.Width + tracker.Width;
    }
}
