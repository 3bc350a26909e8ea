using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Admin;

/// <summary>Request bodies of the admin API.</summary>
internal sealed record CreateUserRequest(string? UserPrincipalName, string? DisplayName, string? Password, bool TemporaryPassword);

internal sealed record CreateHostRequest(string? Name, string? BackendHost, int? BackendPort, string? BackendSecurity, string? HostGroup, IReadOnlyList<string>? Aliases,
    string? AdminAccount, string? AdminPassword, string? UserAccount, string? UserPassword);

internal sealed record CreateHostGroupRequest(string? Name);

internal sealed record CreateRoleAssignmentRequest(string? Role, string? Assignee, string? Scope);

internal sealed record WhatIfRequest(string? User, string? Host, string? Ip, bool Mfa);

/// <summary>Responses (never a secret: account names and whether a password is set, never the password).</summary>
internal sealed record UserView(Guid Id, string UserPrincipalName, string DisplayName, bool Enabled, bool MustChangePassword, bool MfaEnrolled, DateTimeOffset CreatedAt)
{
    public static UserView From(User u) => new(u.Id, u.UserPrincipalName, u.DisplayName, u.Enabled, u.MustChangePassword, u.TotpConfirmedAt is not null, u.CreatedAt);
}

internal sealed record HostView(Guid Id, string Name, IReadOnlyList<string> Aliases, string BackendHost, int BackendPort, string BackendSecurity, string? HostGroup,
    string? AdminAccount, bool AdminPasswordSet, string? UserAccount, bool UserPasswordSet, DateTimeOffset CreatedAt);

internal sealed record RoleAssignmentView(Guid Id, string Role, Guid RoleDefinitionId, string PrincipalKind, Guid PrincipalId, string? Principal, string Scope, DateTimeOffset CreatedAt, string? CreatedBy);

/// <summary>The admin API's operations over the Identity services, each authorised by an RBAC action at the resource's scope.</summary>
internal static class AdminHandlers
{
    private const string UsersRead = "Gatehouse/users/read";
    private const string UsersWrite = "Gatehouse/users/write";
    private const string HostsDelete = "Gatehouse/hosts/delete";
    private const string HostGroupsRead = "Gatehouse/hostGroups/read";
    private const string HostGroupsWrite = "Gatehouse/hostGroups/write";
    private const string RoleDefinitionsRead = "Gatehouse/roleDefinitions/read";
    private const string RoleAssignmentsRead = "Gatehouse/roleAssignments/read";
    private const string PoliciesRead = "Gatehouse/policies/read";
    private const string PoliciesWrite = "Gatehouse/policies/write";
    private const string PoliciesDelete = "Gatehouse/policies/delete";
    private const string SignInsRead = "Gatehouse/signIns/read";
    private const string SessionsRead = "Gatehouse/sessions/read";
    private const string SessionsKill = "Gatehouse/sessions/kill/action";

