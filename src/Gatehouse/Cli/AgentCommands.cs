using System.CommandLine;
using Gatehouse.Agents;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse agent join</c> and <c>gatehouse agent run</c>: the host agent (run on the RDP host, as root). It connects
/// out to the server over HTTPS, pinned to the certificate named in the enrolment token; the host needs no inbound port.
/// </summary>
internal static class AgentCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var command = new Command("agent", "The host agent, run on the RDP host: join (once, with the token from 'gatehouse host enroll') and run (as a service).");
        command.Subcommands.Add(JoinCommand(environment));
        command.Subcommands.Add(RunCommand(environment));
        return command;
    }

    private static Option<string> StateDirOption() => new("--state-dir")
    {
        Description = $"Where the agent keeps its key (mode 0600, never sent), its configuration and the accounts it manages (default {AgentState.DefaultDirectory}).",
        DefaultValueFactory = _ => AgentState.DefaultDirectory,
    };

    private static Command JoinCommand(CliEnvironment environment)
    {
        var server = new Option<string>("--server") { Description = "The Gatehouse server's URL (https://NAME[:PORT]).", Required = true };
        var token = new Option<string>("--token") { Description = "The one-time enrolment token ('gatehouse host enroll').", Required = true };
        var stateDir = StateDirOption();
        var rdpPort = new Option<int>("--rdp-port") { Description = "The local RDP service's port (default 3389).", DefaultValueFactory = _ => 3389 };
        var interval = new Option<int>("--health-interval") { Description = "Seconds between health reports (5 to 300; default 30).", DefaultValueFactory = _ => 30 };
        var adminGroups = new Option<string[]>("--admin-group") { Description = "A group Administrator Login gives (repeatable; default sudo on Linux).", Arity = ArgumentArity.ZeroOrMore };
        var userGroups = new Option<string[]>("--user-group") { Description = "A group User Login gives (repeatable; default none on Linux).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("join", "Join this host: create the agent's key pair, read the local RDP service's key, and register both with the server using the one-time token.")
        {
            server, token, stateDir, rdpPort, interval, adminGroups, userGroups,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (!Uri.TryCreate(parse.GetValue(server), UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps)
            {
                await Console.Error.WriteLineAsync("agent join: --server must be an https:// URL.").ConfigureAwait(false);
                return ExitCodes.Failed;
            }

            try
            {
                var state = new AgentState(parse.GetValue(stateDir)!);
                var user = parse.GetValue(userGroups);
                var config = await HostAgentRunner.JoinAsync(
                    state, url, parse.GetValue(token)!, parse.GetValue(rdpPort), parse.GetValue(interval), parse.GetValue(adminGroups), user is { Length: > 0 } ? user : null,
                    environment.HttpHandler, new LocalRdpProbe(), environment.Time, ct).ConfigureAwait(false);
                await Console.Out.WriteLineAsync($"Joined as agent {config.AgentId} for host {config.HostName}; key in {state.KeyPath}. Start it: systemctl enable --now gatehouse-agent").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (Exception e) when (e is AgentChannelException or HttpRequestException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"agent join: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
        });
        return command;
    }

    private static Command RunCommand(CliEnvironment environment)
    {
        var stateDir = StateDirOption();
        var command = new Command("run", "Run the agent until stopped: long-poll the server for logons (just-in-time accounts, a fresh password per logon), report health, reconnect by itself.") { stateDir };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var state = new AgentState(parse.GetValue(stateDir)!);
                var config = state.LoadConfig();
                using var key = state.LoadKey();
                using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
                using var http = new HttpClient(environment.HttpHandler ?? AgentClient.PinnedHandler(config.ServerCertificateSha256), disposeHandler: environment.HttpHandler is null)
                {
                    Timeout = AgentBroker.PollWait + TimeSpan.FromSeconds(35),
                };
                var runner = new ProcessRunner();
                IHostAccounts accounts = OperatingSystem.IsWindows() ? new WindowsHostAccounts(runner) : new LinuxHostAccounts(runner);
                using var agent = new HostAgentRunner(state, config, key, new AgentClient(http, environment.Time), accounts, new LocalRdpProbe(), environment.Time, loggers.CreateLogger("Gatehouse.Agent"));
                await agent.RunAsync(ct).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                await Console.Error.WriteLineAsync($"agent run: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
        });
        return command;
    }
}
