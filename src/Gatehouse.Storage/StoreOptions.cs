using System.Xml.Linq;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Storage;

/// <summary>Which database the store uses.</summary>
public enum StoreProvider
{
    /// <summary>SQLite (single node; the default).</summary>
    Sqlite = 0,

    /// <summary>PostgreSQL (several nodes).</summary>
    Postgres = 1,
}

/// <summary>Store configuration.</summary>
public sealed class StoreOptions
{
    /// <summary>Provider.</summary>
    public StoreProvider Provider { get; set; }

    /// <summary>ADO.NET connection string (SQLite <c>Data Source=…</c> or Npgsql).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Apply migrations when the host starts (default true).</summary>
    public bool MigrateOnStartup { get; set; } = true;

    /// <summary>How a starting node waits for the database (retries, delays, when to give up).</summary>
    public StoreStartupOptions Startup { get; set; } = new();

    /// <inheritdoc/>
    public override string ToString() => $"StoreOptions {Provider}";

    /// <summary>Configures <paramref name="builder"/> for this provider.</summary>
    public void Configure(DbContextOptionsBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.AddInterceptors(StoreTelemetry.Interceptor);

        // A failed command, query, connection or save is reported where it is handled: an expected collision between
        // nodes (a unique key or a concurrency token that another node won) is caught and is no error, a database that
        // does not answer is reported once by the caller (a 503, readiness, the startup wait), and anything else
        // propagates to a caller that logs it. EF Core's own Error entries, each with a stack trace, would report all
        // of them as failures, several times over.
        builder.ConfigureWarnings(w => w.Log(
            (CoreEventId.SaveChangesFailed, LogLevel.Debug),
            (CoreEventId.OptimisticConcurrencyException, LogLevel.Debug),
            (RelationalEventId.CommandError, LogLevel.Debug),
            (RelationalEventId.ConnectionError, LogLevel.Debug),
            (CoreEventId.QueryIterationFailed, LogLevel.Debug)));
        if (Provider == StoreProvider.Postgres)
        {
            builder.UseNpgsql(WithPostgresDefaults(ConnectionString), o => o.MigrationsAssembly(typeof(StoreOptions).Assembly.GetName().Name));
        }
        else
        {
            builder.UseSqlite(ConnectionString, o => o.MigrationsAssembly(typeof(StoreOptions).Assembly.GetName().Name));
        }
    }

    /// <summary>The most statements Npgsql prepares per connection unless the connection string says otherwise.</summary>
    public const int DefaultMaxAutoPrepare = 64;

    /// <summary>
    /// <paramref name="connectionString"/> with Gatehouse's defaults where it says nothing: <c>Max Auto Prepare</c>
    /// (<see cref="DefaultMaxAutoPrepare"/>), so the statements every request repeats are parsed and planned once per
    /// connection instead of on every execution (the database's CPU per token request is mostly parsing and planning).
    /// Write <c>Max Auto Prepare=0</c> to turn it off (a pooler in transaction mode that does not keep prepared
    /// statements).
    /// </summary>
    public static string WithPostgresDefaults(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (!given.Keys.Cast<string>().Any(k => string.Equals(k.Replace(" ", string.Empty, StringComparison.Ordinal), "MaxAutoPrepare", StringComparison.OrdinalIgnoreCase)))
        {
            builder.MaxAutoPrepare = DefaultMaxAutoPrepare;
        }

        return builder.ConnectionString;
    }

    /// <summary>Creates a context for this provider (outside dependency injection: tools and tests).</summary>
    public GatehouseDbContext CreateContext()
    {
        if (Provider == StoreProvider.Postgres)
        {
            var b = new DbContextOptionsBuilder<PostgresGatehouseDbContext>();
            Configure(b);
            return new PostgresGatehouseDbContext(b.Options);
        }

        var s = new DbContextOptionsBuilder<SqliteGatehouseDbContext>();
        Configure(s);
        return new SqliteGatehouseDbContext(s.Options);
    }
}

