using System.Collections.Concurrent;
using System.Net;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.Metrics;

/// <summary>
/// Issue 20 item 1: with <c>Gatehouse:Telemetry:Otlp:Endpoint</c> set, traces, metrics and logs leave over OTLP/HTTP to
/// the collector's standard paths (a stand-in collector on loopback records what arrives).
/// </summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task OtlpEndpointConfigured_TracesMetricsAndLogsArePostedAsProtobuf()
    {
        await using var collector = await FakeCollector.StartAsync();
        var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Telemetry:Otlp:Endpoint"] = collector.Address.ToString(),
            ["Gatehouse:Telemetry:Otlp:Protocol"] = "http/protobuf",
        });
        await using (server)
        {
            var response = await server.Client.GetAsync(new Uri(Support.IdpScenario.Authorize(), UriKind.Relative));
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadRequest);
        }

        // Stopping the host flushes every exporter.
        Assert.Contains("/v1/traces", collector.Paths);
        Assert.Contains("/v1/metrics", collector.Paths);
        Assert.Contains("/v1/logs", collector.Paths);
        Assert.All(collector.ContentTypes, t => Assert.Equal("application/x-protobuf", t));
    }

    [Fact]
    public async Task OtlpEndpointThatIsNotHttp_IsAStartupError()
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Telemetry:Otlp:Endpoint"] = "collector:4317",
        }));
        Assert.Contains("Gatehouse:Telemetry:Otlp:Endpoint", e.Message, StringComparison.Ordinal);
    }

    /// <summary>An OTLP/HTTP receiver that answers 200 to every export and records its path and content type.</summary>
    private sealed class FakeCollector : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<(string Path, string? ContentType)> _requests;

        private FakeCollector(WebApplication app, ConcurrentQueue<(string, string?)> requests)
        {
            _app = app;
            _requests = requests;
            Address = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
        }

        public Uri Address { get; }

        public IReadOnlyList<string> Paths => [.. _requests.Select(r => r.Path)];

        public IReadOnlyList<string?> ContentTypes => [.. _requests.Select(r => r.ContentType)];

        public static async Task<FakeCollector> StartAsync()
        {
            var requests = new ConcurrentQueue<(string, string?)>();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.Run(async context =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                requests.Enqueue((context.Request.Path.Value ?? string.Empty, context.Request.ContentType));
                context.Response.StatusCode = StatusCodes.Status200OK;
            });
            await app.StartAsync();
            return new FakeCollector(app, requests);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
