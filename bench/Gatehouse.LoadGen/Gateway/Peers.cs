using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text.Json;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>The tickets and PoP keys the gateway run hands to a <c>peer-clients</c> process (a JSON file).</summary>
internal sealed record PeerTickets(IReadOnlyList<string> KeysPem, IReadOnlyList<PeerTicket> Tickets)
{
    public static async Task WriteAsync(string path, IReadOnlyList<PopKeyPair> keys, IEnumerable<SignInTicket> tickets, CancellationToken cancellationToken)
    {
        var index = keys.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => p.i);
        var file = new PeerTickets(keys.Select(k => k.ToPem()).ToArray(), tickets.Select(t => new PeerTicket(t.AccessToken, index[t.Key], t.AadNonce, t.HostLabel)).ToArray());
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(file), cancellationToken);
    }

    public static async Task<List<SignInTicket>> ReadAsync(string path, CancellationToken cancellationToken)
    {
        var file = JsonSerializer.Deserialize<PeerTickets>(await File.ReadAllTextAsync(path, cancellationToken)) ?? throw new IOException($"{path} is empty");
        var keys = file.KeysPem.Select(PopKeyPair.FromPem).ToArray();
        return file.Tickets.Select(t => new SignInTicket(t.AccessToken, keys[t.Key], t.AadNonce, t.HostLabel)).ToList();
    }
}

/// <summary>One ticket in the file: the key is an index into the key list.</summary>
internal sealed record PeerTicket(string AccessToken, int Key, string AadNonce, string HostLabel);

