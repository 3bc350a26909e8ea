using System.Security.Cryptography;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Gatehouse.Identity.Tests.Support;

/// <summary>
/// One database per provider per test class: a temporary SQLite file and a PostgreSQL database with a random name, both
/// migrated on first use and deleted/dropped when the class finishes.
/// </summary>
public sealed class StoreFixture : IAsyncLifetime, IDisposable
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly Dictionary<StoreProvider, StoreOptions> stores = [];
    private string? sqlitePath;
    private string? postgresDatabase;

    /// <summary>One key for the whole class, so rows protected in one test can be read in the next.</summary>
    public IDataProtectionProvider DataProtection { get; } = new Microsoft.AspNetCore.DataProtection.EphemeralDataProtectionProvider();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task<StoreOptions> GetAsync(StoreProvider provider)
    {
        await gate.WaitAsync();
        try
        {
            if (stores.TryGetValue(provider, out var existing))
            {
                return existing;
            }

            var options = provider == StoreProvider.Sqlite ? CreateSqlite() : await CreatePostgresAsync();
            await using (var db = options.CreateContext())
            {
                await db.Database.MigrateAsync();
            }

            stores[provider] = options;
            return options;
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task<TestEnv> CreateEnvAsync(StoreProvider provider, Action<IServiceCollection>? configure = null)
    {
        var options = await GetAsync(provider);
        return new TestEnv(options, DataProtection, configure);
    }

    public async Task DisposeAsync()
    {
        if (sqlitePath is not null)
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-wal", "-shm" })
            {
                File.Delete(sqlitePath + suffix);
            }
        }

        if (postgresDatabase is not null && Peers.PostgresConnectionString is { } baseConnection)
        {
            NpgsqlConnection.ClearAllPools();

            // A background process of the server (owned by its superuser) may hold the database for a moment; the
            // database lives in a throwaway cluster, so a drop that still fails after a few tries is reported, not fatal.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(baseConnection);
                    await connection.OpenAsync();
                    await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{postgresDatabase}\" WITH (FORCE)", connection);
                    await command.ExecuteNonQueryAsync();
                    break;
                }
                catch (PostgresException e) when (attempt < 5)
                {
                    await Console.Error.WriteLineAsync($"Dropping test database {postgresDatabase} failed ({e.SqlState}); retrying.");
                    await Task.Delay(200 * attempt);
                }
                catch (PostgresException e)
                {
                    await Console.Error.WriteLineAsync($"Test database {postgresDatabase} was left behind: {e.MessageText}");
                    break;
                }
            }
        }

        Dispose();
    }

    public void Dispose() => gate.Dispose();

    private StoreOptions CreateSqlite()
    {
        sqlitePath = Path.Combine(Path.GetTempPath(), $"gatehouse-test-{Guid.NewGuid():N}.db");
        return new StoreOptions
        {
            Provider = StoreProvider.Sqlite,
            ConnectionString = new SqliteConnectionStringBuilder { DataSource = sqlitePath, DefaultTimeout = 30 }.ToString(),
            MigrateOnStartup = false,
        };
    }

    private async Task<StoreOptions> CreatePostgresAsync()
    {
        var baseConnection = Peers.PostgresConnectionString ?? throw new InvalidOperationException(Peers.MissingPostgres);
        postgresDatabase = "gatehouse_test_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        await using (var connection = new NpgsqlConnection(baseConnection))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{postgresDatabase}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new StoreOptions
        {
            Provider = StoreProvider.Postgres,
            ConnectionString = new NpgsqlConnectionStringBuilder(baseConnection) { Database = postgresDatabase }.ToString(),
            MigrateOnStartup = false,
        };
    }
}

/// <summary>A service provider over one store with a fake clock and the fixture's ephemeral Data Protection key.</summary>
public sealed class TestEnv : IAsyncDisposable
{
    private readonly ServiceProvider services;

    public TestEnv(StoreOptions store, IDataProtectionProvider dataProtection, Action<IServiceCollection>? configure)
    {
        Store = store;
        var collection = new ServiceCollection();
        collection.AddSingleton<TimeProvider>(Time);
        collection.AddGatehouseStore(store);
        collection.AddSingleton(new PasswordHasher());
        collection.AddGatehouseIdentity(Options);
        collection.AddSingleton(dataProtection);
        configure?.Invoke(collection);
        services = collection.BuildServiceProvider();
        Scope = services.CreateAsyncScope();
    }

    public StoreOptions Store { get; }

    public FakeTime Time { get; } = new();

    public GatehouseIdentityOptions Options { get; } = new() { PublicName = "login.test" };

    public AsyncServiceScope Scope { get; }

    public IServiceProvider Root => services;

    public T Get<T>()
        where T : notnull => Scope.ServiceProvider.GetRequiredService<T>();

    public AsyncServiceScope NewScope() => services.CreateAsyncScope();

    public async ValueTask DisposeAsync()
    {
        await Scope.DisposeAsync();
        await services.DisposeAsync();
    }
}
