using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Admin;

/// <summary>
/// Changes that hand over what a role grants: a role holder's password or MFA (whoever sets them signs in as the
/// holder), a role-holding group's members, and a host's backend (where the stored account passwords are sent).
/// </summary>
public sealed class AdminProtectionTests
{
    private const string AdminHostPassword = "Adm1n-Host-Secret-Lynx";
    private const string UserHostPassword = "Us3r-Host-Secret-Marten";

    private static async Task<(HttpStatusCode Status, string Text)> SendAsync(TestServer server, HttpMethod method, string path, string token, object? body = null)
    {
        using var request = new HttpRequestMessage(method, "/admin/v1" + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        using var response = await server.Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task OkAsync(TestServer server, HttpMethod method, string path, string token, object? body = null)
    {
        var (status, text) = await SendAsync(server, method, path, token, body);
        Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"{method} {path}: {status}: {text}");
    }

    /// <summary>The problem's detail after checking the status.</summary>
    private static async Task<string> RefusedAsync(TestServer server, HttpStatusCode expected, HttpMethod method, string path, string token, object? body = null)
    {
        var (status, text) = await SendAsync(server, method, path, token, body);
        Assert.True(status == expected, $"{method} {path}: expected {expected}, got {status}: {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("detail").GetString()!;
    }

    private static async Task<Gatehouse.Storage.User> UserAsync(TestServer server, string upn)
    {
        await using var services = server.App.Services.CreateAsyncScope();
        return (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
    }

    private static async Task<Gatehouse.Storage.Host> HostAsync(TestServer server, string name)
    {
        await using var services = server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        return (await directory.FindHostByLabelAsync(tenant.Id, name))!;
    }

    private static async Task<string> UnprotectAsync(TestServer server, string secret)
    {
        await using var services = server.App.Services.CreateAsyncScope();
        return services.ServiceProvider.GetRequiredService<DirectoryService>().UnprotectHostSecret(secret);
    }

    [Fact]
    public async Task Contributor_CannotDisableOrEnableAnOwner_ButDisablesAUserWithoutRoles_AndAnOwnerCan()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        await RemoteCliFixture.TokenForAsync(server, "owner2@contoso.test", "Owner");
        var contributor = await RemoteCliFixture.TokenForAsync(server, "contrib@contoso.test", "Contributor");
        await RemoteCliFixture.TokenForAsync(server, "plain@contoso.test", role: null);

        var disable = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner2@contoso.test/disable", contributor);
        Assert.Contains("'Owner'", disable, StringComparison.Ordinal);
        Assert.True((await UserAsync(server, "owner2@contoso.test")).Enabled, "the refused disable changed nothing");
        await OkAsync(server, HttpMethod.Post, "/users/plain@contoso.test/disable", contributor);
        Assert.False((await UserAsync(server, "plain@contoso.test")).Enabled);

        await OkAsync(server, HttpMethod.Post, "/users/owner2@contoso.test/disable", owner);
        await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner2@contoso.test/enable", contributor);
        Assert.False((await UserAsync(server, "owner2@contoso.test")).Enabled);
        await OkAsync(server, HttpMethod.Post, "/users/owner2@contoso.test/enable", owner);
        Assert.True((await UserAsync(server, "owner2@contoso.test")).Enabled);
    }

    [Fact]
    public async Task Contributor_CannotTakeOverAnOwner_ByPasswordOrMfa_ButResetsAUserWithoutRoles()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        var contributor = await RemoteCliFixture.TokenForAsync(server, "contrib@contoso.test", "Contributor");
        await RemoteCliFixture.TokenForAsync(server, "plain@contoso.test", role: null);
        var before = await UserAsync(server, "owner@contoso.test");

        var password = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner@contoso.test/resetPassword", contributor, new { });
        var chosen = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner@contoso.test/resetPassword", contributor, new { password = "Chosen-By-Contributor-1" });
        var enroll = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner@contoso.test/mfa/enroll", contributor);
        var confirm = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner@contoso.test/mfa/confirm", contributor, new { code = "123456" });
        var mfaReset = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Delete, "/users/owner@contoso.test/mfa", contributor);
        var (plainStatus, plainText) = await SendAsync(server, HttpMethod.Post, "/users/plain@contoso.test/resetPassword", contributor, new { });

        Assert.Equal(
            "contrib@contoso.test may not reset the password of owner@contoso.test: owner@contoso.test holds 'Owner' at /, and whoever sets its password or MFA method can sign in as it, "
            + "so this needs the right to assign 'Owner' at /. Cannot assign 'Owner' at /: no role assignment grants Gatehouse/roleAssignments/write there. "
            + "Ask someone who holds 'Owner' at / or a scope above it.",
            password);
        Assert.Equal(password, chosen);
        Assert.StartsWith("contrib@contoso.test may not enroll an MFA method for owner@contoso.test: owner@contoso.test holds 'Owner' at /", enroll, StringComparison.Ordinal);
        Assert.StartsWith("contrib@contoso.test may not confirm an MFA method for owner@contoso.test: owner@contoso.test holds 'Owner' at /", confirm, StringComparison.Ordinal);
        Assert.StartsWith("contrib@contoso.test may not reset the MFA of owner@contoso.test: owner@contoso.test holds 'Owner' at /", mfaReset, StringComparison.Ordinal);
        var after = await UserAsync(server, "owner@contoso.test");
        Assert.Equal(before.PasswordHash, after.PasswordHash);
        Assert.False(after.MustChangePassword);
        Assert.Null(after.TotpSecretProtected);
        Assert.True(plainStatus == HttpStatusCode.OK, plainText);
        Assert.True((await UserAsync(server, "plain@contoso.test")).MustChangePassword);

        // An Owner may do each of them to another Owner.
        await RemoteCliFixture.TokenForAsync(server, "owner2@contoso.test", "Owner");
        await OkAsync(server, HttpMethod.Post, "/users/owner2@contoso.test/resetPassword", owner, new { });
        await OkAsync(server, HttpMethod.Post, "/users/owner2@contoso.test/mfa/enroll", owner);
        await OkAsync(server, HttpMethod.Post, "/users/owner2@contoso.test/mfa/confirm", owner, new { code = "000000" });
        await OkAsync(server, HttpMethod.Delete, "/users/owner2@contoso.test/mfa", owner);
    }

