using System.Reflection;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Idp;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Gatehouse.Hosting;

/// <summary>Telemetry settings (configuration section <c>Gatehouse:Telemetry</c>; docs/observability.md).</summary>
internal sealed class TelemetryOptions
{
    public const string Section = "Gatehouse:Telemetry";

    /// <summary>Where to export over OTLP; the standard <c>OTEL_EXPORTER_OTLP_*</c> variables work too.</summary>
    public OtlpSettings Otlp { get; set; } = new();

    /// <summary>Record traces: true, false, or unset to record them exactly when an OTLP endpoint is configured.</summary>
    public bool? Tracing { get; set; }

    /// <summary>The <c>service.name</c> resource attribute.</summary>
    public string ServiceName { get; set; } = "gatehouse";
}

/// <summary>The OTLP exporter's settings.</summary>
internal sealed class OtlpSettings
{
    /// <summary>The collector's address, e.g. <c>http://collector:4317</c> (gRPC) or <c>http://collector:4318</c> (HTTP).</summary>
    public string? Endpoint { get; set; }

    /// <summary><c>grpc</c> (default) or <c>http/protobuf</c>.</summary>
    public string? Protocol { get; set; }

    /// <summary>Sign-in logs go over OTLP too (with their trace and span ids) when an endpoint is configured.</summary>
    public bool Logs { get; set; } = true;
}

/// <summary>
/// OpenTelemetry for <c>gatehouse serve</c>: one meter provider (Gatehouse's meter, ASP.NET Core, Kestrel, HttpClient,
/// Npgsql) read by the Prometheus exporter behind <c>/metrics</c> and, when configured, by the OTLP exporter; one tracer
/// provider (the gateway's and the identity provider's sources, ASP.NET Core, HttpClient, Npgsql) exporting over OTLP.
/// </summary>
internal static class Telemetry
{
    /// <summary>The meters exported besides Gatehouse's own.</summary>
    public static readonly string[] Meters = [GatewayTelemetry.MeterName, "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];

    /// <summary>The sources traced.</summary>
    public static readonly string[] Sources = [GatewayTelemetry.ActivitySourceName, IdpTelemetry.ActivitySourceName];

    /// <summary>Histogram bounds for durations in seconds (OpenTelemetry's defaults suit milliseconds).</summary>
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    public static void AddGatehouseTelemetry(this WebApplicationBuilder builder, TelemetryOptions options, bool prometheus)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        if (!string.IsNullOrWhiteSpace(options.Otlp.Endpoint)
            && (!Uri.TryCreate(options.Otlp.Endpoint, UriKind.Absolute, out var configured) || (configured.Scheme != Uri.UriSchemeHttp && configured.Scheme != Uri.UriSchemeHttps)))
        {
            throw new StartupException($"Gatehouse:Telemetry:Otlp:Endpoint '{options.Otlp.Endpoint}' is not an http:// or https:// address.");
        }

        var otlp = OtlpConfigured(options, builder.Configuration);
        var tracing = options.Tracing ?? otlp;
        var version = typeof(Telemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(options.ServiceName, serviceVersion: version, serviceInstanceId: Environment.MachineName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Meters);
                metrics.AddMeter(Gatehouse.Storage.StoreTelemetry.MeterName);
                Npgsql.MeterProviderBuilderExtensions.AddNpgsqlInstrumentation(metrics, null);
                metrics.AddHttpClientInstrumentation();
                metrics.AddView(instrument => instrument.Unit == "s" && instrument.Meter.Name == GatewayTelemetry.MeterName
                    ? new ExplicitBucketHistogramConfiguration { Boundaries = SecondsBuckets }
                    : null);
                if (prometheus)
                {
                    metrics.AddPrometheusExporter(o =>
                    {
                        // Every scrape sees the counts of the moment (the default caches a response for 300 ms).
                        o.ScrapeResponseCacheDurationMilliseconds = 0;
                        o.ScrapeEndpointPath = Gatehouse.Metrics.MetricsEndpoint.Path;
                    });
                }

                if (otlp)
                {
                    metrics.AddOtlpExporter(o => Configure(o, options.Otlp, "v1/metrics"));
                }
            });
        if (tracing)
        {
            telemetry.WithTracing(traces =>
            {
                traces.AddSource(Sources);
                traces.AddAspNetCoreInstrumentation(o =>
                {
                    // Scrapes and health checks are not sign-ins.
                    o.Filter = context => !context.Request.Path.StartsWithSegments(Gatehouse.Metrics.MetricsEndpoint.Path, StringComparison.Ordinal)
                        && !context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal);
                    o.RecordException = false;

                    // The query string can carry an authorization code (the native client's redirect page): never recorded,
                    // whatever OTEL_DOTNET_EXPERIMENTAL_ASPNETCORE_DISABLE_URL_QUERY_REDACTION says.
                    o.EnrichWithHttpRequest = (activity, _) => activity.SetTag("url.query", null);
                });
                traces.AddHttpClientInstrumentation(o => o.RecordException = false);
                Npgsql.TracerProviderBuilderExtensions.AddNpgsql(traces);
                if (otlp)
                {
                    traces.AddOtlpExporter(o => Configure(o, options.Otlp, "v1/traces"));
                }
            });
        }

        if (otlp && options.Otlp.Logs)
        {
            telemetry.WithLogging(logs => logs.AddOtlpExporter(o => Configure(o, options.Otlp, "v1/logs")), o => o.IncludeFormattedMessage = true);
        }
    }

    /// <summary>True when an OTLP endpoint is configured here or in the standard environment variables.</summary>
    internal static bool OtlpConfigured(TelemetryOptions options, IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(options.Otlp.Endpoint)
        || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
        || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT"));

    /// <summary>
    /// The exporter's address from <c>Gatehouse:Telemetry:Otlp</c> (nothing set: the <c>OTEL_EXPORTER_OTLP_*</c>
    /// variables rule). Over HTTP the signal's path is appended, as the standard variable does it.
    /// </summary>
    private static void Configure(OtlpExporterOptions exporter, OtlpSettings settings, string signalPath)
    {
        if (settings.Protocol is { Length: > 0 } protocol)
        {
            exporter.Protocol = protocol.Equals("http/protobuf", StringComparison.OrdinalIgnoreCase) || protocol.Equals("http", StringComparison.OrdinalIgnoreCase)
                ? OtlpExportProtocol.HttpProtobuf
                : OtlpExportProtocol.Grpc;
        }

        if (string.IsNullOrWhiteSpace(settings.Endpoint))
        {
            return;
        }

        var endpoint = new Uri(settings.Endpoint, UriKind.Absolute);
        exporter.Endpoint = exporter.Protocol == OtlpExportProtocol.HttpProtobuf
            ? new Uri(endpoint.AbsoluteUri.TrimEnd('/') + "/" + signalPath)
            : endpoint;
    }
}
