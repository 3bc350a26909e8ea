using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Cli;

/// <summary>Finds the entities that commands name, or fails with the sentence that says how to find the right name.</summary>
internal static class Lookups
{
    public static async Task<User> UserAsync(CliContext context, string upn, CancellationToken cancellationToken)
    {
        var user = await context.Get<DirectoryService>().FindUserByUpnAsync(upn, cancellationToken).ConfigureAwait(false);
        return user is not null && user.TenantId == context.Tenant.Id
            ? user
            : throw new CliException($"There is no user '{upn}'. 'gatehouse user list' shows the users.");
    }

    public static async Task<Host> HostAsync(CliContext context, string name, CancellationToken cancellationToken)
    {
        var host = await context.Get<DirectoryService>().FindHostByLabelAsync(context.Tenant.Id, name, cancellationToken).ConfigureAwait(false);
        return host ?? throw new CliException($"There is no host '{name}'. 'gatehouse host list' shows the hosts.");
    }

    public static async Task<Group> GroupAsync(CliContext context, string name, CancellationToken cancellationToken)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var group = await context.Db.Groups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == context.Tenant.Id && g.NormalizedName == normalized, cancellationToken).ConfigureAwait(false);
        return group ?? throw new CliException($"There is no group '{name}'. 'gatehouse group list' shows the groups.");
    }

    public static async Task<HostGroup> HostGroupAsync(CliContext context, string name, CancellationToken cancellationToken)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var group = await context.Db.HostGroups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == context.Tenant.Id && g.Name == normalized, cancellationToken).ConfigureAwait(false);
        return group ?? throw new CliException($"There is no host group '{name}'. Create it with 'gatehouse hostgroup create {name}' ('gatehouse hostgroup list' shows them).");
    }

    public static Guid ParseId(string text, string what)
    {
        return Guid.TryParse(text, out var id)
            ? id
            : throw new CliException($"'{text}' is not {what} id (a GUID such as 3f2b…); the matching 'list' command shows the ids.");
    }

    /// <summary>Names of users and groups by id, for showing assignments.</summary>
    public static async Task<Dictionary<Guid, string>> PrincipalNamesAsync(CliContext context, CancellationToken cancellationToken)
    {
        var tenant = context.Tenant.Id;
        var users = await context.Db.Users.AsNoTracking().Where(u => u.TenantId == tenant).Select(u => new { u.Id, u.UserPrincipalName }).ToListAsync(cancellationToken).ConfigureAwait(false);
        var groups = await context.Db.Groups.AsNoTracking().Where(g => g.TenantId == tenant).Select(g => new { g.Id, g.Name }).ToListAsync(cancellationToken).ConfigureAwait(false);
        var names = users.ToDictionary(u => u.Id, u => u.UserPrincipalName);
        foreach (var group in groups)
        {
            names[group.Id] = group.Name;
        }

        return names;
    }
}
