using System.Diagnostics;
using System.Globalization;
using Gatehouse.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen;

/// <summary>What <c>signin-log</c> runs: rows in all, writers (appenders) per node, nodes, the PostgreSQL store.</summary>
internal sealed record SignInLogSettings(int Rows, int Concurrency, int Nodes, string Store);

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
            var batches = nodes.Sum(n => n.App.Services.GetRequiredService<SignInLogWriter>().Batches) - batchesBefore;

            progress("verifying the chain");
            await using var scope = nodes[^1].App.Services.CreateAsyncScope();
            var verification = await scope.ServiceProvider.GetRequiredService<SignInLogService>().VerifyAsync(cancellationToken);
            var c = CultureInfo.InvariantCulture;
            return string.Create(c, $"""
                Gatehouse sign-in log: {settings.Nodes} node(s) on one PostgreSQL, {settings.Concurrency} appenders per node, {Environment.ProcessorCount} logical CPUs, {Machine.Describe().Runtime}
                rows appended: {settings.Rows} in {seconds:F2} s = {settings.Rows / seconds:F0} rows/s ({batches} batches, {(double)settings.Rows / Math.Max(1, batches):F1} rows per batch); this process's CPU {cpu.TotalMilliseconds / settings.Rows:F3} ms per row
                chain: {verification.Rows} rows, {(verification.Intact ? "intact" : "BROKEN: " + string.Join("; ", verification.Problems.Take(5)))}

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

    private static async Task<Guid> DefaultTenantAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var tenant = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindTenantAsync("common", cancellationToken);
        return tenant?.Id ?? throw new InvalidOperationException("the first-run bootstrap created no tenant");
    }

    private static async Task AppendAsync(IServiceProvider services, Guid tenant, int i, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<SignInLogService>().AppendAsync(new SignInEntry
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
        }, cancellationToken);
    }
}
