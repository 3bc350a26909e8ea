using System.Net;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Sessions;

/// <summary>Issue 16, drain on stop: live sessions are kept up to the drain timeout, then ended with <c>node_draining</c>.</summary>
public sealed class SessionDrainTests
{
    [Fact]
    public void Begin_KeepsSessionsUntilTheTimeout_ThenEndsThemWithNodeDraining()
    {
        // Arrange: two live sessions, one of which ends by itself during the drain.
        var time = new ManualTime();
        var registry = new SessionRegistry();
        var first = registry.Add("c1", IPAddress.Loopback, "tls", Grant(), time.GetUtcNow());
        var second = registry.Add("c2", IPAddress.Loopback, "nla", Grant(), time.GetUtcNow());
        using var drain = new SessionDrain(registry, time);

        // Act: the drain begins; 29 s pass.
        drain.Begin(TimeSpan.FromSeconds(30));
        drain.Begin(TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(29));

        // Assert: still live (a second Begin does not shorten the drain).
        Assert.True(drain.Draining);
        Assert.False(first.Ending.IsCancellationRequested);
        Assert.False(second.Ending.IsCancellationRequested);

        // The first session ends by itself; at 30 s the other is ended with node_draining.
        first.End("client_closed");
        registry.Remove(first);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(second.Ending.IsCancellationRequested);
        Assert.Equal(SessionDrain.Reason, second.EndReason);
        Assert.StartsWith("node_draining:", second.EndReason, StringComparison.Ordinal);
        Assert.Equal("client_closed", first.EndReason);
    }

    [Fact]
    public void Begin_ZeroTimeout_EndsAtOnce()
    {
        var time = new ManualTime();
        var registry = new SessionRegistry();
        var session = registry.Add("c1", IPAddress.Loopback, "tls", Grant(), time.GetUtcNow());
        using var drain = new SessionDrain(registry, time);

        drain.Begin(TimeSpan.Zero);
        time.Advance(TimeSpan.Zero);

        Assert.Equal(SessionDrain.Reason, session.EndReason);
    }

    private static SessionGrant Grant() => new()
    {
        TenantId = Guid.NewGuid(),
        UserId = Guid.NewGuid(),
        UserPrincipalName = "alice@contoso.test",
        HostId = Guid.NewGuid(),
        HostName = "vm1",
        RoleName = "Virtual Machine User Login",
        Backend = new BackendTarget("127.0.0.1", 3389, SecurityProtocol.Ssl, "vmuser"),
        Credentials = new InjectedCredentials(string.Empty, "vmuser", "host-secret"),
    };
}
