using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Gatehouse.Protocol.Ntlm;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// A real RDP host that requires NLA: FreeRDP's shadow server (<c>freerdp-shadow-cli3 /sec:nla</c>) sharing a private
/// Xvfb display, on a free loopback port, checking NTLM against a SAM file (<c>user:domain:LMhash:NThash:::</c>, the NT
/// hashes made with the repository's MD4). Its log (peer PDUs at DEBUG) is kept for the tests' conditions. Ready when
/// the port accepts a connection; stopped (with its display) on dispose.
/// </summary>
internal sealed class ShadowHost : IAsyncDisposable
{
    private readonly Process _process;
    private readonly XvfbDisplay _display;
    private readonly string _directory;
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();

    private ShadowHost(Process process, XvfbDisplay display, string directory, int port)
    {
        _process = process;
        _display = display;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Every line the shadow server printed so far.</summary>
    public string Log
    {
        get
        {
            lock (_gate)
            {
                return string.Join(Environment.NewLine, _lines);
            }
        }
    }

    /// <summary>Lines where the shadow server's NTLM refused an AUTHENTICATE (a wrong password).</summary>
    public int RefusedLogons
    {
        get
        {
            lock (_gate)
            {
                return _lines.Count(l => l.Contains("client authentication failure", StringComparison.Ordinal));
            }
        }
    }

    /// <summary>Starts a shadow server accepting <paramref name="accounts"/> (user name, password) with NLA only.</summary>
    public static async Task<ShadowHost> StartAsync(IEnumerable<(string User, string Password)> accounts, string openSslConfig, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(accounts);
        var directory = Path.Combine(Path.GetTempPath(), "gatehouse-e2e-shadow", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var sam = Path.Combine(directory, "SAM");
        await File.WriteAllLinesAsync(sam, accounts.Select(a =>
        {
            var nt = Convert.ToHexStringLower(NtlmV2.NtHash(a.Password));
            return $"{a.User}::{new string('0', 32)}:{nt}:::";
        }));

        var display = await XvfbDisplay.StartAsync(timeout);
        var port = LoopbackPorts.Next();
        var info = new ProcessStartInfo(Peers.ShadowServer.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            $"/port:{port.ToString(CultureInfo.InvariantCulture)}", "/bind-address:127.0.0.1", "/sec:nla", $"/sam-file:{sam}",
            "/log-level:WARN", "/log-filters:com.freerdp.core.peer:DEBUG,com.freerdp.core.transport:INFO",
        })
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DISPLAY"] = display.Display;
        info.Environment["OPENSSL_CONF"] = openSslConfig;
        var process = Process.Start(info) ?? throw new InvalidOperationException("freerdp-shadow-cli3 did not start.");
        var host = new ShadowHost(process, display, directory, port);
        process.OutputDataReceived += (_, e) => host.Add(e.Data);
        process.ErrorDataReceived += (_, e) => host.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var listening = false;
            await Wait.UntilAsync(
                () => process.HasExited || (listening = Accepts(port)),
                timeout,
                $"freerdp-shadow-cli3 to listen on 127.0.0.1:{port}",
                () => host.Log);
            if (!listening)
            {
                throw new InvalidOperationException($"freerdp-shadow-cli3 exited with code {process.ExitCode}: {host.Log}");
            }

            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // It already exited.
        }

        _process.Dispose();
        await _display.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: the SAM file is in a temporary folder.
        }
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _lines.Add(line);
        }
    }
}
