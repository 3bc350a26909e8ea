using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Gatehouse.Gateway.Diagnostics;

namespace Gatehouse.Gateway.Tests.Diagnostics;

/// <summary>
/// Records the gateway's spans (an <see cref="ActivityListener"/> on <c>Gatehouse.Gateway</c>) and the measurements of
/// the <c>Gatehouse</c> meter (a <see cref="MeterListener"/>). Both listen to the whole process: tests running beside
/// record here too, so assertions pick their own connection by its correlation id.
/// </summary>
internal sealed class TelemetryRecorder : IDisposable
{
    private readonly ActivityListener _activities;
    private readonly MeterListener _meters = new();
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ConcurrentQueue<Measurement> _measurements = new();

    public TelemetryRecorder()
    {
        _activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatewayTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_activities);
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == GatewayTelemetry.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _meters.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _meters.Start();
    }

    /// <summary>Spans ended so far.</summary>
    public IReadOnlyList<Activity> Spans => [.. _stopped];

    /// <summary>Measurements so far.</summary>
    public IReadOnlyList<Measurement> Measurements => [.. _measurements];

    public static string? Tag(Activity activity, string key) => Convert.ToString(activity.GetTagItem(key), CultureInfo.InvariantCulture);

    /// <summary>The first ended span that matches.</summary>
    public async Task<Activity> WaitForSpanAsync(Func<Activity, bool> match)
    {
        Activity? found = null;
        await Until.TrueAsync(() => (found = _stopped.FirstOrDefault(match)) is not null, "the span");
        return found!;
    }

    /// <summary>The measurements of <paramref name="instrument"/> whose tags include <paramref name="tags"/>.</summary>
    public IReadOnlyList<double> Of(string instrument, params (string Key, string Value)[] tags) =>
        [.. _measurements.Where(m => m.Instrument == instrument && tags.All(t => m.Tags.TryGetValue(t.Key, out var v) && v == t.Value)).Select(m => m.Value)];

    public void Dispose()
    {
        _activities.Dispose();
        _meters.Dispose();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var copy = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (key, tagValue) in tags)
        {
            copy[key] = Convert.ToString(tagValue, CultureInfo.InvariantCulture);
        }

        _measurements.Enqueue(new Measurement(instrument.Name, value, copy));
    }

    /// <summary>One measurement.</summary>
    internal sealed record Measurement(string Instrument, double Value, IReadOnlyDictionary<string, string?> Tags);
}
