using Gatehouse.Gateway;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.Tests;
using Gatehouse.Server.Tests.MultiNode;
using Gatehouse.Server.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// Idle CPU (docs/benchmarks.md, "Idle CPU of <c>gatehouse serve</c>"): the kill poll's timer is armed only while the
/// node holds sessions, and a kill still reaches a session through the poll (SQLite: the only way).
/// </summary>
public sealed class SessionKillWatcherIdleTests
{
    [Fact]
    public async Task Poll_IsArmedOnlyWhileTheNodeHoldsSessions_AndStillEndsAKilledSession()
    {
        // Arrange: a node's registry and poll over the host's SQLite store, on a clock the test moves.
        await using var server = await TestServer.StartAsync();
        var scopes = server.App.Services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var registry = new SessionRegistry();
        var node = new GatewayNode("node-a");
        using var poll = new SessionKillWatcher(scopes, registry, node, time, NullLogger<SessionKillWatcher>.Instance);

        // A record an earlier run of the node left open: the watcher's start-up ends it, which tells the test it is past
        // that step (a session held before it would be taken for an orphan too).
        var earlier = await SessionKillNotifyTests.HoldAsync(scopes, registry, node, time);
        registry.Remove(earlier);
        await poll.StartAsync(CancellationToken.None);
        try
        {
            await Until.TrueAsync(() => !IsLive(scopes, earlier.Id), "the earlier run's record ended at start-up");
            Assert.Equal(0, time.Armed(SessionKillWatcher.Interval));

            // A session opens: the poll is armed.
            var first = await SessionKillNotifyTests.HoldAsync(scopes, registry, node, time);
            await Until.TrueAsync(() => time.Armed(SessionKillWatcher.Interval) == 1, "the poll armed once the node holds a session");

            // Act 1: an administrator kills it; the next poll ends it.
            Assert.True(await SessionKillNotifyTests.KillAsync(scopes, first.Id));
            time.Advance(SessionKillWatcher.Interval);
            await Until.TrueAsync(() => first.Ending.IsCancellationRequested, "the killed session ended by the poll");
            Assert.Equal(SessionKillWatcher.KilledReason, first.EndReason);

            // Act 2: the session is gone (as the driver removes it); at the next tick the poll stops its timer.
            registry.Remove(first);
            time.Advance(SessionKillWatcher.Interval);
            await Until.TrueAsync(() => time.Armed(SessionKillWatcher.Interval) == 0, "no timer while the node holds no session");

            // Act 3: another session opens: armed again.
            var other = await SessionKillNotifyTests.HoldAsync(scopes, registry, node, time);
            await Until.TrueAsync(() => time.Armed(SessionKillWatcher.Interval) == 1, "the poll armed again");
            Assert.False(other.Ending.IsCancellationRequested);
        }
        finally
        {
            await poll.StopAsync(CancellationToken.None);
        }
    }

    private static bool IsLive(IServiceScopeFactory scopes, Guid id)
    {
        using var scope = scopes.CreateScope();
        return scope.ServiceProvider.GetRequiredService<Gatehouse.Identity.SessionStore>().ListLiveAsync().GetAwaiter().GetResult().Exists(r => r.Id == id);
    }
}
