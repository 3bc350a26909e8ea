using System.Data;
using System.Data.Common;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Gatehouse.Storage;

/// <summary>
/// How a node waits for its database at startup: it retries with a doubling delay, logging one line per attempt, and
/// gives up with one message once <see cref="WaitLimit"/> has passed.
/// </summary>
public sealed class StoreStartupOptions
{
    /// <summary>The delay after the first failed attempt (doubled after each further one).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay between two attempts.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a node waits for the database in all before it gives up; zero gives up at the first failure.</summary>
    public TimeSpan WaitLimit { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>The database did not answer within <see cref="StoreStartupOptions.WaitLimit"/> while the node started.</summary>
public sealed class StoreUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StoreUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public StoreUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the last failure.</summary>
    public StoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Startup work on a store that several nodes share: migrations and first-run setup run one node at a time (a PostgreSQL
/// session advisory lock; on SQLite the database file's own lock serialises writers), and a node started while the
/// database does not answer waits and retries instead of exiting.
/// </summary>
public static partial class StoreStartup
{
    /// <summary>The key of the PostgreSQL advisory lock held around migrations and first-run setup ("Gatehous" in ASCII).</summary>
    public const long AdvisoryLockKey = 5143520228326471027;

    /// <summary>
    /// Runs <paramref name="work"/> once the database answers, holding the startup lock (PostgreSQL) so that no other
    /// node runs its startup work at the same time. While the database does not answer (<see cref="IsUnavailable"/>),
    /// the whole step is retried after a delay that doubles from <see cref="StoreStartupOptions.RetryDelay"/>; after
    /// <see cref="StoreStartupOptions.WaitLimit"/> it throws <see cref="StoreUnavailableException"/>. Other failures
    /// propagate at once.
    /// </summary>
    /// <param name="services">The root provider (a scope is created per attempt).</param>
    /// <param name="step">What is being done, for the log (e.g. "migrations").</param>
    /// <param name="work">The work, given a fresh scope; it must be idempotent (it may run again after a failure).</param>
    /// <param name="cancellationToken">Stops the waiting.</param>
    public static async Task RunExclusiveAsync(
        this IServiceProvider services, string step, Func<IServiceProvider, CancellationToken, Task> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(work);
        var store = services.GetRequiredService<StoreOptions>();
        var retry = store.Startup;
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger("Gatehouse.Storage") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        var started = time.GetTimestamp();
        var delay = retry.RetryDelay > TimeSpan.Zero ? retry.RetryDelay : TimeSpan.FromSeconds(1);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await RunLockedAsync(services, store, work, cancellationToken).ConfigureAwait(false);
                if (attempt > 1)
                {
                    LogDatabaseAnswered(logger, step, attempt);
                }

                return;
            }
            catch (Exception e) when (IsUnavailable(e) && !cancellationToken.IsCancellationRequested)
            {
                var waited = time.GetElapsedTime(started);
                if (waited + delay > retry.WaitLimit)
                {
                    throw new StoreUnavailableException(
                        $"The database did not answer for {Seconds(waited)} s ({attempt} attempts; last: {Describe(e)}); giving up on {step} after Gatehouse:Database:StartupWaitLimit ({retry.WaitLimit}). Check that the database is running and reachable, then start again.",
                        e);
                }

                LogDatabaseNotAnswering(logger, step, attempt, Describe(e), Seconds(delay));
                await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
                var max = retry.MaxRetryDelay > TimeSpan.Zero ? retry.MaxRetryDelay : delay;
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Math.Max(max.Ticks, delay.Ticks)));
            }
        }
    }

    /// <summary>
    /// True when <paramref name="exception"/> (or one it wraps) says the database did not answer or is briefly unable to
    /// (connection refused or lost, a timeout, PostgreSQL starting up or shutting down, a busy SQLite file), as opposed
    /// to a bug or a constraint: worth a retry, and a 503 to a client.
    /// </summary>
    public static bool IsUnavailable(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg:
                    // Class 08 connection exception, 53 insufficient resources, 57P01-57P03 shutdown and "cannot connect now".
                    return pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                        || pg.SqlState.StartsWith("53", StringComparison.Ordinal)
                        || pg.SqlState is "57P01" or "57P02" or "57P03";
                case NpgsqlException npgsql when npgsql.IsTransient:
                    return true;
                case SqliteException sqlite when sqlite.SqliteErrorCode is 5 or 6: // SQLITE_BUSY, SQLITE_LOCKED
                    return true;
                case SocketException or TimeoutException:
                    return true;
            }
        }

        return false;
    }

    /// <summary>One line saying why the database did not answer (the innermost message, no stack trace).</summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var inner = exception;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        var message = inner == exception ? exception.Message : $"{exception.Message} ({inner.Message})";
        return message.ReplaceLineEndings(" ");
    }

    /// <summary>
    /// Counts one attempt for <paramref name="key"/> at <paramref name="now"/> and returns the attempts counted in its
    /// window so far, this one included. A window starts with the first attempt after the previous one ended and lasts
    /// <paramref name="window"/>. One statement (an upsert with <c>RETURNING</c>), so concurrent callers on any number of
    /// nodes each get a distinct count; an attempt stamped before the window's start (a node whose clock is behind)
    /// counts in the running window.
    /// </summary>
    public static int CountAttempt(GatehouseDbContext db, string key, DateTimeOffset now, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(db);
        var opened = false;
        if (db.Database.GetDbConnection().State != ConnectionState.Open)
        {
            db.Database.OpenConnection();
            opened = true;
        }

        using var command = CreateCountCommand(db, key, now, window);
        try
        {
            return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        finally
        {
            if (opened)
            {
                db.Database.CloseConnection();
            }
        }
    }

    /// <summary>Asynchronous <see cref="CountAttempt"/>.</summary>
    public static async Task<int> CountAttemptAsync(GatehouseDbContext db, string key, DateTimeOffset now, TimeSpan window, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        var opened = false;
        if (db.Database.GetDbConnection().State != ConnectionState.Open)
        {
            await db.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            opened = true;
        }

        var command = CreateCountCommand(db, key, now, window);
        await using (command.ConfigureAwait(false))
        {
            try
            {
                return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            }
            finally
            {
                if (opened)
                {
                    await db.Database.CloseConnectionAsync().ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Takes back one attempt <see cref="CountAttempt"/> counted for <paramref name="key"/>, when its window (of length
    /// <paramref name="window"/>) is still running at <paramref name="now"/> and holds any; one statement.
    /// </summary>
    public static int UncountAttempt(GatehouseDbContext db, string key, DateTimeOffset now, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Length > AttemptCounter.KeyLength)
        {
            key = key[..AttemptCounter.KeyLength];
        }

        var start = (now - window).ToUnixTimeMilliseconds();
        return db.AttemptCounters.Where(c => c.Key == key && c.Count > 0 && c.Window > start)
            .ExecuteUpdate(s => s.SetProperty(c => c.Count, c => c.Count - 1));
    }

    /// <summary>
    /// Deletes the counters whose window (of length <paramref name="window"/>) ended before <paramref name="now"/>;
    /// with <paramref name="keyPrefix"/>, only those whose key starts with it (each kind of counter has its own window).
    /// </summary>
    public static Task<int> PurgeAttemptCountersAsync(GatehouseDbContext db, DateTimeOffset now, TimeSpan window, string? keyPrefix = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(db);
        var ended = (now - window).ToUnixTimeMilliseconds();
        var counters = db.AttemptCounters.Where(c => c.Window <= ended);
        if (!string.IsNullOrEmpty(keyPrefix))
        {
            counters = counters.Where(c => c.Key.StartsWith(keyPrefix));
        }

        return counters.ExecuteDeleteAsync(cancellationToken);
    }

    private static DbCommand CreateCountCommand(GatehouseDbContext db, string key, DateTimeOffset now, TimeSpan window)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Length > AttemptCounter.KeyLength)
        {
            key = key[..AttemptCounter.KeyLength];
        }

        var command = db.Database.GetDbConnection().CreateCommand();
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();

        // The same statement on SQLite (3.35+) and PostgreSQL.
        command.CommandText = """
            INSERT INTO "AttemptCounters" ("Key", "Window", "Count") VALUES (@key, @now, 1)
            ON CONFLICT ("Key") DO UPDATE SET
                "Count" = CASE WHEN excluded."Window" - "AttemptCounters"."Window" < @length THEN "AttemptCounters"."Count" + 1 ELSE 1 END,
                "Window" = CASE WHEN excluded."Window" - "AttemptCounters"."Window" < @length THEN "AttemptCounters"."Window" ELSE excluded."Window" END
            RETURNING "Count"
            """;
        var keyParameter = command.CreateParameter();
        keyParameter.ParameterName = "key";
        keyParameter.Value = key;
        command.Parameters.Add(keyParameter);
        var nowParameter = command.CreateParameter();
        nowParameter.ParameterName = "now";
        nowParameter.Value = now.ToUnixTimeMilliseconds();
        command.Parameters.Add(nowParameter);
        var lengthParameter = command.CreateParameter();
        lengthParameter.ParameterName = "length";
        lengthParameter.Value = Math.Max(1L, (long)window.TotalMilliseconds);
        command.Parameters.Add(lengthParameter);
        return command;
    }

    private static async Task RunLockedAsync(IServiceProvider services, StoreOptions store, Func<IServiceProvider, CancellationToken, Task> work, CancellationToken cancellationToken)
    {
        if (store.Provider != StoreProvider.Postgres)
        {
            await using var sqliteScope = services.CreateAsyncScope();
            await work(sqliteScope.ServiceProvider, cancellationToken).ConfigureAwait(false);
            return;
        }

        // A connection of its own, outside the pool: a session lock lives as long as its session, and a pooled
        // connection's session outlives Close. Whatever happens, closing this connection ends the session and the lock.
        var builder = new NpgsqlConnectionStringBuilder(store.ConnectionString) { Pooling = false, Enlist = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteLockCommandAsync(connection, "SELECT pg_advisory_lock(@key)", cancellationToken).ConfigureAwait(false);
            try
            {
                await using var scope = services.CreateAsyncScope();
                await work(scope.ServiceProvider, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (connection.State == ConnectionState.Open)
                {
                    try
                    {
                        await ExecuteLockCommandAsync(connection, "SELECT pg_advisory_unlock(@key)", CancellationToken.None).ConfigureAwait(false);
                    }
                    catch (NpgsqlException)
                    {
                        // The session is gone, and its lock with it.
                    }
                }
            }
        }
    }

    private static async Task ExecuteLockCommandAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.AddWithValue("key", AdvisoryLockKey);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);

    [LoggerMessage(StoreEventIds.DatabaseNotAnswering, LogLevel.Warning, "The database is not answering ({Step}, attempt {Attempt}): {Reason}. Trying again in {Delay} s.")]
    private static partial void LogDatabaseNotAnswering(ILogger logger, string step, int attempt, string reason, string delay);

    [LoggerMessage(StoreEventIds.DatabaseAnswered, LogLevel.Information, "The database answered ({Step}, attempt {Attempt}).")]
    private static partial void LogDatabaseAnswered(ILogger logger, string step, int attempt);
}

/// <summary>The logging event ids of the store library (13xx; unique across the product).</summary>
internal static class StoreEventIds
{
    public const int DatabaseNotAnswering = 1301;
    public const int DatabaseAnswered = 1302;
}
