using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using Gatehouse.Admin.Operations;
using Gatehouse.Hosting;
using Microsoft.Extensions.Configuration;

namespace Gatehouse.Cli;

/// <summary>
/// What the client-side commands need from the server's configuration, read from the same sources as
/// <c>gatehouse serve</c> (appsettings.json in the working directory, <c>--config FILE</c>, environment variables such as
/// <c>Gatehouse__PublicName</c>): the identity provider's public name and the RDP port.
/// </summary>
internal sealed record ServerAddresses(string PublicName, int RdpPort)
{
    /// <summary>The addresses the gateway connects to hosts from (<c>Gatehouse:GatewayAddresses</c>; the audit allows them).</summary>
    public IReadOnlyList<string> GatewayAddresses { get; init; } = [];

    /// <summary>The host part of <see cref="PublicName"/>.</summary>
    public string PublicHost => GatehouseHost.PublicHost(PublicName);

    public static ServerAddresses Load(string? configFile)
    {
        var builder = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(Environment.CurrentDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new CliException($"The configuration file {configFile} does not exist; pass the file 'gatehouse serve --config' uses.");
            }

            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }

        builder.AddEnvironmentVariables();
        var options = new GatehouseOptions();
        try
        {
            builder.Build().GetSection(GatehouseOptions.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new CliException($"Invalid configuration in the Gatehouse section: {e.Message}", e);
        }

        var publicName = options.PublicName;
        if (string.IsNullOrWhiteSpace(publicName))
        {
            // gatehouse serve's default: this machine's name and the first HTTPS port.
            int port;
            try
            {
                port = ListenAddress.ParseList(options.Urls)[0].Port;
            }
            catch (StartupException e)
            {
                throw new CliException(e.Message, e);
            }

            var host = Dns.GetHostName().ToLowerInvariant();
            publicName = port == 443 ? host : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";
        }

        return new ServerAddresses(publicName.Trim(), options.RdpPort) { GatewayAddresses = options.GatewayAddressList };
    }
}

/// <summary><c>gatehouse connect-command</c> and <c>gatehouse rdp-file</c>: how a client reaches a host through this gateway.</summary>
internal static class ClientCommands
{
    private const string AddressHelp =
        "FreeRDP 3 names the host in its token request after the first DNS label of /v: (vm1.gw.example.org gives vm1; an IP address gives its first number), so /v: is HOST.GATEWAY-ADDRESS: the host's name (or the alias given with --host) in front of a DNS name of this gateway. That name must resolve to the gateway's RDP listener: add a wildcard DNS record *.GATEWAY-ADDRESS (or one record per host) pointing at the gateway, or a line in the client's hosts file.";

