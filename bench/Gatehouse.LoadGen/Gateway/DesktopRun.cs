using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using System.Web;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>
/// The real client: xfreerdp3 under a fresh Xvfb display, timed until a screenshot of the display stops being one
/// colour (polled with ImageMagick every 200 ms). Direct: <c>/sec:tls</c> with the xrdp account, timed from the
/// process start. Through the gateway: <c>/sec:aad</c>; the code is minted directly (AuthorizationCodeService, as
/// the sign-in pages would) and the redirect URL pasted on stdin, timed from the paste. Runs alternate.
/// </summary>
internal static partial class DesktopRun
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    public static async Task<DesktopResult> RunAsync(WebApplication app, int rdpPort, string publicName, Arranged arranged, GatewaySettings settings, Action<string> progress, CancellationToken cancellationToken)
    {
        var direct = new List<double>();
        var gateway = new List<double>();
        var gatewayFromStart = new List<double>();
        string? problem = null;
        for (var run = 0; run < settings.DesktopRuns; run++)
        {
            try
            {
                progress($"desktop run {run + 1}/{settings.DesktopRuns}: direct");
                direct.Add((await TimeAsync(
                    [$"/v:127.0.0.1:{settings.XrdpPort}", $"/u:{settings.XrdpUser}", $"/p:{settings.XrdpPassword}", "/sec:tls"],
                    null,
                    cancellationToken)).FromStart);
                progress($"desktop run {run + 1}/{settings.DesktopRuns}: through the gateway");
                var (fromStart, fromPaste) = await TimeAsync(
                    [$"/v:{arranged.Desktop.Name}.gatehouse.test:{rdpPort}", "/sec:aad", $"/azure:ad:{publicName}"],
                    async (browse, ct) => await RedirectUrlAsync(app.Services, arranged, browse, ct),
                    cancellationToken);
                gateway.Add(fromPaste);
                gatewayFromStart.Add(fromStart);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
            {
                problem = e.Message;
                break;
            }
        }

        return new DesktopResult(direct, gateway, gatewayFromStart, problem);
    }

    /// <summary>Mints the code the sign-in pages would for the authorize request FreeRDP printed, and builds the redirect URL.</summary>
    private static async Task<string> RedirectUrlAsync(IServiceProvider services, Arranged arranged, Uri authorize, CancellationToken cancellationToken)
    {
        var query = HttpUtility.ParseQueryString(authorize.Query);
        await using var scope = services.CreateAsyncScope();
        var codes = scope.ServiceProvider.GetRequiredService<AuthorizationCodeService>();
        var code = await codes.IssueAsync(new AuthorizationCodeRequest
        {
            ClientId = RdpClient.ClientId,
            RedirectUri = RdpClient.BrokerRedirectUri,
            UserId = arranged.User.Id,
            Scope = query["scope"] ?? $"{RdpScope.ResourcePrefix}{arranged.Desktop.Name}/{RdpScope.ScopeValue}",
            HostId = arranged.Desktop.Id,
            Amr = ["pwd"],
            AuthTime = DateTimeOffset.UtcNow,
        }, cancellationToken);
        var state = query["state"] is { } s ? $"&state={Uri.EscapeDataString(s)}" : string.Empty;
        return $"{RdpClient.BrokerRedirectUri}?code={Uri.EscapeDataString(code)}{state}";
    }

    private static async Task<(double FromStart, double FromPaste)> TimeAsync(string[] arguments, Func<Uri, CancellationToken, Task<string>>? signIn, CancellationToken cancellationToken)
    {
        var display = $":{Random.Shared.Next(200, 900).ToString(CultureInfo.InvariantCulture)}";
        using var xvfb = Start("/usr/bin/Xvfb", [display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], null);
        var shot = Path.Combine(Path.GetTempPath(), $"gatehouse-loadgen-{display[1..]}.png");
        try
        {
            await Task.Delay(500, cancellationToken);
            if (await ColoursAsync(display, shot, cancellationToken) != 1)
            {
                throw new InvalidOperationException($"Xvfb {display} is not blank before the client starts");
            }

            string[] common = ["/cert:ignore", "/size:1024x768", "/bpp:24", "-clipboard"];
            using var client = Start("/usr/bin/stdbuf", ["-oL", "-eL", "/usr/bin/xfreerdp3", .. arguments, .. common], display);
            var transcript = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var browse = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
            client.OutputDataReceived += (_, e) => Line(e.Data);
            client.ErrorDataReceived += (_, e) => Line(e.Data);
            client.BeginOutputReadLine();
            client.BeginErrorReadLine();
            var processStarted = Stopwatch.GetTimestamp();
            var started = processStarted;
            if (signIn is not null)
            {
                var authorize = await browse.Task.WaitAsync(Limit, cancellationToken);
                var redirect = await signIn(authorize, cancellationToken);
                await client.StandardInput.WriteLineAsync(redirect);
                await client.StandardInput.FlushAsync(cancellationToken);
                started = Stopwatch.GetTimestamp();
            }

            while (await ColoursAsync(display, shot, cancellationToken) < 2)
            {
                if (client.HasExited || Stopwatch.GetElapsedTime(started) > Limit)
                {
                    throw new TimeoutException($"xfreerdp3 {string.Join(' ', arguments)} showed no desktop within {Limit.TotalSeconds:0} s (exited: {client.HasExited}); last lines: {string.Join(" | ", transcript.TakeLast(5))}");
                }

                await Task.Delay(200, cancellationToken);
            }

            var seconds = (Stopwatch.GetElapsedTime(processStarted).TotalSeconds, Stopwatch.GetElapsedTime(started).TotalSeconds);
            client.Kill(entireProcessTree: true);
            await client.WaitForExitAsync(cancellationToken);
            return seconds;

            void Line(string? line)
            {
                if (line is null)
                {
                    return;
                }

                transcript.Enqueue(line);
                if (BrowseTo().Match(line) is { Success: true } match)
                {
                    browse.TrySetResult(new Uri(match.Groups[1].Value));
                }
            }
        }
        finally
        {
            xvfb.Kill();
            await xvfb.WaitForExitAsync(CancellationToken.None);
            File.Delete(shot);
        }
    }

    private static async Task<int> ColoursAsync(string display, string shot, CancellationToken cancellationToken)
    {
        using var import = Start("/usr/bin/import", ["-display", display, "-window", "root", shot], null);
        await import.WaitForExitAsync(cancellationToken);
        if (import.ExitCode != 0)
        {
            return 0;
        }

        using var identify = Start("/usr/bin/identify", ["-format", "%k", shot], null);
        var output = await identify.StandardOutput.ReadToEndAsync(cancellationToken);
        await identify.WaitForExitAsync(cancellationToken);
        return int.TryParse(output.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var colours) ? colours : 0;
    }

    private static Process Start(string program, IEnumerable<string> arguments, string? display)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (display is not null)
        {
            info.Environment["DISPLAY"] = display;
            info.Environment["HOME"] = Path.Combine(Path.GetTempPath(), "gatehouse-loadgen-freerdp-home");
            Directory.CreateDirectory(info.Environment["HOME"]!);
        }

        return Process.Start(info) ?? throw new InvalidOperationException($"{program} did not start");
    }

    [GeneratedRegex(@"Browse to: (https://\S+)")]
    private static partial Regex BrowseTo();
}
