namespace Gatehouse.Admin.Operations;

/// <summary>
/// Every admin operation, as the CLI calls it: <see cref="AdminOperations"/> runs it on the store (with <c>--data</c> or
/// <c>--store</c>, and behind the REST API), <see cref="Gatehouse.Cli.RemoteAdminClient"/> sends it to a running server's
/// <c>/admin/v1</c>. Both return the same view records; refusals are <see cref="AdminProblemException"/>s with the
/// sentence to print.
/// </summary>
internal interface IAdminClient
{
    // Users.
    Task<IReadOnlyList<UserView>> ListUsersAsync(CancellationToken cancellationToken);

    Task<UserDetailsView> GetUserAsync(string upn, CancellationToken cancellationToken);

    Task<CreatedUserView> CreateUserAsync(CreateUserRequest request, CancellationToken cancellationToken);

    Task<UserView> SetUserEnabledAsync(string upn, bool enabled, CancellationToken cancellationToken);

    Task<PasswordResetView> ResetPasswordAsync(string upn, string? password, CancellationToken cancellationToken);

    Task<MfaEnrollmentView> BeginMfaEnrollmentAsync(string upn, CancellationToken cancellationToken);

    Task<MfaConfirmationView> ConfirmMfaAsync(string upn, string code, CancellationToken cancellationToken);

    Task<UserChangeView> ResetMfaAsync(string upn, CancellationToken cancellationToken);

    Task<IReadOnlyList<PasskeyView>> ListPasskeysAsync(string upn, CancellationToken cancellationToken);

    Task<UserChangeView> RemovePasskeyAsync(string upn, string name, CancellationToken cancellationToken);

    Task<TemporaryAccessPassView> CreateTemporaryAccessPassAsync(string upn, int lifetimeMinutes, bool multiUse, CancellationToken cancellationToken);

    Task<IReadOnlyList<TemporaryAccessPassView>> ListTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken);

    Task<UserChangeView> RemoveTemporaryAccessPassesAsync(string upn, CancellationToken cancellationToken);

    // Groups.
    Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken);

    Task<GroupView> CreateGroupAsync(string name, CancellationToken cancellationToken);

    Task<GroupMembershipView> AddGroupMemberAsync(string group, string member, CancellationToken cancellationToken);

    Task<GroupMembershipView> RemoveGroupMemberAsync(string group, string member, CancellationToken cancellationToken);

    // Hosts and host groups.
    Task<IReadOnlyList<HostView>> ListHostsAsync(CancellationToken cancellationToken);

    Task<HostView> GetHostAsync(string name, CancellationToken cancellationToken);

    Task<HostView> CreateHostAsync(CreateHostRequest request, CancellationToken cancellationToken);

    Task<HostView> UpdateHostAsync(string name, UpdateHostRequest request, CancellationToken cancellationToken);

    Task<HostDeletedView> DeleteHostAsync(string name, CancellationToken cancellationToken);

    Task<HostTestView> TestHostAsync(string name, int timeoutSeconds, CancellationToken cancellationToken);

    Task<HostTrustView> TrustHostAsync(string name, HostTrustRequest request, CancellationToken cancellationToken);

    Task<ClientTargetView> GetClientTargetAsync(string name, CancellationToken cancellationToken);

    Task<HostEnrollmentView> EnrollHostAgentAsync(string name, HostEnrollRequest request, CancellationToken cancellationToken);

    Task<HostStatusView> GetHostStatusAsync(string name, CancellationToken cancellationToken);

    Task<IReadOnlyList<HostGroupView>> ListHostGroupsAsync(CancellationToken cancellationToken);

    Task<HostGroupView> CreateHostGroupAsync(string name, CancellationToken cancellationToken);

    // Roles.
    Task<IReadOnlyList<RoleDefinitionView>> ListRoleDefinitionsAsync(CancellationToken cancellationToken);

    Task<RoleDefinitionView> CreateRoleDefinitionAsync(CustomRoleRequest request, CancellationToken cancellationToken);

    Task<DeletedView> DeleteRoleDefinitionAsync(string name, CancellationToken cancellationToken);

    Task<IReadOnlyList<RoleAssignmentView>> ListRoleAssignmentsAsync(string? assignee, string? scope, CancellationToken cancellationToken);

    Task<RoleAssignmentView> CreateRoleAssignmentAsync(CreateRoleAssignmentRequest request, CancellationToken cancellationToken);

    Task<DeletedView> DeleteRoleAssignmentAsync(Guid id, CancellationToken cancellationToken);

    // Conditional Access.
    Task<IReadOnlyList<PolicyView>> ListPoliciesAsync(CancellationToken cancellationToken);

    Task<string> GetPolicyJsonAsync(string name, CancellationToken cancellationToken);

    Task<PolicyView> CreatePolicyAsync(string json, CancellationToken cancellationToken);

    Task<PolicyView> ReplacePolicyAsync(string name, string json, CancellationToken cancellationToken);

    Task<PolicyView> SetPolicyStateAsync(string name, string state, CancellationToken cancellationToken);

    Task<DeletedView> DeletePolicyAsync(string name, CancellationToken cancellationToken);

    Task<WhatIfView> WhatIfAsync(WhatIfRequest request, CancellationToken cancellationToken);

    Task<DiagnosisView> DiagnoseAsync(DiagnoseRequest request, CancellationToken cancellationToken);

    Task<IReadOnlyList<StrengthView>> ListStrengthsAsync(CancellationToken cancellationToken);

    Task<StrengthView> GetStrengthAsync(string name, CancellationToken cancellationToken);

    Task<StrengthView> CreateStrengthAsync(CreateStrengthRequest request, CancellationToken cancellationToken);

    Task<DeletedView> DeleteStrengthAsync(string name, CancellationToken cancellationToken);

    Task<IReadOnlyList<LocationView>> ListLocationsAsync(CancellationToken cancellationToken);

    Task<LocationView> CreateLocationAsync(CreateLocationRequest request, CancellationToken cancellationToken);

    Task<DeletedView> DeleteLocationAsync(string name, CancellationToken cancellationToken);

    // The sign-in log and sessions.
    Task<IReadOnlyList<SignInView>> ListSignInsAsync(SignInQuery query, CancellationToken cancellationToken);

    Task<SignInView> GetSignInAsync(string idOrSequence, CancellationToken cancellationToken);

    Task<SignInVerificationView> VerifySignInsAsync(CancellationToken cancellationToken);

    Task<IReadOnlyList<SessionView>> ListSessionsAsync(CancellationToken cancellationToken);

    Task<SessionKillView> KillSessionAsync(Guid id, CancellationToken cancellationToken);

    // The audit.
    Task<AuditView> AuditAsync(AuditRequest request, CancellationToken cancellationToken);
}
