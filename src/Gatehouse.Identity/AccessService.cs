using System.Net;
using System.Text.Json;
using Gatehouse.Access;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>Why a sign-in to a host was refused after the user was authenticated.</summary>
public enum AccessRefusal
{
    /// <summary>Allowed.</summary>
    None,

    /// <summary>The user does not exist (any more) in the directory.</summary>
    UnknownUser,

    /// <summary>The user is disabled.</summary>
    UserDisabled,

    /// <summary>The user must change a temporary password first.</summary>
    PasswordChangeRequired,

    /// <summary>The host does not exist (any more).</summary>
    UnknownHost,

    /// <summary>No role assignment lets the user sign in to the host.</summary>
    NoRole,

    /// <summary>An enforced Conditional Access policy blocks.</summary>
    PolicyBlocked,

    /// <summary>An enforced policy needs a control the sign-in did not do (MFA, phishing-resistant).</summary>
    PolicyControlMissing,

    /// <summary>An enforced sign-in frequency has run out: sign in again.</summary>
    ReauthenticationRequired,

    /// <summary>The role allows sign-in but the host has no account mapped for it.</summary>
    NoMappedAccount,
}

/// <summary>A request to use a host, after the user has been authenticated (by token, NLA or password).</summary>
public sealed record AccessRequest
{
    /// <summary>The user's object id.</summary>
    public required Guid UserId { get; init; }

    /// <summary>The host.</summary>
    public required Guid HostId { get; init; }

    /// <summary>The client's address (for named locations).</summary>
    public IPAddress? ClientAddress { get; init; }

    /// <summary>How the user authenticated (<c>pwd</c>, <c>mfa</c>, <c>otp</c>…).</summary>
    public IReadOnlyList<string> AuthenticationMethods { get; init; } = [];

    /// <summary>When the user authenticated (sign-in frequency).</summary>
    public required DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>The application the sign-in is for.</summary>
    public string Application { get; init; } = RdpApplications.AzureWindowsVmSignIn;
}

/// <summary>The account the gateway logs on to the host with. <see cref="ToString"/> never shows the password.</summary>
public sealed record MappedAccount(string Domain, string UserName, string Password)
{
    /// <summary>The account name as shown in logs.</summary>
    public string DisplayName => string.IsNullOrEmpty(Domain) ? UserName : $"{Domain}\\{UserName}";

    /// <inheritdoc/>
    public override string ToString() => DisplayName;
}

/// <summary>The answer to "may this user use this host, and as which account", with everything the sign-in log needs.</summary>
public sealed record AccessDecision
{
    /// <summary>Why refused, or <see cref="AccessRefusal.None"/>.</summary>
    public required AccessRefusal Refusal { get; init; }

    /// <summary>The precise reason, for the sign-in log.</summary>
    public required string Reason { get; init; }

    /// <summary>What to change so it works (for the log and <c>diagnose</c>); null when allowed.</summary>
    public string? Fix { get; init; }

    /// <summary>What the user sees.</summary>
    public string? UserMessage { get; init; }

    /// <summary>True when the sign-in may go on.</summary>
    public bool Allowed => Refusal == AccessRefusal.None;

    /// <summary>The user, when found.</summary>
    public User? User { get; init; }

    /// <summary>The host, when found.</summary>
    public Host? Host { get; init; }

    /// <summary>The host's group name, if any.</summary>
    public string? HostGroupName { get; init; }

    /// <summary>The role-based answer, when evaluated.</summary>
    public SignInAuthorization? Rbac { get; init; }

    /// <summary>The Conditional Access answer, when evaluated.</summary>
    public AccessEvaluation? Policies { get; init; }

    /// <summary>The account to inject, when allowed (null when <see cref="AgentId"/> is set: the agent gives one per logon).</summary>
    public MappedAccount? Account { get; init; }

    /// <summary>The host's enrolled agent, when it has one: the gateway asks it for a just-in-time account and password.</summary>
    public Guid? AgentId { get; init; }

    /// <summary>The shortest maximum session duration of the policies that applied.</summary>
    public TimeSpan? MaxSessionDuration => Policies?.MaxSessionDuration;

    /// <summary>Each policy's outcome as JSON (for the sign-in log).</summary>
    public string? PoliciesJson => Policies is null
        ? null
        : JsonSerializer.Serialize(Policies.Outcomes.Select(o => new PolicyOutcomeRecord(o.Policy.DisplayName, ResultName(o.Result), o.Reason)).ToList(), PolicyOutcomeJson.Options);

