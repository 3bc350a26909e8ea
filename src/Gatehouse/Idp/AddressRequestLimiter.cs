namespace Gatehouse.Idp;

/// <summary>
/// The identity provider's per-address request limit: at most <see cref="PermitLimit"/> requests per address in a
/// fixed window of <see cref="Window"/>, the window starting at the address's first request, with no queue (a request
/// over the limit is refused at once).
/// </summary>
/// <remarks>
/// <para>
/// It replaces ASP.NET Core's partitioned rate limiter (<c>RateLimitPartition.GetFixedWindowLimiter</c>), which
/// replenishes its partitions and looks for idle ones on a 100 ms timer: ten wake-ups a second of a server that has
/// nothing to do (docs/benchmarks.md, "Idle CPU of <c>gatehouse serve</c>"). Here nothing runs between requests: a
/// window is renewed when a request finds it ended, and ended windows are swept from the table by the request that
/// finds the last sweep a window old.
/// </para>
/// <para>
/// The table holds at most <see cref="MaxAddresses"/> addresses. When it is full of addresses whose windows have not
/// ended (a flood from many addresses), an address that is not in it shares one overflow window with every other such
/// address, under the same limit: memory stays bounded, the addresses already tracked keep their own count, and the
/// flood as a whole gets no more than one address's share beyond what the tracked addresses get.
/// </para>
/// <para>Thread-safe: one lock around the table, held for a dictionary lookup (and, once a window, the sweep).</para>
/// </remarks>
internal sealed class AddressRequestLimiter
{
    /// <summary>The default cap of <see cref="MaxAddresses"/>: about 13 MB of table at most (key, counter, entry).</summary>
    public const int DefaultMaxAddresses = 100_000;

    private readonly object _gate = new();
    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly Counter _overflow = new();
    private DateTimeOffset _lastSweep;

    /// <summary>A limiter of <paramref name="permitLimit"/> requests per address per <paramref name="window"/>.</summary>
    public AddressRequestLimiter(int permitLimit, TimeSpan window, TimeProvider time, int maxAddresses = DefaultMaxAddresses)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(permitLimit);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxAddresses);
        ArgumentNullException.ThrowIfNull(time);
        PermitLimit = permitLimit;
        Window = window;
        MaxAddresses = maxAddresses;
        _time = time;
        _lastSweep = time.GetUtcNow();
    }

    /// <summary>Requests allowed per address per <see cref="Window"/>.</summary>
    public int PermitLimit { get; }

    /// <summary>The length of one fixed window.</summary>
    public TimeSpan Window { get; }

    /// <summary>The most addresses the table holds.</summary>
    public int MaxAddresses { get; }

    /// <summary>Addresses in the table now (tests read it).</summary>
    public int TrackedAddresses
    {
        get
        {
            lock (_gate)
            {
                return _counters.Count;
            }
        }
    }

    /// <summary>
    /// Counts one request from <paramref name="address"/>; <c>false</c> when the address has used up its window (the
    /// request is to be refused and is not counted).
    /// </summary>
    public bool TryAcquire(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (now - _lastSweep >= Window || now < _lastSweep)
            {
                Sweep(now);
            }

            if (!_counters.TryGetValue(address, out var counter))
            {
                if (_counters.Count >= MaxAddresses)
                {
                    return _overflow.TryTake(now, Window, PermitLimit);
                }

                counter = new Counter();
                _counters.Add(address, counter);
            }

            return counter.TryTake(now, Window, PermitLimit);
        }
    }

    /// <summary>Drops the addresses whose window has ended (they would start a new one anyway). Called under the lock.</summary>
    private void Sweep(DateTimeOffset now)
    {
        _lastSweep = now;
        List<string>? ended = null;
        foreach (var (address, counter) in _counters)
        {
            if (counter.Ended(now, Window))
            {
                (ended ??= []).Add(address);
            }
        }

        if (ended is not null)
        {
            foreach (var address in ended)
            {
                _counters.Remove(address);
            }
        }

        // A sweep after a flood gives the table's memory back: the flood's high-water mark is not kept.
        if (ended is { Count: > 1024 })
        {
            _counters.TrimExcess();
        }
    }

    /// <summary>One address's window: when it started and how many requests it has counted. Guarded by the limiter's lock.</summary>
    private sealed class Counter
    {
        private DateTimeOffset _start = DateTimeOffset.MinValue;
        private int _count;

        /// <summary>True when the window has ended at <paramref name="now"/> (or the clock went back before its start).</summary>
        public bool Ended(DateTimeOffset now, TimeSpan window) => now - _start >= window || now < _start;

        public bool TryTake(DateTimeOffset now, TimeSpan window, int limit)
        {
            if (Ended(now, window))
            {
                _start = now;
                _count = 0;
            }

            if (_count >= limit)
            {
                return false;
            }

            _count++;
            return true;
        }
    }
}
