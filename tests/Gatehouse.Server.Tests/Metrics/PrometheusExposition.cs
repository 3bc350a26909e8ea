using System.Text.RegularExpressions;

namespace Gatehouse.Server.Tests.Metrics;

/// <summary>
/// The Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats), as a checker of
/// what <c>/metrics</c> serves, and a reader of its samples.
/// </summary>
internal static partial class PrometheusExposition
{
    /// <summary>Every line is a comment or a sample as the exposition format defines them (a sample may carry a timestamp).</summary>
    public static void AssertWellFormed(string text)
    {
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            Assert.True(CommentLine().IsMatch(line) || SampleLine().IsMatch(line), $"not exposition format: {line}");
        }
    }

    /// <summary>The value of the first sample of <paramref name="name"/> whose labels include every one of <paramref name="labels"/>.</summary>
    public static double? Value(string text, string name, params string[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' '
                && labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            {
                var parts = line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ');
                return double.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    [GeneratedRegex("""^# (HELP|TYPE|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]* \S.*$""")]
    private static partial Regex CommentLine();

    [GeneratedRegex("""^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (\+Inf|-Inf|NaN|-?[0-9.]+([eE][+-]?[0-9]+)?)( -?[0-9]+)?$""")]
    private static partial Regex SampleLine();
}
