using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using Gatehouse.Admin;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary>
/// The admin operations over a running server's REST API (<c>--server</c>): each call is one request to
/// <c>/admin/v1</c> with the bearer token; answers are the same view records the store mode returns, refusals the
/// API's problem+json sentence (401: how to sign in).
/// </summary>
internal sealed class RemoteAdminClient(HttpClient http, Uri server, Func<CancellationToken, Task<string>> tokenSource) : IAdminClient
{
    private string? token;

    private string ServerKey => CliCredentialStore.Key(server);

    // Users.
    public Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<UserView>>("users", cancellationToken);

    public Task<UserDetailsView> GetUserAsync(string upn, CancellationToken cancellationToken) => GetAsync<UserDetailsView>($"users/{E(upn)}", cancellationToken);

    public Task<CreatedUserView> CreateUserAsync(CreateUserRequest request, CancellationToken cancellationToken) => SendAsync<CreatedUserView>(HttpMethod.Post, "users", request, cancellationToken);

    public Task<UserView> SetUserEnabledAsync(string upn, bool enabled, CancellationToken cancellationToken) =>
        SendAsync<UserView>(HttpMethod.Post, $"users/{E(upn)}/{(enabled ? "enable" : "disable")}", null, cancellationToken);

    public Task<PasswordResetView> ResetPasswordAsync(string upn, string? password, CancellationToken cancellationToken) =>
        SendAsync<PasswordResetView>(HttpMethod.Post, $"users/{E(upn)}/resetPassword", new ResetPasswordRequest(password), cancellationToken);

    public Task<MfaEnrollmentView> BeginMfaEnrollmentAsync(string upn, CancellationToken cancellationToken) =>
        SendAsync<MfaEnrollmentView>(HttpMethod.Post, $"users/{E(upn)}/mfa/enroll", null, cancellationToken);

    public Task<MfaConfirmationView> ConfirmMfaAsync(string upn, string code, CancellationToken cancellationToken) =>
        SendAsync<MfaConfirmationView>(HttpMethod.Post, $"users/{E(upn)}/mfa/confirm", new MfaConfirmRequest(code), cancellationToken);

    public Task<UserChangeView> ResetMfaAsync(string upn, CancellationToken cancellationToken) => SendAsync<UserChangeView>(HttpMethod.Delete, $"users/{E(upn)}/mfa", null, cancellationToken);

    public Task<IReadOnlyList<PasskeyView>> ListPasskeysAsync(string upn, CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<PasskeyView>>($"users/{E(upn)}/passkeys", cancellationToken);

    public Task<UserChangeView> RemovePasskeyAsync(string upn, string name, CancellationToken cancellationToken) =>
        SendAsync<UserChangeView>(HttpMethod.Delete, $"users/{E(upn)}/passkeys/{E(name)}", null, cancellationToken);

    public Task<TemporaryAccessPassView> CreateTemporaryAccessPassAsync(string upn, int lifetimeMinutes, bool multiUse, CancellationToken cancellationToken) =>
        SendAsync<TemporaryAccessPassView>(HttpMethod.Post, $"users/{E(upn)}/temporaryAccessPasses", new TemporaryAccessPassRequest(lifetimeMinutes, multiUse), cancellationToken);

    public Task<IReadOnlyList<TemporaryAccessPassView>> ListTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<TemporaryAccessPassView>>($"users/{E(upn)}/temporaryAccessPasses", cancellationToken);

    public Task<UserChangeView> RemoveTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken) =>
        SendAsync<UserChangeView>(HttpMethod.Delete, $"users/{E(upn)}/temporaryAccessPasses", null, cancellationToken);

    // Groups.
    public Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<GroupView>>("groups", cancellationToken);

    public Task<GroupView> CreateGroupAsync(string name, CancellationToken cancellationToken) => SendAsync<GroupView>(HttpMethod.Post, "groups", new CreateGroupRequest(name), cancellationToken);

