using System.Diagnostics.Metrics;
using System.Net;
using System.Text;

namespace Gatehouse.Metrics;

/// <summary>Metrics settings (configuration section <c>Gatehouse:Metrics</c>).</summary>
internal sealed class MetricsOptions
{
    /// <summary>Serve <c>/metrics</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Answer scrapes from other machines too (default: loopback only, since counts of sign-ins are not public).</summary>
    public bool AllowRemote { get; set; }
}

/// <summary>Gatehouse's own instruments (meter <c>Gatehouse</c>); the gateway and identity provider record into them.</summary>
internal static class GatehouseMeter
{
    public const string Name = "Gatehouse";

    public static readonly Meter Meter = new(Name);
}

/// <summary><c>GET /metrics</c> in the Prometheus text format.</summary>
internal static class MetricsEndpoint
{
    /// <summary>The meters exported: Gatehouse's, ASP.NET Core hosting (request durations) and Kestrel (connections, TLS handshakes).</summary>
    public static readonly string[] MeterPrefixes = [GatehouseMeter.Name, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];

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

        app.MapGet("/metrics", (HttpContext context, MetricsCollector collector) =>
        {
            if (!IsAllowed(context.Connection.RemoteIpAddress, options))
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                context.Response.ContentType = "text/plain; charset=utf-8";
                return context.Response.WriteAsync("Metrics are served to loopback clients only; set Gatehouse:Metrics:AllowRemote=true to scrape from elsewhere.\n");
            }

            using var writer = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
            collector.WriteTo(writer);
            context.Response.ContentType = PrometheusText.ContentType;
            return context.Response.WriteAsync(writer.ToString(), Encoding.UTF8);
        });
    }
}
