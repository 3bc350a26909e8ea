using System.Net;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.Tests;
using Gatehouse.Identity;
using Gatehouse.Protocol.X224;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16, kills across nodes: on PostgreSQL a kill is a <c>NOTIFY</c> in the kill's transaction, and the node that
/// holds the session ends it at once through its listening connection, not at its next poll. Node B is a whole host on
/// the test's PostgreSQL; node A is a session registry with its own poll and listener over the same store, on a clock
/// that never moves, so its poll never runs.
/// </summary>
public sealed class SessionKillNotifyTests
{
    private static readonly string SharedKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    [PostgresFact]
    public async Task Kill_OnNodeB_EndsNodeASessionThroughNotify_AlsoAfterItsListeningConnectionWasDropped()
    {
        // Arrange: node B (a host) and node A's poll and listener over one PostgreSQL database.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var b = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Store"] = database.ConnectionString(),
            ["Gatehouse:KeyRing:Key"] = SharedKey,
        });
        var scopes = b.App.Services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var registry = new SessionRegistry();
        var nodeA = new GatewayNode("node-a");
        using var poll = new SessionKillWatcher(scopes, registry, nodeA, time, NullLogger<SessionKillWatcher>.Instance);
        using var listener = new SessionKillListener(
            b.App.Services.GetRequiredService<StoreOptions>(), scopes, registry, nodeA, time, NullLogger<SessionKillListener>.Instance);
        await poll.StartAsync(CancellationToken.None);
        await listener.StartAsync(CancellationToken.None);
        try
        {
            await Until.TrueAsync(() => listener.TimesListening == 1, "node A listening");
            Assert.Equal(0, time.Armed(SessionKillWatcher.Interval));
            var first = await HoldAsync(scopes, registry, nodeA, time);
            var other = await HoldAsync(scopes, registry, nodeA, time);
            await Until.TrueAsync(() => time.Armed(SessionKillWatcher.Interval) == 1, "node A's poll armed once it holds sessions");

            // Act 1: node B kills the first session.
            Assert.True(await KillAsync(scopes, first.Id));

            // Assert 1: node A ended it, with the clock never moved (the poll's timer is armed and has never fired).
            await Until.TrueAsync(() => first.Ending.IsCancellationRequested, "the first session ended on node A");
            Assert.Equal(SessionKillWatcher.KilledReason, first.EndReason);
            Assert.False(other.Ending.IsCancellationRequested);

            // The listener counts a kill after it ended the session (on its own thread): wait for the count, not assume it.
            await Until.TrueAsync(() => listener.Killed >= 1, "node A's listener counted the kill");
            Assert.Equal(1, listener.Killed);
            Assert.Equal(1, time.Armed(SessionKillWatcher.Interval));

            // Act 2: node A's listening connection is dropped by the server; node A listens again by itself.
            Assert.Equal(1, await TerminateListenerAsync(database, nodeA.Name));
            await Until.TrueAsync(() => listener.TimesListening == 2, "node A listening again");
            await Until.TrueAsync(() => ListenerBackends(database, nodeA.Name) == 1, "node A's new listening connection");
            Assert.True(await KillAsync(scopes, other.Id));

            // Assert 2: the kill after the reconnection ended the other session, still without the poll.
            await Until.TrueAsync(() => other.Ending.IsCancellationRequested, "the other session ended on node A");
            Assert.Equal(SessionKillWatcher.KilledReason, other.EndReason);
            await Until.TrueAsync(() => listener.Killed >= 2, "node A's listener counted the second kill");
            Assert.Equal(2, listener.Killed);
            Assert.Equal(1, time.Armed(SessionKillWatcher.Interval));
        }
        finally
        {
            await listener.StopAsync(CancellationToken.None);
            await poll.StopAsync(CancellationToken.None);
        }
    }

    [PostgresFact]
    public async Task Kill_ForALiveSession_NotifiesOnlyWhenCommitted_AndNotForAnUnknownId()
    {
        // Arrange: a session record on node A, and a plain connection listening on the channel.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var b = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Store"] = database.ConnectionString(),
            ["Gatehouse:KeyRing:Key"] = SharedKey,
        });
        var scopes = b.App.Services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var session = await HoldAsync(scopes, new SessionRegistry(), new GatewayNode("node-a"), time);
        await using var watch = new NpgsqlConnection(database.ConnectionString());
        await watch.OpenAsync();
        var payloads = new List<string>();
        watch.Notification += (_, e) => payloads.Add(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN {SessionStore.KillChannel}", watch))
        {
            await listen.ExecuteNonQueryAsync();
        }

        // Act: an unknown id, then the live one.
        Assert.False(await KillAsync(scopes, Guid.NewGuid()));
        Assert.True(await KillAsync(scopes, session.Id));
        await using (var roundTrip = new NpgsqlCommand("SELECT 1", watch))
        {
            await roundTrip.ExecuteScalarAsync();
        }

        // Assert: one notification, for the live session (delivered to this connection before its next result).
        Assert.Equal([session.Id.ToString("D")], payloads);
    }

    internal static async Task<LiveSession> HoldAsync(IServiceScopeFactory scopes, SessionRegistry registry, GatewayNode node, TimeProvider time)
    {
        var grant = new SessionGrant
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
        var session = registry.Add("c-" + Guid.NewGuid().ToString("N"), IPAddress.Loopback, "nla", grant, time.GetUtcNow());
        await using var scope = scopes.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<SessionStore>().StartAsync(new SessionRecord
        {
            Id = session.Id,
            TenantId = grant.TenantId,
            UserId = grant.UserId,
            UserPrincipalName = grant.UserPrincipalName,
            HostId = grant.HostId,
            HostName = grant.HostName,
            Protocol = "nla",
            Node = node.Name,
            StartedAt = session.StartedAt,
        });
        return session;
    }

    internal static async Task<bool> KillAsync(IServiceScopeFactory scopes, Guid id)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<SessionStore>().RequestKillAsync(id);
    }

    private static async Task<long> TerminateListenerAsync(TestDatabase database, string node)
    {
        await using var connection = new NpgsqlConnection(database.ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = @name) AS t",
            connection);
        command.Parameters.AddWithValue("name", SessionKillListener.ApplicationName(node));
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static long ListenerBackends(TestDatabase database, string node) =>
        database.CountAsync($"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = '{SessionKillListener.ApplicationName(node)}'")
            .GetAwaiter().GetResult();
}
