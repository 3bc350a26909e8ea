using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;

namespace Gatehouse.Metrics;

/// <summary>
/// Collects the measurements of Gatehouse's <see cref="Meter"/>s (names starting with <c>Gatehouse</c>) through a
/// <see cref="MeterListener"/> and writes them in the Prometheus text format: counters as <c>_total</c>, up-down
/// counters and observable gauges as gauges, histograms with fixed buckets. Thread-safe; series are keyed by the
/// instrument and its tag set, and the number of series per instrument is capped so a tag with unbounded values
/// cannot exhaust memory.
/// </summary>
internal sealed class MetricsCollector : IDisposable
{
    /// <summary>Most series one instrument may have; later tag sets are counted in an overflow series.</summary>
    public const int MaxSeriesPerInstrument = 1000;

    /// <summary>Histogram bucket bounds (seconds for durations, as Prometheus conventions expect).</summary>
    public static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();
    private readonly string[] _prefixes;

    /// <summary>Starts listening to meters whose names start with one of <paramref name="meterPrefixes"/>.</summary>
    public MetricsCollector(params string[] meterPrefixes)
    {
        _prefixes = meterPrefixes.Length == 0 ? ["Gatehouse"] : meterPrefixes;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (_prefixes.Any(p => instrument.Meter.Name.StartsWith(p, StringComparison.Ordinal)))
            {
                _instruments.TryAdd(instrument, new InstrumentState(instrument));
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.MeasurementsCompleted = (instrument, _) => _instruments.TryRemove(instrument, out InstrumentState? _);
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    /// <summary>Writes every series in the Prometheus text format (observable instruments are sampled first).</summary>
    public void WriteTo(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _listener.RecordObservableInstruments();
        foreach (var state in _instruments.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            state.WriteTo(writer);
        }
    }

    /// <summary>Stops listening.</summary>
    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_instruments.TryGetValue(instrument, out var state))
        {
            state.Record(value, tags);
        }
    }

    private sealed class InstrumentState
    {
        private readonly ConcurrentDictionary<string, Series> _series = new(StringComparer.Ordinal);
        private readonly Instrument _instrument;
        private readonly string _type;

        public InstrumentState(Instrument instrument)
        {
            _instrument = instrument;
            var baseName = PrometheusText.MetricName(instrument.Name);
            var unit = instrument.Unit switch
            {
                "s" => "_seconds",
                "By" => "_bytes",
                _ => string.Empty,
            };
            if (!baseName.EndsWith(unit, StringComparison.Ordinal))
            {
                baseName += unit;
            }

            (_type, Name) = instrument switch
            {
                Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double>
                    => ("counter", baseName.EndsWith("_total", StringComparison.Ordinal) ? baseName : baseName + "_total"),
                Histogram<long> or Histogram<int> or Histogram<double> => ("histogram", baseName),
                _ => ("gauge", baseName),
            };
        }

        public string Name { get; }

        private bool IsCumulative => _instrument is Counter<long> or Counter<int> or Counter<double> or UpDownCounter<long> or UpDownCounter<int> or UpDownCounter<double>;

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = new List<KeyValuePair<string, string>>(tags.Length);
            foreach (var (key, tagValue) in tags)
            {
                labels.Add(new(key, Convert.ToString(tagValue, CultureInfo.InvariantCulture) ?? string.Empty));
            }

            labels.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            var key2 = string.Join("\u0001", labels.Select(l => l.Key + "\u0002" + l.Value));
            if (!_series.TryGetValue(key2, out var series))
            {
                if (_series.Count >= MaxSeriesPerInstrument)
                {
                    labels = [new("overflow", "true")];
                    key2 = "\u0003overflow";
                }

                series = _series.GetOrAdd(key2, _ => new Series(labels, _type == "histogram"));
            }

            series.Add(value, IsCumulative || _type == "histogram");
        }

        public void WriteTo(TextWriter writer)
        {
            if (_series.IsEmpty)
            {
                return;
            }

            PrometheusText.WriteHeader(writer, Name, _type, _instrument.Description);
            foreach (var series in _series.Values.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                series.WriteTo(writer, Name, _type);
            }
        }
    }

    private sealed class Series(List<KeyValuePair<string, string>> labels, bool histogram)
    {
        private readonly Lock _gate = new();
        private readonly long[]? _buckets = histogram ? new long[DefaultBuckets.Length] : null;
        private double _value;
        private long _count;

        public string Key { get; } = string.Join(",", labels.Select(l => $"{l.Key}={l.Value}"));

        public void Add(double value, bool accumulate)
        {
            lock (_gate)
            {
                if (_buckets is not null)
                {
                    var index = Array.FindIndex(DefaultBuckets, bound => value <= bound);
                    if (index >= 0)
                    {
                        _buckets[index]++;
                    }

                    _count++;
                    _value += value;
                }
                else
                {
                    _value = accumulate ? _value + value : value;
                }
            }
        }

        public void WriteTo(TextWriter writer, string name, string type)
        {
            lock (_gate)
            {
                if (type != "histogram")
                {
                    PrometheusText.WriteSample(writer, name, labels, _value);
                    return;
                }

                long cumulative = 0;
                for (var i = 0; i < DefaultBuckets.Length; i++)
                {
                    cumulative += _buckets![i];
                    PrometheusText.WriteSample(writer, name + "_bucket", labels, cumulative, new("le", PrometheusText.FormatValue(DefaultBuckets[i])));
                }

                PrometheusText.WriteSample(writer, name + "_bucket", labels, _count, new("le", "+Inf"));
                PrometheusText.WriteSample(writer, name + "_sum", labels, _value);
                PrometheusText.WriteSample(writer, name + "_count", labels, _count);
            }
        }
    }
}
