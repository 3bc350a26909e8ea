using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary>
/// <c>/admin/roles</c>: role assignments (<c>gatehouse role assignment list|create|delete</c>); the operations check the
/// right to assign the role at the scope, so the page shows their 403 sentence when it is missing.
/// </summary>
internal sealed class RolesModel : PortalPageModel
{
    public IReadOnlyList<RoleDefinitionView> Definitions { get; private set; } = [];

    public IReadOnlyList<RoleAssignmentView> Assignments { get; private set; } = [];

    public string? Message { get; private set; }

    /// <summary>Whether to draw the assign form: the caller may assign some role somewhere (the operation checks the role and scope).</summary>
    public bool MayCreate { get; private set; }

    /// <summary>The assignments whose Remove button to draw (the delete operation's checks).</summary>
    public IReadOnlySet<Guid> MayRemove { get; private set; } = new HashSet<Guid>();

    public Task OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    public async Task OnPostCreateAsync(string? role, string? assignee, string? scope, CancellationToken cancellationToken)
    {
        var created = await Operations.CreateRoleAssignmentAsync(new CreateRoleAssignmentRequest(role, assignee, scope), cancellationToken);
        Message = $"Assigned '{created.Role}' to {created.Assignee} at {created.Scope}.";
        await LoadAsync(cancellationToken);
    }

    public async Task OnPostDeleteAsync(Guid id, CancellationToken cancellationToken)
    {
        await Operations.DeleteRoleAssignmentAsync(id, cancellationToken);
        Message = $"Removed role assignment {id}.";
        await LoadAsync(cancellationToken);
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Definitions = await Operations.ListRoleDefinitionsAsync(cancellationToken);
        Assignments = await Operations.ListRoleAssignmentsAsync(null, null, cancellationToken);
        (MayCreate, MayRemove) = await Operations.RoleAssignmentChangesAsync(Assignments, cancellationToken);
    }
}
