using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// The hash-chained sign-in log on SQLite and PostgreSQL. The log is one table for the whole store, so every test gets
/// a database of its own.
/// </summary>
public sealed class SignInLogTests
{
    private static async Task<FreshStore> FreshAsync(StoreProvider provider, int rows)
    {
        var fixture = new StoreFixture();
        var env = await fixture.CreateEnvAsync(provider);
        var store = new FreshStore(fixture, env);
        var tenant = await env.Get<DirectoryService>().CreateTenantAsync("Contoso", $"t{Guid.NewGuid():N}.test");
        store.TenantId = tenant.Id;
        for (var i = 1; i <= rows; i++)
        {
            await env.Get<SignInLogService>().AppendAsync(Entry(tenant.Id, i));
            env.Time.Advance(TimeSpan.FromSeconds(1));
        }

        return store;
    }

    private static SignInEntry Entry(Guid tenantId, int i) => new()
    {
        TenantId = tenantId,
        CorrelationId = $"conn-{i}",
        Protocol = "web_account",
        Succeeded = i % 2 == 0,
        Reason = $"attempt {i}",
        UserPrincipalName = "alice@contoso.test",
        HostName = "vm1",
        Methods = ["pwd"],
    };

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Append_ChainLinksEveryRow_VerifyIntact(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 5);

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();

        Assert.True(verification.Intact, string.Join("; ", verification.Problems));
        Assert.Equal(5, verification.Rows);
        var rows = await store.Env.Get<GatehouseDbContext>().SignIns.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
        Assert.Equal([1L, 2, 3, 4, 5], rows.Select(r => r.Sequence));
        Assert.Equal(SignInLogService.GenesisHash, rows[0].PreviousHash);
        for (var i = 1; i < rows.Count; i++)
        {
            Assert.Equal(rows[i - 1].Hash, rows[i].PreviousHash);
            Assert.Equal(SignInLogService.ComputeHash(rows[i]), rows[i].Hash);
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Verify_EditedRow_Detected(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 5);
        Assert.Equal(1, await store.SqlAsync("UPDATE \"SignIns\" SET \"Result\" = 'success' WHERE \"Sequence\" = 3"));

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();

        Assert.False(verification.Intact);
        Assert.Contains(new ChainProblem(3, "the row's content does not match its hash (the row was edited)"), verification.Problems);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Verify_DeletedMiddleRow_Detected(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 5);
        Assert.Equal(1, await store.SqlAsync("DELETE FROM \"SignIns\" WHERE \"Sequence\" = 3"));

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();

        Assert.Equal(4, verification.Rows);
        Assert.Contains(new ChainProblem(4, "rows 3..3 are missing (deleted)"), verification.Problems);
        Assert.Contains(new ChainProblem(4, "the link to the previous row is broken (a row before it was changed, deleted or moved)"), verification.Problems);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Verify_SwappedSequences_Detected(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 5);
        await store.SqlAsync("UPDATE \"SignIns\" SET \"Sequence\" = 1000 WHERE \"Sequence\" = 2");
        await store.SqlAsync("UPDATE \"SignIns\" SET \"Sequence\" = 2 WHERE \"Sequence\" = 4");
        await store.SqlAsync("UPDATE \"SignIns\" SET \"Sequence\" = 4 WHERE \"Sequence\" = 1000");

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();

        Assert.Equal(5, verification.Rows);
        Assert.Contains(new ChainProblem(2, "the row's content does not match its hash (the row was edited)"), verification.Problems);
        Assert.Contains(new ChainProblem(2, "the link to the previous row is broken (a row before it was changed, deleted or moved)"), verification.Problems);
        Assert.Contains(new ChainProblem(4, "the row's content does not match its hash (the row was edited)"), verification.Problems);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Verify_TruncatedTail_Detected(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 5);
        Assert.Equal(1, await store.SqlAsync("DELETE FROM \"SignIns\" WHERE \"Sequence\" = 5"));

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();

        Assert.Equal(4, verification.Rows);
        Assert.Equal([new ChainProblem(5, "the log ends at row 4 but row 5 was written (the tail was truncated)")], verification.Problems);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Append_TwentyInParallel_ChainStaysLinear(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 0);

        await Task.WhenAll(Enumerable.Range(1, 20).Select(async i =>
        {
            await using var scope = store.Env.NewScope();
            await scope.ServiceProvider.GetRequiredService<SignInLogService>().AppendAsync(Entry(store.TenantId, i));
        }));

        var verification = await store.Env.Get<SignInLogService>().VerifyAsync();
        Assert.True(verification.Intact, string.Join("; ", verification.Problems));
        var rows = await store.Env.Get<GatehouseDbContext>().SignIns.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), rows.Select(r => r.Sequence));
        Assert.Equal(20, rows.Select(r => r.CorrelationId).Distinct().Count());
    }

    /// <summary>A database of its own, dropped at the end of the test.</summary>
    private sealed class FreshStore(StoreFixture fixture, TestEnv env) : IAsyncDisposable
    {
        public TestEnv Env { get; } = env;

        public Guid TenantId { get; set; }

        public async Task<int> SqlAsync(string sql)
        {
            await using var db = Env.Store.CreateContext();
#pragma warning disable EF1002 // Constant test SQL, no user input.
            return await db.Database.ExecuteSqlRawAsync(sql);
#pragma warning restore EF1002
        }

        public async ValueTask DisposeAsync()
        {
            await Env.DisposeAsync();
            await fixture.DisposeAsync();
        }
    }
}