    [Fact]
    public async Task Contributor_CannotJoinOrChangeAnOwnerGroup_DirectlyOrNested()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        var contributor = await RemoteCliFixture.TokenForAsync(server, "contrib@contoso.test", "Contributor");
        await RemoteCliFixture.TokenForAsync(server, "bob@contoso.test", role: null);
        foreach (var group in new[] { "admins", "inner", "innermost", "staff" })
        {
            await OkAsync(server, HttpMethod.Post, "/groups", owner, new { name = group });
        }

        await OkAsync(server, HttpMethod.Post, "/roleAssignments", owner, new { role = "Owner", assignee = "admins", scope = "/" });
        await OkAsync(server, HttpMethod.Post, "/groups/admins/members", owner, new { member = "inner" });
        await OkAsync(server, HttpMethod.Post, "/groups/inner/members", owner, new { member = "innermost" });
        await OkAsync(server, HttpMethod.Post, "/groups/innermost/members", owner, new { member = "bob@contoso.test" });

        var direct = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/groups/admins/members", contributor, new { member = "contrib@contoso.test" });
        var nested = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/groups/innermost/members", contributor, new { member = "contrib@contoso.test" });
        var groupIn = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/groups/inner/members", contributor, new { member = "staff" });
        var removal = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Delete, "/groups/innermost/members/bob@contoso.test", contributor);
        var nestedUser = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/bob@contoso.test/resetPassword", contributor, new { });
        var (staffStatus, staffText) = await SendAsync(server, HttpMethod.Post, "/groups/staff/members", contributor, new { member = "contrib@contoso.test" });

        Assert.Equal(
            "contrib@contoso.test may not add members to admins: admins holds 'Owner' at /, and its members hold that role, so this needs the right to assign 'Owner' at /. "
            + "Cannot assign 'Owner' at /: no role assignment grants Gatehouse/roleAssignments/write there. Ask someone who holds 'Owner' at / or a scope above it.",
            direct);
        Assert.StartsWith("contrib@contoso.test may not add members to innermost: innermost holds 'Owner' at / (through group 'admins')", nested, StringComparison.Ordinal);
        Assert.StartsWith("contrib@contoso.test may not add members to inner: inner holds 'Owner' at / (through group 'admins')", groupIn, StringComparison.Ordinal);
        Assert.StartsWith("contrib@contoso.test may not remove members from innermost: innermost holds 'Owner' at / (through group 'admins')", removal, StringComparison.Ordinal);
        Assert.StartsWith("contrib@contoso.test may not reset the password of bob@contoso.test: bob@contoso.test holds 'Owner' at / (through group 'admins')", nestedUser, StringComparison.Ordinal);
        Assert.True(staffStatus == HttpStatusCode.OK, staffText);
        var (_, contribView) = await SendAsync(server, HttpMethod.Get, "/users/contrib@contoso.test", owner);
        Assert.DoesNotContain("admins", contribView, StringComparison.Ordinal);
        var (_, bobView) = await SendAsync(server, HttpMethod.Get, "/users/bob@contoso.test", owner);
        Assert.Contains("innermost", bobView, StringComparison.Ordinal);

        // An Owner may change the members of the Owner group, nested ones included.
        await OkAsync(server, HttpMethod.Post, "/groups/innermost/members", owner, new { member = "contrib@contoso.test" });
        await OkAsync(server, HttpMethod.Delete, "/groups/innermost/members/bob@contoso.test", owner);
        await OkAsync(server, HttpMethod.Post, "/groups/inner/members", owner, new { member = "staff" });
    }

    /// <summary>
    /// Virtual Machine Data Access Administrator holds no users/write, so alone it resets nobody's password. Given
    /// users/write too (here through Contributor), its assignable roles decide whose password it may reset: a user who
    /// holds only the login roles it may assign, not an Owner. That is the same check as creating the assignment.
    /// </summary>
    [Fact]
    public async Task DataAccessAdministrator_WithUsersWrite_ResetsLoginRoleHolder_NotOwner()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        await OkAsync(server, HttpMethod.Post, "/hosts", owner, new { name = "vm1", backendHost = "127.0.0.5", backendPort = 1, backendSecurity = "tls", userAccount = "rdpuser", userPassword = UserHostPassword });
        await RemoteCliFixture.TokenForAsync(server, "vmuser@contoso.test", "Virtual Machine User Login", "/hosts/vm1");
        var daaOnly = await RemoteCliFixture.TokenForAsync(server, "daa@contoso.test", "Virtual Machine Data Access Administrator");
        var contributor = await RemoteCliFixture.TokenForAsync(server, "contrib@contoso.test", "Contributor");
        var helpdesk = await RemoteCliFixture.TokenForAsync(server, "helpdesk@contoso.test", "Contributor");
        await RemoteCliFixture.TokenForAsync(server, "helpdesk@contoso.test", "Virtual Machine Data Access Administrator");

        var alone = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/vmuser@contoso.test/resetPassword", daaOnly, new { });
        var byContributor = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/vmuser@contoso.test/resetPassword", contributor, new { });
        var (loginStatus, loginText) = await SendAsync(server, HttpMethod.Post, "/users/vmuser@contoso.test/resetPassword", helpdesk, new { });
        var ownerReset = await RefusedAsync(server, HttpStatusCode.Forbidden, HttpMethod.Post, "/users/owner@contoso.test/resetPassword", helpdesk, new { });

        Assert.Contains("No role assignment grants Gatehouse/users/write at /", alone, StringComparison.Ordinal);
        Assert.Equal(
            "contrib@contoso.test may not reset the password of vmuser@contoso.test: vmuser@contoso.test holds 'Virtual Machine User Login' at /hosts/vm1, and whoever sets its password or MFA method can sign in as it, "
            + "so this needs the right to assign 'Virtual Machine User Login' at /hosts/vm1. Cannot assign 'Virtual Machine User Login' at /hosts/vm1: no role assignment grants Gatehouse/roleAssignments/write there. "
            + "Ask someone who holds 'Virtual Machine Data Access Administrator' or 'Owner' at /hosts/vm1 or a scope above it.",
            byContributor);
        Assert.True(loginStatus == HttpStatusCode.OK, loginText);
        Assert.True((await UserAsync(server, "vmuser@contoso.test")).MustChangePassword);
        Assert.Contains("helpdesk@contoso.test may not reset the password of owner@contoso.test: owner@contoso.test holds 'Owner' at /", ownerReset, StringComparison.Ordinal);
        Assert.Contains("'Virtual Machine Data Access Administrator' at / may only assign 'Virtual Machine Administrator Login' and 'Virtual Machine User Login'", ownerReset, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostUpdate_NewBackend_NeedsThePasswordsAgain()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        var contributor = await RemoteCliFixture.TokenForAsync(server, "contrib@contoso.test", "Contributor");
        await OkAsync(server, HttpMethod.Post, "/hosts", owner, new
        {
            name = "vm1",
            backendHost = "127.0.0.5",
            backendPort = 1,
            backendSecurity = "tls",
            adminAccount = "Administrator",
            adminPassword = AdminHostPassword,
            userAccount = "rdpuser",
            userPassword = UserHostPassword,
        });
        var original = await HostAsync(server, "vm1");

        var address = await RefusedAsync(server, HttpStatusCode.BadRequest, HttpMethod.Patch, "/hosts/vm1", contributor, new { backendHost = "attacker.example" });
        var port = await RefusedAsync(server, HttpStatusCode.BadRequest, HttpMethod.Patch, "/hosts/vm1", contributor, new { backendPort = 3390, userPassword = "Guess-1" });
        var security = await RefusedAsync(server, HttpStatusCode.BadRequest, HttpMethod.Patch, "/hosts/vm1", owner, new { backendSecurity = "nla", adminPassword = "Guess-2" });
        var unchanged = await HostAsync(server, "vm1");
        var (sameStatus, sameText) = await SendAsync(server, HttpMethod.Patch, "/hosts/vm1", contributor, new { backendHost = "127.0.0.5", backendPort = 1, backendSecurity = "tls", aliases = new[] { "one" } });
        var (movedStatus, movedText) = await SendAsync(server, HttpMethod.Patch, "/hosts/vm1", contributor, new
        {
            backendHost = "127.0.0.6",
            backendPort = 2,
            backendSecurity = "nla",
            adminPassword = "New-Admin-Pw-1",
            userPassword = "New-User-Pw-1",
        });
        var moved = await HostAsync(server, "vm1");

        Assert.Equal(
            "Changing the backend address, port or security of vm1 sends the stored account passwords to the new backend, so the same update must give them again: "
            + "re-enter the admin account Administrator's (--admin-password-stdin or --admin-password-file FILE; adminPassword over the API) and "
            + "the user account rdpuser's (--user-password-stdin or --user-password-file FILE; userPassword over the API) password. Nothing was changed.",
            address);
        Assert.Contains("re-enter the admin account Administrator's", port, StringComparison.Ordinal);
        Assert.DoesNotContain("rdpuser", port, StringComparison.Ordinal);
        Assert.Contains("re-enter the user account rdpuser's", security, StringComparison.Ordinal);
        Assert.DoesNotContain("Administrator", security, StringComparison.Ordinal);
        Assert.Equal(("127.0.0.5", 1, original.BackendSecurity), (unchanged.BackendHost, unchanged.BackendPort, unchanged.BackendSecurity));
        Assert.Equal(original.AdminSecretProtected, unchanged.AdminSecretProtected);
        Assert.Equal(original.UserSecretProtected, unchanged.UserSecretProtected);
        Assert.True(sameStatus == HttpStatusCode.OK, sameText);
        Assert.True(movedStatus == HttpStatusCode.OK, movedText);
        Assert.Equal(("127.0.0.6", 2, Gatehouse.Storage.BackendSecurity.Nla), (moved.BackendHost, moved.BackendPort, moved.BackendSecurity));
        Assert.Equal("New-Admin-Pw-1", await UnprotectAsync(server, moved.AdminSecretProtected!));
        Assert.Equal("New-User-Pw-1", await UnprotectAsync(server, moved.UserSecretProtected!));
    }

    [Fact]
    public async Task OpenApi_DescribesTheExtraChecks()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync("/admin/v1/openapi.json");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = json.RootElement.GetProperty("paths");
        string Description(string path, string method) => paths.GetProperty("/admin/v1" + path).GetProperty(method).GetProperty("description").GetString()!;

        Assert.Contains("must also be allowed to assign each of those roles", Description("/users/{upn}/resetPassword", "post"), StringComparison.Ordinal);
        Assert.Contains("must also be allowed to assign each of those roles", Description("/users/{upn}/mfa", "delete"), StringComparison.Ordinal);
        Assert.Contains("a group that contains it", Description("/groups/{name}/members", "post"), StringComparison.Ordinal);
        Assert.Contains("needs the passwords of every account that stays mapped", Description("/hosts/{name}", "patch"), StringComparison.Ordinal);
        Assert.DoesNotContain("must also", Description("/users", "post"), StringComparison.Ordinal);
    }
}
