using System.CommandLine;

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
            var group = await context.Client.CreateGroupAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created group {group.Name} ({group.Id}).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var groupName = new Argument<string>("NAME") { Description = "The group." };
        var member = new Argument<string>("MEMBER") { Description = "A user's UPN (user@domain), or another group's name to nest that group." };
        var addMember = new Command("add-member", "Add a user (or, by name, another group) to a group. When the group (or a group containing it) holds role assignments, this needs the right to assign those roles as well.") { groupName, member };
        addMember.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var added = await context.Client.AddGroupMemberAsync(parse.GetValue(groupName)!, parse.GetValue(member)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync(added.MemberKind == "user"
                ? $"{added.Member} is a member of {added.Group}."
                : $"Group {added.Member} is nested in {added.Group} (its members get what {added.Group} gets).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var removeGroup = new Argument<string>("NAME") { Description = "The group." };
        var removeMember = new Argument<string>("MEMBER") { Description = "A user's UPN, or the name of a nested group." };
        var remove = new Command("remove-member", "Remove a user (or a nested group) from a group. When the group (or a group containing it) holds role assignments, this needs the right to assign those roles as well.") { removeGroup, removeMember };
        remove.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var removed = await context.Client.RemoveGroupMemberAsync(parse.GetValue(removeGroup)!, parse.GetValue(removeMember)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync(removed.Changed
                ? $"{(removed.MemberKind == "user" ? "" : "Group ")}{removed.Member} is no longer a member of {removed.Group}."
                : $"{(removed.MemberKind == "user" ? "" : "Group ")}{removed.Member} was not a direct member of {removed.Group}; nothing changed.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var output = OutputOption.Create();
        var list = new Command("list", "List the groups with their members.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListGroupsAsync(ct).ConfigureAwait(false);
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
        command.Subcommands.Add(remove);
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
            var group = await context.Client.CreateHostGroupAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created host group {group.Name} (scope {group.Scope}).").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var output = OutputOption.Create();
        var list = new Command("list", "List the host groups and their hosts.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListHostGroupsAsync(ct).ConfigureAwait(false);
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
}
