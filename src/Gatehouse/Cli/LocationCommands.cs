using System.CommandLine;
using System.Net;
using System.Text.Json;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse location …</c>: named locations (CIDR ranges, trusted or not) that Conditional Access policies name in
/// <c>conditions.locations.includeLocations</c> / <c>excludeLocations</c> (by display name or id, or <c>AllTrusted</c>).
/// </summary>
internal static class LocationCommands
{
    /// <summary>Most ranges in one location.</summary>
    public const int MaxRanges = 2000;

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
            var display = parse.GetValue(name)!.Trim();
            var cidrs = parse.GetValue(ranges) ?? [];
            if (display.Length is 0 or > GatehouseDbContext.NameLength)
            {
                throw new CliException($"--name must be 1-{GatehouseDbContext.NameLength} characters.");
            }

            if (cidrs.Length is 0 or > MaxRanges)
            {
                throw new CliException($"Give 1-{MaxRanges} ranges with --cidr.");
            }

            foreach (var cidr in cidrs)
            {
                if (!IPNetwork.TryParse(cidr, out _))
                {
                    throw new CliException($"'{cidr}' is not a CIDR range (address/prefix, e.g. 10.0.0.0/8); check --cidr.");
                }
            }

            if (await context.Db.NamedLocations.AnyAsync(l => l.TenantId == context.Tenant.Id && l.DisplayName == display, ct).ConfigureAwait(false))
            {
                throw new CliException($"A location named '{display}' already exists; delete it first or choose another name.");
            }

            var record = new NamedLocationRecord
            {
                Id = Guid.NewGuid(),
                TenantId = context.Tenant.Id,
                DisplayName = display,
                IpRangesJson = JsonSerializer.Serialize(cidrs),
                IsTrusted = parse.GetValue(trusted),
            };
            context.Db.NamedLocations.Add(record);
            await context.Db.SaveChangesAsync(ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created location '{display}' ({record.Id}), {cidrs.Length} range(s){(record.IsTrusted ? ", trusted" : string.Empty)}.").ConfigureAwait(false);
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
            var records = await context.Db.NamedLocations.AsNoTracking().Where(l => l.TenantId == context.Tenant.Id).OrderBy(l => l.DisplayName).ToListAsync(ct).ConfigureAwait(false);
            var rows = records.Select(r => new LocationRow(r.Id, r.DisplayName, r.IsTrusted, JsonSerializer.Deserialize<List<string>>(r.IpRangesJson) ?? [])).ToList();
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
            var id = Guid.TryParse(value, out var parsed) ? parsed : Guid.Empty;
            var deleted = await context.Db.NamedLocations.Where(l => l.TenantId == context.Tenant.Id && (l.DisplayName == value || l.Id == id)).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            if (deleted == 0)
            {
                throw new CliException($"There is no location '{value}'; 'gatehouse location list' shows them.");
            }

            await context.Output.WriteLineAsync($"Deleted location '{value}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private sealed record LocationRow(Guid Id, string Name, bool Trusted, IReadOnlyList<string> Ranges);
}
