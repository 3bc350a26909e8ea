using System.Net;

namespace Gatehouse.Access;

/// <summary>The sign-in risk Gatehouse derives from its own signals (lockouts, unfamiliar addresses).</summary>
public enum SignInRisk
{
    /// <summary>No risk signal.</summary>
    None,

    /// <summary>Low.</summary>
    Low,

    /// <summary>Medium.</summary>
    Medium,

    /// <summary>High.</summary>
    High,
}

/// <summary>The well-known application ids of RDP sign-in (the resources a policy targets).</summary>
public static class RdpApplications
{
    /// <summary>Azure Windows VM Sign-In.</summary>
    public const string AzureWindowsVmSignIn = "372140e0-b3b7-4226-8ef9-d57986796201";

    /// <summary>Microsoft Remote Desktop.</summary>
    public const string MicrosoftRemoteDesktop = "a4a365df-50f1-4397-bc59-1a1564b8bb9c";

    /// <summary>Both: a Gatehouse RDP sign-in is a sign-in to each (a policy on either applies).</summary>
    public static IReadOnlyList<string> Both { get; } = [AzureWindowsVmSignIn, MicrosoftRemoteDesktop];
}

/// <summary>Gatehouse's own applications, as Conditional Access policies name them in <c>includeApplications</c>.</summary>
public static class GatehouseApplications
{
    /// <summary>
    /// The Gatehouse admin API (resource <c>api://gatehouse-admin</c>): the application of a <c>gatehouse login</c>
    /// sign-in. Such a sign-in has no host: a policy with a <c>hosts</c> condition applies to it only when it includes
    /// <c>All</c> hosts.
    /// </summary>
    public const string AdminApi = "b3905e55-83d6-47f4-82f5-62c85931eddb";
}

/// <summary>Everything the policies can look at for one sign-in.</summary>
public sealed record SignInContext
{
    /// <summary>The user's object id.</summary>
    public required Guid UserId { get; init; }

    /// <summary>The user's UPN.</summary>
    public required string UserPrincipalName { get; init; }

    /// <summary>Every group the user is in, by id (transitively).</summary>
    public IReadOnlySet<Guid> GroupIds { get; init; } = new HashSet<Guid>();

