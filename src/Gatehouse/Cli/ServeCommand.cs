using System.CommandLine;
using Gatehouse.Hosting;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse serve</c>: the identity provider, the admin API and the RDP listener in one host.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Data directory, private to this account (0700): SQLite database, generated TLS certificate, Data Protection keys and the key-encryption key keyring.kek that seals them (default ./data, relative to the working directory)." };
        var store = new Option<string?>("--store") { Description = "PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…) instead of SQLite." };
        var urls = new Option<string?>("--urls") { Description = "HTTPS listen addresses, semicolon-separated (default https://0.0.0.0:8443)." };
        var rdpPort = new Option<int?>("--rdp-port") { Description = "TCP port of the RDP listener (default 3389)." };
        var publicName = new Option<string?>("--public-name") { Description = "host[:port] that clients use for the identity provider (what goes into /azure:ad:). Default: this machine's name and the HTTPS port." };
        var config = new Option<string?>("--config") { Description = "A JSON configuration file (appsettings format, section \"Gatehouse\")." };
        var domain = new Option<string?>("--domain") { Description = "Verified domain of the tenant created on first run (default contoso.test)." };

        var command = new Command("serve", "Run Gatehouse: identity provider, administration API and RDP gateway.")
        {
            data, store, urls, rdpPort, publicName, config, domain,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>();
            void Set(string key, string? value)
            {
                if (value is not null)
                {
                    overrides[$"{GatehouseOptions.Section}:{key}"] = value;
                }
            }

            Set(nameof(GatehouseOptions.DataDirectory), parse.GetValue(data));
            Set(nameof(GatehouseOptions.Store), parse.GetValue(store));
            Set(nameof(GatehouseOptions.Urls), parse.GetValue(urls));
            Set(nameof(GatehouseOptions.RdpPort), parse.GetValue(rdpPort)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Set(nameof(GatehouseOptions.PublicName), parse.GetValue(publicName));
            Set(nameof(GatehouseOptions.Domain), parse.GetValue(domain));

            var settings = new HostSettings { ConfigFile = parse.GetValue(config), Overrides = overrides };
            try
            {
                await using var app = GatehouseHost.Build(settings);
                await app.RunAsync(cancellationToken).ConfigureAwait(false);
                return 0;
            }
            catch (Exception e) when (e is StartupException or Gatehouse.Storage.StoreUnavailableException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"gatehouse serve: {e.Message}").ConfigureAwait(false);
                return 1;
            }
            catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException or null)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync(
                    $"gatehouse serve: cannot listen: {e.Message}. Is another process using the port? Choose another with --urls.").ConfigureAwait(false);
                return 1;
            }
        });
        return command;
    }
}
