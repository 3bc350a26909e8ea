using System.Net;

namespace Gatehouse.Access.Tests;

public sealed class AuthenticationStrengthTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 3, 0, 0, TimeSpan.Zero);

    private static SignInContext SignIn(params string[] amr) => new()
    {
        UserId = Guid.Parse("00000000-0000-0000-0000-00000000a11c"),
        UserPrincipalName = "alice@contoso.test",
        Host = new HostRef("vm1", null),
        ClientAddress = IPAddress.Parse("203.0.113.5"),
        AuthenticationMethods = new HashSet<string>(amr, StringComparer.Ordinal),
        AuthenticatedAt = Now,
        Now = Now,
    };

    private static ConditionalAccessPolicy Requiring(AuthenticationStrength strength, PolicyState state = PolicyState.Enabled, string name = "Admins phishing-resistant") => new()
    {
        DisplayName = name,
        State = state,
        Conditions = new PolicyConditions { Users = new UserCondition { IncludeUsers = ["All"] } },
        GrantControls = new GrantControls { AuthenticationStrength = strength },
    };

    private static AuthenticationStrength ById(string id) => new() { Id = id };

    [Theory]
    [InlineData(new[] { "pwd" }, new[] { "password" })]
    [InlineData(new[] { "pwd", "otp", "mfa" }, new[] { "password", "password,softwareOath" })]
    [InlineData(new[] { "fido", "mfa" }, new[] { "fido2" })]
    [InlineData(new[] { "pwd", "fido", "mfa" }, new[] { "password", "fido2" })]
    [InlineData(new[] { "tap" }, new[] { "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse" })]
    [InlineData(new[] { "otp", "mfa" }, new string[0])]
    [InlineData(new string[0], new string[0])]
    public void CombinationsOf_MapsAmr(string[] amr, string[] expected) =>
        Assert.Equal(expected, AuthenticationStrengths.CombinationsOf(amr));

    [Theory]
    [InlineData(AuthenticationStrengths.MultifactorId, new[] { "pwd" }, false)]
    [InlineData(AuthenticationStrengths.MultifactorId, new[] { "pwd", "otp", "mfa" }, true)]
    [InlineData(AuthenticationStrengths.MultifactorId, new[] { "fido", "mfa" }, true)]
    [InlineData(AuthenticationStrengths.MultifactorId, new[] { "tap" }, true)]
    [InlineData(AuthenticationStrengths.PasswordlessId, new[] { "pwd", "otp", "mfa" }, false)]
    [InlineData(AuthenticationStrengths.PasswordlessId, new[] { "fido", "mfa" }, true)]
    [InlineData(AuthenticationStrengths.PhishingResistantId, new[] { "pwd", "otp", "mfa" }, false)]
    [InlineData(AuthenticationStrengths.PhishingResistantId, new[] { "tap" }, false)]
    [InlineData(AuthenticationStrengths.PhishingResistantId, new[] { "fido", "mfa" }, true)]
    [InlineData(AuthenticationStrengths.PhishingResistantId, new[] { "pwd", "fido", "mfa" }, true)]
    public void BuiltIns_AreSatisfiedByTheirCombinations(string id, string[] amr, bool satisfied)
    {
        var strength = AuthenticationStrengths.Resolve(ById(id), [], out _)!;
        Assert.Equal(satisfied, AuthenticationStrengths.IsSatisfiedBy(strength, amr));
    }

    [Fact]
    public void BuiltIns_HaveEntrasIdsAndNames()
    {
        Assert.Equal(["Multifactor authentication", "Passwordless MFA", "Phishing-resistant MFA"], AuthenticationStrengths.BuiltIn.Select(s => s.DisplayName));
        Assert.Equal([AuthenticationStrengths.MultifactorId, AuthenticationStrengths.PasswordlessId, AuthenticationStrengths.PhishingResistantId], AuthenticationStrengths.BuiltIn.Select(s => s.Id));
        Assert.Equal(["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"], AuthenticationStrengths.BuiltIn[2].AllowedCombinations);
        Assert.Equal([AuthenticationStrengths.Fido2], AuthenticationStrengths.AchievableIn(AuthenticationStrengths.BuiltIn[2]));
        Assert.Contains(AuthenticationStrengths.PasswordSoftwareOath, AuthenticationStrengths.AchievableIn(AuthenticationStrengths.BuiltIn[0]));
    }

    [Fact]
    public void Resolve_FindsByNameAndCustom_AndRefusesUnknown()
    {
        var custom = new AuthenticationStrength { Id = Guid.NewGuid().ToString(), DisplayName = "Passkey or app", AllowedCombinations = ["fido2", "password, softwareOath"] };
        Assert.Equal(AuthenticationStrengths.PhishingResistantId, AuthenticationStrengths.Resolve(new AuthenticationStrength { DisplayName = "phishing-resistant mfa" }, [], out _)!.Id);
        Assert.Same(custom, AuthenticationStrengths.Resolve(new AuthenticationStrength { DisplayName = "Passkey or app" }, [custom], out _));
        Assert.Same(custom, AuthenticationStrengths.Resolve(new AuthenticationStrength { Id = custom.Id }, [custom], out _));
        Assert.Null(AuthenticationStrengths.Resolve(new AuthenticationStrength { DisplayName = "Nope" }, [custom], out var error));
        Assert.Contains("'Nope'", error, StringComparison.Ordinal);

        // "password, softwareOath" (Entra writes it with a space too) is the same combination.
        Assert.True(AuthenticationStrengths.IsSatisfiedBy(custom, ["pwd", "otp", "mfa"]));
        Assert.False(AuthenticationStrengths.IsSatisfiedBy(custom, ["pwd"]));
    }

    [Fact]
    public void Evaluate_PhishingResistant_RefusesPasswordAndApp_WithThePreciseReason()
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([Requiring(ById(AuthenticationStrengths.PhishingResistantId))], [], SignIn("pwd", "otp", "mfa"));
        Assert.False(evaluation.Allowed);
        Assert.Equal([ConditionalAccessEvaluator.AuthenticationStrengthControl], evaluation.MissingControls);
        Assert.Equal(AccessEvaluation.MethodNotAllowedMessage, evaluation.UserMessage);
        var unmet = Assert.Single(evaluation.UnmetStrengths);
        Assert.Equal("authentication_strength_unmet: Phishing-resistant MFA (policy 'Admins phishing-resistant') needs fido2; the sign-in used password,softwareOath", unmet.Detail);
        Assert.False(evaluation.SatisfiableWithMfa);
        Assert.True(evaluation.SatisfiableWithPasskey);
        Assert.Equal(StrengthStep.NeedsPasskey, evaluation.NextStrengthStep(["pwd", "otp", "mfa"]));
        Assert.Equal("Sign in with a passkey, or register one at https://login.example/mysignins/security-info", unmet.Requirement.Fix("https://login.example/mysignins/security-info"));
    }

    [Fact]
    public void Evaluate_PhishingResistant_AcceptsAPasskey()
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([Requiring(ById(AuthenticationStrengths.PhishingResistantId))], [], SignIn("fido", "mfa"));
        Assert.True(evaluation.Allowed);
        Assert.Empty(evaluation.UnmetStrengths);
        var outcome = Assert.Single(evaluation.Outcomes);
        Assert.Equal(PolicyResult.Success, outcome.Result);
        Assert.True(outcome.Strength!.Satisfied);
        Assert.Equal(StrengthStep.Satisfied, evaluation.NextStrengthStep(["fido", "mfa"]));
    }

    [Fact]
    public void Evaluate_Multifactor_AsksForTheAppCodeAfterThePassword()
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([Requiring(ById(AuthenticationStrengths.MultifactorId))], [], SignIn("pwd"));
        Assert.False(evaluation.Allowed);
        Assert.True(evaluation.SatisfiableWithMfa);
        Assert.Equal(StrengthStep.AskAppCode, evaluation.NextStrengthStep(["pwd"]));
        Assert.StartsWith("Use your authenticator app", evaluation.UnmetStrengths[0].Requirement.Fix("https://x/mysignins/security-info"), StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_UnachievableCustomStrength_SaysNothingGatehouseOffers()
    {
        var certificates = new AuthenticationStrength { DisplayName = "Certificates only", AllowedCombinations = ["x509CertificateMultiFactor"] };
        var evaluation = ConditionalAccessEvaluator.Evaluate([Requiring(certificates)], [], SignIn("pwd", "otp", "mfa"));
        Assert.False(evaluation.Allowed);
        Assert.False(evaluation.SatisfiableWithPasskey);
        Assert.Equal(StrengthStep.Unachievable, evaluation.NextStrengthStep(["pwd", "otp", "mfa"]));
        Assert.Contains("none of which Gatehouse offers", evaluation.UnmetStrengths[0].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_ReportOnly_ReportsTheStrengthButDoesNotEnforce()
    {
        var evaluation = ConditionalAccessEvaluator.Evaluate([Requiring(ById(AuthenticationStrengths.PhishingResistantId), PolicyState.ReportOnly)], [], SignIn("pwd", "otp", "mfa"));
        Assert.True(evaluation.Allowed);
        Assert.Empty(evaluation.UnmetStrengths);
        var outcome = Assert.Single(evaluation.Outcomes);
        Assert.Equal(PolicyResult.ReportOnlyFailure, outcome.Result);
        Assert.False(outcome.Strength!.Satisfied);
        Assert.Contains("needs fido2", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_OrWithAnotherControl_AnyOneWillDo()
    {
        var policy = Requiring(ById(AuthenticationStrengths.PhishingResistantId)) with
        {
            GrantControls = new GrantControls { Operator = "OR", BuiltInControls = ["phishingResistantMfa"], AuthenticationStrength = ById(AuthenticationStrengths.PhishingResistantId) },
        };
        Assert.True(ConditionalAccessEvaluator.Evaluate([policy], [], SignIn("fido", "mfa")).Allowed);
        Assert.False(ConditionalAccessEvaluator.Evaluate([policy], [], SignIn("pwd", "otp", "mfa")).Allowed);
    }

    [Fact]
    public void PolicyJson_ParsesEntrasShape_AndRefusesMfaWithAStrength()
    {
        const string Json = """
            {"displayName": "Phishing-resistant for admins", "conditions": {"users": {"includeUsers": ["All"]}},
             "grantControls": {"operator": "OR", "builtInControls": [],
               "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004", "displayName": "Phishing-resistant MFA", "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]}}}
            """;
        Assert.True(PolicyJson.TryParse(Json, out var policy, out var error), error);
        Assert.Equal(AuthenticationStrengths.PhishingResistantId, policy.GrantControls!.AuthenticationStrength!.Id);

        var both = Json.Replace("\"builtInControls\": []", "\"builtInControls\": [\"mfa\"]", StringComparison.Ordinal);
        Assert.False(PolicyJson.TryParse(both, out _, out error));
        Assert.Contains("cannot be used together", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{}}}""", "needs an id")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{"displayName":"y","allowedCombinations":["magic"]}}}""", "not an authentication method")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{"displayName":"y","allowedCombinations":["fido2,fido2"]}}}""", "twice")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{"displayName":"y","bogus":1}}}""", "not valid")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"builtInControls":["block"],"authenticationStrength":{"id":"00000000-0000-0000-0000-000000000004"}}}""", "block")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{"displayName":"y","allowedCombinations":[",,"]}}}""", "not a combination")]
    [InlineData("""{"displayName":"x","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"authenticationStrength":{"displayName":"y","allowedCombinations":[1]}}}""", "not valid")]
    public void PolicyJson_RefusesHostileStrengths(string json, string expected)
    {
        Assert.False(PolicyJson.TryParse(json, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_CustomStrength_HasCaps()
    {
        Assert.True(AuthenticationStrengths.TryParse("""{"displayName":"Passkey or app","allowedCombinations":["fido2","password,softwareOath"]}""", out var strength, out var error), error);
        Assert.Equal(2, strength.AllowedCombinations.Count);

        var many = "{\"displayName\":\"x\",\"allowedCombinations\":[" + string.Join(',', Enumerable.Repeat("\"fido2\"", AuthenticationStrengths.MaxCombinations + 1)) + "]}";
        Assert.False(AuthenticationStrengths.TryParse(many, out _, out error));
        Assert.Contains("at most", error, StringComparison.Ordinal);

        Assert.False(AuthenticationStrengths.TryParse(new string('[', AuthenticationStrengths.MaxBytes + 1), out _, out error));
        Assert.Contains("larger than", error, StringComparison.Ordinal);

        Assert.False(AuthenticationStrengths.TryParse(new string('[', 100), out _, out error));
        Assert.Contains("not valid", error, StringComparison.Ordinal);

        Assert.False(AuthenticationStrengths.TryParse("null", out _, out error));
        Assert.False(AuthenticationStrengths.TryParse("""{"displayName":"x","allowedCombinations":[]}""", out _, out _));
        Assert.False(AuthenticationStrengths.TryParse("{\"displayName\":\"" + new string('a', 200) + "\",\"allowedCombinations\":[\"fido2\"]}", out _, out error));
        Assert.Contains("too long", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Requirement_Seams_ForThePasskeyStep()
    {
        var phishing = new StrengthRequirement(AuthenticationStrengths.BuiltIn[2], "P");
        Assert.True(phishing.AllowsPasskey);
        Assert.False(phishing.AllowsPasswordAndApp);
        Assert.False(phishing.IsSatisfiedBy(["pwd", "otp", "mfa"]));
        Assert.True(phishing.IsSatisfiedBy(["fido", "mfa"]));
        Assert.Equal(StrengthStep.NeedsPasskey, phishing.NextStep(["pwd"]));
        var mfa = new StrengthRequirement(AuthenticationStrengths.BuiltIn[0], "M");
        Assert.Equal(StrengthStep.AskAppCode, mfa.NextStep(["pwd"]));
        Assert.Equal(StrengthStep.Satisfied, mfa.NextStep(["pwd", "otp", "mfa"]));
        Assert.Equal(StrengthStep.NeedsPasskey, mfa.NextStep([]));
    }
}
