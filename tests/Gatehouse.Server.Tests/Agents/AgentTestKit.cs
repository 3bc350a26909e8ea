using System.Collections.Concurrent;
using System.Security.Cryptography;
using Gatehouse.Admin.Operations;
using Gatehouse.Agents;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>What the agent tests share: a tenant with vm1 and alice (User Login), an enrolled and joined agent, fakes for the host.</summary>
internal static class AgentTestKit
{
    public const string RdpPin = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    /// <summary>The common tenant, host vm1 (an agent will own it), alice with Virtual Machine User Login on it.</summary>
    public static async Task<(Guid TenantId, Guid HostId, Guid UserId)> SeedAsync(TestServer server, bool createHost = true)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        if (!createHost)
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var existing = db.Hosts.Single(h => h.Name == "vm1");
            var alice = db.Users.Single(u => u.UserPrincipalName == "alice@contoso.test");
            return (tenant.Id, existing.Id, alice.Id);
        }

        var host = await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Alice-Passphrase-1", temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
        return (tenant.Id, host.Id, user.Id);
    }

    /// <summary>Enrols vm1 and joins an agent with a fresh state directory.</summary>
    public static async Task<(AgentState State, AgentConfig Config)> JoinAsync(TestServer server, Guid tenantId, string host = "vm1")
    {
        string token;
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var operations = new AdminOperations(AdminCaller.Operator(tenantId), scope.ServiceProvider, () => new GatewayInfo("login.gatehouse.test", 0, CertificateSha256(server)));
            token = (await operations.EnrollHostAgentAsync(host, new HostEnrollRequest(600), CancellationToken.None)).Token;
        }

        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);
        return (state, config);
    }

    public static string CertificateSha256(TestServer server) =>
        Convert.ToHexString(server.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHash(HashAlgorithmName.SHA256));

    internal sealed class FakeProbe(RdpProbeResult? result = null) : IRdpProbe
    {
        public Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken) => Task.FromResult(result ?? new RdpProbeResult(true, RdpPin, null));
    }

    /// <summary>Accounts in memory, as the agent would leave them on the host: a password works while it is the account's current one and the account is enabled.</summary>
    internal sealed class FakeAccounts : IHostAccounts
    {
        public ConcurrentDictionary<string, string> Passwords { get; } = new();

        public ConcurrentDictionary<string, IReadOnlyCollection<string>> Groups { get; } = new();

        public ConcurrentDictionary<string, bool> Enabled { get; } = new();

        /// <summary>Every password set, in order (account, password).</summary>
        public ConcurrentQueue<(string Name, string Password)> History { get; } = new();

        /// <summary>True when <paramref name="password"/> would log on to <paramref name="name"/> now.</summary>
        public bool Works(string name, string password) =>
            Passwords.TryGetValue(name, out var current) && current == password && Enabled.GetValueOrDefault(name);

        public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken) => Task.FromResult(Passwords.ContainsKey(name) || name == "root");

        public Task EnsureAsync(string name, string comment, CancellationToken cancellationToken)
        {
            Passwords.TryAdd(name, "!");
            return Task.CompletedTask;
        }

        public Task SetGroupsAsync(string name, IReadOnlyCollection<string> wanted, IReadOnlyCollection<string> managed, CancellationToken cancellationToken)
        {
            Groups[name] = [.. wanted];
            return Task.CompletedTask;
        }

        public Task SetPasswordAsync(string name, string password, bool enable, CancellationToken cancellationToken)
        {
            Passwords[name] = password;
            if (enable)
            {
                Enabled[name] = true;
            }

            History.Enqueue((name, password));
            return Task.CompletedTask;
        }

        public Task LockAsync(string name, CancellationToken cancellationToken)
        {
            Enabled[name] = false;
            return Task.CompletedTask;
        }
    }
}
