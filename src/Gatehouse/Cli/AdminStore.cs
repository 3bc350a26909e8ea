using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;

namespace Gatehouse.Cli;

/// <summary>Where an admin command finds the store: <c>--data DIR</c> (SQLite) or <c>--store CONNECTION</c> (PostgreSQL).</summary>
internal sealed record AdminStoreLocation(string DataDirectory, string? PostgresConnection)
{
    /// <summary>The SQLite database file under the data directory (the path <c>gatehouse serve</c> uses).</summary>
    public string DatabasePath => Path.Combine(DataDirectory, PrivateDataDirectory.DatabaseFileName);

    /// <summary>
    /// Where the server's key-encryption key is (<c>Gatehouse__KeyRing__KeyFile</c>/<c>Gatehouse__KeyRing__Key</c> from the
    /// environment, as for <c>gatehouse serve</c>); by default <c>keyring.kek</c> in the data directory.
    /// </summary>
    public KeyRingOptions KeyRing { get; init; } = new();

    /// <summary>Whether a missing key file may be created (only when nothing in the key ring is encrypted yet).</summary>
    public bool CreateKeyFile { get; init; }

    /// <summary>The location of <paramref name="data"/> (default ./data) or <paramref name="postgres"/>, with the key ring settings of <paramref name="environment"/>.</summary>
    public static AdminStoreLocation From(string? data, string? postgres, CliEnvironment environment) =>
        new(Path.GetFullPath(data ?? GatehouseOptions.DefaultDataDirectory), postgres)
        {
            KeyRing = new KeyRingOptions { KeyFile = environment.Variable("Gatehouse__KeyRing__KeyFile"), Key = environment.Variable("Gatehouse__KeyRing__Key") },
        };

    /// <summary>The store options, built exactly as <c>GatehouseHost</c> builds them.</summary>
    public StoreOptions ToStoreOptions() => string.IsNullOrWhiteSpace(PostgresConnection)
        ? new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = $"Data Source={DatabasePath}", MigrateOnStartup = false }
        : new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = PostgresConnection, MigrateOnStartup = false };
}

/// <summary>
/// The server's store opened by an admin command on the server's machine: the same database, the same Data Protection
/// key ring (application name "Gatehouse"; keys in <c>DATA/keys</c> for SQLite, in the database for PostgreSQL) opened
/// with the server's key-encryption key, so secrets the CLI encrypts are readable by the server and the other way
/// round. Pending migrations are applied on open. An admin command never creates a key file (unless told to) and never
/// rewrites the key ring: files it wrote as another user could lock the server out.
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
                PrivateDataDirectory.Prepare(location.DataDirectory);
                PrivateDataDirectory.CreateDatabase(location.DatabasePath);
            }
            else if (!File.Exists(location.DatabasePath))
            {
                throw new CliException($"There is no Gatehouse store at {location.DatabasePath}: pass the server's data directory with --data DIR (or its PostgreSQL store with --store), or run 'gatehouse serve --data {location.DataDirectory}' once first (it creates the tenant).");
            }
        }

        KeyRingSettings keyRing;
        try
        {
            keyRing = location.KeyRing.ToSettings(location.DataDirectory, create || location.CreateKeyFile);
        }
        catch (StartupException e)
        {
            throw new CliException(e.Message.Replace("Gatehouse:KeyRing:", "Gatehouse__KeyRing__", StringComparison.Ordinal), e);
        }

        var collection = new ServiceCollection();
        collection.AddSingleton(time);
        collection.AddGatehouseStore(store);
        collection.AddGatehouseIdentity(new GatehouseIdentityOptions());
        collection.AddDataProtection().SetApplicationName("Gatehouse").UseGatehouseKeyRing(
            keyRing,
            store.Provider == StoreProvider.Sqlite ? Path.Combine(location.DataDirectory, PrivateDataDirectory.KeysFolderName) : null);

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

        try
        {
            // Fails closed before any secret is read or written: a missing or wrong key file is an error, not a new key ring.
            services.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: false);
        }
        catch (KeyRingException e)
        {
            await services.DisposeAsync().ConfigureAwait(false);
            throw new CliException(e.Message, e);
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
