using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The device authorization grant of <c>gatehouse login</c> on the real host: the devicecode endpoint, /devicelogin with
/// the ordinary sign-in steps, every answer of the token endpoint's polls, the admin API token it yields (and its
/// refresh and revocation), throttling of code guessing, and the sign-in log.
/// </summary>
public sealed class DeviceFlowTests
{
    private const string Cli = "9f96595f-4eb5-4226-bc18-5d7de55f5d00";

    [Fact]
    public async Task DeviceCode_Response_IsEntraShaped_AndDiscoveryNamesTheEndpoints()
    {
        await using var scenario = await IdpScenario.StartAsync();

        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", "api://gatehouse-admin/admin offline_access"));

        Assert.Equal(HttpStatusCode.OK, status);
        var root = json.RootElement;
        var userCode = root.GetProperty("user_code").GetString()!;
        Assert.Matches("^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$", userCode);
        Assert.True(root.GetProperty("device_code").GetString()!.Length >= 43);
        Assert.Equal("https://login.gatehouse.test/devicelogin", root.GetProperty("verification_uri").GetString());
        Assert.Equal(900, root.GetProperty("expires_in").GetInt32());
        Assert.Equal(5, root.GetProperty("interval").GetInt32());
        Assert.Equal($"To sign in, use a web browser to open the page https://login.gatehouse.test/devicelogin and enter the code {userCode} to authenticate.", root.GetProperty("message").GetString());

        // Neither code is stored in the clear.
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var row = await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.SingleAsync();
            Assert.DoesNotContain(root.GetProperty("device_code").GetString()!, row.DeviceCodeHash, StringComparison.Ordinal);
            Assert.Equal(AuthorizationCodeService.HashSecret(userCode.Replace("-", string.Empty, StringComparison.Ordinal)), row.UserCodeHash);
        }

        using var discovery = JsonDocument.Parse(await scenario.Server.Client.GetStringAsync(new Uri("/common/v2.0/.well-known/openid-configuration", UriKind.Relative)));
        Assert.Equal("https://login.gatehouse.test/common/oauth2/v2.0/devicecode", discovery.RootElement.GetProperty("device_authorization_endpoint").GetString());
        Assert.Equal("https://login.gatehouse.test/common/oauth2/v2.0/revoke", discovery.RootElement.GetProperty("revocation_endpoint").GetString());
        Assert.Contains("urn:ietf:params:oauth:grant-type:device_code", discovery.RootElement.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [InlineData(IdpScenario.RdpClient, "api://gatehouse-admin/admin", "unauthorized_client")]
    [InlineData("00000000-0000-0000-0000-000000000001", "api://gatehouse-admin/admin", "unauthorized_client")]
    [InlineData(Cli, "ms-device-service://termsrv.wvd.microsoft.com/name/vm1/user_impersonation", "invalid_scope")]
    [InlineData(Cli, "api://gatehouse-admin/admin https://graph.microsoft.com/.default", "invalid_scope")]
    public async Task DeviceCode_OtherClientOrScope_IsRefused(string clientId, string scope, string error)
    {
        await using var scenario = await IdpScenario.StartAsync();

        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/devicecode", ("client_id", clientId), ("scope", scope));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(error, json.RootElement.GetProperty("error").GetString());
        Assert.Equal(0, await DeviceCodeCountAsync(scenario));
    }

    [Fact]
    public async Task Poll_BeforeTheUserAnswers_IsPending_AndTooSoonIsSlowDown()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, _) = await StartAsync(scenario);

        Assert.Equal("authorization_pending", await PollErrorAsync(scenario, deviceCode));
        Assert.Equal("slow_down", await PollErrorAsync(scenario, deviceCode));

