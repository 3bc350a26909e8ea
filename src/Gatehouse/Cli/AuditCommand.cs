using System.CommandLine;
using System.Globalization;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse audit</c>: what in the tenant is out of policy, each finding with its fix (docs/audit.md).</summary>
internal static class AuditCommand
{
    /// <summary>The default of <c>--fail-on</c>: findings never change the exit code.</summary>
    public const string None = "none";

    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var tenant = new Option<string?>("--tenant") { Description = "The tenant you expect to audit (its id or one of its domains); the command fails when the server or store holds another." };
        var failOn = new Option<string>("--fail-on")
        {
            Description = "Exit with code 3 when any finding is at or above this severity: info, low, medium, high, critical, or none (default: findings never change the exit code). For CI.",
            DefaultValueFactory = _ => None,
        };
        failOn.AcceptOnlyFromAmong([None, .. AuditSeverity.All]);
        var config = new Option<string?>("--config") { Description = "With --data/--store: the server's configuration file, for Gatehouse:GatewayAddresses (the addresses on the hosts the gateway connects to)." };
        var output = OutputOption.Create();
        var command = new Command(
            "audit",
            "List what is out of policy in the tenant, most severe first, each finding with the command that fixes it: hosts not enrolled, enrolled hosts that still have stored passwords, silent or unhealthy agents, hosts whose RDP port listens on addresses other than the gateway's, Virtual Machine Administrator Login at /, role assignments of disabled users, report-only or disabled Conditional Access policies, no policy requiring MFA. Exit codes: 0 done (findings or not, unless --fail-on), 1 the audit could not run, 3 a finding at or above --fail-on.")
        {
            tenant, failOn, config, output,
        };
        admin.AddTo(command);
        command.SetAdminAction(
            admin,
            environment,
            async (context, parse, ct) =>
            {
                var view = await context.Client.AuditAsync(new AuditRequest(parse.GetValue(tenant)), ct).ConfigureAwait(false);
                if (OutputOption.IsJson(parse, output))
                {
                    await context.WriteJsonAsync(view).ConfigureAwait(false);
                }
                else
                {
                    await WriteTableAsync(context, view).ConfigureAwait(false);
                }

                var threshold = parse.GetValue(failOn) ?? None;
                return threshold != None && view.Findings.Any(f => AuditSeverity.Rank(f.Severity) >= AuditSeverity.Rank(threshold))
                    ? ExitCodes.FindingsAtOrAbove
                    : ExitCodes.Ok;
            },
            config);
        return command;
    }

    private static async Task WriteTableAsync(CliContext context, AuditView view)
    {
        if (view.Findings.Count == 0)
        {
            await context.Output.WriteLineAsync($"Audit of {view.Tenant} at {CliRunner.Format(view.Time)}: No findings.").ConfigureAwait(false);
            return;
        }

        await context.Output.WriteLineAsync($"Audit of {view.Tenant} at {CliRunner.Format(view.Time)}:").ConfigureAwait(false);
        context.WriteTable(
            ["Severity", "Finding", "Subject", "Message", "Fix"],
            view.Findings.Select(f => (IReadOnlyList<string?>)[f.Severity, f.Id, $"{f.SubjectKind} {f.Subject}", f.Message, f.Fix]));
        var counts = AuditSeverity.All.Reverse()
            .Select(s => string.Create(CultureInfo.InvariantCulture, $"{view.Counts.GetValueOrDefault(s)} {s}"));
        await context.Output.WriteLineAsync($"{view.Findings.Count} findings: {string.Join(", ", counts)}.").ConfigureAwait(false);
    }
}
