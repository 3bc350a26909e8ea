using System.Text.Json;

namespace Gatehouse.Admin.Operations;

// What the admin operations return: the API serialises them, the CLI prints them as tables or JSON, in both modes the
// same records. None carries a secret, except the one-time answers that exist to hand one out (a temporary password,
// an authenticator enrolment).

/// <summary>A user as listed.</summary>
internal sealed record UserView(Guid Id, string UserPrincipalName, string DisplayName, bool Enabled, bool MustChangePassword, string Mfa, DateTimeOffset CreatedAt);

/// <summary>A user with their groups and role assignments.</summary>
internal sealed record UserDetailsView(Guid Id, string UserPrincipalName, string DisplayName, bool Enabled, bool MustChangePassword, string Mfa,
    DateTimeOffset CreatedAt, DateTimeOffset PasswordChangedAt, IReadOnlyList<string> Groups, IReadOnlyList<string> RoleAssignments);

/// <summary>A created user; <see cref="TemporaryPassword"/> is shown once (null when the caller supplied the password).</summary>
internal sealed record CreatedUserView(UserView User, string? TemporaryPassword);

/// <summary>A password reset; <see cref="TemporaryPassword"/> is shown once (null when the caller supplied the password).</summary>
internal sealed record PasswordResetView(string UserPrincipalName, string? TemporaryPassword);

/// <summary>A started authenticator enrolment (confirmed with the app's first code).</summary>
internal sealed record MfaEnrollmentView(string UserPrincipalName, string OtpAuthUri, string SecretBase32);

/// <summary>Whether a confirmation code matched.</summary>
internal sealed record MfaConfirmationView(string UserPrincipalName, bool Confirmed);

/// <summary>A user's passkey (never the key or the credential id's bytes beyond a short prefix).</summary>
internal sealed record PasskeyView(string Name, Guid Aaguid, bool BackupEligible, bool BackedUp, long SignCount, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, string CredentialIdPrefix);

/// <summary>The answer of an operation on a user that returns nothing else.</summary>
internal sealed record UserChangeView(string UserPrincipalName, string Change);

/// <summary>A Temporary Access Pass: <see cref="Pass"/> only in the answer that made it (never stored, never listed).</summary>
internal sealed record TemporaryAccessPassView(string UserPrincipalName, string? Pass, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, bool MultiUse, DateTimeOffset? UsedAt);

/// <summary>A group with its direct members (users by UPN) and nested groups.</summary>
internal sealed record GroupView(Guid Id, string Name, IReadOnlyList<string> Members, IReadOnlyList<string> Groups);

/// <summary>A membership added or removed: <see cref="MemberKind"/> is user or group.</summary>
internal sealed record GroupMembershipView(string Group, string Member, string MemberKind, bool Changed);

/// <summary>A host as listed: account names and whether a password is set, never the password.</summary>
internal sealed record HostView(Guid Id, string Name, IReadOnlyList<string> Aliases, string Backend, string BackendHost, int BackendPort, string BackendSecurity, string? HostGroup,
    string? AdminAccount, bool AdminPasswordSet, string? UserAccount, bool UserPasswordSet, DateTimeOffset CreatedAt)
{
    /// <summary>The host's trusted TLS key (<c>SHA256:</c> and the base64 of the SHA-256 of its SubjectPublicKeyInfo); null until recorded.</summary>
    public string? CertificatePin { get; init; }

    /// <summary>When the key was recorded.</summary>
    public DateTimeOffset? CertificatePinnedAt { get; init; }

    /// <summary>What recorded it: host create, host update, host test, host trust, or connection (the gateway's first connection).</summary>
    public string? CertificatePinnedBy { get; init; }

    /// <summary>Only from create and update: what became of the host's key (trusted on first use, or why not yet).</summary>
    public string? CertificatePinNote { get; init; }

    /// <summary>The host's agent: <c>none</c> (mapped accounts), <c>healthy</c>, <c>agent_unavailable</c> or <c>host_unhealthy</c> (<c>host status</c> explains).</summary>
    public string Agent { get; init; } = "none";
}

/// <summary>
/// <c>host trust</c>: the key the host presents, the one trusted before (null: none), whether it is trusted now (false
/// for a dry run) and whether it differs from the one before.
/// </summary>
internal sealed record HostTrustView(string Host, string Backend, string PresentedKey, string? PreviousKey, bool Trusted, bool Changed, DateTimeOffset? TrustedAt);

/// <summary>A deleted host.</summary>
internal sealed record HostDeletedView(string Name, int RoleAssignmentsDeleted);

/// <summary>A host group with its hosts.</summary>
internal sealed record HostGroupView(Guid Id, string Name, string Scope, IReadOnlyList<string> Hosts);

