using Gatehouse.Identity;

namespace Gatehouse.Gateway;

/// <summary>The cluster settings, <c>Gatehouse:Cluster</c>: how often each node writes its heartbeat, and when a silent node is taken for dead.</summary>
internal sealed class ClusterOptions
{
    /// <summary>How often this node writes its heartbeat row and looks for dead nodes (<c>HeartbeatInterval</c>).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How old another node's heartbeat must be before its open session records are closed with <c>node_lost</c> (<c>NodeLostAfter</c>).</summary>
    public TimeSpan NodeLostAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Reads and checks <c>Gatehouse:Cluster</c>; throws a <see cref="Hosting.StartupException"/> that names the bad setting.</summary>
    public static ClusterOptions From(IConfigurationSection section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var options = new ClusterOptions();
        try
        {
            section.Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new Hosting.StartupException($"Invalid configuration in Gatehouse:Cluster: {e.Message}");
        }

        if (options.HeartbeatInterval < TimeSpan.FromSeconds(1) || options.HeartbeatInterval > TimeSpan.FromMinutes(10))
        {
            throw new Hosting.StartupException($"Gatehouse:Cluster:HeartbeatInterval {options.HeartbeatInterval} is out of range; use 00:00:01-00:10:00.");
        }

        if (options.NodeLostAfter < 3 * options.HeartbeatInterval)
        {
            throw new Hosting.StartupException($"Gatehouse:Cluster:NodeLostAfter {options.NodeLostAfter} must be at least three heartbeat intervals ({3 * options.HeartbeatInterval}), or a node that is merely slow is taken for dead.");
        }

        return options;
    }
}

/// <summary>
/// Writes this node's heartbeat every <see cref="ClusterOptions.HeartbeatInterval"/> (on the injected clock) and closes the
/// open session records of any other node whose heartbeat is older than <see cref="ClusterOptions.NodeLostAfter"/>, with
/// <c>node_lost</c>. A failed round (the database down) is logged and the next one tries again.
/// </summary>
internal sealed partial class NodeHeartbeatService(
    IServiceScopeFactory scopes,
    GatewayNode node,
    ClusterOptions options,
    TimeProvider time,
    ILogger<NodeHeartbeatService> logger) : BackgroundService
{
    /// <summary>One round: the heartbeat, then the dead nodes' records. Returns the nodes whose records this round closed.</summary>
    public async Task<IReadOnlyList<LostNode>> BeatAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = scope.ServiceProvider.GetRequiredService<SessionStore>();
            var now = time.GetUtcNow();
            await store.BeatAsync(node.Name, now, cancellationToken).ConfigureAwait(false);
            var lost = await store.EndLostNodesAsync(node.Name, now, options.NodeLostAfter, cancellationToken).ConfigureAwait(false);
            foreach (var dead in lost)
            {
                LogNodeLost(dead.Node, dead.LastSeenAt, dead.SessionsEnded);
            }

            return lost;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogBeatFailed(e.GetType().Name, e.Message);
            return [];
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await BeatAsync(stoppingToken).ConfigureAwait(false);
            using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await BeatAsync(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    [LoggerMessage(63, LogLevel.Warning, "Node {Node} stopped sending heartbeats at {LastSeenAt:O}: closed its {Count} open session record(s) with node_lost.")]
    private partial void LogNodeLost(string node, DateTimeOffset lastSeenAt, int count);

    [LoggerMessage(64, LogLevel.Warning, "Could not write this node's heartbeat or check the other nodes' ({Kind}: {Message}); trying again at the next interval.")]
    private partial void LogBeatFailed(string kind, string message);
}