    public Task<GroupMembershipView> AddGroupMemberAsync(string group, string member, CancellationToken cancellationToken) =>
        SendAsync<GroupMembershipView>(HttpMethod.Post, $"groups/{E(group)}/members", new GroupMemberRequest(member), cancellationToken);

    public Task<GroupMembershipView> RemoveGroupMemberAsync(string group, string member, CancellationToken cancellationToken) =>
        SendAsync<GroupMembershipView>(HttpMethod.Delete, $"groups/{E(group)}/members/{E(member)}", null, cancellationToken);

    // Hosts and host groups.
    public Task<IReadOnlyList<HostView>> ListHostsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<HostView>>("hosts", cancellationToken);

    public Task<HostView> GetHostAsync(string name, CancellationToken cancellationToken) => GetAsync<HostView>($"hosts/{E(name)}", cancellationToken);

    public Task<HostView> CreateHostAsync(CreateHostRequest request, CancellationToken cancellationToken) => SendAsync<HostView>(HttpMethod.Post, "hosts", request, cancellationToken);

    public Task<HostView> UpdateHostAsync(string name, UpdateHostRequest request, CancellationToken cancellationToken) => SendAsync<HostView>(HttpMethod.Patch, $"hosts/{E(name)}", request, cancellationToken);

    public Task<HostDeletedView> DeleteHostAsync(string name, CancellationToken cancellationToken) => SendAsync<HostDeletedView>(HttpMethod.Delete, $"hosts/{E(name)}", null, cancellationToken);

    public Task<HostTestView> TestHostAsync(string name, int timeoutSeconds, CancellationToken cancellationToken) =>
        SendAsync<HostTestView>(HttpMethod.Post, $"hosts/{E(name)}/test", new HostTestRequest(timeoutSeconds), cancellationToken);

    public Task<HostTrustView> TrustHostAsync(string name, HostTrustRequest request, CancellationToken cancellationToken) =>
        SendAsync<HostTrustView>(HttpMethod.Post, $"hosts/{E(name)}/trust", request, cancellationToken);

    public Task<ClientTargetView> GetClientTargetAsync(string name, CancellationToken cancellationToken) => GetAsync<ClientTargetView>($"hosts/{E(name)}/connection", cancellationToken);

    public Task<HostEnrollmentView> EnrollHostAgentAsync(string name, HostEnrollRequest request, CancellationToken cancellationToken) =>
        SendAsync<HostEnrollmentView>(HttpMethod.Post, $"hosts/{E(name)}/enroll", request, cancellationToken);

    public Task<HostStatusView> GetHostStatusAsync(string name, CancellationToken cancellationToken) => GetAsync<HostStatusView>($"hosts/{E(name)}/status", cancellationToken);

    public Task<IReadOnlyList<HostGroupView>> ListHostGroupsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<HostGroupView>>("hostGroups", cancellationToken);

    public Task<HostGroupView> CreateHostGroupAsync(string name, CancellationToken cancellationToken) =>
        SendAsync<HostGroupView>(HttpMethod.Post, "hostGroups", new CreateHostGroupRequest(name), cancellationToken);

    // Roles.
    public Task<IReadOnlyList<RoleDefinitionView>> ListRoleDefinitionsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<RoleDefinitionView>>("roleDefinitions", cancellationToken);

    public Task<RoleDefinitionView> CreateRoleDefinitionAsync(CustomRoleRequest request, CancellationToken cancellationToken) =>
        SendAsync<RoleDefinitionView>(HttpMethod.Post, "roleDefinitions", request, cancellationToken);

    public Task<DeletedView> DeleteRoleDefinitionAsync(string name, CancellationToken cancellationToken) => SendAsync<DeletedView>(HttpMethod.Delete, $"roleDefinitions/{E(name)}", null, cancellationToken);

