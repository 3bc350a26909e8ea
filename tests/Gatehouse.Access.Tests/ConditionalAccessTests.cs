using System.Net;

namespace Gatehouse.Access.Tests;

public sealed class ConditionalAccessTests
{
    private static readonly Guid AliceId = Guid.Parse("00000000-0000-0000-0000-00000000a11c");
    private static readonly Guid OpsId = Guid.Parse("00000000-0000-0000-0000-0000000000a1");
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    private static readonly NamedLocation Office = new() { Id = Guid.Parse("00000000-0000-0000-0000-00000000f00d"), DisplayName = "Office", IpRanges = ["192.0.2.0/24", "2001:db8::/48"], IsTrusted = true };
    private static readonly NamedLocation Cafe = new() { DisplayName = "Cafe", IpRanges = ["198.51.100.0/24"] };
    private static readonly NamedLocation[] Locations = [Office, Cafe];

    private static SignInContext Alice(bool mfa = false, string ip = "203.0.113.5", string host = "vm1", string? group = "prod", SignInRisk risk = SignInRisk.None, TimeSpan? age = null) => new()
    {
        UserId = AliceId,
        UserPrincipalName = "alice@contoso.test",
        GroupIds = new HashSet<Guid> { OpsId },
        GroupNames = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "ops" },
        Host = new HostRef(host, group),
        ClientAddress = IPAddress.Parse(ip),
        AuthenticationMethods = mfa ? new HashSet<string> { "pwd", "mfa", "otp" } : new HashSet<string> { "pwd" },
        Risk = risk,
        AuthenticatedAt = Now - (age ?? TimeSpan.Zero),
        Now = Now,
    };

    /// <summary>A <c>gatehouse login</c> sign-in: the admin API application, no host.</summary>
    private static SignInContext AdminApi() => Alice() with { Host = new HostRef(string.Empty, null), Applications = [GatehouseApplications.AdminApi] };

    private static ConditionalAccessPolicy RequireMfa(
        UserCondition? users = null,
        PolicyState state = PolicyState.Enabled,
        HostCondition? hosts = null,
        LocationCondition? locations = null,
        IReadOnlyList<string>? risk = null,
        ApplicationCondition? apps = null) => new()
        {
            DisplayName = "Require MFA",
            State = state,
            Conditions = new PolicyConditions
            {
                Users = users ?? new UserCondition { IncludeUsers = ["All"] },
                Hosts = hosts,
                Locations = locations,
                SignInRiskLevels = risk ?? [],
                Applications = apps ?? new ApplicationCondition(),
            },
            GrantControls = new GrantControls { BuiltInControls = ["mfa"] },
        };

    public static TheoryData<string, ConditionalAccessPolicy, SignInContext, PolicyResult> Cases() => new()
    {
        { "all users, no mfa", RequireMfa(), Alice(), PolicyResult.Failure },
        { "all users, mfa", RequireMfa(), Alice(mfa: true), PolicyResult.Success },
        { "include by upn", RequireMfa(new UserCondition { IncludeUsers = ["ALICE@contoso.test"] }), Alice(), PolicyResult.Failure },
        { "include by id", RequireMfa(new UserCondition { IncludeUsers = [AliceId.ToString()] }), Alice(), PolicyResult.Failure },
        { "include other user", RequireMfa(new UserCondition { IncludeUsers = ["bob@contoso.test"] }), Alice(), PolicyResult.NotApplied },
        { "include group by name", RequireMfa(new UserCondition { IncludeGroups = ["Ops"] }), Alice(), PolicyResult.Failure },
        { "include group by id", RequireMfa(new UserCondition { IncludeGroups = [OpsId.ToString()] }), Alice(), PolicyResult.Failure },
        { "exclude user beats all", RequireMfa(new UserCondition { IncludeUsers = ["All"], ExcludeUsers = ["alice@contoso.test"] }), Alice(), PolicyResult.NotApplied },
        { "exclude group beats include user", RequireMfa(new UserCondition { IncludeUsers = ["alice@contoso.test"], ExcludeGroups = ["ops"] }), Alice(), PolicyResult.NotApplied },
        { "exclude other group", RequireMfa(new UserCondition { IncludeUsers = ["All"], ExcludeGroups = ["breakglass"] }), Alice(), PolicyResult.Failure },
        { "disabled", RequireMfa(state: PolicyState.Disabled), Alice(), PolicyResult.NotApplied },
        { "report-only fails", RequireMfa(state: PolicyState.ReportOnly), Alice(), PolicyResult.ReportOnlyFailure },
        { "report-only succeeds", RequireMfa(state: PolicyState.ReportOnly), Alice(mfa: true), PolicyResult.ReportOnlySuccess },
        { "report-only not applied", RequireMfa(new UserCondition { IncludeUsers = ["bob@contoso.test"] }, PolicyState.ReportOnly), Alice(), PolicyResult.ReportOnlyNotApplied },
        { "host included", RequireMfa(hosts: new HostCondition { IncludeHosts = ["VM1"] }), Alice(), PolicyResult.Failure },
        { "host not included", RequireMfa(hosts: new HostCondition { IncludeHosts = ["vm2"] }), Alice(), PolicyResult.NotApplied },
        { "host group included", RequireMfa(hosts: new HostCondition { IncludeHostGroups = ["prod"] }), Alice(), PolicyResult.Failure },
        { "host group excluded", RequireMfa(hosts: new HostCondition { IncludeHosts = ["All"], ExcludeHostGroups = ["prod"] }), Alice(), PolicyResult.NotApplied },
        { "host excluded", RequireMfa(hosts: new HostCondition { IncludeHosts = ["All"], ExcludeHosts = ["vm1"] }), Alice(), PolicyResult.NotApplied },
        { "ungrouped host, group condition", RequireMfa(hosts: new HostCondition { IncludeHostGroups = ["prod"] }), Alice(group: null), PolicyResult.NotApplied },
        { "all locations except trusted, outside", RequireMfa(locations: new LocationCondition { ExcludeLocations = ["AllTrusted"] }), Alice(), PolicyResult.Failure },
        { "all locations except trusted, in office", RequireMfa(locations: new LocationCondition { ExcludeLocations = ["AllTrusted"] }), Alice(ip: "192.0.2.44"), PolicyResult.NotApplied },
        { "office over IPv6", RequireMfa(locations: new LocationCondition { ExcludeLocations = ["AllTrusted"] }), Alice(ip: "2001:db8:0:1::5"), PolicyResult.NotApplied },
        { "IPv4-mapped office", RequireMfa(locations: new LocationCondition { ExcludeLocations = ["Office"] }), Alice(ip: "::ffff:192.0.2.9"), PolicyResult.NotApplied },
        { "untrusted cafe is not AllTrusted", RequireMfa(locations: new LocationCondition { ExcludeLocations = ["AllTrusted"] }), Alice(ip: "198.51.100.7"), PolicyResult.Failure },
        { "include cafe by name", RequireMfa(locations: new LocationCondition { IncludeLocations = ["cafe"] }), Alice(ip: "198.51.100.7"), PolicyResult.Failure },
        { "include office by id, elsewhere", RequireMfa(locations: new LocationCondition { IncludeLocations = [Office.Id.ToString()] }), Alice(), PolicyResult.NotApplied },
        { "risk high targeted, none", RequireMfa(risk: ["high"]), Alice(), PolicyResult.NotApplied },
        { "risk high targeted, high", RequireMfa(risk: ["medium", "high"]), Alice(risk: SignInRisk.High), PolicyResult.Failure },
        { "other application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = ["00000003-0000-0000-c000-000000000000"] }), Alice(), PolicyResult.NotApplied },
        { "rdp application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = [RdpApplications.MicrosoftRemoteDesktop] }), Alice(), PolicyResult.Failure },
        { "admin api sign-in, all applications", RequireMfa(), AdminApi(), PolicyResult.Failure },
        { "admin api sign-in, admin api application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = [GatehouseApplications.AdminApi] }), AdminApi(), PolicyResult.Failure },
        { "admin api sign-in, rdp application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = [RdpApplications.MicrosoftRemoteDesktop] }), AdminApi(), PolicyResult.NotApplied },
        { "rdp sign-in, admin api application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = [GatehouseApplications.AdminApi] }), Alice(), PolicyResult.NotApplied },
        { "admin api sign-in, all hosts", RequireMfa(hosts: new HostCondition { IncludeHosts = ["All"], ExcludeHosts = ["vm1"] }), AdminApi(), PolicyResult.Failure },
        { "admin api sign-in, named host", RequireMfa(hosts: new HostCondition { IncludeHosts = ["vm1"] }), AdminApi(), PolicyResult.NotApplied },
        { "admin api sign-in, host group", RequireMfa(hosts: new HostCondition { IncludeHostGroups = ["prod"] }), AdminApi(), PolicyResult.NotApplied },
        { "vm sign-in application", RequireMfa(apps: new ApplicationCondition { IncludeApplications = [RdpApplications.AzureWindowsVmSignIn] }), Alice(), PolicyResult.Failure },
        { "application excluded", RequireMfa(apps: new ApplicationCondition { IncludeApplications = ["All"], ExcludeApplications = [RdpApplications.AzureWindowsVmSignIn] }), Alice(), PolicyResult.NotApplied },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Evaluate_Table(string name, ConditionalAccessPolicy policy, SignInContext context, PolicyResult expected)
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([policy], Locations, context);
        var outcome = Assert.Single(evaluation.Outcomes);
        Assert.True(expected == outcome.Result, $"{name}: expected {expected}, got {outcome.Result} ({outcome.Reason})");
        Assert.False(string.IsNullOrWhiteSpace(outcome.Reason));
        Assert.Equal(expected != PolicyResult.Failure, evaluation.Allowed);
    }

    public static TheoryData<string, string, string[], bool, bool> GrantCases() => new()
    {
        // name, operator, controls, mfa done, allowed
        { "mfa OR phishing-resistant, mfa done", "OR", ["mfa", "phishingResistantMfa"], true, true },
        { "mfa AND phishing-resistant, mfa done", "AND", ["mfa", "phishingResistantMfa"], true, false },
        { "phishing-resistant alone", "OR", ["phishingResistantMfa"], true, false },
        { "unsupported control", "OR", ["compliantDevice"], true, false },
        { "mfa OR compliant, no mfa", "OR", ["mfa", "compliantDevice"], false, false },
        { "block", "OR", ["block"], true, false },
        { "no controls", "OR", [], false, true },
    };

    [Theory]
    [MemberData(nameof(GrantCases))]
    public void Evaluate_GrantOperators(string name, string op, string[] controls, bool mfa, bool allowed)
    {
        var policy = RequireMfa() with { GrantControls = new GrantControls { Operator = op, BuiltInControls = controls } };
        var evaluation = ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice(mfa: mfa));
        Assert.True(allowed == evaluation.Allowed, $"{name}: {evaluation.Explanation}");
    }

    [Fact]
    public void Evaluate_MfaRequired_SaysTheSeedMessageAndThatMfaWouldDo()
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([RequireMfa()], Locations, Alice());
        Assert.False(evaluation.Allowed);
        Assert.Equal(["mfa"], evaluation.MissingControls);
        Assert.True(evaluation.SatisfiableWithMfa);
        Assert.Equal(AccessEvaluation.MethodNotAllowedMessage, evaluation.UserMessage);
        Assert.Contains("Policy 'Require MFA'", evaluation.Explanation, StringComparison.Ordinal);
        Assert.Contains("gatehouse user mfa enroll", evaluation.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_PhishingResistant_IsNotSatisfiableAndSaysSo()
    {
        var policy = RequireMfa() with { GrantControls = new GrantControls { BuiltInControls = ["phishingResistantMfa"] } };
        var evaluation = ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice());
        Assert.False(evaluation.SatisfiableWithMfa);
        Assert.Contains("cannot do yet", evaluation.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_Block_BlocksAndIsNotCuredByMfa()
    {
        var policy = RequireMfa() with { DisplayName = "Block cafe", GrantControls = new GrantControls { BuiltInControls = ["block"] }, Conditions = new PolicyConditions { Users = new UserCondition { IncludeUsers = ["All"] }, Locations = new LocationCondition { IncludeLocations = ["Cafe"] } } };
        var blocked = ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice(mfa: true, ip: "198.51.100.1"));
        Assert.True(blocked.Blocked);
        Assert.False(blocked.SatisfiableWithMfa);
        Assert.Equal(AccessEvaluation.BlockedMessage, blocked.UserMessage);
        Assert.True(ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice()).Allowed);
    }

    [Fact]
    public void Evaluate_ReportOnlyBlock_IsLoggedButNotEnforced()
    {
        var policy = RequireMfa(state: PolicyState.ReportOnly) with { GrantControls = new GrantControls { BuiltInControls = ["block"] } };
        var evaluation = ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice());
        Assert.True(evaluation.Allowed);
        Assert.Equal(PolicyResult.ReportOnlyFailure, evaluation.Outcomes[0].Result);
        Assert.Null(evaluation.UserMessage);
    }

    [Theory]
    [InlineData(1, "hours", 30, true)]
    [InlineData(1, "hours", 61, false)]
    [InlineData(1, "days", 23 * 60, true)]
    [InlineData(1, "days", 25 * 60, false)]
    public void Evaluate_SignInFrequency(int value, string type, int minutesSinceSignIn, bool allowed)
    {
        var policy = RequireMfa() with { GrantControls = null, SessionControls = new SessionControls { SignInFrequency = new SignInFrequency { Value = value, Type = type } } };
        var evaluation = ConditionalAccessEvaluator.Evaluate([policy], Locations, Alice(age: TimeSpan.FromMinutes(minutesSinceSignIn)));
        Assert.Equal(allowed, evaluation.Allowed);
        Assert.Equal(!allowed, evaluation.ReauthenticationRequired);
        if (!allowed)
        {
            Assert.Equal(AccessEvaluation.ReauthenticateMessage, evaluation.UserMessage);
        }
    }

    [Fact]
    public void Evaluate_MaxSessionDuration_TakesTheShortestOfTheAppliedPolicies()
    {
        var a = RequireMfa() with { DisplayName = "a", GrantControls = null, SessionControls = new SessionControls { MaxSessionMinutes = 480 } };
        var b = RequireMfa() with { DisplayName = "b", GrantControls = null, SessionControls = new SessionControls { MaxSessionMinutes = 60 } };
        var notApplied = b with { DisplayName = "c", SessionControls = new SessionControls { MaxSessionMinutes = 1 }, Conditions = new PolicyConditions { Users = new UserCondition { IncludeUsers = ["bob@contoso.test"] } } };
        var reportOnly = b with { DisplayName = "d", State = PolicyState.ReportOnly, SessionControls = new SessionControls { MaxSessionMinutes = 2 } };
        Assert.Equal(TimeSpan.FromMinutes(60), ConditionalAccessEvaluator.Evaluate([a, b, notApplied, reportOnly], Locations, Alice()).MaxSessionDuration);
    }

    [Fact]
    public void Evaluate_SeveralPolicies_AllMustBeSatisfied()
    {
        var mfa = RequireMfa();
        var frequency = RequireMfa() with { DisplayName = "Daily", GrantControls = null, SessionControls = new SessionControls { SignInFrequency = new SignInFrequency { Value = 1, Type = "days" } } };
        Assert.True(ConditionalAccessEvaluator.Evaluate([mfa, frequency], Locations, Alice(mfa: true)).Allowed);
        var stale = ConditionalAccessEvaluator.Evaluate([mfa, frequency], Locations, Alice(mfa: true, age: TimeSpan.FromDays(2)));
        Assert.False(stale.Allowed);
        Assert.Equal([PolicyResult.Success, PolicyResult.Failure], stale.Outcomes.Select(o => o.Result));
    }

    [Fact]
    public void Evaluate_NoPolicies_Allows() =>
        Assert.True(ConditionalAccessEvaluator.Evaluate([], Locations, Alice()).Allowed);

    [Fact]
    public void Evaluate_UnknownClientAddress_OnlyAllLocationsMatch()
    {
        var context = Alice() with { ClientAddress = null };
        Assert.False(ConditionalAccessEvaluator.Evaluate([RequireMfa(locations: new LocationCondition())], Locations, context).Allowed);
        Assert.True(ConditionalAccessEvaluator.Evaluate([RequireMfa(locations: new LocationCondition { IncludeLocations = ["Office"] })], Locations, context).Allowed);
    }

    [Fact]
    public void NamedLocation_MalformedRange_MatchesNothing() =>
        Assert.False(new NamedLocation { DisplayName = "bad", IpRanges = ["192.0.2.0/33", "nonsense"] }.Contains(IPAddress.Parse("192.0.2.1")));
}
