using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Access;
using Gatehouse.Admin.Operations;
using Gatehouse.Hosting;
using Microsoft.Extensions.Options;

namespace Gatehouse.Admin;

/// <summary>
/// The admin API's routes: each parses its request, calls the one implementation in <see cref="AdminOperations"/> for
/// the signed-in caller, and serialises the view it returns.
/// </summary>
internal static class AdminHandlers
{
    private const string UsersRead = AdminOperations.UsersRead;
    private const string UsersWrite = AdminOperations.UsersWrite;

    /// <summary>What the user operations that hand over a sign-in check beyond users/write.</summary>
    private const string ProtectedUser = "When the user holds role assignments (directly or through any group, nested ones included), the caller must also be allowed to assign each of those roles at its scope (as POST /roleAssignments checks); otherwise 403 names the role and scope that protect the user.";

    /// <summary>What membership changes check beyond groups/write.</summary>
    private const string ProtectedGroup = "When the group, or a group that contains it, holds role assignments, the caller must also be allowed to assign each of those roles at its scope (as POST /roleAssignments checks); otherwise 403 names the role and scope that protect the group.";

    /// <summary>What a host update checks beyond hosts/write.</summary>
    private const string NewBackendNeedsPasswords = "Changing backendHost, backendPort or backendSecurity needs the passwords of every account that stays mapped in the same request (adminPassword, userPassword), since the gateway sends them to the backend; otherwise 400.";

    /// <summary>What a host trust checks.</summary>
    private const string HostTrustNeedsFingerprint = "Without dryRun the fingerprint is required and must be the key the host presents now; otherwise 400 (none given) or 409 (another key), and nothing changes. A host that cannot be reached is 502.";