    private static string ResultName(PolicyResult result) => result switch
    {
        PolicyResult.Success => "success",
        PolicyResult.Failure => "failure",
        PolicyResult.NotApplied => "notApplied",
        PolicyResult.ReportOnlySuccess => "reportOnlySuccess",
        PolicyResult.ReportOnlyFailure => "reportOnlyFailure",
        _ => "reportOnlyNotApplied",
    };
}

/// <summary>One policy's outcome as the sign-in log stores it.</summary>
public sealed record PolicyOutcomeRecord(string Policy, string Result, string Reason);

/// <summary>JSON options for policy outcomes.</summary>
internal static class PolicyOutcomeJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);
}

/// <summary>
/// The one authorisation call for every sign-in path (web account at the gateway, NLA, TLS, and again for live
/// sessions): the user must exist and be enabled, a role assignment at the host, its host group or <c>/</c> must
/// allow signing in (Administrator Login wins over User Login), every enforced Conditional Access policy must be
/// satisfied, and the host must have an account mapped for the role. Report-only policies are evaluated and returned,
/// never enforced.
/// </summary>
public sealed class AccessService
{
    private readonly GatehouseDbContext _db;
    private readonly DirectoryService _directory;
    private readonly TimeProvider _time;
    private readonly GatehouseIdentityOptions _options;

    /// <summary>Creates the service.</summary>
    public AccessService(GatehouseDbContext db, DirectoryService directory, TimeProvider time, GatehouseIdentityOptions options)
    {
        _db = db;
        _directory = directory;
        _time = time;
        _options = options;
    }

    /// <summary>Where a user of <paramref name="tenantId"/> registers a passkey (named by the fix of an unmet authentication strength).</summary>
    public string SecurityInfoUrl(Guid tenantId) => $"https://{_options.PublicName}/{tenantId}/mysignins/security-info";

    /// <summary>The id of the agent enrolled on a host, or null when the host has none.</summary>
    public Task<Guid?> AgentOfHostAsync(Guid hostId, CancellationToken cancellationToken = default) =>
        _db.HostAgents.AsNoTracking().Where(a => a.HostId == hostId).Select(a => (Guid?)a.Id).FirstOrDefaultAsync(cancellationToken);