/// <summary>Registration of the store.</summary>
public static class StoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="GatehouseDbContext"/> (scoped, resolving to the provider's subclass), the options, and
    /// a hosted service that applies migrations at startup when <see cref="StoreOptions.MigrateOnStartup"/> is set.
    /// </summary>
    public static IServiceCollection AddGatehouseStore(this IServiceCollection services, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(options);
        services.AddSingleton(_ => new StoreDataSource(options)); // Built on first use, disposed with the container.

        // The context options are built once (a singleton), not for every scope: Configure depends on nothing of the
        // scope, and building them parsed the connection string and read the assembly's name on every request.
        if (options.Provider == StoreProvider.Postgres)
        {
            services.AddDbContext<PostgresGatehouseDbContext>(options.Configure, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
            services.AddScoped<GatehouseDbContext>(sp => sp.GetRequiredService<PostgresGatehouseDbContext>());
        }
        else
        {
            services.AddDbContext<SqliteGatehouseDbContext>(options.Configure, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
            services.AddScoped<GatehouseDbContext>(sp => sp.GetRequiredService<SqliteGatehouseDbContext>());
        }

        if (options.MigrateOnStartup)
        {
            services.AddHostedService<StoreMigrationService>();
        }

        return services;
    }

    /// <summary>
    /// Applies pending migrations once the database answers, one node at a time (<see cref="StoreStartup.RunExclusiveAsync"/>):
    /// nodes started together on an empty PostgreSQL database do not race to create the same tables. What needs no
    /// database (building the model, reading the migrations from the assembly, comparing the model with the last
    /// migration's snapshot, as the migrator does) is done first, outside the lock: nodes started together do that
    /// CPU-bound part side by side, and the lock is held only for the database's part (PostgreSQL only).
    /// </summary>
    public static async Task MigrateGatehouseStoreAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(services);

        // Only where a lock is shared (SQLite has one node): elsewhere the migrator's own check would just run twice.
        if (services.GetRequiredService<StoreOptions>().Provider == StoreProvider.Postgres)
        {
            await using var scope = services.CreateAsyncScope();
            var database = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Database;
            _ = database.GetMigrations().Count();
            _ = database.HasPendingModelChanges();
        }

        await services.RunExclusiveAsync("migrations", (scope, ct) => scope.GetRequiredService<GatehouseDbContext>().Database.MigrateAsync(ct), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stores the Data Protection key ring in the <c>DataProtectionKeys</c> table (shared by every node).</summary>
    public static IDataProtectionBuilder PersistKeysToGatehouseStore(this IDataProtectionBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>>(sp =>
            new ConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>(o =>
                o.XmlRepository = new DbXmlRepository(sp.GetRequiredService<IServiceScopeFactory>())));
        return builder;
    }

    /// <summary>
    /// Keeps the Data Protection key ring encrypted at rest with a key-encryption key that is not in the store
    /// (<see cref="KeyRingKeySource"/>): in <paramref name="keyDirectory"/> as private files (one node with SQLite), or
    /// in the <c>DataProtectionKeys</c> table when it is null (shared by every node on PostgreSQL).
    /// </summary>
    public static IDataProtectionBuilder UseGatehouseKeyRing(this IDataProtectionBuilder builder, KeyRingSettings settings, string? keyDirectory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        builder.Services.AddSingleton<IRewritableXmlRepository>(sp => keyDirectory is null
            ? new DbXmlRepository(sp.GetRequiredService<IServiceScopeFactory>())
            : new PrivateFileXmlRepository(keyDirectory));
        builder.Services.AddSingleton(sp => new KeyRingKeySource(settings, sp.GetRequiredService<IRewritableXmlRepository>()));
        builder.Services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>>(sp =>
            new ConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>(o =>
            {
                o.XmlRepository = sp.GetRequiredService<IRewritableXmlRepository>();
                o.XmlEncryptor = new AesGcmXmlEncryptor(sp.GetRequiredService<KeyRingKeySource>());
            }));
        return builder;
    }

    private sealed class StoreMigrationService(IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => services.MigrateGatehouseStoreAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>An <see cref="IXmlRepository"/> over the <c>DataProtectionKeys</c> table.</summary>
public sealed class DbXmlRepository : IRewritableXmlRepository
{
    private readonly IServiceScopeFactory scopes;

    /// <summary>Creates the repository; each call uses a fresh scope (and context).</summary>
    public DbXmlRepository(IServiceScopeFactory scopes)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        this.scopes = scopes;
    }

    /// <inheritdoc/>
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        return db.DataProtectionKeys.AsNoTracking().OrderBy(k => k.Id).Select(k => k.Xml).ToList()
            .Select(x => XElement.Parse(x)).ToList();
    }

    /// <inheritdoc/>
    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        db.DataProtectionKeys.Add(new DataProtectionKey
        {
            FriendlyName = friendlyName,
            Xml = element.ToString(SaveOptions.DisableFormatting),
        });
        db.SaveChanges();
    }

    /// <inheritdoc/>
    /// <remarks>Every replacement is saved in one transaction: all of them or none.</remarks>
    public int RewriteElements(Func<XElement, XElement?> rewrite)
    {
        ArgumentNullException.ThrowIfNull(rewrite);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var count = 0;
        foreach (var row in db.DataProtectionKeys.OrderBy(k => k.Id).ToList())
        {
            if (rewrite(XElement.Parse(row.Xml)) is { } replacement)
            {
                row.Xml = replacement.ToString(SaveOptions.DisableFormatting);
                count++;
            }
        }

        db.SaveChanges();
        return count;
    }
}

/// <summary>Design-time factory for <c>dotnet ef</c> (SQLite migrations).</summary>
public sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteGatehouseDbContext>
{
    /// <inheritdoc/>
    public SqliteGatehouseDbContext CreateDbContext(string[] args) =>
        (SqliteGatehouseDbContext)new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = "Data Source=design.db" }.CreateContext();
}

/// <summary>Design-time factory for <c>dotnet ef</c> (PostgreSQL migrations; no connection is opened).</summary>
public sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresGatehouseDbContext>
{
    /// <inheritdoc/>
    public PostgresGatehouseDbContext CreateDbContext(string[] args) =>
        (PostgresGatehouseDbContext)new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = "Host=localhost;Database=gatehouse" }.CreateContext();
}
