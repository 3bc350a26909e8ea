using System.Net;
using System.Text.RegularExpressions;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The portal with the real FreeRDP → gateway → xrdp path (the shared <see cref="GatewayDesktopTests.Gateway"/>
/// fixture): an administrator kills a live session from the admin portal's Sessions page in Chromium and the client
/// disconnects; the <c>.rdp</c> file downloaded from My hosts, given to <c>xfreerdp3</c> as its first argument, reaches
/// the desktop. The user is lena@contoso.test (User Login on vm1, and Owner so she can use the admin pages), whom no
/// other test of the fixture uses.
/// </summary>
[Collection(RdpDesktopCollection.Name)]
public sealed partial class PortalDesktopTests(ITestOutputHelper output, GatewayDesktopTests.Gateway gateway) : IClassFixture<GatewayDesktopTests.Gateway>
{
    private const string Password = "Correct-Horse-9!";
    private const string Lena = "lena@contoso.test";

    [Fact]
    public async Task KillFromTheAdminPortal_EndsTheRealSession_AndTheClientDisconnects()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        await EnsureLenaAsync();
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = FreeRdpClient.Start(display.Display, [
            $"/v:vm1.gatehouse.test:{gateway.RdpPort}",
            "/sec:aad",
            $"/azure:ad:{gateway.PublicName}",
            "/cert:ignore",
            "/size:1024x768",
            "/bpp:24",
            "-clipboard",
        ]);
        output.WriteLine(client.CommandLine);
        await SignInAndPasteAsync(client, Lena);
        var session = await WaitForLiveSessionAsync(client);

        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var page = await context.NewPageAsync();
        await SignInToPortalAsync(page, "/admin/sessions");
        await page.WaitForSelectorAsync($"tr[data-session='{session.Id}']");
        await ScreenshotAsync(page, "sessions-live");
        await page.ClickAsync($"tr[data-session='{session.Id}'] button");
        await page.WaitForSelectorAsync("#killed");

        // The gateway ends the session at its kill watcher's next poll, and the client (no auto-reconnect) exits.
        await Wait.UntilAsync(() => gateway.Sessions.Find(session.Id) is null, Wait.Generous, "the killed session to leave the gateway's registry", () => client.Transcript);
        await Wait.UntilAsync(() => client.HasExited, Wait.Generous, "xfreerdp3 to disconnect after the kill", () => client.Transcript);
    }

    [Fact]
    public async Task RdpFileFromMyHosts_GivenToXfreerdp3_ReachesTheDesktop()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        await EnsureLenaAsync();
        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var page = await context.NewPageAsync();
        await SignInToPortalAsync(page, "/my");
        await page.WaitForSelectorAsync("section[data-host=vm1]");
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("section[data-host=vm1] a.button"));
        var rdpFile = Path.Combine(Path.GetTempPath(), $"gatehouse-e2e-{Guid.NewGuid():N}-vm1.rdp");
        await download.SaveAsAsync(rdpFile);
        output.WriteLine(await File.ReadAllTextAsync(rdpFile));

        try
        {
            // The file is a web-account file (enablerdsaadauth:i:1): the client asks for the sign-in as with /sec:aad.
            // The IdP's address is this test server's, not Microsoft's, so it is given as on the other tests' command line.
            await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
            await using var client = FreeRdpClient.Start(display.Display, [rdpFile, $"/azure:ad:{gateway.PublicName}", "/cert:ignore", "/size:1024x768", "-clipboard"]);
            output.WriteLine(client.CommandLine);
            await SignInAndPasteAsync(client, Lena);
            var session = await WaitForLiveSessionAsync(client);
            Assert.Equal(gateway.Xrdp!.UserAccount, session.Grant.Credentials.UserName);
            var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", "portal-rdp-file-desktop.png");
            await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);
            await Wait.UntilAsync(
                async () => await Screenshot.DistinctColoursAsync(await Screenshot.TakeAsync(display.Display, shot)) >= 2,
                Wait.Generous,
                "the xrdp desktop on the display of the client started with the .rdp file (the screenshot stays one colour)",
                () => client.Transcript);
            output.WriteLine($"Screenshot: {shot}");
        }
        finally
        {
            File.Delete(rdpFile);
        }
    }

    /// <summary>Creates lena (User Login on vm1, Owner at /) the first time a test of this class runs against the fixture.</summary>
    private async Task EnsureLenaAsync()
    {
        await using var scope = gateway.App!.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        if (await directory.FindUserByUpnAsync(Lena) is not null)
        {
            return;
        }

        var access = scope.ServiceProvider.GetRequiredService<AccessService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateUserAsync(tenant.Id, Lena, "Lena", Password, temporary: false);
        await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", Lena, "/hosts/vm1");
        await access.AssignRoleAsync(tenant.Id, "Owner", Lena, "/");
    }

    private async Task SignInToPortalAsync(IPage page, string path)
    {
        await page.GotoAsync($"https://{gateway.PublicName}{path}");
        await page.FillAsync("input[name=username]", Lena);
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=password]", Password);
        await page.ClickAsync("#next");
        await page.WaitForURLAsync($"https://{gateway.PublicName}{path}");
    }

    /// <summary>Lena's web-account sign-in; she consented to the RDP client at her first one (the tests share a fixture).</summary>
    private async Task SignInAndPasteAsync(FreeRdpClient client, string upn)
    {
        bool consented;
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Gatehouse.Storage.GatehouseDbContext>();
            var user = await db.Users.AsNoTracking().SingleAsync(u => u.UserPrincipalName == upn);
            consented = await db.Consents.AsNoTracking().AnyAsync(c => c.UserId == user.Id);
        }

        await GatewayDesktopTests.SignInAndPasteAsync(gateway, client, upn, Password, consented);
    }

    private async Task<LiveSession> WaitForLiveSessionAsync(FreeRdpClient client)
    {
        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == Lena)) is not null,
            Wait.Generous,
            $"a live session of {Lena} at the gateway",
            () => client.Transcript);
        return session!;
    }

    private async Task ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "screenshots", $"portal-{name}.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        output.WriteLine($"Screenshot: {path}");
    }
}
