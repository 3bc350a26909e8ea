using System.CommandLine;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse location …</c>: named locations (CIDR ranges, trusted or not) that Conditional Access policies name in
/// <c>conditions.locations.includeLocations</c> / <c>excludeLocations</c> (by display name or id, or <c>AllTrusted</c>).
/// </summary>
internal static class LocationCommands
{
    /// <summary>Most ranges in one location.</summary>
    public const int MaxRanges = AdminOperations.MaxRanges;

    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("location", "Named locations (IP ranges) for Conditional Access policies: create, list, delete.");
        admin.AddTo(command);
        command.Subcommands.Add(CreateCommand(admin, environment));
        command.Subcommands.Add(ListCommand(admin, environment));
        command.Subcommands.Add(DeleteCommand(admin, environment));
        return command;
    }

    private static Command CreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Option<string>("--name") { Description = "The location's display name (what policies refer to).", Required = true };
        var ranges = new Option<string[]>("--cidr") { Description = "An IPv4 or IPv6 range in CIDR form (repeat for more), e.g. 10.0.0.0/8 or 2001:db8::/32.", Required = true, AllowMultipleArgumentsPerToken = true };
        var trusted = new Option<bool>("--trusted") { Description = "Mark the location trusted (policies can then use AllTrusted)." };
        var command = new Command("create", "Create a named location.") { name, ranges, trusted };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var cidrs = parse.GetValue(ranges) ?? [];
            var record = await context.Client.CreateLocationAsync(new CreateLocationRequest(parse.GetValue(name), cidrs, parse.GetValue(trusted)), ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created location '{record.Name}' ({record.Id}), {record.Ranges.Count} range(s){(record.Trusted ? ", trusted" : string.Empty)}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the named locations.") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListLocationsAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "Trusted", "Ranges", "Id"], rows.Select(r => (IReadOnlyList<string?>)[r.Name, r.Trusted ? "yes" : "no", string.Join(' ', r.Ranges), r.Id.ToString()]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DeleteCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The location's display name (or id)." };
        var command = new Command("delete", "Delete a named location (policies that name it then match no address for it).") { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var value = parse.GetValue(name)!;
            await context.Client.DeleteLocationAsync(value, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted location '{value}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
