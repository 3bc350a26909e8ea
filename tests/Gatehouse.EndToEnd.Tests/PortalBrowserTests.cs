using System.Net;
using Deque.AxeCore.Playwright;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The web portal in Debian's Chromium: a user signs in through the IdP's pages (authorization code + PKCE), sees the
/// hosts their role assignments allow and downloads a host's .rdp file; an administrator filters the sign-in log, opens
/// a refused sign-in and sees what the user saw and the fix, and kills a live session; the user sets up an
/// authenticator app on Security info, and the administrator reads a policy's JSON and asks the what-if form. axe-core checks the pages
/// (WCAG 2 A/AA rules). Screenshots of each page go to <c>screenshots/portal-*.png</c> beside the test assembly.
/// </summary>
public sealed class PortalBrowserTests(ITestOutputHelper output)
{
    private const string Password = "Correct-Horse-9!";

    [Fact]
    public async Task Portal_SignIn_MyHosts_RdpFile_SignInLog_KillSession_AssignRole_Accessible()
    {
        if (!Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        Peers.RequireTestHostNames();
        await using var app = await LoopbackGatehouse.StartAsync();
        var publicName = LoopbackGatehouse.PublicName(app);

        // alice may sign in to vm1 and is an Owner (which grants no sign-in); bob was refused on vm2; carol is connected to vm2.
        Guid session;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var access = scope.ServiceProvider.GetRequiredService<AccessService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
            var vm2 = await directory.CreateHostAsync(tenant.Id, "vm2", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
            await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            await directory.CreateUserAsync(tenant.Id, "bob@contoso.test", "Bob", Password, temporary: false);
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Owner", "alice@contoso.test", "/");
            await scope.ServiceProvider.GetRequiredService<SignInLogService>().AppendAsync(new SignInEntry
            {
                TenantId = tenant.Id,
                CorrelationId = "bob-vm2",
                Protocol = "rdsaad",
                Succeeded = false,
                UserPrincipalName = "bob@contoso.test",
                HostName = "vm2",
                Reason = "no_role_assignment: bob@contoso.test on vm2: no role assignment at the host, its host group or / lets them sign in",
                UserMessage = "Your account is configured to prevent you from using this device. For more info, contact your system administrator.",
                Fix = "gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee bob@contoso.test --scope /hosts/vm2",
            });
            var policy = """
                { "displayName": "Require MFA on vm2", "state": "enabled",
                  "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] }, "hosts": { "includeHosts": ["vm2"] } },
                  "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
                """;
            Assert.True(Gatehouse.Access.PolicyJson.TryParse(policy, out _, out var policyError), policyError);
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            db.Policies.Add(new PolicyRecord
            {
                Id = Guid.NewGuid(),
                TenantId = tenant.Id,
                DisplayName = "Require MFA on vm2",
                NormalizedName = DirectoryService.NormalizeName("Require MFA on vm2"),
                State = "enabled",
                Json = policy,
                CreatedAt = DateTimeOffset.UtcNow,
                ModifiedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
            session = Guid.NewGuid();
            await scope.ServiceProvider.GetRequiredService<SessionStore>().StartAsync(new SessionRecord
            {
                Id = session,
                TenantId = tenant.Id,
                UserId = Guid.NewGuid(),
                UserPrincipalName = "carol@contoso.test",
                HostId = vm2.Id,
                HostName = "vm2",
                Protocol = "rdsaad",
                Node = "node-a",
                StartedAt = DateTimeOffset.UtcNow,
            });
        }

        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var page = await context.NewPageAsync();
        var scripts = 0;
        page.Request += (_, request) => scripts += request.ResourceType == "script" ? 1 : 0;

        // Sign in: the portal sends the browser to the IdP's pages and back to /my.
        await page.GotoAsync($"https://{publicName}/");
        await page.FillAsync("input[name=username]", "alice@contoso.test");
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=password]", Password);
        await page.ClickAsync("#next");
        await page.WaitForURLAsync($"https://{publicName}/my");
        await page.WaitForSelectorAsync("section[data-host=vm1]");
        Assert.Equal(0, await page.Locator("section[data-host=vm2]").CountAsync());
        Assert.StartsWith("xfreerdp3 /v:vm1.login.gatehouse.test:", await page.InnerTextAsync("section[data-host=vm1] code.connect"), StringComparison.Ordinal);
        await ScreenshotAsync(page, "my-hosts");
        await AssertAccessibleAsync(page, "My hosts");

        // The .rdp file.
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("section[data-host=vm1] a.button"));
        Assert.Equal("vm1.rdp", download.SuggestedFilename);
        var file = await File.ReadAllTextAsync((await download.PathAsync())!);
        Assert.StartsWith("full address:s:vm1.login.gatehouse.test:", file, StringComparison.Ordinal);
        Assert.Contains("enablerdsaadauth:i:1\r\n", file, StringComparison.Ordinal);

        // Why can't bob sign in? Filter the log, open the row.
        await page.GotoAsync($"https://{publicName}/admin/signins");
        await page.FillAsync("#user", "bob@contoso.test");
        await page.SelectOptionAsync("#result", "failure");
        await page.ClickAsync("form.filters button[type=submit]");
        await page.WaitForURLAsync(url => url.Contains("result=failure", StringComparison.Ordinal));
        Assert.Equal(1, await page.Locator("#signins tbody tr").CountAsync());
        await ScreenshotAsync(page, "signin-log");
        await AssertAccessibleAsync(page, "Sign-in log");
        await page.ClickAsync("#signins tbody tr a");
        await page.WaitForSelectorAsync("#user-message");
        Assert.StartsWith("Your account is configured to prevent you from using this device.", await page.InnerTextAsync("#user-message"), StringComparison.Ordinal);
        Assert.Contains("--assignee bob@contoso.test --scope /hosts/vm2", await page.InnerTextAsync("#fix"), StringComparison.Ordinal);
        await ScreenshotAsync(page, "signin-details");

        // The chain check.
        await page.GotoAsync($"https://{publicName}/admin/signins");
        await page.ClickAsync("#verify");
        Assert.Contains("intact", await page.InnerTextAsync("#verification"), StringComparison.Ordinal);

        // Who is connected? End carol's session.
        await page.GotoAsync($"https://{publicName}/admin/sessions");
        await page.WaitForSelectorAsync($"tr[data-session='{session}']");
        await ScreenshotAsync(page, "sessions");
        await AssertAccessibleAsync(page, "Live sessions");
        await page.ClickAsync($"tr[data-session='{session}'] button");
        await page.WaitForSelectorAsync("#killed");
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var record = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Sessions.FindAsync(session);
            Assert.NotNull(record!.KillRequestedAt);
        }

        // alice, an Owner, assigns herself a role on vm2 with the form; My hosts then lists vm2.
        await page.GotoAsync($"https://{publicName}/admin/roles");
        await page.SelectOptionAsync("#role", "Virtual Machine User Login");
        await page.FillAsync("#assignee", "alice@contoso.test");
        await page.FillAsync("#scope", "/hosts/vm2");
        await page.ClickAsync("form[action*='handler=Create'] button");
        await page.WaitForSelectorAsync("#message");
        await ScreenshotAsync(page, "roles");
        await AssertAccessibleAsync(page, "Role assignments");
        await page.GotoAsync($"https://{publicName}/my");
        await page.WaitForSelectorAsync("section[data-host=vm2]");

        await page.GotoAsync($"https://{publicName}/admin/directory");
        await page.WaitForSelectorAsync("tr[data-host=vm1] td.health");
        await ScreenshotAsync(page, "directory");
        await AssertAccessibleAsync(page, "Directory");

        // Security info: alice sets up her authenticator app from the page's secret (the QR code's) and a first code.
        await page.GotoAsync($"https://{publicName}/my/security-info");
        await page.ClickAsync("#begin");
        await page.WaitForSelectorAsync("img#qr");
        var secret = Totp.Base32Decode(await page.InnerTextAsync("#secret"));
        await ScreenshotAsync(page, "security-info");
        await AssertAccessibleAsync(page, "Security info");
        await page.FillAsync("#code", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow)));
        await page.ClickAsync("#confirm");
        await page.WaitForSelectorAsync("#message");
        Assert.StartsWith("Your authenticator app is set up", await page.InnerTextAsync("#message"), StringComparison.Ordinal);
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var alice = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync("alice@contoso.test");
            Assert.NotNull(alice!.TotpConfirmedAt);
        }

        // Policies: the stored JSON, and the what-if form for a refused and an allowed sign-in.
        await page.GotoAsync($"https://{publicName}/admin/policies");
        await page.ClickAsync("tr[data-policy='Require MFA on vm2'] a");
        await page.WaitForSelectorAsync("#policy-json");
        Assert.Contains("\"displayName\": \"Require MFA on vm2\"", await page.InnerTextAsync("#policy-json"), StringComparison.Ordinal);
        await page.FillAsync("#wi-user", "bob@contoso.test");
        await page.FillAsync("#wi-host", "vm1");
        await page.ClickAsync("#whatif");
        await page.WaitForSelectorAsync("#whatif-answer");
        Assert.StartsWith("Refused: bob@contoso.test on vm1", await page.InnerTextAsync("#whatif-answer"), StringComparison.Ordinal);
        await page.FillAsync("#wi-user", "alice@contoso.test");
        await page.FillAsync("#wi-host", "vm1");
        await page.ClickAsync("#whatif");
        await page.WaitForSelectorAsync("#whatif-answer.success");
        Assert.StartsWith("Allowed: alice@contoso.test on vm1", await page.InnerTextAsync("#whatif-answer"), StringComparison.Ordinal);
        await ScreenshotAsync(page, "policies");
        await AssertAccessibleAsync(page, "Policies");
        await page.GotoAsync($"https://{publicName}/admin");
        await page.WaitForSelectorAsync("svg#chart-week");
        await ScreenshotAsync(page, "admin");
        await AssertAccessibleAsync(page, "Admin");
        Assert.Equal(0, scripts);
        await app.StopAsync();
    }

    /// <summary>axe-core's WCAG 2 A and AA rules find nothing on the page (run with the CSP bypassed for axe's own script only).</summary>
    private async Task AssertAccessibleAsync(IPage page, string name)
    {
        var results = await page.RunAxe(new Deque.AxeCore.Commons.AxeRunOptions
        {
            RunOnly = new Deque.AxeCore.Commons.RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
        });
        foreach (var violation in results.Violations)
        {
            output.WriteLine($"{name}: {violation.Id} ({violation.Impact}): {violation.Help} at {string.Join(", ", violation.Nodes.Select(n => n.Target?.ToString()))}");
        }

        Assert.True(results.Violations.Length == 0, $"{name}: {results.Violations.Length} accessibility violations: {string.Join(", ", results.Violations.Select(v => v.Id))}");
    }

    private async Task ScreenshotAsync(IPage page, string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "screenshots", $"portal-{name}.png");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        output.WriteLine($"Screenshot: {path}");
    }

}
