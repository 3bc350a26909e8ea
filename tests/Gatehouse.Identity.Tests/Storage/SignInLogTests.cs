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

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Append_WithoutTenant_AttributedToTheHostsThenTheDomainsThenTheDefaultTenant(StoreProvider provider)
    {
        // The store's first tenant (the default) and a second one with host vmb (alias vmb-alt).
        await using var store = await FreshAsync(provider, 0);
        store.Env.Time.Advance(TimeSpan.FromMinutes(1));
        var directory = store.Env.Get<DirectoryService>();
        var fabrikamDomain = $"f{Guid.NewGuid():N}.test";
        var fabrikam = await directory.CreateTenantAsync("Fabrikam", fabrikamDomain);
        await directory.CreateHostAsync(fabrikam.Id, "vmb", "10.0.0.9", 3389, BackendSecurity.Tls, aliases: ["vmb-alt"]);
        var log = store.Env.Get<SignInLogService>();

        async Task<Guid> TenantOfAsync(string? user, string? host) =>
            (await log.AppendAsync(Entry(Guid.Empty, 0) with { UserPrincipalName = user, HostName = host, Reason = "unknown_user: not attributed by its writer" })).TenantId;

        Assert.Equal(fabrikam.Id, await TenantOfAsync("mallory@elsewhere.test", "vmb"));
        Assert.Equal(fabrikam.Id, await TenantOfAsync(null, "VMB-ALT"));
        Assert.Equal(fabrikam.Id, await TenantOfAsync($"mallory@{fabrikamDomain.ToUpperInvariant()}", null));
        Assert.Equal(fabrikam.Id, await TenantOfAsync($"AzureAD\\mallory@{fabrikamDomain}", "unknown-host"));
        Assert.Equal(store.TenantId, await TenantOfAsync(@"FABRIKAM\mallory", null));
        Assert.Equal(store.TenantId, await TenantOfAsync(null, null));
        Assert.Equal(fabrikam.Id, (await log.AppendAsync(Entry(fabrikam.Id, 7))).TenantId);

        var verification = await log.VerifyAsync();
        Assert.True(verification.Intact, string.Join("; ", verification.Problems));
        Assert.Equal(0, await store.Env.Get<GatehouseDbContext>().SignIns.CountAsync(s => s.TenantId == Guid.Empty));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Append_WithoutTenant_StoreWithoutTenants_KeepsTheEmptyTenant(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            var row = await env.Get<SignInLogService>().AppendAsync(Entry(Guid.Empty, 1) with { UserPrincipalName = "mallory@contoso.test" });

            Assert.Equal(Guid.Empty, row.TenantId);
            Assert.True((await env.Get<SignInLogService>().VerifyAsync()).Intact);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Append_OverlongUserAndHostNames_CutWithEllipsis_ReasonSaysHowLong(StoreProvider provider)
    {
        await using var store = await FreshAsync(provider, 0);

        var row = await store.Env.Get<SignInLogService>().AppendAsync(Entry(store.TenantId, 1) with
        {
            UserPrincipalName = new string('u', 60_000) + "@contoso.test",
            HostName = new string('h', 300),
            Reason = "unknown_user: " + new string('r', 5000),
        });

        var stored = await store.Env.Get<GatehouseDbContext>().SignIns.AsNoTracking().SingleAsync(s => s.Id == row.Id);
        Assert.Equal(GatehouseDbContext.NameLength, stored.UserPrincipalName!.Length);
        Assert.EndsWith("uuu…", stored.UserPrincipalName, StringComparison.Ordinal);
        Assert.Equal(GatehouseDbContext.NameLength, stored.HostName!.Length);
        Assert.EndsWith("hhh…", stored.HostName, StringComparison.Ordinal);
        Assert.Equal(4096, stored.Reason.Length);
        Assert.StartsWith("unknown_user: rrr", stored.Reason, StringComparison.Ordinal);
        Assert.EndsWith(
            " (the user name given was 60013 characters; the log keeps the first 255) (the host name given was 300 characters; the log keeps the first 255)",
            stored.Reason,
            StringComparison.Ordinal);
        Assert.True((await store.Env.Get<SignInLogService>().VerifyAsync()).Intact);
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
