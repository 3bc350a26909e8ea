using System.Collections.Concurrent;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// Issue 16: collisions between nodes that the code catches and handles (two revocations listing the same access token,
/// a unique key another node inserted first) are no failures: nothing is logged at Error with a stack trace, only EF
/// Core's own Debug entry.
/// </summary>
public sealed class CollisionLoggingTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private const string Cli = "9f96595f-4eb5-4226-bc18-5d7de55f5d00";

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task ConcurrentRevocations_ThatCollide_AreNotLoggedAsErrors(StoreProvider provider)
    {
        var logs = new LogCapture();
        await using var env = await fixture.CreateEnvAsync(provider, services => services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(logs)));
        var domain = $"t{Guid.NewGuid():N}.test";
        var directory = env.Get<DirectoryService>();
        var tenant = await directory.CreateTenantAsync("Contoso", domain);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, $"u{Guid.NewGuid():N}@{domain}", "User", "Correct-Horse-1", temporary: false);

        // Trials until two revocations really collided (PostgreSQL: nearly always the first; SQLite serialises writers).
        for (var trial = 0; trial < 5 && !logs.Collided; trial++)
        {
            var grantId = await env.Get<RefreshTokenService>().CreateGrantAsync(user.Id);
            var jwts = new List<string>();
            for (var i = 0; i < 10; i++)
            {
                jwts.Add(await env.Get<AdminTokenService>().IssueForGrantAsync(user, ["pwd"], Cli, grantId));
            }

            using var go = new ManualResetEventSlim();
            var revocations = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                go.Wait();
                await using var scope = env.NewScope();
                if (i % 2 == 0)
                {
                    await scope.ServiceProvider.GetRequiredService<RefreshTokenService>().RevokeGrantAsync(grantId, "test", env.Time.GetUtcNow());
                }
                else
                {
                    await scope.ServiceProvider.GetRequiredService<AdminTokenService>().RevokeAsync(jwts[0]);
                }
            })).ToList();
            go.Set();
            await Task.WhenAll(revocations);

            // Every token is listed once, whoever won.
            await using var check = env.NewScope();
            foreach (var jwt in jwts)
            {
                Assert.False((await check.ServiceProvider.GetRequiredService<AdminTokenService>().ValidateAsync(jwt)).IsValid);
            }
        }

        if (provider == StoreProvider.Postgres)
        {
            Assert.True(logs.Collided, "no two revocations collided in five trials");
        }

        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
    }

    private sealed class LogCapture : ILoggerProvider
    {
        private readonly ConcurrentQueue<(LogLevel Level, string Category, int EventId)> entries = new();

        public IReadOnlyList<(LogLevel Level, string Category, int EventId)> Entries => [.. entries];

        /// <summary>EF Core reported a failed save (event 10000, <c>SaveChangesFailed</c>): a collision was caught.</summary>
        public bool Collided => entries.Any(e => e.EventId == Microsoft.EntityFrameworkCore.Diagnostics.CoreEventId.SaveChangesFailed.Id);

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<(LogLevel, string, int)> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.Enqueue((logLevel, category, eventId.Id));
        }
    }
}
