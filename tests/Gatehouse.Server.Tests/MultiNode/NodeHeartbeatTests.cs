using Gatehouse.Gateway;
using Gatehouse.Gateway.Tests;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16, dead nodes: each node writes a heartbeat; when one stops, another closes its open session records with
/// <c>node_lost</c>, exactly once however many nodes notice. Several heartbeat services over one SQLite store, on a
/// clock the test moves.
/// </summary>
public sealed class NodeHeartbeatTests
{
    private static readonly ClusterOptions Cluster = new() { HeartbeatInterval = TimeSpan.FromSeconds(10), NodeLostAfter = TimeSpan.FromSeconds(60) };

    /// <summary>The host's own heartbeat service is kept out of the way: its grace period is longer than any test.</summary>
    private static readonly Dictionary<string, string?> QuietHost = new() { ["Gatehouse:Cluster:NodeLostAfter"] = "1.00:00:00" };

    [Fact]
    public async Task SilentNode_AfterNodeLostAfter_ItsOpenRecordsClosedExactlyOnce()
    {
        // Arrange: three nodes beat at T0; node A holds two open sessions and one that ended, node B one.
        await using var server = await TestServer.StartAsync(overrides: QuietHost);
        var scopes = server.App.Services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime(new DateTimeOffset(2026, 12, 7, 1, 0, 0, TimeSpan.Zero));
        var a = Node(scopes, "node-a", time);
        var b = Node(scopes, "node-b", time);
        var c = Node(scopes, "node-c", time);
        var a1 = await StartSessionAsync(scopes, "node-a", time);
        var a2 = await StartSessionAsync(scopes, "node-a", time);
        var a3 = await StartSessionAsync(scopes, "node-a", time);
        await EndSessionAsync(scopes, a3, "client_closed");
        var b1 = await StartSessionAsync(scopes, "node-b", time);
        var lastSeenA = time.GetUtcNow();
        Assert.Empty(await a.BeatAsync(CancellationToken.None));
        Assert.Empty(await b.BeatAsync(CancellationToken.None));
        Assert.Empty(await c.BeatAsync(CancellationToken.None));

        // Act 1: A falls silent; at 50 s (within the grace period) B and C beat and leave A's records alone.
        time.Advance(TimeSpan.FromSeconds(50));
        Assert.Empty(await b.BeatAsync(CancellationToken.None));
        Assert.Empty(await c.BeatAsync(CancellationToken.None));
        Assert.Null((await RecordAsync(scopes, a1)).EndedAt);

        // Act 2: at 61 s B and C notice at the same moment.
        time.Advance(TimeSpan.FromSeconds(11));
        var noticed = await Task.WhenAll(Task.Run(() => b.BeatAsync(CancellationToken.None)), Task.Run(() => c.BeatAsync(CancellationToken.None)));

        // Assert: A's two open records closed once between them, with the reason and the time of A's last heartbeat.
        var closed = noticed.SelectMany(n => n).ToList();
        var only = Assert.Single(closed);
        Assert.Equal("node-a", only.Node);
        Assert.Equal(2, only.SessionsEnded);
        Assert.Equal(lastSeenA, only.LastSeenAt);
        var reason = "node_lost: node node-a stopped sending heartbeats at 2026-12-07T01:00:00Z";
        foreach (var id in new[] { a1, a2 })
        {
            var record = await RecordAsync(scopes, id);
            Assert.Equal(reason, record.EndReason);
            Assert.Equal(time.GetUtcNow(), record.EndedAt);
        }

        Assert.Equal("client_closed", (await RecordAsync(scopes, a3)).EndReason);
        Assert.Null((await RecordAsync(scopes, b1)).EndedAt);

        // Nothing more to close at the next round.
        time.Advance(Cluster.HeartbeatInterval);
        Assert.Empty(await b.BeatAsync(CancellationToken.None));
        Assert.Empty(await c.BeatAsync(CancellationToken.None));
    }

