using System.Net;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16, drain: while a node drains, readiness says so (503, so a load balancer sends new users elsewhere) and
/// liveness stays 200 (the process is healthy; restarting it would cut the sessions the drain keeps).
/// </summary>
public sealed class DrainReadinessTests
{
    [Fact]
    public async Task Readiness_WhileTheNodeDrains_Is503WithTheDrainLine_AndLivenessStays200()
    {
        // Arrange: a started node, ready.
        await using var server = await TestServer.StartAsync();
        using (var before = await server.Client.GetAsync(new Uri(Readiness.ReadyPath, UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        // Act: the drain begins (what SIGTERM starts; the host's own stopping signal is not raised here, so only the
        // drain's state can turn readiness off). The timeout is far beyond the test: nothing is ended meanwhile.
        server.App.Services.GetRequiredService<SessionDrain>().Begin(TimeSpan.FromHours(1));

        // Assert: not ready, and the body says why; liveness unchanged.
        using var ready = await server.Client.GetAsync(new Uri(Readiness.ReadyPath, UriKind.Relative));
        var body = await ready.Content.ReadAsStringAsync();
        Assert.True(ready.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)ready.StatusCode}: {body}");
        Assert.StartsWith("not ready\n", body, StringComparison.Ordinal);
        Assert.Contains($"{SessionDrainHealthCheck.Name}: the node is draining (0 live session(s) kept until the drain timeout)", body, StringComparison.Ordinal);
        Assert.NotNull(ready.Headers.RetryAfter?.Delta);
        using var live = await server.Client.GetAsync(new Uri(Readiness.LivePath, UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }
}
