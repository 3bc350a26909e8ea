using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Admin.Operations;

/// <summary>
/// Where clients reach the gateway: the IdP's public name, the RDP port and the SHA-256 of the gateway's certificate (when
/// known); and the addresses the gateway connects to hosts from (<c>Gatehouse:GatewayAddresses</c>), which the audit
/// allows a host's RDP port to listen on.
/// </summary>
internal sealed record GatewayInfo(string PublicName, int RdpPort, string? CertificateSha256, IReadOnlyList<string>? GatewayAddresses = null);

/// <summary>
/// The one implementation of every admin operation, for a <see cref="AdminCaller"/>: the REST API's handlers call it
/// for the signed-in user, the CLI with <c>--data</c>/<c>--store</c> for the operator. Each operation checks the RBAC
/// action it needs at the resource's scope before it reads or changes anything the caller could not see.
/// </summary>
internal sealed partial class AdminOperations(AdminCaller caller, IServiceProvider services, Func<GatewayInfo> gateway) : IAdminClient
{
    internal const string UsersRead = "Gatehouse/users/read";
    internal const string UsersWrite = "Gatehouse/users/write";
    internal const string GroupsRead = "Gatehouse/groups/read";
    internal const string GroupsWrite = "Gatehouse/groups/write";
    internal const string HostsDelete = "Gatehouse/hosts/delete";
    internal const string HostGroupsRead = "Gatehouse/hostGroups/read";
    internal const string HostGroupsWrite = "Gatehouse/hostGroups/write";
    internal const string RoleDefinitionsRead = "Gatehouse/roleDefinitions/read";
    internal const string RoleAssignmentsRead = "Gatehouse/roleAssignments/read";
    internal const string PoliciesRead = "Gatehouse/policies/read";
    internal const string PoliciesWrite = "Gatehouse/policies/write";
    internal const string PoliciesDelete = "Gatehouse/policies/delete";
    internal const string LocationsRead = "Gatehouse/namedLocations/read";
    internal const string LocationsWrite = "Gatehouse/namedLocations/write";
    internal const string LocationsDelete = "Gatehouse/namedLocations/delete";
    internal const string SignInsRead = "Gatehouse/signIns/read";
    internal const string SessionsRead = "Gatehouse/sessions/read";
    internal const string SessionsKill = "Gatehouse/sessions/kill/action";
    internal const string HostsTest = "Gatehouse/hosts/test/action";

    public AdminCaller Caller { get; } = caller;

    private Guid Tenant => Caller.TenantId;

    private GatehouseDbContext Db => services.GetRequiredService<GatehouseDbContext>();

    private DirectoryService Directory => services.GetRequiredService<DirectoryService>();

    private PasskeyService Passkeys => services.GetRequiredService<PasskeyService>();

    private TemporaryAccessPassService AccessPasses => services.GetRequiredService<TemporaryAccessPassService>();

    private AccessService Access => services.GetRequiredService<AccessService>();

    private TimeProvider Time => services.GetRequiredService<TimeProvider>();

    private DateTimeOffset Now => Time.GetUtcNow();

    // Lookups: the entity a request names, or the sentence that says how to find the right name.
    private async Task<User> FindUserAsync(string upn, CancellationToken ct)
    {
        var user = await Directory.FindUserByUpnAsync(upn, ct).ConfigureAwait(false);
        return user is not null && user.TenantId == Tenant
            ? user
            : throw AdminProblemException.NotFound($"There is no user '{upn}'. 'gatehouse user list' shows the users.");
    }

    private async Task<Host?> TryFindHostAsync(string name, CancellationToken ct) =>
        await Directory.FindHostByLabelAsync(Tenant, name, ct).ConfigureAwait(false);

    private static string HostNotFound(string name) => $"There is no host '{name}'. 'gatehouse host list' shows the hosts.";

    /// <summary>The host, after checking <paramref name="action"/> at its scope without telling a caller who may not whether it exists.</summary>
    private async Task<Host> FindHostForAsync(string action, string name, CancellationToken ct)
    {
        var host = await TryFindHostAsync(name, ct).ConfigureAwait(false);
        var group = host is null ? null : await HostGroupNameAsync(host, ct).ConfigureAwait(false);
        Caller.RequireOrHide(action, $"/hosts/{DirectoryService.NormalizeName(name)}", host is null ? null : Scope.Host(host.Name), group, HostNotFound(name));
        return host!;
    }

    private async Task<string?> HostGroupNameAsync(Host host, CancellationToken ct) =>
        host.HostGroupId is { } g ? await Db.HostGroups.AsNoTracking().Where(x => x.Id == g).Select(x => x.Name).FirstOrDefaultAsync(ct).ConfigureAwait(false) : null;

    private async Task<Group> FindGroupAsync(string name, CancellationToken ct)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var group = await Db.Groups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == Tenant && g.NormalizedName == normalized, ct).ConfigureAwait(false);
        return group ?? throw AdminProblemException.NotFound($"There is no group '{name}'. 'gatehouse group list' shows the groups.");
    }

    private async Task<HostGroup> FindHostGroupAsync(string name, CancellationToken ct)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var group = await Db.HostGroups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == Tenant && g.Name == normalized, ct).ConfigureAwait(false);
        return group ?? throw AdminProblemException.BadRequest($"There is no host group '{name}'. Create it with 'gatehouse hostgroup create {name}' ('gatehouse hostgroup list' shows them).");
    }

    /// <summary>Names of users and groups by id, for showing assignments and memberships.</summary>
    private async Task<Dictionary<Guid, string>> PrincipalNamesAsync(CancellationToken ct)
    {
        var users = await Db.Users.AsNoTracking().Where(u => u.TenantId == Tenant).Select(u => new { u.Id, u.UserPrincipalName }).ToListAsync(ct).ConfigureAwait(false);
        var groups = await Db.Groups.AsNoTracking().Where(g => g.TenantId == Tenant).Select(g => new { g.Id, g.Name }).ToListAsync(ct).ConfigureAwait(false);
        var names = users.ToDictionary(u => u.Id, u => u.UserPrincipalName);
        foreach (var group in groups)
        {
            names[group.Id] = group.Name;
        }

        return names;
    }

    private async Task<Dictionary<string, string>> HostGroupsOfHostsAsync(CancellationToken ct) =>
        await Db.Hosts.AsNoTracking().Where(h => h.TenantId == Tenant && h.HostGroupId != null)
            .Join(Db.HostGroups, h => h.HostGroupId, g => g.Id, (h, g) => new { h.Name, Group = g.Name })
            .ToDictionaryAsync(x => x.Name, x => x.Group, ct).ConfigureAwait(false);

    private static string? HostGroupOf(Scope scope, Dictionary<string, string> hostGroups) =>
        scope.Kind == ScopeKind.Host && scope.Name is { } name ? hostGroups.GetValueOrDefault(name) : null;

    private static Scope ParseScope(string text) =>
        Scope.TryParse(text, out var scope, out var error) ? scope : throw AdminProblemException.BadRequest(error);

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string Sentence(ArgumentException e) => AdminText.Sentence(e);
}
