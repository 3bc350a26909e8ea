using System.Diagnostics;
using System.Globalization;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// A private X server (Xvfb) for an X11 client. Xvfb picks a free display number itself (<c>-displayfd 1</c> prints
/// it), and the display counts as ready once its socket <c>/tmp/.X11-unix/X&lt;n&gt;</c> exists.
/// </summary>
internal sealed class XvfbDisplay : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringWriter _stderr;

    private XvfbDisplay(Process process, int number, StringWriter stderr)
    {
        _process = process;
        Number = number;
        _stderr = stderr;
    }

    public int Number { get; }

    /// <summary>The value for the DISPLAY environment variable.</summary>
    public string Display => ":" + Number.ToString(CultureInfo.InvariantCulture);

    public int ProcessId => _process.Id;

    public static async Task<XvfbDisplay> StartAsync(TimeSpan timeout)
    {
        var info = new ProcessStartInfo(Peers.Xvfb.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp", "-noreset" })
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("Xvfb did not start.");
        var stderr = new StringWriter();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.WriteLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        try
        {
            var line = await Wait.ForAsync(
                process.StandardOutput.ReadLineAsync(),
                timeout,
                "Xvfb to print its display number",
                () => Snapshot(stderr));
            if (line is null || !int.TryParse(line.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                throw new InvalidOperationException($"Xvfb printed no display number (got '{line}'); stderr: {Snapshot(stderr)}");
            }

            var socket = $"/tmp/.X11-unix/X{number}";
            await Wait.UntilAsync(
                () => File.Exists(socket) || process.HasExited,
                timeout,
                $"the X socket {socket}",
                () => Snapshot(stderr));
            if (process.HasExited)
            {
                throw new InvalidOperationException($"Xvfb exited with code {process.ExitCode}: {Snapshot(stderr)}");
            }

            return new XvfbDisplay(process, number, stderr);
        }
        catch
        {
            Stop(process);
            process.Dispose();
            stderr.Dispose();
            throw;
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop(_process);
        _process.Dispose();
        _stderr.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // It already exited.
        }
    }

    private static string Snapshot(StringWriter writer)
    {
        lock (writer)
        {
            return writer.ToString();
        }
    }
}
