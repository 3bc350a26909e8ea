using System.Globalization;
using Gatehouse.Hosting;
using Microsoft.AspNetCore.Builder;

namespace Gatehouse.LoadGen;

/// <summary>
/// The host <c>gatehouse serve</c> builds, in this process, for a benchmark: a throwaway SQLite data directory, the
/// per-address limits lifted (every request comes from 127.0.0.1), quiet logging on stderr (stdout carries the
/// report); disposing stops it and deletes the data directory.
/// </summary>
internal sealed class BenchHost : IAsyncDisposable
{
    private readonly Action<string> _progress;
    private readonly bool _ownsDataDirectory;

    private BenchHost(WebApplication app, string dataDirectory, Action<string> progress, bool ownsDataDirectory)
    {
        App = app;
        DataDirectory = dataDirectory;
        _progress = progress;
        _ownsDataDirectory = ownsDataDirectory;
    }

    public WebApplication App { get; }

    public string DataDirectory { get; }

    /// <summary>
    /// Starts a host; with <paramref name="sharedDataDirectory"/> (another node's), it uses that directory and its key
    /// ring, as the nodes of one deployment do, and leaves deleting it to its owner.
    /// </summary>
    public static async Task<BenchHost> StartAsync(string urls, string publicName, IReadOnlyDictionary<string, string?> extra, Action<string> progress, CancellationToken cancellationToken, string? sharedDataDirectory = null)
    {
        var dataDirectory = sharedDataDirectory ?? Path.Combine(Path.GetTempPath(), "gatehouse-loadgen", Guid.NewGuid().ToString("N"));
        var overrides = new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = dataDirectory,
            ["Gatehouse:Urls"] = urls,
            ["Gatehouse:RdpPort"] = "0",
            ["Gatehouse:PublicName"] = publicName,
            // The per-address limiter would refuse a load test from one address after 300 requests a minute.
            ["Gatehouse:Limits:RequestsPerAddressPerMinute"] = int.MaxValue.ToString(CultureInfo.InvariantCulture),
            ["Gatehouse:Limits:MaxConcurrentConnections"] = "100000",
            // Quiet, and never on stdout (which carries the table or the JSON).
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:Console:LogToStandardErrorThreshold"] = "Trace",
        };
        foreach (var (key, value) in extra)
        {
            overrides[key] = value;
        }

        var app = GatehouseHost.Build(new HostSettings { Console = TextWriter.Null, Overrides = overrides });
        await app.StartAsync(cancellationToken);
        return new BenchHost(app, dataDirectory, progress, sharedDataDirectory is null);
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync(CancellationToken.None);
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (!_ownsDataDirectory)
        {
            return;
        }

        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            _progress($"could not delete {DataDirectory}");
        }
    }
}