/// <summary>
/// The peers of the gateway, each in a process of its own so that the gateway process's CPU and RSS are its own:
/// <c>peer-host</c> runs the <see cref="TlsStub"/> (prints <c>port N</c>, runs until its stdin closes);
/// <c>peer-clients</c> runs <see cref="BenchClient"/>s on command, one command per stdin line, one answer per stdout
/// line (<c>ok …</c> or <c>error …</c>):
/// <list type="bullet">
/// <item><c>bulk-open PORT TICKETS|- INDEX</c>: one client, signed in with ticket INDEX of file TICKETS (or straight to
/// the stub with <c>-</c>), through the connection sequence.</item>
/// <item><c>bulk-go BYTES</c>: asks the host for BYTES and reads them; answers <c>ok SECONDS</c>; closes.</item>
/// <item><c>idle PORT TICKETS|- FIRST COUNT CONCURRENCY</c>: COUNT idle sessions (tickets FIRST…), kept open.</item>
/// <item><c>close</c>: closes the idle sessions.</item>
/// </list>
/// The clients bind to the <c>--bind</c> addresses round-robin (127.0.0.2, 127.0.0.3, …).
/// </summary>
internal static class PeerCommands
{
    public static async Task<int> HostAsync(TextWriter output, int writeBytes, CancellationToken cancellationToken)
    {
        await using var stub = TlsStub.Start(writeBytes);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"port {stub.Port}"));
        await output.FlushAsync(cancellationToken);
        // Until the parent closes our stdin (or dies).
        using var input = Console.OpenStandardInput();
        var sink = new byte[64];
        while (await input.ReadAsync(sink, cancellationToken) > 0)
        {
        }

        return 0;
    }

    public static async Task<int> ClientsAsync(IReadOnlyList<IPAddress> binds, TextWriter output, CancellationToken cancellationToken)
    {
        var tickets = new Dictionary<string, List<SignInTicket>>();
        BenchClient? bulk = null;
        var idle = new List<BenchClient>();
        var nextBind = 0;
        IPAddress? Bind() => binds.Count == 0 ? null : binds[Interlocked.Increment(ref nextBind) % binds.Count];

        async Task<List<SignInTicket>?> TicketsAsync(string path)
        {
            if (path == "-")
            {
                return null;
            }

            if (!tickets.TryGetValue(path, out var list))
            {
                list = await PeerTickets.ReadAsync(path, cancellationToken);
                tickets[path] = list;
            }

            return list;
        }

        async Task<BenchClient> OpenAsync(int port, SignInTicket? ticket)
        {
            var client = await BenchClient.ConnectAsync(port, ticket is null ? Captures.ConnectionRequestSsl : Captures.ConnectionRequestAad, cancellationToken, Bind());
            if (ticket is not null && await client.SignInAsync(ticket, cancellationToken) != RdsAadAuthResult.Success)
            {
                await client.DisposeAsync();
                throw new IOException($"sign-in refused (0x{client.Result:X8})");
            }

            await client.RunSequenceAsync(cancellationToken);
            return client;
        }

        using var input = new StreamReader(Console.OpenStandardInput());
        while (await input.ReadLineAsync(cancellationToken) is { } line)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string answer;
            try
            {
                switch (words)
                {
                    case ["bulk-open", var port, var path, var index]:
                        bulk = await OpenAsync(int.Parse(port, CultureInfo.InvariantCulture), (await TicketsAsync(path))?[int.Parse(index, CultureInfo.InvariantCulture)]);
                        answer = "ok";
                        break;
                    case ["bulk-go", var count]:
                        {
                            var client = bulk ?? throw new InvalidOperationException("bulk-go before bulk-open");
                            bulk = null;
                            var total = long.Parse(count, CultureInfo.InvariantCulture);
                            var started = Stopwatch.GetTimestamp();
                            await client.SendCommandAsync(TlsStub.Bulk, total, cancellationToken);
                            var buffer = new byte[64 * 1024];
                            long received = 0;
                            while (received < total)
                            {
                                var read = await client.Tls.ReadAsync(buffer, cancellationToken);
                                received += read > 0 ? read : throw new IOException($"closed after {received} of {total} bytes");
                            }

                            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
                            await client.DisposeAsync();
                            answer = string.Create(CultureInfo.InvariantCulture, $"ok {seconds:R}");
                            break;
                        }

                    case ["idle", var port, var path, var first, var count, var concurrency]:
                        {
                            var list = await TicketsAsync(path);
                            var from = int.Parse(first, CultureInfo.InvariantCulture);
                            var n = int.Parse(count, CultureInfo.InvariantCulture);
                            var opened = new BenchClient[n];
                            var next = -1;
                            var p = int.Parse(port, CultureInfo.InvariantCulture);
                            await Task.WhenAll(Enumerable.Range(0, int.Parse(concurrency, CultureInfo.InvariantCulture)).Select(_ => Task.Run(async () =>
                            {
                                int i;
                                while ((i = Interlocked.Increment(ref next)) < n)
                                {
                                    var client = await OpenAsync(p, list?[from + i]);
                                    await client.SendCommandAsync(TlsStub.Idle, 0, cancellationToken);
                                    opened[i] = client;
                                }
                            }, cancellationToken)));
                            idle.AddRange(opened);
                            answer = string.Create(CultureInfo.InvariantCulture, $"ok {idle.Count}");
                            break;
                        }

                    case ["close"]:
                        foreach (var client in idle)
                        {
                            await client.DisposeAsync();
                        }

                        idle.Clear();
                        answer = "ok";
                        break;
                    default:
                        answer = $"error unknown command: {line}";
                        break;
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException or InvalidOperationException or FormatException or ArgumentOutOfRangeException)
            {
                answer = $"error {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
            }

            await output.WriteLineAsync(answer);
            await output.FlushAsync(cancellationToken);
        }

        return 0;
    }
}

/// <summary>A peer process started by the gateway run (this same program with <c>peer-host</c> or <c>peer-clients</c>).</summary>
internal sealed class PeerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private PeerProcess(Process process) => _process = process;

    public int Id => _process.Id;

    /// <summary>User + system CPU of the process so far.</summary>
    public TimeSpan Cpu
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    /// <summary>VmRSS of the process.</summary>
    public long RssBytes
    {
        get
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }

    public static PeerProcess Start(params string[] arguments)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            // dotnet Gatehouse.LoadGen.dll …
            start.FileName = self;
            start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        }
        else
        {
            start.FileName = self;
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return new PeerProcess(Process.Start(start) ?? throw new InvalidOperationException("the peer process did not start"));
    }

    /// <summary>The next line the peer prints.</summary>
    public async Task<string> ReadLineAsync(CancellationToken cancellationToken) =>
        await _process.StandardOutput.ReadLineAsync(cancellationToken) ?? throw new IOException($"peer process {Id} ended (exit code {(_process.HasExited ? _process.ExitCode : -1)})");

    /// <summary>Sends one command and returns the words after <c>ok</c>.</summary>
    public async Task<string[]> SendAsync(string command, CancellationToken cancellationToken)
    {
        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync(cancellationToken);
        var answer = await ReadLineAsync(cancellationToken);
        return answer.StartsWith("ok", StringComparison.Ordinal)
            ? answer.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]
            : throw new IOException($"peer: {command}: {answer}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