    /// <summary>The same groups by name.</summary>
    public IReadOnlySet<string> GroupNames { get; init; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The applications signed in to.</summary>
    public IReadOnlyList<string> Applications { get; init; } = RdpApplications.Both;

    /// <summary>The host; a name of "" for a sign-in to an application without one (<see cref="GatehouseApplications.AdminApi"/>).</summary>
    public required HostRef Host { get; init; }

    /// <summary>The client's address, when known.</summary>
    public IPAddress? ClientAddress { get; init; }

    /// <summary>Authentication methods done (<c>amr</c>: pwd, mfa, otp…).</summary>
    public IReadOnlySet<string> AuthenticationMethods { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>Sign-in risk.</summary>
    public SignInRisk Risk { get; init; }

    /// <summary>When the user last proved their identity.</summary>
    public required DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>Now.</summary>
    public required DateTimeOffset Now { get; init; }
}

/// <summary>What a policy did to a sign-in (the sign-in log's column).</summary>
public enum PolicyResult
{
    /// <summary>Conditions did not match (or the policy is disabled).</summary>
    NotApplied,

    /// <summary>Applied and satisfied.</summary>
    Success,

    /// <summary>Applied and not satisfied: enforced.</summary>
    Failure,

    /// <summary>Report-only, conditions did not match.</summary>
    ReportOnlyNotApplied,

    /// <summary>Report-only, would have been satisfied.</summary>
    ReportOnlySuccess,

    /// <summary>Report-only, would have failed (logged, not enforced).</summary>
    ReportOnlyFailure,
}

/// <summary>One policy's outcome with the reason in words, and the authentication strength it requires (when it does).</summary>
public sealed record PolicyOutcome(ConditionalAccessPolicy Policy, PolicyResult Result, string Reason, IReadOnlyList<string> UnsatisfiedControls, StrengthOutcome? Strength = null);

/// <summary>
/// A policy's authentication strength against one sign-in: the requirement, whether the sign-in's methods met it, and
/// the precise reason for the log when not (<c>Phishing-resistant MFA (policy 'X') needs fido2; the sign-in used …</c>).
/// </summary>
public sealed record StrengthOutcome(StrengthRequirement Requirement, bool Satisfied, string Detail);

/// <summary>The verdict of every policy on one sign-in.</summary>
public sealed record AccessEvaluation
{
    /// <summary>The seed's message when a policy's method requirement is not met.</summary>
    public const string MethodNotAllowedMessage = "The sign-in method you're trying to use isn't allowed. Try a different sign-in method or contact your system administrator.";

    /// <summary>The message when a policy blocks.</summary>
    public const string BlockedMessage = "Access has been blocked by Conditional Access policies. Contact your system administrator.";

    /// <summary>The message when a sign-in is too old for a sign-in-frequency policy.</summary>
    public const string ReauthenticateMessage = "Your sign-in has expired for this remote desktop. Sign in again.";

    /// <summary>Every policy's outcome, in policy order.</summary>
    public required IReadOnlyList<PolicyOutcome> Outcomes { get; init; }

    /// <summary>True when an enforced policy blocks.</summary>
    public bool Blocked { get; init; }

    /// <summary>True when an enforced sign-in frequency has run out.</summary>
    public bool ReauthenticationRequired { get; init; }

    /// <summary>Controls enforced policies still need (mfa, phishingResistantMfa…).</summary>
    public IReadOnlyList<string> MissingControls { get; init; } = [];

    /// <summary>True when doing MFA would satisfy every enforced policy (the IdP then asks for the one-time code).</summary>
    public bool SatisfiableWithMfa { get; init; }

    /// <summary>True when a passkey (<c>fido</c>, <c>mfa</c>) would satisfy every enforced policy.</summary>
    public bool SatisfiableWithPasskey { get; init; }

    /// <summary>The authentication strengths of enforced policies that the sign-in's methods did not meet.</summary>
    public IReadOnlyList<StrengthOutcome> UnmetStrengths { get; init; } = [];

    /// <summary>
    /// The sign-in pages' question for authentication strengths: after the methods in <paramref name="amr"/> (the
    /// transaction's <c>amr</c>, the methods this evaluation saw), is every enforced strength met, and if not, which step
    /// next: <see cref="StrengthStep.AskAppCode"/> when the one-time code after the password would do,
    /// <see cref="StrengthStep.NeedsPasskey"/> when only a passkey would (the passkey step offers one; until then the
    /// sign-in is refused), <see cref="StrengthStep.Unachievable"/> when nothing Gatehouse offers would.
    /// </summary>
    public StrengthStep NextStrengthStep(IEnumerable<string> amr)
    {
        ArgumentNullException.ThrowIfNull(amr);
        if (UnmetStrengths.Count == 0)
        {
            return StrengthStep.Satisfied;
        }

        var done = amr.ToList();
        if (SatisfiableWithMfa && done.Contains(AuthenticationStrengths.AmrPassword, StringComparer.Ordinal) && !done.Contains(AuthenticationStrengths.AmrOtp, StringComparer.Ordinal))
        {
            return StrengthStep.AskAppCode;
        }

        return SatisfiableWithPasskey ? StrengthStep.NeedsPasskey : StrengthStep.Unachievable;
    }

    /// <summary>Every authentication strength of a policy that applied (enforced or report-only), met or not.</summary>
    public IEnumerable<StrengthOutcome> Strengths => Outcomes.Where(o => o.Strength is not null).Select(o => o.Strength!);

    /// <summary>The shortest maximum session duration of the enforced policies that applied.</summary>
    public TimeSpan? MaxSessionDuration { get; init; }

    /// <summary>True when the sign-in may go on.</summary>
    public bool Allowed => !Blocked && !ReauthenticationRequired && MissingControls.Count == 0;

    /// <summary>What the user sees when refused; null when allowed.</summary>
    public string? UserMessage => Blocked ? BlockedMessage : MissingControls.Count > 0 ? MethodNotAllowedMessage : ReauthenticationRequired ? ReauthenticateMessage : null;

    /// <summary>The enforced policies that refused, with reasons, for the sign-in log and <c>diagnose</c>.</summary>
    public string Explanation => string.Join(" ", Outcomes.Where(o => o.Result == PolicyResult.Failure).Select(o => $"Policy '{o.Policy.DisplayName}': {o.Reason}"));
}

/// <summary>
/// Evaluates Conditional Access policies the way Entra does: a policy applies when all its conditions match
/// (exclusions win over inclusions), its grant controls combine with AND or OR, report-only policies are evaluated
/// and reported but never enforced, and disabled ones are skipped.
/// </summary>
public static class ConditionalAccessEvaluator
{
    /// <summary>Evaluates <paramref name="policies"/> for <paramref name="context"/>.</summary>
    public static AccessEvaluation Evaluate(IEnumerable<ConditionalAccessPolicy> policies, IReadOnlyList<NamedLocation> locations, SignInContext context)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(locations);
        ArgumentNullException.ThrowIfNull(context);
        var list = policies.ToList();
        var result = EvaluateOnce(list, locations, context);
        if (!result.Allowed && !result.Blocked && !context.AuthenticationMethods.Contains("mfa"))
        {
            // The one-time code after the password: amr pwd, otp, mfa.
            var withMfa = EvaluateOnce(list, locations, context with { AuthenticationMethods = new HashSet<string>(context.AuthenticationMethods) { "mfa", "otp" } });
            result = result with { SatisfiableWithMfa = withMfa.Allowed };
        }

        if (!result.Allowed && !result.Blocked && !context.AuthenticationMethods.Contains(AuthenticationStrengths.AmrFido))
        {
            var withPasskey = EvaluateOnce(list, locations, context with { AuthenticationMethods = new HashSet<string>(context.AuthenticationMethods) { AuthenticationStrengths.AmrFido, "mfa" } });
            result = result with { SatisfiableWithPasskey = withPasskey.Allowed };
        }

        return result;
    }

    private static AccessEvaluation EvaluateOnce(List<ConditionalAccessPolicy> policies, IReadOnlyList<NamedLocation> locations, SignInContext context)
    {
        var outcomes = new List<PolicyOutcome>(policies.Count);
        var blocked = false;
        var reauth = false;
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        TimeSpan? maxSession = null;
        var unmetStrengths = new List<StrengthOutcome>();
        foreach (var policy in policies)
        {
            var reportOnly = policy.State == PolicyState.ReportOnly;
            if (policy.State == PolicyState.Disabled)
            {
                outcomes.Add(new PolicyOutcome(policy, PolicyResult.NotApplied, "The policy is disabled.", []));
                continue;
            }

            var mismatch = ConditionMismatch(policy.Conditions, locations, context);
            if (mismatch is not null)
            {
                outcomes.Add(new PolicyOutcome(policy, reportOnly ? PolicyResult.ReportOnlyNotApplied : PolicyResult.NotApplied, mismatch, []));
                continue;
            }

            var strength = EvaluateStrength(policy, context);
            var (grantOk, unsatisfied, grantReason, isBlock) = EvaluateGrant(policy.GrantControls, strength, context);
            var (sessionOk, sessionReason) = EvaluateFrequency(policy.SessionControls, context);
            var ok = grantOk && sessionOk;
            var reason = ok
                ? "Conditions matched and the controls are satisfied."
                : string.Join(" ", new[] { grantOk ? null : grantReason, sessionOk ? null : sessionReason }.Where(r => r is not null));
            outcomes.Add(new PolicyOutcome(policy, reportOnly ? (ok ? PolicyResult.ReportOnlySuccess : PolicyResult.ReportOnlyFailure) : (ok ? PolicyResult.Success : PolicyResult.Failure), reason, unsatisfied, strength));
            if (reportOnly)
            {
                continue;
            }

            if (!grantOk && strength is { Satisfied: false })
            {
                unmetStrengths.Add(strength);
            }

            blocked |= isBlock;
            reauth |= !sessionOk;
            if (!grantOk && !isBlock)
            {
                missing.UnionWith(unsatisfied);
            }

            if (policy.SessionControls?.MaxSessionMinutes is > 0 and var minutes)
            {
                var span = TimeSpan.FromMinutes(minutes);
                maxSession = maxSession is { } current && current < span ? current : span;
            }
        }

        return new AccessEvaluation
        {
            Outcomes = outcomes,
            Blocked = blocked,
            ReauthenticationRequired = reauth,
            MissingControls = [.. missing],
            MaxSessionDuration = maxSession,
            UnmetStrengths = unmetStrengths,
        };
    }

    /// <summary>The policy's authentication strength against the sign-in's methods; null when it requires none.</summary>
    private static StrengthOutcome? EvaluateStrength(ConditionalAccessPolicy policy, SignInContext context)
    {
        if (policy.GrantControls?.AuthenticationStrength is not { } reference)
        {
            return null;
        }

        // Stored policies arrive resolved (AccessService fills custom strengths in); a bare built-in reference is resolved here.
        var strength = AuthenticationStrengths.Resolve(reference, [], out _) ?? reference;
        var requirement = new StrengthRequirement(strength, policy.DisplayName);
        var satisfied = requirement.IsSatisfiedBy(context.AuthenticationMethods);
        return new StrengthOutcome(requirement, satisfied, satisfied ? string.Empty : "authentication_strength_unmet: " + requirement.Describe(context.AuthenticationMethods));
    }

    /// <summary>Null when every condition matches; otherwise why the policy does not apply.</summary>
    private static string? ConditionMismatch(PolicyConditions conditions, IReadOnlyList<NamedLocation> locations, SignInContext context)
    {
        var users = conditions.Users;
        if (users.ExcludeUsers.Any(u => MatchesUser(u, context)))
        {
            return $"{context.UserPrincipalName} is excluded from the policy.";
        }

        if (users.ExcludeGroups.FirstOrDefault(g => MatchesGroup(g, context)) is { } excludedGroup)
        {
            return $"{context.UserPrincipalName} is excluded through group {excludedGroup}.";
        }

        var included = users.IncludeUsers.Any(u => IsAll(u) || MatchesUser(u, context)) || users.IncludeGroups.Any(g => MatchesGroup(g, context));
        if (!included)
        {
            return $"{context.UserPrincipalName} is not among the policy's users.";
        }

        var apps = conditions.Applications;
        if (apps.ExcludeApplications.Any(a => context.Applications.Contains(a, StringComparer.OrdinalIgnoreCase)))
        {
            return "The application is excluded from the policy.";
        }

        if (!apps.IncludeApplications.Any(a => IsAll(a) || context.Applications.Contains(a, StringComparer.OrdinalIgnoreCase)))
        {
            return "The policy targets other applications.";
        }

        if (conditions.Hosts is { } hostCondition && context.Host.Name.Length == 0)
        {
            // A sign-in to an application without a host (the admin API): only an "All hosts" policy covers it.
            if (!hostCondition.IncludeHosts.Any(IsAll))
            {
                return "The policy targets hosts; this sign-in is not to a host.";
            }
        }
        else if (conditions.Hosts is { } hosts)
        {
            var name = context.Host.Name;
            var group = context.Host.HostGroup;
            if (hosts.ExcludeHosts.Contains(name, StringComparer.OrdinalIgnoreCase) || (group is not null && hosts.ExcludeHostGroups.Contains(group, StringComparer.OrdinalIgnoreCase)))
            {
                return $"Host {name} is excluded from the policy.";
            }

            if (!hosts.IncludeHosts.Any(h => IsAll(h) || string.Equals(h, name, StringComparison.OrdinalIgnoreCase))
                && !(group is not null && hosts.IncludeHostGroups.Contains(group, StringComparer.OrdinalIgnoreCase)))
            {
                return $"The policy targets other hosts than {name}.";
            }
        }

        if (conditions.Locations is { } where)
        {
            var matching = context.ClientAddress is { } address ? locations.Where(l => l.Contains(address)).ToList() : [];
            if (where.ExcludeLocations.Any(l => MatchesLocation(l, matching)))
            {
                return $"The client address {context.ClientAddress} is in an excluded location.";
            }

            if (!where.IncludeLocations.Any(l => IsAll(l) || MatchesLocation(l, matching)))
            {
                return $"The client address {context.ClientAddress?.ToString() ?? "(unknown)"} is not in the policy's locations.";
            }
        }

        if (conditions.SignInRiskLevels.Count > 0 && !conditions.SignInRiskLevels.Contains(context.Risk.ToString(), StringComparer.OrdinalIgnoreCase))
        {
            return $"The sign-in risk ({context.Risk.ToString().ToLowerInvariant()}) is not one the policy targets.";
        }

        return null;
    }

    private static (bool Ok, IReadOnlyList<string> Unsatisfied, string Reason, bool IsBlock) EvaluateGrant(GrantControls? grant, StrengthOutcome? strength, SignInContext context)
    {
        if (grant is null || (grant.BuiltInControls.Count == 0 && strength is null))
        {
            return (true, [], string.Empty, false);
        }

        if (grant.BuiltInControls.Contains("block", StringComparer.OrdinalIgnoreCase))
        {
            return (false, ["block"], "It blocks access.", true);
        }

        var results = grant.BuiltInControls.Select(c => (Control: c, Reason: Unsatisfied(c, context))).ToList();
        if (strength is not null)
        {
            results.Add((AuthenticationStrengthControl, strength.Satisfied ? null : $"It requires the authentication strength {strength.Requirement.Describe(context.AuthenticationMethods)}."));
        }

        var failing = results.Where(r => r.Reason is not null).ToList();
        var and = string.Equals(grant.Operator, "AND", StringComparison.OrdinalIgnoreCase);
        var ok = and ? failing.Count == 0 : failing.Count < results.Count;
        return ok
            ? (true, [], string.Empty, false)
            : (false, [.. failing.Select(f => f.Control)], string.Join(" ", failing.Select(f => f.Reason)) + (and || results.Count == 1 ? string.Empty : " (any one of them would do)."), false);
    }

    private static string? Unsatisfied(string control, SignInContext context) => control.ToUpperInvariant() switch
    {
        "MFA" => context.AuthenticationMethods.Contains("mfa")
            ? null
            : "It requires multi-factor authentication, and this sign-in used a password only. Enroll the user in an authenticator app (gatehouse user mfa enroll) and sign in with web account sign-in, which asks for the code.",
        "PHISHINGRESISTANTMFA" => $"It requires {DescribeControl(control)}, which Gatehouse cannot do yet, so no sign-in can satisfy it; require 'mfa' instead or exclude these users.",
        _ => $"It requires '{control}', which Gatehouse does not support, so no sign-in can satisfy it; remove the control from the policy.",
    };

    /// <summary>The name of the authentication-strength control in <see cref="AccessEvaluation.MissingControls"/>.</summary>
    public const string AuthenticationStrengthControl = "authenticationStrength";

    /// <summary>A grant control in words a user understands (<c>phishingResistantMfa</c> → "phishing-resistant authentication (passkeys or certificates)").</summary>
    public static string DescribeControl(string control)
    {
        ArgumentNullException.ThrowIfNull(control);
        return control.ToUpperInvariant() switch
        {
            "MFA" => "multi-factor authentication",
            "PHISHINGRESISTANTMFA" => "phishing-resistant authentication (passkeys or certificates)",
            "BLOCK" => "no access at all",
            "AUTHENTICATIONSTRENGTH" => "a stronger sign-in method (the policy's authentication strength)",
            _ => $"'{control}'",
        };
    }

    private static (bool Ok, string? Reason) EvaluateFrequency(SessionControls? session, SignInContext context)
    {
        if (session?.SignInFrequency is not { IsEnabled: true, Value: > 0 } frequency)
        {
            return (true, null);
        }

        var age = context.Now - context.AuthenticatedAt;
        return age <= frequency.Span
            ? (true, null)
            : (false, $"Its sign-in frequency is {frequency.Value} {frequency.Type}, and the user last signed in {FormatAge(age)} ago; sign in again.");
    }

    private static string FormatAge(TimeSpan age) => age.TotalDays >= 1 ? $"{age.TotalDays:0.#} days" : $"{age.TotalHours:0.#} hours";

    private static bool IsAll(string value) => string.Equals(value, "All", StringComparison.OrdinalIgnoreCase);

    private static bool MatchesUser(string value, SignInContext context) =>
        string.Equals(value, context.UserPrincipalName, StringComparison.OrdinalIgnoreCase)
        || (Guid.TryParse(value, out var id) && id == context.UserId);

    private static bool MatchesGroup(string value, SignInContext context) =>
        (Guid.TryParse(value, out var id) && context.GroupIds.Contains(id)) || context.GroupNames.Contains(value);

    private static bool MatchesLocation(string value, List<NamedLocation> matching) =>
        string.Equals(value, "AllTrusted", StringComparison.OrdinalIgnoreCase)
            ? matching.Any(l => l.IsTrusted)
            : matching.Any(l => string.Equals(l.DisplayName, value, StringComparison.OrdinalIgnoreCase) || (Guid.TryParse(value, out var id) && l.Id == id));
}
