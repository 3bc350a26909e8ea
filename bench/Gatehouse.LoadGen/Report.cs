using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gatehouse.LoadGen;

/// <summary>
/// One endpoint's figures: throughput over the whole run, latency percentiles (nearest rank), and this process's CPU time
/// per request (host and load generator together; the database's is not in it).
/// </summary>
internal sealed record EndpointResult(string Name, string Path, int Requests, int Errors, double RequestsPerSecond, double P50Ms, double P99Ms, double CpuMsPerRequest = double.NaN);

/// <summary>The run's figures, each endpoint also relative to <c>/healthz</c> measured in the same run.</summary>
internal sealed record LoadReport(LoadSettings Settings, Machine Machine, int CodesMinted, double MintSeconds, IReadOnlyList<EndpointResult> Results)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private EndpointResult Baseline => Results.First(r => r.Path == "/healthz");

    /// <summary>Throughput as a fraction of the baseline's (1 = as fast as /healthz).</summary>
    public double ThroughputRatio(EndpointResult result) => result.RequestsPerSecond / Baseline.RequestsPerSecond;

    /// <summary>Median latency as a multiple of the baseline's.</summary>
    public double LatencyRatio(EndpointResult result) => result.P50Ms / Baseline.P50Ms;

    public string ToTable()
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(c, $"Gatehouse IdP load test: {Machine.LogicalProcessors} logical CPUs ({Machine.Architecture}), {Machine.Os}, {Machine.Runtime}; host and load generator in one process");
        text.AppendLine(c, $"concurrency {Settings.Concurrency}, {Settings.Requests} requests per endpoint, {CodesMinted} codes (minted beforehand in {MintSeconds:F1} s, {CodesMinted / MintSeconds:F0}/s, through AuthorizationCodeService{(Settings.Pkce ? ", with an S256 challenge, redeemed with the verifier" : string.Empty)})");
        text.AppendLine();
        text.AppendLine(c, $"{"endpoint",-20} {"path",-46} {"requests",8} {"errors",6} {"req/s",9} {"p50 ms",8} {"p99 ms",8} {"req/s ÷ healthz",15} {"p50 ÷ healthz",13} {"CPU ms/req",10}");
        foreach (var r in Results)
        {
            text.AppendLine(c, $"{r.Name,-20} {r.Path,-46} {r.Requests,8} {r.Errors,6} {r.RequestsPerSecond,9:F0} {r.P50Ms,8:F2} {r.P99Ms,8:F2} {ThroughputRatio(r),15:F3} {LatencyRatio(r),13:F2} {r.CpuMsPerRequest,10:F3}");
        }

        return text.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(new
    {
        settings = Settings,
        machine = Machine,
        mint = new { codes = CodesMinted, seconds = MintSeconds, perSecond = CodesMinted / MintSeconds },
        results = Results.Select(r => new
        {
            r.Name,
            r.Path,
            r.Requests,
            r.Errors,
            r.RequestsPerSecond,
            r.P50Ms,
            r.P99Ms,
            r.CpuMsPerRequest,
            requestsPerSecondVsHealthz = ThroughputRatio(r),
            p50VsHealthz = LatencyRatio(r),
        }),
    }, Json) + Environment.NewLine;
}
