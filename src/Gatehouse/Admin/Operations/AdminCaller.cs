using Gatehouse.Access;
using Gatehouse.Storage;

namespace Gatehouse.Admin.Operations;

/// <summary>
/// Who runs an admin operation: a signed-in user (the admin API's bearer token; their groups and the tenant's RBAC
/// snapshot decide every action at the resource's scope), or the operator (the CLI with <c>--data</c>/<c>--store</c>:
/// whoever can read the server's data directory holds every right already, so every action is allowed).
/// </summary>
internal sealed class AdminCaller
{
    private const string ItemKey = "Gatehouse.Admin.Caller";

    private AdminCaller(Guid tenantId, string name, User? user, Principal? principal, RbacEvaluator? rbac)
    {
        TenantId = tenantId;
        Name = name;
        User = user;
        Principal = principal;
        Rbac = rbac;
    }

    /// <summary>The signed-in user, or null for the operator.</summary>
    public User? User { get; }

    public Guid TenantId { get; }

    /// <summary>The caller in messages and in <c>createdBy</c>: the UPN, or <c>cli</c> for the operator.</summary>
    public string Name { get; }

    public Principal? Principal { get; }

    public RbacEvaluator? Rbac { get; }

    public bool IsOperator => User is null;

    public static AdminCaller ForUser(User user, Principal principal, RbacEvaluator rbac)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(rbac);
        return new AdminCaller(user.TenantId, user.UserPrincipalName, user, principal, rbac);
    }

    public static AdminCaller Operator(Guid tenantId) => new(tenantId, "cli", null, null, null);

    /// <summary>Minimal-API binding: the caller the authentication middleware attached to the request.</summary>
    public static ValueTask<AdminCaller?> BindAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ValueTask.FromResult(context.Items[ItemKey] as AdminCaller);
    }

    public static AdminCaller? From(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[ItemKey] as AdminCaller;
    }

    public void AttachTo(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[ItemKey] = this;
    }

    public bool Can(string action, Scope scope, string? hostGroupOfHost = null) =>
        IsOperator || Rbac!.CheckPermission(Principal!, action, scope, hostGroupOfHost).Allowed;

    /// <summary>Throws a 403 problem unless the caller holds <paramref name="action"/> at <paramref name="scope"/>.</summary>
    public void Require(string action, Scope scope, string? hostGroupOfHost = null)
    {
        if (IsOperator)
        {
            return;
        }

        var check = Rbac!.CheckPermission(Principal!, action, scope, hostGroupOfHost);
        if (!check.Allowed)
        {
            throw Forbidden(action, scope.ToString());
        }
    }

    /// <summary>
    /// For an operation on a named resource (a host, a session, an assignment) whose scope depends on the resource:
    /// a caller who may not do <paramref name="action"/> at the resource's scope gets the same 403 whether or not the
    /// resource exists (the scope in the sentence is the one named in the request), so refusals tell nothing about
    /// what exists. Only a caller who holds the action at the tenant scope learns that a resource is absent (404).
    /// </summary>
    public void RequireOrHide(string action, string requestedScope, Scope? actualScope, string? hostGroupOfHost, string notFound)
    {
        if (actualScope is not null && Can(action, actualScope, hostGroupOfHost))
        {
            return;
        }

        if (actualScope is null && Can(action, Scope.Tenant))
        {
            throw AdminProblemException.NotFound(notFound);
        }

        throw Forbidden(action, requestedScope);
    }

    /// <summary>May the caller assign <paramref name="role"/> at <paramref name="scope"/>? (The check of <see cref="RequireCanAssign"/>, without the throw.)</summary>
    public bool CanAssign(RoleDefinition role, Scope scope, string? hostGroupOfHost) =>
        IsOperator || Rbac!.CheckCanAssign(Principal!, role, scope, hostGroupOfHost).Allowed;

    /// <summary>May the caller assign <paramref name="role"/> at <paramref name="scope"/>? Throws the 403 problem if not.</summary>
    public void RequireCanAssign(RoleDefinition role, Scope scope, string? hostGroupOfHost, string verb = "do this")
    {
        if (IsOperator)
        {
            return;
        }

        var check = Rbac!.CheckCanAssign(Principal!, role, scope, hostGroupOfHost);
        if (!check.Allowed)
        {
            throw new AdminProblemException(StatusCodes.Status403Forbidden, "Forbidden", $"{Name} may not {verb}: {check.Explanation}");
        }
    }

    /// <summary>
    /// For a change that hands a role's power to whoever makes it (a user's password or MFA, a role-holding group's
    /// members): may the caller assign <paramref name="role"/>, which protects <paramref name="holder"/> through
    /// <paramref name="how"/>, at <paramref name="scope"/>? Throws a 403 naming the role, its scope and which roles would allow it.
    /// </summary>
    public void RequireCanAssignRoleOf(string verb, string holder, RoleDefinition role, Scope scope, string? hostGroupOfHost, string how, string why)
    {
        ArgumentNullException.ThrowIfNull(role);
        ArgumentNullException.ThrowIfNull(scope);
        if (IsOperator)
        {
            return;
        }

        var check = Rbac!.CheckCanAssign(Principal!, role, scope, hostGroupOfHost);
        if (check.Allowed)
        {
            return;
        }

        var allowing = BuiltInRoles.All
            .Where(r => r.AllowsAction(AccessActions.RoleAssignmentsWrite) && (r.AssignableRoleIds is null || r.AssignableRoleIds.Contains(role.Id)))
            .Select(r => $"'{r.Name}'").ToList();
        throw new AdminProblemException(StatusCodes.Status403Forbidden, "Forbidden",
            $"{Name} may not {verb}: {holder} holds '{role.Name}' at {scope}{how}, and {why}, so this needs the right to assign '{role.Name}' at {scope}. {check.Explanation} "
            + $"Ask someone who holds {string.Join(" or ", allowing)} at {scope} or a scope above it.");
    }

    /// <summary>The 403 sentence: who lacks which action at which scope, and which built-in roles include it.</summary>
    public AdminProblemException Forbidden(string action, string scope)
    {
        var roles = BuiltInRoles.All.Where(r => r.AllowsAction(action)).Select(r => $"'{r.Name}'").ToList();
        var grant = roles.Count == 0 ? string.Empty : $" Built-in roles that include it: {string.Join(", ", roles)}.";
        return new AdminProblemException(StatusCodes.Status403Forbidden, "Forbidden",
            $"{Name} may not do this: No role assignment grants {action} at {scope}. Ask an Owner to assign a role that includes it.{grant}");
    }
}
