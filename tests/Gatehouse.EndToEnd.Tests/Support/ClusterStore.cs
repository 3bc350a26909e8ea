using Gatehouse.Identity;
using Gatehouse.LoadGen.Gateway;
using Gatehouse.Storage;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// The cluster's shared PostgreSQL store opened in the test process, as <c>gatehouse</c>'s admin commands open it (the
/// same key ring, unsealed with the cluster's key-encryption key), with the cluster's public name: the test arranges
/// the directory here and mints what a web-account client gets from the IdP before it connects (a PoP-bound access
/// token and an <c>aad_nonce</c>), as the gateway benchmark does. The sign-ins themselves go to the node processes.
/// </summary>
internal sealed class ClusterStore : IAsyncDisposable
{
    /// <summary>The role that lets a user sign in to a host.</summary>
    public const string LoginRole = "Virtual Machine User Login";

    private readonly ServiceProvider services;

    private ClusterStore(ServiceProvider services, Tenant tenant)
    {
        this.services = services;
        Tenant = tenant;
    }

    /// <summary>The tenant the nodes' first-run setup created.</summary>
    public Tenant Tenant { get; }

    /// <summary>The tenant's initial domain (contoso.test).</summary>
    public string Domain => Tenant.Domains.Single(d => d.IsInitial).Name;

    public static async Task<ClusterStore> OpenAsync(string connectionString, ClusterSecrets secrets)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        var collection = new ServiceCollection();
        collection.AddSingleton(TimeProvider.System);
        collection.AddGatehouseStore(new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = connectionString, MigrateOnStartup = false });
        collection.AddGatehouseIdentity(new GatehouseIdentityOptions { PublicName = ClusterSecrets.PublicName });
        collection.AddDataProtection().SetApplicationName("Gatehouse").UseGatehouseKeyRing(
            new KeyRingSettings { Keys = secrets.KeyEncryptionKey, KeyFile = Path.Combine(secrets.Directory, "unused.kek"), CreateKeyFile = false },
            null);
        var provider = collection.BuildServiceProvider();
        provider.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: false);
        await using var scope = provider.CreateAsyncScope();
        var tenant = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindTenantAsync(DirectoryService.CommonTenant)
            ?? throw new InvalidOperationException("The nodes' first-run setup created no tenant.");
        return new ClusterStore(provider, tenant);
    }

    /// <summary>A host <paramref name="name"/> at 127.0.0.1:<paramref name="port"/> (TLS) that <paramref name="upn"/> may sign in to.</summary>
    public async Task<(User User, Host Host)> ArrangeAsync(string name, int port, string upn, string password)
    {
        await using var scope = services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var access = scope.ServiceProvider.GetRequiredService<AccessService>();
        var host = await directory.CreateHostAsync(Tenant.Id, name, "127.0.0.1", port, BackendSecurity.Tls, userAccountName: "stubuser", userSecret: "stub-has-no-password");
        var (user, _) = await directory.CreateUserAsync(Tenant.Id, upn, upn, password, temporary: false);
        await access.AssignRoleAsync(Tenant.Id, LoginRole, user.UserPrincipalName, $"/hosts/{name}");
        return (user, host);
    }

    /// <summary>An administrator <paramref name="upn"/> (password not temporary) with the Owner role on the whole tenant.</summary>
    public async Task<User> ArrangeAdministratorAsync(string upn, string password)
    {
        await using var scope = services.CreateAsyncScope();
        var (user, _) = await scope.ServiceProvider.GetRequiredService<DirectoryService>().CreateUserAsync(Tenant.Id, upn, upn, password, temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(Tenant.Id, "Owner", user.UserPrincipalName, "/");
        return user;
    }

    /// <summary>What FreeRDP would have from the IdP for one web-account sign-in of <paramref name="user"/> to <paramref name="host"/>.</summary>
    public async Task<SignInTicket> MintAsync(User user, Host host, PopKeyPair key)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(key);
        await using var scope = services.CreateAsyncScope();
        var token = await scope.ServiceProvider.GetRequiredService<TokenService>().IssueRdpAccessTokenAsync(new RdpTokenRequest
        {
            Tenant = Tenant,
            User = user,
            Host = host,
            Amr = ["pwd"],
            AuthTime = DateTimeOffset.UtcNow,
            ClientId = RdpClient.ClientId,
            CnfKid = key.Thumbprint,
            GrantId = Guid.NewGuid(),
        });
        var nonce = await scope.ServiceProvider.GetRequiredService<ServerChallengeService>().IssueAsync(DateTimeOffset.UtcNow);
        return new SignInTicket(token, key, nonce, host.Name);
    }

    /// <summary>The session record <paramref name="id"/> as the store has it now.</summary>
    public async Task<SessionRecord?> SessionAsync(Guid id)
    {
        await using var scope = services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Sessions.AsNoTracking().SingleOrDefaultAsync(s => s.Id == id);
    }

    /// <summary>The open session records of <paramref name="user"/> (the newest first).</summary>
    public async Task<List<SessionRecord>> OpenSessionsAsync(User user)
    {
        ArgumentNullException.ThrowIfNull(user);
        await using var scope = services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Sessions.AsNoTracking()
            .Where(s => s.UserId == user.Id && s.EndedAt == null).ToListAsync();
        return [.. rows.OrderByDescending(s => s.StartedAt)];
    }

    public async ValueTask DisposeAsync() => await services.DisposeAsync();
}