    public static IReadOnlyList<AdminRoute> Routes { get; } =
    [
        new("GET", "/users", "listUsers", "List the users.", UsersRead, ListUsersAsync),
        new("GET", "/users/{upn}", "getUser", "Show a user.", UsersRead, GetUserAsync),
        new("POST", "/users", "createUser", "Create a user (without a password, a temporary one is generated and returned once).", UsersWrite, CreateUserAsync, StatusCodes.Status201Created, "CreateUserRequest"),
        new("POST", "/users/{upn}/disable", "disableUser", "Disable a user (no new sign-ins).", UsersWrite, DisableUserAsync),
        new("POST", "/users/{upn}/enable", "enableUser", "Enable a user.", UsersWrite, EnableUserAsync),
        new("GET", "/hosts", "listHosts", "List the hosts the caller may read (never secrets).", AccessActions.HostsRead, ListHostsAsync),
        new("GET", "/hosts/{name}", "getHost", "Show a host (never secrets).", AccessActions.HostsRead, GetHostAsync),
        new("POST", "/hosts", "createHost", "Register a host with its mapped accounts (passwords are stored encrypted and never returned).", AccessActions.HostsWrite, CreateHostAsync, StatusCodes.Status201Created, "CreateHostRequest"),
        new("DELETE", "/hosts/{name}", "deleteHost", "Delete a host, its aliases and the role assignments at its scope.", HostsDelete, DeleteHostAsync),
        new("GET", "/hostGroups", "listHostGroups", "List the host groups.", HostGroupsRead, ListHostGroupsAsync),
        new("POST", "/hostGroups", "createHostGroup", "Create a host group.", HostGroupsWrite, CreateHostGroupAsync, StatusCodes.Status201Created, "CreateHostGroupRequest"),
        new("GET", "/roleDefinitions", "listRoleDefinitions", "List the role definitions (built-in and custom).", RoleDefinitionsRead, ListRoleDefinitionsAsync),
        new("GET", "/roleAssignments", "listRoleAssignments", "List the role assignments the caller may read (query: scope, assignee).", RoleAssignmentsRead, ListRoleAssignmentsAsync),
        new("POST", "/roleAssignments", "createRoleAssignment", "Assign a role to a user (UPN) or group at a scope.", AccessActions.RoleAssignmentsWrite, CreateRoleAssignmentAsync, StatusCodes.Status201Created, "CreateRoleAssignmentRequest"),
        new("DELETE", "/roleAssignments/{id:guid}", "deleteRoleAssignment", "Delete a role assignment.", AccessActions.RoleAssignmentsDelete, DeleteRoleAssignmentAsync),
        new("GET", "/policies", "listPolicies", "List the Conditional Access policies.", PoliciesRead, ListPoliciesAsync),
        new("GET", "/policies/{name}", "getPolicy", "Show a policy (its JSON) by id or display name.", PoliciesRead, GetPolicyAsync),
        new("POST", "/policies", "createPolicy", "Create a policy from its Entra-shaped JSON (checked first; unknown members are refused).", PoliciesWrite, CreatePolicyAsync, StatusCodes.Status201Created, "Policy"),
        new("DELETE", "/policies/{name}", "deletePolicy", "Delete a policy by id or display name.", PoliciesDelete, DeletePolicyAsync),
        new("POST", "/policies/what-if", "policyWhatIf", "What the access check decides for a sign-in of a user to a host now.", PoliciesRead, WhatIfAsync, StatusCodes.Status200OK, "WhatIfRequest"),
        new("GET", "/signIns", "listSignIns", "List sign-ins, newest first (query: user, host, result=success|failure, since=1h, top).", SignInsRead, ListSignInsAsync),
        new("GET", "/signIns/verify", "verifySignIns", "Check the sign-in log's hash chain.", SignInsRead, VerifySignInsAsync),
        new("GET", "/signIns/{id:guid}", "getSignIn", "Show a sign-in.", SignInsRead, GetSignInAsync),
        new("GET", "/sessions", "listSessions", "List live RDP sessions.", SessionsRead, ListSessionsAsync),
        new("DELETE", "/sessions/{id:guid}", "killSession", "Kill a live session (the node that holds it ends it within seconds).", SessionsKill, KillSessionAsync),
    ];

    public static JsonObject Schemas()
    {
        static JsonObject Obj(params (string Name, string Type)[] properties)
        {
            var props = new JsonObject();
            foreach (var (name, type) in properties)
            {
                props[name] = type.EndsWith("[]", StringComparison.Ordinal)
                    ? new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = type[..^2] } }
                    : new JsonObject { ["type"] = type };
            }

