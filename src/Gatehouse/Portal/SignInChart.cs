using System.Globalization;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Portal;

/// <summary>One hour of the sign-ins chart.</summary>
internal readonly record struct HourBucket(DateTimeOffset Start, int Successes, int Failures)
{
    public int Total => Successes + Failures;
}

/// <summary>
/// Sign-ins per hour (success and failure stacked) over a window ending now, as the numbers an SVG bar chart is drawn
/// from on the server: the page draws one bar per hour, scaled to the busiest hour, with no script.
/// </summary>
internal sealed class SignInChart
{
    /// <summary>The chart's drawing size in SVG user units (the stylesheet scales it to the page).</summary>
    public const int Width = 720;
    public const int Height = 160;
    public const int AxisHeight = 20;

    private SignInChart(string title, IReadOnlyList<HourBucket> buckets, bool truncated)
    {
        Title = title;
        Buckets = buckets;
        Truncated = truncated;
        Max = Math.Max(1, buckets.Count == 0 ? 0 : buckets.Max(b => b.Total));
    }

    public string Title { get; }

    public IReadOnlyList<HourBucket> Buckets { get; }

    /// <summary>True when the log returned as many rows as one list may (older hours of the window may be missing).</summary>
    public bool Truncated { get; }

    /// <summary>The busiest hour's count (at least 1), the top of the scale.</summary>
    public int Max { get; }

    public int Successes => Buckets.Sum(b => b.Successes);

    public int Failures => Buckets.Sum(b => b.Failures);

    /// <summary>The width of one hour's bar.</summary>
    public double BarWidth => (double)Width / Math.Max(1, Buckets.Count);

    /// <summary>Counts <paramref name="rows"/> into the <paramref name="hours"/> whole hours ending with the current one.</summary>
    public static SignInChart Build(string title, IReadOnlyList<SignInView> rows, DateTimeOffset now, int hours, bool truncated)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var end = new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, now.UtcDateTime.Day, now.UtcDateTime.Hour, 0, 0, TimeSpan.Zero).AddHours(1);
        var start = end.AddHours(-hours);
        var successes = new int[hours];
        var failures = new int[hours];
        foreach (var row in rows)
        {
            if (row.Time < start || row.Time >= end)
            {
                continue;
            }

            var index = (int)((row.Time - start).Ticks / TimeSpan.TicksPerHour);
            if (row.Result == "success")
            {
                successes[index]++;
            }
            else
            {
                failures[index]++;
            }
        }

        return new SignInChart(title, [.. Enumerable.Range(0, hours).Select(i => new HourBucket(start.AddHours(i), successes[i], failures[i]))], truncated);
    }

    /// <summary>The height of <paramref name="count"/> sign-ins on the scale.</summary>
    public double Scale(int count) => (double)count / Max * (Height - AxisHeight - 4);

    /// <summary>A number for an SVG attribute (invariant culture, two decimals).</summary>
    public static string N(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
