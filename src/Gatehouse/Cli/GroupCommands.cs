using System.CommandLine;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse group …</c> (users' groups) and <c>gatehouse hostgroup …</c> (a scope level for hosts).</summary>
internal static class GroupCommands
{
    public static Command CreateGroup(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("group", "Manage groups of users (role assignments and policies can name a group).");
        admin.AddTo(command);

        var name = new Argument<string>("NAME") { Description = "The group's name (unique, case-insensitive)." };
        var create = new Command("create", "Create a group.") { name };
        create.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var text = parse.GetValue(name)!;
            var normalized = DirectoryService.NormalizeName(text);
            if (string.IsNullOrWhiteSpace(text) || text.Contains('@', StringComparison.Ordinal))
            {
                throw new CliException("A group name must not be empty or contain '@' (role assignments tell users and groups apart by the '@').");
            }

            if (await context.Db.Groups.AnyAsync(g => g.TenantId == context.Tenant.Id && g.NormalizedName == normalized, ct).ConfigureAwait(false))
            {
                throw new CliException($"A group '{text}' already exists; 'gatehouse group list' shows the groups.");
            }

            var group = await context.Get<DirectoryService>().CreateGroupAsync(context.Tenant.Id, text, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created group {group.Name} ({group.Id}).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var groupName = new Argument<string>("NAME") { Description = "The group." };
        var member = new Argument<string>("MEMBER") { Description = "A user's UPN (user@domain), or another group's name to nest that group." };
        var addMember = new Command("add-member", "Add a user (or, by name, another group) to a group.") { groupName, member };
        addMember.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var group = await Lookups.GroupAsync(context, parse.GetValue(groupName)!, ct).ConfigureAwait(false);
            var memberText = parse.GetValue(member)!;
            if (memberText.Contains('@', StringComparison.Ordinal))
            {
                var user = await Lookups.UserAsync(context, memberText, ct).ConfigureAwait(false);
                await context.Get<DirectoryService>().AddGroupMemberAsync(group.Id, user.Id, ct).ConfigureAwait(false);
                await context.Output.WriteLineAsync($"{user.UserPrincipalName} is a member of {group.Name}.").ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var child = await Lookups.GroupAsync(context, memberText, ct).ConfigureAwait(false);
            if (child.Id == group.Id)
            {
                throw new CliException("A group cannot be a member of itself.");
            }

            if (!await context.Db.GroupMembers.AnyAsync(m => m.GroupId == group.Id && m.MemberGroupId == child.Id, ct).ConfigureAwait(false))
            {
                context.Db.GroupMembers.Add(new GroupMember { Id = Guid.NewGuid(), GroupId = group.Id, MemberGroupId = child.Id });
                await context.Db.SaveChangesAsync(ct).ConfigureAwait(false);
            }

            await context.Output.WriteLineAsync($"Group {child.Name} is nested in {group.Name} (its members get what {group.Name} gets).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var output = OutputOption.Create();
        var list = new Command("list", "List the groups with their members.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var tenant = context.Tenant.Id;
            var groups = await context.Db.Groups.AsNoTracking().Where(g => g.TenantId == tenant).OrderBy(g => g.NormalizedName).ToListAsync(ct).ConfigureAwait(false);
            var ids = groups.Select(g => g.Id).ToList();
            var members = await context.Db.GroupMembers.AsNoTracking().Where(m => ids.Contains(m.GroupId)).ToListAsync(ct).ConfigureAwait(false);
            var names = await Lookups.PrincipalNamesAsync(context, ct).ConfigureAwait(false);
            var rows = groups.Select(g => new GroupRow(
                g.Id,
                g.Name,
                [.. members.Where(m => m.GroupId == g.Id && m.UserId is not null).Select(m => names.GetValueOrDefault(m.UserId!.Value, m.UserId.Value.ToString())).Order(StringComparer.OrdinalIgnoreCase)],
                [.. members.Where(m => m.GroupId == g.Id && m.MemberGroupId is not null).Select(m => names.GetValueOrDefault(m.MemberGroupId!.Value, m.MemberGroupId.Value.ToString())).Order(StringComparer.OrdinalIgnoreCase)])).ToList();
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "Members", "Nested groups", "Id"], rows.Select(r => (IReadOnlyList<string?>)[r.Name, string.Join(", ", r.Members), string.Join(", ", r.Groups), r.Id.ToString()]));
            }

            return ExitCodes.Ok;
        });

        command.Subcommands.Add(create);
        command.Subcommands.Add(addMember);
        command.Subcommands.Add(list);
        return command;
    }

    public static Command CreateHostGroup(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("hostgroup", "Manage host groups (a scope level: /hostGroups/NAME covers its hosts).");
        admin.AddTo(command);

        var name = new Argument<string>("NAME") { Description = "The host group's name (letters, digits, '-', '_', '.')." };
        var create = new Command("create", "Create a host group.") { name };
        create.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var text = parse.GetValue(name)!;
            if (!Gatehouse.Access.Scope.TryParse($"/hostGroups/{text}", out _, out _))
            {
                throw new CliException($"'{text}' cannot be a host group name: use letters, digits, '-', '_' and '.' (it becomes the scope /hostGroups/{text}).");
            }

            var normalized = DirectoryService.NormalizeName(text);
            if (await context.Db.HostGroups.AnyAsync(g => g.TenantId == context.Tenant.Id && g.Name == normalized, ct).ConfigureAwait(false))
            {
                throw new CliException($"A host group '{normalized}' already exists; 'gatehouse hostgroup list' shows them.");
            }

            var group = await context.Get<DirectoryService>().CreateHostGroupAsync(context.Tenant.Id, text, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created host group {group.Name} (scope /hostGroups/{group.Name}).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var output = OutputOption.Create();
        var list = new Command("list", "List the host groups and their hosts.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var tenant = context.Tenant.Id;
            var groups = await context.Db.HostGroups.AsNoTracking().Where(g => g.TenantId == tenant).OrderBy(g => g.Name).ToListAsync(ct).ConfigureAwait(false);
            var hosts = await context.Db.Hosts.AsNoTracking().Where(h => h.TenantId == tenant && h.HostGroupId != null).Select(h => new { h.Name, h.HostGroupId }).ToListAsync(ct).ConfigureAwait(false);
            var rows = groups.Select(g => new HostGroupRow(g.Id, g.Name, $"/hostGroups/{g.Name}", [.. hosts.Where(h => h.HostGroupId == g.Id).Select(h => h.Name).Order(StringComparer.Ordinal)])).ToList();
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "Scope", "Hosts", "Id"], rows.Select(r => (IReadOnlyList<string?>)[r.Name, r.Scope, string.Join(", ", r.Hosts), r.Id.ToString()]));
            }

            return ExitCodes.Ok;
        });

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        return command;
    }

    private sealed record GroupRow(Guid Id, string Name, IReadOnlyList<string> Members, IReadOnlyList<string> Groups);

    private sealed record HostGroupRow(Guid Id, string Name, string Scope, IReadOnlyList<string> Hosts);
}
