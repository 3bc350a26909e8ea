using System.CommandLine;
using System.Globalization;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse host enroll NAME</c> and <c>gatehouse host status NAME</c>: the host's agent.</summary>
internal static class HostAgentCommands
{
    public static Command Enroll(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var lifetime = new Option<string>("--lifetime") { Description = "How long the token works: 1m to 1h (default 1h).", DefaultValueFactory = _ => "1h" };
        var output = OutputOption.Create();
        var command = new Command(
            "enroll",
            "Issue a one-time enrolment token for the host's agent and print the one command to run on the host (as root): gatehouse agent join --server URL --token T. The token works once, for at most an hour, and carries the server certificate's SHA-256, which the agent pins. Needs the right to update the host.")
        {
            name, lifetime, output,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            if (!CliRunner.TryParseDuration(parse.GetValue(lifetime)!, out var span) || span < TimeSpan.FromMinutes(1) || span > TimeSpan.FromHours(1))
            {
                throw new CliException("--lifetime must be between 1m and 1h (for example 10m or 1h).");
            }

            var view = await context.Client.EnrollHostAgentAsync(parse.GetValue(name)!, new HostEnrollRequest((int)span.TotalSeconds), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(view).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.Output.WriteLineAsync($"Enrolment token for {view.Host} (single use, until {CliRunner.Format(view.ExpiresAt)}):").ConfigureAwait(false);
            await context.Output.WriteLineAsync(view.Token).ConfigureAwait(false);
            await context.Output.WriteLineAsync("Run on the host, as root:").ConfigureAwait(false);
            await context.Output.WriteLineAsync($"  {view.Command}").ConfigureAwait(false);
            await context.Output.WriteLineAsync("then start the agent: systemctl enable --now gatehouse-agent (packaging/systemd/gatehouse-agent.service).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command Status(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var output = OutputOption.Create();
        var command = new Command("status", "Show the host's agent and its health: last seen, RDP service and key, managed accounts, clock skew, version, last error; each check with its fix.") { name, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var view = await context.Client.GetHostStatusAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(view).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.WriteFieldsAsync(
            [
                ("Host", view.Host),
                ("Health", view.Health),
                ("Agent", view.Enrolled ? $"{view.AgentId} (joined {CliRunner.Format(view.JoinedAt)}, version {view.AgentVersion ?? "?"})" : "(not enrolled)"),
                ("Last seen", CliRunner.Format(view.LastSeenAt)),
                ("Operating system", view.OperatingSystem),
                ("RDP", view.RdpListening is null ? "-" : $"{(view.RdpListening == true ? "listening" : "NOT listening")} on port {view.RdpPort?.ToString(CultureInfo.InvariantCulture)}"),
                ("Host key", view.CertificatePin is null ? "(none)" : $"{view.CertificatePin} (by {view.CertificatePinnedBy ?? "?"})"),
                ("Managed accounts", view.ManagedAccounts?.ToString(CultureInfo.InvariantCulture)),
                ("Clock skew", view.ClockSkewSeconds is { } skew ? string.Create(CultureInfo.InvariantCulture, $"{skew:0.#} s") : null),
                ("Last error", view.LastError),
            ]).ConfigureAwait(false);
            context.WriteTable(["Check", "Status", "Message", "Fix"], view.Checks.Select(c => (IReadOnlyList<string?>)[c.Check, c.Status, c.Message, c.Fix]));
            return ExitCodes.Ok;
        });
        return command;
    }
}
