using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Text;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>What <c>gateway --peers</c> measures.</summary>
internal sealed record PeerSettings(int RelayMiB, int RelayRounds, IReadOnlyList<int> IdleSessions, int Concurrency, int Binds, int Keys)
{
    /// <summary>Bytes per write of the stub host in a bulk transfer.</summary>
    public int WriteBytes { get; init; } = 16 * 1024;

    /// <summary>The gateway's RDP listener: <c>socket</c> or <c>kestrel</c> (Gatehouse:Gateway:Listener).</summary>
    public string Listener { get; init; } = "socket";
}

/// <summary>CPU per MiB of each process over one bulk transfer, and the rate the client saw.</summary>
internal sealed record PeerBulk(double MiBPerSecond, double GatewayCpuMsPerMiB, double HostCpuMsPerMiB, double ClientCpuMsPerMiB, double GatewayWorkItemsPerMiB, double GatewayAllocatedKiBPerMiB);

/// <summary>A direct and a relayed transfer of the same bytes, back to back.</summary>
internal sealed record PeerRound(PeerBulk Direct, PeerBulk Relayed)
{
    /// <summary>The yardstick: what a TLS pair costs per MiB (both ends of the direct stream).</summary>
    public double PairCpuMsPerMiB => Direct.HostCpuMsPerMiB + Direct.ClientCpuMsPerMiB;

    public double Ratio => Relayed.MiBPerSecond / Direct.MiBPerSecond;

    public double CpuRatio => Relayed.GatewayCpuMsPerMiB / PairCpuMsPerMiB;
}

/// <summary>Memory of the gateway process around N idle relayed sessions (after forced compacting collections).</summary>
internal sealed record PeerMemory(int Sessions, long RssBefore, long RssOpen, long RssClosed, long ManagedBefore, long ManagedOpen, long HostRssGrowth, long ClientsRssGrowth)
{
    /// <summary>VmRSS at the idle point after glibc's <c>malloc_trim(0)</c> (free heap pages given back); the baseline is trimmed too.</summary>
    public long RssOpenTrimmed { get; init; }

    /// <summary>VmRSS before the sessions opened, after <c>malloc_trim(0)</c>.</summary>
    public long RssBeforeTrimmed { get; init; }

    public double TrimmedKiBPerSession => (RssOpenTrimmed - RssBeforeTrimmed) / 1024.0 / Sessions;

    /// <summary>The yardstick: RSS growth of the stub host process per connection (one TLS server end, no GC forced there).</summary>
    public double HostKiBPerSession => HostRssGrowth / 1024.0 / Sessions;

    /// <summary>RSS growth of the clients process per connection (one TLS client end each).</summary>
    public double ClientsKiBPerSession => ClientsRssGrowth / 1024.0 / Sessions;

    public double RssKiBPerSession => (RssOpen - RssBefore) / 1024.0 / Sessions;

    public double ReleasedKiBPerSession => (RssOpen - RssClosed) / 1024.0 / Sessions;

    public double ManagedKiBPerSession => (ManagedOpen - ManagedBefore) / 1024.0 / Sessions;
}

/// <summary>
/// The relay and memory measurements with the peers in other processes: the TLS stub host (<c>peer-host</c>) and the
/// clients (<c>peer-clients</c>, bound to 127.0.0.2 … 127.0.0.(1 + binds)) are child processes, the gateway is this
/// process (the host <c>gatehouse serve</c> builds), so this process's CPU and RSS are the gateway's alone.
/// </summary>
internal static class PeerRun
{
    private const int MintBatch = 500;

