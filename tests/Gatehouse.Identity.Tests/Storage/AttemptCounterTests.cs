using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// The attempt counters behind the per-account sign-in limit (issue 16): one atomic upsert per attempt, so concurrent
/// callers (any number of nodes) each get a distinct count; a window restarts after its length; a caller whose clock is
/// behind counts in the running window. On SQLite and PostgreSQL.
/// </summary>
public sealed class AttemptCounterTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task CountAttempt_ConcurrentCallers_EachGetADistinctCount(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var key = "account:" + Guid.NewGuid().ToString("N");
        var now = env.Time.GetUtcNow();
        using var go = new ManualResetEventSlim();
        var counts = Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            go.Wait();
            await using var scope = env.NewScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            return i % 2 == 0 ? StoreStartup.CountAttempt(db, key, now, Minute) : await StoreStartup.CountAttemptAsync(db, key, now, Minute);
        })).ToList();
        go.Set();
        var results = await Task.WhenAll(counts);
        Assert.Equal(Enumerable.Range(1, 40), results.Order());
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task CountAttempt_WindowEnds_CountRestarts_AndALateClockCountsInTheRunningWindow(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var db = env.Get<GatehouseDbContext>();
        var key = "account:" + Guid.NewGuid().ToString("N");
        var start = env.Time.GetUtcNow();

        Assert.Equal(1, StoreStartup.CountAttempt(db, key, start, Minute));
        Assert.Equal(2, StoreStartup.CountAttempt(db, key, start.AddSeconds(59), Minute));
        Assert.Equal(3, StoreStartup.CountAttempt(db, key, start.AddSeconds(-5), Minute)); // a node whose clock is behind
        Assert.Equal(1, StoreStartup.CountAttempt(db, key, start.AddSeconds(60), Minute)); // a new window
        Assert.Equal(2, StoreStartup.CountAttempt(db, key, start.AddSeconds(61), Minute));
        Assert.Equal(1, StoreStartup.CountAttempt(db, "account:other" + key, start.AddSeconds(61), Minute));

        // The purge removes ended windows only (the class's database may hold other tests' rows).
        await StoreStartup.PurgeAttemptCountersAsync(db, start.AddSeconds(100), Minute);
        Assert.True(await db.AttemptCounters.AnyAsync(c => c.Key == key));
        Assert.True(await StoreStartup.PurgeAttemptCountersAsync(db, start.AddSeconds(121), Minute) >= 2);
        Assert.False(await db.AttemptCounters.AnyAsync(c => c.Key == key));
    }
}