            return new JsonObject { ["type"] = "object", ["properties"] = props };
        }

        return new JsonObject
        {
            ["CreateUserRequest"] = Obj(("userPrincipalName", "string"), ("displayName", "string"), ("password", "string"), ("temporaryPassword", "boolean")),
            ["CreateHostRequest"] = Obj(("name", "string"), ("backendHost", "string"), ("backendPort", "integer"), ("backendSecurity", "string"), ("hostGroup", "string"), ("aliases", "string[]"),
                ("adminAccount", "string"), ("adminPassword", "string"), ("userAccount", "string"), ("userPassword", "string")),
            ["CreateHostGroupRequest"] = Obj(("name", "string")),
            ["CreateRoleAssignmentRequest"] = Obj(("role", "string"), ("assignee", "string"), ("scope", "string")),
            ["WhatIfRequest"] = Obj(("user", "string"), ("host", "string"), ("ip", "string"), ("mfa", "boolean")),
            ["Policy"] = new JsonObject { ["type"] = "object", ["description"] = "A Conditional Access policy: displayName, state, conditions, grantControls, sessionControls (as 'gatehouse policy create --file')." },
        };
    }

    // Users (tenant scope).
    private static async Task<IResult> ListUsersAsync(AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(UsersRead, Scope.Tenant);
        var users = await db.Users.AsNoTracking().Where(u => u.TenantId == caller.TenantId).OrderBy(u => u.NormalizedUpn).ToListAsync(ct);
        return Results.Ok(users.Select(UserView.From));
    }

    private static async Task<IResult> GetUserAsync(string upn, AdminCaller caller, DirectoryService directory, CancellationToken ct)
    {
        caller.Require(UsersRead, Scope.Tenant);
        return Results.Ok(UserView.From(await FindUserAsync(caller, directory, upn, ct)));
    }

    private static async Task<IResult> CreateUserAsync(HttpContext http, AdminCaller caller, DirectoryService directory, CancellationToken ct)
    {
        var request = await ReadBodyAsync<CreateUserRequest>(http, ct);
        caller.Require(UsersWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(request.UserPrincipalName))
        {
            throw AdminProblemException.BadRequest("Give userPrincipalName (user@domain, a verified domain of the tenant).");
        }

        if (await directory.FindUserByUpnAsync(request.UserPrincipalName, ct) is not null)
        {
            throw AdminProblemException.Conflict($"A user '{request.UserPrincipalName}' already exists; GET {AdminApi.Prefix}/users lists them.");
        }

        try
        {
            var (user, temporary) = await directory.CreateUserAsync(caller.TenantId, request.UserPrincipalName, request.DisplayName ?? request.UserPrincipalName,
                string.IsNullOrEmpty(request.Password) ? null : request.Password, request.TemporaryPassword, ct);
            return Results.Json(new { user = UserView.From(user), temporaryPassword = temporary }, statusCode: StatusCodes.Status201Created);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest(Sentence(e) + " Use user@domain with one of the tenant's verified domains.");
        }
    }

    private static Task<IResult> DisableUserAsync(string upn, AdminCaller caller, DirectoryService directory, CancellationToken ct) => SetEnabledAsync(upn, false, caller, directory, ct);

    private static Task<IResult> EnableUserAsync(string upn, AdminCaller caller, DirectoryService directory, CancellationToken ct) => SetEnabledAsync(upn, true, caller, directory, ct);

    private static async Task<IResult> SetEnabledAsync(string upn, bool enabled, AdminCaller caller, DirectoryService directory, CancellationToken ct)
    {
        caller.Require(UsersWrite, Scope.Tenant);
        var user = await FindUserAsync(caller, directory, upn, ct);
        if (!enabled && user.Id == caller.User.Id)
        {
            throw AdminProblemException.BadRequest("You cannot disable your own account; ask another administrator.");
        }

        await (enabled ? directory.EnableAsync(user, ct) : directory.DisableAsync(user, ct));
        user.Enabled = enabled;
        return Results.Ok(UserView.From(user));
    }

    // Hosts (their own scope, below their host group).
    private static async Task<IResult> ListHostsAsync(AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        var views = await LoadHostsAsync(db, caller.TenantId, null, ct);
        var visible = views.Where(h => caller.Can(AccessActions.HostsRead, Scope.Host(h.Name), h.HostGroup)).ToList();
        if (visible.Count == 0 && views.Count > 0 && !caller.Can(AccessActions.HostsRead, Scope.Tenant))
        {
            // Nothing readable at all: say so rather than pretending the list is empty.
            caller.Require(AccessActions.HostsRead, Scope.Tenant);
        }

        return Results.Ok(visible);
    }

    private static async Task<IResult> GetHostAsync(string name, AdminCaller caller, DirectoryService directory, GatehouseDbContext db, CancellationToken ct)
    {
        var host = await FindHostAsync(caller, directory, name, ct);
        var view = (await LoadHostsAsync(db, caller.TenantId, host.Id, ct)).Single();
        caller.Require(AccessActions.HostsRead, Scope.Host(view.Name), view.HostGroup);
        return Results.Ok(view);
    }

    private static async Task<IResult> CreateHostAsync(HttpContext http, AdminCaller caller, DirectoryService directory, GatehouseDbContext db, CancellationToken ct)
    {
        var request = await ReadBodyAsync<CreateHostRequest>(http, ct);
        HostGroup? group = null;
        if (!string.IsNullOrWhiteSpace(request.HostGroup))
        {
            var normalized = DirectoryService.NormalizeName(request.HostGroup);
            group = await db.HostGroups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == caller.TenantId && g.Name == normalized, ct)
                ?? throw AdminProblemException.BadRequest($"There is no host group '{request.HostGroup}'; create it first (POST {AdminApi.Prefix}/hostGroups).");
        }

        // Creating a host is writing at the scope it will live under: its host group, or the tenant.
        caller.Require(AccessActions.HostsWrite, group is null ? Scope.Tenant : Scope.HostGroup(group.Name));
        if (string.IsNullOrWhiteSpace(request.Name) || string.IsNullOrWhiteSpace(request.BackendHost))
        {
            throw AdminProblemException.BadRequest("Give name (the host's short name, as users type it) and backendHost (the real host's address).");
        }

        var security = request.BackendSecurity?.ToLowerInvariant() switch
        {
            null or "tls" => BackendSecurity.Tls,
            "nla" => BackendSecurity.Nla,
            _ => throw AdminProblemException.BadRequest($"backendSecurity '{request.BackendSecurity}' is not tls or nla."),
        };
        if (string.IsNullOrWhiteSpace(request.AdminAccount) && string.IsNullOrWhiteSpace(request.UserAccount))
        {
            throw AdminProblemException.BadRequest("Give the host at least one mapped account: adminAccount with adminPassword and/or userAccount with userPassword.");
        }

        if ((!string.IsNullOrWhiteSpace(request.AdminAccount) && string.IsNullOrEmpty(request.AdminPassword))
            || (!string.IsNullOrWhiteSpace(request.UserAccount) && string.IsNullOrEmpty(request.UserPassword)))
        {
            throw AdminProblemException.BadRequest("Each mapped account needs its password (adminPassword, userPassword); they are stored encrypted and never returned.");
        }

        var aliases = request.Aliases ?? [];
        foreach (var label in aliases.Prepend(request.Name))
        {
            if (RdpScope.TryValidateLabel(label, out var normalized, out _)
                && (await db.Hosts.AnyAsync(h => h.Name == normalized, ct) || await db.HostAliases.AnyAsync(a => a.Name == normalized, ct)))
            {
                throw AdminProblemException.Conflict($"The name '{normalized}' is already used by a host or alias; delete the old host first to replace it.");
            }
        }

        Host host;
        try
        {
            host = await directory.CreateHostAsync(caller.TenantId, request.Name, request.BackendHost.Trim(), request.BackendPort ?? 3389, security,
                NullIfEmpty(request.AdminAccount), NullIfEmpty(request.AdminAccount) is null ? null : request.AdminPassword,
                NullIfEmpty(request.UserAccount), NullIfEmpty(request.UserAccount) is null ? null : request.UserPassword, aliases, group?.Id, ct);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest($"{Sentence(e)} Use the host's short name (letters, digits and '-') and a backendPort from 1 to 65535.");
        }

        var view = (await LoadHostsAsync(db, caller.TenantId, host.Id, ct)).Single();
        return Results.Json(view, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> DeleteHostAsync(string name, AdminCaller caller, DirectoryService directory, GatehouseDbContext db, CancellationToken ct)
    {
        var host = await FindHostAsync(caller, directory, name, ct);
        var groupName = host.HostGroupId is { } g ? await db.HostGroups.Where(x => x.Id == g).Select(x => x.Name).FirstOrDefaultAsync(ct) : null;
        caller.Require(HostsDelete, Scope.Host(host.Name), groupName);
        var scope = $"/hosts/{host.Name}";
        var assignments = await db.RoleAssignments.Where(a => a.TenantId == caller.TenantId && a.Scope == scope).ExecuteDeleteAsync(ct);
        await db.HostAliases.Where(a => a.HostId == host.Id).ExecuteDeleteAsync(ct);
        await db.Consents.Where(c => c.HostId == host.Id).ExecuteDeleteAsync(ct);
        await db.Hosts.Where(h => h.Id == host.Id).ExecuteDeleteAsync(ct);
        return Results.Ok(new { deleted = host.Name, roleAssignmentsDeleted = assignments });
    }

    // Host groups.
    private static async Task<IResult> ListHostGroupsAsync(AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(HostGroupsRead, Scope.Tenant);
        var groups = await db.HostGroups.AsNoTracking().Where(g => g.TenantId == caller.TenantId).OrderBy(g => g.Name).Select(g => new { g.Id, g.Name }).ToListAsync(ct);
        return Results.Ok(groups);
    }

    private static async Task<IResult> CreateHostGroupAsync(HttpContext http, AdminCaller caller, DirectoryService directory, GatehouseDbContext db, CancellationToken ct)
    {
        var request = await ReadBodyAsync<CreateHostGroupRequest>(http, ct);
        caller.Require(HostGroupsWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(request.Name))
        {
            throw AdminProblemException.BadRequest("Give the host group's name.");
        }

        var normalized = DirectoryService.NormalizeName(request.Name);
        if (await db.HostGroups.AnyAsync(g => g.TenantId == caller.TenantId && g.Name == normalized, ct))
        {
            throw AdminProblemException.Conflict($"A host group '{normalized}' already exists.");
        }

        try
        {
            var group = await directory.CreateHostGroupAsync(caller.TenantId, request.Name, ct);
            return Results.Json(new { group.Id, group.Name }, statusCode: StatusCodes.Status201Created);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest(Sentence(e) + " Use letters, digits and '-'.");
        }
    }

    // Roles.
    private static async Task<IResult> ListRoleDefinitionsAsync(AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(RoleDefinitionsRead, Scope.Tenant);
        var custom = await db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == caller.TenantId).Select(r => r.Id).ToListAsync(ct);
        var roles = BuiltInRoles.All.Concat(custom.Select(id => caller.Rbac.FindRole(id)).OfType<RoleDefinition>());
        return Results.Ok(roles.Select(r => new { r.Id, r.Name, r.Description, r.Actions, r.NotActions, r.DataActions, r.AssignableRoleIds, r.IsBuiltIn }));
    }

    private static async Task<IResult> ListRoleAssignmentsAsync(string? scope, string? assignee, AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        var query = db.RoleAssignments.AsNoTracking().Where(a => a.TenantId == caller.TenantId);
        if (!string.IsNullOrWhiteSpace(scope))
        {
            var parsed = ParseScope(scope);
            var text = parsed.ToString();
            query = query.Where(a => a.Scope == text);
        }

        var records = await query.OrderBy(a => a.CreatedAt).ToListAsync(ct);
        var views = await ToViewsAsync(db, caller, records, ct);
        if (!string.IsNullOrWhiteSpace(assignee))
        {
            views = [.. views.Where(v => string.Equals(v.Principal, assignee.Trim(), StringComparison.OrdinalIgnoreCase))];
        }

        var hostGroups = await HostGroupsOfHostsAsync(db, caller.TenantId, ct);
        var readable = views.Where(v => Scope.TryParse(v.Scope, out var s, out _) && caller.Can(RoleAssignmentsRead, s, HostGroupOf(s, hostGroups))).ToList();
        if (readable.Count == 0 && views.Count > 0)
        {
            caller.Require(RoleAssignmentsRead, Scope.Tenant);
        }

        return Results.Ok(readable);
    }

    private static async Task<IResult> CreateRoleAssignmentAsync(HttpContext http, AdminCaller caller, AccessService access, GatehouseDbContext db, CancellationToken ct)
    {
        var request = await ReadBodyAsync<CreateRoleAssignmentRequest>(http, ct);
        if (string.IsNullOrWhiteSpace(request.Role) || string.IsNullOrWhiteSpace(request.Assignee) || string.IsNullOrWhiteSpace(request.Scope))
        {
            throw AdminProblemException.BadRequest("Give role (e.g. \"Virtual Machine User Login\"), assignee (a UPN or a group name) and scope (/, /hostGroups/NAME or /hosts/NAME).");
        }

        var scope = ParseScope(request.Scope);
        var role = await FindRoleAsync(caller, db, request.Role, ct);
        var hostGroup = HostGroupOf(scope, await HostGroupsOfHostsAsync(db, caller.TenantId, ct));
        var check = caller.Rbac.CheckCanAssign(caller.Principal, role, scope, hostGroup);
        if (!check.Allowed)
        {
            throw new AdminProblemException(StatusCodes.Status403Forbidden, "Forbidden", $"{caller.User.UserPrincipalName} may not do this: {check.Explanation}");
        }

        var record = await access.AssignRoleAsync(caller.TenantId, role.Name, request.Assignee, scope.ToString(), caller.User.UserPrincipalName, ct);
        return Results.Json((await ToViewsAsync(db, caller, [record], ct)).Single(), statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> DeleteRoleAssignmentAsync(Guid id, AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        var record = await db.RoleAssignments.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id && a.TenantId == caller.TenantId, ct)
            ?? throw AdminProblemException.NotFound($"There is no role assignment {id}; GET {AdminApi.Prefix}/roleAssignments lists them.");
        var scope = ParseScope(record.Scope);
        var hostGroup = HostGroupOf(scope, await HostGroupsOfHostsAsync(db, caller.TenantId, ct));
        caller.Require(AccessActions.RoleAssignmentsDelete, scope, hostGroup);

        // A restricted assigner (Data Access Administrator) may remove only the roles it may assign.
        if (caller.Rbac.FindRole(record.RoleDefinitionId) is { } role)
        {
            var check = caller.Rbac.CheckCanAssign(caller.Principal, role, scope, hostGroup);
            if (!check.Allowed)
            {
                throw new AdminProblemException(StatusCodes.Status403Forbidden, "Forbidden", $"{caller.User.UserPrincipalName} may not remove this assignment: {check.Explanation}");
            }
        }

        await db.RoleAssignments.Where(a => a.Id == id).ExecuteDeleteAsync(ct);
        return Results.Ok(new { deleted = id });
    }

    // Policies (tenant scope).
    private static async Task<IResult> ListPoliciesAsync(AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(PoliciesRead, Scope.Tenant);
        var records = await db.Policies.AsNoTracking().Where(p => p.TenantId == caller.TenantId).OrderBy(p => p.CreatedAt).ToListAsync(ct);
        return Results.Ok(records.Select(r => new { r.Id, r.DisplayName, r.State, r.CreatedAt, r.ModifiedAt }));
    }

    private static async Task<IResult> GetPolicyAsync(string name, AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(PoliciesRead, Scope.Tenant);
        var record = await FindPolicyAsync(caller, db, name, ct);
        return Results.Text(record.Json, "application/json; charset=utf-8");
    }

    private static async Task<IResult> CreatePolicyAsync(HttpContext http, AdminCaller caller, GatehouseDbContext db, TimeProvider time, CancellationToken ct)
    {
        caller.Require(PoliciesWrite, Scope.Tenant);
        using var reader = new StreamReader(http.Request.Body);
        var json = await reader.ReadToEndAsync(ct);
        if (json.Length > PolicyJson.MaxBytes)
        {
            throw AdminProblemException.BadRequest($"The policy is larger than {PolicyJson.MaxBytes} bytes; a policy is a small JSON document.");
        }

        if (!PolicyJson.TryParse(json, out var policy, out var error))
        {
            throw AdminProblemException.BadRequest($"{error} Fix the policy JSON and send it again.");
        }

        var normalized = DirectoryService.NormalizeName(policy.DisplayName);
        if (await db.Policies.AnyAsync(p => p.TenantId == caller.TenantId && p.NormalizedName == normalized, ct))
        {
            throw AdminProblemException.Conflict($"A policy named '{policy.DisplayName}' already exists; delete it first or choose another displayName.");
        }

        var now = time.GetUtcNow();
        var record = new PolicyRecord
        {
            Id = Guid.NewGuid(),
            TenantId = caller.TenantId,
            DisplayName = policy.DisplayName.Trim(),
            NormalizedName = normalized,
            State = Gatehouse.Cli.AccessProbe.StateName(policy.State),
            CreatedAt = now,
            ModifiedAt = now,
        };
        record.Json = PolicyJson.Serialize(policy with { Id = record.Id });
        db.Policies.Add(record);
        await db.SaveChangesAsync(ct);
        return Results.Json(new { record.Id, record.DisplayName, record.State }, statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> DeletePolicyAsync(string name, AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(PoliciesDelete, Scope.Tenant);
        var record = await FindPolicyAsync(caller, db, name, ct);
        await db.Policies.Where(p => p.Id == record.Id).ExecuteDeleteAsync(ct);
        return Results.Ok(new { deleted = record.Id, record.DisplayName });
    }

    private static async Task<IResult> WhatIfAsync(HttpContext http, AdminCaller caller, DirectoryService directory, AccessService access, TimeProvider time, CancellationToken ct)
    {
        var request = await ReadBodyAsync<WhatIfRequest>(http, ct);
        caller.Require(PoliciesRead, Scope.Tenant);
        var user = await FindUserAsync(caller, directory, request.User ?? string.Empty, ct);
        var host = await FindHostAsync(caller, directory, request.Host ?? string.Empty, ct);
        IPAddress? address = null;
        if (!string.IsNullOrWhiteSpace(request.Ip) && !IPAddress.TryParse(request.Ip, out address))
        {
            throw AdminProblemException.BadRequest($"ip '{request.Ip}' is not an IP address.");
        }

        var decision = await access.AuthorizeSignInAsync(new AccessRequest
        {
            UserId = user.Id,
            HostId = host.Id,
            ClientAddress = address,
            AuthenticationMethods = request.Mfa ? ["pwd", "mfa"] : ["pwd"],
            AuthenticatedAt = time.GetUtcNow(),
        }, ct);
        return Results.Ok(new
        {
            allowed = decision.Allowed,
            refusal = decision.Refusal.ToString(),
            reason = decision.Reason,
            fix = decision.Fix,
            userMessage = decision.UserMessage,
            account = decision.Account?.DisplayName,
            role = decision.Rbac?.Role?.Name,
            policies = decision.PoliciesJson is null ? null : JsonNode.Parse(decision.PoliciesJson),
        });
    }

    // Sign-ins and sessions (tenant scope).
    private static async Task<IResult> ListSignInsAsync(string? user, string? host, string? result, string? since, int? top, AdminCaller caller, GatehouseDbContext db, TimeProvider time, CancellationToken ct)
    {
        caller.Require(SignInsRead, Scope.Tenant);
        var query = db.SignIns.AsNoTracking().Where(s => s.TenantId == caller.TenantId);
        if (!string.IsNullOrWhiteSpace(user))
        {
            var upn = user.Trim();
            query = query.Where(s => s.UserPrincipalName == upn);
        }

        if (!string.IsNullOrWhiteSpace(host))
        {
            var name = DirectoryService.NormalizeName(host);
            query = query.Where(s => s.HostName == name);
        }

        if (!string.IsNullOrWhiteSpace(result))
        {
            var value = result.Trim().ToLowerInvariant();
            if (value is not ("success" or "failure"))
            {
                throw AdminProblemException.BadRequest($"result '{result}' is not success or failure.");
            }

            query = query.Where(s => s.Result == value);
        }

        if (!string.IsNullOrWhiteSpace(since))
        {
            if (!Gatehouse.Cli.CliRunner.TryParseDuration(since, out var span))
            {
                throw AdminProblemException.BadRequest($"since '{since}' is not a duration; use a number and a unit: 90s, 30m, 1h, 7d or 2w.");
            }

            var cutoff = time.GetUtcNow() - span;
            query = query.Where(s => s.Time >= cutoff);
        }

        var rows = await query.OrderByDescending(s => s.Sequence).Take(Math.Clamp(top ?? 100, 1, 1000)).ToListAsync(ct);
        return Results.Ok(rows);
    }

    private static async Task<IResult> GetSignInAsync(Guid id, AdminCaller caller, GatehouseDbContext db, CancellationToken ct)
    {
        caller.Require(SignInsRead, Scope.Tenant);
        var row = await db.SignIns.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.TenantId == caller.TenantId, ct)
            ?? throw AdminProblemException.NotFound($"There is no sign-in {id}; GET {AdminApi.Prefix}/signIns lists them.");
        return Results.Ok(row);
    }

    private static async Task<IResult> VerifySignInsAsync(AdminCaller caller, SignInLogService log, CancellationToken ct)
    {
        caller.Require(SignInsRead, Scope.Tenant);
        var verification = await log.VerifyAsync(ct);
        return Results.Ok(new { intact = verification.Intact, rows = verification.Rows, problems = verification.Problems });
    }

    private static async Task<IResult> ListSessionsAsync(AdminCaller caller, SessionStore sessions, CancellationToken ct)
    {
        caller.Require(SessionsRead, Scope.Tenant);
        var live = await sessions.ListLiveAsync(ct);
        return Results.Ok(live.Where(s => s.TenantId == caller.TenantId).Select(s => new { s.Id, s.UserPrincipalName, s.HostName, s.Role, s.Account, s.ClientAddress, s.Protocol, s.Node, s.StartedAt, s.KillRequestedAt }));
    }

    private static async Task<IResult> KillSessionAsync(Guid id, AdminCaller caller, GatehouseDbContext db, SessionStore sessions, CancellationToken ct)
    {
        var session = await db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.TenantId == caller.TenantId && s.EndedAt == null, ct)
            ?? throw AdminProblemException.NotFound($"There is no live session {id}; GET {AdminApi.Prefix}/sessions lists them.");
        var hostGroup = await db.Hosts.Where(h => h.Id == session.HostId).Join(db.HostGroups, h => h.HostGroupId, g => g.Id, (h, g) => g.Name).FirstOrDefaultAsync(ct);
        caller.Require(SessionsKill, Scope.Host(session.HostName), hostGroup);
        await sessions.RequestKillAsync(id, ct);
        return Results.Ok(new { killRequested = id });
    }

    // Helpers.
    private static readonly JsonSerializerOptions BodyOptions = new(JsonSerializerDefaults.Web);

    /// <summary>Reads a JSON body (at most the host's request size limit), or fails with a problem that says what to send.</summary>
    private static async Task<T> ReadBodyAsync<T>(HttpContext http, CancellationToken ct)
        where T : class
    {
        if (!http.Request.HasJsonContentType())
        {
            throw AdminProblemException.BadRequest($"Send the request body as JSON (Content-Type: application/json), as the OpenAPI document at {AdminApi.Prefix}/openapi.json describes.");
        }

        try
        {
            return await JsonSerializer.DeserializeAsync<T>(http.Request.Body, BodyOptions, ct)
                ?? throw AdminProblemException.BadRequest("The request body is empty; send a JSON object.");
        }
        catch (JsonException e)
        {
            throw AdminProblemException.BadRequest($"The request body is not valid JSON for this operation ({e.Message}); fix it and send it again.");
        }
    }

    private static async Task<User> FindUserAsync(AdminCaller caller, DirectoryService directory, string upn, CancellationToken ct)
    {
        var user = await directory.FindUserByUpnAsync(upn, ct);
        return user is not null && user.TenantId == caller.TenantId
            ? user
            : throw AdminProblemException.NotFound($"There is no user '{upn}'; GET {AdminApi.Prefix}/users lists the users.");
    }

    private static async Task<Host> FindHostAsync(AdminCaller caller, DirectoryService directory, string name, CancellationToken ct) =>
        await directory.FindHostByLabelAsync(caller.TenantId, name, ct)
        ?? throw AdminProblemException.NotFound($"There is no host '{name}'; GET {AdminApi.Prefix}/hosts lists the hosts.");

    private static async Task<PolicyRecord> FindPolicyAsync(AdminCaller caller, GatehouseDbContext db, string name, CancellationToken ct)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var record = Guid.TryParse(name, out var id)
            ? await db.Policies.AsNoTracking().FirstOrDefaultAsync(p => p.Id == id && p.TenantId == caller.TenantId, ct)
            : await db.Policies.AsNoTracking().FirstOrDefaultAsync(p => p.NormalizedName == normalized && p.TenantId == caller.TenantId, ct);
        return record ?? throw AdminProblemException.NotFound($"There is no policy '{name}'; GET {AdminApi.Prefix}/policies lists them.");
    }

    private static async Task<RoleDefinition> FindRoleAsync(AdminCaller caller, GatehouseDbContext db, string name, CancellationToken ct)
    {
        var builtIn = BuiltInRoles.All.FirstOrDefault(r => string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
        if (builtIn is not null)
        {
            return builtIn;
        }

        var custom = await db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == caller.TenantId).Select(r => r.Id).ToListAsync(ct);
        return custom.Select(caller.Rbac.FindRole).OfType<RoleDefinition>().FirstOrDefault(r => string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw AdminProblemException.BadRequest($"There is no role named '{name}'; GET {AdminApi.Prefix}/roleDefinitions lists the roles.");
    }

    private static Scope ParseScope(string text) =>
        Scope.TryParse(text, out var scope, out var error) ? scope : throw AdminProblemException.BadRequest(error);

    private static async Task<Dictionary<string, string>> HostGroupsOfHostsAsync(GatehouseDbContext db, Guid tenantId, CancellationToken ct) =>
        await db.Hosts.AsNoTracking().Where(h => h.TenantId == tenantId && h.HostGroupId != null)
            .Join(db.HostGroups, h => h.HostGroupId, g => g.Id, (h, g) => new { h.Name, Group = g.Name })
            .ToDictionaryAsync(x => x.Name, x => x.Group, ct);

    private static string? HostGroupOf(Scope scope, Dictionary<string, string> hostGroups) =>
        scope.Kind == ScopeKind.Host && scope.Name is { } name ? hostGroups.GetValueOrDefault(name) : null;

    private static async Task<List<RoleAssignmentView>> ToViewsAsync(GatehouseDbContext db, AdminCaller caller, IReadOnlyList<RoleAssignmentRecord> records, CancellationToken ct)
    {
        var users = await db.Users.AsNoTracking().Where(u => u.TenantId == caller.TenantId).Select(u => new { u.Id, u.UserPrincipalName }).ToListAsync(ct);
        var groups = await db.Groups.AsNoTracking().Where(g => g.TenantId == caller.TenantId).Select(g => new { g.Id, g.Name }).ToListAsync(ct);
        var names = users.ToDictionary(u => u.Id, u => u.UserPrincipalName);
        foreach (var group in groups)
        {
            names[group.Id] = group.Name;
        }

        return [.. records.Select(r => new RoleAssignmentView(r.Id, caller.Rbac.FindRole(r.RoleDefinitionId)?.Name ?? r.RoleDefinitionId.ToString(), r.RoleDefinitionId,
            r.PrincipalKind, r.PrincipalId, names.GetValueOrDefault(r.PrincipalId), r.Scope, r.CreatedAt, r.CreatedBy))];
    }

    private static async Task<List<HostView>> LoadHostsAsync(GatehouseDbContext db, Guid tenantId, Guid? only, CancellationToken ct)
    {
        var query = db.Hosts.AsNoTracking().Include(h => h.Aliases).Where(h => h.TenantId == tenantId);
        if (only is { } id)
        {
            query = query.Where(h => h.Id == id);
        }

        var hosts = await query.OrderBy(h => h.Name).ToListAsync(ct);
        var groups = await db.HostGroups.AsNoTracking().Where(g => g.TenantId == tenantId).ToDictionaryAsync(g => g.Id, g => g.Name, ct);
        return [.. hosts.Select(h => new HostView(h.Id, h.Name, [.. h.Aliases.Select(a => a.Name).Order(StringComparer.Ordinal)], h.BackendHost, h.BackendPort,
            h.BackendSecurity.ToString().ToLowerInvariant(), h.HostGroupId is { } g ? groups.GetValueOrDefault(g) : null,
            h.AdminAccountName, h.AdminSecretProtected is not null, h.UserAccountName, h.UserSecretProtected is not null, h.CreatedAt))];
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string Sentence(ArgumentException e) => Gatehouse.Cli.CliRunner.Sentence(e);
}
