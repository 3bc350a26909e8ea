using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Gatehouse.Storage;

/// <summary>
/// Inserts a batch of sign-in log rows inside the context's current transaction without EF Core's change tracking: on
/// PostgreSQL one binary <c>COPY … FROM STDIN</c>, on SQLite one prepared <c>INSERT</c> run once per row; other
/// providers go through <see cref="DbContext.SaveChangesAsync(CancellationToken)"/>. Values are stored exactly as EF
/// Core stores them (the same columns, the same conversions), so EF Core reads them back unchanged.
/// </summary>
public static class SignInRowWriter
{
    /// <summary>
    /// The properties of <see cref="SignInRecord"/> in the order they are written; every mapped property must be here
    /// (a test checks it), or a new column would be left at its default.
    /// </summary>
    public static IReadOnlyList<string> Properties { get; } =
    [
        nameof(SignInRecord.Sequence), nameof(SignInRecord.Id), nameof(SignInRecord.TenantId), nameof(SignInRecord.Time),
        nameof(SignInRecord.CorrelationId), nameof(SignInRecord.UserId), nameof(SignInRecord.UserPrincipalName),
        nameof(SignInRecord.Application), nameof(SignInRecord.HostName), nameof(SignInRecord.ClientAddress),
        nameof(SignInRecord.Protocol), nameof(SignInRecord.Methods), nameof(SignInRecord.Result), nameof(SignInRecord.Code),
        nameof(SignInRecord.UserMessage), nameof(SignInRecord.Reason), nameof(SignInRecord.Fix), nameof(SignInRecord.PoliciesJson),
        nameof(SignInRecord.RoleAssignmentId), nameof(SignInRecord.RoleName), nameof(SignInRecord.TargetAccount),
        nameof(SignInRecord.SessionId), nameof(SignInRecord.PreviousHash), nameof(SignInRecord.Hash),
    ];

