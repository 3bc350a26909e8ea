using System.Security.Cryptography;
using Gatehouse.Gateway;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// A gateway apart from its identity provider verifies tokens with the keys the IdP publishes at its JWKS URL: here the
/// gateway side shares the store but not the IdP's Data Protection keys (so it cannot read the signing keys), and
/// fetches the real server's JWKS over HTTPS with its certificate pinned.
/// </summary>
public sealed class RemoteJwksTests
{
    [Fact]
    public async Task TokenFromTheIdp_VerifiesWithItsPublishedKeys_FetchedOnce()
    {
        await using var idp = await TestServer.StartAsync();
        var jwt = await IssueTokenAsync(idp);
        using var remote = Remote(idp, Pin(idp));

        var first = await ValidateApartAsync(idp, remote, jwt);
        var second = await ValidateApartAsync(idp, remote, jwt);

        Assert.True(first.IsValid, first.Error);
        Assert.True(second.IsValid, second.Error);
        Assert.Equal("alice@contoso.test", first.Upn);
        Assert.Equal(1, remote.Fetches);
    }

    [Fact]
    public async Task TokenFromAnotherIdp_IsRefused_AndUnknownKidsDoNotCauseAFetchStorm()
    {
        await using var idp = await TestServer.StartAsync();
        await using var other = await TestServer.StartAsync();
        var forged = await IssueTokenAsync(other);
        using var remote = Remote(idp, Pin(idp));

        for (var i = 0; i < 5; i++)
        {
            var outcome = await ValidateApartAsync(idp, remote, forged);
            Assert.False(outcome.IsValid);
            Assert.Contains("signing key", outcome.Error, StringComparison.Ordinal);
        }

        Assert.Equal(1, remote.Fetches);
    }

    [Fact]
    public async Task WrongCertificatePin_FetchesNothing_AndEveryTokenFailsClosed()
    {
        await using var idp = await TestServer.StartAsync();
        var jwt = await IssueTokenAsync(idp);
        using var remote = Remote(idp, new string('0', 64));

        var outcome = await ValidateApartAsync(idp, remote, jwt);

        Assert.False(outcome.IsValid);
        Assert.Equal(0, remote.Fetches);
        Assert.NotNull(remote.LastError);
    }

    [Fact]
    public void JwksUrl_MustBeHttps() =>
        Assert.Throws<ArgumentException>(() => new RemoteJwks(new HttpClient(), new Uri("http://idp.example/keys"), TimeProvider.System));

    private static RemoteJwks Remote(TestServer idp, string pin) =>
        new(GatewayRegistration.RemoteJwksClient(pin), new Uri(idp.BaseAddress, "/common/discovery/v2.0/keys"), TimeProvider.System);

    private static string Pin(TestServer idp) =>
        Convert.ToHexString(SHA256.HashData(idp.App.Services.GetRequiredService<ServerCertificate>().Certificate.RawData));

    /// <summary>Validates as a gateway node that shares the store but has its own Data Protection keys.</summary>
    private static async Task<TokenValidationOutcome> ValidateApartAsync(TestServer idp, RemoteJwks remote, string jwt)
    {
        await using var scope = idp.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var options = scope.ServiceProvider.GetRequiredService<GatehouseIdentityOptions>();
        var keys = new SigningKeyService(db, new EphemeralDataProtectionProvider(), TimeProvider.System, options, remote);
        var tokens = new TokenService(db, keys, TimeProvider.System, options);
        return await tokens.ValidateRdpAccessTokenAsync(jwt, "vm1", DateTimeOffset.UtcNow);
    }

    private static async Task<string> IssueTokenAsync(TestServer server)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tokens = scope.ServiceProvider.GetRequiredService<TokenService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        var host = await directory.FindHostByLabelAsync(tenant.Id, "vm1")
            ?? await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "admin", "a", "user", "u");
        var user = await directory.FindUserByUpnAsync("alice@contoso.test")
            ?? (await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Correct-Horse-9!", temporary: false)).User;
        return await tokens.IssueRdpAccessTokenAsync(new RdpTokenRequest
        {
            Tenant = tenant,
            User = user,
            Host = host,
            Amr = ["pwd"],
            AuthTime = DateTimeOffset.UtcNow,
            ClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c",
            CnfKid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
            GrantId = Guid.NewGuid(),
        });
    }
}
