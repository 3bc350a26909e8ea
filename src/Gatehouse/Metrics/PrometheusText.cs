using System.Globalization;
using System.Text;

namespace Gatehouse.Metrics;

/// <summary>One sample: label pairs and a value.</summary>
internal readonly record struct Sample(IReadOnlyList<KeyValuePair<string, string>> Labels, double Value);

/// <summary>
/// The Prometheus text exposition format, version 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): HELP
/// and TYPE lines, escaped label values, Go-style float formatting, and histograms as cumulative <c>_bucket</c>
/// series with <c>le</c> labels plus <c>_sum</c> and <c>_count</c>. The package mirror has no Prometheus library,
/// so this is the small writer the format needs.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The Content-Type of the format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>
    /// A valid metric name from an OpenTelemetry-style instrument name: characters outside
    /// <c>[a-zA-Z0-9_:]</c> become <c>_</c>, and a leading digit gets a <c>_</c> prefix.
    /// </summary>
    public static string MetricName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var builder = new StringBuilder(name.Length + 1);
        if (char.IsAsciiDigit(name[0]))
        {
            builder.Append('_');
        }

        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        }

        return builder.ToString();
    }

    /// <summary>A valid label name: like <see cref="MetricName"/> without colons, never starting with <c>__</c>.</summary>
    public static string LabelName(string name)
    {
        var metric = MetricName(name).Replace(':', '_');
        return metric.StartsWith("__", StringComparison.Ordinal) ? "x" + metric : metric;
    }

    /// <summary>Writes HELP and TYPE lines.</summary>
    public static void WriteHeader(TextWriter writer, string name, string type, string? help)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (!string.IsNullOrEmpty(help))
        {
            writer.Write("# HELP ");
            writer.Write(name);
            writer.Write(' ');
            writer.Write(EscapeHelp(help));
            writer.Write('\n');
        }

        writer.Write("# TYPE ");
        writer.Write(name);
        writer.Write(' ');
        writer.Write(type);
        writer.Write('\n');
    }

    /// <summary>Writes one sample line.</summary>
    public static void WriteSample(TextWriter writer, string name, IReadOnlyList<KeyValuePair<string, string>> labels, double value, KeyValuePair<string, string>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(labels);
        writer.Write(name);
        if (labels.Count > 0 || extra is not null)
        {
            writer.Write('{');
            var first = true;
            foreach (var (key, labelValue) in labels)
            {
                WriteLabel(writer, key, labelValue, ref first);
            }

            if (extra is { } e)
            {
                WriteLabel(writer, e.Key, e.Value, ref first);
            }

            writer.Write('}');
        }

        writer.Write(' ');
        writer.Write(FormatValue(value));
        writer.Write('\n');
    }

    /// <summary>A float as Prometheus reads it: shortest round-trip form, <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>.</summary>
    public static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>Escapes a label value: backslash, double quote and line feed.</summary>
    public static string EscapeLabelValue(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    /// <summary>Escapes HELP text: backslash and line feed.</summary>
    public static string EscapeHelp(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static void WriteLabel(TextWriter writer, string key, string value, ref bool first)
    {
        if (!first)
        {
            writer.Write(',');
        }

        first = false;
        writer.Write(LabelName(key));
        writer.Write("=\"");
        writer.Write(EscapeLabelValue(value));
        writer.Write('"');
    }
}
