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

    private static readonly string PortalCsp = Gatehouse.Portal.PortalSetup.ContentSecurityPolicy;

    internal static async Task AssignAsync(IdpScenario scenario, string role, string upn, string scope)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(scenario.TenantId, role, upn, scope);
    }
}
