using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>A rate phase: operations per second over the phase, latency percentiles (nearest rank), process CPU per operation.</summary>
internal sealed record RateResult(string Name, int Operations, int Errors, string? FirstError, double PerSecond, double P50Ms, double P99Ms, double CpuMsPerOperation);

/// <summary>One bulk transfer: MiB/s, and per GiB moved: process CPU seconds, MiB allocated, thread-pool work items.</summary>
internal sealed record BulkResult(double MiBPerSecond, double CpuSecondsPerGiB, double AllocatedMiBPerGiB, double WorkItemsPerGiB);

/// <summary>A direct and a relayed transfer of the same bytes, back to back.</summary>
internal sealed record RelayRound(BulkResult Direct, BulkResult Gateway)
{
    public double Ratio => Gateway.MiBPerSecond / Direct.MiBPerSecond;

    public double CpuRatio => Gateway.CpuSecondsPerGiB / Direct.CpuSecondsPerGiB;
}

/// <summary>Memory figures (a difference of two snapshots when subtracted).</summary>
internal sealed record MemorySnapshot(long ManagedBytes, long HeapBytes, long CommittedBytes, long WorkingSetBytes)
{
    /// <summary>After a full blocking compacting collection.</summary>
    public static MemorySnapshot Take()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        var info = GC.GetGCMemoryInfo(GCKind.Any);
        using var process = Process.GetCurrentProcess();
        return new MemorySnapshot(managed, info.HeapSizeBytes, info.TotalCommittedBytes, process.WorkingSet64);
    }

    public static MemorySnapshot operator -(MemorySnapshot a, MemorySnapshot b) =>
        new(a.ManagedBytes - b.ManagedBytes, a.HeapBytes - b.HeapBytes, a.CommittedBytes - b.CommittedBytes, a.WorkingSetBytes - b.WorkingSetBytes);

    public MemorySnapshot PerConnection(int count) => new(ManagedBytes / count, HeapBytes / count, CommittedBytes / count, WorkingSetBytes / count);
}

/// <summary>
/// K idle direct connections (client TLS + stub TLS endpoints, both in this process) and K idle relayed sessions
/// (client + gateway client leg + gateway host leg + stub, plus the session). Gateway − direct = what the gateway
/// holds per session; gateway − 2 × direct = that beyond its own two TLS endpoints.
/// </summary>
internal sealed record MemoryResult(int Count, MemorySnapshot Direct, MemorySnapshot Gateway, MemorySnapshot DirectReleased, MemorySnapshot GatewayReleased)
{
    public MemorySnapshot DirectPer => Direct.PerConnection(Count);

    public MemorySnapshot GatewayPer => Gateway.PerConnection(Count);

    public MemorySnapshot GatewayOwnPer => (Gateway - Direct).PerConnection(Count);

    public MemorySnapshot BeyondTlsPer => (Gateway - Direct - Direct).PerConnection(Count);

    public MemorySnapshot ReleasedBeyondTlsPer => (GatewayReleased - DirectReleased - DirectReleased).PerConnection(Count);
}

/// <summary>Times for xfreerdp3 to reach the xrdp desktop (seconds), directly and through the gateway, interleaved.</summary>
internal sealed record DesktopResult(IReadOnlyList<double> Direct, IReadOnlyList<double> Gateway, IReadOnlyList<double> GatewayFromStart, string? Problem)
{
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>The whole gateway run.</summary>
internal sealed record GatewayReport(GatewaySettings Settings, Machine Machine, double MintSeconds, IReadOnlyList<RateResult> SignIns, IReadOnlyList<RateResult> Validations, IReadOnlyList<RelayRound> Relay, MemoryResult Memory, DesktopResult? Desktop)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public int Errors => SignIns.Sum(s => s.Errors) + Validations.Sum(v => v.Errors);