    public Task<IReadOnlyList<RoleAssignmentView>> ListRoleAssignmentsAsync(string? assignee, string? scope, CancellationToken cancellationToken) =>
        GetAsync<IReadOnlyList<RoleAssignmentView>>("roleAssignments" + Query(("assignee", assignee), ("scope", scope)), cancellationToken);

    public Task<RoleAssignmentView> CreateRoleAssignmentAsync(CreateRoleAssignmentRequest request, CancellationToken cancellationToken) =>
        SendAsync<RoleAssignmentView>(HttpMethod.Post, "roleAssignments", request, cancellationToken);

    public Task<DeletedView> DeleteRoleAssignmentAsync(Guid id, CancellationToken cancellationToken) => SendAsync<DeletedView>(HttpMethod.Delete, $"roleAssignments/{id}", null, cancellationToken);

    // Conditional Access.
    public Task<IReadOnlyList<PolicyView>> ListPoliciesAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<PolicyView>>("policies", cancellationToken);

    public Task<string> GetPolicyJsonAsync(string name, CancellationToken cancellationToken) => GetAsync<string>($"policies/{E(name)}", cancellationToken);

    public Task<PolicyView> CreatePolicyAsync(string json, CancellationToken cancellationToken) => SendAsync<PolicyView>(HttpMethod.Post, "policies", new RawJson(json), cancellationToken);

    public Task<PolicyView> ReplacePolicyAsync(string name, string json, CancellationToken cancellationToken) => SendAsync<PolicyView>(HttpMethod.Put, $"policies/{E(name)}", new RawJson(json), cancellationToken);

    public Task<PolicyView> SetPolicyStateAsync(string name, string state, CancellationToken cancellationToken) =>
        SendAsync<PolicyView>(HttpMethod.Post, $"policies/{E(name)}/state", new PolicyStateRequest(state), cancellationToken);

    public Task<DeletedView> DeletePolicyAsync(string name, CancellationToken cancellationToken) => SendAsync<DeletedView>(HttpMethod.Delete, $"policies/{E(name)}", null, cancellationToken);

    public Task<WhatIfView> WhatIfAsync(WhatIfRequest request, CancellationToken cancellationToken) => SendAsync<WhatIfView>(HttpMethod.Post, "policies/what-if", request, cancellationToken);

    public Task<DiagnosisView> DiagnoseAsync(DiagnoseRequest request, CancellationToken cancellationToken) => SendAsync<DiagnosisView>(HttpMethod.Post, "diagnose", request, cancellationToken);

    public Task<IReadOnlyList<StrengthView>> ListStrengthsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<StrengthView>>("authenticationStrengths", cancellationToken);

    public Task<StrengthView> GetStrengthAsync(string name, CancellationToken cancellationToken) => GetAsync<StrengthView>($"authenticationStrengths/{E(name)}", cancellationToken);

    public Task<StrengthView> CreateStrengthAsync(CreateStrengthRequest request, CancellationToken cancellationToken) => SendAsync<StrengthView>(HttpMethod.Post, "authenticationStrengths", request, cancellationToken);

    public Task<DeletedView> DeleteStrengthAsync(string name, CancellationToken cancellationToken) => SendAsync<DeletedView>(HttpMethod.Delete, $"authenticationStrengths/{E(name)}", null, cancellationToken);

    public Task<IReadOnlyList<LocationView>> ListLocationsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<LocationView>>("namedLocations", cancellationToken);

    public Task<LocationView> CreateLocationAsync(CreateLocationRequest request, CancellationToken cancellationToken) => SendAsync<LocationView>(HttpMethod.Post, "namedLocations", request, cancellationToken);

    public Task<DeletedView> DeleteLocationAsync(string name, CancellationToken cancellationToken) => SendAsync<DeletedView>(HttpMethod.Delete, $"namedLocations/{E(name)}", null, cancellationToken);

