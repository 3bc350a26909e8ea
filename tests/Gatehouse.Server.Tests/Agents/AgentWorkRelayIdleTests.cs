using Gatehouse.Agents;
using Gatehouse.Gateway.Tests;
using Gatehouse.Server.Tests.Hosting;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// Idle CPU (docs/benchmarks.md, "Idle CPU of <c>gatehouse serve</c>"): with no agent polling the node, the relay of
/// agent work waits <see cref="AgentWorkRelay.IdleRounds"/> intervals between rounds, not one, and an agent's poll
/// starting on the node wakes it at once, after which it reads the store every interval again.
/// </summary>
public sealed class AgentWorkRelayIdleTests
{
    [Fact]
    public async Task NoAgentPollingHere_RoundsAreLong_AndAPollStartingHereWakesTheRelay()
    {
        // Arrange: a node's broker and relay on a clock the test moves (SQLite: the store is polled).
        await using var server = await TestServer.StartAsync();
        var (tenantId, _, _) = await AgentTestKit.SeedAsync(server);
        var (_, config) = await AgentTestKit.JoinAsync(server, tenantId);
        var services = server.App.Services;
        var time = new ManualTime();
        var broker = new AgentBroker(services.GetRequiredService<IServiceScopeFactory>(), time, NullLogger<AgentBroker>.Instance, services.GetRequiredService<IDataProtectionProvider>(), "node-a");
        var logs = new CapturedLogs();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var relay = new AgentWorkRelay(services.GetRequiredService<StoreOptions>(), broker, time, loggers.CreateLogger<AgentWorkRelay>());
        var idleRound = AgentWorkRelay.PollInterval * AgentWorkRelay.IdleRounds;
        await relay.StartAsync(CancellationToken.None);
        using var stopPoll = new CancellationTokenSource();
        try
        {
            // Assert: no agent here, so the first round's wait is the long one.
            await WaitAsync(() => relay.Rounds == 1 && time.Armed(idleRound) == 1, "the relay's first round done, its long wait armed");
            Assert.Equal(0, time.Armed(AgentWorkRelay.PollInterval));

            // Act: the agent's long poll starts on this node (the clock not moved), as the poll endpoint starts it.
            broker.Register(config.AgentId, tenantId);
            var poll = broker.PollAsync(config.AgentId, AgentBroker.PollWait, stopPoll.Token);

            // Assert: the relay woke for a second round, and now waits one interval.
            await WaitAsync(() => relay.Rounds == 2 && time.Armed(AgentWorkRelay.PollInterval) == 1, "the relay woken by the poll, its short wait armed");
            await stopPoll.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => poll);
        }
        finally
        {
            await relay.StopAsync(CancellationToken.None);
        }

        // Until, with the relay's state in the failure (a failed store read arms a one-interval retry instead).
        async Task WaitAsync(Func<bool> condition, string what)
        {
            try
            {
                await Until.TrueAsync(condition, what);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new InvalidOperationException($"{what}: rounds {relay.Rounds}, long waits armed {time.Armed(idleRound)}, short waits armed {time.Armed(AgentWorkRelay.PollInterval)}, agents here {broker.AgentsPollingHere().Count}; relay log: {string.Join(" | ", logs.Messages)}", e);
            }
        }
    }
}