/// <summary>One step of <c>host test</c>: ok, FAIL (with the fix) or note.</summary>
internal sealed record HostTestStep(string Status, string Step, string Detail, string? Fix);

/// <summary>The result of <c>host test</c>, run where the operation runs (the server, remotely).</summary>
internal sealed record HostTestView(string Host, string Backend, string Security, bool Ok, IReadOnlyList<HostTestStep> Steps, string? FailedStep, string? FailedFix);

/// <summary>What a client needs to reach a host through the gateway: the label, the IdP's public name, the RDP port, the certificate.</summary>
internal sealed record ClientTargetView(string Host, string Label, string PublicName, string PublicHost, int RdpPort, string? CertificateSha256);

/// <summary>A role definition.</summary>
internal sealed record RoleDefinitionView(Guid Id, string Name, bool BuiltIn, string SignIn, string Description, IReadOnlyList<string> Actions,
    IReadOnlyList<string> NotActions, IReadOnlyList<string> DataActions, IReadOnlyList<string>? AssignableRoles);

/// <summary>A custom role as given to <c>role definition create</c> (the shape of an Azure role definition).</summary>
internal sealed record CustomRoleRequest(string? Name, string? Description, List<string>? Actions, List<string>? NotActions, List<string>? DataActions, List<string>? AssignableRoles);

/// <summary>A role assignment.</summary>
internal sealed record RoleAssignmentView(Guid Id, string Role, Guid RoleDefinitionId, string Assignee, string AssigneeKind, Guid PrincipalId, string Scope, DateTimeOffset CreatedAt, string? CreatedBy);

/// <summary>A Conditional Access policy as listed.</summary>
internal sealed record PolicyView(Guid Id, string Name, string State, string Controls, DateTimeOffset CreatedAt, DateTimeOffset ModifiedAt);

/// <summary>What <c>policy what-if</c> decides.</summary>
internal sealed record WhatIfView(string User, string Host, string? ClientAddress, IReadOnlyList<string> Methods, IReadOnlyList<PolicyLine> Policies,
    bool Allowed, string Refusal, string Reason, string? UserMessage, string? Fix, bool MfaRequired, string Verdict, string? BrokenPolicy,
    IReadOnlyList<StrengthLine>? Strengths = null);

/// <summary>
/// An authentication strength a policy requires, for <c>what-if</c> and <c>diagnose</c>: whether the probed sign-in met
/// it, the methods each sign-in path can give and whether they would, and the fix.
/// </summary>
internal sealed record StrengthLine(string Policy, string State, string Strength, string StrengthId, IReadOnlyList<string> AllowedCombinations,
    IReadOnlyList<string> AchievableInGatehouse, bool Satisfied, string? Reason, IReadOnlyList<StrengthPath> Paths, string Fix);

/// <summary>A sign-in path, the methods it gives (as combinations) and whether they meet the strength.</summary>
internal sealed record StrengthPath(string Path, string Methods, bool Meets);

/// <summary>What <c>diagnose</c> finds.</summary>
internal sealed record DiagnosisView(string User, string Host, string? HostGroup, string? ClientAddress, bool AllowedWithPassword, bool AllowedWithMfa, bool MfaEnrolled,
    string? Role, Guid? RoleAssignmentId, string? Scope, string? Account, string PasswordRefusal, string PasswordReason, string? UserMessage,
    string MfaRefusal, string MfaReason, string? Fix, IReadOnlyList<PolicyLine> Policies,
    bool UserEnabled, bool MustChangePassword, string RoleSummary, string AccountSummary, string PasswordVerdict, string MfaVerdict, string? BrokenPolicy,
    IReadOnlyList<StrengthLine>? Strengths = null);

/// <summary>An authentication strength (built-in or custom) as listed and shown.</summary>
internal sealed record StrengthView(string Id, string Name, string PolicyType, string? Description, IReadOnlyList<string> Combinations, IReadOnlyList<string> AchievableInGatehouse, IReadOnlyList<string> UsedByPolicies);

/// <summary>A new custom authentication strength: its name and allowed combinations (<c>fido2</c>, <c>password,softwareOath</c>…).</summary>
internal sealed record CreateStrengthRequest(string? Name, string? Description, IReadOnlyList<string>? Combinations);

/// <summary>A named location.</summary>
internal sealed record LocationView(Guid Id, string Name, bool Trusted, IReadOnlyList<string> Ranges);

/// <summary>
/// A sign-in log row. <see cref="UnknownTenant"/>: the row names no tenant (written before the log attributed every
/// attempt, or while the store had none), so every tenant's readers at <c>/</c> see it.
/// </summary>
internal sealed record SignInView(long Sequence, Guid Id, DateTimeOffset Time, string Result, string? User, string? Host, string? ClientAddress,
    string Protocol, string? Methods, string? Code, string? Role, string? Account, Guid? SessionId, string CorrelationId, string Reason,
    string? UserMessage, string? Fix, string? Policies, bool UnknownTenant = false);

