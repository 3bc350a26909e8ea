using Gatehouse.Hosting;
using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// Deletes what the identity provider no longer needs, every few minutes and once at startup: expired authorization
/// codes, issued-token records and revocation-list entries (a revoked token that has expired is refused anyway), refresh
/// tokens a day after they expired, expired device codes and the attempt counters of ended windows. Each node runs it; the deletes are idempotent.
/// </summary>
internal sealed partial class IdpPurgeService(IServiceScopeFactory scopes, TimeProvider time, UserCodeAttemptLimiter userCodes, ILogger<IdpPurgeService> logger) : BackgroundService
{
    /// <summary>How often the purge runs.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromMinutes(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        try
        {
            do
            {
                await PurgeOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
            // Stopping (or the host disposed without stopping): nothing to finish.
        }
    }

    /// <summary>One purge; a failure is logged and retried at the next period (the rows only take space meanwhile).</summary>
    internal async Task<int> PurgeOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var now = time.GetUtcNow();
            var removed = await scope.ServiceProvider.GetRequiredService<AuthorizationCodeService>().PurgeExpiredAsync(now, cancellationToken).ConfigureAwait(false);
            removed += await scope.ServiceProvider.GetRequiredService<DeviceCodeService>().PurgeExpiredAsync(now, cancellationToken).ConfigureAwait(false);
            var db = scope.ServiceProvider.GetRequiredService<Gatehouse.Storage.GatehouseDbContext>();
            removed += await Gatehouse.Storage.StoreStartup.PurgeAttemptCountersAsync(db, now, AccountAttemptLimiter.Window, AccountAttemptLimiter.KeyPrefix, cancellationToken).ConfigureAwait(false);
            removed += await Gatehouse.Storage.StoreStartup.PurgeAttemptCountersAsync(db, now, userCodes.Window, UserCodeAttemptLimiter.KeyPrefix, cancellationToken).ConfigureAwait(false);
            if (removed > 0)
            {
                LogPurged(removed);
            }

            return removed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogPurgeFailed(e.GetType().Name, e.Message);
            return 0;
        }
    }

    [LoggerMessage(ServerEventIds.Purged, LogLevel.Debug, "Purged {Count} expired codes, tokens and revocation entries.")]
    private partial void LogPurged(int count);

    [LoggerMessage(ServerEventIds.PurgeFailed, LogLevel.Warning, "The purge of expired codes and tokens failed ({Kind}: {Message}); it runs again in 10 minutes.")]
    private partial void LogPurgeFailed(string kind, string message);
}
