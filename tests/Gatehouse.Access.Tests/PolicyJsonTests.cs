namespace Gatehouse.Access.Tests;

public sealed class PolicyJsonTests
{
    private const string EntraShaped = """
        {
          "displayName": "Require MFA for RDP outside the office",
          "state": "enabledForReportingButNotEnforced",
          "conditions": {
            "users": { "includeUsers": ["All"], "excludeUsers": ["breakglass@contoso.test"], "includeGroups": [], "excludeGroups": [] },
            "applications": { "includeApplications": ["a4a365df-50f1-4397-bc59-1a1564b8bb9c", "372140e0-b3b7-4226-8ef9-d57986796201"] },
            "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] },
            "signInRiskLevels": ["medium", "high"]
          },
          "grantControls": { "operator": "OR", "builtInControls": ["mfa"] },
          "sessionControls": { "signInFrequency": { "value": 8, "type": "hours", "isEnabled": true }, "maxSessionMinutes": 600 }
        }
        """;

    [Fact]
    public void TryParse_EntraShapedPolicy()
    {
        Assert.True(PolicyJson.TryParse(EntraShaped, out var policy, out var error), error);
        Assert.Equal(PolicyState.ReportOnly, policy.State);
        Assert.Equal(["breakglass@contoso.test"], policy.Conditions.Users.ExcludeUsers);
        Assert.Equal(["AllTrusted"], policy.Conditions.Locations!.ExcludeLocations);
        Assert.Equal(TimeSpan.FromHours(8), policy.SessionControls!.SignInFrequency!.Span);
        Assert.Equal(600, policy.SessionControls.MaxSessionMinutes);

        var again = PolicyJson.Serialize(policy);
        Assert.Contains("\"state\": \"enabledForReportingButNotEnforced\"", again, StringComparison.Ordinal);
        Assert.True(PolicyJson.TryParse(again, out var reparsed, out _));
        Assert.Equal(PolicyJson.Serialize(reparsed), again);
    }

    /// <summary>The example in docs/policies.md is a policy <c>policy create</c> accepts, with every member it documents.</summary>
    [Fact]
    public void TheDocumentedExample_Parses()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Gatehouse.slnx")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        var markdown = File.ReadAllText(Path.Combine(directory.FullName, "docs", "policies.md"));
        var start = markdown.IndexOf("```json", StringComparison.Ordinal) + "```json".Length;
        var json = markdown[start..markdown.IndexOf("```", start, StringComparison.Ordinal)];
        Assert.True(PolicyJson.TryParse(json, out var policy, out var error), error);
        Assert.Equal(["breakglass@contoso.test"], policy.Conditions.Users.ExcludeUsers);
        Assert.Equal(["prod"], policy.Conditions.Hosts!.IncludeHostGroups);
        Assert.Equal(["vm-lab"], policy.Conditions.Hosts.ExcludeHosts);
        Assert.Equal(["mfa"], policy.GrantControls!.BuiltInControls);
        Assert.Equal(600, policy.SessionControls!.MaxSessionMinutes);
    }

    [Theory]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControl": { "builtInControls": ["mfa"] } }""", "grantControl")]
    [InlineData("""{ "displayName": "x", "state": "on", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "builtInControls": ["mfa"] } }""", "state")]
    [InlineData("""{ "displayName": "", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "builtInControls": ["mfa"] } }""", "displayName is required")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { } }, "grantControls": { "builtInControls": ["mfa"] } }""", "must include someone")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "operator": "XOR", "builtInControls": ["mfa"] } }""", "\"AND\" or \"OR\"")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "builtInControls": ["passkey"] } }""", "\"passkey\" is not supported")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "builtInControls": ["block", "mfa"] } }""", "cannot be combined")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "sessionControls": { "signInFrequency": { "value": 0, "type": "hours" } } }""", "positive value")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "sessionControls": { "signInFrequency": { "value": 1, "type": "weeks" } } }""", "positive value")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "sessionControls": { "maxSessionMinutes": -5 } }""", "maxSessionMinutes must be positive")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] }, "signInRiskLevels": ["severe"] }, "grantControls": { "builtInControls": ["mfa"] } }""", "\"severe\"")]
    [InlineData("""{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } } }""", "would do nothing")]
    [InlineData("""[1, 2]""", "not valid")]
    [InlineData("""null""", "empty")]
    [InlineData("""{ "displayName": "x", """, "not valid")]
    public void TryParse_Mistakes_AreNamed(string json, string expected)
    {
        Assert.False(PolicyJson.TryParse(json, out var policy, out var error));
        Assert.Null(policy);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_Oversized_IsRefused()
    {
        Assert.False(PolicyJson.TryParse(new string(' ', PolicyJson.MaxBytes + 1), out _, out var error));
        Assert.Contains("larger than", error, StringComparison.Ordinal);
    }
}
