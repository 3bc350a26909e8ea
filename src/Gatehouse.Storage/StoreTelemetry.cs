using System.Data.Common;
using System.Diagnostics.Metrics;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Gatehouse.Storage;

/// <summary>
/// Database latency on Gatehouse's meter: <c>gatehouse.db.duration</c> (seconds) for every command the store runs, by
/// provider, kind of command and outcome. Works for SQLite as for PostgreSQL (Npgsql's own meter adds connection-pool
/// detail for PostgreSQL). No statement text and no parameter is recorded.
/// </summary>
public static class StoreTelemetry
{
    /// <summary>The meter's name (the same name as the gateway's and identity provider's instruments).</summary>
    public const string MeterName = "Gatehouse";

    /// <summary>The instrument's name.</summary>
    public const string DurationName = "gatehouse.db.duration";

    private static readonly Meter Meter = new(MeterName);

    /// <summary><c>gatehouse.db.duration</c>.</summary>
    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>(DurationName, "s", "Duration of the store's database commands, by provider (db.system), kind of command and outcome.");

    /// <summary>The interceptor the store's contexts run with.</summary>
    internal static readonly DbCommandInterceptor Interceptor = new TimingInterceptor();

    private sealed class TimingInterceptor : DbCommandInterceptor
    {
        public override DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
        {
            Record(eventData, "reader", "ok");
            return base.ReaderExecuted(command, eventData, result);
        }

        public override ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
        {
            Record(eventData, "reader", "ok");
            return base.ReaderExecutedAsync(command, eventData, result, cancellationToken);
        }

        public override int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
        {
            Record(eventData, "non_query", "ok");
            return base.NonQueryExecuted(command, eventData, result);
        }

        public override ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
        {
            Record(eventData, "non_query", "ok");
            return base.NonQueryExecutedAsync(command, eventData, result, cancellationToken);
        }

        public override object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
        {
            Record(eventData, "scalar", "ok");
            return base.ScalarExecuted(command, eventData, result);
        }

        public override ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
        {
            Record(eventData, "scalar", "ok");
            return base.ScalarExecutedAsync(command, eventData, result, cancellationToken);
        }

        public override void CommandFailed(DbCommand command, CommandErrorEventData eventData)
        {
            Record(eventData, Kind(eventData.ExecuteMethod), "error");
            base.CommandFailed(command, eventData);
        }

        public override Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
        {
            Record(eventData, Kind(eventData.ExecuteMethod), "error");
            return base.CommandFailedAsync(command, eventData, cancellationToken);
        }

        private static string Kind(DbCommandMethod method) => method switch
        {
            DbCommandMethod.ExecuteReader => "reader",
            DbCommandMethod.ExecuteNonQuery => "non_query",
            _ => "scalar",
        };

        private static void Record(CommandEndEventData eventData, string kind, string outcome)
        {
            var system = eventData.Context?.Database.ProviderName?.Contains("Npgsql", StringComparison.Ordinal) == true ? "postgresql" : "sqlite";
            Duration.Record(
                eventData.Duration.TotalSeconds,
                new KeyValuePair<string, object?>("db.system", system),
                new KeyValuePair<string, object?>("gatehouse.db.command", kind),
                new KeyValuePair<string, object?>("gatehouse.db.outcome", outcome));
        }
    }
}
