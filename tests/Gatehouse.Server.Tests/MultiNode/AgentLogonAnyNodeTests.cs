using System.Net;
using Gatehouse.Access;
using Gatehouse.Agents;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests;
using Gatehouse.Server.Tests.Agents;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16 with issue 17: a logon asked on a node the agent does not poll reaches the agent through the store — claimed
/// once by the node the agent polls, the answer protected at rest, read once by the asking node and deleted, and gone
/// when the asking node stops waiting.
/// </summary>
public sealed class AgentLogonAnyNodeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoNodesOnOneSqliteFile_ALogonAskedOnB_IsAnsweredByTheAgentPollingA()
    {
        // Two nodes on one data directory (one SQLite file, one key ring): the store is polled.
        var data = TempDirectory.Create();
        await using var a = await TestServer.StartAsync(data);
        await using var b = await TestServer.StartAsync(data);
        await AssertLogonOnBAnsweredThroughAAsync(a, b, output);
    }

    [PostgresFact]
    public async Task TwoNodesOnOnePostgres_ALogonAskedOnB_IsAnsweredByTheAgentPollingA()
    {
        // Two nodes on one PostgreSQL database with one key-encryption key: NOTIFY wakes node A.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var shared = new Dictionary<string, string?>
        {
            ["Gatehouse:Store"] = database.ConnectionString(),
            ["Gatehouse:KeyRing:Key"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        };
        await using var a = await TestServer.StartAsync(overrides: shared);
        await using var b = await TestServer.StartAsync(overrides: shared);
        await AssertLogonOnBAnsweredThroughAAsync(a, b, output);
    }

    /// <summary>The agent polls node A; a sign-in on node B gets alice's account from it, and B's rotation request reaches it.</summary>
    private static async Task AssertLogonOnBAnsweredThroughAAsync(TestServer a, TestServer b, ITestOutputHelper output)
    {
        var (tenantId, hostId, userId) = await AgentTestKit.SeedAsync(a);
        var (state, config) = await AgentTestKit.JoinAsync(a, tenantId);
        var accounts = new AgentTestKit.FakeAccounts();
        using var key = state.LoadKey();
        using var http = new HttpClient(AgentClient.PinnedHandler(config.ServerCertificateSha256));
        using var agent = new HostAgentRunner(state, config, key, new AgentClient(http, TimeProvider.System), accounts, new AgentTestKit.FakeProbe(), TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = agent.RunAsync(stop.Token);
        await Until.TrueAsync(() => a.App.Services.GetRequiredService<AgentBroker>().IsPolling(config.AgentId), "the agent polls node A");
        Assert.False(b.App.Services.GetRequiredService<AgentBroker>().PollsHere(config.AgentId));

        // Act: the sign-in lands on node B.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var outcome = await b.App.Services.GetRequiredService<ISignInAuthorizer>().AuthorizeAsync(
            new GatewayConnection("c1", IPAddress.Loopback, DateTimeOffset.UtcNow),
            new SignInSubject { TenantId = tenantId, UserId = userId, HostId = hostId, Methods = ["pwd"], AuthenticatedAt = DateTimeOffset.UtcNow },
            CancellationToken.None);

        output.WriteLine($"logon asked on node B answered through the store in {clock.ElapsedMilliseconds} ms");

        // Assert: alice's own account with the password the agent set on the host, and nothing left in the store.
        Assert.True(outcome.Allowed, outcome.Refusal?.Reason);
        Assert.Equal("alice", outcome.Grant!.Credentials.UserName);
        Assert.True(accounts.Works("alice", outcome.Grant.Credentials.Password));
        Assert.Equal(0, await CountAsync(b));

        // The host accepted the logon on node B: the agent on node A rotates the password through the store too.
        var injected = outcome.Grant.Credentials.Password;
        outcome.Grant.HostLogonAccepted!.Invoke();
        await Until.TrueAsync(() => !accounts.Works("alice", injected), "the rotation asked on node B reached the agent on node A");

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task StoreRoute_OneClaimWins_TheAnswerIsProtectedAtRest_ReadOnceAndDeleted()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, _) = await AgentTestKit.SeedAsync(server);
        var (_, config) = await AgentTestKit.JoinAsync(server, tenantId);
        var services = server.App.Services;
        var protection = services.GetRequiredService<IDataProtectionProvider>();
        var scopes = services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var asking = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-b");
        var polled = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-a");
        var other = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-c");
        polled.Register(config.AgentId, tenantId);
        other.Register(config.AgentId, tenantId);

        // A logon asked on node B, where the agent does not poll: it goes to the store.
        var waiting = asking.RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        await UntilAsync(async () => await CountAsync(server) == 1, "the request is in the store");

        // Exactly one node claims it.
        var claims = await Task.WhenAll(polled.ClaimFromStoreAsync(CancellationToken.None), other.ClaimFromStoreAsync(CancellationToken.None));
        Assert.Equal(1, claims.Sum());
        var (winner, loser) = claims[0] == 1 ? (polled, other) : (other, polled);
        var work = Assert.Single(await winner.PollAsync(config.AgentId, AgentBroker.PollWait, CancellationToken.None));
        Assert.Equal(("logon", "alice@contoso.test", "user"), (work.Kind, work.UserPrincipalName, work.Level));
        Assert.False(await loser.CompleteAsync(config.AgentId, new AgentWorkResult(work.Id, true, "mallory", "Loser-Password-1", null), CancellationToken.None));

        // The agent answers on the claiming node: stored protected, never in clear.
        const string Password = "One-Logon-Password-7";
        Assert.True(await winner.CompleteAsync(config.AgentId, new AgentWorkResult(work.Id, true, "alice", Password, null), CancellationToken.None));
        Assert.False(await winner.CompleteAsync(config.AgentId, new AgentWorkResult(work.Id, true, "alice", "Again-Password-2", null), CancellationToken.None));
        var row = await RowAsync(server, work.Id);
        Assert.Equal(winner.Node, row.ClaimedBy);
        Assert.NotNull(row.AnswerProtected);
        Assert.DoesNotContain(Password, row.AnswerProtected, StringComparison.Ordinal);
        Assert.DoesNotContain("alice", row.AnswerProtected, StringComparison.Ordinal);
        Assert.True(row.ExpiresAt <= row.CreatedAt + TimeSpan.FromSeconds(15));

        // Node B reads it once and deletes it (its read waits one interval, armed only after the request was stored).
        await time.AdvanceWhenArmedAsync(AgentBroker.AnswerReadInterval);
        var outcome = await waiting;
        Assert.Equal(("alice", Password), (outcome.Account!.UserName, outcome.Account.Password));
        Assert.Equal(0, await CountAsync(server));
    }

    [Fact]
    public async Task StoreRoute_TheAskingNodeGivesUp_TheRowIsGone_AndALateAnswerIsRefused()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, _) = await AgentTestKit.SeedAsync(server);
        var (_, config) = await AgentTestKit.JoinAsync(server, tenantId);
        var services = server.App.Services;
        var protection = services.GetRequiredService<IDataProtectionProvider>();
        var scopes = services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var asking = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-b");
        var polled = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-a");
        polled.Register(config.AgentId, tenantId);

        var waiting = asking.RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        await UntilAsync(async () => await CountAsync(server) == 1, "the request is in the store");
        Assert.Equal(1, await polled.ClaimFromStoreAsync(CancellationToken.None));
        var work = Assert.Single(await polled.PollAsync(config.AgentId, AgentBroker.PollWait, CancellationToken.None));

        // Node B arms its 15 s timeout only after the request is in the store: the clock moves once it is armed.
        await time.AdvanceWhenArmedAsync(TimeSpan.FromSeconds(15));
        var late = await waiting;
        Assert.StartsWith("agent_unavailable: the agent on vm1 did not answer within 15 s", late.Reason, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(server));

        // The agent's late answer finds nobody: it is not stored (the agent rotates the password at once).
        Assert.False(await polled.CompleteAsync(config.AgentId, new AgentWorkResult(work.Id, true, "alice", "Late-Password-3", null), CancellationToken.None));
        Assert.Equal(0, await CountAsync(server));
    }

    [Fact]
    public async Task StoreRoute_AClaimedLogonTheAskingNodeGaveUpOn_IsNotHandedToTheAgent()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, _) = await AgentTestKit.SeedAsync(server);
        var (_, config) = await AgentTestKit.JoinAsync(server, tenantId);
        var services = server.App.Services;
        var protection = services.GetRequiredService<IDataProtectionProvider>();
        var scopes = services.GetRequiredService<IServiceScopeFactory>();
        var time = new ManualTime();
        var asking = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-b");
        var polled = new AgentBroker(scopes, time, NullLogger<AgentBroker>.Instance, protection, "node-a");
        polled.Register(config.AgentId, tenantId);

        // Node A claims the logon, but the agent does not poll it again before node B gives up.
        var waiting = asking.RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        await UntilAsync(async () => await CountAsync(server) == 1, "the request is in the store");
        Assert.Equal(1, await polled.ClaimFromStoreAsync(CancellationToken.None));
        await time.AdvanceWhenArmedAsync(TimeSpan.FromSeconds(15));
        Assert.StartsWith("agent_unavailable:", (await waiting).Reason, StringComparison.Ordinal);

        // The agent's next poll on node A does not get it: no password is set for a logon nobody waits for.
        Assert.Empty(await polled.PollAsync(config.AgentId, AgentBroker.PollWait, CancellationToken.None));
    }

    private static async Task<int> CountAsync(TestServer server)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().AgentWorkRequests.CountAsync();
    }

    private static async Task<AgentWorkRequest> RowAsync(TestServer server, Guid id)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().AgentWorkRequests.AsNoTracking().SingleAsync(r => r.Id == id);
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, $"not within 30 s: {what}");
            await Task.Delay(10);
        }
    }
}
