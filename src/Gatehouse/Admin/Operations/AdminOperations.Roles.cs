using System.Text.Json;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>Role definitions (tenant scope) and role assignments (at their scope).</summary>
internal sealed partial class AdminOperations
{
    /// <summary>Largest custom role definition accepted.</summary>
    public const int MaxRoleBytes = 64 * 1024;

    public async Task<IReadOnlyList<RoleDefinitionView>> ListRoleDefinitionsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(RoleDefinitionsRead, Scope.Tenant);
        var custom = await Db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == Tenant).OrderBy(r => r.NormalizedName).Select(r => r.Id).ToListAsync(cancellationToken).ConfigureAwait(false);
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        return [.. BuiltInRoles.All.Concat(custom.Select(id => rbac.FindRole(id)).OfType<RoleDefinition>()).Select(r => ToView(r, rbac))];
    }

    public async Task<RoleDefinitionView> CreateRoleDefinitionAsync(CustomRoleRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(AccessActions.RoleDefinitionsWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw AdminProblemException.BadRequest($"\"name\" is required (1-{AdminNames.DisplayNameLength} characters).");
        }

        AdminNames.Require("The role's \"name\"", request.Name, AdminNames.DisplayNameLength);
        AdminNames.Optional("The role's \"description\"", request.Description, AdminNames.DescriptionLength);

        if (BuiltInRoles.All.Any(r => string.Equals(r.Name, request.Name.Trim(), StringComparison.OrdinalIgnoreCase)))
        {
            throw AdminProblemException.Conflict($"'{request.Name}' is a built-in role; choose another name.");
        }

        var actions = request.Actions ?? [];
        var notActions = request.NotActions ?? [];
        var dataActions = request.DataActions ?? [];
        foreach (var action in actions.Concat(notActions).Concat(dataActions))
        {
            if (!IsActionPattern(action))
            {
                throw AdminProblemException.BadRequest($"'{action}' is not an action (Gatehouse/<resource>/<operation>, optionally ending in *).");
            }
        }

        if (actions.Count + dataActions.Count == 0)
        {
            throw AdminProblemException.BadRequest("The role allows nothing; give \"actions\" or \"dataActions\".");
        }

        List<Guid>? assignable = null;
        if (request.AssignableRoles is { } names)
        {
            assignable = [];
            foreach (var name in names)
            {
                var target = BuiltInRoles.All.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
                    ?? throw AdminProblemException.BadRequest($"assignableRoles names '{name}', which is not a built-in role.");
                assignable.Add(target.Id);
            }
        }

        var normalized = DirectoryService.NormalizeName(request.Name);
        if (await Db.RoleDefinitions.AnyAsync(r => r.TenantId == Tenant && r.NormalizedName == normalized, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"A role named '{request.Name}' already exists; delete it first or choose another name.");
        }

        var record = new RoleDefinitionRecord
        {
            Id = Guid.NewGuid(),
            TenantId = Tenant,
            Name = request.Name.Trim(),
            NormalizedName = normalized,
            Description = request.Description ?? string.Empty,
            ActionsJson = JsonSerializer.Serialize(actions),
            NotActionsJson = JsonSerializer.Serialize(notActions),
            DataActionsJson = JsonSerializer.Serialize(dataActions),
            AssignableRoleIdsJson = assignable is null ? null : JsonSerializer.Serialize(assignable),
            CreatedAt = Now,
        };
        Db.RoleDefinitions.Add(record);
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        return ToView(rbac.FindRole(record.Id)!, rbac);
    }

    public async Task<DeletedView> DeleteRoleDefinitionAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(AccessActions.RoleDefinitionsDelete, Scope.Tenant);
        var normalized = DirectoryService.NormalizeName(name);
        var record = await Db.RoleDefinitions.FirstOrDefaultAsync(r => r.TenantId == Tenant && r.NormalizedName == normalized, cancellationToken).ConfigureAwait(false)
            ?? throw (BuiltInRoles.All.Any(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
                ? AdminProblemException.BadRequest($"'{name}' is a built-in role and cannot be deleted.")
                : AdminProblemException.NotFound($"There is no custom role '{name}'; 'gatehouse role definition list' shows the roles."));
        var used = await Db.RoleAssignments.CountAsync(a => a.RoleDefinitionId == record.Id, cancellationToken).ConfigureAwait(false);
        if (used > 0)
        {
            throw AdminProblemException.Conflict($"'{record.Name}' is used by {used} assignment(s); delete them first ('gatehouse role assignment list').");
        }

        Db.RoleDefinitions.Remove(record);
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return new DeletedView(record.Name);
    }

    public async Task<IReadOnlyList<RoleAssignmentView>> ListRoleAssignmentsAsync(string? assignee, string? scope, CancellationToken cancellationToken)
    {
        var query = Db.RoleAssignments.AsNoTracking().Where(a => a.TenantId == Tenant);
        if (!string.IsNullOrWhiteSpace(assignee))
        {
            // Only a caller who may read users (groups) learns that one does not exist; for anyone else an unknown
            // assignee simply has no assignments, as a known one without readable assignments has none.
            var isUser = assignee.Contains('@', StringComparison.Ordinal);
            Guid principal;
            try
            {
                principal = isUser
                    ? (await FindUserAsync(assignee, cancellationToken).ConfigureAwait(false)).Id
                    : (await FindGroupAsync(assignee, cancellationToken).ConfigureAwait(false)).Id;
            }
            catch (AdminProblemException) when (!Caller.Can(isUser ? UsersRead : GroupsRead, Scope.Tenant))
            {
                principal = Guid.Empty;
            }

            query = query.Where(a => a.PrincipalId == principal);
        }

        if (!string.IsNullOrWhiteSpace(scope))
        {
            var canonical = ParseScope(scope).ToString();
            query = query.Where(a => a.Scope == canonical);
        }

        var records = await query.OrderBy(a => a.CreatedAt).ToListAsync(cancellationToken).ConfigureAwait(false);
        var views = await ToViewsAsync(records, cancellationToken).ConfigureAwait(false);
        var hostGroups = await HostGroupsOfHostsAsync(cancellationToken).ConfigureAwait(false);
        var readable = views.Where(v => Scope.TryParse(v.Scope, out var s, out _) && Caller.Can(RoleAssignmentsRead, s, HostGroupOf(s, hostGroups))).ToList();
        if (readable.Count == 0 && !Caller.Can(RoleAssignmentsRead, Scope.Tenant))
        {
            Caller.Require(RoleAssignmentsRead, Scope.Tenant);
        }

        return readable;
    }

    public async Task<RoleAssignmentView> CreateRoleAssignmentAsync(CreateRoleAssignmentRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrWhiteSpace(request.Role) || string.IsNullOrWhiteSpace(request.Assignee) || string.IsNullOrWhiteSpace(request.Scope))
        {
            throw AdminProblemException.BadRequest("Give the role (e.g. \"Virtual Machine User Login\"), the assignee (a UPN or a group name) and the scope (/, /hostGroups/NAME or /hosts/NAME).");
        }

        var scope = ParseScope(request.Scope);
        var role = await FindRoleAsync(request.Role, cancellationToken).ConfigureAwait(false);
        var hostGroup = HostGroupOf(scope, await HostGroupsOfHostsAsync(cancellationToken).ConfigureAwait(false));
        Caller.RequireCanAssign(role, scope, hostGroup);
        var record = await Access.AssignRoleAsync(Tenant, role.Name, request.Assignee, scope.ToString(), Caller.Name, cancellationToken).ConfigureAwait(false);
        return (await ToViewsAsync([record], cancellationToken).ConfigureAwait(false)).Single();
    }

    public async Task<DeletedView> DeleteRoleAssignmentAsync(Guid id, CancellationToken cancellationToken)
    {
        var record = await Db.RoleAssignments.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id && a.TenantId == Tenant, cancellationToken).ConfigureAwait(false);
        var scope = record is null ? null : ParseScope(record.Scope);
        var hostGroup = scope is null ? null : HostGroupOf(scope, await HostGroupsOfHostsAsync(cancellationToken).ConfigureAwait(false));
        Caller.RequireOrHide(AccessActions.RoleAssignmentsDelete, $"the scope of role assignment {id}", scope, hostGroup,
            $"There is no role assignment {id}; 'gatehouse role assignment list' shows them.");

        // A restricted assigner (Data Access Administrator) may remove only the roles it may assign.
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        if (rbac.FindRole(record!.RoleDefinitionId) is { } role)
        {
            Caller.RequireCanAssign(role, scope!, hostGroup, "remove this assignment");
        }

        await Db.RoleAssignments.Where(a => a.Id == id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new DeletedView(id.ToString());
    }

    /// <summary>
    /// Which role-assignment changes the caller may make, for drawing only the buttons that would work (the portal):
    /// whether they hold roleAssignments/write at the tenant or at any scope of <paramref name="assignments"/>, and
    /// which of <paramref name="assignments"/> they may remove (the checks of <see cref="DeleteRoleAssignmentAsync"/>).
    /// </summary>
    public async Task<(bool MayCreate, IReadOnlySet<Guid> MayRemove)> RoleAssignmentChangesAsync(IReadOnlyList<RoleAssignmentView> assignments, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(assignments);
        var hostGroups = await HostGroupsOfHostsAsync(cancellationToken).ConfigureAwait(false);
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var mayCreate = Caller.Can(AccessActions.RoleAssignmentsWrite, Scope.Tenant);
        var mayRemove = new HashSet<Guid>();
        foreach (var a in assignments)
        {
            if (!Scope.TryParse(a.Scope, out var scope, out _))
            {
                continue;
            }

            var hostGroup = HostGroupOf(scope, hostGroups);
            mayCreate = mayCreate || Caller.Can(AccessActions.RoleAssignmentsWrite, scope, hostGroup);
            if (Caller.Can(AccessActions.RoleAssignmentsDelete, scope, hostGroup) && (rbac.FindRole(a.RoleDefinitionId) is not { } role || Caller.CanAssign(role, scope, hostGroup)))
            {
                mayRemove.Add(a.Id);
            }
        }

        return (mayCreate, mayRemove);
    }

    private async Task<RoleDefinition> FindRoleAsync(string name, CancellationToken cancellationToken)
    {
        var builtIn = BuiltInRoles.All.FirstOrDefault(r => string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
        if (builtIn is not null)
        {
            return builtIn;
        }

        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var custom = await Db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == Tenant).Select(r => r.Id).ToListAsync(cancellationToken).ConfigureAwait(false);
        return custom.Select(rbac.FindRole).OfType<RoleDefinition>().FirstOrDefault(r => string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw AdminProblemException.BadRequest($"There is no role named '{name}'. 'gatehouse role definition list' shows the roles.");
    }

    private async Task<List<RoleAssignmentView>> ToViewsAsync(IReadOnlyList<RoleAssignmentRecord> records, CancellationToken cancellationToken)
    {
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var names = await PrincipalNamesAsync(cancellationToken).ConfigureAwait(false);
        return [.. records.Select(r => new RoleAssignmentView(r.Id, rbac.FindRole(r.RoleDefinitionId)?.Name ?? r.RoleDefinitionId.ToString(), r.RoleDefinitionId,
            names.GetValueOrDefault(r.PrincipalId, r.PrincipalId.ToString()), r.PrincipalKind.ToLowerInvariant(), r.PrincipalId, r.Scope, r.CreatedAt, r.CreatedBy))];
    }

    private static RoleDefinitionView ToView(RoleDefinition r, RbacEvaluator rbac) => new(
        r.Id, r.Name, r.IsBuiltIn, SignIn(r), r.Description, r.Actions, r.NotActions, r.DataActions,
        r.AssignableRoleIds is null ? null : [.. r.AssignableRoleIds.Select(id => rbac.FindRole(id)?.Name ?? id.ToString())]);

    private static string SignIn(RoleDefinition role) =>
        role.AllowsDataAction(AccessActions.LoginAsAdmin) ? "administrator"
        : role.AllowsDataAction(AccessActions.Login) ? "user"
        : "none";

    private static bool IsActionPattern(string action) =>
        action.Length is > 0 and <= 200
        && (action == "*" || action.StartsWith("Gatehouse/", StringComparison.Ordinal))
        && action.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '*' or '.' or '_' or '-')
        && (action.IndexOf('*', StringComparison.Ordinal) is -1 || action.IndexOf('*', StringComparison.Ordinal) == action.Length - 1);
}
