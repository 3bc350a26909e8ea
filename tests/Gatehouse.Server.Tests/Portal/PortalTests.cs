using System.Net;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Portal;

/// <summary>
/// The web portal over real HTTPS: sign-in through the IdP's pages (authorization code + PKCE), My hosts, the admin
/// pages with the admin operations' rights, antiforgery, escaping and the CSP.
/// </summary>
public sealed class PortalTests
{
    private const string UserLogin = "Virtual Machine User Login";

    [Fact]
    public async Task SignIn_ThroughIdpWithPkce_LandsOnMyHostsWithExactlyTheAssignedHosts()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, UserLogin, IdpScenario.Alice, "/hosts/vm1");
        using var browser = new PortalBrowser(scenario.Server);

        await browser.SignInAsync(IdpScenario.Alice);

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.EndsWith("/my", browser.Last!.RequestMessage!.RequestUri!.AbsolutePath, StringComparison.Ordinal);
        Assert.Contains("data-host=\"vm1\"", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-host=\"vm2\"", browser.Html, StringComparison.Ordinal);
        Assert.True(browser.Html.Contains("xfreerdp3 /v:vm1.login.gatehouse.test:", StringComparison.Ordinal), browser.Html);
        var session = browser.Cookies.GetAllCookies().Single(c => c.Name == "__Host-gatehouse-portal");
        Assert.True(session.HttpOnly);
        Assert.True(session.Secure);
        Assert.Contains(PortalCsp, browser.Last.Headers.GetValues("Content-Security-Policy"));

        // The sign-in log has the portal's sign-in, shown under My sign-ins.
        Assert.Contains(await scenario.SignInsAsync(), s => s.Result == "success" && s.Application == GatehousePortalClient.ClientId && s.UserPrincipalName == IdpScenario.Alice);
        Assert.Contains("authorization code issued for Gatehouse portal", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MyHosts_HostAPolicyBlocks_ShowsDiagnoseSentence()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, UserLogin, IdpScenario.Alice, "/hosts/vm1");
        await scenario.AddPolicyAsync(IdpScenario.Policy("Block vm1", "block"));
        using var browser = new PortalBrowser(scenario.Server);

        await browser.SignInAsync(IdpScenario.Alice);

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("data-host=\"vm1\"", browser.Html, StringComparison.Ordinal);
        Assert.Contains("A sign-in now would be refused:", browser.Html, StringComparison.Ordinal);
        Assert.Contains("Block vm1", System.Net.WebUtility.HtmlDecode(browser.Html), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RdpFile_ForAnAssignedHost_IsTheFileOfRdpFile_AndAnotherHostIsRefused()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, UserLogin, IdpScenario.Alice, "/hosts/vm1");
        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice);

        await browser.GetAsync("/my?handler=RdpFile&host=vm1");

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Equal("application/x-rdp", browser.Last!.Content.Headers.ContentType!.MediaType);
        Assert.Equal("vm1.rdp", browser.Last.Content.Headers.ContentDisposition!.FileNameStar ?? browser.Last.Content.Headers.ContentDisposition.FileName);
        Assert.StartsWith("full address:s:vm1.login.gatehouse.test:", browser.Html, StringComparison.Ordinal);
        Assert.Contains("enablerdsaadauth:i:1\r\n", browser.Html, StringComparison.Ordinal);
        Assert.Contains($"username:s:{IdpScenario.Alice}\r\n", browser.Html, StringComparison.Ordinal);

        await browser.GetAsync("/my?handler=RdpFile&host=vm2");
        Assert.Equal(HttpStatusCode.NotFound, browser.Status);
    }

    [Fact]
    public async Task Portal_WithoutSession_SendsToSignIn_AndSignOutEndsTheSession()
    {
        await using var scenario = await IdpScenario.StartAsync();
        using var browser = new PortalBrowser(scenario.Server);
        await browser.GetAsync("/admin/sessions");
        Assert.StartsWith("/portal/signin?returnUrl=%2Fadmin%2Fsessions", browser.Redirects[0].OriginalString, StringComparison.Ordinal);
        var authorize = browser.Redirects[1].OriginalString;
        Assert.Contains($"client_id={GatehousePortalClient.ClientId}", authorize, StringComparison.Ordinal);
        Assert.Contains("code_challenge_method=S256", authorize, StringComparison.Ordinal);
        Assert.Contains("redirect_uri=https%3A%2F%2Flogin.gatehouse.test%2Fportal%2Fsignin-callback", authorize, StringComparison.Ordinal);

        await browser.SignInAsync(IdpScenario.Bob, path: "/my");
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        await browser.SubmitAsync("/portal/signout");
        Assert.Contains("You are signed out", browser.Html, StringComparison.Ordinal);
        await browser.GetAsync("/my");
        Assert.Contains("name=\"username\"", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Authorize_PortalClientWithoutPkceOrWithForeignRedirect_IsRefused()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var redirect = Uri.EscapeDataString(GatehousePortalClient.RedirectUri("login.gatehouse.test"));
        var challenge = new string('A', 43);
        foreach (var query in new[]
        {
            $"client_id={GatehousePortalClient.ClientId}&response_type=code&scope=openid&redirect_uri={redirect}",
            $"client_id={GatehousePortalClient.ClientId}&response_type=code&scope=openid&redirect_uri={redirect}&code_challenge={challenge}&code_challenge_method=plain",
            $"client_id={GatehousePortalClient.ClientId}&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fevil.test%2Fportal%2Fsignin-callback&code_challenge={challenge}&code_challenge_method=S256",
            $"client_id={GatehousePortalClient.ClientId}&response_type=code&scope=openid%20api%3A%2F%2Fgatehouse-admin%2Fadmin&redirect_uri={redirect}&code_challenge={challenge}&code_challenge_method=S256",
        })
        {
            using var response = await scenario.Server.Client.GetAsync(new Uri("/common/oauth2/v2.0/authorize?" + query, UriKind.Relative));
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, query);
            Assert.DoesNotContain("name=\"username\"", html, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Sessions_ReaderSeesNoKillAndIsRefused403_OwnerKills()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        await AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        var session = await StartSessionAsync(scenario, "vm1");
        using var reader = new PortalBrowser(scenario.Server);
        await reader.SignInAsync(IdpScenario.Alice, path: "/admin/sessions");
        Assert.Equal(HttpStatusCode.OK, reader.Status);
        Assert.Contains($"data-session=\"{session}\"", reader.Html, StringComparison.Ordinal);
        Assert.DoesNotContain(">Kill<", reader.Html, StringComparison.Ordinal);

        // The Reader forges the Owner's form: a valid antiforgery token of their own session, the kill handler.
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/sessions");
        Assert.Contains(">Kill<", owner.Html, StringComparison.Ordinal);
        var token = reader.Forms().First(f => f.Action.Contains("signout", StringComparison.Ordinal)).Hidden.Single(h => h.Name == "__RequestVerificationToken").Value;
        await reader.PostRawAsync("/admin/sessions?handler=Kill", ("id", session.ToString()), ("__RequestVerificationToken", token));
        Assert.Equal(HttpStatusCode.Forbidden, reader.Status);
        Assert.Contains("may not do this", reader.Html, StringComparison.Ordinal);
        Assert.Null(await KillRequestedAsync(scenario, session));

        await owner.SubmitAsync("handler=Kill");
        Assert.Equal(HttpStatusCode.OK, owner.Status);
        Assert.Contains("id=\"killed\"", owner.Html, StringComparison.Ordinal);
        Assert.NotNull(await KillRequestedAsync(scenario, session));
    }

    [Fact]
    public async Task Post_WithoutAntiforgeryToken_Is400()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        var session = await StartSessionAsync(scenario, "vm1");
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/sessions");

        await owner.PostRawAsync("/admin/sessions?handler=Kill", ("id", session.ToString()));

        Assert.Equal(HttpStatusCode.BadRequest, owner.Status);
        Assert.Null(await KillRequestedAsync(scenario, session));
    }

    [Fact]
    public async Task SignInLog_FiltersOpensARowAndVerifiesTheChain_HostileNamesEscaped()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        const string Hostile = "<script>alert(1)</script>\u202Eevil@contoso.test";
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var log = services.ServiceProvider.GetRequiredService<SignInLogService>();
            await log.AppendAsync(new SignInEntry
            {
                TenantId = scenario.TenantId,
                CorrelationId = "c1",
                Protocol = "nla",
                Succeeded = false,
                UserPrincipalName = Hostile,
                HostName = "vm2",
                Reason = "no_role_assignment: " + Hostile + " on vm2",
                UserMessage = "Your account is configured to prevent you from using this device.",
                Fix = "gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee x --scope /hosts/vm2",
            });
        }

        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice, path: "/admin/signins?result=failure&host=vm2");
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.DoesNotContain("<script>", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("\u202E", browser.Html, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u202eevil@contoso.test", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("authorization code issued for Gatehouse portal", browser.Html, StringComparison.Ordinal); // result=success row filtered out
        var sequence = (await scenario.SignInsAsync()).Single(s => s.CorrelationId == "c1").Sequence;

        await browser.GetAsync($"/admin/signins/{sequence}");
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("Your account is configured to prevent you from using this device.", browser.Html, StringComparison.Ordinal);
        Assert.Contains("--scope /hosts/vm2", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>", browser.Html, StringComparison.Ordinal);

        await browser.GetAsync("/admin/signins");
        await browser.SubmitAsync("handler=Verify");
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("hash chain is intact", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Admin_DrawsSignInsPerHourAsSvg_WithoutScript()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice, path: "/admin");

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("<svg class=\"chart\" id=\"chart-day\"", browser.Html, StringComparison.Ordinal);
        Assert.Contains("<svg class=\"chart\" id=\"chart-week\"", browser.Html, StringComparison.Ordinal);
        Assert.Contains("success: 1", browser.Html, StringComparison.Ordinal); // this sign-in
        Assert.DoesNotContain("<script", browser.Html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains(PortalCsp, browser.Last!.Headers.GetValues("Content-Security-Policy"));
    }

    [Fact]
    public async Task Admin_UserWithoutReadRights_Gets403WithTheSentence()
    {
        await using var scenario = await IdpScenario.StartAsync();
        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice, path: "/admin/signins");

        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.Contains("No role assignment grants Gatehouse/signIns/read at /", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Roles_OwnerAssignsAndTheUsersMyHostsListsTheHost_ReaderIsRefused()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        await AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        using var alice = new PortalBrowser(scenario.Server);
        await alice.SignInAsync(IdpScenario.Alice, path: "/admin/roles");
        Assert.Equal(HttpStatusCode.OK, alice.Status);

        // The Reader sees no assign form; forging it (with their own session's antiforgery token) is refused by the operation.
        Assert.DoesNotContain(alice.Forms(), f => f.Action.Contains("handler=Create", StringComparison.Ordinal));
        var token = alice.Forms().First(f => f.Action.Contains("signout", StringComparison.Ordinal)).Hidden.Single(h => h.Name == "__RequestVerificationToken").Value;
        await alice.PostRawAsync("/admin/roles?handler=Create", ("role", UserLogin), ("assignee", IdpScenario.Alice), ("scope", "/hosts/vm2"), ("__RequestVerificationToken", token));
        Assert.Equal(HttpStatusCode.Forbidden, alice.Status);

        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/roles");
        await owner.SubmitAsync("handler=Create", ("role", UserLogin), ("assignee", IdpScenario.Alice), ("scope", "/hosts/vm2"));
        Assert.Equal(HttpStatusCode.OK, owner.Status);
        Assert.Contains($"Assigned '{UserLogin}' to {IdpScenario.Alice} at /hosts/vm2.", System.Net.WebUtility.HtmlDecode(owner.Html), StringComparison.Ordinal);

        await alice.GetAsync("/my");
        Assert.Contains("data-host=\"vm2\"", alice.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("data-host=\"vm1\"", alice.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Policies_OwnerSetsReportOnly()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        await scenario.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/policies");
        Assert.Contains("Require MFA on vm1", owner.Html, StringComparison.Ordinal);

        await owner.SubmitAsync("handler=State", ("name", "Require MFA on vm1"), ("state", "enabledForReportingButNotEnforced"));

        Assert.Equal(HttpStatusCode.OK, owner.Status);
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var stored = services.ServiceProvider.GetRequiredService<GatehouseDbContext>().Policies.Single();
        Assert.Equal("enabledForReportingButNotEnforced", stored.State);
    }

    private static async Task<Guid> StartSessionAsync(IdpScenario scenario, string host)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var found = (await directory.FindHostByLabelAsync(scenario.TenantId, host))!;
        var id = Guid.NewGuid();
        await services.ServiceProvider.GetRequiredService<SessionStore>().StartAsync(new SessionRecord
        {
            Id = id,
            TenantId = scenario.TenantId,
            UserId = Guid.NewGuid(),
            UserPrincipalName = "carol@contoso.test",
            HostId = found.Id,
            HostName = found.Name,
            Protocol = "rdsaad",
            Node = "node-a",
            StartedAt = DateTimeOffset.UtcNow,
        });
        return id;
    }

    private static async Task<DateTimeOffset?> KillRequestedAsync(IdpScenario scenario, Guid id)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var db = services.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        return (await db.Sessions.FindAsync(id))!.KillRequestedAt;
    }

    private static readonly string PortalCsp = Gatehouse.Portal.PortalSetup.ContentSecurityPolicy;

    internal static async Task AssignAsync(IdpScenario scenario, string role, string upn, string scope)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(scenario.TenantId, role, upn, scope);
    }
}
