using System.Net;
using System.Net.Sockets;
using Gatehouse.Hosting;
using Microsoft.AspNetCore.Builder;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// One Gatehouse server in the test process, as the browser and MSAL tests need it: HTTPS on a free loopback port under
/// the test host name (<c>login.gatehouse.test:PORT</c>, which Chromium and the clients resolve to 127.0.0.1), no RDP
/// port of its own choosing, and a fresh data directory (SQLite, its own certificate).
/// </summary>
internal static class LoopbackGatehouse
{
    /// <summary>The host name part of every server's public name (the passkeys' RP ID).</summary>
    public const string HostName = "login.gatehouse.test";

    /// <summary>Builds and starts the server; <paramref name="settings"/> are added to (or override) the defaults.</summary>
    public static async Task<WebApplication> StartAsync(string? dataDirectory = null, params (string Key, string? Value)[] settings)
    {
        var port = LoopbackPorts.Next();
        var overrides = new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = dataDirectory ?? Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N")),
            ["Gatehouse:Urls"] = $"https://127.0.0.1:{port}",
            ["Gatehouse:RdpPort"] = "0",
            ["Gatehouse:PublicName"] = $"{HostName}:{port}",
        };
        foreach (var (key, value) in settings)
        {
            overrides[key] = value;
        }

        var app = GatehouseHost.Build(new HostSettings { Overrides = overrides, Console = new StringWriter() });
        await app.StartAsync();
        return app;
    }

    /// <summary>The server's public name (<c>login.gatehouse.test:PORT</c>).</summary>
    public static string PublicName(WebApplication app) => app.Configuration["Gatehouse:PublicName"]!;

    /// <summary>The loopback port the server's HTTPS listens on.</summary>
    public static int Port(WebApplication app) => int.Parse(PublicName(app).Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
}
