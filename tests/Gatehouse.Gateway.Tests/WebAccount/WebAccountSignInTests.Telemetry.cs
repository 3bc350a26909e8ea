using System.Diagnostics;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Tests.Diagnostics;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.Gateway.Tests.WebAccount;

/// <summary>Issue 20 item 1: the RDP connection's span, its phases and the session's instruments.</summary>
public sealed partial class WebAccountSignInTests
{
    private static readonly string[] AllowedPhases =
        ["gatehouse.rdp.negotiation", "gatehouse.rdp.tls", "gatehouse.rdp.proof", "gatehouse.rdp.authorization", "gatehouse.rdp.host_leg", "gatehouse.rdp.answer"];

    [Fact]
    public async Task Allowed_TheConnectionSpanHasEveryPhase_AndEndsAtTheRelayStart_WhileTheSessionIsCounted()
    {
        // Arrange
        using var telemetry = new TelemetryRecorder();
        await using var host = TlsBackend.Start();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) });

        // Act
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());
        var session = Assert.Single(gateway.Sessions.List());
        var connection = await telemetry.WaitForSpanAsync(a => a.OperationName == GatewayTelemetry.ConnectionSpanName && TelemetryRecorder.Tag(a, "gatehouse.correlation_id") == session.ConnectionId);

        // Assert: the span ended while the session is still relayed, with the relay's start and the sign-in's result.
        Assert.Equal(1, gateway.Sessions.Count);
        Assert.Equal(session.Id.ToString(), TelemetryRecorder.Tag(connection, "gatehouse.session_id"));
        Assert.Equal("success", TelemetryRecorder.Tag(connection, "gatehouse.result"));
        Assert.Equal("web_account", TelemetryRecorder.Tag(connection, "gatehouse.protocol"));
        Assert.Equal("True", TelemetryRecorder.Tag(connection, "gatehouse.proven"));
        Assert.Equal(ActivityStatusCode.Unset, connection.Status);
        Assert.Contains(connection.Events, e => e.Name == "gatehouse.relay.start");
        var phases = telemetry.Spans.Where(a => a.TraceId == connection.TraceId && a.ParentSpanId == connection.SpanId).OrderBy(a => a.StartTimeUtc).Select(a => a.OperationName);
        Assert.Equal(AllowedPhases, phases);
        Assert.NotEmpty(telemetry.Of("gatehouse.rdp.phase.duration", ("gatehouse.phase", "host_leg")));
        Assert.Contains(1.0, telemetry.Of("gatehouse.sessions.live", ("gatehouse.protocol", "web_account")));
        Assert.Contains(1.0, telemetry.Of("gatehouse.sign_ins", ("gatehouse.protocol", "web_account"), ("gatehouse.result", "success")));
        Assert.Contains(1.0, telemetry.Of("gatehouse.rdp.connections.pending"));
        Assert.Contains(-1.0, telemetry.Of("gatehouse.rdp.connections.pending"));

        // The session ends: the live count goes down again.
        Assert.True(gateway.Sessions.Kill(session.Id, "killed: by the test"));
        await WaitUntilAsync(() => gateway.Sessions.Count == 0);
        Assert.Contains(-1.0, telemetry.Of("gatehouse.sessions.live", ("gatehouse.protocol", "web_account")));
    }

    [Fact]
    public async Task Refused_TheConnectionSpanSaysWhy_AndHasNoHostLeg()
    {
        using var telemetry = new TelemetryRecorder();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied));
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.AccessDenied, await client.ReadResultAsync());
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));

        var connection = await telemetry.WaitForSpanAsync(a => a.OperationName == GatewayTelemetry.ConnectionSpanName && TelemetryRecorder.Tag(a, "gatehouse.correlation_id") == entry.ConnectionId);

        Assert.Equal("failure", TelemetryRecorder.Tag(connection, "gatehouse.result"));
        Assert.Equal(GatewayTelemetry.ReasonCode(entry.Reason), TelemetryRecorder.Tag(connection, "gatehouse.reason"));
        Assert.Equal(ActivityStatusCode.Error, connection.Status);
        Assert.DoesNotContain(connection.Events, e => e.Name == "gatehouse.relay.start");
        Assert.DoesNotContain(telemetry.Spans, a => a.ParentSpanId == connection.SpanId && a.OperationName == "gatehouse.rdp.host_leg");
    }

    [Fact]
    public void RelayedBytes_AreCountedByDirection()
    {
        using var telemetry = new TelemetryRecorder();
        var counters = new RelayCounters();

        counters.Add(0, 12345);
        counters.Add(1, 54321);

        Assert.Contains(12345.0, telemetry.Of("gatehouse.relay.bytes", ("gatehouse.direction", "client_to_host")));
        Assert.Contains(54321.0, telemetry.Of("gatehouse.relay.bytes", ("gatehouse.direction", "host_to_client")));
    }

    [Theory]
    [InlineData("credssp_refused: the password is wrong", "credssp_refused")]
    [InlineData("no_role_assignment", "no_role_assignment")]
    [InlineData("alice@contoso.test: something", "other")]
    [InlineData("Wrong password for alice", "other")]
    [InlineData("", "other")]
    [InlineData(null, "other")]
    public void ReasonCode_IsASnakeCaseWordOrOther(string? reason, string expected) => Assert.Equal(expected, GatewayTelemetry.ReasonCode(reason));
}