    /// <summary>The custom authentication strengths of a tenant.</summary>
    public async Task<List<AuthenticationStrength>> LoadStrengthsAsync(Guid tenantId, CancellationToken cancellationToken = default)
    {
        var records = await _db.AuthenticationStrengths.AsNoTracking().Where(s => s.TenantId == tenantId).OrderBy(s => s.CreatedAt).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. records.Select(ToStrength)];
    }

    /// <summary>A stored custom strength as the model.</summary>
    public static AuthenticationStrength ToStrength(AuthenticationStrengthRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        List<string>? combinations;
        try
        {
            combinations = JsonSerializer.Deserialize<List<string>>(record.CombinationsJson);
        }
        catch (JsonException)
        {
            combinations = null;
        }

        return new AuthenticationStrength
        {
            Id = record.Id.ToString("D"),
            DisplayName = record.DisplayName,
            Description = record.Description,
            PolicyType = "custom",
            RequirementsSatisfied = "mfa",
            AllowedCombinations = combinations ?? [],
        };
    }

    /// <summary>Decides whether the user may sign in to the host, and as which account.</summary>
    public async Task<AccessDecision> AuthorizeSignInAsync(AccessRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (user, unknownUser) = await FindUserAsync(request, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return unknownUser!;
        }

        if (!user.Enabled)
        {
            return new AccessDecision
            {
                Refusal = AccessRefusal.UserDisabled,
                User = user,
                Reason = $"user_disabled: {user.UserPrincipalName} is disabled",
                UserMessage = "Your account has been disabled. Contact your system administrator.",
                Fix = $"gatehouse user enable {user.UserPrincipalName}",
            };
        }

        if (user.MustChangePassword && request.AuthenticationMethods.Contains("pwd"))
        {
            return new AccessDecision
            {
                Refusal = AccessRefusal.PasswordChangeRequired,
                User = user,
                Reason = $"password_change_required: {user.UserPrincipalName} still has a temporary password",
                UserMessage = "You must change your password before signing in.",
                Fix = "Sign in once on the identity provider's page and set a new password.",
            };
        }

        var (host, hostGroup, unknownHost) = await FindHostAsync(request, user, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return unknownHost!;
        }

        var hostRef = new HostRef(host.Name, hostGroup);
        var principal = await ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        var rbac = await LoadRbacAsync(user.TenantId, cancellationToken).ConfigureAwait(false);
        var authorization = rbac.AuthorizeSignIn(principal, hostRef);
        if (!authorization.Allowed)
        {
            return new AccessDecision
            {
                Refusal = AccessRefusal.NoRole,
                User = user,
                Host = host,
                HostGroupName = hostGroup,
                Rbac = authorization,
                Reason = $"no_role_assignment: {user.UserPrincipalName} on {host.Name}: {authorization.Explanation}",
                UserMessage = RbacEvaluator.NoAccessMessage,
                Fix = $"gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee {user.UserPrincipalName} --scope /hosts/{host.Name}",
            };
        }

        var common = await EvaluatePoliciesAsync(request, user, host, hostRef, principal, cancellationToken).ConfigureAwait(false) with
        {
            HostGroupName = hostGroup,
            Rbac = authorization,
        };
        if (!common.Allowed)
        {
            return common;
        }

        var agentId = await AgentOfHostAsync(host.Id, cancellationToken).ConfigureAwait(false);
        if (agentId is not null)
        {
            // An enrolled host: no stored password is used; the agent gives the user's own account for this logon.
            return common with { Reason = authorization.Explanation, AgentId = agentId };
        }

        var (accountName, secret) = authorization.Level == LoginLevel.Administrator
            ? (host.AdminAccountName, host.AdminSecretProtected)
            : (host.UserAccountName, host.UserSecretProtected);
        if (string.IsNullOrEmpty(accountName) || secret is null)
        {
            var which = authorization.Level == LoginLevel.Administrator ? "admin" : "user";
            return common with
            {
                Refusal = AccessRefusal.NoMappedAccount,
                Reason = $"no_mapped_account: {host.Name} has no {which} account for '{authorization.Role?.Name}'",
                UserMessage = "Your credentials didn't work.",
                Fix = $"Set the host's {which} account: gatehouse host create --name {host.Name} … --{which}-account NAME --{which}-password-stdin",
            };
        }

        var (domain, name) = SplitAccount(accountName);
        return common with
        {
            Reason = authorization.Explanation,
            Account = new MappedAccount(domain, name, _directory.UnprotectHostSecret(secret)),
        };
    }

    /// <summary>
    /// Conditional Access alone, for the identity provider's sign-in pages: the tenant's policies for this user, host,
    /// client address, application and methods, with no role requirement (Entra issues tokens without RBAC; the
    /// gateway checks the role with <see cref="AuthorizeSignInAsync"/>). <see cref="AccessDecision.Policies"/> tells
    /// whether doing MFA would satisfy a refusal (<see cref="AccessEvaluation.SatisfiableWithMfa"/>).
    /// </summary>
    public async Task<AccessDecision> EvaluateConditionalAccessAsync(AccessRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (user, unknownUser) = await FindUserAsync(request, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return unknownUser!;
        }

        var (host, hostGroup, unknownHost) = await FindHostAsync(request, user, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return unknownHost!;
        }

        var principal = await ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        var decision = await EvaluatePoliciesAsync(request, user, host, new HostRef(host.Name, hostGroup), principal, cancellationToken).ConfigureAwait(false);
        return decision with { HostGroupName = hostGroup, Reason = decision.Allowed ? "conditional_access_satisfied" : decision.Reason };
    }

    /// <summary>
    /// Conditional Access for a sign-in to an application that has no host (the admin API, through <c>gatehouse
    /// login</c>): <see cref="AccessRequest.HostId"/> is ignored, <see cref="AccessRequest.Application"/> names the
    /// application, and a policy with a <c>hosts</c> condition applies only when it includes all hosts.
    /// </summary>
    public async Task<AccessDecision> EvaluateApplicationConditionalAccessAsync(AccessRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (user, unknownUser) = await FindUserAsync(request, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return unknownUser!;
        }

        var principal = await ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        var decision = await EvaluatePoliciesAsync(request, user, null, new HostRef(string.Empty, null), principal, cancellationToken).ConfigureAwait(false);
        return decision with { Reason = decision.Allowed ? "conditional_access_satisfied" : decision.Reason };
    }

    /// <summary>
    /// Assigns the role named <paramref name="roleName"/> (built-in or custom) to <paramref name="assignee"/> (a UPN or
    /// a group name) at <paramref name="scope"/>, which must name an existing host or host group. Returns the new
    /// assignment, or the existing one when the same assignment is already there.
    /// </summary>
    public async Task<RoleAssignmentRecord> AssignRoleAsync(Guid tenantId, string roleName, string assignee, string scope, string? createdBy = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(roleName);
        ArgumentNullException.ThrowIfNull(assignee);
        var rbac = await LoadRbacAsync(tenantId, cancellationToken).ConfigureAwait(false);
        var role = BuiltInRoles.All.FirstOrDefault(r => string.Equals(r.Name, roleName, StringComparison.OrdinalIgnoreCase));
        if (role is null)
        {
            var normalized = DirectoryService.NormalizeName(roleName);
            var custom = await _db.RoleDefinitions.AsNoTracking().FirstOrDefaultAsync(r => r.TenantId == tenantId && r.NormalizedName == normalized, cancellationToken).ConfigureAwait(false);
            role = custom is null ? null : rbac.FindRole(custom.Id);
        }

        if (role is null)
        {
            throw new DirectoryException($"There is no role named '{roleName}'. 'gatehouse role definition list' shows the roles.");
        }

        if (!Scope.TryParse(scope, out var parsed, out var scopeError))
        {
            throw new DirectoryException(scopeError);
        }

        if (parsed.Kind == ScopeKind.Host && !await _db.Hosts.AnyAsync(h => h.TenantId == tenantId && h.Name == parsed.Name, cancellationToken).ConfigureAwait(false))
        {
            throw new DirectoryException($"There is no host '{parsed.Name}'. Create it first with 'gatehouse host create'.");
        }

        if (parsed.Kind == ScopeKind.HostGroup && !await _db.HostGroups.AnyAsync(g => g.TenantId == tenantId && g.Name == parsed.Name, cancellationToken).ConfigureAwait(false))
        {
            throw new DirectoryException($"There is no host group '{parsed.Name}'. Create it first with 'gatehouse hostgroup create'.");
        }

        Guid principalId;
        PrincipalKind kind;
        if (assignee.Contains('@', StringComparison.Ordinal))
        {
            var user = await _directory.FindUserByUpnAsync(assignee, cancellationToken).ConfigureAwait(false);
            if (user is null || user.TenantId != tenantId)
            {
                throw new DirectoryException($"There is no user '{assignee}'. 'gatehouse user list' shows the users.");
            }

            (principalId, kind) = (user.Id, PrincipalKind.User);
        }
        else
        {
            var normalized = DirectoryService.NormalizeName(assignee);
            var group = await _db.Groups.AsNoTracking().FirstOrDefaultAsync(g => g.TenantId == tenantId && g.NormalizedName == normalized, cancellationToken).ConfigureAwait(false)
                ?? throw new DirectoryException($"There is no group '{assignee}' (a user is named by their UPN, user@domain).");
            (principalId, kind) = (group.Id, PrincipalKind.Group);
        }

        var scopeText = parsed.ToString();
        var existing = await _db.RoleAssignments.AsNoTracking().FirstOrDefaultAsync(a => a.PrincipalId == principalId && a.RoleDefinitionId == role.Id && a.Scope == scopeText, cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            return existing;
        }

        var record = new RoleAssignmentRecord
        {
            Id = Guid.NewGuid(),
            TenantId = tenantId,
            PrincipalId = principalId,
            PrincipalKind = kind.ToString(),
            RoleDefinitionId = role.Id,
            Scope = scopeText,
            CreatedAt = _time.GetUtcNow(),
            CreatedBy = createdBy,
        };
        _db.RoleAssignments.Add(record);
        await _db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return record;
    }

    /// <summary>The request's user, or the refusal when there is none.</summary>
    private async Task<(User? User, AccessDecision? Refusal)> FindUserAsync(AccessRequest request, CancellationToken cancellationToken)
    {
        var user = await _db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == request.UserId, cancellationToken).ConfigureAwait(false);
        return user is not null
            ? (user, null)
            : (null, new AccessDecision
            {
                Refusal = AccessRefusal.UnknownUser,
                Reason = $"user_not_found: no user with object id {request.UserId} (deleted meanwhile?)",
                UserMessage = "Your credentials didn't work.",
                Fix = "Create the user again or sign in with an existing account.",
            });
    }

    /// <summary>The request's host in the user's tenant with its host group's name, or the refusal when there is none.</summary>
    private async Task<(Host? Host, string? HostGroup, AccessDecision? Refusal)> FindHostAsync(AccessRequest request, User user, CancellationToken cancellationToken)
    {
        var host = await _db.Hosts.AsNoTracking().FirstOrDefaultAsync(h => h.Id == request.HostId && h.TenantId == user.TenantId, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return (null, null, new AccessDecision
            {
                Refusal = AccessRefusal.UnknownHost,
                User = user,
                Reason = $"host_not_found: no host {request.HostId} in the user's tenant",
                UserMessage = "Your credentials didn't work.",
                Fix = "Register the host with 'gatehouse host create' and connect with its name.",
            });
        }

        var hostGroup = host.HostGroupId is { } groupId
            ? await _db.HostGroups.AsNoTracking().Where(g => g.Id == groupId).Select(g => g.Name).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false)
            : null;
        return (host, hostGroup, null);
    }

    /// <summary>
    /// The hosts of the user's tenant that a role assignment lets the user sign in to (the hold screen's host picker), by
    /// name, at most <paramref name="max"/>. Conditional Access is evaluated when one is chosen, not here.
    /// </summary>
    public async Task<IReadOnlyList<Host>> HostsUserMaySignInToAsync(User user, int max, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var principal = await ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);
        var rbac = await LoadRbacAsync(user.TenantId, cancellationToken).ConfigureAwait(false);
        var groups = await _db.HostGroups.AsNoTracking().Where(g => g.TenantId == user.TenantId).ToDictionaryAsync(g => g.Id, g => g.Name, cancellationToken).ConfigureAwait(false);
        var hosts = await _db.Hosts.AsNoTracking().Where(h => h.TenantId == user.TenantId).OrderBy(h => h.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. hosts
            .Where(h => rbac.AuthorizeSignIn(principal, new HostRef(h.Name, h.HostGroupId is { } g && groups.TryGetValue(g, out var name) ? name : null)).Allowed)
            .Take(max)];
    }

    /// <summary>The user with every group they belong to, directly or through nested groups.</summary>
    public async Task<Principal> ExpandPrincipalAsync(User user, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var direct = await _db.GroupMembers.AsNoTracking().Where(m => m.UserId == user.Id).Select(m => m.GroupId).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (direct.Count == 0)
        {
            return new Principal(user.Id, new HashSet<Guid>());
        }

        var nesting = await _db.GroupMembers.AsNoTracking().Where(m => m.MemberGroupId != null)
            .Select(m => new { Child = m.MemberGroupId!.Value, Parent = m.GroupId }).ToListAsync(cancellationToken).ConfigureAwait(false);
        var parents = nesting.ToLookup(n => n.Child, n => n.Parent);
        return Principal.Expand(user.Id, direct, g => parents[g]);
    }

    /// <summary>The role definitions (built-in and custom) and assignments of a tenant.</summary>
    public async Task<RbacEvaluator> LoadRbacAsync(Guid tenantId, CancellationToken cancellationToken = default)
    {
        var custom = await _db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == tenantId).ToListAsync(cancellationToken).ConfigureAwait(false);
        var assignments = await _db.RoleAssignments.AsNoTracking().Where(a => a.TenantId == tenantId).ToListAsync(cancellationToken).ConfigureAwait(false);
        return new RbacEvaluator(custom.Select(ToRole), assignments.Select(ToAssignment).Where(a => a is not null)!);
    }

    /// <summary>The stored policies (parsed) and named locations; a policy that does not parse is reported, never skipped.</summary>
    public async Task<(List<ConditionalAccessPolicy> Policies, List<NamedLocation> Locations, string? Broken)> LoadPoliciesAsync(Guid tenantId, CancellationToken cancellationToken = default)
    {
        var records = await _db.Policies.AsNoTracking().Where(p => p.TenantId == tenantId).OrderBy(p => p.CreatedAt).ToListAsync(cancellationToken).ConfigureAwait(false);
        var policies = new List<ConditionalAccessPolicy>(records.Count);
        string? broken = null;
        List<AuthenticationStrength>? strengths = null;
        foreach (var record in records)
        {
            if (PolicyJson.TryParse(record.Json, out var policy, out var error))
            {
                if (policy.GrantControls?.AuthenticationStrength is { } reference)
                {
                    // A strength referred to by id or name is resolved now (custom ones are the tenant's); an unknown one
                    // makes the policy unreadable, which refuses rather than silently requiring nothing.
                    strengths ??= await LoadStrengthsAsync(tenantId, cancellationToken).ConfigureAwait(false);
                    var resolved = AuthenticationStrengths.Resolve(reference, strengths, out var missing);
                    if (resolved is null)
                    {
                        if (!string.Equals(record.State, "disabled", StringComparison.Ordinal))
                        {
                            broken ??= $"policy '{record.DisplayName}': {missing}";
                        }

                        continue;
                    }

                    policy = policy with { GrantControls = policy.GrantControls with { AuthenticationStrength = resolved } };
                }

                policies.Add(policy with { Id = record.Id });
            }
            else if (!string.Equals(record.State, "disabled", StringComparison.Ordinal))
            {
                broken ??= $"policy '{record.DisplayName}' does not parse: {error}";
            }
        }

        var locationRecords = await _db.NamedLocations.AsNoTracking().Where(l => l.TenantId == tenantId).ToListAsync(cancellationToken).ConfigureAwait(false);
        var locations = locationRecords.Select(l => new NamedLocation
        {
            Id = l.Id,
            DisplayName = l.DisplayName,
            IsTrusted = l.IsTrusted,
            IpRanges = JsonSerializer.Deserialize<List<string>>(l.IpRangesJson) ?? [],
        }).ToList();
        return (policies, locations, broken);
    }

    /// <summary>
    /// The sign-in risk from Gatehouse's own signals: the account is locked out now → high; recent failed attempts (half
    /// the lockout threshold or more, on either counter) → medium; a client network the user has never signed in from
    /// while they have familiar ones → low; otherwise none.
    /// </summary>
    public async Task<SignInRisk> AssessRiskAsync(Guid userId, IPAddress? client, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var lockouts = await _db.LockoutStates.AsNoTracking().Where(l => l.UserId == userId).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (lockouts.Any(l => l.LockedUntil is { } until && until > now))
        {
            return SignInRisk.High;
        }

        if (lockouts.Any(l => l.Failures >= SignInService.LockoutThreshold / 2))
        {
            return SignInRisk.Medium;
        }

        if (client is not null && !IPAddress.IsLoopback(client))
        {
            var network = SignInService.NetworkOf(client);
            var familiar = await _db.FamiliarAddresses.AsNoTracking().Where(f => f.UserId == userId).Select(f => f.Network).ToListAsync(cancellationToken).ConfigureAwait(false);
            if (familiar.Count > 0 && !familiar.Contains(network, StringComparer.Ordinal))
            {
                return SignInRisk.Low;
            }
        }

        return SignInRisk.None;
    }

    /// <summary>Every policy of the user's tenant for this sign-in; a policy that cannot be read refuses (it cannot be enforced).</summary>
    private async Task<AccessDecision> EvaluatePoliciesAsync(AccessRequest request, User user, Host? host, HostRef hostRef, Principal principal, CancellationToken cancellationToken)
    {
        var (policies, locations, broken) = await LoadPoliciesAsync(user.TenantId, cancellationToken).ConfigureAwait(false);
        var groupNames = principal.GroupIds.Count == 0
            ? []
            : await _db.Groups.AsNoTracking().Where(g => principal.GroupIds.Contains(g.Id)).Select(g => g.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
        var context = new SignInContext
        {
            UserId = user.Id,
            UserPrincipalName = user.UserPrincipalName,
            GroupIds = principal.GroupIds,
            GroupNames = new HashSet<string>(groupNames, StringComparer.OrdinalIgnoreCase),
            // An RDP sign-in is a sign-in to both RDP applications (RdpApplications.Both): a policy on either applies.
            Applications = RdpApplications.Both.Contains(request.Application, StringComparer.OrdinalIgnoreCase) ? RdpApplications.Both : [request.Application],
            Host = hostRef,
            ClientAddress = request.ClientAddress,
            AuthenticationMethods = new HashSet<string>(request.AuthenticationMethods, StringComparer.Ordinal),
            AuthenticatedAt = request.AuthenticatedAt,
            Now = _time.GetUtcNow(),
            Risk = await AssessRiskAsync(user.Id, request.ClientAddress, cancellationToken).ConfigureAwait(false),
        };
        var evaluation = ConditionalAccessEvaluator.Evaluate(policies, locations, context);
        var common = new AccessDecision
        {
            Refusal = AccessRefusal.None,
            Reason = string.Empty,
            User = user,
            Host = host,
            Policies = evaluation,
        };
        if (broken is not null)
        {
            return common with
            {
                Refusal = AccessRefusal.PolicyBlocked,
                Reason = $"policy_unreadable: {broken} (refused, because a policy that cannot be read cannot be enforced)",
                UserMessage = AccessEvaluation.BlockedMessage,
                Fix = "Fix or delete the policy with 'gatehouse policy show' / 'gatehouse policy delete'.",
            };
        }

        if (!evaluation.Allowed)
        {
            var refusal = evaluation.Blocked ? AccessRefusal.PolicyBlocked
                : evaluation.MissingControls.Count > 0 ? AccessRefusal.PolicyControlMissing
                : AccessRefusal.ReauthenticationRequired;
            var code = refusal switch
            {
                AccessRefusal.PolicyBlocked => "policy_blocked",
                AccessRefusal.PolicyControlMissing => "policy_control_missing",
                _ => "sign_in_frequency",
            };
            var strength = evaluation.UnmetStrengths.Count > 0 ? evaluation.UnmetStrengths[0] : null;
            var fix = refusal switch
            {
                AccessRefusal.PolicyControlMissing when strength is not null && !evaluation.SatisfiableWithMfa => strength.Requirement.Fix(SecurityInfoUrl(user.TenantId)),
                AccessRefusal.PolicyControlMissing when evaluation.SatisfiableWithMfa => "Sign in again with multi-factor authentication (enroll a one-time-code app if you have none).",
                AccessRefusal.PolicyControlMissing => $"The policy requires {string.Join(", ", evaluation.MissingControls)}, which this sign-in cannot satisfy; an administrator must change the policy or exclude the user.",
                AccessRefusal.ReauthenticationRequired => "Sign in again on the identity provider's page.",
                _ => "An administrator must change the blocking policy or exclude the user ('gatehouse policy what-if' shows which).",
            };
            return common with
            {
                Refusal = refusal,
                Reason = refusal == AccessRefusal.PolicyControlMissing && strength is not null && evaluation.MissingControls.SequenceEqual([ConditionalAccessEvaluator.AuthenticationStrengthControl])
                    ? $"{strength.Detail}. {evaluation.Explanation}"
                    : $"{code}: {evaluation.Explanation}",
                UserMessage = evaluation.UserMessage,
                Fix = fix,
            };
        }

        return common;
    }

    /// <summary><c>DOMAIN\name</c> → (DOMAIN, name); <c>name</c> → ("", name).</summary>
    public static (string Domain, string Name) SplitAccount(string account)
    {
        ArgumentNullException.ThrowIfNull(account);
        var slash = account.IndexOf('\\', StringComparison.Ordinal);
        return slash > 0 ? (account[..slash], account[(slash + 1)..]) : (string.Empty, account);
    }

    private static RoleDefinition ToRole(RoleDefinitionRecord r) => new()
    {
        Id = r.Id,
        Name = r.Name,
        Description = r.Description,
        Actions = JsonSerializer.Deserialize<List<string>>(r.ActionsJson) ?? [],
        NotActions = JsonSerializer.Deserialize<List<string>>(r.NotActionsJson) ?? [],
        DataActions = JsonSerializer.Deserialize<List<string>>(r.DataActionsJson) ?? [],
        AssignableRoleIds = r.AssignableRoleIdsJson is null ? null : JsonSerializer.Deserialize<List<Guid>>(r.AssignableRoleIdsJson),
    };

    private static RoleAssignment? ToAssignment(RoleAssignmentRecord r) =>
        Scope.TryParse(r.Scope, out var scope, out _) && Enum.TryParse<PrincipalKind>(r.PrincipalKind, out var kind)
            ? new RoleAssignment(r.Id, r.PrincipalId, kind, r.RoleDefinitionId, scope)
            : null;
}
