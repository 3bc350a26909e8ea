using Npgsql;

namespace Gatehouse.Storage;

/// <summary>
/// The store's pooled <see cref="NpgsqlDataSource"/> (PostgreSQL only; a singleton built once from the store's
/// connection string), for the raw commands of fast paths that need a connection and nothing else: no scoped
/// <see cref="GatehouseDbContext"/>, no EF Core services. The token endpoint's code redemption is one.
/// </summary>
public sealed class StoreDataSource : IDisposable, IAsyncDisposable
{
    /// <summary>Builds the data source when <paramref name="options"/> is PostgreSQL (<see cref="DataSource"/> stays null for SQLite).</summary>
    public StoreDataSource(StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Provider == StoreProvider.Postgres)
        {
            ConnectionString = StoreOptions.WithPostgresDefaults(options.ConnectionString);
            DataSource = NpgsqlDataSource.Create(ConnectionString);
        }
    }

    /// <summary>The data source, or null when the store is not PostgreSQL.</summary>
    public NpgsqlDataSource? DataSource { get; }

    /// <summary>
    /// The connection string the store's contexts are configured with (what <c>db.Database.GetConnectionString()</c>
    /// returns for them), or null when the store is not PostgreSQL: what per-store caches are keyed by.
    /// </summary>
    public string? ConnectionString { get; }

    /// <inheritdoc/>
    public void Dispose() => DataSource?.Dispose();

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => DataSource?.DisposeAsync() ?? ValueTask.CompletedTask;
}