/// <summary>The hash chain check of the sign-in log.</summary>
internal sealed record SignInVerificationView(bool Intact, long Rows, IReadOnlyList<SignInProblemView> Problems);

/// <summary>One finding of the hash chain check (sequence 0: the log as a whole).</summary>
internal sealed record SignInProblemView(long Sequence, string Problem);

/// <summary>A live session.</summary>
internal sealed record SessionView(Guid Id, string User, string Host, string Role, string Account, string ClientAddress, string Protocol, string Node,
    DateTimeOffset StartedAt, DateTimeOffset? KillRequestedAt, long BytesFromClient, long BytesFromBackend);

/// <summary>A kill request.</summary>
internal sealed record SessionKillView(Guid Id, string User, string Host, string Node);

/// <summary>A deleted entry (by name or id).</summary>
internal sealed record DeletedView(string Deleted);

// Requests (the API's bodies; the CLI builds the same ones).

internal sealed record CreateUserRequest(string? UserPrincipalName, string? DisplayName, string? Password, bool TemporaryPassword);

internal sealed record ResetPasswordRequest(string? Password);

internal sealed record MfaConfirmRequest(string? Code);

/// <summary>Body of <c>POST /users/{upn}/temporaryAccessPasses</c>: the lifetime in minutes (10 to 480, default 60) and whether it may be used more than once.</summary>
internal sealed record TemporaryAccessPassRequest(int? LifetimeMinutes, bool MultiUse);

internal sealed record CreateGroupRequest(string? Name);

internal sealed record GroupMemberRequest(string? Member);

internal sealed record CreateHostRequest(string? Name, string? BackendHost, int? BackendPort, string? BackendSecurity, string? HostGroup, IReadOnlyList<string>? Aliases,
    string? AdminAccount, string? AdminPassword, string? UserAccount, string? UserPassword);

/// <summary>A host update: null members stay as they are; <c>hostGroup: ""</c> takes the host out of its group, <c>aliases</c> replaces the set, an account name "" removes that account.</summary>
internal sealed record UpdateHostRequest(string? BackendHost, int? BackendPort, string? BackendSecurity, string? HostGroup, IReadOnlyList<string>? Aliases,
    string? AdminAccount, string? AdminPassword, string? UserAccount, string? UserPassword);

internal sealed record HostTestRequest(int? TimeoutSeconds);

/// <summary>A <c>host trust</c>: the key checked on the host (required unless <see cref="DryRun"/>), or only show the key the host presents.</summary>
internal sealed record HostTrustRequest(string? Fingerprint, bool DryRun, int? TimeoutSeconds);

internal sealed record CreateHostGroupRequest(string? Name);

internal sealed record CreateRoleAssignmentRequest(string? Role, string? Assignee, string? Scope);

internal sealed record PolicyStateRequest(string? State);

internal sealed record WhatIfRequest(string? User, string? Host, string? Ip, bool Mfa, bool Passkey = false);

internal sealed record DiagnoseRequest(string? User, string? Host, string? Ip);

internal sealed record CreateLocationRequest(string? Name, IReadOnlyList<string>? Ranges, bool Trusted);

/// <summary>Filters of <c>signins list</c>.</summary>
internal sealed record SignInQuery(string? User, string? Host, string? Result, string? Since, int Limit);

/// <summary>Sentences and formats shared by the operations and the CLI.</summary>
internal static class AdminText
{
    /// <summary>The text of an <see cref="ArgumentException"/> without .NET's "(Parameter 'x')" suffix.</summary>
    public static string Sentence(ArgumentException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", string.Empty, StringComparison.Ordinal);
        text = text.TrimEnd('.') + ".";
        return char.ToUpperInvariant(text[0]) + text[1..];
    }

    /// <summary>Parses <c>90s</c>, <c>30m</c>, <c>1h</c>, <c>7d</c>, <c>2w</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan span)
    {
        span = default;
        if (string.IsNullOrWhiteSpace(text) || text.Length < 2)
        {
            return false;
        }

        var unit = char.ToLowerInvariant(text[^1]);
        if (!double.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            return false;
        }

        TimeSpan? parsed = unit switch
        {
            's' => TimeSpan.FromSeconds(value),
            'm' => TimeSpan.FromMinutes(value),
            'h' => TimeSpan.FromHours(value),
            'd' => TimeSpan.FromDays(value),
            'w' => TimeSpan.FromDays(7 * value),
            _ => null,
        };
        span = parsed ?? default;
        return parsed is not null;
    }
}

/// <summary>JSON settings shared by the API, the remote client and the CLI's <c>--output json</c>.</summary>
internal static class AdminJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}
