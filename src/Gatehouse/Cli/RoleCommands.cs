using System.CommandLine;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse role definition list</c> and <c>gatehouse role assignment create|list|delete</c>.</summary>
internal static class RoleCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("role", "Role-based access: role definitions and role assignments at scopes (/, /hostGroups/NAME, /hosts/NAME).");
        admin.AddTo(command);
        var definition = new Command("definition", "Role definitions (the six built-in roles and custom ones).");
        definition.Subcommands.Add(DefinitionListCommand(admin, environment));
        definition.Subcommands.Add(DefinitionCreateCommand(admin, environment));
        definition.Subcommands.Add(DefinitionDeleteCommand(admin, environment));
        var assignment = new Command("assignment", "Role assignments: a role given to a user or group at a scope and everything below it.");
        assignment.Subcommands.Add(AssignmentCreateCommand(admin, environment));
        assignment.Subcommands.Add(AssignmentListCommand(admin, environment));
        assignment.Subcommands.Add(AssignmentDeleteCommand(admin, environment));
        command.Subcommands.Add(definition);
        command.Subcommands.Add(assignment);
        return command;
    }

    private static readonly System.Text.Json.JsonSerializerOptions RoleFileJson = new(System.Text.Json.JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    private static Command DefinitionCreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var file = new Option<FileInfo>("--file")
        {
            Description = "The role as JSON: {\"name\", \"description\", \"actions\", \"notActions\", \"dataActions\", \"assignableRoles\"}; actions look like Gatehouse/hosts/login/action (a trailing * matches a prefix).",
            Required = true,
        };
        var command = new Command("create", "Create a custom role from a JSON file.") { file };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var info = parse.GetValue(file)!;
            if (!info.Exists || info.Length > AdminOperations.MaxRoleBytes)
            {
                throw new CliException($"The role file {info.FullName} does not exist or is larger than 64 KiB; check --file.");
            }

            CustomRoleRequest? role;
            try
            {
                role = System.Text.Json.JsonSerializer.Deserialize<CustomRoleRequest>(await File.ReadAllTextAsync(info.FullName, ct).ConfigureAwait(false), RoleFileJson);
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new CliException($"{info.Name}: {e.Message} Fix the file and run 'gatehouse role definition create' again.");
            }

            if (role is null)
            {
                throw new CliException($"{info.Name}: the file holds no role; give {{\"name\", \"actions\", …}}.");
            }

            var record = await context.Client.CreateRoleDefinitionAsync(role, ct).ConfigureAwait(false);
            var allowsSignIn = record.SignIn != "none";
            await context.Output.WriteLineAsync($"Created role '{record.Name}' ({record.Id}){(allowsSignIn ? "; it allows signing in to hosts" : "; it does not allow signing in to hosts")}. Assign it with 'gatehouse role assignment create --role \"{record.Name}\" …'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DefinitionDeleteCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The custom role's name." };
        var command = new Command("delete", "Delete a custom role that no assignment uses.") { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var deleted = await context.Client.DeleteRoleDefinitionAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted role '{deleted.Deleted}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DefinitionListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the role definitions and whether each allows signing in to hosts.") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var roles = await context.Client.ListRoleDefinitionsAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(roles).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Name", "Sign-in", "Built-in", "Description", "Id"], roles.Select(r => (IReadOnlyList<string?>)[r.Name, r.SignIn, UserCommands.YesNo(r.BuiltIn), r.Description, r.Id.ToString()]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command AssignmentCreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var role = new Option<string>("--role") { Description = "The role's name, e.g. \"Virtual Machine User Login\" ('gatehouse role definition list' shows them).", Required = true };
        var assignee = new Option<string>("--assignee") { Description = "A user's UPN (user@domain) or a group's name.", Required = true };
        var scope = new Option<string>("--scope") { Description = "Where it applies: /, /hostGroups/NAME or /hosts/NAME (and everything below).", Required = true };
        var command = new Command("create", "Assign a role to a user or group at a scope (the same assignment twice is kept once).") { role, assignee, scope };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var record = await context.Client.CreateRoleAssignmentAsync(new CreateRoleAssignmentRequest(parse.GetValue(role), parse.GetValue(assignee), parse.GetValue(scope)), ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Assignment {record.Id}: '{record.Role}' for {parse.GetValue(assignee)} at {record.Scope}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command AssignmentListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var assignee = new Option<string?>("--assignee") { Description = "Only this user (UPN) or group (name), direct assignments." };
        var scope = new Option<string?>("--scope") { Description = "Only assignments at exactly this scope." };
        var output = OutputOption.Create();
        var command = new Command("list", "List role assignments.") { assignee, scope, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListRoleAssignmentsAsync(parse.GetValue(assignee), parse.GetValue(scope), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(["Id", "Role", "Assignee", "Kind", "Scope", "Created"], rows.Select(r => (IReadOnlyList<string?>)[r.Id.ToString(), r.Role, r.Assignee, r.AssigneeKind, r.Scope, CliRunner.Format(r.CreatedAt)]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command AssignmentDeleteCommand(AdminOptions admin, CliEnvironment environment)
    {
        var id = new Argument<string>("ID") { Description = "The assignment's id ('gatehouse role assignment list' shows them)." };
        var command = new Command("delete", "Delete a role assignment (new sign-ins are checked against the remaining ones).") { id };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var assignmentId = Lookups.ParseId(parse.GetValue(id)!, "a role assignment");
            await context.Client.DeleteRoleAssignmentAsync(assignmentId, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted role assignment {assignmentId}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