        // The interval grew by 5 s (RFC 8628 §3.5).
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        Assert.Equal(10, (await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.SingleAsync()).IntervalSeconds);
    }

    [Fact]
    public async Task Approved_Poll_IssuesAnAdminTokenThatWorksOnTheAdminApi_Once()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (deviceCode, userCode) = await StartAsync(scenario);
        Assert.Equal("authorization_pending", await PollErrorAsync(scenario, deviceCode));

        using var browser = new SignInBrowser(scenario.Server);
        await ApproveAsync(browser, userCode);

        Assert.Contains("You have signed in to the Gatehouse CLI application on your device. You may now close this window.", browser.Html, StringComparison.Ordinal);
        await AllowNextPollAsync(scenario);
        var (status, tokens) = await PollAsync(scenario, deviceCode);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Bearer", tokens.RootElement.GetProperty("token_type").GetString());
        Assert.Equal("api://gatehouse-admin/admin", tokens.RootElement.GetProperty("scope").GetString());
        var accessToken = tokens.RootElement.GetProperty("access_token").GetString()!;
        Assert.False(string.IsNullOrEmpty(tokens.RootElement.GetProperty("refresh_token").GetString()));
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(accessToken.Split('.')[1]));
        Assert.Equal("api://gatehouse-admin", claims.RootElement.GetProperty("aud").GetString());
        Assert.Equal(Cli, claims.RootElement.GetProperty("appid").GetString());
        Assert.Equal(["pwd"], claims.RootElement.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.False(claims.RootElement.TryGetProperty("cnf", out _));
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, accessToken));

        // Single use: the same device code never yields a second token.
        await AllowNextPollAsync(scenario);
        Assert.Equal("bad_verification_code", await PollErrorAsync(scenario, deviceCode));

        var log = await scenario.SignInsAsync();
        var success = Assert.Single(log, s => s.Result == "success");
        Assert.Equal(Cli, success.Application);
        Assert.Equal(IdpScenario.Alice, success.UserPrincipalName);
        Assert.Null(success.HostName);
        Assert.Contains("device code approved for Gatehouse CLI", success.Reason, StringComparison.Ordinal);
        Assert.True((await scenario.VerifyLogAsync()).Intact);
    }

    [Fact]
    public async Task Cancel_InTheBrowser_PollGetsAccessDenied_AndTheLogSaysWhy()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, userCode) = await StartAsync(scenario);

        using var browser = new SignInBrowser(scenario.Server);
        await ApproveAsync(browser, userCode, answer: "deny");

        Assert.Contains("You have not signed in to the Gatehouse CLI application", browser.Html, StringComparison.Ordinal);
        Assert.Equal("access_denied", await PollErrorAsync(scenario, deviceCode));
        var denied = Assert.Single(await scenario.SignInsAsync(), s => s.Reason.StartsWith("device_denied", StringComparison.Ordinal));
        Assert.Equal("failure", denied.Result);
    }

    [Fact]
    public async Task WrongPassword_OnTheDevicePage_IsLoggedAndTheCodeStaysPending()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, userCode) = await StartAsync(scenario);

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode.ToLowerInvariant()));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", "Wrong-Password-1"));

        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("Your account or password is incorrect.", browser.Error, StringComparison.Ordinal);
        Assert.Equal("authorization_pending", await PollErrorAsync(scenario, deviceCode));
        var failure = Assert.Single(await scenario.SignInsAsync());
        Assert.StartsWith("wrong_password", failure.Reason, StringComparison.Ordinal);
        Assert.Equal(Cli, failure.Application);
    }

    [Fact]
    public async Task MfaPolicy_OnAllApplications_AsksForTheCode_AndTheTokenCarriesMfa()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);
        await scenario.AddPolicyAsync("""
            { "displayName": "MFA for the admin API", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["b3905e55-83d6-47f4-82f5-62c85931eddb"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
            """);
        var (deviceCode, userCode) = await StartAsync(scenario);

        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.True(browser.Shows("otp"), browser.Html);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Contains("You have signed in", browser.Html, StringComparison.Ordinal);

        var (status, tokens) = await PollAsync(scenario, deviceCode);
        Assert.Equal(HttpStatusCode.OK, status);
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(tokens.RootElement.GetProperty("access_token").GetString()!.Split('.')[1]));
        Assert.Contains("mfa", claims.RootElement.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Expired_Code_IsExpiredToken_AndIsPurged()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, userCode) = await StartAsync(scenario);
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var db = services.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var past = DateTimeOffset.UtcNow.AddMinutes(-5);
            await db.DeviceCodes.ExecuteUpdateAsync(s => s.SetProperty(d => d.ExpiresAt, past));
        }

        Assert.Equal("expired_token", await PollErrorAsync(scenario, deviceCode));

        // The page no longer finds it either.
        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", userCode));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("That code didn't work.", browser.Error, StringComparison.Ordinal);

        var purge = scenario.Server.App.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Gatehouse.Idp.IdpPurgeService>().Single();
        Assert.True(await purge.PurgeOnceAsync(CancellationToken.None) >= 1);
        Assert.Equal(0, await DeviceCodeCountAsync(scenario));
    }

    [Theory]
    [InlineData("not-a-device-code")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task Unknown_DeviceCode_IsBadVerificationCode(string deviceCode)
    {
        await using var scenario = await IdpScenario.StartAsync();
        Assert.Equal("bad_verification_code", await PollErrorAsync(scenario, deviceCode));
    }

    [Fact]
    public async Task WrongUserCodes_AreThrottled_PerAddress_EvenForTheRightCode()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, userCode) = await StartAsync(scenario);
        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        var page = browser.Html;
        for (var i = 0; i < 5; i++)
        {
            browser.Back(page);
            await browser.SubmitAsync(("otc", "BCDF-GHJK"));
            Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        }

        // A new browser from the same address is throttled too, and the right code is not even looked up.
        using var other = new SignInBrowser(scenario.Server);
        await other.OpenAsync("/devicelogin");
        await other.SubmitAsync(("otc", userCode));

        Assert.Equal(HttpStatusCode.TooManyRequests, other.Status);
        Assert.Contains("Too many wrong codes.", other.Error, StringComparison.Ordinal);
        Assert.False(other.Shows("username"));
        Assert.Equal("authorization_pending", await PollErrorAsync(scenario, deviceCode));
        var log = await scenario.SignInsAsync();
        Assert.Equal(5, log.Count(s => s.Reason.StartsWith("bad_user_code", StringComparison.Ordinal)));
        Assert.Single(log, s => s.Reason.StartsWith("user_code_throttled", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WrongUserCodes_InAConcurrentBurst_GetNoMoreThanTheAllowance()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, _) = await StartAsync(scenario);

        // 20 browsers at one address, each with the page open, post a wrong (well-formed) code at the same moment.
        var browsers = Enumerable.Range(0, 20).Select(_ => new SignInBrowser(scenario.Server)).ToList();
        try
        {
            await Task.WhenAll(browsers.Select(b => b.OpenAsync("/devicelogin")));
            await Task.WhenAll(browsers.Select(b => b.SubmitAsync(("otc", "BCDF-GHJK"))));

            Assert.Equal(5, browsers.Count(b => b.Status == HttpStatusCode.BadRequest));
            Assert.Equal(15, browsers.Count(b => b.Status == HttpStatusCode.TooManyRequests));
        }
        finally
        {
            browsers.ForEach(b => b.Dispose());
        }

        var log = await scenario.SignInsAsync();
        Assert.Equal(5, log.Count(s => s.Reason.StartsWith("bad_user_code", StringComparison.Ordinal)));
        Assert.Equal(15, log.Count(s => s.Reason.StartsWith("user_code_throttled", StringComparison.Ordinal)));
        Assert.Equal("authorization_pending", await PollErrorAsync(scenario, deviceCode));
    }

    [Fact]
    public async Task RightUserCodes_DoNotCountAgainstTheAllowance()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (_, userCode) = await StartAsync(scenario);
        using var browser = new SignInBrowser(scenario.Server);
        await browser.OpenAsync("/devicelogin");
        var page = browser.Html;
        for (var i = 0; i < 6; i++)
        {
            browser.Back(page);
            await browser.SubmitAsync(("otc", userCode));
            Assert.True(browser.Shows("username"), browser.Html);
        }

        for (var i = 0; i < 5; i++)
        {
            browser.Back(page);
            await browser.SubmitAsync(("otc", "BCDF-GHJK"));
            Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        }

        browser.Back(page);
        await browser.SubmitAsync(("otc", "BCDF-GHJK"));
        Assert.Equal(HttpStatusCode.TooManyRequests, browser.Status);
    }

    [Fact]
    public async Task PendingCodes_AreCappedPerAddress()
    {
        await using var scenario = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Limits:PendingDeviceCodesPerAddress"] = "2" });
        await StartAsync(scenario);
        await StartAsync(scenario);

        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", "api://gatehouse-admin/admin"));

        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("slow_down", json.RootElement.GetProperty("error").GetString());
        Assert.Equal(2, await DeviceCodeCountAsync(scenario));
    }

    [Fact]
    public async Task Refresh_RotatesAndIssuesANewAdminToken_AndAReusedRefreshTokenRevokesTheSignIn()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (_, refresh) = await SignInAsync(scenario);

        var (status, renewed) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh), ("scope", "api://gatehouse-admin/admin offline_access"));

        Assert.Equal(HttpStatusCode.OK, status);
        var newAccess = renewed.RootElement.GetProperty("access_token").GetString()!;
        var newRefresh = renewed.RootElement.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(refresh, newRefresh);
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, newAccess));

        // The old refresh token again: refused, and the whole grant (including the new access token) is revoked.
        var (reuseStatus, reuse) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh));
        Assert.Equal(HttpStatusCode.BadRequest, reuseStatus);
        Assert.Equal("invalid_grant", reuse.RootElement.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, newAccess));
    }

    [Theory]
    [InlineData("block", "AADSTS53003")]
    [InlineData("mfa", "AADSTS50076")]
    public async Task Refresh_RunsConditionalAccessAgain_AndARefusalIsInvalidGrant_Logged_AndEndsTheSignIn(string control, string code)
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (access, refresh) = await SignInAsync(scenario);

        // After the sign-in, the administrator puts the admin API under a policy a refresh (pwd only) cannot satisfy.
        await scenario.AddPolicyAsync($$"""
            { "displayName": "Admin API: {{control}}", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["b3905e55-83d6-47f4-82f5-62c85931eddb"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["{{control}}"] } }
            """);
        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", json.RootElement.GetProperty("error").GetString());
        Assert.StartsWith(code + ": ", json.RootElement.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.False(json.RootElement.TryGetProperty("access_token", out _));
        var refused = Assert.Single(await scenario.SignInsAsync(), s => s.Result == "failure");
        Assert.Equal(code, refused.Code);
        Assert.Equal(Cli, refused.Application);
        Assert.Equal(IdpScenario.Alice, refused.UserPrincipalName);
        Assert.Contains("Admin API: " + control, refused.PoliciesJson, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, access));
        Assert.True((await scenario.VerifyLogAsync()).Intact);
    }

    [Fact]
    public async Task Refresh_Allowed_IsLoggedAsASuccessWithPwd()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (_, refresh) = await SignInAsync(scenario);

        var (status, _) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh));

        Assert.Equal(HttpStatusCode.OK, status);
        var refreshed = Assert.Single(await scenario.SignInsAsync(), s => s.Reason.StartsWith("refreshed:", StringComparison.Ordinal));
        Assert.Equal("success", refreshed.Result);
        Assert.Equal("pwd", refreshed.Methods);
    }

    [Theory]
    [InlineData("password")]
    [InlineData("mfa")]
    [InlineData("disable")]
    public async Task PasswordSet_MfaReset_OrDisable_EndsTheCliSignIn(string change)
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (access, refresh) = await SignInAsync(scenario);
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, access));

        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
            var alice = (await directory.FindUserByUpnAsync(IdpScenario.Alice))!;
            await (change switch
            {
                "password" => directory.SetPasswordAsync(alice, "Another-Horse-22!", mustChange: false),
                "mfa" => directory.ResetTotpAsync(alice),
                _ => directory.DisableAsync(alice),
            });
            if (change == "disable")
            {
                // Enabled again at once: the old sign-in stays ended.
                await directory.EnableAsync(alice);
            }
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, access));
        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", json.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task CliRefreshToken_IsRefusedForTheRdpClient()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (_, refresh) = await SignInAsync(scenario);

        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", IdpScenario.RdpClient), ("refresh_token", refresh), ("req_cnf", "eyJraWQiOiJBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBIn0"));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", json.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Revoke_RefreshToken_MakesTheAccessTokenFailWith401_AndTheRefreshTokenDead()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (access, refresh) = await SignInAsync(scenario);
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, access));

        var (status, _) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/revoke", ("token", refresh), ("token_type_hint", "refresh_token"), ("client_id", Cli));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, access));
        var (refreshStatus, _) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", refresh));
        Assert.Equal(HttpStatusCode.BadRequest, refreshStatus);
    }

    [Fact]
    public async Task Revoke_AccessToken_MakesItFailWith401_AndUnknownTokensAre200()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantOwnerAsync(scenario, IdpScenario.Alice);
        var (access, _) = await SignInAsync(scenario);

        var (status, _) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/revoke", ("token", access), ("client_id", Cli));
        var (unknown, _) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/revoke", ("token", "no-such-token"), ("client_id", Cli));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.OK, unknown);
        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, access));
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        Assert.Equal(1, await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().RevokedTokens.CountAsync());
    }

    // ---- helpers

    /// <summary>The whole flow: a code, the browser steps, one poll; returns the access and refresh tokens.</summary>
    internal static async Task<(string Access, string Refresh)> SignInAsync(IdpScenario scenario)
    {
        var (deviceCode, userCode) = await StartAsync(scenario);
        using var browser = new SignInBrowser(scenario.Server);
        await ApproveAsync(browser, userCode);
        var (status, tokens) = await PollAsync(scenario, deviceCode);
        Assert.True(status == HttpStatusCode.OK, tokens.RootElement.ToString());
        return (tokens.RootElement.GetProperty("access_token").GetString()!, tokens.RootElement.GetProperty("refresh_token").GetString()!);
    }

    /// <summary>What a user does on /devicelogin: the code, user name, password, and the answer to the last question.</summary>
    internal static async Task ApproveAsync(SignInBrowser browser, string userCode, string user = IdpScenario.Alice, string answer = "allow")
    {
        await browser.OpenAsync("/devicelogin");
        Assert.True(browser.Shows("otc"), browser.Html);
        await browser.SubmitAsync(("otc", userCode));
        Assert.True(browser.Shows("username"), browser.Html);
        await browser.SubmitAsync(("username", user));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.Contains("Are you trying to sign in to Gatehouse CLI?", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", answer));
        Assert.Equal(HttpStatusCode.OK, browser.Status);
    }

    internal static async Task GrantOwnerAsync(IdpScenario scenario, string upn)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(scenario.TenantId, "Owner", upn, "/");
    }

    internal static async Task<(string DeviceCode, string UserCode)> StartAsync(IdpScenario scenario)
    {
        var (status, json) = await PostAsync(scenario.Server, "/common/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", "api://gatehouse-admin/admin offline_access"));
        Assert.Equal(HttpStatusCode.OK, status);
        return (json.RootElement.GetProperty("device_code").GetString()!, json.RootElement.GetProperty("user_code").GetString()!);
    }

    private static Task<(HttpStatusCode Status, JsonDocument Json)> PollAsync(IdpScenario scenario, string deviceCode) =>
        PostAsync(scenario.Server, "/common/oauth2/v2.0/token", ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", Cli), ("device_code", deviceCode));

    private static async Task<string?> PollErrorAsync(IdpScenario scenario, string deviceCode)
    {
        var (status, json) = await PollAsync(scenario, deviceCode);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        return json.RootElement.GetProperty("error").GetString();
    }

    /// <summary>Moves the last poll back, as if the client had waited the interval (no sleeping in tests).</summary>
    private static async Task AllowNextPollAsync(IdpScenario scenario)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.ExecuteUpdateAsync(s => s.SetProperty(d => d.LastPolledAt, (DateTimeOffset?)null));
    }

    private static async Task<int> DeviceCodeCountAsync(IdpScenario scenario)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        return await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.CountAsync();
    }

    private static async Task<HttpStatusCode> AdminStatusAsync(IdpScenario scenario, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/users");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await scenario.Server.Client.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task<(HttpStatusCode Status, JsonDocument Json)> PostAsync(TestServer server, string path, params (string Name, string Value)[] form)
    {
        using var content = new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));
        using var response = await server.Client.PostAsync(new Uri(path, UriKind.Relative), content);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()));
    }
}
