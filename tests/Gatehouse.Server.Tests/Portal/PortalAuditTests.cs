using System.Net;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Portal;

/// <summary><c>/admin/audit</c>: the audit's findings in the portal, for a Reader; refused without read rights.</summary>
public sealed class PortalAuditTests
{
    [Fact]
    public async Task Audit_ReaderSeesEachFindingWithItsFix_NoRoleIsRefused()
    {
        await using var scenario = await IdpScenario.StartAsync();
        using (var refusedBrowser = new PortalBrowser(scenario.Server))
        {
            await refusedBrowser.SignInAsync(IdpScenario.Alice, path: "/admin/audit");
            Assert.Equal(HttpStatusCode.Forbidden, refusedBrowser.Status);
        }

        await PortalTests.AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice, path: "/admin/audit");

        // The scenario's hosts have stored accounts and no agent.
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains("<tr data-finding=\"host-not-enrolled\">", browser.Html, StringComparison.Ordinal);
        Assert.Contains("<code>gatehouse host enroll vm1, then run the command it prints on the host</code>", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script", browser.Html, StringComparison.OrdinalIgnoreCase);
    }
}
