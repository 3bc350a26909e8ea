using System.Net;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// Conditional Access at the sign-in pages: after the password, the tenant's enforced policies for the user, host,
/// address and application ask for the one-time code when MFA would satisfy them, or end the sign-in with AADSTS53003.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class ConditionalAccessSignInTests
{
    [Fact]
    public async Task RequireMfaPolicy_UserWithoutAMethod_SetsOneUp_AndTheTokenCarriesMfa()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        // No tenant-wide switch and no enrolment started: only the policy can ask for the app to be set up.
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("totp-qr", browser.Html, StringComparison.Ordinal);
        var key = System.Text.RegularExpressions.Regex.Match(browser.Html, "id=\"totp-secret\">([^<]+)<").Groups[1].Value.Replace(" ", string.Empty, StringComparison.Ordinal);
        var secret = Totp.Base32Decode(key);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
        await browser.SubmitAsync(("consent", "allow"));

        var amr = await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!);
        Assert.Contains("pwd", amr);
        Assert.Contains("mfa", amr);
    }

    [Fact]
    public async Task RequireMfaPolicy_UserWithAMethod_EntersTheCode_AndTheTokenCarriesMfa()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.True(browser.Shows("otp"));
        Assert.DoesNotContain("totp-qr", browser.Html, StringComparison.Ordinal);

        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
        await browser.SubmitAsync(("consent", "allow"));

        var amr = await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!);
        Assert.Contains("mfa", amr);
        Assert.Contains("otp", amr);
    }

    [Fact]
    public async Task RequireMfaPolicy_ForAnotherHost_OrExcludingTheUser_DoesNotAsk()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm2", "mfa", host: "vm2"));
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1 except Alice", "mfa", excludeUser: IdpScenario.Alice));

        using var alice = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(alice);
        Assert.True(alice.Shows("consent"), alice.Error);
        Assert.DoesNotContain("totp-qr", alice.Html, StringComparison.Ordinal);

        // The same policies do ask Bob on vm1 and Alice on vm2: they are enforced, just not for that sign-in.
        using var bob = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(bob, IdpScenario.Bob);
        Assert.Contains("totp-qr", bob.Html, StringComparison.Ordinal);
        using var aliceOnVm2 = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(aliceOnVm2, host: "vm2");
        Assert.Contains("totp-qr", aliceOnVm2.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequireMfaPolicy_OnMicrosoftRemoteDesktop_AppliesToTheRdpSignIn()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync($$"""
            { "displayName": "MFA for Remote Desktop", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["{{RdpApplications.MicrosoftRemoteDesktop}}"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
            """);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.Contains("totp-qr", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BlockPolicy_IsAadsts53003_AndIssuesNoCode()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Block vm1", "block"));
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.Equal("AADSTS53003: " + AccessEvaluation.BlockedMessage, browser.Error);
        Assert.False(browser.Shows("otp"));
        Assert.False(browser.Shows("consent"));
        Assert.Null(IdpScenario.CodeFromCopyPage(browser.Html));
        Assert.Equal(0, await s.AuthorizationCodeCountAsync());

        // Another host is not blocked, so the page above was the policy's doing.
        using var vm2 = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(vm2, host: "vm2");
        Assert.True(vm2.Shows("consent"), vm2.Error);
    }

    [Fact]
    public async Task BlockPolicy_IsNotLifted_ByMfa()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        await s.AddPolicyAsync(IdpScenario.Policy("Block vm1", "block"));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.StartsWith("AADSTS53003: ", browser.Error, StringComparison.Ordinal);
        Assert.False(browser.Shows("otp"));
    }

    [Fact]
    public async Task PhishingResistantPolicy_SaysTheMethodIsNotAvailable()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Passkeys on vm1", "phishingResistantMfa"));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        // A one-time code would not satisfy it, so none is asked for.
        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.False(browser.Shows("otp"));
        Assert.StartsWith("AADSTS53003: " + AccessEvaluation.MethodNotAllowedMessage, browser.Error, StringComparison.Ordinal);
        Assert.Contains(ConditionalAccessEvaluator.DescribeControl("phishingResistantMfa"), browser.Error, StringComparison.Ordinal);
        Assert.Equal(0, await s.AuthorizationCodeCountAsync());
    }

    [Fact]
    public async Task ReportOnlyPolicies_DoNotChangeTheSignIn()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("MFA (report only)", "mfa", state: "enabledForReportingButNotEnforced"));
        await s.AddPolicyAsync(IdpScenario.Policy("Block (report only)", "block", state: "enabledForReportingButNotEnforced"));
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.True(browser.Shows("consent"), browser.Error);
        await browser.SubmitAsync(("consent", "allow"));
        Assert.NotNull(IdpScenario.CodeFromCopyPage(browser.Html));

        // Both were evaluated and would have failed: the log says so.
        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("success", row.Result);
        Assert.Contains("reportOnlyFailure", row.PoliciesJson, StringComparison.Ordinal);
        Assert.Contains("Block (report only)", row.PoliciesJson, StringComparison.Ordinal);
    }
}
