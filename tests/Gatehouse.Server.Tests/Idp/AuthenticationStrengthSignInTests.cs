using System.Net;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// Conditional Access authentication strengths at the sign-in pages (issue 19): a strength the authenticator app meets
/// asks for the code after the password; a phishing-resistant one refuses a password and a code with the strength's
/// name, the fix and a precise sign-in log row; the device-code page goes through the same engine.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class AuthenticationStrengthSignInTests
{
    private static string SecurityInfo(IdpScenario s) => $"https://login.gatehouse.test/{s.TenantId}/mysignins/security-info";

    private static string StrengthPolicy(string name, string strengthJson, string application = "All", string hostCondition = """, "hosts": { "includeHosts": ["vm1"] }""") => $$"""
        { "displayName": "{{name}}", "state": "enabled",
          "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["{{application}}"] }{{hostCondition}} },
          "grantControls": { "operator": "OR", "builtInControls": [], "authenticationStrength": {{strengthJson}} } }
        """;

    [Fact]
    public async Task PhishingResistant_RefusesPasswordAndApp_WithTheMessage_AndTheLogRow()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(StrengthPolicy("Passkeys on vm1", """{ "id": "00000000-0000-0000-0000-000000000004" }"""));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        // The one-time code cannot meet it, so none is asked for; the page names the strength and the way out.
        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.False(browser.Shows("otp"));
        Assert.StartsWith("AADSTS53003: " + AccessEvaluation.MethodNotAllowedMessage, browser.Error, StringComparison.Ordinal);
        Assert.Contains("'Phishing-resistant MFA'", browser.Error, StringComparison.Ordinal);
        Assert.Contains("Sign in with a passkey, or register one at " + SecurityInfo(s), browser.Error, StringComparison.Ordinal);
        Assert.Equal(0, await s.AuthorizationCodeCountAsync());

        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("failure", row.Result);
        Assert.StartsWith("authentication_strength_unmet: Phishing-resistant MFA (policy 'Passkeys on vm1') needs fido2; the sign-in used password", row.Reason, StringComparison.Ordinal);
        Assert.Equal("Sign in with a passkey, or register one at " + SecurityInfo(s), row.Fix);
        Assert.Contains("Passkeys on vm1", row.PoliciesJson, StringComparison.Ordinal);

        // vm2 is not under the policy: the refusal above was the strength's doing.
        using var vm2 = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(vm2, host: "vm2");
        Assert.True(vm2.Shows("otp"), vm2.Error);
    }

    [Fact]
    public async Task MultifactorStrength_ByName_AsksForTheAppCode_ThenSignsIn()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(StrengthPolicy("MFA strength on vm1", """{ "displayName": "Multifactor authentication" }"""));
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.True(browser.Shows("otp"), browser.Error);

        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
        await browser.SubmitAsync(("consent", "allow"));
        var amr = await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!);
        Assert.Contains("otp", amr);
        Assert.Contains("pwd", amr);
    }

    [Fact]
    public async Task CustomStrength_ByName_FidoOnly_IsRefused_AndAnUnknownStrengthRefusesAsUnreadable()
    {
        await using var s = await IdpScenario.StartAsync();
        await using (var scope = s.Server.App.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            db.AuthenticationStrengths.Add(new AuthenticationStrengthRecord
            {
                Id = Guid.NewGuid(),
                TenantId = s.TenantId,
                DisplayName = "Keys only",
                NormalizedName = DirectoryService.NormalizeName("Keys only"),
                CombinationsJson = """["fido2"]""",
                CreatedAt = DateTimeOffset.UtcNow,
                ModifiedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }

        await s.AddPolicyAsync(StrengthPolicy("Keys on vm1", """{ "displayName": "Keys only" }"""));
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.Contains("'Keys only'", browser.Error, StringComparison.Ordinal);
        Assert.StartsWith("authentication_strength_unmet: Keys only (policy 'Keys on vm1') needs fido2", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);

        // A policy naming a strength that does not exist cannot be enforced, so it refuses (as an unreadable policy does).
        await s.AddPolicyAsync(StrengthPolicy("Typo on vm2", """{ "displayName": "Keys onyl" }""", hostCondition: """, "hosts": { "includeHosts": ["vm2"] }"""));
        using var vm2 = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(vm2, host: "vm2");
        Assert.Equal(HttpStatusCode.Forbidden, vm2.Status);
        Assert.Contains("Keys onyl", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeviceCodePage_HonoursThePhishingResistantStrength()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.EnrollTotpAsync(IdpScenario.Alice);
        await s.AddPolicyAsync(StrengthPolicy("Passkeys for the admin API", """{ "id": "00000000-0000-0000-0000-000000000004" }""", application: GatehouseApplications.AdminApi, hostCondition: string.Empty));
        var (_, userCode) = await DeviceFlowTests.StartAsync(s);

        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));

        Assert.False(browser.Shows("otp"));
        Assert.DoesNotContain("You have signed in", browser.Html, StringComparison.Ordinal);
        Assert.Contains(AccessEvaluation.MethodNotAllowedMessage, browser.Error ?? browser.Html, StringComparison.Ordinal);
        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("failure", row.Result);
        Assert.StartsWith("authentication_strength_unmet: Phishing-resistant MFA (policy 'Passkeys for the admin API')", row.Reason, StringComparison.Ordinal);
    }
}
