using System.Net;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Admin.Operations;

/// <summary>
/// What <c>policy what-if</c> and <c>diagnose</c> ask: the one access call (<see cref="AccessService.AuthorizeSignInAsync"/>)
/// for a password-only sign-in and for one with MFA, plus every policy's outcome (evaluated even when the sign-in is
/// refused before the policies, e.g. for want of a role, so the administrator sees them all).
/// </summary>
internal sealed record AccessProbe(User User, Host Host, string? HostGroup, IPAddress? ClientAddress, IReadOnlyList<string> Methods,
    AccessDecision Decision, AccessDecision WithMfa, AccessEvaluation Policies, string? BrokenPolicy, SignInAuthorization Rbac)
{
    /// <summary>The sign-in paths and the methods (<c>amr</c>) each can give, for explaining authentication strengths.</summary>
    public static IReadOnlyList<(string Path, string[] Amr)> SignInPaths { get; } =
    [
        ("password only: NLA, TLS, the hold screen's password", ["pwd"]),
        ("password and authenticator app: web account sign-in, the device-code page, the hold screen's code prompt", ["pwd", "otp", "mfa"]),
        ("passkey: web account sign-in, the device-code page or the hold screen's QR sign-in on a phone", ["fido", "mfa"]),
    ];

    public static async Task<AccessProbe> RunAsync(GatehouseDbContext db, AccessService access, User user, Host host, string? ip, bool mfa, DateTimeOffset now, CancellationToken cancellationToken, bool passkey = false)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(access);
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(host);
        IPAddress? address = null;
        if (ip is { Length: > 0 } && !IPAddress.TryParse(ip, out address))
        {
            throw AdminProblemException.BadRequest($"--ip '{ip}' is not an IP address; give the client's address, e.g. 203.0.113.7.");
        }

        // What the IdP records: pwd; pwd otp mfa after the authenticator app's code; fido mfa for a passkey.
        IReadOnlyList<string> methods = passkey ? ["fido", "mfa"] : mfa ? ["pwd", "otp", "mfa"] : ["pwd"];
        AccessRequest Request(IReadOnlyList<string> amr) => new()
        {
            UserId = user.Id,
            HostId = host.Id,
            ClientAddress = address,
            AuthenticationMethods = amr,
            AuthenticatedAt = now,
        };
        var decision = await access.AuthorizeSignInAsync(Request(methods), cancellationToken).ConfigureAwait(false);
        var withMfa = mfa && !passkey ? decision : await access.AuthorizeSignInAsync(Request(["pwd", "otp", "mfa"]), cancellationToken).ConfigureAwait(false);

        var hostGroup = host.HostGroupId is { } groupId
            ? await db.HostGroups.AsNoTracking().Where(g => g.Id == groupId).Select(g => g.Name).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false)
            : null;
        var principal = await access.ExpandPrincipalAsync(user, cancellationToken).ConfigureAwait(false);

        // The role check for the report, also when the access call refused before it (e.g. a temporary password).
        var rbac = decision.Rbac ?? (await access.LoadRbacAsync(user.TenantId, cancellationToken).ConfigureAwait(false)).AuthorizeSignIn(principal, new HostRef(host.Name, hostGroup));
        var evaluation = decision.Policies;
        string? broken = null;
        if (evaluation is null)
        {
            // Refused before the policies were looked at: evaluate them the way AccessService does, for the report.
            var (policies, locations, unreadable) = await access.LoadPoliciesAsync(user.TenantId, cancellationToken).ConfigureAwait(false);
            broken = unreadable;
            var groupNames = await db.Groups.AsNoTracking().Where(g => principal.GroupIds.Contains(g.Id)).Select(g => g.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
            evaluation = ConditionalAccessEvaluator.Evaluate(policies, locations, new SignInContext
            {
                UserId = user.Id,
                UserPrincipalName = user.UserPrincipalName,
                GroupIds = principal.GroupIds,
                GroupNames = new HashSet<string>(groupNames, StringComparer.OrdinalIgnoreCase),
                Applications = RdpApplications.Both,
                Host = new HostRef(host.Name, hostGroup),
                ClientAddress = address,
                AuthenticationMethods = new HashSet<string>(methods, StringComparer.Ordinal),
                AuthenticatedAt = now,
                Now = now,
            });
        }

        return new AccessProbe(user, host, hostGroup, address, methods, decision, withMfa, evaluation, broken, rbac);
    }

    /// <summary>True when the sign-in is refused only for want of MFA, and MFA would let it through.</summary>
    public bool MfaWouldHelp => !Decision.Allowed && WithMfa.Allowed;

    public static string ResultName(PolicyResult result) => result switch
    {
        PolicyResult.Success => "success",
        PolicyResult.Failure => "failure",
        PolicyResult.NotApplied => "notApplied",
        PolicyResult.ReportOnlySuccess => "reportOnlySuccess",
        PolicyResult.ReportOnlyFailure => "reportOnlyFailure (not enforced)",
        _ => "reportOnlyNotApplied",
    };

    public static string StateName(PolicyState state) => state switch
    {
        PolicyState.Enabled => "enabled",
        PolicyState.Disabled => "disabled",
        _ => "enabledForReportingButNotEnforced",
    };

    public IReadOnlyList<PolicyLine> PolicyLines =>
        [.. Policies.Outcomes.Select(o => new PolicyLine(o.Policy.DisplayName, StateName(o.Policy.State), ResultName(o.Result), o.Reason))];

    /// <summary>Every authentication strength of a policy that applied: met by the probed sign-in or not, each path's methods, the fix.</summary>
    public IReadOnlyList<StrengthLine> StrengthLines(string securityInfoUrl) =>
        [.. Policies.Outcomes.Where(o => o.Strength is not null).Select(o =>
        {
            var requirement = o.Strength!.Requirement;
            var paths = SignInPaths.Select(p => new StrengthPath(p.Path, AuthenticationStrengths.DescribeMethods(p.Amr), requirement.IsSatisfiedBy(p.Amr))).ToList();
            return new StrengthLine(o.Policy.DisplayName, StateName(o.Policy.State), requirement.Strength.Name, requirement.Strength.Id ?? string.Empty,
                requirement.Strength.AllowedCombinations, AuthenticationStrengths.AchievableIn(requirement.Strength), o.Strength.Satisfied,
                o.Strength.Satisfied ? null : o.Strength.Detail, paths, requirement.Fix(securityInfoUrl));
        })];

    /// <summary>One sentence for a decision: allowed as which account, or refused with the reason.</summary>
    public static string Verdict(AccessDecision decision) => decision.Allowed
        ? $"allowed as {(decision.AgentId is null ? decision.Account?.ToString() : $"their own account on the host ({Gatehouse.Agents.AgentNames.Candidate(decision.User?.UserPrincipalName ?? "?")} or a collision-safe variant, created just in time by the host's agent with a password for one logon)")} ({(decision.Rbac?.Level == LoginLevel.Administrator ? "administrator" : "regular user")}, by '{decision.Rbac?.Role?.Name}' at {decision.Rbac?.GrantedBy?.Scope})"
        : $"refused: {decision.Reason}";
}

/// <summary>One policy's outcome, as printed.</summary>
internal sealed record PolicyLine(string Policy, string State, string Result, string Reason);
