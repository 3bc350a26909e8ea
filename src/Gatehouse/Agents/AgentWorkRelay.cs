using Gatehouse.Gateway;
using Gatehouse.Storage;
using Npgsql;

namespace Gatehouse.Agents;

/// <summary>
/// Brings work asked on other nodes to the agents that poll this one: claims it from the store
/// (<see cref="AgentBroker.ClaimFromStoreAsync"/>) when woken by a <c>NOTIFY</c> on <see cref="AgentBroker.WorkChannel"/>
/// (PostgreSQL, one dedicated connection that reconnects with a back-off) and at least every
/// <see cref="PollInterval"/> (the only way on SQLite, and the fallback on PostgreSQL) while an agent polls this node;
/// while none does, every <see cref="IdleRounds"/> intervals or as soon as one starts a poll here.
/// </summary>
internal sealed partial class AgentWorkRelay(StoreOptions store, AgentBroker broker, TimeProvider time, ILogger<AgentWorkRelay> logger) : BackgroundService
{
    /// <summary>How often the store is read for work when no notification came.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>How many <see cref="PollInterval"/>s a round lasts while no agent polls this node.</summary>
    public const int IdleRounds = 10;

    private readonly SemaphoreSlim _wake = new(0, 1);

    /// <summary>Rounds done (tests wait on it).</summary>
    public int Rounds { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var listening = store.Provider == StoreProvider.Postgres ? ListenLoopAsync(stoppingToken) : Task.CompletedTask;
        broker.PollStarted += Wake;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // The claim also deletes expired requests, so it runs every round; with no agent polling here a round
                // is ten intervals long (the claim has nothing to bring), and an agent's poll starting here ends it early.
                var agentsHere = broker.AgentsPollingHere().Count > 0;
                await broker.ClaimFromStoreAsync(stoppingToken).ConfigureAwait(false);
                Rounds++;
                var wait = (store.Provider == StoreProvider.Postgres ? PollInterval * 5 : PollInterval) * (agentsHere ? 1 : IdleRounds);
                using var interval = new CancellationTokenSource(wait, time);
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, interval.Token);
                try
                {
                    await _wake.WaitAsync(tick.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException)
            {
                LogFailed(logger, e.GetType().Name, e.Message);
                try
                {
                    await Task.Delay(PollInterval, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        broker.PollStarted -= Wake;
        try
        {
            await listening.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already woken.
        }
    }

    private async Task ListenLoopAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(store.ConnectionString) { Pooling = false, KeepAlive = 15, ApplicationName = "gatehouse agent work" };
                var connection = new NpgsqlConnection(builder.ConnectionString);
                await using (connection.ConfigureAwait(false))
                {
                    connection.Notification += (_, e) =>
                    {
                        if (e.Channel == AgentBroker.WorkChannel && e.Payload.Length <= 36 && Guid.TryParseExact(e.Payload, "D", out var agent) && broker.PollsHere(agent))
                        {
                            Wake();
                        }
                    };
                    await connection.OpenAsync(stoppingToken).ConfigureAwait(false);
                    var command = new NpgsqlCommand($"LISTEN {AgentBroker.WorkChannel}", connection);
                    await using (command.ConfigureAwait(false))
                    {
                        await command.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                    }

                    failures = 0;
                    Wake();
                    while (true)
                    {
                        await connection.WaitAsync(stoppingToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or IOException or InvalidOperationException)
            {
                var delay = SessionKillListener.RetryDelay(++failures);
                LogFailed(logger, e.GetType().Name, e.Message);
                try
                {
                    await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentWorkListenFailed, Level = LogLevel.Warning, Message = "Agent work from other nodes: {Kind}: {Error}; trying again")]
    private static partial void LogFailed(ILogger logger, string kind, string error);
}
