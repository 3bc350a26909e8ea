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
        var command = new Command("policy", "Conditional Access policies: create from JSON, list, show, replace, enable, disable, report-only, delete, what-if; authentication strengths (strength create|list|show|delete).");
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
        command.Subcommands.Add(StrengthCommand(admin, environment));
        return command;
    }

    private static Command StrengthCommand(AdminOptions admin, CliEnvironment environment)
    {
        var command = new Command(
            "strength",
            "Authentication strengths a policy can require (grantControls.authenticationStrength, by id or displayName): the built-in 'Multifactor authentication', 'Passwordless MFA' and 'Phishing-resistant MFA', and custom ones. "
            + "Gatehouse can achieve the combinations password, password,softwareOath, fido2 (a passkey) and temporaryAccessPassOneTime/MultiUse; the others are accepted and never met.");
        var name = new Argument<string>("NAME") { Description = "The strength's display name." };
        var combination = new Option<string[]>("--combination") { Description = "An allowed method combination (repeat it): fido2, password,softwareOath, password, temporaryAccessPassOneTime, windowsHelloForBusiness…", Required = true, AllowMultipleArgumentsPerToken = false };
        var description = new Option<string?>("--description") { Description = "What the strength is for." };
        var create = new Command("create", "Create a custom authentication strength.") { name, combination, description };
        create.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var created = await context.Client.CreateStrengthAsync(new CreateStrengthRequest(parse.GetValue(name), parse.GetValue(description), parse.GetValue(combination)), ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created authentication strength '{created.Name}' ({created.Id}): {string.Join(" | ", created.Combinations)}. Require it in a policy with \"grantControls\": {{\"authenticationStrength\": {{\"id\": \"{created.Id}\"}}}}.").ConfigureAwait(false);
            if (created.AchievableInGatehouse.Count == 0)
            {
                await context.Output.WriteLineAsync("Note: none of these combinations can be achieved in Gatehouse today, so a policy requiring it refuses every sign-in.").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        command.Subcommands.Add(create);

        var output = OutputOption.Create();
        var list = new Command("list", "List the built-in and custom authentication strengths.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListStrengthsAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "Type", "Achievable in Gatehouse", "Used by", "Id"], rows.Select(r => (IReadOnlyList<string?>)[r.Name, r.PolicyType, r.AchievableInGatehouse.Count == 0 ? "(none)" : string.Join(" | ", r.AchievableInGatehouse), string.Join(", ", r.UsedByPolicies), r.Id]));
            }

            return ExitCodes.Ok;
        });
        command.Subcommands.Add(list);

        var showName = new Argument<string>("NAME") { Description = "The strength's display name or id." };
        var showOutput = OutputOption.Create();
        var show = new Command("show", "Show an authentication strength: its combinations, which of them Gatehouse can achieve, and the policies using it.") { showName, showOutput };
        show.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var s = await context.Client.GetStrengthAsync(parse.GetValue(showName)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, showOutput))
            {
                await context.WriteJsonAsync(s).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.Output.WriteLineAsync($"{s.Name} ({s.PolicyType}, {s.Id})").ConfigureAwait(false);
            if (s.Description is { Length: > 0 })
            {
                await context.Output.WriteLineAsync(s.Description).ConfigureAwait(false);
            }

            await context.Output.WriteLineAsync($"Allowed combinations: {string.Join(" | ", s.Combinations)}").ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Achievable in Gatehouse: {(s.AchievableInGatehouse.Count == 0 ? "none" : string.Join(" | ", s.AchievableInGatehouse))}").ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Used by: {(s.UsedByPolicies.Count == 0 ? "no policy" : string.Join(", ", s.UsedByPolicies))}").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        command.Subcommands.Add(show);

        var deleteName = new Argument<string>("NAME") { Description = "The custom strength's display name or id." };
        var delete = new Command("delete", "Delete a custom authentication strength that no policy uses.") { deleteName };
        delete.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var deleted = await context.Client.DeleteStrengthAsync(parse.GetValue(deleteName)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted authentication strength '{deleted.Deleted}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        command.Subcommands.Add(delete);
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
        var mfa = new Option<bool>("--mfa") { Description = "Suppose the sign-in did the password and the authenticator app's code (amr pwd otp mfa; default: password only)." };
        var passkey = new Option<bool>("--passkey") { Description = "Suppose the sign-in used a passkey (amr fido mfa)." };
        var output = OutputOption.Create();
        var command = new Command("what-if", "Show what every policy does to a sign-in of USER to HOST now, and the final verdict of the access check; for a policy requiring an authentication strength, which sign-in paths (password, authenticator app, passkey) meet it and the fix.") { user, host, ip, mfa, passkey, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var result = await context.Client.WhatIfAsync(new WhatIfRequest(parse.GetValue(user), parse.GetValue(host), parse.GetValue(ip), parse.GetValue(mfa), parse.GetValue(passkey)), ct).ConfigureAwait(false);
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

            await StrengthReport.WriteAsync(context.Output, result.Strengths).ConfigureAwait(false);
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

/// <summary>The authentication-strength part of <c>what-if</c> and <c>diagnose</c> in text.</summary>
internal static class StrengthReport
{
    public static async Task WriteAsync(TextWriter output, IReadOnlyList<StrengthLine>? strengths)
    {
        if (strengths is not { Count: > 0 })
        {
            return;
        }

        await output.WriteLineAsync("Authentication strengths:").ConfigureAwait(false);
        foreach (var s in strengths)
        {
            await output.WriteLineAsync($"  '{s.Policy}' ({s.State}) requires '{s.Strength}': {(s.Satisfied ? "met by this sign-in" : "NOT met by this sign-in")}.").ConfigureAwait(false);
            if (s.Reason is not null)
            {
                await output.WriteLineAsync($"    {s.Reason}").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"    Allowed: {string.Join(" | ", s.AllowedCombinations)}; achievable in Gatehouse today: {(s.AchievableInGatehouse.Count == 0 ? "none" : string.Join(" | ", s.AchievableInGatehouse))}.").ConfigureAwait(false);
            foreach (var path in s.Paths)
            {
                await output.WriteLineAsync($"    {(path.Meets ? "meets   " : "does not")} {path.Path} ({path.Methods})").ConfigureAwait(false);
            }

            if (!s.Satisfied)
            {
                await output.WriteLineAsync($"    Fix: {s.Fix}").ConfigureAwait(false);
            }
        }
    }
}
