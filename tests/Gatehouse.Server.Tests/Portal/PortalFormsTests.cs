using System.Net;
using System.Text.RegularExpressions;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Portal;

/// <summary>
/// The portal's Security info (authenticator app set-up and replacement) and the admin forms: users, groups, hosts'
/// health, a policy's JSON, the what-if form, and a Reader's pages drawn without change forms.
/// </summary>
public sealed partial class PortalFormsTests
{
    private const string UserLogin = "Virtual Machine User Login";

    [Fact]
    public async Task SecurityInfo_SetsUpTheAuthenticatorApp_WrongCodeRefused_RightCodeConfirms()
    {
        await using var scenario = await IdpScenario.StartAsync();
        using var alice = new PortalBrowser(scenario.Server);
        await alice.SignInAsync(IdpScenario.Alice, path: "/my/security-info");
        Assert.Equal(HttpStatusCode.OK, alice.Status);
        Assert.Contains("No authenticator app is set up yet", alice.Html, StringComparison.Ordinal);
        Assert.Contains($"href=\"https://login.gatehouse.test/{DirectoryService.CommonTenant}/mysignins/security-info\"", alice.Html, StringComparison.Ordinal);

        await alice.SubmitAsync("handler=Begin");
        Assert.Equal(HttpStatusCode.OK, alice.Status);
        Assert.Contains("<img id=\"qr\" src=\"data:image/png;base64,", alice.Html, StringComparison.Ordinal);
        var secret = Totp.Base32Decode(Secret(alice.Html));
        Assert.Equal(DirectoryService.TotpSecretBytes, secret.Length);
        var now = Totp.StepAt(DateTimeOffset.UtcNow);

        await alice.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, now + 5)));
        Assert.Contains("id=\"error\"", alice.Html, StringComparison.Ordinal);
        Assert.Null((await UserAsync(scenario, IdpScenario.Alice)).TotpConfirmedAt);

        await alice.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, now)));
        Assert.Equal(HttpStatusCode.OK, alice.Status);
        Assert.Contains("Your authenticator app is set up", alice.Html, StringComparison.Ordinal);
        Assert.NotNull((await UserAsync(scenario, IdpScenario.Alice)).TotpConfirmedAt);
        Assert.True(await VerifyTotpAsync(scenario, IdpScenario.Alice, Totp.Compute(secret, now + 1)));
    }

    [Fact]
    public async Task SecurityInfo_AUserWithAPasskey_CannotAddAnAppAfterAPasswordOnlySignIn()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var alice = await UserAsync(scenario, IdpScenario.Alice);
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var db = services.ServiceProvider.GetRequiredService<Gatehouse.Storage.GatehouseDbContext>();
            db.Passkeys.Add(new Gatehouse.Storage.Passkey { Id = Guid.NewGuid(), UserId = alice.Id, CredentialId = [9, 8, 7], PublicKey = [1], Name = "Laptop", CreatedAt = DateTimeOffset.UnixEpoch });
            await db.SaveChangesAsync();
        }

        using var browser = new PortalBrowser(scenario.Server);
        await browser.SignInAsync(IdpScenario.Alice, path: "/my/security-info"); // a password-only sign-in
        await browser.SubmitAsync("handler=Begin");
        var secret = Totp.Base32Decode(Secret(browser.Html));
        await browser.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));

        Assert.Contains("Your account has a passkey", browser.Html, StringComparison.Ordinal);
        Assert.Null((await UserAsync(scenario, IdpScenario.Alice)).TotpConfirmedAt);
    }

    [Fact]
    public async Task SecurityInfo_ReplacingWithoutRecentMfa_NeedsTheCurrentAppsCode()
    {
        await using var scenario = await IdpScenario.StartAsync();
        using var alice = new PortalBrowser(scenario.Server);
        await alice.SignInAsync(IdpScenario.Alice, path: "/my/security-info"); // a password-only sign-in
        var old = await scenario.EnrollTotpAsync(IdpScenario.Alice); // used its step now-1
        await alice.GetAsync("/my/security-info");
        Assert.Contains("Your authenticator app is set up", alice.Html, StringComparison.Ordinal);

        await alice.SubmitAsync("handler=Begin");
        Assert.Contains("name=\"currentCode\"", alice.Html, StringComparison.Ordinal);
        var secret = Totp.Base32Decode(Secret(alice.Html));
        var now = Totp.StepAt(DateTimeOffset.UtcNow);

        // Without a code of the current app (or with a wrong one), nothing changes.
        var before = (await UserAsync(scenario, IdpScenario.Alice)).TotpSecretProtected;
        await alice.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, now)), ("currentCode", null));
        Assert.Contains("id=\"error\"", alice.Html, StringComparison.Ordinal);
        await alice.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, now)), ("currentCode", Totp.Compute(old, now + 5)));
        Assert.Contains("id=\"error\"", alice.Html, StringComparison.Ordinal);
        Assert.Equal(before, (await UserAsync(scenario, IdpScenario.Alice)).TotpSecretProtected);

        await alice.SubmitAsync("handler=Confirm", ("code", Totp.Compute(secret, now)), ("currentCode", Totp.Compute(old, now)));
        Assert.Equal(HttpStatusCode.OK, alice.Status);
        Assert.Contains("Your authenticator app is replaced", alice.Html, StringComparison.Ordinal);
        Assert.True(await VerifyTotpAsync(scenario, IdpScenario.Alice, Totp.Compute(secret, now + 1)));
    }

    [Fact]
    public async Task Directory_OwnerCreatesAndDisablesAUser_ThroughTheForms()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/directory");

        await owner.SubmitAsync("handler=CreateUser", ("upn", "dora@contoso.test"), ("displayName", "Dora"), ("password", ""));
        Assert.Equal(HttpStatusCode.OK, owner.Status);
        Assert.Contains("Created dora@contoso.test.", owner.Html, StringComparison.Ordinal);
        Assert.Contains("id=\"temporary-password\"", owner.Html, StringComparison.Ordinal);
        Assert.Contains("data-user=\"dora@contoso.test\"", owner.Html, StringComparison.Ordinal);
        Assert.True((await UserAsync(scenario, "dora@contoso.test")).Enabled);

        await owner.SubmitAsync("handler=Enable", ("upn", "dora@contoso.test"), ("enabled", "false"));
        Assert.Equal(HttpStatusCode.OK, owner.Status);
        Assert.Contains("dora@contoso.test is disabled.", owner.Html, StringComparison.Ordinal);
        Assert.False((await UserAsync(scenario, "dora@contoso.test")).Enabled);

        await owner.SubmitAsync("handler=Enable", ("upn", "dora@contoso.test"), ("enabled", "true"));
        Assert.True((await UserAsync(scenario, "dora@contoso.test")).Enabled);
    }

    [Fact]
    public async Task Directory_OwnerCreatesAGroup_AddsAndRemovesAMember()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin/directory");

        await owner.SubmitAsync("handler=CreateGroup", ("name", "Operators"));
        Assert.Contains("Created the group Operators.", owner.Html, StringComparison.Ordinal);
        await owner.SubmitAsync("handler=AddMember", ("group", "Operators"), ("member", IdpScenario.Alice));
        Assert.Equal(HttpStatusCode.OK, owner.Status);
        Assert.Contains($"Added {IdpScenario.Alice} to Operators.", owner.Html, StringComparison.Ordinal);
        Assert.Equal([IdpScenario.Alice], await MembersAsync(scenario, "Operators"));
        Assert.Contains($"aria-label=\"Remove {IdpScenario.Alice} from Operators\"", owner.Html, StringComparison.Ordinal);

        await owner.SubmitAsync("handler=RemoveMember", ("group", "Operators"), ("member", IdpScenario.Alice));
        Assert.Contains($"Removed {IdpScenario.Alice} from Operators.", owner.Html, StringComparison.Ordinal);
        Assert.Empty(await MembersAsync(scenario, "Operators"));
    }

    [Fact]
    public async Task Directory_HostsShowTheAgentsHealth()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var db = services.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var vm1 = await db.Hosts.SingleAsync(h => h.TenantId == scenario.TenantId && h.Name == "vm1");
            db.HostAgents.Add(new HostAgent
            {
                Id = Guid.NewGuid(),
                TenantId = scenario.TenantId,
                HostId = vm1.Id,
                PublicKey = "test",
                JoinedAt = DateTimeOffset.UtcNow,
                LastSeenAt = DateTimeOffset.UtcNow,
                RdpPort = 3389,
                RdpListening = false,
                HealthIntervalSeconds = 3600,
                HealthAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }

        using var reader = new PortalBrowser(scenario.Server);
        await reader.SignInAsync(IdpScenario.Alice, path: "/admin/directory");

        Assert.Equal(HttpStatusCode.OK, reader.Status);
        Assert.Contains("<th scope=\"col\">Health</th>", reader.Html, StringComparison.Ordinal);
        Assert.Contains("class=\"health health-unhealthy\">unhealthy: The RDP service does not answer on port 3389", reader.Html, StringComparison.Ordinal);
        Assert.Contains("class=\"health health-not-enrolled\">not enrolled: vm2 has no agent", reader.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Policies_ShowsTheStoredJsonPrettyPrintedAndEscaped()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        const string Hostile = "<b>x</b>\u202Eevil";
        await scenario.AddPolicyAsync(IdpScenario.Policy(Hostile, "mfa"));
        using var reader = new PortalBrowser(scenario.Server);
        await reader.SignInAsync(IdpScenario.Alice, path: "/admin/policies");
        Assert.Contains("handler=Json&amp;name=%3Cb%3Ex%3C%2Fb%3E%E2%80%AEevil", reader.Html, StringComparison.Ordinal);

        await reader.GetAsync("/admin/policies?handler=Json&name=" + Uri.EscapeDataString(Hostile));

        Assert.Equal(HttpStatusCode.OK, reader.Status);
        Assert.DoesNotContain("<b>", reader.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("\u202E", reader.Html, StringComparison.Ordinal);
        var json = Regex.Match(reader.Html, "<pre class=\"json\" id=\"policy-json\"[^>]*>(.*?)</pre>", RegexOptions.Singleline);
        Assert.True(json.Success, reader.Html);
        var shown = WebUtility.HtmlDecode(json.Groups[1].Value);
        Assert.StartsWith("{\n  \"displayName\": \"\\u003Cb\\u003Ex\\u003C/b\\u003E\\u202Eevil\",\n  \"state\": \"enabled\",", shown, StringComparison.Ordinal);
        Assert.Contains("\"builtInControls\": [\n      \"mfa\"\n    ]", shown, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Policies_WhatIf_AnswersAllowedAndRefused()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        await PortalTests.AssignAsync(scenario, UserLogin, IdpScenario.Bob, "/hosts/vm1");
        await PortalTests.AssignAsync(scenario, UserLogin, IdpScenario.Bob, "/hosts/vm2");
        await scenario.AddPolicyAsync(IdpScenario.Policy("Block vm2", "block", host: "vm2"));
        using var reader = new PortalBrowser(scenario.Server);
        await reader.SignInAsync(IdpScenario.Alice, path: "/admin/policies");
        Assert.Contains("id=\"whatif-form\"", reader.Html, StringComparison.Ordinal);

        await reader.GetAsync($"/admin/policies?handler=WhatIf&user={Uri.EscapeDataString(IdpScenario.Bob)}&host=vm1&ip=203.0.113.7&mfa=true");
        Assert.Equal(HttpStatusCode.OK, reader.Status);
        Assert.Contains($"<h3 id=\"whatif-answer\" class=\"success\">Allowed: {IdpScenario.Bob} on vm1</h3>", reader.Html, StringComparison.Ordinal);
        Assert.Contains("value=\"203.0.113.7\"", reader.Html, StringComparison.Ordinal);

        await reader.GetAsync($"/admin/policies?handler=WhatIf&user={Uri.EscapeDataString(IdpScenario.Bob)}&host=vm2");
        Assert.Equal(HttpStatusCode.OK, reader.Status);
        Assert.Contains($"<h3 id=\"whatif-answer\" class=\"failure\">Refused: {IdpScenario.Bob} on vm2</h3>", reader.Html, StringComparison.Ordinal);
        var reason = Regex.Match(reader.Html, "<dd id=\"whatif-reason\">(.*?)</dd>", RegexOptions.Singleline);
        Assert.True(reason.Success, reader.Html);
        Assert.Contains("Block vm2", WebUtility.HtmlDecode(reason.Groups[1].Value), StringComparison.Ordinal);

        // A user without policies/read gets the operation's 403, as from the CLI.
        using var bob = new PortalBrowser(scenario.Server);
        await bob.SignInAsync(IdpScenario.Bob, path: "/admin/policies?handler=WhatIf&user=bob%40contoso.test&host=vm1");
        Assert.Equal(HttpStatusCode.Forbidden, bob.Status);
    }

    [Fact]
    public async Task ReaderPages_HaveNoChangeForms_OwnerPagesHaveThem()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await PortalTests.AssignAsync(scenario, "Reader", IdpScenario.Alice, "/");
        await PortalTests.AssignAsync(scenario, "Owner", IdpScenario.Bob, "/");
        await scenario.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        using var reader = new PortalBrowser(scenario.Server);
        await reader.SignInAsync(IdpScenario.Alice, path: "/admin");
        using var owner = new PortalBrowser(scenario.Server);
        await owner.SignInAsync(IdpScenario.Bob, path: "/admin");
        await using (var services = scenario.Server.App.Services.CreateAsyncScope())
        {
            var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
            var group = await directory.CreateGroupAsync(scenario.TenantId, "Operators");
            await directory.AddGroupMemberAsync(group.Id, (await directory.FindUserByUpnAsync(IdpScenario.Alice))!.Id);
        }

        foreach (var page in new[] { "/admin/directory", "/admin/roles", "/admin/policies" })
        {
            await reader.GetAsync(page);
            Assert.Equal(HttpStatusCode.OK, reader.Status);
            Assert.Equal(["/portal/signout"], PostForms(reader.Html));
            Assert.DoesNotContain("<button", reader.Html.Replace("<button type=\"submit\" class=\"link\">Sign out</button>", string.Empty, StringComparison.Ordinal)
                .Replace("<button type=\"submit\" id=\"whatif\">", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);

            await owner.GetAsync(page);
            Assert.True(PostForms(owner.Html).Count > 1, page);
        }
    }

    /// <summary>The actions of the page's POST forms.</summary>
    private static List<string> PostForms(string html) =>
        [.. PostForm().Matches(html).Select(m => WebUtility.HtmlDecode(m.Groups[1].Value))];

    private static string Secret(string html)
    {
        var match = Regex.Match(html, "<code id=\"secret\">([A-Z2-7]+)</code>");
        Assert.True(match.Success, html);
        return match.Groups[1].Value;
    }

    private static async Task<User> UserAsync(IdpScenario scenario, string upn)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        return (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
    }

    private static async Task<bool> VerifyTotpAsync(IdpScenario scenario, string upn, string code)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var user = (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
        return await services.ServiceProvider.GetRequiredService<SignInService>().VerifyTotpAsync(user, code, DateTimeOffset.UtcNow);
    }

    private static async Task<List<string>> MembersAsync(IdpScenario scenario, string group)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var db = services.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var id = (await db.Groups.SingleAsync(g => g.TenantId == scenario.TenantId && g.Name == group)).Id;
        return await db.GroupMembers.Where(m => m.GroupId == id && m.UserId != null)
            .Join(db.Users, m => m.UserId, u => u.Id, (_, u) => u.UserPrincipalName).ToListAsync();
    }

    [GeneratedRegex("<form method=\"post\"[^>]*action=\"([^\"]*)\"")]
    private static partial Regex PostForm();
}