    public static async Task<string> RunAsync(PeerSettings settings, Action<string> progress, CancellationToken cancellationToken)
    {
        await using var hostPeer = PeerProcess.Start("peer-host", "--write", settings.WriteBytes.ToString(CultureInfo.InvariantCulture));
        var hostLine = (await hostPeer.ReadLineAsync(cancellationToken)).Split(' ');
        var stubPort = hostLine is ["port", var p] ? int.Parse(p, CultureInfo.InvariantCulture) : throw new IOException($"peer-host said: {string.Join(' ', hostLine)}");
        var binds = Enumerable.Range(2, settings.Binds).Select(i => $"127.0.0.{i}").ToArray();
        await using var clients = PeerProcess.Start(["peer-clients", .. binds.SelectMany(b => new[] { "--bind", b })]);
        await using var host = await BenchHost.StartAsync(
            $"https://127.0.0.1:{FreePort()}",
            "login.gatehouse.test",
            new Dictionary<string, string?>
            {
                ["Gatehouse:Gateway:MaxPendingConnectionsPerAddress"] = "4096",
                ["Gatehouse:Gateway:MaxPendingConnections"] = "4096",
                ["Gatehouse:Gateway:Listener"] = settings.Listener,
            },
            progress,
            cancellationToken);
        var app = host.App;
        var rdpPort = GatehouseHost.RdpEndPoint(app).Port;
        var registry = app.Services.GetRequiredService<SessionRegistry>();
        progress($"gateway (pid {Environment.ProcessId}) on 127.0.0.1:{rdpPort}; peer-host pid {hostPeer.Id} on 127.0.0.1:{stubPort}; peer-clients pid {clients.Id} from {binds[0]}…{binds[^1]}");
        var arranged = await GatewayRun.ArrangeAsync(app.Services, stubPort, new GatewaySettings(1, 1, 1, 1, 1, 1, 0, "benchuser", "x", 3389), cancellationToken);
        var keys = Enumerable.Range(0, settings.Keys).Select(_ => PopKeyPair.Create()).ToArray();
        var ticketsDirectory = Directory.CreateTempSubdirectory("gatehouse-peers");
        try
        {
            var minter = new Minter(app.Services, arranged, keys);
            var file = Path.Combine(ticketsDirectory.FullName, "bulk.json");
            var bulkTickets = await minter.MintAsync(arranged.User, settings.RelayRounds + 1, cancellationToken);
            await PeerTickets.WriteAsync(file, keys, bulkTickets, cancellationToken);
            var bytes = (long)settings.RelayMiB * 1024 * 1024;

            async Task<PeerBulk> BulkAsync(int port, int ticket, long total)
            {
                await clients.SendAsync(port == stubPort ? $"bulk-open {port} - 0" : $"bulk-open {port} {file} {ticket}", cancellationToken);
                var (gateway0, host0, clients0) = (Process.GetCurrentProcess().TotalProcessorTime, hostPeer.Cpu, clients.Cpu);
                var (items0, allocated0) = (ThreadPool.CompletedWorkItemCount, GC.GetTotalAllocatedBytes(precise: true));
                var seconds = double.Parse((await clients.SendAsync($"bulk-go {total}", cancellationToken))[0], CultureInfo.InvariantCulture);
                var (gateway1, host1, clients1) = (Process.GetCurrentProcess().TotalProcessorTime, hostPeer.Cpu, clients.Cpu);
                var (items1, allocated1) = (ThreadPool.CompletedWorkItemCount, GC.GetTotalAllocatedBytes(precise: true));
                var mib = total / (1024.0 * 1024);
                return new PeerBulk(mib / seconds, (gateway1 - gateway0).TotalMilliseconds / mib, (host1 - host0).TotalMilliseconds / mib, (clients1 - clients0).TotalMilliseconds / mib, (items1 - items0) / mib, (allocated1 - allocated0) / 1024.0 / mib);
            }

            progress("warm-up: 32 MiB direct and through the gateway");
            await BulkAsync(stubPort, 0, 32L * 1024 * 1024);
            await BulkAsync(rdpPort, settings.RelayRounds, 32L * 1024 * 1024);
            var rounds = new List<PeerRound>();
            for (var round = 0; round < settings.RelayRounds; round++)
            {
                progress($"relay round {round + 1}/{settings.RelayRounds}: {settings.RelayMiB} MiB host → client, direct then through the gateway");
                var direct = await BulkAsync(stubPort, 0, bytes);
                var relayed = await BulkAsync(rdpPort, round, bytes);
                rounds.Add(new PeerRound(direct, relayed));
            }

            var memory = new List<PeerMemory>();
            foreach (var count in settings.IdleSessions)
            {
                await WaitUntilAsync(() => registry.Count == 0, cancellationToken);
                var before = MemorySnapshot.Take();
                var beforeTrimmed = NativeHeap.TrimmedRss();
                var beforeMaps = NativeHeap.RssByMapping();
                var (hostBefore, clientsBefore) = (hostPeer.RssBytes, clients.RssBytes);
                progress($"memory: opening {count} idle relayed sessions ({settings.Concurrency} at a time, tickets minted per batch of {MintBatch}: aad_nonces expire)");
                var started = Stopwatch.GetTimestamp();
                for (var first = 0; first < count; first += MintBatch)
                {
                    var batch = Math.Min(MintBatch, count - first);
                    var idleFile = Path.Combine(ticketsDirectory.FullName, $"idle-{count}-{first}.json");
                    await PeerTickets.WriteAsync(idleFile, keys, await minter.MintAsync(arranged.User, batch, cancellationToken), cancellationToken);
                    await clients.SendAsync($"idle {rdpPort} {idleFile} 0 {batch} {settings.Concurrency}", cancellationToken);
                }

                await WaitUntilAsync(() => registry.Count == count, cancellationToken);
                progress($"memory: {count} open after {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s");
                // Let the last copy loops park in their idle reads.
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                var open = MemorySnapshot.Take();
                var (hostOpen, clientsOpen) = (hostPeer.RssBytes, clients.RssBytes);
                var openTrimmed = NativeHeap.TrimmedRss();
                var openMaps = NativeHeap.RssByMapping();
                progress($"memory: {count} idle: RSS growth by mapping (KiB/session, after malloc_trim): {string.Join(", ", openMaps.Keys.Union(beforeMaps.Keys).Select(k => (k, (openMaps.GetValueOrDefault(k) - beforeMaps.GetValueOrDefault(k)) / 1024.0 / count)).Where(e => Math.Abs(e.Item2) >= 0.1).OrderByDescending(e => e.Item2).Select(e => FormattableString.Invariant($"{e.k} {e.Item2:F1}")))}");
                progress($"memory: {count} idle: RSS {before.WorkingSetBytes / 1048576.0:F1} -> {open.WorkingSetBytes / 1048576.0:F1} MiB, after malloc_trim(0) {beforeTrimmed / 1048576.0:F1} -> {openTrimmed / 1048576.0:F1} MiB; GC live {before.ManagedBytes / 1048576.0:F1} -> {open.ManagedBytes / 1048576.0:F1} MiB, GC committed {before.CommittedBytes / 1048576.0:F1} -> {open.CommittedBytes / 1048576.0:F1} MiB");
                if (int.TryParse(Environment.GetEnvironmentVariable("GATEHOUSE_BENCH_HOLD_AT_IDLE"), CultureInfo.InvariantCulture, out var holdSeconds) && holdSeconds > 0)
                {
                    // For dotnet-gcdump and the like: the sessions stay idle this long after they were measured.
                    progress($"GATEHOUSE_BENCH_HOLD_AT_IDLE: holding {count} idle sessions for {holdSeconds} s (pid {Environment.ProcessId})");
                    await Task.Delay(TimeSpan.FromSeconds(holdSeconds), cancellationToken);
                }

                if (Environment.GetEnvironmentVariable("GATEHOUSE_BENCH_EXIT_AT_IDLE") == "1")
                {
                    // For heaptrack: what is still allocated at exit is what the idle sessions (and the baseline) hold.
                    progress("GATEHOUSE_BENCH_EXIT_AT_IDLE=1: exiting at the idle point");
                    Environment.Exit(0);
                }

                await clients.SendAsync("close", cancellationToken);
                await WaitUntilAsync(() => registry.Count == 0, cancellationToken);
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
                var closed = MemorySnapshot.Take();
                memory.Add(new PeerMemory(count, before.WorkingSetBytes, open.WorkingSetBytes, closed.WorkingSetBytes, before.ManagedBytes, open.ManagedBytes, hostOpen - hostBefore, clientsOpen - clientsBefore) { RssOpenTrimmed = openTrimmed, RssBeforeTrimmed = beforeTrimmed });
            }

            return Format(settings, rounds, memory);
        }
        finally
        {
            foreach (var key in keys)
            {
                key.Dispose();
            }

            ticketsDirectory.Delete(recursive: true);
        }
    }

