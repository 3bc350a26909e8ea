using System.CommandLine;
using System.Globalization;
using Gatehouse.LoadGen;
using Gatehouse.LoadGen.Gateway;

var requests = new Option<int>("--requests") { Description = "Requests per endpoint for /healthz, discovery and JWKS.", DefaultValueFactory = _ => 5000 };
var concurrency = new Option<int>("--concurrency") { Description = "Concurrent clients (each with its own keep-alive HTTPS connection).", DefaultValueFactory = _ => 16 };
var codes = new Option<int>("--codes") { Description = "Authorization codes minted beforehand and redeemed at the token endpoint (they live 60 s).", DefaultValueFactory = _ => 1000 };
var output = new Option<string>("--output") { Description = "table or json.", DefaultValueFactory = _ => "table" };
output.AcceptOnlyFromAmong("table", "json");
var store = new Option<string?>("--store") { Description = "A PostgreSQL connection string (Npgsql) to run on, instead of a throwaway SQLite file; use an empty database." };

var profile = new Option<bool>("--profile") { Description = "Also report where the redemptions' time goes (every span, database commands included), on stderr." };

var pkce = new Option<bool>("--pkce") { Description = "Mint the codes with an S256 challenge and redeem them with the verifier, as MSAL clients do (FreeRDP sends none)." };

var root = new RootCommand("Measures the identity provider under local load: codes redeemed per second at the token endpoint, and discovery and JWKS against /healthz, on a real in-process host over HTTPS.")
{
    requests, concurrency, codes, output, store, profile, pkce,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var settings = new LoadSettings(parse.GetValue(requests), parse.GetValue(concurrency), parse.GetValue(codes), parse.GetValue(store), parse.GetValue(profile), parse.GetValue(pkce));
    if (settings.Requests < 1 || settings.Concurrency < 1 || settings.Codes < 1)
    {
        await parse.InvocationConfiguration.Error.WriteLineAsync("gatehouse-loadgen: --requests, --concurrency and --codes must be at least 1.");
        return 2;
    }

    var progress = parse.InvocationConfiguration.Error;
    var report = await LoadRun.RunAsync(settings, message => progress.WriteLine(message), cancellationToken);
    var writer = parse.InvocationConfiguration.Output;
    await writer.WriteAsync(parse.GetValue(output) == "json" ? report.ToJson() : report.ToTable());
    return report.Results.Sum(r => r.Errors) == 0 ? 0 : 1;
});

