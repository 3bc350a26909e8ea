using Gatehouse.Gateway.Tests;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// Issue 13 item 6: the gateway's host lookups as <c>gatehouse serve</c> registers them resolve a host label in the
/// tenant of the user (NLA) or of the token (web account), never in another tenant.
/// </summary>
public sealed class HostTenantTests
{
    private const string Password = "Correct-Horse-1";

    [Fact]
    public async Task NlaSignIn_LabelOfAnotherTenantsHost_IsAnUnknownHost()
    {
        await using var server = await StartAsync();
        Guid otherHost;
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var home = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
            await directory.CreateUserAsync(home.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            var other = await directory.CreateTenantAsync("Fabrikam", "fabrikam.test");
            otherHost = (await directory.CreateHostAsync(other.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1")).Id;
        }

        var entry = await SignInWithNlaAsync(server);

        Assert.Equal("failure", entry.Result);
        Assert.StartsWith("authorization: unknown_host: no host or alias 'vm1' is registered", entry.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(otherHost.ToString(), entry.Reason, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task NlaSignIn_LabelThatIsAnAliasHereAndAHostElsewhere_ResolvesTheUsersTenantsHost()
    {
        await using var server = await StartAsync();
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            // Admin operations refuse a name another tenant uses; the directory itself keeps names unique per table only.
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var home = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
            await directory.CreateUserAsync(home.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            await directory.CreateHostAsync(home.Id, "a1", "127.0.0.1", 1, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1", aliases: ["vm1"]);
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(home.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/a1");
            var other = await directory.CreateTenantAsync("Fabrikam", "fabrikam.test");
            await directory.CreateHostAsync(other.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        }

        var entry = await SignInWithNlaAsync(server);

        // Allowed for a1 (its backend is closed, so the session does not open): the grant names a1 and the role.
        Assert.Equal("a1", entry.HostName);
        Assert.Equal("Virtual Machine User Login", entry.RoleName);
        Assert.DoesNotContain("authorization:", entry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WebAccount_TokenForAHostNowRegisteredInAnotherTenant_IsRefused()
    {
        await using var server = await StartAsync();
        var hosts = server.App.Services.GetRequiredService<IWebAccountDirectory>();
        string token;
        Guid homeId;
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var home = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
            homeId = home.Id;
            var (user, _) = await directory.CreateUserAsync(home.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            var mine = await directory.CreateHostAsync(home.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Tls);
            token = await scope.ServiceProvider.GetRequiredService<TokenService>().IssueRdpAccessTokenAsync(new RdpTokenRequest
            {
                Tenant = home,
                User = user,
                Host = mine,
                Amr = ["pwd"],
                AuthTime = DateTimeOffset.UtcNow,
                ClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c",
                CnfKid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
                GrantId = Guid.NewGuid(),
            });
        }

        var before = await hosts.ValidateAccessTokenAsync(token, (await hosts.FindHostAsync("vm1", CancellationToken.None))!, DateTimeOffset.UtcNow, CancellationToken.None);
        Assert.True(before.Valid, before.FailureReason);

        // The name moves to another tenant while the token (up to an hour) is still valid.
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Hosts.Where(h => h.Name == "vm1").ExecuteDeleteAsync();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var other = await directory.CreateTenantAsync("Fabrikam", "fabrikam.test");
            await directory.CreateHostAsync(other.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Tls);
        }

        var host = (await hosts.FindHostAsync("vm1", CancellationToken.None))!;
        var after = await hosts.ValidateAccessTokenAsync(token, host, DateTimeOffset.UtcNow, CancellationToken.None);

        Assert.False(after.Valid);
        Assert.Equal($"host 'vm1' is not registered in the token's tenant {homeId}", after.FailureReason);
    }

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla" });

    /// <summary>Alice signs in with NLA to vm1 (the test client's TLS server name); returns the gateway's sign-in log entry.</summary>
    private static async Task<SignInRecord> SignInWithNlaAsync(TestServer server)
    {
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(GatehouseHost.RdpEndPoint(server.App).Port, new CredSspClientOptions { Password = Password });
        using (tcp)
        await using (tls)
        {
            Assert.True(outcome.ServerBindingOk, outcome.Stage);
        }

        SignInRecord? entry = null;
        await Until.TrueAsync(
            () =>
            {
                using var scope = server.App.Services.CreateScope();
                entry = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking().SingleOrDefault(r => r.Protocol == "nla");
                return entry is not null;
            },
            "the gateway's NLA sign-in log entry");
        return entry!;
    }
}
