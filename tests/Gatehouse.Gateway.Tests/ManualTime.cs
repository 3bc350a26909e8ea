namespace Gatehouse.Gateway.Tests;

/// <summary>
/// A clock the test moves by hand, with timers that fire only when it is moved: the gateway's deadlines
/// (<c>new CancellationTokenSource(timeout, time)</c>) never fire because the machine is slow, only when a test says so.
/// </summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private readonly object _gate = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = start;

    /// <summary>A clock that starts now (assertions and nonces made with the real clock stay within their windows).</summary>
    public ManualTime()
        : this(DateTimeOffset.UtcNow)
    {
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    /// <summary>Moves the clock and fires every timer that is then due (outside the lock, in due order).</summary>
    public void Advance(TimeSpan by)
    {
        List<ManualTimer> due;
        lock (_gate)
        {
            _now += by;
            due = [.. _timers.Where(t => t.DueAt <= _now).OrderBy(t => t.DueAt)];
        }

        foreach (var timer in due)
        {
            timer.Fire(this);
        }
    }

    public void Reset(DateTimeOffset to)
    {
        lock (_gate)
        {
            _now = to;
        }
    }

    /// <summary>Timers armed now whose whole period (as created or last changed) is <paramref name="dueTime"/>.</summary>
    public int Armed(TimeSpan dueTime)
    {
        lock (_gate)
        {
            return _timers.Count(t => t.DueTime == dueTime);
        }
    }

    /// <summary>
    /// Waits (on the condition, up to 30 s of real time) until <paramref name="count"/> timers of <paramref name="dueTime"/>
    /// are armed, then moves the clock by <paramref name="dueTime"/>: the deadline the gateway is waiting on fires.
    /// </summary>
    public async Task AdvanceWhenArmedAsync(TimeSpan dueTime, int count = 1)
    {
        var giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (Armed(dueTime) < count)
        {
            Assert.True(DateTime.UtcNow < giveUp, $"no {count} timer(s) of {dueTime} were armed within 30 s");
            await Task.Delay(5);
        }

        Advance(dueTime);
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private sealed class ManualTimer(ManualTime owner, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period = Timeout.InfiniteTimeSpan;

        public DateTimeOffset DueAt { get; private set; }

        public TimeSpan DueTime { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._gate)
            {
                owner._timers.Remove(this);
                _period = period;
                DueTime = dueTime;
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    DueAt = owner._now + dueTime;
                    owner._timers.Add(this);
                }
            }

            return true;
        }

        public void Fire(ManualTime time)
        {
            lock (owner._gate)
            {
                if (!owner._timers.Remove(this))
                {
                    return;
                }

                if (_period != Timeout.InfiniteTimeSpan && _period > TimeSpan.Zero)
                {
                    DueAt += _period;
                    DueTime = _period;
                    owner._timers.Add(this);
                }
            }

            callback(state);
            if (DueAt <= time.GetUtcNow() && _period > TimeSpan.Zero && _period != Timeout.InfiniteTimeSpan)
            {
                Fire(time);
            }
        }

        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