    private static string Format(PeerSettings settings, List<PeerRound> rounds, List<PeerMemory> memory)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"Gatehouse gateway with its peers in other processes: {Environment.ProcessorCount} logical CPUs, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        text.AppendLine(c, $"gateway GC: {(GCSettings.IsServerGC ? "server" : "workstation")}, {(GCSettings.LatencyMode == GCLatencyMode.Batch ? "non-concurrent" : "concurrent")}");
        text.AppendLine();
        text.AppendLine(c, $"relay, {settings.RelayMiB} MiB host → client per transfer in writes of {settings.WriteBytes} bytes, RDP listener: {settings.Listener} (CPU ms per MiB of each process; pair = host + client of the direct stream)");
        text.AppendLine(c, $"{"round",5} {"direct MiB/s",12} {"relayed MiB/s",13} {"ratio",6} {"pair ms/MiB",11} {"gateway ms/MiB",14} {"÷ pair",7} {"host (relayed)",14} {"client (relayed)",16} {"gw work items/MiB",17} {"gw alloc KiB/MiB",16}");
        for (var i = 0; i < rounds.Count; i++)
        {
            var r = rounds[i];
            text.AppendLine(c, $"{i + 1,5} {r.Direct.MiBPerSecond,12:F0} {r.Relayed.MiBPerSecond,13:F0} {r.Ratio,6:F2} {r.PairCpuMsPerMiB,11:F2} {r.Relayed.GatewayCpuMsPerMiB,14:F2} {r.CpuRatio,7:F2} {r.Relayed.HostCpuMsPerMiB,14:F2} {r.Relayed.ClientCpuMsPerMiB,16:F2} {r.Relayed.GatewayWorkItemsPerMiB,17:F1} {r.Relayed.GatewayAllocatedKiBPerMiB,16:F1}");
        }

        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted[sorted.Length / 2];
        }

        text.AppendLine(c, $"median: throughput ratio {Median(rounds.Select(r => r.Ratio)):F2}, gateway ms/MiB {Median(rounds.Select(r => r.Relayed.GatewayCpuMsPerMiB)):F2}, pair ms/MiB {Median(rounds.Select(r => r.PairCpuMsPerMiB)):F2}, gateway ÷ pair {Median(rounds.Select(r => r.CpuRatio)):F2}, gateway work items/MiB {Median(rounds.Select(r => r.Relayed.GatewayWorkItemsPerMiB)):F1}, alloc KiB/MiB {Median(rounds.Select(r => r.Relayed.GatewayAllocatedKiBPerMiB)):F1}");
        var proxy = FindOnPath("freerdp-proxy3");
        text.AppendLine(proxy is null ? "freerdp-proxy3: not installed on this machine (no comparison)" : $"freerdp-proxy3: {proxy} (not measured by this tool)");
        text.AppendLine();
        text.AppendLine("memory of the gateway process per idle relayed session (after forced compacting collections; RSS = VmRSS)");
        text.AppendLine(c, $"{"sessions",8} {"RSS before MiB",14} {"RSS open MiB",12} {"KiB/session",11} {"given back KiB/session",22} {"managed KiB/session",19} {"host peer KiB/conn",18} {"client peer KiB/conn",20} {"KiB/session after malloc_trim",29}");
        foreach (var m in memory)
        {
            text.AppendLine(c, $"{m.Sessions,8} {m.RssBefore / 1048576.0,14:F1} {m.RssOpen / 1048576.0,12:F1} {m.RssKiBPerSession,11:F1} {m.ReleasedKiBPerSession,22:F1} {m.ManagedKiBPerSession,19:F1} {m.HostKiBPerSession,18:F1} {m.ClientsKiBPerSession,20:F1} {m.TrimmedKiBPerSession,29:F1}");
        }

        return text.ToString();
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (600 * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("the sessions did not reach the expected count within 10 minutes");
            }

            await Task.Delay(50, cancellationToken);
        }
    }
}

