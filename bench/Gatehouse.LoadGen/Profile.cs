using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Gatehouse.LoadGen;

/// <summary>
/// <c>--profile</c>: listens to every activity source while the redemption phase runs (the host's own spans, ASP.NET
/// Core's request span and Npgsql's one span per database command) and reports, per span name (for a database command,
/// its statement's first words), how many there were per redemption and their mean and total duration. Durations are
/// inclusive (a parent span contains its children) and wall-clock (they include waiting for a CPU on a loaded machine).
/// </summary>
internal sealed class Profile : IDisposable
{
    private readonly ConcurrentDictionary<string, Totals> _spans = new(StringComparer.Ordinal);
    private readonly ActivityListener _listener;
    private volatile bool _recording;

    public Profile()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Stopped,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    private TimeSpan _processCpu;
    private Dictionary<int, long> _databaseTicks = [];

    /// <summary>CPU time of this process (host and load generator) while recording.</summary>
    public TimeSpan ProcessCpu { get; private set; }

    /// <summary>CPU time of the PostgreSQL backends serving the store while recording (null on SQLite).</summary>
    public TimeSpan? DatabaseCpu { get; private set; }

    /// <summary>Starts recording (spans that stop before are ignored).</summary>
    public async Task StartAsync(string? store)
    {
        _databaseTicks = store is null ? [] : await BackendTicksAsync(store);
        _processCpu = Process.GetCurrentProcess().TotalProcessorTime;
        _recording = true;
    }

    /// <summary>Stops recording.</summary>
    public async Task StopAsync(string? store)
    {
        _recording = false;
        ProcessCpu = Process.GetCurrentProcess().TotalProcessorTime - _processCpu;
        if (store is not null)
        {
            DatabaseCpu = await DatabaseCpuSinceAsync(store, _databaseTicks);
        }
    }

    /// <summary>CPU time the store's PostgreSQL backends spent since <paramref name="before"/> (<see cref="BackendTicksAsync"/>).</summary>
    internal static async Task<TimeSpan> DatabaseCpuSinceAsync(string store, Dictionary<int, long> before)
    {
        var after = await BackendTicksAsync(store);
        var ticks = after.Sum(b => b.Value - before.GetValueOrDefault(b.Key));
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    /// <summary>
    /// utime + stime (clock ticks, 100 per second) of every backend of the store's database, from /proc: the database
    /// runs on this machine (loopback) in these measurements.
    /// </summary>
    internal static async Task<Dictionary<int, long>> BackendTicksAsync(string store)
    {
        var ticks = new Dictionary<int, long>();
        await using var connection = new Npgsql.NpgsqlConnection(store);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var pid = reader.GetInt32(0);
            try
            {
                var stat = await File.ReadAllTextAsync($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                ticks[pid] = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // The backend ended meanwhile, or the database is on another machine.
            }
        }

        return ticks;
    }

    /// <summary>The table: one line per span name, most total time first.</summary>
    public string ToTable(int redemptions)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        var database = DatabaseCpu is { } db ? string.Create(c, $", PostgreSQL backends {db.TotalMilliseconds / redemptions:F2} ms") : string.Empty;
        text.AppendLine(c, $"CPU per redemption: this process (host and load generator) {ProcessCpu.TotalMilliseconds / redemptions:F2} ms{database}");
        text.AppendLine(c, $"Profile of {redemptions} redemptions (inclusive wall-clock span durations):");
        text.AppendLine(c, $"{"span",-90} {"per redeem",10} {"mean ms",8} {"ms/redeem",9}");
        foreach (var (name, totals) in _spans.OrderByDescending(s => s.Value.TotalMs))
        {
            text.AppendLine(c, $"{name,-90} {(double)totals.Count / redemptions,10:F2} {totals.TotalMs / totals.Count,8:F3} {totals.TotalMs / redemptions,9:F3}");
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private void Stopped(Activity activity)
    {
        if (!_recording)
        {
            return;
        }

        var name = activity.Source.Name == "Npgsql"
            ? "sql: " + Shorten(activity.GetTagItem("db.query.text") as string ?? activity.GetTagItem("db.statement") as string ?? activity.DisplayName)
            : $"{activity.Source.Name}: {activity.DisplayName}";
        var totals = _spans.GetOrAdd(name, _ => new Totals());
        lock (totals)
        {
            totals.Count++;
            totals.TotalMs += activity.Duration.TotalMilliseconds;
        }
    }

    private static string Shorten(string statement)
    {
        var flat = string.Join(' ', statement.Split((char[])['\n', '\r', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        return flat.Length <= 84 ? flat : flat[..84];
    }

    private sealed class Totals
    {
        public int Count;
        public double TotalMs;
    }
}