    // The sign-in log and sessions.
    public Task<IReadOnlyList<SignInView>> ListSignInsAsync(SignInQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        return GetAsync<IReadOnlyList<SignInView>>("signIns" + Query(("user", query.User), ("host", query.Host), ("result", query.Result), ("since", query.Since), ("top", query.Limit.ToString(CultureInfo.InvariantCulture))), cancellationToken);
    }

    public Task<SignInView> GetSignInAsync(string idOrSequence, CancellationToken cancellationToken) => GetAsync<SignInView>($"signIns/{E(idOrSequence)}", cancellationToken);

    public Task<SignInVerificationView> VerifySignInsAsync(CancellationToken cancellationToken) => GetAsync<SignInVerificationView>("signIns/verify", cancellationToken);

    public Task<IReadOnlyList<SessionView>> ListSessionsAsync(CancellationToken cancellationToken) => GetAsync<IReadOnlyList<SessionView>>("sessions", cancellationToken);

    public Task<SessionKillView> KillSessionAsync(Guid id, CancellationToken cancellationToken) => SendAsync<SessionKillView>(HttpMethod.Delete, $"sessions/{id}", null, cancellationToken);

    // The audit.
    public Task<AuditView> AuditAsync(AuditRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return GetAsync<AuditView>("audit" + Query(("tenant", request.Tenant)), cancellationToken);
    }

    private Task<T> GetAsync<T>(string path, CancellationToken cancellationToken) => SendAsync<T>(HttpMethod.Get, path, null, cancellationToken);

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        token ??= await tokenSource(cancellationToken).ConfigureAwait(false);
        using var request = new HttpRequestMessage(method, AdminApi.Prefix.TrimStart('/') + "/" + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Content = body switch
        {
            null => null,
            RawJson raw => new StringContent(raw.Text, Encoding.UTF8, "application/json"),
            _ => JsonContent.Create(body, body.GetType(), options: AdminJson.Options),
        };

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (e.InnerException is AuthenticationException)
        {
            throw new CliException($"The TLS connection to {ServerKey} failed ({e.InnerException.Message}); if the server uses its generated certificate, pass it with --ca-cert FILE (data/tls/gatehouse.crt on the server) or set GATEHOUSE_CA_CERT.", e);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"Cannot reach {ServerKey} ({e.Message}); check --server (the address 'gatehouse serve' printed) and that the server is running.", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"{ServerKey} did not answer within {CliHttp.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} seconds; check that the server is running and reachable.", e);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                if (typeof(T) == typeof(string))
                {
                    return (T)(object)text;
                }

                try
                {
                    return JsonSerializer.Deserialize<T>(text, AdminJson.Options) ?? throw new JsonException("empty answer");
                }
                catch (JsonException e)
                {
                    throw new CliException($"{ServerKey} answered {method} {path} with something that is not the expected JSON ({e.Message}); check that --server names a Gatehouse server of the same version.", e);
                }
            }

            var detail = ProblemDetail(text) ?? $"{(int)response.StatusCode} {response.ReasonPhrase}";
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                throw new CliException($"Not signed in / token refused by {ServerKey} ({detail.TrimEnd('.')}): run 'gatehouse login --server {ServerKey}' (or set GATEHOUSE_TOKEN to a valid admin API token).");
            }

            if (response.StatusCode == HttpStatusCode.NotFound && ProblemDetail(text) is null)
            {
                throw new CliException($"{ServerKey} has no admin API at {request.RequestUri?.AbsolutePath}; check that --server names a Gatehouse server of the same version.");
            }

            throw new AdminProblemException((int)response.StatusCode, response.ReasonPhrase ?? "Error", detail);
        }
    }

    private static string? ProblemDetail(string text)
    {
        try
        {
            using var json = JsonDocument.Parse(text);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String
                ? detail.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string E(string segment) => Uri.EscapeDataString(segment.Trim());

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var present = parameters.Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return present.Count == 0 ? string.Empty : "?" + string.Join('&', present);
    }

    /// <summary>A request body that is already JSON text (a policy), sent as it is.</summary>
    private sealed record RawJson(string Text);
}
