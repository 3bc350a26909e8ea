using Gatehouse.Access;
using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary>
/// <c>/admin/directory</c>: users, groups and hosts, as <c>gatehouse user list</c>, <c>group list</c> and <c>host list</c>
/// show them (the same rights), each host with its agent's health (<c>gatehouse host status</c>); users created,
/// disabled and enabled, groups created and their members added and removed through the same operations as
/// <c>gatehouse user create|disable|enable</c> and <c>gatehouse group create|add-member|remove-member</c>. The change
/// forms are drawn only for a caller who holds the write action (the operations check it again, with their finer checks).
/// </summary>
internal sealed class DirectoryModel : PortalPageModel
{
    public IReadOnlyList<UserView> Users { get; private set; } = [];

    public IReadOnlyList<GroupView> Groups { get; private set; } = [];

    public IReadOnlyList<(HostView Host, HostStatusView? Status)> Hosts { get; private set; } = [];

    /// <summary>The result of the last change.</summary>
    public string? Message { get; private set; }

    /// <summary>A temporary password the last user creation generated, shown once.</summary>
    public string? TemporaryPassword { get; private set; }

    /// <summary>Whether to draw the user forms: the caller holds users/write at the tenant.</summary>
    public bool CanWriteUsers => Caller.Can(AdminOperations.UsersWrite, Scope.Tenant);

    /// <summary>Whether to draw the group forms: the caller holds groups/write at the tenant.</summary>
    public bool CanWriteGroups => Caller.Can(AdminOperations.GroupsWrite, Scope.Tenant);

    public Task OnGetAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    public async Task OnPostCreateUserAsync(string? upn, string? displayName, string? password, CancellationToken cancellationToken)
    {
        var created = await Operations.CreateUserAsync(new CreateUserRequest(upn, displayName, password, TemporaryPassword: false), cancellationToken);
        Message = $"Created {created.User.UserPrincipalName}.";
        TemporaryPassword = created.TemporaryPassword;
        await LoadAsync(cancellationToken);
    }

    public async Task OnPostEnableAsync(string? upn, bool enabled, CancellationToken cancellationToken)
    {
        var user = await Operations.SetUserEnabledAsync(upn ?? string.Empty, enabled, cancellationToken);
        Message = $"{user.UserPrincipalName} is {(user.Enabled ? "enabled" : "disabled")}.";
        await LoadAsync(cancellationToken);
    }

    public async Task OnPostCreateGroupAsync(string? name, CancellationToken cancellationToken)
    {
        var group = await Operations.CreateGroupAsync(name ?? string.Empty, cancellationToken);
        Message = $"Created the group {group.Name}.";
        await LoadAsync(cancellationToken);
    }

    public async Task OnPostAddMemberAsync(string? group, string? member, CancellationToken cancellationToken)
    {
        var added = await Operations.AddGroupMemberAsync(group ?? string.Empty, (member ?? string.Empty).Trim(), cancellationToken);
        Message = added.Changed ? $"Added {added.Member} to {added.Group}." : $"{added.Member} was already a member of {added.Group}.";
        await LoadAsync(cancellationToken);
    }

    public async Task OnPostRemoveMemberAsync(string? group, string? member, CancellationToken cancellationToken)
    {
        var removed = await Operations.RemoveGroupMemberAsync(group ?? string.Empty, (member ?? string.Empty).Trim(), cancellationToken);
        Message = removed.Changed ? $"Removed {removed.Member} from {removed.Group}." : $"{removed.Member} was not a member of {removed.Group}.";
        await LoadAsync(cancellationToken);
    }

    /// <summary>The health cell's text: the overall health and the first check that is not ok.</summary>
    public static string HealthText(HostStatusView? status)
    {
        if (status is null)
        {
            return "unknown";
        }

        var problem = status.Checks.FirstOrDefault(c => c.Status != "ok");
        return problem is null ? status.Health : $"{status.Health}: {problem.Message}";
    }

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        Users = await Operations.ListUsersAsync(cancellationToken);
        Groups = await Operations.ListGroupsAsync(cancellationToken);
        var hosts = await Operations.ListHostsAsync(cancellationToken);
        var withHealth = new List<(HostView, HostStatusView?)>(hosts.Count);
        foreach (var host in hosts)
        {
            withHealth.Add((host, await Operations.GetHostStatusAsync(host.Name, cancellationToken)));
        }

        Hosts = withHealth;
    }
}
