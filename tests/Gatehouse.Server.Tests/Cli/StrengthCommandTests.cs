using System.Text.Json;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// <c>gatehouse policy strength create|list|show|delete</c>, a policy requiring a strength by name, and <c>what-if</c> /
/// <c>diagnose</c> explaining an unmet strength with the methods each sign-in path gives and the fix (issue 19).
/// </summary>
public sealed class StrengthCommandTests
{
    private static async Task<CliHarness> WithUserHostAndRoleAsync()
    {
        var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("Alice-Pw-12345\n", "user", "create", "--upn", "alice@contoso.test", "--display-name", "Alice", "--password-stdin");
        await cli.OkWithInputAsync(
            "Adm1n-Secret-Zebra\nUs3r-Secret-Giraffe\n",
            "host", "create", "--name", "vm1", "--backend", "127.0.0.1:3389", "--backend-security", "tls",
            "--admin-account", "Administrator", "--admin-password-stdin", "--user-account", @"WORK\rdpuser", "--user-password-stdin");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/");
        return cli;
    }

    private static async Task CreatePolicyAsync(CliHarness cli, string strengthJson)
    {
        var file = Path.Combine(cli.DataDirectory, "strength-policy.json");
        await File.WriteAllTextAsync(file, $$"""
            { "displayName": "Passkeys for RDP", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] } },
              "grantControls": { "operator": "OR", "authenticationStrength": {{strengthJson}} } }
            """);
        await cli.OkAsync("policy", "create", "--file", file);
    }

