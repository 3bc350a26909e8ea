using Gatehouse.Agents;
using Gatehouse.Gateway.Tests;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>Which agents hear of a user: "lock this account" goes only to the agents of the user's tenant (or to the one named).</summary>
public sealed class AgentBrokerScopeTests
{
    [Fact]
    public async Task Disable_ReachesOnlyTheAgentsOfTheUsersTenant_OrTheOneAgentNamed()
    {
        var time = new ManualTime();
        var broker = new AgentBroker(null!, time, NullLogger<AgentBroker>.Instance);
        Guid tenantA = Guid.NewGuid(), tenantB = Guid.NewGuid();
        Guid agentA1 = Guid.NewGuid(), agentA2 = Guid.NewGuid(), agentB = Guid.NewGuid();
        broker.Register(agentA1, tenantA);
        broker.Register(agentA2, tenantA);
        broker.Register(agentB, tenantB);
        foreach (var agent in new[] { agentA1, agentA2, agentB })
        {
            await EmptyPollAsync(broker, time, agent);
        }

        broker.RequestDisable(tenantA, null, "alice@contoso.test");
        Assert.Equal("alice@contoso.test", Assert.Single(await broker.PollAsync(agentA1, AgentBroker.PollWait, CancellationToken.None)).UserPrincipalName);
        Assert.Equal("disable", Assert.Single(await broker.PollAsync(agentA2, AgentBroker.PollWait, CancellationToken.None)).Kind);
        await EmptyPollAsync(broker, time, agentB);

        // Named: only that agent, even within the tenant.
        broker.RequestDisable(tenantA, agentA2, "bob@contoso.test");
        Assert.Equal("bob@contoso.test", Assert.Single(await broker.PollAsync(agentA2, AgentBroker.PollWait, CancellationToken.None)).UserPrincipalName);
        await EmptyPollAsync(broker, time, agentA1);
    }

    /// <summary>A poll that finds no work answers empty when its wait runs out (on the manual clock).</summary>
    private static async Task EmptyPollAsync(AgentBroker broker, ManualTime time, Guid agent)
    {
        var poll = broker.PollAsync(agent, AgentBroker.PollWait, CancellationToken.None);
        await time.AdvanceWhenArmedAsync(AgentBroker.PollWait);
        Assert.Empty(await poll);
    }
}
