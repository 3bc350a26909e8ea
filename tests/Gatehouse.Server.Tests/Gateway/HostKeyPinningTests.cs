using System.Net;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Nla;
using Gatehouse.Identity;
using Gatehouse.Identity.Gateway;
using Gatehouse.Protocol.X224;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using FakeHost = Gatehouse.Server.Tests.Cli.HostTestCommandTests.FakeRdpHost;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// The gateway's host legs as <c>gatehouse serve</c> builds them from the store: the TLS sign-in's leg
/// (<see cref="INlaDirectory.FindHostLegAsync"/>) and the grant of an allowed sign-in (NLA and web account) carry the
/// host's trusted key; a host registered without one (directly in the store, as the end-to-end fixtures do, or before
/// keys were recorded) has the key of its first leg recorded, and a leg that meets another key afterwards is refused.
/// </summary>
public sealed class HostKeyPinningTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task HostWithoutAKey_FirstLegTrustsIt_TheSameKeyConnects_AnotherIsRefused()
    {
        await using var server = await StartAsync();
        await using var fake = FakeHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        await CreateHostAsync(server, fake.Port);
        var legs = server.App.Services.GetRequiredService<INlaDirectory>();

        var first = await BackendConnector.ConnectAsync((await legs.FindHostLegAsync("vm1", CancellationToken.None)).Leg!.Backend, Timeout, CancellationToken.None);
        Assert.True(first.Connected, first.Reason);
        await first.Connection!.DisposeAsync();
        var (pin, by) = await PinAsync(server);
        Assert.Equal(fake.HostKey, pin);
        Assert.Equal("connection", by);

        var again = await BackendConnector.ConnectAsync((await legs.FindHostLegAsync("vm1", CancellationToken.None)).Leg!.Backend, Timeout, CancellationToken.None);
        Assert.True(again.Connected, again.Reason);
        await again.Connection!.DisposeAsync();

        fake.ChangeKey();
        var refused = await BackendConnector.ConnectAsync((await legs.FindHostLegAsync("vm1", CancellationToken.None)).Leg!.Backend, Timeout, CancellationToken.None);
        Assert.False(refused.Connected);
        Assert.StartsWith("backend_certificate_changed:", refused.Reason, StringComparison.Ordinal);
        Assert.Equal((pin, "connection"), await PinAsync(server));
    }

    [Fact]
    public async Task AllowedSignIn_GrantsAHostLegPinnedToTheTrustedKey()
    {
        await using var server = await StartAsync();
        await using var fake = FakeHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        var (hostId, userId, tenantId) = await CreateHostAsync(server, fake.Port);
        var hostKeys = server.App.Services.GetRequiredService<HostKeyTrust>();

        var before = await GrantAsync(server, hostId, userId, tenantId, hostKeys);
        Assert.Null(before.CertificatePin);
        var first = await BackendConnector.ConnectAsync(before, Timeout, CancellationToken.None);
        Assert.True(first.Connected, first.Reason);
        Assert.True(first.Connection!.TrustedOnFirstUse);
        await first.Connection.DisposeAsync();

        var after = await GrantAsync(server, hostId, userId, tenantId, hostKeys);
        Assert.Equal(fake.HostKey, after.CertificatePin);
        Assert.Null(after.FirstUse);
        fake.ChangeKey();
        var refused = await BackendConnector.ConnectAsync(after, Timeout, CancellationToken.None);
        Assert.Equal(BackendFailure.CertificateChanged, refused.Failure);
    }

    [Fact]
    public async Task HostMovedWhileItsFirstKeyWasRead_RecordsNothing_AndTheLegIsRefused()
    {
        await using var server = await StartAsync();
        await using var fake = FakeHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        await CreateHostAsync(server, fake.Port);
        var leg = (await server.App.Services.GetRequiredService<INlaDirectory>().FindHostLegAsync("vm1", CancellationToken.None)).Leg!;
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            await db.Hosts.Where(h => h.Name == "vm1").ExecuteUpdateAsync(u => u.SetProperty(h => h.BackendPort, 1));
        }

        var result = await BackendConnector.ConnectAsync(leg.Backend, Timeout, CancellationToken.None);

        Assert.Equal(BackendFailure.CertificateNotTrusted, result.Failure);
        Assert.Equal((null, null), await PinAsync(server));
    }

    private static Task<TestServer> StartAsync() =>
        TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla, Tls" });

    private static async Task<(Guid HostId, Guid UserId, Guid TenantId)> CreateHostAsync(TestServer server, int port)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", port, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Alice-Passphrase-1", temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
        return (host.Id, user.Id, tenant.Id);
    }

    private static async Task<BackendTarget> GrantAsync(TestServer server, Guid hostId, Guid userId, Guid tenantId, HostKeyTrust hostKeys)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var now = DateTimeOffset.UtcNow;
        var decision = await scope.ServiceProvider.GetRequiredService<AccessService>().AuthorizeSignInAsync(new AccessRequest
        {
            UserId = userId,
            HostId = hostId,
            ClientAddress = IPAddress.Loopback,
            AuthenticationMethods = ["pwd"],
            AuthenticatedAt = now,
        });
        var authorization = AccessSignInAuthorizer.ToAuthorization(decision, tenantId, ["pwd"], now, hostKeys);
        return Assert.IsType<Gatehouse.Gateway.Sessions.SessionGrant>(authorization.Grant, exactMatch: false).Backend;
    }

    private static async Task<(string? Pin, string? By)> PinAsync(TestServer server)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var host = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Hosts.AsNoTracking().SingleAsync(h => h.Name == "vm1");
        return (host.CertificatePin, host.CertificatePinnedBy);
    }
}
