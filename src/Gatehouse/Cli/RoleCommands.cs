using System.CommandLine;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

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

    /// <summary>A custom role as its JSON file gives it (the shape of an Azure role definition).</summary>
    internal sealed record CustomRoleFile(string Name, string? Description, List<string>? Actions, List<string>? NotActions, List<string>? DataActions, List<string>? AssignableRoles);

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
            if (!info.Exists || info.Length > 64 * 1024)
            {
                throw new CliException($"The role file {info.FullName} does not exist or is larger than 64 KiB; check --file.");
            }

            CustomRoleFile? role;
            try
            {
                role = System.Text.Json.JsonSerializer.Deserialize<CustomRoleFile>(await File.ReadAllTextAsync(info.FullName, ct).ConfigureAwait(false), RoleFileJson);
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new CliException($"{info.Name}: {e.Message} Fix the file and run 'gatehouse role definition create' again.");
            }

            if (role is null || string.IsNullOrWhiteSpace(role.Name) || role.Name.Length > GatehouseDbContext.NameLength)
            {
                throw new CliException($"{info.Name}: \"name\" is required (1-{GatehouseDbContext.NameLength} characters).");
            }

            if (BuiltInRoles.All.Any(r => string.Equals(r.Name, role.Name.Trim(), StringComparison.OrdinalIgnoreCase)))
            {
                throw new CliException($"'{role.Name}' is a built-in role; choose another name.");
            }

            var actions = role.Actions ?? [];
            var notActions = role.NotActions ?? [];
            var dataActions = role.DataActions ?? [];
            foreach (var action in actions.Concat(notActions).Concat(dataActions))
            {
                if (!IsActionPattern(action))
                {
                    throw new CliException($"{info.Name}: '{action}' is not an action (Gatehouse/<resource>/<operation>, optionally ending in *).");
                }
            }

            if (actions.Count + dataActions.Count == 0)
            {
                throw new CliException($"{info.Name}: the role allows nothing; give \"actions\" or \"dataActions\".");
            }

            var rbac = await context.Get<AccessService>().LoadRbacAsync(context.Tenant.Id, ct).ConfigureAwait(false);
            List<Guid>? assignable = null;
            if (role.AssignableRoles is { } names)
            {
                assignable = [];
                foreach (var name in names)
                {
                    var target = BuiltInRoles.All.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
                        ?? throw new CliException($"{info.Name}: assignableRoles names '{name}', which is not a built-in role.");
                    assignable.Add(target.Id);
                }
            }

            var normalized = DirectoryService.NormalizeName(role.Name);
            if (await context.Db.RoleDefinitions.AnyAsync(r => r.TenantId == context.Tenant.Id && r.NormalizedName == normalized, ct).ConfigureAwait(false))
            {
                throw new CliException($"A role named '{role.Name}' already exists; delete it first or choose another name.");
            }

            var record = new RoleDefinitionRecord
            {
                Id = Guid.NewGuid(),
                TenantId = context.Tenant.Id,
                Name = role.Name.Trim(),
                NormalizedName = normalized,
                Description = role.Description ?? string.Empty,
                ActionsJson = System.Text.Json.JsonSerializer.Serialize(actions),
                NotActionsJson = System.Text.Json.JsonSerializer.Serialize(notActions),
                DataActionsJson = System.Text.Json.JsonSerializer.Serialize(dataActions),
                AssignableRoleIdsJson = assignable is null ? null : System.Text.Json.JsonSerializer.Serialize(assignable),
                CreatedAt = context.Now,
            };
            context.Db.RoleDefinitions.Add(record);
            await context.Db.SaveChangesAsync(ct).ConfigureAwait(false);
            var allowsSignIn = dataActions.Any(a => AccessActions.Matches(a, AccessActions.Login) || AccessActions.Matches(a, AccessActions.LoginAsAdmin));
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
            var value = parse.GetValue(name)!;
            var normalized = DirectoryService.NormalizeName(value);
            var record = await context.Db.RoleDefinitions.FirstOrDefaultAsync(r => r.TenantId == context.Tenant.Id && r.NormalizedName == normalized, ct).ConfigureAwait(false)
                ?? throw new CliException(BuiltInRoles.All.Any(r => string.Equals(r.Name, value, StringComparison.OrdinalIgnoreCase))
                    ? $"'{value}' is a built-in role and cannot be deleted."
                    : $"There is no custom role '{value}'; 'gatehouse role definition list' shows the roles.");
            var used = await context.Db.RoleAssignments.CountAsync(a => a.RoleDefinitionId == record.Id, ct).ConfigureAwait(false);
            if (used > 0)
            {
                throw new CliException($"'{record.Name}' is used by {used} assignment(s); delete them first ('gatehouse role assignment list').");
            }

            context.Db.RoleDefinitions.Remove(record);
            await context.Db.SaveChangesAsync(ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Deleted role '{record.Name}'.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static bool IsActionPattern(string action) =>
        action.Length is > 0 and <= 200
        && (action == "*" || action.StartsWith("Gatehouse/", StringComparison.Ordinal))
        && action.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '*' or '.' or '_' or '-')
        && (action.IndexOf('*', StringComparison.Ordinal) is -1 || action.IndexOf('*', StringComparison.Ordinal) == action.Length - 1);

    private static Command DefinitionListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the role definitions and whether each allows signing in to hosts.") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var custom = await context.Db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == context.Tenant.Id).OrderBy(r => r.NormalizedName).Select(r => r.Id).ToListAsync(ct).ConfigureAwait(false);
            var rbac = await context.Get<AccessService>().LoadRbacAsync(context.Tenant.Id, ct).ConfigureAwait(false);
            var roles = BuiltInRoles.All.Concat(custom.Select(id => rbac.FindRole(id)).OfType<RoleDefinition>())
                .Select(r => new RoleRow(r.Id, r.Name, r.IsBuiltIn, SignIn(r), r.Description)).ToList();
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
            var record = await context.Get<AccessService>().AssignRoleAsync(context.Tenant.Id, parse.GetValue(role)!, parse.GetValue(assignee)!, parse.GetValue(scope)!, "cli", ct).ConfigureAwait(false);
            var roleName = (await context.Get<AccessService>().LoadRbacAsync(context.Tenant.Id, ct).ConfigureAwait(false)).FindRole(record.RoleDefinitionId)?.Name;
            await context.Output.WriteLineAsync($"Assignment {record.Id}: '{roleName}' for {parse.GetValue(assignee)} at {record.Scope}.").ConfigureAwait(false);
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
            var query = context.Db.RoleAssignments.AsNoTracking().Where(a => a.TenantId == context.Tenant.Id);
            if (parse.GetValue(assignee) is { Length: > 0 } who)
            {
                Guid principal = who.Contains('@', StringComparison.Ordinal)
                    ? (await Lookups.UserAsync(context, who, ct).ConfigureAwait(false)).Id
                    : (await Lookups.GroupAsync(context, who, ct).ConfigureAwait(false)).Id;
                query = query.Where(a => a.PrincipalId == principal);
            }

            if (parse.GetValue(scope) is { Length: > 0 } scopeText)
            {
                if (!Scope.TryParse(scopeText, out var parsed, out var error))
                {
                    throw new CliException(error);
                }

                var canonical = parsed.ToString();
                query = query.Where(a => a.Scope == canonical);
            }

            var records = await query.OrderBy(a => a.CreatedAt).ToListAsync(ct).ConfigureAwait(false);
            var rbac = await context.Get<AccessService>().LoadRbacAsync(context.Tenant.Id, ct).ConfigureAwait(false);
            var names = await Lookups.PrincipalNamesAsync(context, ct).ConfigureAwait(false);
            var rows = records.Select(a => new AssignmentRow(
                a.Id,
                rbac.FindRole(a.RoleDefinitionId)?.Name ?? a.RoleDefinitionId.ToString(),
                names.GetValueOrDefault(a.PrincipalId, a.PrincipalId.ToString()),
                a.PrincipalKind.ToLowerInvariant(),
                a.Scope,
                a.CreatedAt,
                a.CreatedBy)).ToList();
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
            var deleted = await context.Db.RoleAssignments.Where(a => a.Id == assignmentId && a.TenantId == context.Tenant.Id).ExecuteDeleteAsync(ct).ConfigureAwait(false);
            if (deleted == 0)
            {
                throw new CliException($"There is no role assignment {assignmentId}; 'gatehouse role assignment list' shows them.");
            }

            await context.Output.WriteLineAsync($"Deleted role assignment {assignmentId}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static string SignIn(RoleDefinition role) =>
        role.AllowsDataAction(AccessActions.LoginAsAdmin) ? "administrator"
        : role.AllowsDataAction(AccessActions.Login) ? "user"
        : "none";

    private sealed record RoleRow(Guid Id, string Name, bool BuiltIn, string SignIn, string Description);

    private sealed record AssignmentRow(Guid Id, string Role, string Assignee, string AssigneeKind, string Scope, DateTimeOffset CreatedAt, string? CreatedBy);
}
