using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;

namespace Gatehouse.Cli;

/// <summary>Where an admin command finds the store: <c>--data DIR</c> (SQLite) or <c>--store CONNECTION</c> (PostgreSQL).</summary>
internal sealed record AdminStoreLocation(string DataDirectory, string? PostgresConnection)
{
    /// <summary>The SQLite database file under the data directory (the path <c>gatehouse serve</c> uses).</summary>
    public string DatabasePath => Path.Combine(DataDirectory, "gatehouse.db");

    /// <summary>The store options, built exactly as <c>GatehouseHost</c> builds them.</summary>
    public StoreOptions ToStoreOptions() => string.IsNullOrWhiteSpace(PostgresConnection)
        ? new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = $"Data Source={DatabasePath}", MigrateOnStartup = false }
        : new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = PostgresConnection, MigrateOnStartup = false };
}

/// <summary>
/// The server's store opened by an admin command on the server's machine: the same database, the same Data Protection
/// key ring (application name "Gatehouse"; keys in <c>DATA/keys</c> for SQLite, in the database for PostgreSQL), so
/// secrets the CLI encrypts are readable by the server and the other way round. Pending migrations are applied on open.
/// </summary>
internal sealed class AdminStore : IAsyncDisposable
{
    private readonly ServiceProvider services;

    private AdminStore(ServiceProvider services, AsyncServiceScope scope, Tenant? tenant)
    {
        this.services = services;
        Scope = scope;
        Tenant = tenant;
    }

    /// <summary>The command's scope (one context for the whole command).</summary>
    public AsyncServiceScope Scope { get; }

    /// <summary>The tenant the command works on (the first tenant, as <c>common</c> resolves it).</summary>
    public Tenant TenantOrThrow => Tenant ?? throw new CliException(NoTenantMessage);

    /// <summary>The tenant, or null when the store has none yet.</summary>
    public Tenant? Tenant { get; }

    /// <summary>The sentence for a store without a tenant.</summary>
    public const string NoTenantMessage = "This store has no tenant yet: run 'gatehouse serve' once first (it creates the tenant and prints the administrator's temporary password).";

    /// <summary>A service of the command's scope.</summary>
    public T Get<T>()
        where T : notnull => Scope.ServiceProvider.GetRequiredService<T>();

    /// <summary>A fresh scope (its own context), for work that must not share the command's context.</summary>
    public AsyncServiceScope NewScope() => services.CreateAsyncScope();

    /// <summary>
    /// Opens the store at <paramref name="location"/>. Without <paramref name="create"/>, a SQLite data directory without
    /// a database is refused (rather than creating an empty one next to the real one by mistake).
    /// </summary>
    public static async Task<AdminStore> OpenAsync(AdminStoreLocation location, TimeProvider time, bool create, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(time);
        var store = location.ToStoreOptions();
        if (store.Provider == StoreProvider.Sqlite)
        {
            if (create)
            {
                Directory.CreateDirectory(location.DataDirectory);
            }
            else if (!File.Exists(location.DatabasePath))
            {
                throw new CliException($"There is no Gatehouse store at {location.DatabasePath}: pass the server's data directory with --data DIR (or its PostgreSQL store with --store), or run 'gatehouse serve --data {location.DataDirectory}' once first (it creates the tenant).");
            }
        }

        var collection = new ServiceCollection();
        collection.AddSingleton(time);
        collection.AddGatehouseStore(store);
        collection.AddGatehouseIdentity(new GatehouseIdentityOptions());
        var dataProtection = collection.AddDataProtection().SetApplicationName("Gatehouse");
        if (store.Provider == StoreProvider.Sqlite)
        {
            dataProtection.PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(location.DataDirectory, "keys")));
        }
        else
        {
            dataProtection.PersistKeysToGatehouseStore();
        }

        var services = collection.BuildServiceProvider();
        try
        {
            await services.MigrateGatehouseStoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await services.DisposeAsync().ConfigureAwait(false);
            throw new CliException($"Cannot open the store ({store.Provider}): {e.GetBaseException().Message}. Check --data or --store.", e);
        }

        var scope = services.CreateAsyncScope();
        var tenant = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindTenantAsync(DirectoryService.CommonTenant, cancellationToken).ConfigureAwait(false);
        return new AdminStore(services, scope, tenant);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await Scope.DisposeAsync().ConfigureAwait(false);
        await services.DisposeAsync().ConfigureAwait(false);
    }
}
