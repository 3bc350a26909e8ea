using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary><c>/admin/directory</c>: users, groups and hosts, as <c>gatehouse user list</c>, <c>group list</c> and <c>host list</c> show them (the same rights).</summary>
internal sealed class DirectoryModel : PortalPageModel
{
    public IReadOnlyList<UserView> Users { get; private set; } = [];

    public IReadOnlyList<GroupView> Groups { get; private set; } = [];

    public IReadOnlyList<HostView> Hosts { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Users = await Operations.ListUsersAsync(cancellationToken);
        Groups = await Operations.ListGroupsAsync(cancellationToken);
        Hosts = await Operations.ListHostsAsync(cancellationToken);
    }
}
