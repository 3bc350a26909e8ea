namespace Gatehouse.Access;

/// <summary>Who a role assignment is for.</summary>
public enum PrincipalKind
{
    /// <summary>A user.</summary>
    User,

    /// <summary>A group (its members, also through nested groups).</summary>
    Group,
}

/// <summary>A role given to a user or group at a scope.</summary>
public sealed record RoleAssignment(Guid Id, Guid PrincipalId, PrincipalKind PrincipalKind, Guid RoleDefinitionId, Scope Scope);

/// <summary>A host as the access checks see it.</summary>
public sealed record HostRef(string Name, string? HostGroup)
{
    /// <summary>The host's own scope.</summary>
    public Scope Scope => Scope.Host(Name);
}

/// <summary>
/// A user and every group they belong to, directly or through nested groups. Build it with <see cref="Expand"/>,
/// which follows group-in-group edges and stops at cycles.
/// </summary>
public sealed record Principal(Guid UserId, IReadOnlySet<Guid> GroupIds)
{
    /// <summary>
    /// The transitive closure of the user's memberships: <paramref name="directGroups"/> plus every group that
    /// contains one of them (<paramref name="parentsOf"/> maps a group to the groups it is a member of).
    /// </summary>
    public static Principal Expand(Guid userId, IEnumerable<Guid> directGroups, Func<Guid, IEnumerable<Guid>> parentsOf)
    {
        ArgumentNullException.ThrowIfNull(directGroups);
        ArgumentNullException.ThrowIfNull(parentsOf);
        var seen = new HashSet<Guid>();
        var queue = new Queue<Guid>(directGroups);
        while (queue.Count > 0)
        {
            var group = queue.Dequeue();
            if (seen.Add(group))
            {
                foreach (var parent in parentsOf(group))
                {
                    queue.Enqueue(parent);
                }
            }
        }

        return new Principal(userId, seen);
    }

    /// <summary>True when an assignment to (<paramref name="id"/>, <paramref name="kind"/>) reaches this user.</summary>
    public bool IsCoveredBy(Guid id, PrincipalKind kind) => kind == PrincipalKind.User ? id == UserId : GroupIds.Contains(id);
}

/// <summary>Which account a sign-in gets on the host.</summary>
public enum LoginLevel
{
    /// <summary>No sign-in.</summary>
    None,

    /// <summary>The host's regular user account.</summary>
    User,

    /// <summary>The host's administrator account.</summary>
    Administrator,
}

/// <summary>The answer to "may this user sign in to this host, and as what", with the assignment that decided it.</summary>
public sealed record SignInAuthorization(LoginLevel Level, RoleAssignment? GrantedBy, RoleDefinition? Role, string Explanation)
{
    /// <summary>True when the user may sign in.</summary>
    public bool Allowed => Level != LoginLevel.None;
}

/// <summary>The answer to a management permission check.</summary>
public sealed record PermissionCheck(bool Allowed, RoleAssignment? GrantedBy, string Explanation);

/// <summary>
/// Azure-style role-based access control over a snapshot of role definitions and assignments: sign-in rights on
/// hosts (data actions) and management permissions (actions), each with the assignment that granted it and words
/// that explain a refusal.
/// </summary>
public sealed class RbacEvaluator
{
    /// <summary>The seed's message for a user without a login role.</summary>
    public const string NoAccessMessage = "Your account is configured to prevent you from using this device. For more info, contact your system administrator.";

    private readonly Dictionary<Guid, RoleDefinition> _roles;
    private readonly IReadOnlyList<RoleAssignment> _assignments;

    /// <summary>Creates an evaluator over <paramref name="roles"/> (built-ins are added when missing) and <paramref name="assignments"/>.</summary>
    public RbacEvaluator(IEnumerable<RoleDefinition> roles, IEnumerable<RoleAssignment> assignments)
    {
        ArgumentNullException.ThrowIfNull(roles);
        ArgumentNullException.ThrowIfNull(assignments);
        var map = BuiltInRoles.All.ToDictionary(r => r.Id);
        foreach (var role in roles)
        {
            map[role.Id] = role;
        }

        _roles = map;
        _assignments = [.. assignments];
    }

    /// <summary>The role with <paramref name="id"/>, or null.</summary>
    public RoleDefinition? FindRole(Guid id) => _roles.GetValueOrDefault(id);