    [Fact]
    public async Task NodeThatBeatsAgain_IsNotLost()
    {
        // Arrange: node A beats, opens a session, and is silent for 59 s.
        await using var server = await TestServer.StartAsync(overrides: QuietHost);
        var scopes = server.App.Services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime(new DateTimeOffset(2026, 12, 7, 1, 0, 0, TimeSpan.Zero));
        var a = Node(scopes, "node-a", time);
        var b = Node(scopes, "node-b", time);
        var a1 = await StartSessionAsync(scopes, "node-a", time);
        await a.BeatAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(59));

        // Act: A beats again just in time; B looks 30 s later (89 s after A's first heartbeat).
        await a.BeatAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromSeconds(30));
        var noticed = await b.BeatAsync(CancellationToken.None);

        // Assert
        Assert.Empty(noticed);
        Assert.Null((await RecordAsync(scopes, a1)).EndedAt);
    }

    [Fact]
    public async Task HostedService_BeatsEveryIntervalOnTheInjectedClock()
    {
        // Arrange: node A's service running on a clock the test moves.
        await using var server = await TestServer.StartAsync(overrides: QuietHost);
        var scopes = server.App.Services.GetRequiredService<IServiceScopeFactory>();
        var start = new DateTimeOffset(2026, 12, 7, 1, 0, 0, TimeSpan.Zero);
        var time = new ManualTime(start);
        using var a = Node(scopes, "node-a", time);

        // Act: started, then one interval passes once its timer is armed.
        await a.StartAsync(CancellationToken.None);
        try
        {
            await Until.TrueAsync(() => LastSeen(scopes, "node-a") == start, "node A's first heartbeat");
            await time.AdvanceWhenArmedAsync(Cluster.HeartbeatInterval);

            // Assert: the second heartbeat carries the clock's time.
            await Until.TrueAsync(() => LastSeen(scopes, "node-a") == start + Cluster.HeartbeatInterval, "node A's second heartbeat");
        }
        finally
        {
            await a.StopAsync(CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("00:00:00.500", "00:01:00", "HeartbeatInterval")]
    [InlineData("00:00:10", "00:00:20", "NodeLostAfter")]
    public void ClusterOptions_OutOfRange_NamesTheSetting(string interval, string lostAfter, string setting)
    {
        var section = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gatehouse:Cluster:HeartbeatInterval"] = interval,
            ["Gatehouse:Cluster:NodeLostAfter"] = lostAfter,
        }).Build().GetSection("Gatehouse:Cluster");

        var error = Assert.Throws<Gatehouse.Hosting.StartupException>(() => ClusterOptions.From(section));
        Assert.Contains($"Gatehouse:Cluster:{setting}", error.Message, StringComparison.Ordinal);
    }

    private static NodeHeartbeatService Node(IServiceScopeFactory scopes, string name, TimeProvider time) =>
        new(scopes, new GatewayNode(name), Cluster, time, NullLogger<NodeHeartbeatService>.Instance);

    private static async Task<Guid> StartSessionAsync(IServiceScopeFactory scopes, string node, TimeProvider time)
    {
        await using var scope = scopes.CreateAsyncScope();
        var id = Guid.NewGuid();
        await scope.ServiceProvider.GetRequiredService<SessionStore>().StartAsync(new SessionRecord
        {
            Id = id,
            TenantId = Guid.NewGuid(),
            UserId = Guid.NewGuid(),
            UserPrincipalName = "user@contoso.test",
            HostId = Guid.NewGuid(),
            HostName = "vm1",
            Protocol = "nla",
            Node = node,
            StartedAt = time.GetUtcNow(),
        });
        return id;
    }

    private static async Task EndSessionAsync(IServiceScopeFactory scopes, Guid id, string reason)
    {
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<SessionStore>().EndAsync(id, reason, 0, 0);
    }

    private static async Task<SessionRecord> RecordAsync(IServiceScopeFactory scopes, Guid id)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Sessions.AsNoTracking().SingleAsync(s => s.Id == id);
    }

    private static DateTimeOffset? LastSeen(IServiceScopeFactory scopes, string node)
    {
        using var scope = scopes.CreateScope();
        return scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().NodeHeartbeats.AsNoTracking()
            .Where(h => h.Node == node).Select(h => (DateTimeOffset?)h.LastSeenAt).SingleOrDefault();
    }
}
