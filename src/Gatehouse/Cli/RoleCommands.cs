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
        var assignment = new Command("assignment", "Role assignments: a role given to a user or group at a scope and everything below it.");
        assignment.Subcommands.Add(AssignmentCreateCommand(admin, environment));
        assignment.Subcommands.Add(AssignmentListCommand(admin, environment));
        assignment.Subcommands.Add(AssignmentDeleteCommand(admin, environment));
        command.Subcommands.Add(definition);
        command.Subcommands.Add(assignment);
        return command;
    }

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