    public string ToTable()
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"Gatehouse gateway benchmarks: {Machine.LogicalProcessors} logical CPUs ({Machine.Architecture}), {Machine.Os}, {Machine.Runtime}; host, clients and TLS stub host in one process");
        text.AppendLine(c, $"{Settings.Concurrency} concurrent clients; {Settings.Keys} pre-generated RSA-2048 PoP keys used round-robin; {Settings.SignIns * 2} tokens + aad_nonces minted beforehand in {MintSeconds:F1} s");
        text.AppendLine();
        text.AppendLine("(a) web-account sign-ins (client-observed: TCP connect to result; CPU = whole process per operation)");
        text.AppendLine(c, $"{"phase",-34} {"ops",6} {"errors",6} {"ops/s",8} {"p50 ms",8} {"p99 ms",8} {"CPU ms/op",9} {"÷ TLS-only",10}");
        var tlsOnly = SignIns[0].PerSecond;
        foreach (var r in SignIns.Concat(Validations))
        {
            text.AppendLine(c, $"{r.Name,-34} {r.Operations,6} {r.Errors,6} {r.PerSecond,8:F1} {r.P50Ms,8:F2} {r.P99Ms,8:F2} {r.CpuMsPerOperation,9:F2} {r.PerSecond / tlsOnly,10:F3}");
            if (r.FirstError is not null)
            {
                text.AppendLine(c, $"  first error: {r.FirstError}");
            }
        }

        text.AppendLine();
        text.AppendLine(c, $"(b) relay, {Settings.RelayMiB} MiB host → client per transfer, TLS on every leg");
        text.AppendLine(c, $"{"round",5} {"direct MiB/s",12} {"gateway MiB/s",13} {"ratio",6} {"CPU s/GiB direct",16} {"gateway",8} {"ratio",6} {"alloc MiB/GiB direct",20} {"gateway",8} {"work items/GiB direct",21} {"gateway",8}");
        for (var i = 0; i < Relay.Count; i++)
        {
            var r = Relay[i];
            text.AppendLine(c, $"{i + 1,5} {r.Direct.MiBPerSecond,12:F0} {r.Gateway.MiBPerSecond,13:F0} {r.Ratio,6:F2} {r.Direct.CpuSecondsPerGiB,16:F2} {r.Gateway.CpuSecondsPerGiB,8:F2} {r.CpuRatio,6:F2} {r.Direct.AllocatedMiBPerGiB,20:F1} {r.Gateway.AllocatedMiBPerGiB,8:F1} {r.Direct.WorkItemsPerGiB,21:F0} {r.Gateway.WorkItemsPerGiB,8:F0}");
        }

        var ratios = Relay.Select(r => r.Ratio).Order().ToArray();
        text.AppendLine(c, $"median ratio {ratios[ratios.Length / 2]:F2} (min {ratios[0]:F2}, max {ratios[^1]:F2})");

        text.AppendLine();
        text.AppendLine(c, $"(c) memory, {Memory.Count} idle connections each (KiB per connection)");
        text.AppendLine(c, $"{"",-50} {"managed",8} {"GC heap",8} {"committed",9} {"working set",11}");
        foreach (var (name, m) in new[]
        {
            ("direct TLS connection (client + stub ends)", Memory.DirectPer),
            ("relayed session (client + 2 gateway legs + stub)", Memory.GatewayPer),
            ("gateway's own (relayed − direct)", Memory.GatewayOwnPer),
            ("beyond its TLS ends (relayed − 2 × direct)", Memory.BeyondTlsPer),
            ("closing: direct gives back", Memory.DirectReleased.PerConnection(Memory.Count)),
            ("closing: relayed gives back", Memory.GatewayReleased.PerConnection(Memory.Count)),
            ("closing: beyond TLS (relayed − 2 × direct)", Memory.ReleasedBeyondTlsPer),
        })
        {
            text.AppendLine(c, $"{name,-50} {m.ManagedBytes / 1024.0,8:F1} {m.HeapBytes / 1024.0,8:F1} {m.CommittedBytes / 1024.0,9:F1} {m.WorkingSetBytes / 1024.0,11:F1}");
        }

        if (Desktop is { } d)
        {
            text.AppendLine();
            text.AppendLine("(d) xfreerdp3 to a non-blank xrdp desktop (s): direct from process start, gateway from pasting the redirect URL");
            text.AppendLine(c, $"direct:  {string.Join(" ", d.Direct.Select(v => v.ToString("F2", c)))}  median {DesktopResult.Median(d.Direct):F2}");
            text.AppendLine(c, $"gateway: {string.Join(" ", d.Gateway.Select(v => v.ToString("F2", c)))}  median {DesktopResult.Median(d.Gateway):F2}");
            text.AppendLine(c, $"gateway from process start (includes printing the sign-in URL and minting the code): {string.Join(" ", d.GatewayFromStart.Select(v => v.ToString("F2", c)))}  median {DesktopResult.Median(d.GatewayFromStart):F2}");
            text.AppendLine(c, $"ratio of medians, gateway ÷ direct: from paste {DesktopResult.Median(d.Gateway) / DesktopResult.Median(d.Direct):F2}, from process start {DesktopResult.Median(d.GatewayFromStart) / DesktopResult.Median(d.Direct):F2}");
            if (d.Problem is not null)
            {
                text.AppendLine(c, $"problem: {d.Problem}");
            }
        }

        return text.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json) + Environment.NewLine;
}
