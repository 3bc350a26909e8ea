using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// The sign-in log's group commit (<see cref="SignInLogWriter"/>): rows keep the order they were queued in, one batch is
/// one transaction, a failing batch is retried or failed as a whole (never half written, never twice), and two writers
/// (two nodes) on one store keep one intact chain. Each test gets a database of its own.
/// </summary>
public sealed class SignInLogWriterTests
{
    private static SignInEntry Entry(Guid tenantId, int i) => new()
    {
        TenantId = tenantId,
        CorrelationId = $"conn-{i}",
        Protocol = "web_account",
        Succeeded = i % 2 == 0,
        Reason = $"attempt {i}",
        UserPrincipalName = "alice@contoso.test",
        Methods = ["pwd"],
    };

    private static async Task<List<SignInRecord>> RowsAsync(TestEnv env)
    {
        await using var db = env.Store.CreateContext();
        return await db.SignIns.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Writer_RowsQueuedTogether_CommitInQueueOrder_ChainIntact(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            var log = env.Get<SignInLogService>();
            var writer = env.Get<SignInLogWriter>();
            var tenant = Guid.NewGuid();

            // Queued one after another without waiting: the writer takes them in batches, in this order.
            var appends = Enumerable.Range(1, 120).Select(i => writer.AppendAsync(log.Prepare(Entry(tenant, i), tenant))).ToList();
            var written = await Task.WhenAll(appends);

            Assert.Equal(Enumerable.Range(1, 120).Select(i => (long)i), written.Select(r => r.Sequence));
            var rows = await RowsAsync(env);
            Assert.Equal(Enumerable.Range(1, 120).Select(i => $"conn-{i}"), rows.Select(r => r.CorrelationId));
            Assert.InRange(writer.Batches, 1, 120);
            var verification = await log.VerifyAsync();
            Assert.True(verification.Intact, string.Join("; ", verification.Problems));
            Assert.Equal(120, verification.Rows);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Writer_BatchFailsTwice_RetriedAsAWhole_NoRowLostOrDuplicated(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        var plan = new FailurePlan { Failures = 2 };
        await using var env = await fixture.CreateEnvAsync(provider, s => FailingHeads(s, plan));
        try
        {
            var tenant = Guid.NewGuid();
            await Task.WhenAll(Enumerable.Range(1, 30).Select(async i =>
            {
                await using var scope = env.NewScope();
                await scope.ServiceProvider.GetRequiredService<SignInLogService>().AppendAsync(Entry(tenant, i));
            }));

            Assert.Equal(0, plan.Failures);
            Assert.True(plan.Failed >= 2);
            var rows = await RowsAsync(env);
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), rows.Select(r => r.Sequence));
            Assert.Equal(30, rows.Select(r => r.CorrelationId).Distinct().Count());
            Assert.Equal(30, rows.Select(r => r.Id).Distinct().Count());
            var verification = await env.Get<SignInLogService>().VerifyAsync();
            Assert.True(verification.Intact, string.Join("; ", verification.Problems));
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Writer_BatchNeverCommits_CallersGetTheError_NothingWritten_NextAppendStartsTheChain(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        var plan = new FailurePlan { Failures = int.MaxValue };
        await using var env = await fixture.CreateEnvAsync(provider, s => FailingHeads(s, plan));
        try
        {
            var tenant = Guid.NewGuid();
            var log = env.Get<SignInLogService>();

            var error = await Assert.ThrowsAsync<TimeoutException>(() => log.AppendAsync(Entry(tenant, 1)));

            Assert.Equal("the head store is down", error.Message);
            Assert.Equal(SignInLogService.MaxAttempts, plan.Failed);
            Assert.Empty(await RowsAsync(env));

            plan.Failures = 0;
            var row = await log.AppendAsync(Entry(tenant, 2));
            Assert.Equal(1, row.Sequence);
            Assert.Equal(SignInLogService.GenesisHash, row.PreviousHash);
            Assert.True((await log.VerifyAsync()).Intact);
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task TwoWriters_OneStore_AppendingAtOnce_KeepOneIntactChain(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        var scopes = env.Root.GetRequiredService<IServiceScopeFactory>();

        // Two nodes: each its own writer (its own loop, connections and transactions) on the same store.
        await using var nodeA = new SignInLogWriter(scopes);
        await using var nodeB = new SignInLogWriter(scopes);
        try
        {
            var tenant = Guid.NewGuid();
            var log = env.Get<SignInLogService>();
            var appends = Enumerable.Range(1, 160)
                .Select(i => (i % 2 == 0 ? nodeA : nodeB).AppendAsync(log.Prepare(Entry(tenant, i), tenant)))
                .ToList();
            var written = await Task.WhenAll(appends);

            Assert.Equal(160, written.Select(r => r.Sequence).Distinct().Count());
            var rows = await RowsAsync(env);
            Assert.Equal(Enumerable.Range(1, 160).Select(i => (long)i), rows.Select(r => r.Sequence));
            Assert.Equal(160, rows.Select(r => r.CorrelationId).Distinct().Count());
            var verification = await log.VerifyAsync();
            Assert.True(verification.Intact, string.Join("; ", verification.Problems));
            Assert.Equal(160, verification.Rows);
        }
        finally
        {
            await nodeA.DisposeAsync();
            await nodeB.DisposeAsync();
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Writer_RowsQueuedWhenTheContainerDisposesIt_AreStillWritten(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        var gate = new HeadGate();
        await using var env = await fixture.CreateEnvAsync(provider, s =>
            s.AddScoped<ISignInLogHeadStore>(sp => new GatedHeadStore(new StoreSignInLogHeadStore(sp.GetRequiredService<GatehouseDbContext>()), gate)));
        try
        {
            var tenant = Guid.NewGuid();
            var log = env.Get<SignInLogService>();
            var writer = env.Root.GetRequiredService<SignInLogWriter>();

            // One batch is being written (held in its head write) while more rows wait in the queue...
            var first = writer.AppendAsync(log.Prepare(Entry(tenant, 1), tenant));
            await gate.Entered.Task;
            var queued = Enumerable.Range(2, 5).Select(i => writer.AppendAsync(log.Prepare(Entry(tenant, i), tenant))).ToList();

            // ...when the host shuts down: the container stops making scopes, then disposes the writer.
            var disposing = ((IAsyncDisposable)env.Root).DisposeAsync();
            gate.Release.SetResult();
            await disposing;

            var written = await Task.WhenAll(queued.Prepend(first));
            Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), written.Select(r => r.Sequence));
            Assert.Equal(Enumerable.Range(1, 6).Select(i => $"conn-{i}"), (await RowsAsync(env)).Select(r => r.CorrelationId));
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Writer_AppendEntry_WithoutACallersScope_AttributedClippedAndStampedWithTheNodesClock(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            var domain = $"f{Guid.NewGuid():N}.test";
            var tenant = await env.Get<DirectoryService>().CreateTenantAsync("Fabrikam", domain);
            env.Time.Advance(TimeSpan.FromMinutes(3));
            var writer = env.Root.GetRequiredService<SignInLogWriter>();

            // As the gateway and the sign-in pages append: entries straight to the singleton writer.
            var attributed = await writer.AppendAsync(Entry(Guid.Empty, 1) with { UserPrincipalName = $"mallory@{domain}" });
            var given = await writer.AppendAsync(Entry(tenant.Id, 2) with { HostName = new string('h', 300) });

            Assert.Equal(tenant.Id, attributed.TenantId);
            Assert.Equal(env.Time.GetUtcNow().ToUnixTimeMilliseconds(), attributed.Time.ToUnixTimeMilliseconds());
            Assert.Equal([1L, 2L], new[] { attributed.Sequence, given.Sequence });
            Assert.EndsWith("…", given.HostName, StringComparison.Ordinal);
            Assert.Contains("the host name given was 300 characters", given.Reason, StringComparison.Ordinal);
            var rows = await RowsAsync(env);
            Assert.Equal([attributed.Id, given.Id], rows.Select(r => r.Id));
            Assert.Equal(given.HostName, rows[1].HostName);
            var verification = await env.Get<SignInLogService>().VerifyAsync();
            Assert.True(verification.Intact, string.Join("; ", verification.Problems));
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    private static void FailingHeads(IServiceCollection services, FailurePlan plan) =>
        services.AddScoped<ISignInLogHeadStore>(sp => new FailingHeadStore(new StoreSignInLogHeadStore(sp.GetRequiredService<GatehouseDbContext>()), plan));

    /// <summary>Holds the first head write until released, and says when it is held.</summary>
    private sealed class HeadGate
    {
        private int _writes;

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task PassAsync()
        {
            if (Interlocked.Increment(ref _writes) == 1)
            {
                Entered.SetResult();
                await Release.Task;
            }
        }
    }

    private sealed class GatedHeadStore(StoreSignInLogHeadStore inner, HeadGate gate) : ISignInLogHeadStore
    {
        public Task<string?> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public async Task WriteAsync(string sealedHead, CancellationToken cancellationToken)
        {
            await gate.PassAsync();
            await inner.WriteAsync(sealedHead, cancellationToken);
        }
    }

    /// <summary>How many head writes still fail, and how many did.</summary>
    private sealed class FailurePlan
    {
        private int _failures;
        private int _failed;

        public int Failures { get => Volatile.Read(ref _failures); set => Volatile.Write(ref _failures, value); }

        public int Failed => Volatile.Read(ref _failed);

        public bool TakeFailure()
        {
            while (true)
            {
                var left = Failures;
                if (left <= 0)
                {
                    return false;
                }

                if (Interlocked.CompareExchange(ref _failures, left == int.MaxValue ? left : left - 1, left) == left)
                {
                    Interlocked.Increment(ref _failed);
                    return true;
                }
            }
        }
    }

    /// <summary>
    /// A head store that fails as planned: the rows of the batch were already inserted in its transaction, so a failure
    /// here proves the batch is rolled back as a whole.
    /// </summary>
    private sealed class FailingHeadStore(StoreSignInLogHeadStore inner, FailurePlan plan) : ISignInLogHeadStore
    {
        public Task<string?> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public Task WriteAsync(string sealedHead, CancellationToken cancellationToken) =>
            plan.TakeFailure() ? throw new TimeoutException("the head store is down") : inner.WriteAsync(sealedHead, cancellationToken);
    }
}