var signIns = new Option<int>("--signins") { Description = "Sign-ins per phase (TLS-only, refused, allowed); tokens and aad_nonces are minted beforehand.", DefaultValueFactory = _ => 300 };
var gatewayConcurrency = new Option<int>("--concurrency") { Description = "Concurrent clients.", DefaultValueFactory = _ => 8 };
var keys = new Option<int>("--keys") { Description = "Pre-generated RSA-2048 PoP keys, used round-robin (FreeRDP makes one per connection).", DefaultValueFactory = _ => 16 };
var relayMiB = new Option<int>("--relay-mib") { Description = "MiB moved host → client per relay transfer.", DefaultValueFactory = _ => 256 };
var relayRounds = new Option<int>("--relay-rounds") { Description = "Relay rounds (each: direct, then through the gateway).", DefaultValueFactory = _ => 3 };
var sessions = new Option<int>("--sessions") { Description = "Idle connections for the memory measurement (direct, then relayed).", DefaultValueFactory = _ => 200 };
var desktopRuns = new Option<int>("--desktop-runs") { Description = "xfreerdp3 runs to the xrdp desktop, each direct and through the gateway (0 = skip).", DefaultValueFactory = _ => 0 };
var xrdpUser = new Option<string>("--xrdp-user") { Description = "Local account on the xrdp host.", DefaultValueFactory = _ => "benchuser" };
var xrdpPassword = new Option<string>("--xrdp-password") { Description = "Its password.", DefaultValueFactory = _ => "Bench-Pass-123" };
var xrdpPort = new Option<int>("--xrdp-port") { Description = "xrdp on 127.0.0.1.", DefaultValueFactory = _ => 3389 };
var peers = new Option<bool>("--peers") { Description = "Instead of (a)–(d): the relay and memory measurements with the TLS stub host and the clients in child processes (peer-host, peer-clients), so this process's CPU and RSS are the gateway's alone." };
var idleSessions = new Option<string>("--idle-sessions") { Description = "With --peers: idle relayed session counts for the memory measurement, comma-separated.", DefaultValueFactory = _ => "1000" };
var binds = new Option<int>("--binds") { Description = "With --peers: loopback source addresses for the clients (127.0.0.2 onwards).", DefaultValueFactory = _ => 8 };
var relayWrite = new Option<int>("--relay-write") { Description = "With --peers: bytes per write of the stub host in a relay transfer (1-16384; 1024 = small records, like a busy desktop's fast-path updates).", DefaultValueFactory = _ => 16 * 1024 };
var rdpListener = new Option<string>("--rdp-listener") { Description = "With --peers: the gateway's RDP listener, socket (its own accept loop) or kestrel (a Kestrel endpoint).", DefaultValueFactory = _ => "socket" };
rdpListener.AcceptOnlyFromAmong("socket", "kestrel");
var gatewayOutput = new Option<string>("--output") { Description = "table or json.", DefaultValueFactory = _ => "table" };
gatewayOutput.AcceptOnlyFromAmong("table", "json");
var gateway = new Command("gateway", "Measures the RDP gateway in the same in-process host: web-account sign-ins per second, AssertionValidator latency, relay throughput against a direct TLS stream, memory per idle relayed session against idle direct TLS connections, and (--desktop-runs) xfreerdp3 reaching the xrdp desktop directly and through the gateway.")
{
    signIns, gatewayConcurrency, keys, relayMiB, relayRounds, sessions, desktopRuns, xrdpUser, xrdpPassword, xrdpPort, gatewayOutput, peers, idleSessions, binds, relayWrite, rdpListener,
};
gateway.SetAction(async (parse, cancellationToken) =>
{
    if (parse.GetValue(peers))
    {
        var counts = parse.GetValue(idleSessions)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var peerSettings = new PeerSettings(parse.GetValue(relayMiB), parse.GetValue(relayRounds), counts, parse.GetValue(gatewayConcurrency), Math.Clamp(parse.GetValue(binds), 1, 250), parse.GetValue(keys))
        {
            WriteBytes = Math.Clamp(parse.GetValue(relayWrite), 1, 16 * 1024),
            Listener = parse.GetValue(rdpListener)!,
        };
        var peerReport = await PeerRun.RunAsync(peerSettings, message => parse.InvocationConfiguration.Error.WriteLine(message), cancellationToken);
        await parse.InvocationConfiguration.Output.WriteAsync(peerReport);
        return 0;
    }

    var settings = new GatewaySettings(parse.GetValue(signIns), parse.GetValue(gatewayConcurrency), parse.GetValue(keys), parse.GetValue(relayMiB), parse.GetValue(relayRounds), parse.GetValue(sessions), parse.GetValue(desktopRuns), parse.GetValue(xrdpUser)!, parse.GetValue(xrdpPassword)!, parse.GetValue(xrdpPort));
    if (settings.SignIns < 1 || settings.Concurrency < 1 || settings.Keys < 1 || settings.RelayMiB < 1 || settings.RelayRounds < 1 || settings.Sessions < 1 || settings.DesktopRuns < 0)
    {
        await parse.InvocationConfiguration.Error.WriteLineAsync("gatehouse-loadgen gateway: the counts must be at least 1 (--desktop-runs at least 0).");
        return 2;
    }

    var progress = parse.InvocationConfiguration.Error;
    var report = await GatewayRun.RunAsync(settings, message => progress.WriteLine(message), cancellationToken);
    await parse.InvocationConfiguration.Output.WriteAsync(parse.GetValue(gatewayOutput) == "json" ? report.ToJson() : report.ToTable());
    return report.Errors == 0 ? 0 : 1;
});
root.Subcommands.Add(gateway);

