using System.Globalization;

namespace Gatehouse.Portal;

/// <summary>How the portal's pages show values: text from users and administrators through <see cref="T"/>, times and sizes in one format.</summary>
internal static class PortalText
{
    /// <summary>
    /// A value a user or administrator typed, with control, bidirectional and other invisible characters written out as
    /// the CLI's tables do (<see cref="Gatehouse.Protocol.DisplayText.Escape(string?)"/>); Razor HTML-encodes the result.
    /// </summary>
    public static string T(string? value) => Gatehouse.Protocol.DisplayText.Escape(value);

    /// <summary>A time in UTC, to the second (ISO 8601 with a space).</summary>
    public static string When(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>A byte count with a binary unit.</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return unit == 0 ? $"{bytes.ToString(CultureInfo.InvariantCulture)} B" : $"{value.ToString("0.0", CultureInfo.InvariantCulture)} {units[unit]}";
    }

    /// <summary>A duration as <c>1 h 05 min</c>, <c>4 min 12 s</c> or <c>9 s</c>.</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero)
        {
            span = TimeSpan.Zero;
        }

        return span.TotalHours >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalHours} h {span.Minutes:00} min")
            : span.TotalMinutes >= 1
                ? string.Create(CultureInfo.InvariantCulture, $"{span.Minutes} min {span.Seconds:00} s")
                : string.Create(CultureInfo.InvariantCulture, $"{span.Seconds} s");
    }
}
