using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>Users (tenant scope) and groups of users (tenant scope).</summary>
internal sealed partial class AdminOperations
{
    public async Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken)
    {
        Caller.Require(UsersRead, Scope.Tenant);
        var users = await Db.Users.AsNoTracking().Where(u => u.TenantId == Tenant).OrderBy(u => u.NormalizedUpn).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. users.Select(ToView)];
    }

    public async Task<UserDetailsView> GetUserAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersRead, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        var principal = await Access.ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        var groups = await Db.Groups.AsNoTracking().Where(g => principal.GroupIds.Contains(g.Id)).Select(g => g.Name).OrderBy(n => n).ToListAsync(cancellationToken).ConfigureAwait(false);
        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var assignments = await Db.RoleAssignments.AsNoTracking()
            .Where(a => a.PrincipalId == user.Id || principal.GroupIds.Contains(a.PrincipalId)).ToListAsync(cancellationToken).ConfigureAwait(false);
        var names = await PrincipalNamesAsync(cancellationToken).ConfigureAwait(false);
        var roles = assignments.Select(a => $"{rbac.FindRole(a.RoleDefinitionId)?.Name ?? a.RoleDefinitionId.ToString()} at {a.Scope}{(a.PrincipalId == user.Id ? "" : $" (through group {names.GetValueOrDefault(a.PrincipalId)})")}").ToList();
        return new UserDetailsView(user.Id, user.UserPrincipalName, user.DisplayName, user.Enabled, user.MustChangePassword, MfaState(user), user.CreatedAt, user.PasswordChangedAt, groups, roles);
    }

    public async Task<CreatedUserView> CreateUserAsync(CreateUserRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(UsersWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(request.UserPrincipalName))
        {
            throw AdminProblemException.BadRequest("Give the user principal name (user@domain, one of the tenant's domains).");
        }

        var name = AdminNames.RequireUpn(request.UserPrincipalName);
        var display = string.IsNullOrWhiteSpace(request.DisplayName) ? name.Split('@')[0] : AdminNames.Require("The display name", request.DisplayName, AdminNames.DisplayNameLength);
        if (!string.IsNullOrEmpty(request.Password) && request.TemporaryPassword)
        {
            throw AdminProblemException.BadRequest("Use either a password or a temporary password, not both.");
        }

        if (await Directory.FindUserByUpnAsync(name, cancellationToken).ConfigureAwait(false) is not null)
        {
            throw AdminProblemException.Conflict($"A user '{name}' already exists; 'gatehouse user show {name}' shows it.");
        }

        try
        {
            var (user, temporary) = await Directory.CreateUserAsync(Tenant, name, display, string.IsNullOrEmpty(request.Password) ? null : request.Password, temporary: false, cancellationToken).ConfigureAwait(false);
            return new CreatedUserView(ToView(user), temporary);
        }
        catch (ArgumentException e)
        {
            var domains = await Db.TenantDomains.AsNoTracking().Where(d => d.TenantId == Tenant).Select(d => d.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
            throw AdminProblemException.BadRequest($"{Sentence(e)} Use a UPN in one of the tenant's domains: {string.Join(", ", domains)}.");
        }
    }

    public async Task<UserView> SetUserEnabledAsync(string upn, bool enabled, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        if (!enabled && Caller.User is { } self && user.Id == self.Id)
        {
            throw AdminProblemException.BadRequest("You cannot disable your own account; ask another administrator.");
        }

        await RequireCanAssignRolesOfUserAsync(user, $"{(enabled ? "enable" : "disable")} {user.UserPrincipalName}", cancellationToken,
            enabled ? "enabling it hands those roles back to whoever holds its credentials" : "disabling it takes those roles away from their holder (a Contributor could lock out every Owner)").ConfigureAwait(false);

        await (enabled ? Directory.EnableAsync(user, cancellationToken) : Directory.DisableAsync(user, cancellationToken)).ConfigureAwait(false);
        user.Enabled = enabled;
        if (!enabled)
        {
            // Host agents connected to this node lock the account they manage for the user (best effort; a sign-in
            // attempt sends it again, and no logon is prepared for a disabled user anyway).
            services.GetService<Gatehouse.Identity.Gateway.IHostAgentLogons>()?.RequestDisable(Tenant, null, user.UserPrincipalName);
        }

        return ToView(user);
    }

    public async Task<PasswordResetView> ResetPasswordAsync(string upn, string? password, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"reset the password of {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        var supplied = !string.IsNullOrEmpty(password);
        var value = supplied ? password! : DirectoryService.GenerateTemporaryPassword();
        try
        {
            await Directory.SetPasswordAsync(user, value, mustChange: !supplied, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest($"{Sentence(e)} Choose another password.");
        }

        return new PasswordResetView(user.UserPrincipalName, supplied ? null : value);
    }

    public async Task<MfaEnrollmentView> BeginMfaEnrollmentAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"enroll an MFA method for {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        var enrollment = await Directory.BeginTotpEnrollmentAsync(user, "Gatehouse", cancellationToken).ConfigureAwait(false);
        return new MfaEnrollmentView(user.UserPrincipalName, enrollment.OtpAuthUri, enrollment.SecretBase32);
    }

    public async Task<MfaConfirmationView> ConfirmMfaAsync(string upn, string code, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"confirm an MFA method for {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        if (user.TotpSecretProtected is null)
        {
            throw AdminProblemException.BadRequest($"{user.UserPrincipalName} has no enrolment to confirm; start one with 'gatehouse user mfa enroll {user.UserPrincipalName}'.");
        }

        var confirmed = await Directory.ConfirmTotpAsync(user, (code ?? string.Empty).Trim(), cancellationToken).ConfigureAwait(false);
        return new MfaConfirmationView(user.UserPrincipalName, confirmed);
    }

    public async Task<UserChangeView> ResetMfaAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"reset the MFA of {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        await Directory.ResetTotpAsync(user, cancellationToken).ConfigureAwait(false);
        return new UserChangeView(user.UserPrincipalName, "mfaReset");
    }

    public async Task<IReadOnlyList<PasskeyView>> ListPasskeysAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersRead, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        var passkeys = await Passkeys.ListAsync(user.Id, cancellationToken).ConfigureAwait(false);
        return [.. passkeys.Select(p => new PasskeyView(p.Name, p.Aaguid, p.BackupEligible, p.BackedUp, p.SignCount, p.CreatedAt, p.LastUsedAt,
            Convert.ToHexStringLower(p.CredentialId.AsSpan(0, Math.Min(4, p.CredentialId.Length)))))];
    }

    public async Task<UserChangeView> RemovePasskeyAsync(string upn, string name, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"remove a passkey of {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        if (PasskeyService.NormalizeName(name) is null)
        {
            throw AdminProblemException.BadRequest($"Give the passkey's name (1 to {Passkey.NameLength} characters); 'gatehouse user passkey list {user.UserPrincipalName}' lists them.");
        }

        if (!await Passkeys.RemoveAsync(user.Id, name, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.NotFound($"{user.UserPrincipalName} has no passkey named '{name.Trim()}'; 'gatehouse user passkey list {user.UserPrincipalName}' lists them.");
        }

        return new UserChangeView(user.UserPrincipalName, "passkeyRemoved");
    }

    public async Task<TemporaryAccessPassView> CreateTemporaryAccessPassAsync(string upn, int lifetimeMinutes, bool multiUse, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfUserAsync(user, $"issue a Temporary Access Pass to {user.UserPrincipalName}", cancellationToken).ConfigureAwait(false);
        var lifetime = TimeSpan.FromMinutes(lifetimeMinutes);
        if (lifetime < TemporaryAccessPassService.MinimumLifetime || lifetime > TemporaryAccessPassService.MaximumLifetime)
        {
            throw AdminProblemException.BadRequest("A Temporary Access Pass lives 10 minutes to 8 hours (--lifetime 10m..8h).");
        }

        if (!user.Enabled)
        {
            throw AdminProblemException.BadRequest($"{user.UserPrincipalName} is disabled; enable the user first ('gatehouse user enable {user.UserPrincipalName}').");
        }

        var (pass, record) = await AccessPasses.CreateAsync(user.Id, lifetime, multiUse, cancellationToken).ConfigureAwait(false);
        return new TemporaryAccessPassView(user.UserPrincipalName, pass, record.CreatedAt, record.ExpiresAt, record.MultiUse, null);
    }

    public async Task<IReadOnlyList<TemporaryAccessPassView>> ListTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersRead, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        var passes = await AccessPasses.ListAsync(user.Id, cancellationToken).ConfigureAwait(false);
        return [.. passes.Select(t => new TemporaryAccessPassView(user.UserPrincipalName, null, t.CreatedAt, t.ExpiresAt, t.MultiUse, t.UsedAt))];
    }

    public async Task<UserChangeView> RemoveTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken)
    {
        Caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        await AccessPasses.RemoveAllAsync(user.Id, cancellationToken).ConfigureAwait(false);
        return new UserChangeView(user.UserPrincipalName, "temporaryAccessPassesRemoved");
    }

    // Groups.
    public async Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(GroupsRead, Scope.Tenant);
        var groups = await Db.Groups.AsNoTracking().Where(g => g.TenantId == Tenant).OrderBy(g => g.NormalizedName).ToListAsync(cancellationToken).ConfigureAwait(false);
        var ids = groups.Select(g => g.Id).ToList();
        var members = await Db.GroupMembers.AsNoTracking().Where(m => ids.Contains(m.GroupId)).ToListAsync(cancellationToken).ConfigureAwait(false);
        var names = await PrincipalNamesAsync(cancellationToken).ConfigureAwait(false);
        return [.. groups.Select(g => new GroupView(
            g.Id,
            g.Name,
            [.. members.Where(m => m.GroupId == g.Id && m.UserId is not null).Select(m => names.GetValueOrDefault(m.UserId!.Value, m.UserId.Value.ToString())).Order(StringComparer.OrdinalIgnoreCase)],
            [.. members.Where(m => m.GroupId == g.Id && m.MemberGroupId is not null).Select(m => names.GetValueOrDefault(m.MemberGroupId!.Value, m.MemberGroupId.Value.ToString())).Order(StringComparer.OrdinalIgnoreCase)]))];
    }

    public async Task<GroupView> CreateGroupAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(GroupsWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(name) || name.Contains('@', StringComparison.Ordinal))
        {
            throw AdminProblemException.BadRequest("A group name must not be empty or contain '@' (role assignments tell users and groups apart by the '@').");
        }

        name = AdminNames.Require("The group name", name, AdminNames.DisplayNameLength);

        var normalized = DirectoryService.NormalizeName(name);
        if (await Db.Groups.AnyAsync(g => g.TenantId == Tenant && g.NormalizedName == normalized, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"A group '{name}' already exists; 'gatehouse group list' shows the groups.");
        }

        var group = await Directory.CreateGroupAsync(Tenant, name, cancellationToken).ConfigureAwait(false);
        return new GroupView(group.Id, group.Name, [], []);
    }

    public async Task<GroupMembershipView> AddGroupMemberAsync(string group, string member, CancellationToken cancellationToken)
    {
        Caller.Require(GroupsWrite, Scope.Tenant);
        var parent = await FindGroupAsync(group, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfGroupAsync(parent, $"add members to {parent.Name}", cancellationToken).ConfigureAwait(false);
        if (member.Contains('@', StringComparison.Ordinal))
        {
            var user = await FindUserAsync(member, cancellationToken).ConfigureAwait(false);
            var had = await Db.GroupMembers.AnyAsync(m => m.GroupId == parent.Id && m.UserId == user.Id, cancellationToken).ConfigureAwait(false);
            await Directory.AddGroupMemberAsync(parent.Id, user.Id, cancellationToken).ConfigureAwait(false);
            return new GroupMembershipView(parent.Name, user.UserPrincipalName, "user", !had);
        }

        var child = await FindGroupAsync(member, cancellationToken).ConfigureAwait(false);
        if (child.Id == parent.Id)
        {
            throw AdminProblemException.BadRequest("A group cannot be a member of itself.");
        }

        var exists = await Db.GroupMembers.AnyAsync(m => m.GroupId == parent.Id && m.MemberGroupId == child.Id, cancellationToken).ConfigureAwait(false);
        if (!exists)
        {
            Db.GroupMembers.Add(new GroupMember { Id = Guid.NewGuid(), GroupId = parent.Id, MemberGroupId = child.Id });
            await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        return new GroupMembershipView(parent.Name, child.Name, "group", !exists);
    }

    public async Task<GroupMembershipView> RemoveGroupMemberAsync(string group, string member, CancellationToken cancellationToken)
    {
        Caller.Require(GroupsWrite, Scope.Tenant);
        var parent = await FindGroupAsync(group, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignRolesOfGroupAsync(parent, $"remove members from {parent.Name}", cancellationToken).ConfigureAwait(false);
        if (member.Contains('@', StringComparison.Ordinal))
        {
            var user = await FindUserAsync(member, cancellationToken).ConfigureAwait(false);
            var removed = await Db.GroupMembers.Where(m => m.GroupId == parent.Id && m.UserId == user.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
            return new GroupMembershipView(parent.Name, user.UserPrincipalName, "user", removed > 0);
        }

        var child = await FindGroupAsync(member, cancellationToken).ConfigureAwait(false);
        var deleted = await Db.GroupMembers.Where(m => m.GroupId == parent.Id && m.MemberGroupId == child.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new GroupMembershipView(parent.Name, child.Name, "group", deleted > 0);
    }

    /// <summary>
    /// Whoever sets a user's password or MFA method can sign in as them and use every role they hold, so a change to
    /// a user who holds role assignments (directly or through any group, nested ones included) also needs the right
    /// to assign each of those roles at its scope, as creating the assignment would. The operator holds every right.
    /// </summary>
    private async Task RequireCanAssignRolesOfUserAsync(User user, string verb, CancellationToken cancellationToken, string why = "whoever sets its password or MFA method can sign in as it")
    {
        if (Caller.IsOperator)
        {
            return;
        }

        var principal = await Access.ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        await RequireCanAssignHeldRolesAsync(verb, user.UserPrincipalName, user.Id, principal.GroupIds, why, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A group's members get the roles assigned to it and to every group that contains it (nested), so changing its
    /// members needs the right to assign each of those roles at its scope, as assigning them directly would.
    /// </summary>
    private async Task RequireCanAssignRolesOfGroupAsync(Group group, string verb, CancellationToken cancellationToken)
    {
        if (Caller.IsOperator)
        {
            return;
        }

        var nesting = await Db.GroupMembers.AsNoTracking().Where(m => m.MemberGroupId != null)
            .Select(m => new { Child = m.MemberGroupId!.Value, Parent = m.GroupId }).ToListAsync(cancellationToken).ConfigureAwait(false);
        var parents = nesting.ToLookup(n => n.Child, n => n.Parent);
        var closure = Principal.Expand(Guid.Empty, [group.Id], g => parents[g]).GroupIds;
        await RequireCanAssignHeldRolesAsync(verb, group.Name, group.Id, closure, "its members hold that role", cancellationToken).ConfigureAwait(false);
    }

    private async Task RequireCanAssignHeldRolesAsync(string verb, string holder, Guid holderId, IReadOnlySet<Guid> groupIds, string why, CancellationToken cancellationToken)
    {
        var ids = groupIds.ToList();
        var assignments = await Db.RoleAssignments.AsNoTracking()
            .Where(a => a.TenantId == Tenant && (a.PrincipalId == holderId || ids.Contains(a.PrincipalId)))
            .OrderBy(a => a.CreatedAt).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (assignments.Count == 0)
        {
            return;
        }

        var rbac = await Access.LoadRbacAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var hostGroups = await HostGroupsOfHostsAsync(cancellationToken).ConfigureAwait(false);
        var names = await PrincipalNamesAsync(cancellationToken).ConfigureAwait(false);
        foreach (var assignment in assignments)
        {
            // An assignment whose role or scope no longer resolves grants nothing (the evaluator skips it), so it protects nothing.
            if (rbac.FindRole(assignment.RoleDefinitionId) is not { } role || !Scope.TryParse(assignment.Scope, out var scope, out _))
            {
                continue;
            }

            var how = assignment.PrincipalId == holderId ? string.Empty : $" (through group '{names.GetValueOrDefault(assignment.PrincipalId, assignment.PrincipalId.ToString())}')";
            Caller.RequireCanAssignRoleOf(verb, holder, role, scope, HostGroupOf(scope, hostGroups), how, why);
        }
    }

    private static UserView ToView(User u) => new(u.Id, u.UserPrincipalName, u.DisplayName, u.Enabled, u.MustChangePassword, MfaState(u), u.CreatedAt);

    private static string MfaState(User user) =>
        user.TotpConfirmedAt is not null ? "totp" : user.TotpSecretProtected is not null ? "totp (not confirmed)" : "none";
}