    [Fact]
    public async Task Strength_CreateListShowDelete_AndAPolicyUsesItByName()
    {
        await using var cli = await WithUserHostAndRoleAsync();
        var created = await cli.OkAsync("policy", "strength", "create", "Keys or app", "--combination", "fido2", "--combination", "password, softwareOath");
        Assert.Contains("Created authentication strength 'Keys or app'", created.Output, StringComparison.Ordinal);

        var bad = await cli.RunAsync("policy", "strength", "create", "Magic", "--combination", "magicWand");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("not an authentication method", bad.Error, StringComparison.Ordinal);
        Assert.NotEqual(0, (await cli.RunAsync("policy", "strength", "create", "Keys or app", "--combination", "fido2")).ExitCode);

        var list = JsonDocument.Parse((await cli.OkAsync("policy", "strength", "list", "--output", "json")).Output).RootElement;
        Assert.Equal(["Multifactor authentication", "Passwordless MFA", "Phishing-resistant MFA", "Keys or app"], list.EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        var custom = list[3];
        Assert.Equal("custom", custom.GetProperty("policyType").GetString());
        Assert.Equal(["fido2", "password,softwareOath"], custom.GetProperty("combinations").EnumerateArray().Select(c => c.GetString()));

        // A policy naming an unknown strength is refused at create time; one naming the custom strength is accepted.
        var file = Path.Combine(cli.DataDirectory, "typo.json");
        await File.WriteAllTextAsync(file, """
            { "displayName": "Typo", "conditions": { "users": { "includeUsers": ["All"] } },
              "grantControls": { "authenticationStrength": { "displayName": "Keys or ap" } } }
            """);
        var typo = await cli.RunAsync("policy", "create", "--file", file);
        Assert.NotEqual(0, typo.ExitCode);
        Assert.Contains("'Keys or ap'", typo.Error, StringComparison.Ordinal);
        await CreatePolicyAsync(cli, """{ "displayName": "Keys or app" }""");

        var show = await cli.OkAsync("policy", "strength", "show", "Keys or app");
        Assert.Contains("Used by: Passkeys for RDP", show.Output, StringComparison.Ordinal);
        Assert.Contains("Achievable in Gatehouse: password,softwareOath | fido2", show.Output, StringComparison.Ordinal);
        Assert.Contains("authentication strength 'Keys or app'", (await cli.OkAsync("policy", "list")).Output, StringComparison.Ordinal);

        var inUse = await cli.RunAsync("policy", "strength", "delete", "Keys or app");
        Assert.NotEqual(0, inUse.ExitCode);
        Assert.Contains("used by 'Passkeys for RDP'", inUse.Error, StringComparison.Ordinal);
        Assert.NotEqual(0, (await cli.RunAsync("policy", "strength", "delete", "Phishing-resistant MFA")).ExitCode);
        await cli.OkAsync("policy", "delete", "Passkeys for RDP");
        await cli.OkAsync("policy", "strength", "delete", "Keys or app");
        Assert.Equal(3, JsonDocument.Parse((await cli.OkAsync("policy", "strength", "list", "--output", "json")).Output).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task WhatIfAndDiagnose_ExplainAnUnmetPhishingResistantStrength()
    {
        await using var cli = await WithUserHostAndRoleAsync();
        await CreatePolicyAsync(cli, """{ "id": "00000000-0000-0000-0000-000000000004" }""");

        var password = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1");
        Assert.Contains("'Passkeys for RDP' (enabled) requires 'Phishing-resistant MFA': NOT met by this sign-in.", password.Output, StringComparison.Ordinal);
        Assert.Contains("authentication_strength_unmet: Phishing-resistant MFA (policy 'Passkeys for RDP') needs fido2; the sign-in used password", password.Output, StringComparison.Ordinal);
        Assert.Contains("achievable in Gatehouse today: fido2.", password.Output, StringComparison.Ordinal);
        Assert.Contains("does not password and authenticator app", password.Output, StringComparison.Ordinal);
        Assert.Contains("meets    passkey", password.Output, StringComparison.Ordinal);
        Assert.Contains("Fix: Sign in with a passkey, or register one at https://", password.Output, StringComparison.Ordinal);
        Assert.Contains("The sign-in method you're trying to use isn't allowed.", password.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("MFA is required", password.Output, StringComparison.Ordinal);

        var app = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--mfa");
        Assert.Contains("the sign-in used password,softwareOath", app.Output, StringComparison.Ordinal);
        var passkey = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--passkey");
        Assert.Contains("met by this sign-in", passkey.Output, StringComparison.Ordinal);
        Assert.Contains(@"Verdict: allowed as WORK\rdpuser", passkey.Output, StringComparison.Ordinal);

        var json = JsonDocument.Parse((await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--output", "json")).Output).RootElement;
        var strength = json.GetProperty("strengths")[0];
        Assert.False(strength.GetProperty("satisfied").GetBoolean());
        Assert.Equal("00000000-0000-0000-0000-000000000004", strength.GetProperty("strengthId").GetString());
        Assert.Equal([false, false, true], strength.GetProperty("paths").EnumerateArray().Select(p => p.GetProperty("meets").GetBoolean()));

        var diagnose = await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1");
        Assert.Contains("Authentication strengths:", diagnose.Output, StringComparison.Ordinal);
        Assert.Contains("To fix:   Sign in with a passkey, or register one at https://", diagnose.Output, StringComparison.Ordinal);
        Assert.Contains("connect with web account sign-in, or the hold screen's QR sign-in", diagnose.Output, StringComparison.Ordinal);
        var diagnoseJson = JsonDocument.Parse((await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1", "--output", "json")).Output).RootElement;
        Assert.False(diagnoseJson.GetProperty("allowedWithMfa").GetBoolean());
        Assert.Equal("Phishing-resistant MFA", diagnoseJson.GetProperty("strengths")[0].GetProperty("strength").GetString());
    }

    [Fact]
    public async Task Help_NamesTheStrengthCommands_AndWhatGatehouseCanAchieve()
    {
        await using var cli = await CliHarness.CreateAsync();
        var policy = await cli.RunAsync("policy", "--help");
        Assert.Contains("strength", policy.Output, StringComparison.Ordinal);
        var strength = await cli.RunAsync("policy", "strength", "--help");
        Assert.Contains("password,softwareOath, fido2 (a passkey)", strength.Output, StringComparison.Ordinal);
        var whatIf = await cli.RunAsync("policy", "what-if", "--help");
        Assert.Contains("--passkey", whatIf.Output, StringComparison.Ordinal);
    }
}
