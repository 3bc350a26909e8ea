using System.CommandLine;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse policy …</c>: Conditional Access policies (Entra-shaped JSON) and what-if.</summary>
internal static class PolicyCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("policy", "Conditional Access policies: create from JSON, list, show, delete, what-if.");
        admin.AddTo(command);
        command.Subcommands.Add(CreateCommand(admin, environment));
        command.Subcommands.Add(ListCommand(admin, environment));
        command.Subcommands.Add(ShowCommand(admin, environment));
        command.Subcommands.Add(DeleteCommand(admin, environment));
        command.Subcommands.Add(WhatIfCommand(admin, environment));
        return command;
    }

    private static Command CreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var file = new Option<FileInfo>("--file") { Description = "The policy as JSON (displayName, state, conditions, grantControls, sessionControls).", Required = true };
        var command = new Command("create", "Create a policy from a JSON file; it is checked first (unknown members and values are refused).") { file };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var info = parse.GetValue(file)!;
            if (!info.Exists)
            {
                throw new CliException($"The policy file {info.FullName} does not exist; check --file.");
            }

            if (info.Length > PolicyJson.MaxBytes)
            {
                throw new CliException($"The policy file {info.FullName} is larger than {PolicyJson.MaxBytes} bytes; a policy is a small JSON document.");
            }

            var json = await File.ReadAllTextAsync(info.FullName, ct).ConfigureAwait(false);
            if (!PolicyJson.TryParse(json, out var policy, out var error))
            {
                throw new CliException($"{info.Name}: {error} Fix the file and run 'gatehouse policy create' again.");
            }

            var normalized = DirectoryService.NormalizeName(policy.DisplayName);
            if (await context.Db.Policies.AnyAsync(p => p.TenantId == context.Tenant.Id && p.NormalizedName == normalized, ct).ConfigureAwait(false))
            {
                throw new CliException($"A policy named '{policy.DisplayName}' already exists; delete it first ('gatehouse policy delete \"{policy.DisplayName}\"') or choose another displayName.");
            }

            var now = context.Now;
            var record = new PolicyRecord
            {
                Id = Guid.NewGuid(),
                TenantId = context.Tenant.Id,
                DisplayName = policy.DisplayName.Trim(),
                NormalizedName = normalized,
                State = AccessProbe.StateName(policy.State),
                CreatedAt = now,
                ModifiedAt = now,
            };
            record.Json = PolicyJson.Serialize(policy with { Id = record.Id });
            context.Db.Policies.Add(record);
            await context.Db.SaveChangesAsync(ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created policy '{record.DisplayName}' ({record.Id}), state {record.State}. Check its effect with 'gatehouse policy what-if --user UPN --host NAME'.").ConfigureAwait(false);
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
            var records = await context.Db.Policies.AsNoTracking().Where(p => p.TenantId == context.Tenant.Id).OrderBy(p => p.CreatedAt).ToListAsync(ct).ConfigureAwait(false);
            var rows = records.Select(r =>
            {
                var parsed = PolicyJson.TryParse(r.Json, out var policy, out var error);
                return new PolicyRow(r.Id, r.DisplayName, r.State, parsed ? Controls(policy!) : $"unreadable: {error}", r.CreatedAt, r.ModifiedAt);
            }).ToList();
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
            var record = await FindAsync(context, parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync(record.Json).ConfigureAwait(false);
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
            var record = await FindAsync(context, parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Db.Policies.Where(p => p.Id == record.Id).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted policy '{record.DisplayName}'.").ConfigureAwait(false);
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
            var probe = await AccessProbe.RunAsync(context, parse.GetValue(user)!, parse.GetValue(host)!, parse.GetValue(ip), parse.GetValue(mfa), ct).ConfigureAwait(false);
            var decision = probe.Decision;
            var mfaNeeded = probe.MfaWouldHelp && decision.Refusal == AccessRefusal.PolicyControlMissing;
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(new WhatIfResult(
                    probe.User.UserPrincipalName, probe.Host.Name, probe.ClientAddress?.ToString(), probe.Methods, probe.PolicyLines,
                    decision.Allowed, decision.Refusal.ToString(), decision.Reason, decision.UserMessage, decision.Fix, mfaNeeded)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.Output.WriteLineAsync($"What if {probe.User.UserPrincipalName} signs in to {probe.Host.Name} from {probe.ClientAddress?.ToString() ?? "an unknown address"} with {string.Join(" + ", probe.Methods)}:").ConfigureAwait(false);
            context.WriteTable(["Policy", "State", "Result", "Reason"], probe.PolicyLines.Select(p => (IReadOnlyList<string?>)[p.Policy, p.State, p.Result, p.Reason]));
            if (probe.BrokenPolicy is not null)
            {
                await context.Output.WriteLineAsync($"Unreadable: {probe.BrokenPolicy}").ConfigureAwait(false);
            }

            await context.Output.WriteLineAsync($"Verdict: {AccessProbe.Verdict(decision)}").ConfigureAwait(false);
            if (!decision.Allowed)
            {
                await context.Output.WriteLineAsync($"The client would see: \"{decision.UserMessage}\"").ConfigureAwait(false);
                if (mfaNeeded)
                {
                    await context.Output.WriteLineAsync("MFA is required: the same sign-in with multi-factor authentication would be allowed.").ConfigureAwait(false);
                }

                await context.Output.WriteLineAsync($"To fix: {decision.Fix}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<PolicyRecord> FindAsync(CliContext context, string name, CancellationToken cancellationToken)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var id = Guid.TryParse(name, out var parsed) ? parsed : Guid.Empty;
        var record = await context.Db.Policies.AsNoTracking()
            .FirstOrDefaultAsync(p => p.TenantId == context.Tenant.Id && (p.NormalizedName == normalized || p.Id == id), cancellationToken).ConfigureAwait(false);
        return record ?? throw new CliException($"There is no policy '{name}'; 'gatehouse policy list' shows the policies.");
    }

    private static string Controls(ConditionalAccessPolicy policy)
    {
        var parts = new List<string>();
        if (policy.GrantControls is { BuiltInControls.Count: > 0 } grant)
        {
            parts.Add(string.Join($" {grant.Operator} ", grant.BuiltInControls));
        }

        if (policy.SessionControls?.SignInFrequency is { } frequency)
        {
            parts.Add($"sign-in every {frequency.Value} {frequency.Type}");
        }

        if (policy.SessionControls?.MaxSessionMinutes is { } minutes)
        {
            parts.Add($"sessions ≤ {minutes} min");
        }

        return string.Join("; ", parts);
    }

    private sealed record PolicyRow(Guid Id, string Name, string State, string Controls, DateTimeOffset CreatedAt, DateTimeOffset ModifiedAt);

    private sealed record WhatIfResult(string User, string Host, string? ClientAddress, IReadOnlyList<string> Methods, IReadOnlyList<PolicyLine> Policies,
        bool Allowed, string Refusal, string Reason, string? UserMessage, string? Fix, bool MfaRequired);
}