    /// <summary>
    /// Inserts <paramref name="rows"/> (their sequence and hashes set) in this order, inside the transaction
    /// <paramref name="db"/> has begun (required, so the rows commit or roll back with the rest of the batch). A
    /// failure throws the provider's exception and leaves the transaction to be rolled back.
    /// </summary>
    public static async Task InsertAsync(GatehouseDbContext db, IReadOnlyList<SignInRecord> rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(rows);
        var transaction = db.Database.CurrentTransaction
            ?? throw new InvalidOperationException("sign-in log rows are inserted inside the batch's transaction; none has begun");
        if (rows.Count == 0)
        {
            return;
        }

        // These commands bypass EF Core's interceptor: the store's duration metric is recorded here, once per batch.
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var outcome = "error";
        try
        {
            switch (db)
            {
                case PostgresGatehouseDbContext:
                    await CopyAsync(db, rows, cancellationToken).ConfigureAwait(false);
                    break;
                case SqliteGatehouseDbContext:
                    await InsertEachAsync(db, transaction.GetDbTransaction(), rows, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    db.SignIns.AddRange(rows);
                    await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
                    db.ChangeTracker.Clear();
                    break;
            }

            outcome = "ok";
        }
        finally
        {
            StoreTelemetry.Duration.Record(
                System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds,
                new KeyValuePair<string, object?>("db.system", db is PostgresGatehouseDbContext ? "postgresql" : "sqlite"),
                new KeyValuePair<string, object?>("gatehouse.db.command", db is PostgresGatehouseDbContext ? "copy" : "non_query"),
                new KeyValuePair<string, object?>("gatehouse.db.outcome", outcome));
        }
    }

    /// <summary>
    /// The chain's last row (its sequence and hash), or null when the log is empty, read in one round trip inside the
    /// current transaction; on PostgreSQL the same command first takes the transaction-scoped advisory lock
    /// <paramref name="advisoryLock"/>, so the writers of several nodes take turns.
    /// </summary>
    public static async Task<(long Sequence, string Hash)?> LockAndReadLastAsync(GatehouseDbContext db, long advisoryLock, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        var transaction = db.Database.CurrentTransaction
            ?? throw new InvalidOperationException("the chain's last row is read inside the batch's transaction; none has begun");
        var mapping = Columns(db);
        var postgres = db is PostgresGatehouseDbContext;
        var command = db.Database.GetDbConnection().CreateCommand();
        await using (command.ConfigureAwait(false))
        {
            command.Transaction = transaction.GetDbTransaction();
            var sequence = Quote(mapping.Columns.Single(c => c.Property.Name == nameof(SignInRecord.Sequence)).Name);
            var hash = Quote(mapping.Columns.Single(c => c.Property.Name == nameof(SignInRecord.Hash)).Name);
            var last = $"SELECT {sequence}, {hash} FROM {mapping.Table} ORDER BY {sequence} DESC LIMIT 1";
            command.CommandText = postgres
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"SELECT pg_advisory_xact_lock({advisoryLock}); {last}")
                : last;
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (postgres)
                {
                    // The lock's own (empty) result comes first.
                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                }

                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? (reader.GetInt64(0), reader.GetString(1)) : null;
            }
        }
    }

    private static async Task CopyAsync(GatehouseDbContext db, IReadOnlyList<SignInRecord> rows, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        var (table, columns) = Columns(db);
        var importer = await connection.BeginBinaryImportAsync(
            $"COPY {table} ({string.Join(", ", columns.Select(c => Quote(c.Name)))}) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            foreach (var row in rows)
            {
                await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Sequence, NpgsqlDbType.Bigint, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.Id, NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
                await importer.WriteAsync(row.TenantId, NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
                // timestamptz takes UTC only (Npgsql refuses another offset); the context's converter does the same.
                await importer.WriteAsync(row.Time.ToUniversalTime(), NpgsqlDbType.TimestampTz, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.CorrelationId, cancellationToken).ConfigureAwait(false);
                await Uuid(importer, row.UserId, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.UserPrincipalName, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Application, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.HostName, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.ClientAddress, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Protocol, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Methods, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Result, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Code, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.UserMessage, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Reason, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Fix, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.PoliciesJson, cancellationToken).ConfigureAwait(false);
                await Uuid(importer, row.RoleAssignmentId, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.RoleName, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.TargetAccount, cancellationToken).ConfigureAwait(false);
                await Uuid(importer, row.SessionId, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.PreviousHash, cancellationToken).ConfigureAwait(false);
                await Text(importer, row.Hash, cancellationToken).ConfigureAwait(false);
            }

            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static Task Text(NpgsqlBinaryImporter importer, string? value, CancellationToken cancellationToken) =>
        value is null ? importer.WriteNullAsync(cancellationToken) : importer.WriteAsync(value, NpgsqlDbType.Varchar, cancellationToken);

    private static Task Uuid(NpgsqlBinaryImporter importer, Guid? value, CancellationToken cancellationToken) =>
        value is { } id ? importer.WriteAsync(id, NpgsqlDbType.Uuid, cancellationToken) : importer.WriteNullAsync(cancellationToken);

    private static async Task InsertEachAsync(GatehouseDbContext db, DbTransaction transaction, IReadOnlyList<SignInRecord> rows, CancellationToken cancellationToken)
    {
        var (table, columns) = Columns(db);
        var command = db.Database.GetDbConnection().CreateCommand();
        await using (command.ConfigureAwait(false))
        {
            command.Transaction = transaction;
            command.CommandText = $"INSERT INTO {table} ({string.Join(", ", columns.Select(c => Quote(c.Name)))}) VALUES ({string.Join(", ", columns.Select((_, i) => "@p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)))})";

            // One parameter per column, configured by the column's EF Core type mapping (SQLite keeps a Guid as
            // upper-case text and this store keeps a time as Unix milliseconds); each row sets only the values.
            var parameters = new DbParameter[columns.Count];
            for (var i = 0; i < columns.Count; i++)
            {
                parameters[i] = columns[i].Mapping.CreateParameter(command, "@p" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), columns[i].Property.GetGetter().GetClrValue(rows[0]), columns[i].Property.IsNullable);
                command.Parameters.Add(parameters[i]);
            }

            await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
            foreach (var row in rows)
            {
                for (var i = 0; i < columns.Count; i++)
                {
                    var value = columns[i].Property.GetGetter().GetClrValue(row);
                    if (value is not null && columns[i].Mapping.Converter is { } converter)
                    {
                        value = converter.ConvertToProvider(value);
                    }

                    parameters[i].Value = value ?? DBNull.Value;
                }

                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The quoted table and, in <see cref="Properties"/> order, each property's column and type mapping in this context's model.</summary>
    private static Mapping Columns(GatehouseDbContext db) => Mappings.GetValue(db.Model, Map);

    private static Mapping Map(IModel model)
    {
        var entity = model.FindEntityType(typeof(SignInRecord))
            ?? throw new InvalidOperationException("the store's model has no sign-in log");
        var table = entity.GetTableName() ?? throw new InvalidOperationException("the sign-in log is not mapped to a table");
        var identifier = StoreObjectIdentifier.Table(table, entity.GetSchema());
        var columns = Properties.Select(name =>
        {
            var property = entity.FindProperty(name) ?? throw new InvalidOperationException($"the sign-in log has no property {name}");
            return new Column(property.GetColumnName(identifier) ?? name, property, property.GetRelationalTypeMapping());
        }).ToList();
        return new Mapping(entity.GetSchema() is { } schema ? Quote(schema) + "." + Quote(table) : Quote(table), columns);
    }

    // A model is built once per context type: the columns are looked up once per model.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<IModel, Mapping> Mappings = new();

    private static string Quote(string identifier) => "\"" + identifier + "\"";

    private sealed record Mapping(string Table, IReadOnlyList<Column> Columns);

    private sealed record Column(string Name, IProperty Property, RelationalTypeMapping Mapping);
}
