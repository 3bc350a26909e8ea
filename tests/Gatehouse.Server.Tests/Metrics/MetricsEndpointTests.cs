using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Metrics;

[Collection(ProcessEnvironmentCollection.Name)]
public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_FromLoopback_IsPrometheusTextWithHttpMetrics()
    {
        await using var server = await TestServer.StartAsync();
        (await server.Client.GetAsync(new Uri("/healthz", UriKind.Relative))).EnsureSuccessStatusCode();
        var response = await server.Client.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("http_server_request_duration_seconds_bucket", text, StringComparison.Ordinal);
        Assert.Contains("http_route=\"/healthz\"", text, StringComparison.Ordinal);
        PrometheusExposition.AssertWellFormed(text);
    }

    [Fact]
    public async Task Metrics_AfterASignIn_ShowsGatehouseInstruments()
    {
        await using var s = await IdpScenario.StartAsync();
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser, password: "Wrong-Password-1");

        var text = await s.Server.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        PrometheusExposition.AssertWellFormed(text);
        Assert.True(PrometheusExposition.Value(text, "gatehouse_sign_ins_total", "gatehouse_protocol=\"browser\"", "gatehouse_result=\"failure\"") >= 1, text);
        Assert.True(PrometheusExposition.Value(text, "gatehouse_db_duration_seconds_count", "db_system=\"sqlite\"") >= 1, text);
    }

    /// <summary>The Prometheus names docs/observability.md lists for the Gatehouse meter's instruments.</summary>
    [Fact]
    public async Task Metrics_EveryGatehouseInstrument_HasItsDocumentedPrometheusName()
    {
        await using var server = await TestServer.StartAsync();
        var protocol = new KeyValuePair<string, object?>("gatehouse.protocol", "test");
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.SignIns.Add(1, protocol);
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.LiveSessions.Add(0, protocol);
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.RelayBytes.Add(1, new KeyValuePair<string, object?>("gatehouse.direction", "test"));
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.PhaseDuration.Record(0.001, new KeyValuePair<string, object?>("gatehouse.phase", "test"));
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.PendingConnections.Add(0);
        Gatehouse.Gateway.Diagnostics.GatewayTelemetry.AdmissionRefusals.Add(1, new KeyValuePair<string, object?>("gatehouse.refusal", "test"));
        Gatehouse.Storage.StoreTelemetry.Duration.Record(0.001, new KeyValuePair<string, object?>("db.system", "test"));

        var text = await server.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative));

        PrometheusExposition.AssertWellFormed(text);
        string[] documented =
        [
            "# TYPE gatehouse_sign_ins_total counter",
            "# TYPE gatehouse_sessions_live gauge",
            "# TYPE gatehouse_relay_bytes_total counter",
            "# TYPE gatehouse_rdp_phase_duration_seconds histogram",
            "# TYPE gatehouse_rdp_connections_pending gauge",
            "# TYPE gatehouse_rdp_admission_refusals_total counter",
            "# TYPE gatehouse_db_duration_seconds histogram",
        ];
        Assert.All(documented, line => Assert.Contains(line + "\n", text, StringComparison.Ordinal));
        Assert.Contains("gatehouse_rdp_phase_duration_seconds_bucket{otel_scope_name=\"Gatehouse\",gatehouse_phase=\"test\",le=\"0.005\"}", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1", false, true)]
    [InlineData("::1", false, true)]
    [InlineData("::ffff:127.0.0.1", false, true)]
    [InlineData("192.0.2.10", false, false)]
    [InlineData("192.0.2.10", true, true)]
    [InlineData(null, false, false)]
    public void IsAllowed_LoopbackUnlessRemoteIsAllowed(string? address, bool allowRemote, bool allowed) =>
        Assert.Equal(allowed, Gatehouse.Metrics.MetricsEndpoint.IsAllowed(address is null ? null : System.Net.IPAddress.Parse(address), new Gatehouse.Metrics.MetricsOptions { AllowRemote = allowRemote }));

    [Fact]
    public async Task Metrics_Disabled_IsNotServed()
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Metrics:Enabled"] = "false" });
        var response = await server.Client.GetAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode);
    }
}
