using System.Diagnostics;
using System.Globalization;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>Screenshots of an X display with ImageMagick, and how many distinct colours they hold (1 = blank).</summary>
internal static class Screenshot
{
    public static async Task<string> TakeAsync(string display, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await RunAsync("/usr/bin/import", ["-display", display, "-window", "root", path]);
        return path;
    }

    /// <summary>The colour of one pixel as ImageMagick prints it (<c>srgb(30,41,59)</c>).</summary>
    public static async Task<string> PixelAsync(string path, int x, int y) =>
        (await RunAsync("/usr/bin/convert", [path, "-format", $"%[pixel:p{{{x},{y}}}]", "info:"])).Trim();

    /// <summary>What the QR codes in a screenshot say (zbarimg, as a phone's camera would read them); empty when none is found.</summary>
    public static async Task<IReadOnlyList<string>> QrCodesAsync(string path)
    {
        var info = new ProcessStartInfo("/usr/bin/zbarimg") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path })
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("zbarimg did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(deadline.Token);

        // zbarimg exits 4 when the image holds no symbol.
        return process.ExitCode == 0 ? (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
    }

    /// <summary>
    /// How many pixels of the screenshot's top-left <paramref name="width"/>×<paramref name="height"/> differ (by more than
    /// 2 in a channel) from <paramref name="expected"/> (0xAARRGGBB, row by row).
    /// </summary>
    public static async Task<int> DifferingPixelsAsync(string path, int width, int height, uint[] expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var raw = Path.ChangeExtension(path, ".rgb");
        await RunAsync("/usr/bin/convert", [path, "-crop", $"{width}x{height}+0+0", "-depth", "8", $"rgb:{raw}"]);
        var rgb = await File.ReadAllBytesAsync(raw);
        if (rgb.Length != width * height * 3)
        {
            return int.MaxValue;
        }

        var differing = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            var e = expected[i];
            if (Math.Abs(rgb[i * 3] - (int)((e >> 16) & 0xFF)) > 2 || Math.Abs(rgb[(i * 3) + 1] - (int)((e >> 8) & 0xFF)) > 2 || Math.Abs(rgb[(i * 3) + 2] - (int)(e & 0xFF)) > 2)
            {
                differing++;
            }
        }

        return differing;
    }

    public static async Task<int> DistinctColoursAsync(string path)
    {
        var output = await RunAsync("/usr/bin/identify", ["-format", "%k", path]);
        return int.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    private static async Task<string> RunAsync(string program, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(deadline.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }
}
