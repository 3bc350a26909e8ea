using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// The real FreeRDP 3 X11 client (<c>xfreerdp3</c>) run under <c>stdbuf -oL</c> so its stdout is line-buffered
/// (without it the <c>Browse to:</c> line only appears at exit), with stdin kept open as a pipe for the redirect URL.
/// Every line of stdout and stderr is kept, in order, for waits and for the failure message.
/// </summary>
internal sealed class FreeRdpClient : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();

    private FreeRdpClient(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string CommandLine { get; private init; } = string.Empty;

    /// <summary>Every line printed so far (stdout lines as-is, stderr lines prefixed with "stderr: ").</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    public string Transcript => string.Join(Environment.NewLine, Lines);

    public static FreeRdpClient Start(string display, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var info = new ProcessStartInfo(Peers.Stdbuf.Path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add("-oL");
        info.ArgumentList.Add("-eL");
        info.ArgumentList.Add(Peers.XFreeRdp.Path);
        var args = arguments.ToList();
        foreach (var argument in args)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DISPLAY"] = display;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        info.Environment.Remove("WAYLAND_DISPLAY");
        info.Environment["HOME"] = Path.Combine(Path.GetTempPath(), "gatehouse-e2e-freerdp-home");
        Directory.CreateDirectory(info.Environment["HOME"]!);

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var client = new FreeRdpClient(process)
        {
            CommandLine = "stdbuf -oL -eL xfreerdp3 " + string.Join(' ', args),
        };
        process.OutputDataReceived += (_, e) => client.Add(e.Data, null);
        process.ErrorDataReceived += (_, e) => client.Add(e.Data, "stderr: ");
        if (!process.Start())
        {
            throw new InvalidOperationException("xfreerdp3 did not start.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return client;
    }

    /// <summary>Waits for the first line matching <paramref name="pattern"/> and returns its match.</summary>
    public async Task<Match> WaitForLineAsync(Regex pattern, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        Match? found = null;
        await Wait.UntilAsync(
            () =>
            {
                lock (_gate)
                {
                    found = _lines.Select(l => pattern.Match(l)).FirstOrDefault(m => m.Success);
                }

                return found is not null || _process.HasExited;
            },
            timeout,
            what,
            () => "xfreerdp3 output so far:" + Environment.NewLine + Transcript);
        if (found is null)
        {
            // The process may have printed the line just before exiting: look once more, once its output is all read
            // (HasExited can be true before the last lines have reached the output handlers).
            await DrainAsync();
            lock (_gate)
            {
                found = _lines.Select(l => pattern.Match(l)).FirstOrDefault(m => m.Success);
            }
        }

        return found ?? throw new InvalidOperationException(
            $"xfreerdp3 exited (code {_process.ExitCode}) before {what}. Output:{Environment.NewLine}{Transcript}");
    }

    /// <summary>
    /// Waits until the process has exited and every line it printed is in <see cref="Lines"/> (unlike
    /// <see cref="HasExited"/>, which can be true while its last lines are still on their way to the output handlers).
    /// </summary>
    public async Task WaitForExitAsync(TimeSpan timeout, string what)
    {
        await Wait.UntilAsync(() => _process.HasExited, timeout, what, () => "xfreerdp3 output so far:" + Environment.NewLine + Transcript);
        await DrainAsync();
    }

    /// <summary>Waits (up to the generous deadline) for the output of a process that has exited to be read to its end.</summary>
    private async Task DrainAsync()
    {
        using var drained = new CancellationTokenSource(Wait.Generous);
        await _process.WaitForExitAsync(drained.Token);
    }

    /// <summary>Writes one line (with "\n") to the client's stdin, which stays open.</summary>
    public async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteAsync(line + "\n");
        await _process.StandardInput.FlushAsync();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (InvalidOperationException)
        {
            // Never started or already gone.
        }
        catch (OperationCanceledException)
        {
            // Killed but not reaped within the deadline; nothing more to do.
        }

        _process.Dispose();
    }

    private void Add(string? line, string? prefix)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _lines.Add(prefix + line);
        }
    }
}
