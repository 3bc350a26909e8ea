using System.CommandLine;
using Gatehouse.Access;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse policy …</c>: Conditional Access policies (Entra-shaped JSON) and what-if.</summary>
internal static class PolicyCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("policy", "Conditional Access policies: create from JSON, list, show, replace, enable, disable, report-only, delete, what-if.");
        admin.AddTo(command);
        command.Subcommands.Add(CreateCommand(admin, environment));
        command.Subcommands.Add(ListCommand(admin, environment));
        command.Subcommands.Add(ShowCommand(admin, environment));
        command.Subcommands.Add(DeleteCommand(admin, environment));
        command.Subcommands.Add(ReplaceCommand(admin, environment));
        command.Subcommands.Add(StateCommand("enable", "enabled", "Enable a policy (evaluated and enforced).", admin, environment));
        command.Subcommands.Add(StateCommand("disable", "disabled", "Disable a policy (not evaluated).", admin, environment));
        command.Subcommands.Add(StateCommand("report-only", "enabledForReportingButNotEnforced", "Evaluate a policy and log its outcome without enforcing it.", admin, environment));
        command.Subcommands.Add(WhatIfCommand(admin, environment));
        return command;
    }

    private static Command ReplaceCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The policy's displayName (or id)." };
        var file = new Option<FileInfo>("--file") { Description = "The new policy JSON (the form 'policy show' prints); the policy keeps its id.", Required = true };
        var command = new Command("replace", "Replace a policy with a new version from a JSON file (checked first).") { name, file };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var json = await ReadPolicyFileAsync(parse.GetValue(file)!, "replace", ct).ConfigureAwait(false);
            var record = await context.Client.ReplacePolicyAsync(parse.GetValue(name)!, json, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Replaced policy '{record.Name}' ({record.Id}), state {record.State}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command StateCommand(string verb, string state, string description, AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The policy's displayName (or id)." };
        var command = new Command(verb, description) { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var record = await context.Client.SetPolicyStateAsync(parse.GetValue(name)!, state, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Policy '{record.Name}' is now {record.State}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<string> ReadPolicyFileAsync(FileInfo info, string verb, CancellationToken cancellationToken)
    {
        if (!info.Exists)
        {
            throw new CliException($"The policy file {info.FullName} does not exist; check --file.");
        }

        if (info.Length > PolicyJson.MaxBytes)
        {
            throw new CliException($"The policy file {info.FullName} is larger than {PolicyJson.MaxBytes} bytes; a policy is a small JSON document.");
        }

        var json = await File.ReadAllTextAsync(info.FullName, cancellationToken).ConfigureAwait(false);
        return PolicyJson.TryParse(json, out _, out var error)
            ? json
            : throw new CliException($"{info.Name}: {error} Fix the file and run 'gatehouse policy {verb}' again.");
    }

    private static Command CreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var file = new Option<FileInfo>("--file") { Description = "The policy as JSON (displayName, state, conditions, grantControls, sessionControls).", Required = true };
        var command = new Command("create", "Create a policy from a JSON file; it is checked first (unknown members and values are refused).") { file };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var json = await ReadPolicyFileAsync(parse.GetValue(file)!, "create", ct).ConfigureAwait(false);
            var record = await context.Client.CreatePolicyAsync(json, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created policy '{record.Name}' ({record.Id}), state {record.State}. Check its effect with 'gatehouse policy what-if --user UPN --host NAME'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the policies.") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListPoliciesAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "State", "Controls", "Id", "Modified"], rows.Select(r => (IReadOnlyList<string?>)[r.Name, r.State, r.Controls, r.Id.ToString(), CliRunner.Format(r.ModifiedAt)]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ShowCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The policy's displayName (or id)." };
        var command = new Command("show", "Print a policy's JSON (the form 'policy create' takes).") { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            await context.WriteTextAsync(await context.Client.GetPolicyJsonAsync(parse.GetValue(name)!, ct).ConfigureAwait(false) + context.Output.NewLine).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DeleteCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The policy's displayName (or id)." };
        var command = new Command("delete", "Delete a policy.") { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var deleted = await context.Client.DeletePolicyAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted policy '{deleted.Deleted}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command WhatIfCommand(AdminOptions admin, CliEnvironment environment)
    {
        var user = new Option<string>("--user") { Description = "The user's UPN.", Required = true };
        var host = new Option<string>("--host") { Description = "The host's name.", Required = true };
        var ip = new Option<string?>("--ip") { Description = "The client's IP address (for location conditions)." };
        var mfa = new Option<bool>("--mfa") { Description = "Suppose the sign-in did multi-factor authentication (default: password only)." };
        var output = OutputOption.Create();
        var command = new Command("what-if", "Show what every policy does to a sign-in of USER to HOST now, and the final verdict of the access check.") { user, host, ip, mfa, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var result = await context.Client.WhatIfAsync(new WhatIfRequest(parse.GetValue(user), parse.GetValue(host), parse.GetValue(ip), parse.GetValue(mfa)), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(result).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.Output.WriteLineAsync($"What if {result.User} signs in to {result.Host} from {result.ClientAddress ?? "an unknown address"} with {string.Join(" + ", result.Methods)}:").ConfigureAwait(false);
            context.WriteTable(["Policy", "State", "Result", "Reason"], result.Policies.Select(p => (IReadOnlyList<string?>)[p.Policy, p.State, p.Result, p.Reason]));
            if (result.BrokenPolicy is not null)
            {
                await context.Output.WriteLineAsync($"Unreadable: {result.BrokenPolicy}").ConfigureAwait(false);
            }

            await context.Output.WriteLineAsync($"Verdict: {result.Verdict}").ConfigureAwait(false);
            if (!result.Allowed)
            {
                await context.Output.WriteLineAsync($"The client would see: \"{result.UserMessage}\"").ConfigureAwait(false);
                if (result.MfaRequired)
                {
                    await context.Output.WriteLineAsync("MFA is required: the same sign-in with multi-factor authentication would be allowed.").ConfigureAwait(false);
                }

                await context.Output.WriteLineAsync($"To fix: {result.Fix}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
