using Gatehouse.Access;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary><see cref="AccessService.AuthorizeSignInAsync"/>, the one access call, on SQLite and PostgreSQL.</summary>
public sealed class AccessServiceTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private const string AdminSecret = "Admin-Secret-1";
    private const string UserSecret = "User-Secret-1";

    private const string RequireMfa = """
        { "displayName": "Require MFA", "state": "enabled",
          "conditions": { "users": { "includeUsers": ["All"] } },
          "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
        """;

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task UserLogin_MapsToUserAccount(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, $"/hosts/{t.HostName}");

        var decision = await t.AuthorizeAsync(t.UserId);

        Assert.True(decision.Allowed, decision.Reason);
        Assert.Equal(LoginLevel.User, decision.Rbac?.Level);
        Assert.Equal(new MappedAccount("WORK", "rdpuser", UserSecret), decision.Account);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task HostsUserMaySignInTo_AreTheHostsARoleAllows_ByName(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var second = await t.NewHostAsync("b", null);
        var third = await t.NewHostAsync("c", null);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, $"/hosts/{t.HostName}");
        await t.AssignAsync("Virtual Machine Administrator Login", t.UserUpn, $"/hosts/{third.Name}");
        var user = (await t.Env.Get<DirectoryService>().FindUserAsync(t.UserId))!;

        var hosts = await t.Env.Get<AccessService>().HostsUserMaySignInToAsync(user, 10);

        Assert.Equal(new[] { t.HostName, third.Name }.Order(StringComparer.Ordinal), hosts.Select(h => h.Name).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(hosts, h => h.Id == second.Id);
        Assert.Single(await t.Env.Get<AccessService>().HostsUserMaySignInToAsync(user, 1));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task AdminLogin_MapsToAdminAccount_AndWinsOverUserLogin(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, $"/hosts/{t.HostName}");
        await t.AssignAsync("Virtual Machine Administrator Login", t.UserUpn, "/");

        var decision = await t.AuthorizeAsync(t.UserId);

        Assert.True(decision.Allowed, decision.Reason);
        Assert.Equal(LoginLevel.Administrator, decision.Rbac?.Level);
        Assert.Equal("Virtual Machine Administrator Login", decision.Rbac?.Role?.Name);
        Assert.Equal(new MappedAccount("", "Administrator", AdminSecret), decision.Account);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task GroupAndNestedGroupAssignments_Allow(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var directory = t.Env.Get<DirectoryService>();
        var direct = await directory.CreateGroupAsync(t.TenantId, "direct-" + t.Suffix);
        var inner = await directory.CreateGroupAsync(t.TenantId, "inner-" + t.Suffix);
        var outer = await directory.CreateGroupAsync(t.TenantId, "outer-" + t.Suffix);
        var nestedUser = await t.NewUserAsync("nested");
        await directory.AddGroupMemberAsync(direct.Id, t.UserId);
        await directory.AddGroupMemberAsync(inner.Id, nestedUser.Id);
        var db = t.Env.Get<GatehouseDbContext>();
        db.GroupMembers.Add(new GroupMember { Id = Guid.NewGuid(), GroupId = outer.Id, MemberGroupId = inner.Id });
        await db.SaveChangesAsync();
        db.ChangeTracker.Clear();
        var outsider = await t.NewUserAsync("outsider");

        await t.AssignAsync("Virtual Machine User Login", direct.Name, $"/hosts/{t.HostName}");
        await t.AssignAsync("Virtual Machine User Login", outer.Name, $"/hosts/{t.HostName}");

        var viaGroup = await t.AuthorizeAsync(t.UserId);
        var viaNested = await t.AuthorizeAsync(nestedUser.Id);
        var notMember = await t.AuthorizeAsync(outsider.Id);
        Assert.True(viaGroup.Allowed, viaGroup.Reason);
        Assert.True(viaNested.Allowed, viaNested.Reason);
        Assert.Equal(PrincipalKind.Group, viaNested.Rbac?.GrantedBy?.PrincipalKind);
        Assert.Equal(outer.Id, viaNested.Rbac?.GrantedBy?.PrincipalId);
        Assert.Equal(AccessRefusal.NoRole, notMember.Refusal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task HostGroupScopeCoversItsHostsOnly_TenantScopeCoversAll(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var other = await t.NewHostAsync("other", hostGroupId: null);
        var tenantWide = await t.NewUserAsync("everywhere");
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, $"/hostGroups/{t.HostGroupName}");
        await t.AssignAsync("Virtual Machine User Login", tenantWide.UserPrincipalName, "/");

        var inGroup = await t.AuthorizeAsync(t.UserId);
        var outsideGroup = await t.AuthorizeAsync(t.UserId, other.Id);
        var tenantOnOther = await t.AuthorizeAsync(tenantWide.Id, other.Id);

        Assert.True(inGroup.Allowed, inGroup.Reason);
        Assert.Equal($"/hostGroups/{t.HostGroupName}", inGroup.Rbac?.GrantedBy?.Scope.ToString());
        Assert.Equal(AccessRefusal.NoRole, outsideGroup.Refusal);
        Assert.True(tenantOnOther.Allowed, tenantOnOther.Reason);
        Assert.Equal("/", tenantOnOther.Rbac?.GrantedBy?.Scope.ToString());
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task OwnerAndContributor_GrantNoSignIn(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Owner", t.UserUpn, "/");
        await t.AssignAsync("Contributor", t.UserUpn, $"/hosts/{t.HostName}");

        var decision = await t.AuthorizeAsync(t.UserId);

        Assert.Equal(AccessRefusal.NoRole, decision.Refusal);
        Assert.Equal("Your account is configured to prevent you from using this device. For more info, contact your system administrator.", decision.UserMessage);
        Assert.Contains("'Owner' at /", decision.Reason, StringComparison.Ordinal);
        Assert.Contains("'Contributor' at /hosts/", decision.Reason, StringComparison.Ordinal);
        Assert.Null(decision.Account);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task DisabledUser_Refused(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        var user = await t.Env.Get<DirectoryService>().FindUserAsync(t.UserId);
        await t.Env.Get<DirectoryService>().DisableAsync(user!);

        var decision = await t.AuthorizeAsync(t.UserId);

        Assert.Equal(AccessRefusal.UserDisabled, decision.Refusal);
        Assert.Null(decision.Account);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task TemporaryPassword_RefusedUntilChanged(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var (user, temporary) = await t.Env.Get<DirectoryService>().CreateUserAsync(t.TenantId, $"temp-{t.Suffix}@{t.Domain}", "Temp", null, true);
        await t.AssignAsync("Virtual Machine User Login", user.UserPrincipalName, "/");

        var before = await t.AuthorizeAsync(user.Id);
        await t.Env.Get<DirectoryService>().SetPasswordAsync(user, "A-New-Password-1", mustChange: false);
        var after = await t.AuthorizeAsync(user.Id);

        Assert.NotNull(temporary);
        Assert.Equal(AccessRefusal.PasswordChangeRequired, before.Refusal);
        Assert.True(after.Allowed, after.Reason);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task RequireMfaPolicy_PasswordOnlyRefused_WithMfaAllowed(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        await t.AddPolicyAsync(RequireMfa);

        var password = await t.AuthorizeAsync(t.UserId, methods: ["pwd"]);
        var mfa = await t.AuthorizeAsync(t.UserId, methods: ["pwd", "mfa"]);

        Assert.Equal(AccessRefusal.PolicyControlMissing, password.Refusal);
        Assert.Equal(AccessEvaluation.MethodNotAllowedMessage, password.UserMessage);
        Assert.True(password.Policies?.SatisfiableWithMfa);
        Assert.Equal(PolicyResult.Failure, password.Policies?.Outcomes.Single().Result);
        Assert.True(mfa.Allowed, mfa.Reason);
        Assert.Equal(PolicyResult.Success, mfa.Policies?.Outcomes.Single().Result);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task RiskPolicy_BlocksWhileTheAccountShowsFailedAttempts_AndNotOtherwise(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        await t.AddPolicyAsync("""
            {
              "displayName": "Block risky sign-ins",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "signInRiskLevels": ["medium", "high"] },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] }
            }
            """);

        var calm = await t.AuthorizeAsync(t.UserId);
        var db = t.Env.Get<GatehouseDbContext>();
        db.LockoutStates.Add(new LockoutState { UserId = t.UserId, Familiar = false, Failures = SignInService.LockoutThreshold / 2 });
        await db.SaveChangesAsync();
        var medium = await t.Env.Get<AccessService>().AssessRiskAsync(t.UserId, null);
        var risky = await t.AuthorizeAsync(t.UserId);

        Assert.True(calm.Allowed, calm.Reason);
        Assert.Equal(SignInRisk.Medium, medium);
        Assert.Equal(AccessRefusal.PolicyBlocked, risky.Refusal);
        Assert.Contains("Block risky sign-ins", risky.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task EvaluateConditionalAccess_NeedsNoRole_AndDrivesTheMfaRequirement(StoreProvider provider)
    {
        // The identity provider's question: no role assignment at all, only the policies.
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var before = await t.EvaluatePoliciesAsync(["pwd"]);
        await t.AddPolicyAsync(RequireMfa);

        var password = await t.EvaluatePoliciesAsync(["pwd"]);
        var mfa = await t.EvaluatePoliciesAsync(["pwd", "mfa"]);
        var gateway = await t.AuthorizeAsync(t.UserId, methods: ["pwd", "mfa"]);

        Assert.True(before.Allowed, before.Reason);
        Assert.Equal(AccessRefusal.PolicyControlMissing, password.Refusal);
        Assert.True(password.Policies?.SatisfiableWithMfa);
        Assert.True(mfa.Allowed, mfa.Reason);
        Assert.Equal(AccessRefusal.NoRole, gateway.Refusal);

        var user = (await t.Env.Get<DirectoryService>().FindUserAsync(t.UserId))!;
        var signIn = t.Env.Get<SignInService>();
        Assert.Equal(MfaRequirement.None, signIn.GetMfaRequirement(user, null, before.Policies));
        Assert.Equal(MfaRequirement.Enroll, signIn.GetMfaRequirement(user, null, password.Policies));
        Assert.Equal(MfaRequirement.None, signIn.GetMfaRequirement(user, null, mfa.Policies));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task EvaluateConditionalAccess_BlockIsNotSatisfiableWithMfa(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AddPolicyAsync(RequireMfa);
        await t.AddPolicyAsync("""
            { "displayName": "Block", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] } }
            """);

        var decision = await t.EvaluatePoliciesAsync(["pwd"]);

        Assert.Equal(AccessRefusal.PolicyBlocked, decision.Refusal);
        Assert.Equal(AccessEvaluation.BlockedMessage, decision.UserMessage);
        var user = (await t.Env.Get<DirectoryService>().FindUserAsync(t.UserId))!;
        Assert.False(t.Env.Get<SignInService>().IsMfaRequiredByPolicy(user, null, decision.Policies));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task PolicyOnMicrosoftRemoteDesktopApp_AppliesToRdpSignIn(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        await t.AddPolicyAsync($$"""
            { "displayName": "MFA for Remote Desktop", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["{{RdpApplications.MicrosoftRemoteDesktop}}"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
            """);

        var decision = await t.AuthorizeAsync(t.UserId, methods: ["pwd"]);

        Assert.Equal(AccessRefusal.PolicyControlMissing, decision.Refusal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task ReportOnlyPolicy_EvaluatedNeverEnforced(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        await t.AddPolicyAsync("""
            { "displayName": "Block (report only)", "state": "enabledForReportingButNotEnforced",
              "conditions": { "users": { "includeUsers": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] } }
            """);
        await t.AddPolicyAsync(RequireMfa.Replace("\"enabled\"", "\"enabledForReportingButNotEnforced\"", StringComparison.Ordinal).Replace("Require MFA", "MFA (report only)", StringComparison.Ordinal));

        var decision = await t.AuthorizeAsync(t.UserId, methods: ["pwd"]);

        Assert.True(decision.Allowed, decision.Reason);
        Assert.Equal([PolicyResult.ReportOnlyFailure, PolicyResult.ReportOnlyFailure], decision.Policies?.Outcomes.Select(o => o.Result));
        Assert.Contains("reportOnlyFailure", decision.PoliciesJson, StringComparison.Ordinal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task BlockPolicy_ExcludedBreakGlassAllowed_OthersBlocked(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var breakGlass = await t.NewUserAsync("breakglass");
        await t.AssignAsync("Virtual Machine User Login", t.UserUpn, "/");
        await t.AssignAsync("Virtual Machine Administrator Login", breakGlass.UserPrincipalName, "/");
        await t.AddPolicyAsync($$"""
            { "displayName": "Block everyone", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"], "excludeUsers": ["{{breakGlass.UserPrincipalName}}"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] } }
            """);

        var blocked = await t.AuthorizeAsync(t.UserId, methods: ["pwd", "mfa"]);
        var excluded = await t.AuthorizeAsync(breakGlass.Id);

        Assert.Equal(AccessRefusal.PolicyBlocked, blocked.Refusal);
        Assert.Equal(AccessEvaluation.BlockedMessage, blocked.UserMessage);
        Assert.True(excluded.Allowed, excluded.Reason);
        Assert.Equal(PolicyResult.NotApplied, excluded.Policies?.Outcomes.Single().Result);
        Assert.Equal("Administrator", excluded.Account?.UserName);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task NoMappedAccountForRole_Refused(StoreProvider provider)
    {
        await using var t = await Scenario.CreateAsync(fixture, provider);
        var userOnly = await t.Env.Get<DirectoryService>().CreateHostAsync(t.TenantId, "uo" + t.Suffix, "10.0.0.9", 3389, BackendSecurity.Tls,
            userAccountName: "rdpuser", userSecret: UserSecret);
        await t.AssignAsync("Virtual Machine Administrator Login", t.UserUpn, $"/hosts/{userOnly.Name}");

        var decision = await t.AuthorizeAsync(t.UserId, userOnly.Id);

        Assert.Equal(AccessRefusal.NoMappedAccount, decision.Refusal);
        Assert.Contains("has no admin account", decision.Reason, StringComparison.Ordinal);
        Assert.Null(decision.Account);
    }

    /// <summary>A tenant of its own with a user, a host group and a host with both accounts mapped.</summary>
    private sealed class Scenario : IAsyncDisposable
    {
        private Scenario(TestEnv env) => Env = env;

        public TestEnv Env { get; }

        public string Suffix { get; } = Guid.NewGuid().ToString("N")[..10];

        public Guid TenantId { get; private set; }

        public string Domain { get; private set; } = "";

        public Guid UserId { get; private set; }

        public string UserUpn { get; private set; } = "";

        public Guid HostId { get; private set; }

        public string HostName { get; private set; } = "";

        public string HostGroupName { get; private set; } = "";

        public static async Task<Scenario> CreateAsync(StoreFixture fixture, StoreProvider provider)
        {
            var t = new Scenario(await fixture.CreateEnvAsync(provider));
            t.Domain = $"t{t.Suffix}.test";
            t.TenantId = (await t.Env.Get<DirectoryService>().CreateTenantAsync("Contoso", t.Domain)).Id;
            var user = await t.NewUserAsync("alice");
            (t.UserId, t.UserUpn) = (user.Id, user.UserPrincipalName);
            var group = await t.Env.Get<DirectoryService>().CreateHostGroupAsync(t.TenantId, "prod-" + t.Suffix);
            t.HostGroupName = group.Name;
            var host = await t.NewHostAsync("vm", group.Id);
            (t.HostId, t.HostName) = (host.Id, host.Name);
            return t;
        }

        public async Task<User> NewUserAsync(string name)
        {
            var (user, _) = await Env.Get<DirectoryService>().CreateUserAsync(TenantId, $"{name}@{Domain}", name, "Correct-Horse-1", temporary: false);
            return user;
        }

        public Task<Host> NewHostAsync(string prefix, Guid? hostGroupId) =>
            Env.Get<DirectoryService>().CreateHostAsync(TenantId, prefix + Suffix, "10.0.0.5", 3389, BackendSecurity.Tls,
                "Administrator", AdminSecret, @"WORK\rdpuser", UserSecret, hostGroupId: hostGroupId);

        public Task<RoleAssignmentRecord> AssignAsync(string role, string assignee, string scope) =>
            Env.Get<AccessService>().AssignRoleAsync(TenantId, role, assignee, scope);

        public async Task AddPolicyAsync(string json)
        {
            Assert.True(PolicyJson.TryParse(json, out var policy, out var error), error);
            var db = Env.Get<GatehouseDbContext>();
            var now = Env.Time.GetUtcNow();
            db.Policies.Add(new PolicyRecord
            {
                Id = Guid.NewGuid(),
                TenantId = TenantId,
                DisplayName = policy.DisplayName,
                NormalizedName = DirectoryService.NormalizeName(policy.DisplayName),
                State = policy.State == PolicyState.ReportOnly ? "enabledForReportingButNotEnforced" : policy.State.ToString().ToLowerInvariant(),
                Json = json,
                CreatedAt = now,
                ModifiedAt = now,
            });
            await db.SaveChangesAsync();
            db.ChangeTracker.Clear();
            Env.Time.Advance(TimeSpan.FromSeconds(1));
        }

        public Task<AccessDecision> EvaluatePoliciesAsync(IReadOnlyList<string> methods) =>
            Env.Get<AccessService>().EvaluateConditionalAccessAsync(new AccessRequest
            {
                UserId = UserId,
                HostId = HostId,
                AuthenticationMethods = methods,
                AuthenticatedAt = Env.Time.GetUtcNow(),
            });

        public Task<AccessDecision> AuthorizeAsync(Guid userId, Guid? hostId = null, IReadOnlyList<string>? methods = null) =>
            Env.Get<AccessService>().AuthorizeSignInAsync(new AccessRequest
            {
                UserId = userId,
                HostId = hostId ?? HostId,
                AuthenticationMethods = methods ?? ["pwd"],
                AuthenticatedAt = Env.Time.GetUtcNow(),
            });

        public ValueTask DisposeAsync() => Env.DisposeAsync();
    }
}