    /// <summary>
    /// May <paramref name="principal"/> sign in to <paramref name="host"/>? Administrator wins over user when both
    /// apply; assignments at <c>/</c>, the host's group and the host itself count.
    /// </summary>
    public SignInAuthorization AuthorizeSignIn(Principal principal, HostRef host)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(host);
        (RoleAssignment Assignment, RoleDefinition Role)? user = null;
        var nonLoginRoles = new List<string>();
        foreach (var (assignment, role) in Applicable(principal, host.Scope, host.HostGroup))
        {
            if (role.AllowsDataAction(AccessActions.LoginAsAdmin))
            {
                return new SignInAuthorization(LoginLevel.Administrator, assignment, role,
                    $"Allowed as administrator by '{role.Name}' assigned at {assignment.Scope}.");
            }

            if (role.AllowsDataAction(AccessActions.Login))
            {
                user ??= (assignment, role);
            }
            else
            {
                nonLoginRoles.Add($"'{role.Name}' at {assignment.Scope}");
            }
        }

        if (user is { } u)
        {
            return new SignInAuthorization(LoginLevel.User, u.Assignment, u.Role, $"Allowed as a regular user by '{u.Role.Name}' assigned at {u.Assignment.Scope}.");
        }

        var fix = $"Assign 'Virtual Machine User Login' (or 'Virtual Machine Administrator Login') to the user at /hosts/{host.Name}"
            + (host.HostGroup is { } g ? $", /hostGroups/{g.ToLowerInvariant()}" : string.Empty) + " or /.";
        var held = nonLoginRoles.Count == 0
            ? "The user has no role assignment that covers this host."
            : $"The user holds {string.Join(", ", nonLoginRoles)}, which do not allow signing in (Owner, Contributor and Reader manage hosts but grant no sign-in).";
        return new SignInAuthorization(LoginLevel.None, null, null, $"{held} {fix}");
    }

    /// <summary>Does <paramref name="principal"/> hold the management <paramref name="action"/> at <paramref name="scope"/>?</summary>
    public PermissionCheck CheckPermission(Principal principal, string action, Scope scope, string? hostGroupOfHost = null)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(action);
        ArgumentNullException.ThrowIfNull(scope);
        foreach (var (assignment, role) in Applicable(principal, scope, hostGroupOfHost))
        {
            if (role.AllowsAction(action))
            {
                return new PermissionCheck(true, assignment, $"Allowed by '{role.Name}' at {assignment.Scope}.");
            }
        }

        return new PermissionCheck(false, null, $"No role assignment grants {action} at {scope}. Ask an Owner to assign a role that includes it.");
    }

    /// <summary>
    /// May <paramref name="principal"/> assign <paramref name="role"/> at <paramref name="scope"/>? Needs
    /// roleAssignments/write there through a role without an assignable-roles restriction, or with one that lists the role.
    /// </summary>
    public PermissionCheck CheckCanAssign(Principal principal, RoleDefinition role, Scope scope, string? hostGroupOfHost = null)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(role);
        ArgumentNullException.ThrowIfNull(scope);
        var restricted = new List<string>();
        foreach (var (assignment, holder) in Applicable(principal, scope, hostGroupOfHost))
        {
            if (!holder.AllowsAction(AccessActions.RoleAssignmentsWrite))
            {
                continue;
            }

            if (holder.AssignableRoleIds is null || holder.AssignableRoleIds.Contains(role.Id))
            {
                return new PermissionCheck(true, assignment, $"Allowed by '{holder.Name}' at {assignment.Scope}.");
            }

            restricted.Add($"'{holder.Name}' at {assignment.Scope} may only assign {string.Join(" and ", holder.AssignableRoleIds.Select(id => $"'{FindRole(id)?.Name ?? id.ToString()}'"))}");
        }

        return new PermissionCheck(false, null, restricted.Count > 0
            ? $"Cannot assign '{role.Name}': {string.Join("; ", restricted)}."
            : $"Cannot assign '{role.Name}' at {scope}: no role assignment grants {AccessActions.RoleAssignmentsWrite} there.");
    }

    private IEnumerable<(RoleAssignment Assignment, RoleDefinition Role)> Applicable(Principal principal, Scope target, string? hostGroupOfHost)
    {
        foreach (var assignment in _assignments)
        {
            if (principal.IsCoveredBy(assignment.PrincipalId, assignment.PrincipalKind)
                && assignment.Scope.Contains(target, hostGroupOfHost)
                && _roles.TryGetValue(assignment.RoleDefinitionId, out var role))
            {
                yield return (assignment, role);
            }
        }
    }
}
