namespace Gatehouse.Gateway.Sessions;

/// <summary>
/// Drains this node when it stops: the host stops taking new connections, the live sessions go on for up to the drain
/// timeout, then those still open are ended with <c>node_draining</c>. Time comes from the injected clock.
/// </summary>
public sealed class SessionDrain(SessionRegistry registry, TimeProvider time) : IDisposable
{
    /// <summary>The end reason of sessions still open when the drain timeout passes.</summary>
    public const string Reason = "node_draining: the node is stopping; the session was kept for Gatehouse:Gateway:DrainTimeout, then ended";

    private readonly object _gate = new();
    private ITimer? _timer;

    /// <summary>True once <see cref="Begin"/> was called.</summary>
    public bool Draining
    {
        get
        {
            lock (_gate)
            {
                return _timer is not null;
            }
        }
    }

    /// <summary>Starts the drain: after <paramref name="timeout"/> every session still live is ended (0: at once). Later calls do nothing.</summary>
    public void Begin(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            timeout = TimeSpan.Zero;
        }

        lock (_gate)
        {
            if (_timer is not null)
            {
                return;
            }

            _timer = time.CreateTimer(_ => registry.EndAll(Reason), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(timeout, Timeout.InfiniteTimeSpan);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
        }
    }
}
