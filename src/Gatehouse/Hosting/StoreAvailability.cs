using Gatehouse.Gateway.Admission;
using Gatehouse.Storage;

namespace Gatehouse.Hosting;

/// <summary>
/// Whether the database answers, for the RDP listener (<see cref="IStoreAvailability"/>). It is taken to be down when a
/// readiness probe fails, or when a sign-in fails with an error that says so (<see cref="StoreStartup.IsUnavailable"/>) and
/// one <c>SELECT 1</c> confirms it; while down it is asked again every <see cref="RecheckInterval"/> (on the injected
/// clock) until it answers, and a readiness probe that succeeds ends it too. One log line when it goes down, one when it
/// is back.
/// </summary>
internal sealed partial class StoreAvailability(IServiceScopeFactory scopes, TimeProvider time, ILogger<StoreAvailability> logger, TimeSpan probeTimeout)
    : IStoreAvailability, IDisposable
{
    /// <summary>How often a database taken to be down is asked again.</summary>
    public static readonly TimeSpan RecheckInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private string? _down;
    private long _refused;
    private Task? _recheck;
    private int _disposed;

    /// <inheritdoc/>
    public string? Unavailable => Volatile.Read(ref _down);

    /// <inheritdoc/>
    public long CountRefusal() => Interlocked.Increment(ref _refused);

    /// <inheritdoc/>
    public async Task<bool> ConfirmUnavailableAsync(Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (!StoreStartup.IsUnavailable(exception))
        {
            return false;
        }

        if (Unavailable is not null)
        {
            return true;
        }

        // A socket error or a timeout may come from elsewhere (a host): the database itself must not answer either.
        if (await AnswersAsync(cancellationToken).ConfigureAwait(false))
        {
            return false;
        }

        MarkDown($"the database did not answer: {StoreStartup.Describe(exception)}");
        return true;
    }

    /// <summary>Takes the database to be down with <paramref name="reason"/> (no-op when it already is).</summary>
    public void MarkDown(string reason)
    {
        lock (_gate)
        {
            if (_down is not null)
            {
                return;
            }

            Volatile.Write(ref _down, reason);
            Interlocked.Exchange(ref _refused, 0);
            if (_recheck is null || _recheck.IsCompleted)
            {
                _recheck = Task.Run(RecheckAsync);
            }
        }

        LogDown(reason);
    }

    /// <summary>The database answers again (no-op when it was not taken to be down).</summary>
    public void MarkUp()
    {
        string? was;
        lock (_gate)
        {
            was = _down;
            Volatile.Write(ref _down, null);
        }

        if (was is not null)
        {
            LogUp(Interlocked.Read(ref _refused));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // Registered under two service types, so disposed twice.
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cancel.CancelAfter(probeTimeout);
            await DatabaseHealthCheck.PingAsync(scopes, cancel.Token).WaitAsync(probeTimeout, time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task RecheckAsync()
    {
        var token = _stop.Token;
        while (Unavailable is not null && !token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(RecheckInterval, time, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (await AnswersAsync(token).ConfigureAwait(false))
            {
                MarkUp();
            }
        }
    }

    [LoggerMessage(ServerEventIds.StoreDownForSignIns, LogLevel.Warning, "RDP sign-ins are refused while the database does not answer ({Reason}); live sessions go on. It is asked again every second.")]
    private partial void LogDown(string reason);

    [LoggerMessage(ServerEventIds.StoreBackForSignIns, LogLevel.Information, "The database answers again: RDP sign-ins are accepted ({Refused} refused meanwhile).")]
    private partial void LogUp(long refused);
}
