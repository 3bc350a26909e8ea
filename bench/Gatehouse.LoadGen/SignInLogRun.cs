using System.Diagnostics;
using System.Globalization;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen;

/// <summary>What <c>signin-log</c> runs: rows in all, writers (appenders) per node, nodes, the PostgreSQL store.</summary>
internal sealed record SignInLogSettings(int Rows, int Concurrency, int Nodes, string Store, bool Phases = true);

/// <summary>
/// <c>signin-log</c>: starts <c>--nodes</c> hosts (what <c>gatehouse serve</c> builds) in this process on one PostgreSQL
/// database, sharing one data directory (one key ring, as the nodes of a deployment share it), and appends rows to the
/// sign-in log through each node's <see cref="SignInLogService"/> (so through its <see cref="SignInLogWriter"/>) from
/// <c>--concurrency</c> appenders per node at once, each awaiting its row's commit. Reports rows per second and the
/// batches the writers committed, then verifies the whole chain.
/// </summary>
internal static class SignInLogRun
{
    public static async Task<string> RunAsync(SignInLogSettings settings, Action<string> progress, CancellationToken cancellationToken)
    {
        var store = new Dictionary<string, string?> { ["Gatehouse:Store"] = settings.Store };
        var nodes = new List<BenchHost>();
        try
        {
            for (var i = 0; i < settings.Nodes; i++)
            {
                nodes.Add(await BenchHost.StartAsync("https://127.0.0.1:0", "login.gatehouse.test", store, progress, cancellationToken, nodes.FirstOrDefault()?.DataDirectory));
            }

            var tenant = await DefaultTenantAsync(nodes[0].App.Services, cancellationToken);

            // Warm-up: one row through every node.
            foreach (var node in nodes)
            {
                await AppendAsync(node.App.Services, tenant, -1, cancellationToken);
            }

            var batchesBefore = nodes.Sum(n => n.App.Services.GetRequiredService<SignInLogWriter>().Batches);
            var next = -1;
            var databaseBefore = await Profile.BackendTicksAsync(settings.Store);
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(nodes.SelectMany(node => Enumerable.Range(0, settings.Concurrency).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < settings.Rows)
                {
                    await AppendAsync(node.App.Services, tenant, i, cancellationToken);
                }
            })));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
            var databaseCpu = await Profile.DatabaseCpuSinceAsync(settings.Store, databaseBefore);
            var batches = nodes.Sum(n => n.App.Services.GetRequiredService<SignInLogWriter>().Batches) - batchesBefore;
            var rowsPerBatch = (double)settings.Rows / Math.Max(1, batches);

            progress("timing the phases one by one");
            var phases = settings.Phases ? await PhasesAsync(nodes[0].App.Services, tenant, rowsPerBatch, settings.Store, cancellationToken) : string.Empty;

            progress("verifying the chain");
            await using var scope = nodes[^1].App.Services.CreateAsyncScope();
            var verification = await scope.ServiceProvider.GetRequiredService<SignInLogService>().VerifyAsync(cancellationToken);
            var c = CultureInfo.InvariantCulture;
            return string.Create(c, $"""
                Gatehouse sign-in log: {settings.Nodes} node(s) on one PostgreSQL, {settings.Concurrency} appenders per node, {Environment.ProcessorCount} logical CPUs, {Machine.Describe().Runtime}
                rows appended: {settings.Rows} in {seconds:F2} s = {settings.Rows / seconds:F0} rows/s ({batches} batches, {rowsPerBatch:F1} rows per batch)
                CPU per row: this process {cpu.TotalMilliseconds / settings.Rows:F3} ms, PostgreSQL backends {databaseCpu.TotalMilliseconds / settings.Rows:F3} ms
                chain: {verification.Rows} rows, {(verification.Intact ? "intact" : "BROKEN: " + string.Join("; ", verification.Problems.Take(5)))}
                {phases}

                """);
        }
        finally
        {
            for (var i = nodes.Count - 1; i >= 0; i--)
            {
                // The first node owns the shared data directory: it goes last.
                await nodes[i].DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The CPU of each phase of an append, timed one phase at a time on one thread (this process's CPU, from
    /// <see cref="Process.TotalProcessorTime"/>, and the PostgreSQL backends' from /proc): the scope and service an
    /// append resolves, preparing the row, its hash, sealing the head (once per batch), a batch's fixed statements
    /// (advisory lock, last row, head), and inserting a batch of rows in a transaction that is rolled back (so the chain
    /// is untouched). What the run's CPU per row has beyond their sum is the queue, the awaiting and the contention.
    /// </summary>
    private static async Task<string> PhasesAsync(IServiceProvider services, Guid tenant, double rowsPerBatch, string store, CancellationToken cancellationToken)
    {
        const int Rows = 4096;
        var c = CultureInfo.InvariantCulture;
        var text = new System.Text.StringBuilder();
        text.AppendLine(c, $"phases, timed one by one ({Rows} rows; the head and the fixed statements once per batch of {rowsPerBatch:F1} rows):");
        text.AppendLine(c, $"  {"phase",-62} {"process ms/row",14} {"PostgreSQL ms/row",17}");
        async Task<double> Time(string name, int count, double rowsPerCall, Func<int, Task> body)
        {
            var database = await Profile.BackendTicksAsync(store);
            var before = Process.GetCurrentProcess().TotalProcessorTime;
            for (var i = 0; i < count; i++)
            {
                await body(i);
            }

            var process = (Process.GetCurrentProcess().TotalProcessorTime - before).TotalMilliseconds / count / rowsPerCall;
            var backends = (await Profile.DatabaseCpuSinceAsync(store, database)).TotalMilliseconds / count / rowsPerCall;
            text.AppendLine(c, $"  {name,-62} {process,14:F4} {backends,17:F4}");
            return process;
        }

        var entry = Entry(tenant, 0);
        await using var scope = services.CreateAsyncScope();
        var log = scope.ServiceProvider.GetRequiredService<SignInLogService>();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var rows = Enumerable.Range(0, Rows).Select(i => log.Prepare(Entry(tenant, i), tenant)).ToList();
        for (var i = 0; i < rows.Count; i++)
        {
            rows[i].Sequence = 1_000_000_000_000 + i;
            rows[i].PreviousHash = SignInLogService.GenesisHash;
        }

        var scopeCost = await Time("scope + SignInLogService per append (callers made one before)", Rows, 1, async _ =>
        {
            await using var s = services.CreateAsyncScope();
            s.ServiceProvider.GetRequiredService<SignInLogService>();
        });
        var prepare = await Time("prepare (clip, note; tenant given)", Rows, 1, _ =>
        {
            log.Prepare(entry, tenant);
            return Task.CompletedTask;
        });
        var hash = await Time("hash (SHA-256 over the canonical form)", Rows, 1, i =>
        {
            rows[i].Hash = SignInLogService.ComputeHash(rows[i]);
            return Task.CompletedTask;
        });
        var protector = services.GetRequiredService<IDataProtectionProvider>().CreateProtector(SignInLogService.HeadPurpose);
        var seal = await Time("seal the head (Data Protection), once per batch", 512, rowsPerBatch, i =>
        {
            protector.Protect(string.Create(c, $"{i} {SignInLogService.GenesisHash}"));
            return Task.CompletedTask;
        });
        var transactionCost = await Time("batch's transaction: begin + commit", 256, rowsPerBatch, async _ =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        });
        var lockCost = await Time("batch's advisory lock (EF Core raw SQL)", 256, rowsPerBatch, async _ =>
            await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_lock(7166031002); SELECT pg_advisory_unlock(7166031002)", cancellationToken));
        var lastRow = await Time("batch's last row (LINQ query)", 256, rowsPerBatch, async _ =>
            await db.SignIns.AsNoTracking().OrderByDescending(s => s.Sequence).Select(s => new { s.Sequence, s.Hash }).FirstOrDefaultAsync(cancellationToken));
        var combined = await Time("batch's begin + lock and last row in one command + commit (now)", 256, rowsPerBatch, async _ =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await SignInRowWriter.LockAndReadLastAsync(db, 7166031002, cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        });
        var heads = scope.ServiceProvider.GetRequiredService<ISignInLogHeadStore>();
        var head = await heads.ReadAsync(cancellationToken) ?? string.Empty;
        var headWrite = await Time("batch's head write (the head store)", 256, rowsPerBatch, async _ =>
            await heads.WriteAsync(head, cancellationToken));
        var perBatch = (int)Math.Clamp(Math.Round(rowsPerBatch), 1, SignInLogWriter.MaxBatch);
        var efCost = await Time(string.Create(c, $"insert, EF Core AddRange + SaveChanges, {perBatch} rows (rolled back)"), Rows / perBatch, perBatch, async i =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            db.SignIns.AddRange(rows.GetRange(i * perBatch, perBatch));
            await db.SaveChangesAsync(cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
            db.ChangeTracker.Clear();
        });
        var copy = await Time(string.Create(c, $"insert, SignInRowWriter (COPY on PostgreSQL), {perBatch} rows (rolled back)"), Rows / perBatch, perBatch, async i =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await SignInRowWriter.InsertAsync(db, rows.GetRange(i * perBatch, perBatch), cancellationToken);
            await transaction.RollbackAsync(cancellationToken);
        });
        var common = prepare + hash + seal + headWrite;
        text.AppendLine(c, $"  {"sum, the path before (scope, EF Core lock, last row and insert)",-62} {common + scopeCost + transactionCost + lockCost + lastRow + efCost,14:F4}");
        text.AppendLine(c, $"  {"sum, the path now (no scope, one command, SignInRowWriter)",-62} {common + combined + copy,14:F4}");
        return text.ToString();
    }

    private static SignInEntry Entry(Guid tenant, int i) => new()
    {
        TenantId = tenant,
        CorrelationId = string.Create(CultureInfo.InvariantCulture, $"loadgen-{i}"),
        Protocol = "web_account",
        Succeeded = i % 2 == 0,
        Reason = "loadgen: a row of the sign-in log benchmark",
        UserPrincipalName = "loadgen@gatehouse.test",
        HostName = "vm1",
        ClientAddress = "127.0.0.1",
        Methods = ["pwd"],
    };

    private static async Task<Guid> DefaultTenantAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var tenant = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindTenantAsync("common", cancellationToken);
        return tenant?.Id ?? throw new InvalidOperationException("the first-run bootstrap created no tenant");
    }

    // As the gateway and the sign-in pages append: straight to the node's writer (a singleton), no scope per row.
    private static Task<SignInRecord> AppendAsync(IServiceProvider services, Guid tenant, int i, CancellationToken cancellationToken) =>
        services.GetRequiredService<SignInLogWriter>().AppendAsync(Entry(tenant, i), cancellationToken);
}
