using System.Net;

namespace Gatehouse.Metrics;

/// <summary>Metrics settings (configuration section <c>Gatehouse:Metrics</c>).</summary>
internal sealed class MetricsOptions
{
    /// <summary>Serve <c>/metrics</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Answer scrapes from other machines too (default: loopback only, since counts of sign-ins are not public).</summary>
    public bool AllowRemote { get; set; }
}

/// <summary>
/// <c>GET /metrics</c> in the Prometheus text format, written by OpenTelemetry's Prometheus exporter from the same
/// meter provider that exports over OTLP (docs/decisions/0005-prometheus-exporter.md), behind the loopback gate.
/// </summary>
internal static class MetricsEndpoint
{
    /// <summary>The scrape path.</summary>
    public const string Path = "/metrics";

    /// <summary>True when a scrape from <paramref name="remote"/> is answered.</summary>
    public static bool IsAllowed(IPAddress? remote, MetricsOptions options) =>
        options.AllowRemote || (remote is not null && IPAddress.IsLoopback(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote));

    public static void MapMetrics(this WebApplication app, MetricsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Enabled)
        {
            return;
        }

        app.MapPrometheusScrapingEndpoint(Path, meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (context, next) =>
        {
            if (!IsAllowed(context.Connection.RemoteIpAddress, options))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("Metrics are served to loopback clients only; set Gatehouse:Metrics:AllowRemote=true to scrape from elsewhere.\n").ConfigureAwait(false);
                return;
            }

            await next(context).ConfigureAwait(false);
        }), optionsName: null);
    }
}
