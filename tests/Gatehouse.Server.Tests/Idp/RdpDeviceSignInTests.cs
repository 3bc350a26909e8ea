using System.Net;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The hold screen's QR sign-in on /devicelogin, over HTTP: a device code of the RDP client (issued as the gateway
/// issues it, with <see cref="DeviceCodeService.IssueAsync"/>) is an RDP sign-in to the host its scope names: the page
/// names the host, asks every time, runs Conditional Access for that host, needs a role, approves the code with the
/// sign-in's methods and logs the RDP application with the host. The gateway polls with <see cref="DeviceCodeService.PollAsync"/>.
/// </summary>
public sealed class RdpDeviceSignInTests
{
    [Fact]
    public async Task RdpDeviceCode_UserNamePasswordContinue_ApprovesIt_ThePollGetsTheUserAndPwd_AndTheLogNamesTheHost()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await SignInEngineTests.GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm1");
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.For("vm1"));
        Assert.Equal(DevicePollStatus.Pending, (await PollAsync(scenario, deviceCode)).Status);

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        Assert.Contains("vm1 (Remote Desktop)", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.Contains("Are you trying to sign in to vm1 (Remote Desktop)?", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("Gatehouse CLI", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", "allow"));

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("You have signed in to vm1 (Remote Desktop).", browser.Html, StringComparison.Ordinal);
        await AllowNextPollAsync(scenario);
        var poll = await PollAsync(scenario, deviceCode);
        Assert.Equal(DevicePollStatus.Approved, poll.Status);
        Assert.Equal(await UserIdAsync(scenario, IdpScenario.Alice), poll.Code!.UserId);
        Assert.Equal("pwd", poll.Code.Amr);
        Assert.NotNull(poll.Code.AuthTime);

        var success = Assert.Single(await scenario.SignInsAsync(), s => s.Result == "success");
        Assert.Equal(RdpClient.ClientId, success.Application);
        Assert.Equal("vm1", success.HostName);
        Assert.Equal(IdpScenario.Alice, success.UserPrincipalName);
        Assert.Contains("device code approved for vm1 (Remote Desktop) with pwd", success.Reason, StringComparison.Ordinal);
        Assert.True((await scenario.VerifyLogAsync()).Intact);
    }

    [Fact]
    public async Task RdpDeviceCode_UnderAnMfaPolicyForTheHost_AsksForTheCode_AndTheApprovalCarriesMfa()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await SignInEngineTests.GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm1");
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);
        await scenario.AddPolicyAsync(IdpScenario.Policy("MFA for vm1", "mfa"));
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.For("vm1"));

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.True(browser.Shows("otp"), browser.Html);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.Contains("Are you trying to sign in to vm1 (Remote Desktop)?", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", "allow"));

        var poll = await PollAsync(scenario, deviceCode);
        Assert.Equal(DevicePollStatus.Approved, poll.Status);
        Assert.Contains("mfa", poll.Code!.Amr!.Split(' '));
        Assert.Contains("MFA for vm1", Assert.Single(await scenario.SignInsAsync(), s => s.Result == "success").PoliciesJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RdpDeviceCode_Cancel_DeniesIt()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await SignInEngineTests.GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm1");
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.For("vm1"));

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        await browser.SubmitAsync(("consent", "deny"));

        Assert.Contains("You have not signed in to vm1 (Remote Desktop).", browser.Html, StringComparison.Ordinal);
        Assert.Equal(DevicePollStatus.Denied, (await PollAsync(scenario, deviceCode)).Status);
        var denied = Assert.Single(await scenario.SignInsAsync());
        Assert.StartsWith("device_denied: alice@contoso.test answered Cancel to 'Are you trying to sign in to vm1 (Remote Desktop)?'", denied.Reason, StringComparison.Ordinal);
        Assert.Equal(RdpClient.ClientId, denied.Application);
    }

    [Fact]
    public async Task RdpDeviceCode_UserWithoutARole_IsRefusedOnThePage_WithTheReasonInTheLog_AndTheCodeStaysUnapproved()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await SignInEngineTests.GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm2");
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.For("vm1"));

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));

        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.Contains("AADSTS50105", browser.Error, StringComparison.Ordinal);
        Assert.Contains("Your account is configured to prevent you from using this device.", browser.Error, StringComparison.Ordinal);
        var refused = Assert.Single(await scenario.SignInsAsync());
        Assert.StartsWith("no_role_assignment: alice@contoso.test on vm1", refused.Reason, StringComparison.Ordinal);
        Assert.Equal("AADSTS50105", refused.Code);
        Assert.Equal("vm1", refused.HostName);
        Assert.Contains(refused.CorrelationId, browser.Html, StringComparison.Ordinal);
        Assert.Equal(DevicePollStatus.Pending, (await PollAsync(scenario, deviceCode)).Status);
    }

    [Fact]
    public async Task RdpDeviceCode_ForAnUnknownHost_IsRefusedAfterTheCode()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.For("vm9"));

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));

        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("AADSTS500011", browser.Error, StringComparison.Ordinal);
        Assert.False(browser.Shows("username"));
        Assert.Equal(DevicePollStatus.Denied, (await PollAsync(scenario, deviceCode)).Status);
    }

    [Fact]
    public async Task RdpDeviceCode_ForAnyHost_AsksAboutRemoteDesktop_AndLogsNoHost()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await SignInEngineTests.GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm2");
        var (deviceCode, userCode) = await IssueAsync(scenario, RdpScope.AnyHostScope);

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.Contains("Are you trying to sign in to Remote Desktop?", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", "allow"));

        Assert.Equal(DevicePollStatus.Approved, (await PollAsync(scenario, deviceCode)).Status);
        var success = Assert.Single(await scenario.SignInsAsync());
        Assert.Null(success.HostName);
        Assert.Equal(RdpClient.ClientId, success.Application);
    }

    private static async Task<(string DeviceCode, string UserCode)> IssueAsync(IdpScenario scenario, string scope)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var issued = await services.ServiceProvider.GetRequiredService<DeviceCodeService>().IssueAsync(new DeviceCodeRequest
        {
            TenantId = scenario.TenantId,
            ClientId = RdpClient.ClientId,
            Scope = scope,
            ClientAddress = "198.51.100.4",
        });
        return (issued!.DeviceCode, issued.UserCode);
    }

    private static async Task<DevicePollResult> PollAsync(IdpScenario scenario, string deviceCode)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        return await services.ServiceProvider.GetRequiredService<DeviceCodeService>().PollAsync(deviceCode, RdpClient.ClientId);
    }

    /// <summary>Moves the last poll back, as if the gateway had waited the interval (no sleeping in tests).</summary>
    private static async Task AllowNextPollAsync(IdpScenario scenario)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var db = services.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        await db.DeviceCodes.ExecuteUpdateAsync(s => s.SetProperty(d => d.LastPolledAt, (DateTimeOffset?)null));
    }

    private static async Task<Guid> UserIdAsync(IdpScenario scenario, string upn)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        return (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!.Id;
    }
}