    public static IReadOnlyList<AdminRoute> Routes { get; } =
    [
        new("GET", "/users", "listUsers", "List the users.", UsersRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListUsersAsync(ct))),
        new("GET", "/users/{upn}", "getUser", "Show a user with their groups and role assignments.", UsersRead,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetUserAsync(upn, ct))),
        new("POST", "/users", "createUser", "Create a user (without a password, a temporary one is generated and returned once). The UPN has at most 113 characters, 64 before the @, of A-Z a-z 0-9 ' . - _ ! # ^ ~; the display name at most 256; neither may hold control, bidirectional or invisible characters.", UsersWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateUserAsync(await BodyAsync<CreateUserRequest>(h, ct), ct)), StatusCodes.Status201Created, "CreateUserRequest"),
        new("POST", "/users/{upn}/disable", "disableUser", "Disable a user (no new sign-ins). For a user who holds role assignments (directly or through groups) the caller must also be allowed to assign those roles.", UsersWrite,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).SetUserEnabledAsync(upn, false, ct))),
        new("POST", "/users/{upn}/enable", "enableUser", "Enable a user. For a user who holds role assignments (directly or through groups) the caller must also be allowed to assign those roles.", UsersWrite,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).SetUserEnabledAsync(upn, true, ct))),
        new("POST", "/users/{upn}/resetPassword", "resetPassword", "Set a new password: the one given (the user keeps it), or a generated temporary one returned once (the user must change it).", UsersWrite,
            async (string upn, HttpContext h, CancellationToken ct) => await Ok(Ops(h).ResetPasswordAsync(upn, (await BodyAsync<ResetPasswordRequest>(h, ct)).Password, ct)), RequestSchema: "ResetPasswordRequest", Note: ProtectedUser),
        new("POST", "/users/{upn}/mfa/enroll", "enrollMfa", "Start an authenticator app enrolment: returns the otpauth:// URI and the secret once; it counts only after confirmMfa.", UsersWrite,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).BeginMfaEnrollmentAsync(upn, ct)), Note: ProtectedUser),
        new("POST", "/users/{upn}/mfa/confirm", "confirmMfa", "Confirm an enrolment with the app's current code (confirmed: false when it does not match).", UsersWrite,
            async (string upn, HttpContext h, CancellationToken ct) => await Ok(Ops(h).ConfirmMfaAsync(upn, (await BodyAsync<MfaConfirmRequest>(h, ct)).Code ?? string.Empty, ct)), RequestSchema: "MfaConfirmRequest", Note: ProtectedUser),
        new("DELETE", "/users/{upn}/mfa", "resetMfa", "Remove the user's authenticator method (they enroll again).", UsersWrite,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).ResetMfaAsync(upn, ct)), Note: ProtectedUser),
        new("GET", "/users/{upn}/passkeys", "listPasskeys", "List the user's passkeys (name, authenticator AAGUID, backup flags, signature counter, created and last used; never key material).", UsersRead,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).ListPasskeysAsync(upn, ct))),
        new("DELETE", "/users/{upn}/passkeys/{name}", "removePasskey", "Remove the user's passkey with this name (it can no longer sign in). 404 when the user has none by that name.", UsersWrite,
            (string upn, string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).RemovePasskeyAsync(upn, name, ct)), Note: ProtectedUser),
        new("POST", "/users/{upn}/temporaryAccessPasses", "createTemporaryAccessPass", "Issue a Temporary Access Pass (10 to 480 minutes, default 60; single use unless multiUse). The answer carries the pass, once; only its hash is stored. It only lets the user open the security-info page to add a passkey.", UsersWrite,
            async (string upn, HttpContext h, CancellationToken ct) =>
            {
                var body = await BodyAsync<TemporaryAccessPassRequest>(h, ct);
                return await Ok(Ops(h).CreateTemporaryAccessPassAsync(upn, body.LifetimeMinutes ?? 60, body.MultiUse, ct));
            }, RequestSchema: "TemporaryAccessPassRequest", Note: ProtectedUser),
        new("GET", "/users/{upn}/temporaryAccessPasses", "listTemporaryAccessPasses", "List the user's Temporary Access Passes (created, expires, single or multi use, used; never the pass).", UsersRead,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).ListTemporaryAccessPassesAsync(upn, ct))),
        new("DELETE", "/users/{upn}/temporaryAccessPasses", "removeTemporaryAccessPasses", "Remove every Temporary Access Pass of the user.", UsersWrite,
            (string upn, HttpContext h, CancellationToken ct) => Ok(Ops(h).RemoveTemporaryAccessPassesAsync(upn, ct))),
        new("GET", "/groups", "listGroups", "List the groups with their members.", AdminOperations.GroupsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListGroupsAsync(ct))),
        new("POST", "/groups", "createGroup", "Create a group of users (a name of at most 256 characters, without @, control, bidirectional or invisible characters).", AdminOperations.GroupsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateGroupAsync((await BodyAsync<CreateGroupRequest>(h, ct)).Name ?? string.Empty, ct)), StatusCodes.Status201Created, "CreateGroupRequest"),
        new("POST", "/groups/{name}/members", "addGroupMember", "Add a user (UPN) or, by name, another group to a group.", AdminOperations.GroupsWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).AddGroupMemberAsync(name, (await BodyAsync<GroupMemberRequest>(h, ct)).Member ?? string.Empty, ct)), RequestSchema: "GroupMemberRequest", Note: ProtectedGroup),
        new("DELETE", "/groups/{name}/members/{member}", "removeGroupMember", "Remove a user (UPN) or a nested group (name) from a group.", AdminOperations.GroupsWrite,
            (string name, string member, HttpContext h, CancellationToken ct) => Ok(Ops(h).RemoveGroupMemberAsync(name, member, ct)), Note: ProtectedGroup),
        new("GET", "/hosts", "listHosts", "List the hosts the caller may read (never secrets).", AccessActions.HostsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListHostsAsync(ct))),
        new("GET", "/hosts/{name}", "getHost", "Show a host (never secrets).", AccessActions.HostsRead,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetHostAsync(name, ct))),
        new("POST", "/hosts", "createHost", "Register a host with its mapped accounts (passwords are stored encrypted and never returned).", AccessActions.HostsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateHostAsync(await BodyAsync<CreateHostRequest>(h, ct), ct)), StatusCodes.Status201Created, "CreateHostRequest"),
        new("PATCH", "/hosts/{name}", "updateHost", "Change a host: backend, backend security, host group (\"\" for none), aliases (the new set), mapped accounts and their passwords; omitted members stay.", AccessActions.HostsWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).UpdateHostAsync(name, await BodyAsync<UpdateHostRequest>(h, ct), ct)), RequestSchema: "UpdateHostRequest", Note: NewBackendNeedsPasswords),
        new("DELETE", "/hosts/{name}", "deleteHost", "Delete a host, its aliases and the role assignments at its scope.", AdminOperations.HostsDelete,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeleteHostAsync(name, ct))),
        new("POST", "/hosts/{name}/test", "testHost", "Connect from the server to the host's backend as the gateway does (TCP, X.224, TLS) and check that the stored passwords decrypt; every step is reported.", AdminOperations.HostsTest,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).TestHostAsync(name, (await BodyAsync<HostTestRequest>(h, ct)).TimeoutSeconds ?? 10, ct)), RequestSchema: "HostTestRequest"),
        new("POST", "/hosts/{name}/trust", "trustHost", "Read the TLS key the host's backend presents (from the server, as the gateway does) and trust it from now on in place of the old one when it is the fingerprint given (SHA256:…, checked on the host); dryRun: true only shows it. The answer names the key presented and the one trusted before.", AccessActions.HostsWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).TrustHostAsync(name, await BodyAsync<HostTrustRequest>(h, ct), ct)), RequestSchema: "HostTrustRequest", Note: HostTrustNeedsFingerprint),
        new("GET", "/hosts/{name}/connection", "getHostConnection", "What a client needs to reach the host through this gateway: the label, the IdP's public name, the RDP port and the certificate's SHA-256.", AccessActions.HostsRead,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetClientTargetAsync(name, ct))),
        new("POST", "/hosts/{name}/enroll", "enrollHostAgent", "Issue a one-time enrolment token for the host's agent (single use, at most one hour, carries the server certificate's SHA-256 for the agent to pin) and the command to run on the host. The token is shown once; only its hash is stored.", AccessActions.HostsWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).EnrollHostAgentAsync(name, await BodyAsync<HostEnrollRequest>(h, ct), ct)), RequestSchema: "HostEnrollRequest"),
        new("GET", "/hosts/{name}/status", "getHostStatus", "The host's agent and its health: last seen, RDP service listening and its key, managed accounts, clock skew, version, last error; each check with a message and a fix.", AccessActions.HostsRead,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetHostStatusAsync(name, ct))),
        new("GET", "/audit", "audit", "Audit the tenant (query: tenant, its id or a domain, to make sure of which one): hosts not enrolled, with stored passwords, whose agent is silent or unhealthy, or whose RDP port listens around the gateway; Administrator Login at /; assignments of disabled users; report-only or disabled policies; no MFA policy. Each finding has an id, a severity (info, low, medium, high, critical), its subject, a message and the command that fixes it; most severe first. Needs read access to hosts, users, role assignments and policies at / (Reader has it).", AccessActions.HostsRead,
            (string? tenant, HttpContext h, CancellationToken ct) => Ok(Ops(h).AuditAsync(new AuditRequest(tenant), ct))),
        new("GET", "/hostGroups", "listHostGroups", "List the host groups and their hosts.", AdminOperations.HostGroupsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListHostGroupsAsync(ct))),
        new("POST", "/hostGroups", "createHostGroup", "Create a host group.", AdminOperations.HostGroupsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateHostGroupAsync((await BodyAsync<CreateHostGroupRequest>(h, ct)).Name ?? string.Empty, ct)), StatusCodes.Status201Created, "CreateHostGroupRequest"),
        new("GET", "/roleDefinitions", "listRoleDefinitions", "List the role definitions (built-in and custom).", AdminOperations.RoleDefinitionsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListRoleDefinitionsAsync(ct))),
        new("POST", "/roleDefinitions", "createRoleDefinition", "Create a custom role.", AccessActions.RoleDefinitionsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateRoleDefinitionAsync(await BodyAsync<CustomRoleRequest>(h, ct), ct)), StatusCodes.Status201Created, "CustomRoleRequest"),
        new("DELETE", "/roleDefinitions/{name}", "deleteRoleDefinition", "Delete a custom role that no assignment uses.", AccessActions.RoleDefinitionsDelete,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeleteRoleDefinitionAsync(name, ct))),
        new("GET", "/roleAssignments", "listRoleAssignments", "List the role assignments the caller may read (query: scope, assignee).", AdminOperations.RoleAssignmentsRead,
            (string? scope, string? assignee, HttpContext h, CancellationToken ct) => Ok(Ops(h).ListRoleAssignmentsAsync(assignee, scope, ct))),
        new("POST", "/roleAssignments", "createRoleAssignment", "Assign a role to a user (UPN) or group at a scope.", AccessActions.RoleAssignmentsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateRoleAssignmentAsync(await BodyAsync<CreateRoleAssignmentRequest>(h, ct), ct)), StatusCodes.Status201Created, "CreateRoleAssignmentRequest"),
        new("DELETE", "/roleAssignments/{id:guid}", "deleteRoleAssignment", "Delete a role assignment.", AccessActions.RoleAssignmentsDelete,
            (Guid id, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeleteRoleAssignmentAsync(id, ct))),
        new("GET", "/policies", "listPolicies", "List the Conditional Access policies.", AdminOperations.PoliciesRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListPoliciesAsync(ct))),
        new("GET", "/policies/{name}", "getPolicy", "Show a policy (its JSON) by id or display name.", AdminOperations.PoliciesRead,
            async (string name, HttpContext h, CancellationToken ct) => Results.Text(await Ops(h).GetPolicyJsonAsync(name, ct), "application/json; charset=utf-8")),
        new("POST", "/policies", "createPolicy", "Create a policy from its Entra-shaped JSON (checked first; unknown members are refused).", AdminOperations.PoliciesWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreatePolicyAsync(await TextBodyAsync(h, ct), ct)), StatusCodes.Status201Created, "Policy"),
        new("PUT", "/policies/{name}", "replacePolicy", "Replace a policy (by id or display name) with new Entra-shaped JSON; its id stays.", AdminOperations.PoliciesWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).ReplacePolicyAsync(name, await TextBodyAsync(h, ct), ct)), RequestSchema: "Policy"),
        new("POST", "/policies/{name}/state", "setPolicyState", "Enable, disable or set a policy to report-only (state: enabled, disabled, enabledForReportingButNotEnforced).", AdminOperations.PoliciesWrite,
            async (string name, HttpContext h, CancellationToken ct) => await Ok(Ops(h).SetPolicyStateAsync(name, (await BodyAsync<PolicyStateRequest>(h, ct)).State ?? string.Empty, ct)), RequestSchema: "PolicyStateRequest"),
        new("DELETE", "/policies/{name}", "deletePolicy", "Delete a policy by id or display name.", AdminOperations.PoliciesDelete,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeletePolicyAsync(name, ct))),
        new("POST", "/policies/what-if", "policyWhatIf", "What the access check decides for a sign-in of a user to a host now.", AdminOperations.PoliciesRead,
            async (HttpContext h, CancellationToken ct) => await Ok(Ops(h).WhatIfAsync(await BodyAsync<WhatIfRequest>(h, ct), ct)), RequestSchema: "WhatIfRequest"),
        new("POST", "/diagnose", "diagnose", "Explain whether a user can sign in to a host now: the role assignment, the account, the policies, what to fix.", AdminOperations.PoliciesRead,
            async (HttpContext h, CancellationToken ct) => await Ok(Ops(h).DiagnoseAsync(await BodyAsync<DiagnoseRequest>(h, ct), ct)), RequestSchema: "DiagnoseRequest"),
        new("GET", "/authenticationStrengths", "listAuthenticationStrengths", "List the authentication strengths: the three built-in ones and the tenant's custom ones.", AdminOperations.PoliciesRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListStrengthsAsync(ct))),
        new("GET", "/authenticationStrengths/{name}", "getAuthenticationStrength", "Show an authentication strength by id or display name, and the policies that use it.", AdminOperations.PoliciesRead,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetStrengthAsync(name, ct))),
        new("POST", "/authenticationStrengths", "createAuthenticationStrength", "Create a custom authentication strength from allowed method combinations (fido2, password,softwareOath…).", AdminOperations.PoliciesWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateStrengthAsync(await BodyAsync<CreateStrengthRequest>(h, ct), ct)), StatusCodes.Status201Created, "CreateStrengthRequest"),
        new("DELETE", "/authenticationStrengths/{name}", "deleteAuthenticationStrength", "Delete a custom authentication strength that no policy uses.", AdminOperations.PoliciesDelete,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeleteStrengthAsync(name, ct))),
        new("GET", "/namedLocations", "listNamedLocations", "List the named locations (IP ranges policies refer to).", AdminOperations.LocationsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListLocationsAsync(ct))),
        new("POST", "/namedLocations", "createNamedLocation", "Create a named location from CIDR ranges.", AdminOperations.LocationsWrite,
            async (HttpContext h, CancellationToken ct) => await Created(Ops(h).CreateLocationAsync(await BodyAsync<CreateLocationRequest>(h, ct), ct)), StatusCodes.Status201Created, "CreateLocationRequest"),
        new("DELETE", "/namedLocations/{name}", "deleteNamedLocation", "Delete a named location by display name or id.", AdminOperations.LocationsDelete,
            (string name, HttpContext h, CancellationToken ct) => Ok(Ops(h).DeleteLocationAsync(name, ct))),
        new("GET", "/signIns", "listSignIns", "List sign-ins, newest first (query: user, host, result=success|failure, since=1h, top): the tenant's, and rows that name no tenant (unknownTenant: true).", AdminOperations.SignInsRead,
            (string? user, string? host, string? result, string? since, int? top, HttpContext h, CancellationToken ct) => Ok(Ops(h).ListSignInsAsync(new SignInQuery(user, host, result, since, top ?? 100), ct))),
        new("GET", "/signIns/verify", "verifySignIns", "Check the sign-in log's hash chain.", AdminOperations.SignInsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).VerifySignInsAsync(ct))),
        new("GET", "/signIns/{id}", "getSignIn", "Show a sign-in by id or sequence number (the tenant's, or one that names no tenant).", AdminOperations.SignInsRead,
            (string id, HttpContext h, CancellationToken ct) => Ok(Ops(h).GetSignInAsync(id, ct))),
        new("GET", "/sessions", "listSessions", "List live RDP sessions.", AdminOperations.SessionsRead,
            (HttpContext h, CancellationToken ct) => Ok(Ops(h).ListSessionsAsync(ct))),
        new("DELETE", "/sessions/{id:guid}", "killSession", "Kill a live session (the node that holds it ends it within seconds).", AdminOperations.SessionsKill,
            (Guid id, HttpContext h, CancellationToken ct) => Ok(Ops(h).KillSessionAsync(id, ct))),
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
            ["ResetPasswordRequest"] = Obj(("password", "string")),
            ["MfaConfirmRequest"] = Obj(("code", "string")),
            ["TemporaryAccessPassRequest"] = Obj(("lifetimeMinutes", "integer"), ("multiUse", "boolean")),
            ["CreateGroupRequest"] = Obj(("name", "string")),
            ["GroupMemberRequest"] = Obj(("member", "string")),
            ["CreateHostRequest"] = Obj(("name", "string"), ("backendHost", "string"), ("backendPort", "integer"), ("backendSecurity", "string"), ("hostGroup", "string"), ("aliases", "string[]"),
                ("adminAccount", "string"), ("adminPassword", "string"), ("userAccount", "string"), ("userPassword", "string")),
            ["UpdateHostRequest"] = Obj(("backendHost", "string"), ("backendPort", "integer"), ("backendSecurity", "string"), ("hostGroup", "string"), ("aliases", "string[]"),
                ("adminAccount", "string"), ("adminPassword", "string"), ("userAccount", "string"), ("userPassword", "string")),
            ["HostTestRequest"] = Obj(("timeoutSeconds", "integer")),
            ["HostEnrollRequest"] = Obj(("lifetimeSeconds", "integer")),
            ["HostTrustRequest"] = Obj(("fingerprint", "string"), ("dryRun", "boolean"), ("timeoutSeconds", "integer")),
            ["CreateHostGroupRequest"] = Obj(("name", "string")),
            ["CustomRoleRequest"] = Obj(("name", "string"), ("description", "string"), ("actions", "string[]"), ("notActions", "string[]"), ("dataActions", "string[]"), ("assignableRoles", "string[]")),
            ["CreateRoleAssignmentRequest"] = Obj(("role", "string"), ("assignee", "string"), ("scope", "string")),
            ["PolicyStateRequest"] = Obj(("state", "string")),
            ["WhatIfRequest"] = Obj(("user", "string"), ("host", "string"), ("ip", "string"), ("mfa", "boolean")),
            ["DiagnoseRequest"] = Obj(("user", "string"), ("host", "string"), ("ip", "string")),
            ["CreateStrengthRequest"] = Obj(("name", "string"), ("description", "string"), ("combinations", "string[]")),
            ["CreateLocationRequest"] = Obj(("name", "string"), ("ranges", "string[]"), ("trusted", "boolean")),
            ["Policy"] = new JsonObject { ["type"] = "object", ["description"] = "A Conditional Access policy: displayName, state, conditions, grantControls, sessionControls (as 'gatehouse policy create --file')." },
        };
    }

    /// <summary>The operations for the request's caller, with the server's own gateway address and certificate.</summary>
    private static AdminOperations Ops(HttpContext http) =>
        OperationsFor(http, AdminCaller.From(http) ?? throw new InvalidOperationException("The admin API middleware did not attach the caller."));

    /// <summary>The operations for <paramref name="caller"/> (the API's bearer, the portal's cookie session), with the server's own gateway address and certificate.</summary>
    internal static AdminOperations OperationsFor(HttpContext http, AdminCaller caller)
    {
        ArgumentNullException.ThrowIfNull(http);
        var services = http.RequestServices;
        return new AdminOperations(caller, services, () =>
        {
            var options = services.GetRequiredService<IOptions<GatehouseOptions>>().Value;
            var certificate = services.GetRequiredService<ServerCertificate>().Certificate;
            // Port 0 in the configuration asks for a free port: clients need the one the listener bound.
            var rdpPort = options.RdpPort != 0 ? options.RdpPort : services.GetRequiredService<Gatehouse.Gateway.RdpListener>().EndPoint.Port;
            return new GatewayInfo(options.PublicName ?? GatehouseHost.PublicHost(http.Request.Host.Value ?? "localhost"), rdpPort,
                Convert.ToHexString(certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256)), options.GatewayAddressList);
        });
    }

    private static async Task<IResult> Ok<T>(Task<T> operation) => Results.Json(await operation.ConfigureAwait(false), AdminJson.Options);

    private static async Task<IResult> Created<T>(Task<T> operation) => Results.Json(await operation.ConfigureAwait(false), AdminJson.Options, statusCode: StatusCodes.Status201Created);

    // Helpers.
    private static readonly JsonSerializerOptions BodyOptions = new(JsonSerializerDefaults.Web);

    /// <summary>Reads a JSON body (at most the host's request size limit), or fails with a problem that says what to send.</summary>
    private static async Task<T> BodyAsync<T>(HttpContext http, CancellationToken ct)
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

    /// <summary>Reads a raw JSON body (a policy), at most <see cref="Gatehouse.Access.PolicyJson.MaxBytes"/> characters.</summary>
    private static async Task<string> TextBodyAsync(HttpContext http, CancellationToken ct)
    {
        using var reader = new StreamReader(http.Request.Body);
        var buffer = new char[PolicyJson.MaxBytes + 1];
        var read = await reader.ReadBlockAsync(buffer, ct).ConfigureAwait(false);
        return read > PolicyJson.MaxBytes
            ? throw AdminProblemException.BadRequest($"The policy is larger than {PolicyJson.MaxBytes} bytes; a policy is a small JSON document.")
            : new string(buffer, 0, read);
    }
}
