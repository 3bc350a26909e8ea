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

    /// <summary>Starts recording (spans that stop before are ignored).</summary>
    public void Start() => _recording = true;

    /// <summary>Stops recording.</summary>
    public void Stop() => _recording = false;

    /// <summary>The table: one line per span name, most total time first.</summary>
    public string ToTable(int redemptions)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
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
