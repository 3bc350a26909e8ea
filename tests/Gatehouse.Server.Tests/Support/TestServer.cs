using System.Net;
using System.Net.Security;
using Gatehouse.Hosting;

namespace Gatehouse.Server.Tests.Support;

/// <summary>The real <c>gatehouse serve</c> host on 127.0.0.1 with an OS-chosen port and a throwaway data directory.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    private TestServer(WebApplication app, string dataDirectory, StringWriter console)
    {
        App = app;
        DataDirectory = dataDirectory;
        Console = console;
        BaseAddress = GatehouseHost.BoundAddresses(app).Single();
        Client = new HttpClient(CreateHandler())
        {
            BaseAddress = BaseAddress,
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public WebApplication App { get; }

    public string DataDirectory { get; }

    public StringWriter Console { get; }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    /// <summary>A handler that trusts exactly the certificate this server loaded (self-signed, so pinned rather than chained).</summary>
    public SocketsHttpHandler CreateHandler()
    {
        var pinned = App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
        return new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == pinned,
            },
            AllowAutoRedirect = false,
            UseCookies = false,
        };
    }

    public static async Task<TestServer> StartAsync(string? dataDirectory = null, IDictionary<string, string?>? overrides = null, string? configFile = null, Action<IServiceCollection>? configureServices = null, TimeProvider? time = null)
    {
        dataDirectory ??= TempDirectory.Create();
        var settings = new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = dataDirectory,
            ["Gatehouse:Urls"] = "https://127.0.0.1:0",
            ["Gatehouse:RdpPort"] = "0",
            ["Gatehouse:PublicName"] = "login.gatehouse.test",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var console = new StringWriter();
        var app = GatehouseHost.Build(new HostSettings { Overrides = settings, Console = console, ConfigFile = configFile, ConfigureServices = configureServices, Time = time ?? TimeProvider.System });
        await app.StartAsync();
        return new TestServer(app, dataDirectory, console);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>A fresh directory under the system temp folder.</summary>
internal static class TempDirectory
{
    public static string Create()
    {
        var path = Path.Combine(Path.GetTempPath(), "gatehouse-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}

/// <summary>Tests that change process environment variables run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    public const string Name = "process environment";
}
