using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Npgsql;

namespace Gatehouse.Gateway;

/// <summary>
/// On PostgreSQL, ends a killed session at once: one dedicated connection (outside the pool) listens on
/// <see cref="SessionStore.KillChannel"/>, and a notification for a session this node holds ends it. When the connection
/// drops, it reconnects (the first time at once, then after 1, 2, 4 … up to 30 s on the injected clock, one log line per
/// attempt) and then asks the store once for kills it may have missed. <see cref="SessionKillWatcher"/>'s poll stays as
/// the fallback.
/// </summary>
internal sealed partial class SessionKillListener(
    StoreOptions store,
    IServiceScopeFactory scopes,
    SessionRegistry registry,
    GatewayNode node,
    TimeProvider time,
    ILogger<SessionKillListener> logger) : BackgroundService
{
    /// <summary>The delay before the second reconnection attempt; it doubles with each failure up to <see cref="MaxRetryDelay"/>.</summary>
    public static readonly TimeSpan FirstRetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay between two reconnection attempts.</summary>
    public static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    /// <summary>A session id in the <c>"D"</c> format is 36 characters; anything longer is not one of ours.</summary>
    private const int MaxPayloadLength = 36;

    private int _listening;
    private int _killed;

    /// <summary>How many times the listening connection was set up (1 after the start, +1 per reconnection).</summary>
    public int TimesListening => Volatile.Read(ref _listening);

    /// <summary>Sessions this listener ended.</summary>
    public int Killed => Volatile.Read(ref _killed);

    /// <summary>The listening connection's <c>application_name</c> in <c>pg_stat_activity</c> (PostgreSQL keeps 63 bytes).</summary>
    public static string ApplicationName(string node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var name = "gatehouse session kills " + node;
        return name.Length <= 63 ? name : name[..63];
    }

    /// <summary>The delay before reconnection attempt <paramref name="failures"/> (0 for the first).</summary>
    public static TimeSpan RetryDelay(int failures)
    {
        if (failures <= 0)
        {
            return TimeSpan.Zero;
        }

        var seconds = FirstRetryDelay.TotalSeconds * Math.Pow(2, Math.Min(failures - 1, 16));
        return TimeSpan.FromSeconds(Math.Min(seconds, MaxRetryDelay.TotalSeconds));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store.Provider != StoreProvider.Postgres)
        {
            return;
        }

        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(() => failures = 0, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                var delay = RetryDelay(failures);
                failures++;
                LogListenFailed(e.GetType().Name, e.Message, delay.TotalSeconds);
                if (delay > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }
        }
    }

    private async Task ListenAsync(Action listening, CancellationToken cancellationToken)
    {
        // Outside the pool: this connection lives as long as the node, and a pooled one would be reset when returned.
        // The keep-alive query notices a connection that died without a word while WaitAsync waits.
        var builder = new NpgsqlConnectionStringBuilder(store.ConnectionString)
        {
            Pooling = false,
            KeepAlive = 15,
            ApplicationName = ApplicationName(node.Name),
        };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await using (connection.ConfigureAwait(false))
        {
            connection.Notification += (_, e) => OnNotification(e.Channel, e.Payload);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            var command = new NpgsqlCommand($"LISTEN {SessionStore.KillChannel}", connection);
            await using (command.ConfigureAwait(false))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            var times = Interlocked.Increment(ref _listening);
            listening();
            LogListening(SessionStore.KillChannel, times > 1);
            await CatchUpAsync(cancellationToken).ConfigureAwait(false);
            while (true)
            {
                await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Kill requests made while this node was not listening (the poll would find them too, later).</summary>
    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        if (registry.Count == 0)
        {
            return;
        }

        await using var scope = scopes.CreateAsyncScope();
        var kills = await scope.ServiceProvider.GetRequiredService<SessionStore>().KillRequestsAsync(node.Name, cancellationToken).ConfigureAwait(false);
        foreach (var id in kills)
        {
            End(id);
        }
    }

    private void OnNotification(string channel, string payload)
    {
        if (channel != SessionStore.KillChannel || payload.Length > MaxPayloadLength || !Guid.TryParseExact(payload, "D", out var id))
        {
            return;
        }

        End(id);
    }

    private void End(Guid id)
    {
        // A session already ending (killed by the poll, or before a reconnection) is not counted or logged again.
        if (registry.Find(id) is { Ending.IsCancellationRequested: false } && registry.Kill(id, SessionKillWatcher.KilledReason))
        {
            Interlocked.Increment(ref _killed);
            LogKilled(id);
        }
    }

    [LoggerMessage(65, LogLevel.Information, "Listening for session kills on PostgreSQL (channel {Channel}; reconnected: {Reconnected}).")]
    private partial void LogListening(string channel, bool reconnected);

    [LoggerMessage(66, LogLevel.Warning, "The session-kill listener lost or could not open its PostgreSQL connection ({Kind}: {Message}); reconnecting in {DelaySeconds} s (the store is still polled).")]
    private partial void LogListenFailed(string kind, string message, double delaySeconds);

    [LoggerMessage(67, LogLevel.Information, "Session {SessionId} ended by an administrator (notified).")]
    private partial void LogKilled(Guid sessionId);
}