var peerWrite = new Option<int>("--write") { Description = "Bytes per write of a bulk transfer.", DefaultValueFactory = _ => 16 * 1024 };
var peerHost = new Command("peer-host", "Started by 'gateway --peers': the TLS stub host in a process of its own; prints 'port N', runs until stdin closes.")
{
    peerWrite,
};
peerHost.SetAction(async (parse, cancellationToken) => await PeerCommands.HostAsync(parse.InvocationConfiguration.Output, parse.GetValue(peerWrite), cancellationToken));
root.Subcommands.Add(peerHost);
var peerBind = new Option<string[]>("--bind") { Description = "Loopback source addresses, used round-robin.", AllowMultipleArgumentsPerToken = false };
var peerClients = new Command("peer-clients", "Started by 'gateway --peers': benchmark RDP clients in a process of their own, driven by commands on stdin (see Gateway/Peers.cs).")
{
    peerBind,
};
peerClients.SetAction(async (parse, cancellationToken) => await PeerCommands.ClientsAsync((parse.GetValue(peerBind) ?? []).Select(System.Net.IPAddress.Parse).ToArray(), parse.InvocationConfiguration.Output, cancellationToken));
root.Subcommands.Add(peerClients);

var prototypeUrl = new Option<string>("--url") { Description = "The OpenIddict prototype's base address (dotnet run of prototypes/Gatehouse.OpenIddictPrototype).", DefaultValueFactory = _ => "http://127.0.0.1:5099" };
var prototypeCodes = new Option<int>("--codes") { Description = "Codes minted through its authorize endpoint, then redeemed.", DefaultValueFactory = _ => 1000 };
var prototypeConcurrency = new Option<int>("--concurrency") { Description = "Concurrent clients.", DefaultValueFactory = _ => 16 };
var openIddict = new Command("openiddict", "Measures code redemption at the OpenIddict prototype's token endpoint (docs/decisions/0004), the same way as Gatehouse's.")
{
    prototypeUrl, prototypeCodes, prototypeConcurrency,
};
openIddict.SetAction(async (parse, cancellationToken) =>
{
    var (redeem, mintSeconds) = await OpenIddictRun.RunAsync(new Uri(parse.GetValue(prototypeUrl)!), parse.GetValue(prototypeCodes), parse.GetValue(prototypeConcurrency), message => parse.InvocationConfiguration.Error.WriteLine(message), cancellationToken);
    await parse.InvocationConfiguration.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{redeem.Name}: {redeem.Requests} requests, {redeem.Errors} errors, {redeem.RequestsPerSecond:F0}/s, p50 {redeem.P50Ms:F1} ms, p99 {redeem.P99Ms:F1} ms (minting took {mintSeconds:F1} s)"));
    return redeem.Errors == 0 ? 0 : 1;
});
root.Subcommands.Add(openIddict);

var logRows = new Option<int>("--rows") { Description = "Rows appended in all.", DefaultValueFactory = _ => 20000 };
var logConcurrency = new Option<int>("--concurrency") { Description = "Appenders per node, each awaiting its row's commit.", DefaultValueFactory = _ => 64 };
var logNodes = new Option<int>("--nodes") { Description = "In-process nodes on the one store.", DefaultValueFactory = _ => 2 };
var logStore = new Option<string>("--store") { Description = "A PostgreSQL connection string (Npgsql); use an empty database.", Required = true };
var signInLog = new Command("signin-log", "Measures the sign-in log's group commit: rows per second appended through --nodes in-process nodes on one PostgreSQL, then verifies the chain.")
{
    logRows, logConcurrency, logNodes, logStore,
};
signInLog.SetAction(async (parse, cancellationToken) =>
{
    var settings = new SignInLogSettings(parse.GetValue(logRows), parse.GetValue(logConcurrency), parse.GetValue(logNodes), parse.GetValue(logStore)!);
    if (settings.Rows < 1 || settings.Concurrency < 1 || settings.Nodes < 1)
    {
        await parse.InvocationConfiguration.Error.WriteLineAsync("gatehouse-loadgen signin-log: --rows, --concurrency and --nodes must be at least 1.");
        return 2;
    }

    var report = await SignInLogRun.RunAsync(settings, message => parse.InvocationConfiguration.Error.WriteLine(message), cancellationToken);
    await parse.InvocationConfiguration.Output.WriteAsync(report);
    return report.Contains("BROKEN", StringComparison.Ordinal) ? 1 : 0;
});
root.Subcommands.Add(signInLog);

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
return await root.Parse(args).InvokeAsync();