    public static Command CreateConnectCommand(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var (host, gateway, rdpPort, config) = CommonOptions();
        var qr = QrOption();
        var command = new Command(
            "connect-command",
            $"Print the xfreerdp3 command line that signs in to a host through this gateway with a web account (/sec:aad /azure:ad:PUBLIC-NAME), or with --qr-sign-in the one that signs in with no password on a phone. {AddressHelp}")
        {
            host, gateway, rdpPort, config, qr,
        };
        admin.AddTo(command);
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var target = await ResolveAsync(context, parse, host, gateway, rdpPort, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync(parse.GetValue(qr) ? QrConnectCommandLine(target) : ConnectCommandLine(target)).ConfigureAwait(false);
            await NoteCertificateAsync(context, target).ConfigureAwait(false);
            return ExitCodes.Ok;
        }, config);
        return command;
    }

    public static Command CreateRdpFileCommand(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var (host, gateway, rdpPort, config) = CommonOptions();
        var user = new Option<string?>("--user") { Description = "The user's UPN (alice@contoso.test), written as username:s: so the client proposes it." };
        var output = new Option<FileInfo?>("--out") { Description = "Write the .rdp file here (default: standard output)." };
        var qr = QrOption();
        var command = new Command(
            "rdp-file",
            $"Write an .rdp file for Remote Desktop clients (mstsc, Windows App) that connects to a host through this gateway with web account (Microsoft Entra-style) sign-in: enablerdsaadauth:i:1, targetisaadjoined:i:1; or, with --qr-sign-in, with no password at all: TLS security without CredSSP (enablecredsspsupport:i:0), so the gateway's hold screen shows a QR code the user signs in with on a phone (the gateway needs QrSignIn in Gatehouse:Gateway:SignInMethods). {AddressHelp} Microsoft's clients take the identity provider from Windows' own account broker, not from the file; the file names the gateway and the host.")
        {
            host, gateway, rdpPort, config, user, output, qr,
        };
        admin.AddTo(command);
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var target = await ResolveAsync(context, parse, host, gateway, rdpPort, ct).ConfigureAwait(false);
            var upn = parse.GetValue(user);
            if (upn is not null && parse.GetValue(qr))
            {
                throw new CliException("--user does not go with --qr-sign-in: the user signs in on the phone, and the file names nobody. Leave out --user.");
            }

            if (upn is not null)
            {
                upn = (await context.Client.GetUserAsync(upn, ct).ConfigureAwait(false)).UserPrincipalName;
            }

            var text = parse.GetValue(qr) ? QrRdpFile(target) : RdpFile(target, upn);
            if (parse.GetValue(output) is { } file)
            {
                await File.WriteAllTextAsync(file.FullName, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), ct).ConfigureAwait(false);
                await context.Output.WriteLineAsync($"Wrote {file.FullName} (full address {target.Address}).").ConfigureAwait(false);
            }
            else
            {
                await context.WriteTextAsync(text).ConfigureAwait(false);
            }

            await NoteCertificateAsync(context, target).ConfigureAwait(false);
            return ExitCodes.Ok;
        }, config);
        return command;
    }

    /// <summary>The xfreerdp3 command line (never with <c>/azure:tenantid:</c>, which FreeRDP 3.10.3 misroutes into RemoteApp).</summary>
    public static string ConnectCommandLine(ClientTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return $"xfreerdp3 /v:{target.Address} /sec:aad /azure:ad:{target.PublicName}";
    }

    /// <summary>
    /// The xfreerdp3 command line of the QR sign-in: TLS security, any user name and an empty password, so FreeRDP neither
    /// prompts nor proves a password; the gateway shows the QR code.
    /// </summary>
    public static string QrConnectCommandLine(ClientTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return $"xfreerdp3 /v:{target.Address} /sec:tls /u:qr /p:";
    }

    /// <summary>
    /// The .rdp file of the QR sign-in: TLS security with CredSSP off (mstsc then asks for no credentials and shows the
    /// gateway's hold screen), no web account, no user name (CRLF line ends, as mstsc writes them).
    /// </summary>
    public static string QrRdpFile(ClientTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        string[] lines =
        [
            $"full address:s:{target.Address}",
            "enablecredsspsupport:i:0",
            "enablerdsaadauth:i:0",
            "negotiate security layer:i:1",
            "authentication level:i:2",
            "prompt for credentials:i:0",
            "prompt for credentials on client:i:0",
            "screen mode id:i:2",
        ];
        return string.Concat(lines.Select(l => l + "\r\n"));
    }

    private static Option<bool> QrOption() => new("--qr-sign-in")
    {
        Description = "Sign in with no password: the gateway's hold screen shows a QR code and a short code, the user signs in on a phone (or any browser) at /devicelogin, and the client is let in. Needs QrSignIn in the gateway's Gatehouse:Gateway:SignInMethods.",
    };

    /// <summary>The .rdp file (CRLF line ends, as mstsc writes them).</summary>
    public static string RdpFile(ClientTarget target, string? userPrincipalName)
    {
        ArgumentNullException.ThrowIfNull(target);
        var lines = new List<string>
        {
            $"full address:s:{target.Address}",
            "enablerdsaadauth:i:1",
            "targetisaadjoined:i:1",
        };
        if (userPrincipalName is not null)
        {
            lines.Add($"username:s:{userPrincipalName}");
        }

        lines.AddRange(
        [
            "authentication level:i:2",
            "prompt for credentials:i:0",
            "prompt for credentials on client:i:0",
            "enablecredsspsupport:i:1",
            "screen mode id:i:2",
        ]);
        return string.Concat(lines.Select(l => l + "\r\n"));
    }

    private static (Option<string> Host, Option<string?> Gateway, Option<int?> RdpPort, Option<string?> Config) CommonOptions()
    {
        var host = new Option<string>("--host") { Description = "The host's name or one of its aliases (the name put in front of the gateway address).", Required = true };
        var gateway = new Option<string?>("--gateway-address")
        {
            Description = "A DNS name of this gateway under which HOST.GATEWAY-ADDRESS resolves to it. Default: the host part of the server's public name as configured (Gatehouse:PublicName in appsettings.json, --config FILE or the environment, e.g. Gatehouse__PublicName); a --public-name flag given to 'gatehouse serve' is not visible here, so pass --gateway-address then.",
        };
        var rdpPort = new Option<int?>("--rdp-port") { Description = "The gateway's RDP port. Default: the server's configuration (Gatehouse:RdpPort, 3389)." };
        var config = new Option<string?>("--config") { Description = "The server's JSON configuration file (what 'gatehouse serve --config' reads), for the public name and RDP port." };
        return (host, gateway, rdpPort, config);
    }

    private static async Task<ClientTarget> ResolveAsync(CliContext context, ParseResult parse, Option<string> hostOption, Option<string?> gatewayOption, Option<int?> portOption, CancellationToken cancellationToken)
    {
        // The server (or, on its machine, its configuration) gives the public name and RDP port; the host's label is
        // the name or alias the caller asked for.
        var target = await context.Client.GetClientTargetAsync(parse.GetValue(hostOption)!.Trim(), cancellationToken).ConfigureAwait(false);
        return TryTarget(target, parse.GetValue(gatewayOption), parse.GetValue(portOption), out var resolved, out var error)
            ? resolved
            : throw new CliException(error);
    }

    /// <summary>
    /// The address a client connects to for <paramref name="target"/>: <c>LABEL.GATEWAY:PORT</c>, with the gateway's DNS
    /// name (default: the host part of the public name) and RDP port (default: the server's); false with the sentence
    /// to show when either cannot work (the CLI's <c>connect-command</c> and <c>rdp-file</c>, and the portal, use it).
    /// </summary>
    public static bool TryTarget(ClientTargetView target, string? gatewayAddress, int? rdpPort, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ClientTarget? resolved, out string error)
    {
        ArgumentNullException.ThrowIfNull(target);
        resolved = null;
        var port = rdpPort ?? target.RdpPort;
        if (port is < 1 or > 65535)
        {
            error = $"The RDP port {port.ToString(CultureInfo.InvariantCulture)} is not a port clients can use; give the gateway's RDP port with --rdp-port.";
            return false;
        }

        var gateway = (gatewayAddress ?? target.PublicHost).Trim().TrimEnd('.').ToLowerInvariant();
        if (gateway.Length == 0 || IPAddress.TryParse(gateway, out _) || gateway.StartsWith('['))
        {
            error = $"The gateway address '{gateway}' is not a DNS name, so FreeRDP could not take the host's name from /v: (an IP address gives its first number); give a DNS name of the gateway with --gateway-address NAME (with a wildcard record *.NAME pointing at it).";
            return false;
        }

        if (gateway.Contains(':', StringComparison.Ordinal) || gateway.Contains('/', StringComparison.Ordinal))
        {
            error = $"The gateway address '{gateway}' must be a DNS name only (no scheme or port); give the RDP port with --rdp-port.";
            return false;
        }

        error = string.Empty;
        resolved = new ClientTarget($"{target.Label}.{gateway}:{port.ToString(CultureInfo.InvariantCulture)}", target.PublicName, target.CertificateSha256);
        return true;
    }

    /// <summary>On stderr (the command line or file stays as it is): the certificate clients should see, when the server gave it.</summary>
    private static async Task NoteCertificateAsync(CliContext context, ClientTarget target)
    {
        if (target.CertificateSha256 is { } hash)
        {
            await context.Error.WriteLineAsync($"The gateway's certificate has SHA-256 {hash}; check that the client shows this certificate when it first connects.").ConfigureAwait(false);
        }
    }
}

/// <summary>What a client connects to: <c>HOST.GATEWAY:PORT</c> and the identity provider's public <c>host[:port]</c>.</summary>
internal sealed record ClientTarget(string Address, string PublicName, string? CertificateSha256 = null);
