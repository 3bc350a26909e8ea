using System.Net;
using Gatehouse.Agents;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Protocol.X224;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// Issue 17: a live session that re-evaluation ends because the user lost the role or was disabled asks the host's
/// agent to lock the user's account (a lost role: only that host's agent; a disabled user: every agent of the tenant).
/// </summary>
public sealed class ReevaluationLockTests
{
    [Fact]
    public async Task RoleRemoved_LiveSessionEnds_AndOnlyTheHostsAgentLocksTheAccount()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, userId) = await AgentTestKit.SeedAsync(server);
        var (_, vm1) = await AgentTestKit.JoinAsync(server, tenantId);
        var (_, vm2) = await SecondAgentAsync(server, tenantId);
        var broker = server.App.Services.GetRequiredService<AgentBroker>();
        broker.Register(vm1.AgentId, tenantId);
        broker.Register(vm2.AgentId, tenantId);
        var session = AddSession(server, tenantId, hostId, userId);

        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            await db.RoleAssignments.Where(r => r.PrincipalId == userId).ExecuteDeleteAsync();
        }

        var ended = await server.App.Services.GetRequiredService<LiveSessionReevaluator>().ReevaluateAllAsync(CancellationToken.None);

        Assert.Equal(1, ended);
        Assert.StartsWith("access_revoked:", session.EndReason, StringComparison.Ordinal);
        var work = Assert.Single(await broker.PollAsync(vm1.AgentId, AgentBroker.PollWait, CancellationToken.None));
        Assert.Equal(("disable", "alice@contoso.test"), (work.Kind, work.UserPrincipalName));
        Assert.Equal(0, broker.Waiting(vm2.AgentId));
    }

    [Fact]
    public async Task UserDisabled_LiveSessionEnds_AndEveryAgentOfTheTenantLocksTheAccount()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, userId) = await AgentTestKit.SeedAsync(server);
        var (_, vm1) = await AgentTestKit.JoinAsync(server, tenantId);
        var (_, vm2) = await SecondAgentAsync(server, tenantId);
        var broker = server.App.Services.GetRequiredService<AgentBroker>();
        broker.Register(vm1.AgentId, tenantId);
        broker.Register(vm2.AgentId, tenantId);
        var session = AddSession(server, tenantId, hostId, userId);

        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            await db.Users.Where(u => u.Id == userId).ExecuteUpdateAsync(u => u.SetProperty(x => x.Enabled, false));
        }

        var ended = await server.App.Services.GetRequiredService<LiveSessionReevaluator>().ReevaluateAllAsync(CancellationToken.None);

        Assert.Equal(1, ended);
        Assert.NotNull(session.EndReason);
        Assert.Equal("disable", Assert.Single(await broker.PollAsync(vm1.AgentId, AgentBroker.PollWait, CancellationToken.None)).Kind);
        Assert.Equal("disable", Assert.Single(await broker.PollAsync(vm2.AgentId, AgentBroker.PollWait, CancellationToken.None)).Kind);
    }

    private static async Task<(AgentState State, AgentConfig Config)> SecondAgentAsync(TestServer server, Guid tenantId)
    {
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Gatehouse.Identity.DirectoryService>().CreateHostAsync(tenantId, "vm2", "127.0.0.2", 3389, BackendSecurity.Tls);
        }

        return await AgentTestKit.JoinAsync(server, tenantId, "vm2");
    }

    private static LiveSession AddSession(TestServer server, Guid tenantId, Guid hostId, Guid userId) =>
        server.App.Services.GetRequiredService<SessionRegistry>().Add("c1", IPAddress.Loopback, "tls", new SessionGrant
        {
            TenantId = tenantId,
            UserId = userId,
            UserPrincipalName = "alice@contoso.test",
            HostId = hostId,
            HostName = "vm1",
            RoleName = "Virtual Machine User Login",
            Backend = new BackendTarget("127.0.0.1", 3389, SecurityProtocol.Ssl, "alice"),
            Credentials = new InjectedCredentials(string.Empty, "alice", "x"),
            Methods = ["pwd"],
            AuthenticatedAt = DateTimeOffset.UtcNow,
        }, DateTimeOffset.UtcNow);
}
