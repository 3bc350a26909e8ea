using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Gatehouse.Metrics;

namespace Gatehouse.Server.Tests.Metrics;

public sealed partial class PrometheusTextTests
{
    [Theory]
    [InlineData("gatehouse.signins", "gatehouse_signins")]
    [InlineData("http.server.request.duration", "http_server_request_duration")]
    [InlineData("9lives", "_9lives")]
    [InlineData("a:b-c d", "a:b_c_d")]
    public void MetricName_IsSanitised(string input, string expected) => Assert.Equal(expected, PrometheusText.MetricName(input));

    [Theory]
    [InlineData("__reserved", "x__reserved")]
    [InlineData("a:b", "a_b")]
    [InlineData("http.route", "http_route")]
    public void LabelName_IsSanitised(string input, string expected) => Assert.Equal(expected, PrometheusText.LabelName(input));

    [Theory]
    [InlineData(1.0, "1")]
    [InlineData(0.1, "0.1")]
    [InlineData(1e21, "1E+21")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(double.NaN, "NaN")]
    [InlineData(-2.5, "-2.5")]
    public void FormatValue_IsWhatPrometheusParses(double value, string expected) => Assert.Equal(expected, PrometheusText.FormatValue(value));

    [Fact]
    public void Escaping_FollowsTheFormat()
    {
        Assert.Equal("a\\\\b\\\"c\\nd", PrometheusText.EscapeLabelValue("a\\b\"c\nd"));
        Assert.Equal("line\\nwith \\\\ and \"", PrometheusText.EscapeHelp("line\nwith \\ and \""));
    }

    [Fact]
    public void WriteSample_WithLabelsAndExtra()
    {
        using var writer = new StringWriter();
        PrometheusText.WriteHeader(writer, "x_total", "counter", "Things.\nMore.");
        PrometheusText.WriteSample(writer, "x_total", [new("result", "fail\"ed"), new("host", "vm1")], 3, new("le", "+Inf"));
        PrometheusText.WriteSample(writer, "x_total", [], 4);
        Assert.Equal("# HELP x_total Things.\\nMore.\n# TYPE x_total counter\nx_total{result=\"fail\\\"ed\",host=\"vm1\",le=\"+Inf\"} 3\nx_total 4\n", writer.ToString());
    }

    [Fact]
    public void Collector_ExportsEveryInstrumentKind()
    {
        using var meter = new Meter("Gatehouse.Test." + Guid.NewGuid().ToString("N"));
        using var collector = new MetricsCollector(meter.Name);
        var signins = meter.CreateCounter<long>("gatehouse.signins", description: "Sign-in attempts.");
        var sessions = meter.CreateUpDownCounter<int>("gatehouse.sessions.active");
        var duration = meter.CreateHistogram<double>("gatehouse.signin.duration", unit: "s");
        var bytes = meter.CreateCounter<long>("gatehouse.relay.bytes", unit: "By");
        meter.CreateObservableGauge("gatehouse.pending", () => 7);

        signins.Add(1, new KeyValuePair<string, object?>("result", "success"), new KeyValuePair<string, object?>("method", "web"));
        signins.Add(2, new KeyValuePair<string, object?>("method", "web"), new KeyValuePair<string, object?>("result", "success"));
        signins.Add(1, new KeyValuePair<string, object?>("result", "failure"));
        sessions.Add(3);
        sessions.Add(-1);
        duration.Record(0.003);
        duration.Record(0.2);
        duration.Record(100);
        bytes.Add(1024);

        using var writer = new StringWriter();
        collector.WriteTo(writer);
        var text = writer.ToString();

        Assert.Contains("# HELP gatehouse_signins_total Sign-in attempts.\n# TYPE gatehouse_signins_total counter\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signins_total{method=\"web\",result=\"success\"} 3\n", text, StringComparison.Ordinal);   // tag order does not split a series
        Assert.Contains("gatehouse_signins_total{result=\"failure\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE gatehouse_sessions_active gauge\ngatehouse_sessions_active 2\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_pending 7\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_relay_bytes_total 1024\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE gatehouse_signin_duration_seconds histogram\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_bucket{le=\"0.005\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_bucket{le=\"0.25\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_bucket{le=\"60\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_bucket{le=\"+Inf\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_sum 100.203\n", text, StringComparison.Ordinal);
        Assert.Contains("gatehouse_signin_duration_seconds_count 3\n", text, StringComparison.Ordinal);
        AssertWellFormed(text);
    }

    [Fact]
    public void Collector_OtherMeters_AreNotExported()
    {
        using var ours = new Meter("Gatehouse.Mine." + Guid.NewGuid().ToString("N"));
        using var theirs = new Meter("Someone.Else." + Guid.NewGuid().ToString("N"));
        using var collector = new MetricsCollector(ours.Name);
        theirs.CreateCounter<long>("foreign").Add(1);
        ours.CreateCounter<long>("mine").Add(1);
        using var writer = new StringWriter();
        collector.WriteTo(writer);
        Assert.Contains("mine_total 1", writer.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("foreign", writer.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Collector_UnboundedTagValues_AreCappedIntoAnOverflowSeries()
    {
        using var meter = new Meter("Gatehouse.Cap." + Guid.NewGuid().ToString("N"));
        using var collector = new MetricsCollector(meter.Name);
        var counter = meter.CreateCounter<long>("by_user");
        for (var i = 0; i < MetricsCollector.MaxSeriesPerInstrument + 50; i++)
        {
            counter.Add(1, new KeyValuePair<string, object?>("user", $"u{i}"));
        }

        using var writer = new StringWriter();
        collector.WriteTo(writer);
        var lines = writer.ToString().Split('\n').Where(l => l.StartsWith("by_user_total", StringComparison.Ordinal)).ToList();
        Assert.Equal(MetricsCollector.MaxSeriesPerInstrument + 1, lines.Count);
        Assert.Contains("by_user_total{overflow=\"true\"} 50", lines);
    }

    /// <summary>Every line is a comment or a sample as the exposition format defines them.</summary>
    internal static void AssertWellFormed(string text)
    {
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        foreach (var line in text.TrimEnd('\n').Split('\n'))
        {
            Assert.True(CommentLine().IsMatch(line) || SampleLine().IsMatch(line), $"not exposition format: {line}");
        }
    }

    [GeneratedRegex("""^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* \S.*$""")]
    private static partial Regex CommentLine();

    [GeneratedRegex("""^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (\+Inf|-Inf|NaN|-?[0-9.]+(E[+-]?[0-9]+)?)$""")]
    private static partial Regex SampleLine();
}