/// <summary>glibc's heap: <c>malloc_trim(0)</c> gives free pages back to the system.</summary>
internal static class NativeHeap
{
    /// <summary>VmRSS after <c>malloc_trim(0)</c> (after a compacting collection, so freed native memory is free).</summary>
    public static long TrimmedRss()
    {
        MemorySnapshot.Take();
        if (OperatingSystem.IsLinux())
        {
            _ = MallocTrim(0);
        }

        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64;
    }

    /// <summary>Resident bytes by kind of mapping (/proc/self/smaps): anonymous, the brk heap, JIT code (memfd), files.</summary>
    public static Dictionary<string, long> RssByMapping()
    {
        var rss = new Dictionary<string, long>(StringComparer.Ordinal);
        if (!OperatingSystem.IsLinux())
        {
            return rss;
        }

        var kind = "anonymous";
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-', StringComparison.Ordinal) && !fields[0].EndsWith(':'))
            {
                var name = fields.Length >= 6 ? fields[5] : string.Empty;
                kind = name switch
                {
                    "" => "anonymous",
                    "[heap]" => "brk heap",
                    _ when name.StartsWith("/memfd:", StringComparison.Ordinal) => "memfd (JIT code)",
                    _ when name.StartsWith('[') => name,
                    _ => "files",
                };
            }
            else if (fields is ["Rss:", var kib, "kB"])
            {
                rss[kind] = rss.GetValueOrDefault(kind) + (long.Parse(kib, CultureInfo.InvariantCulture) * 1024);
            }
        }

        return rss;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
