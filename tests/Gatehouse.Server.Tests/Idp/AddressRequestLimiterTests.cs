using Gatehouse.Gateway.Tests;
using Gatehouse.Idp;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The identity provider's per-address request limit without a timer (docs/benchmarks.md, "Idle CPU of
/// <c>gatehouse serve</c>"): fixed windows renewed lazily from the injected clock, a bounded table.
/// </summary>
public sealed class AddressRequestLimiterTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public void TryAcquire_OverTheLimit_IsRefusedUntilTheWindowEnds()
    {
        var time = new ManualTime();
        var limiter = new AddressRequestLimiter(3, Minute, time);

        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryAcquire("192.0.2.1"), $"request {i + 1} of 3");
        }

        Assert.False(limiter.TryAcquire("192.0.2.1"));
        time.Advance(Minute - TimeSpan.FromSeconds(1));
        Assert.False(limiter.TryAcquire("192.0.2.1"));

        // The window started at the first request: one minute after it, three more.
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryAcquire("192.0.2.1"), $"request {i + 1} of the new window");
        }

        Assert.False(limiter.TryAcquire("192.0.2.1"));
    }

    [Fact]
    public void TryAcquire_CountsEachAddressApart()
    {
        var limiter = new AddressRequestLimiter(2, Minute, new ManualTime());

        Assert.True(limiter.TryAcquire("192.0.2.1"));
        Assert.True(limiter.TryAcquire("192.0.2.1"));
        Assert.False(limiter.TryAcquire("192.0.2.1"));

        Assert.True(limiter.TryAcquire("2001:db8::1"));
        Assert.True(limiter.TryAcquire("2001:db8::1"));
        Assert.False(limiter.TryAcquire("2001:db8::1"));
    }

    [Fact]
    public void TryAcquire_RefusedRequests_DoNotExtendOrRefillTheWindow()
    {
        var time = new ManualTime();
        var limiter = new AddressRequestLimiter(1, Minute, time);

        Assert.True(limiter.TryAcquire("192.0.2.1"));
        for (var i = 0; i < 100; i++)
        {
            time.Advance(TimeSpan.FromSeconds(0.5));
            Assert.False(limiter.TryAcquire("192.0.2.1"), $"refused after {(i + 1) * 0.5} s");
        }

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(limiter.TryAcquire("192.0.2.1"));
    }

    [Fact]
    public void TryAcquire_ClockMovedBack_StartsANewWindow()
    {
        var time = new ManualTime(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));
        var limiter = new AddressRequestLimiter(1, Minute, time);
        Assert.True(limiter.TryAcquire("192.0.2.1"));
        Assert.False(limiter.TryAcquire("192.0.2.1"));

        time.Advance(TimeSpan.FromHours(-1));

        // A window that has not started yet is not a reason to refuse for an hour.
        Assert.True(limiter.TryAcquire("192.0.2.1"));
    }

    [Fact]
    public void Table_IsSweptOfEndedWindows_ByTheFirstRequestAWindowLater()
    {
        var time = new ManualTime();
        var limiter = new AddressRequestLimiter(5, Minute, time);
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(limiter.TryAcquire($"10.0.{i / 256}.{i % 256}"));
        }

        Assert.Equal(1000, limiter.TrackedAddresses);

        time.Advance(Minute);
        Assert.True(limiter.TryAcquire("192.0.2.1"));

        Assert.Equal(1, limiter.TrackedAddresses);
    }

    [Fact]
    public void Table_IsCapped_AndTheAddressesBeyondTheCapShareOneWindow()
    {
        var time = new ManualTime();
        var limiter = new AddressRequestLimiter(2, Minute, time, maxAddresses: 100);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(limiter.TryAcquire($"10.0.0.{i}"));
        }

        // Act: a flood of new addresses while the table is full.
        var allowed = 0;
        for (var i = 0; i < 10_000; i++)
        {
            allowed += limiter.TryAcquire($"10.1.{i / 256}.{i % 256}") ? 1 : 0;
        }

        // Assert: the table did not grow, the flood got one address's share, the tracked addresses kept theirs.
        Assert.Equal(100, limiter.TrackedAddresses);
        Assert.Equal(2, allowed);
        Assert.True(limiter.TryAcquire("10.0.0.7"));
        Assert.False(limiter.TryAcquire("10.0.0.7"));

        // A window later the ended windows are swept and new addresses get their own again.
        time.Advance(Minute);
        Assert.True(limiter.TryAcquire("10.2.0.1"));
        Assert.True(limiter.TryAcquire("10.2.0.1"));
        Assert.False(limiter.TryAcquire("10.2.0.1"));
        Assert.True(limiter.TryAcquire("10.2.0.2"));
        Assert.Equal(2, limiter.TrackedAddresses);
    }

    [Fact]
    public async Task TryAcquire_FromManyThreadsAtOnce_AllowsExactlyTheLimit()
    {
        // Arrange: 8 threads, each 500,000 requests spread over 2 addresses; 1,000,000 allowed per address, 2,000,000 asked.
        const int Limit = 1_000_000;
        string[] addresses = ["192.0.2.1", "2001:db8::1"];
        var limiter = new AddressRequestLimiter(Limit, Minute, new ManualTime(), maxAddresses: 8);
        using var start = new ManualResetEventSlim();
        var allowed = new int[8];
        var threads = Enumerable.Range(0, allowed.Length).Select(t => Task.Factory.StartNew(() =>
        {
            start.Wait();
            for (var i = 0; i < 500_000; i++)
            {
                if (limiter.TryAcquire(addresses[i & 1]))
                {
                    allowed[t]++;
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        // Act
        start.Set();
        await Task.WhenAll(threads);

        // Assert: the limit per address, not one more or less.
        Assert.Equal(addresses.Length * Limit, allowed.Sum());
        Assert.Equal(addresses.Length, limiter.TrackedAddresses);
    }

    [Fact]
    public void Constructor_RefusesAZeroLimitWindowOrCap()
    {
        var time = new ManualTime();
        Assert.Throws<ArgumentOutOfRangeException>(() => new AddressRequestLimiter(0, Minute, time));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AddressRequestLimiter(1, TimeSpan.Zero, time));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AddressRequestLimiter(1, Minute, time, maxAddresses: 0));
    }
}
