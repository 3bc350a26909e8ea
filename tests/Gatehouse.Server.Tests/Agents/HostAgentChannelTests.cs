using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Gatehouse.Access;
using Gatehouse.Admin.Operations;
using Gatehouse.Agents;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// The agent channel against the real host (Kestrel, HTTPS on loopback): enrol, join with a pinned server certificate,
/// authenticate with single-use assertions, and answer the gateway's logon request through the real HTTP channel.
/// </summary>
public sealed class HostAgentChannelTests
{
    private const string RdpPin = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    [Fact]
    public async Task JoinedAgent_AnswersTheGatewaysLogon_WithItsOwnAccountAndAOneLogonPassword_ThenRotates()
    {
        // Arrange: a host with a stored mapped account, alice with User Login, an agent joined and running.
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, userId) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.KeyPath));
        }

        var (pin, pinnedBy) = await PinAsync(server, hostId);
        Assert.Equal((RdpPin, "agent join"), (pin, pinnedBy));
        var accounts = new FakeAccounts();
        using var key = state.LoadKey();
        using var http = new HttpClient(AgentClient.PinnedHandler(config.ServerCertificateSha256));
        using var agent = new HostAgentRunner(state, config, key, new AgentClient(http, TimeProvider.System), accounts, new FakeProbe(), TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = agent.RunAsync(stop.Token);
        await Until.TrueAsync(() => agent.HealthReports > 0, "the agent's first health report");

        // Act: the gateway's one authorisation call for every sign-in method.
        var authorizer = server.App.Services.GetRequiredService<ISignInAuthorizer>();
        var outcome = await authorizer.AuthorizeAsync(
            new GatewayConnection("c1", IPAddress.Loopback, DateTimeOffset.UtcNow),
            new SignInSubject { TenantId = tenantId, UserId = userId, HostId = hostId, Methods = ["pwd"], AuthenticatedAt = DateTimeOffset.UtcNow },
            CancellationToken.None);

        // Assert: alice's own account (not the stored rdpuser), the password the agent set, no admin group.
        Assert.True(outcome.Allowed, outcome.Reason);
        var grant = outcome.Grant!;
        Assert.Equal("alice", grant.Credentials.UserName);
        Assert.Equal("alice", grant.Backend.CookieUser);
        Assert.Equal(accounts.Passwords["alice"], grant.Credentials.Password);
        Assert.Empty(accounts.Groups["alice"]);
        Assert.Equal("alice", state.LoadAccounts()["alice@contoso.test"]);

        // The host accepted the logon: the agent rotates the password at once.
        var injected = grant.Credentials.Password;
        grant.HostLogonAccepted!.Invoke();
        await Until.TrueAsync(() => accounts.Passwords["alice"] != injected, "the password rotated after the logon");
        Assert.Equal(0, agent.PendingRotations);

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task SilentOrLateAgent_FailsClosed_WithAgentUnavailable_WithinTheTimeout()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, _) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);
        var time = new ManualTime();
        var broker = new AgentBroker(server.App.Services.GetRequiredService<IServiceScopeFactory>(), time, NullLogger<AgentBroker>.Instance);

        // The agent joined but does not run: the request waits for the whole timeout, then fails closed.
        var waiting = broker.RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        await Until.TrueAsync(() => broker.PendingLogons == 1, "the logon is queued for the agent");

        // Pending comes before the broker arms its timeout on the manual clock: the clock moves once the timer exists.
        await Until.TrueAsync(() => time.Armed(TimeSpan.FromSeconds(15)) == 1, "the logon's timeout armed");
        time.Advance(TimeSpan.FromSeconds(14));
        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        var late = await waiting;
        Assert.Null(late.Account);
        Assert.Equal("agent_unavailable: the agent on vm1 did not answer within 15 s", late.Reason);

        // Silent for more than three health intervals: refused at once, without waiting.
        time.Advance(TimeSpan.FromSeconds(91));
        var silent = await broker.RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        Assert.StartsWith("agent_unavailable: the agent on vm1 has been silent since", silent.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnrolmentToken_IsSingleUse_AndExpires()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, _, _) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);

        var again = await Assert.ThrowsAsync<AgentChannelException>(() => HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None));
        Assert.Equal(401, again.Status);
        Assert.Contains("already used or expired", again.Message, StringComparison.Ordinal);

        // Expiry, on the registry's clock.
        var time = new ManualTime();
        await using var scope = server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var registry = new AgentRegistry(db, time);
        var host = await db.Hosts.SingleAsync(h => h.Name == "vm1");
        var issued = await registry.IssueAsync(host, TimeSpan.FromMinutes(10), CertificateSha256(server), "test", CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(10));
        var expired = await Assert.ThrowsAsync<AgentRefusedException>(() => registry.JoinAsync(JoinRequest(issued.Token), "aud", CancellationToken.None));
        Assert.Contains("already used or expired", expired.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => registry.IssueAsync(host, TimeSpan.FromMinutes(61), CertificateSha256(server), "test", CancellationToken.None));
    }

    [Fact]
    public async Task EnrolmentToken_RacingJoins_ExactlyOneWins()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, _, _) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var scopes = server.App.Services.GetRequiredService<IServiceScopeFactory>();

        async Task<bool> JoinAsync()
        {
            await using var scope = scopes.CreateAsyncScope();
            try
            {
                await scope.ServiceProvider.GetRequiredService<AgentRegistry>().JoinAsync(JoinRequest(token), "aud", CancellationToken.None);
                return true;
            }
            catch (AgentRefusedException)
            {
                return false;
            }
        }

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(JoinAsync)));
        Assert.Equal(1, results.Count(r => r));
        await using var check = scopes.CreateAsyncScope();
        Assert.Equal(1, await check.ServiceProvider.GetRequiredService<GatehouseDbContext>().HostAgents.CountAsync());
    }

    [Fact]
    public async Task Assertions_ForgedReplayedExpiredOrForAnotherAudience_AreRefused()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, _, _) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);
        using var key = state.LoadKey();
        using var forger = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;

        var valid = AgentAssertion.Create(key, config.AgentId, config.Audience, now);
        Assert.Equal(HttpStatusCode.OK, (await HealthAsync(server, valid)).Status);
        var replay = await HealthAsync(server, valid);
        Assert.Equal(HttpStatusCode.Unauthorized, replay.Status);
        Assert.Contains("replay", replay.Body, StringComparison.Ordinal);

        var forged = await HealthAsync(server, AgentAssertion.Create(forger, config.AgentId, config.Audience, now));
        Assert.Equal(HttpStatusCode.Unauthorized, forged.Status);
        Assert.Contains("signature is not the agent", forged.Body, StringComparison.Ordinal);

        var expired = await HealthAsync(server, AgentAssertion.Create(key, config.AgentId, config.Audience, now - TimeSpan.FromMinutes(10)));
        Assert.Equal(HttpStatusCode.Unauthorized, expired.Status);
        Assert.Contains("expired", expired.Body, StringComparison.Ordinal);

        var elsewhere = await HealthAsync(server, AgentAssertion.Create(key, config.AgentId, "https://evil.test/agent/v1", now));
        Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.Status);
        Assert.Contains("aud", elsewhere.Body, StringComparison.Ordinal);

        var unknown = await HealthAsync(server, AgentAssertion.Create(key, Guid.NewGuid(), config.Audience, now));
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);

        var garbage = await HealthAsync(server, "a.b.c");
        Assert.Equal(HttpStatusCode.Unauthorized, garbage.Status);

        // The tampered claims of a valid assertion fail the signature.
        var parts = AgentAssertion.Create(key, config.AgentId, config.Audience, now).Split('.');
        var tampered = await HealthAsync(server, $"{parts[0]}.{parts[1]}A.{parts[2]}");
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.Status);
    }

    [Fact]
    public async Task HostStatus_ShowsTheAgentsHealth_AndAChangedRdpKeyMovesThePinOnlyThroughTheAgent()
    {
        await using var server = await TestServer.StartAsync();
        var (tenantId, hostId, _) = await SeedAsync(server);
        var token = await EnrollAsync(server, tenantId);
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = await HostAgentRunner.JoinAsync(state, server.BaseAddress, token, 3389, 30, null, null, null, new FakeProbe(), TimeProvider.System, CancellationToken.None);
        using var key = state.LoadKey();
        using var http = new HttpClient(AgentClient.PinnedHandler(config.ServerCertificateSha256));
        const string NewPin = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
        using var agent = new HostAgentRunner(state, config, key, new AgentClient(http, TimeProvider.System), new FakeAccounts(), new FakeProbe(new RdpProbeResult(true, NewPin, null)), TimeProvider.System, NullLogger.Instance);

        await agent.ReportHealthAsync(CancellationToken.None);

        Assert.Equal((NewPin, "agent"), await PinAsync(server, hostId));
        await using var scope = server.App.Services.CreateAsyncScope();
        var status = await Operations(scope, tenantId, server).GetHostStatusAsync("vm1", CancellationToken.None);
        Assert.True(status.Enrolled);
        Assert.Equal("healthy", status.Health);
        Assert.True(status.RdpListening);
        Assert.Equal(NewPin, status.CertificatePin);

        using var down = new HostAgentRunner(state, config, key, new AgentClient(http, TimeProvider.System), new FakeAccounts(), new FakeProbe(new RdpProbeResult(false, null, "backend_unreachable: connection refused")), TimeProvider.System, NullLogger.Instance);
        await down.ReportHealthAsync(CancellationToken.None);
        var unhealthy = await Operations(scope, tenantId, server).GetHostStatusAsync("vm1", CancellationToken.None);
        Assert.Equal("unhealthy", unhealthy.Health);
        Assert.Equal("host_unhealthy", (await Operations(scope, tenantId, server).GetHostAsync("vm1", CancellationToken.None)).Agent);
        Assert.Contains(unhealthy.Checks, c => c.Check == "rdp" && c.Status == "error");
        var refused = await server.App.Services.GetRequiredService<AgentBroker>().RequestLogonAsync(config.AgentId, hostId, "alice@contoso.test", LoginLevel.User, TimeSpan.FromSeconds(15), CancellationToken.None);
        Assert.StartsWith("host_unhealthy: the agent on vm1 reports that the RDP service is not listening", refused.Reason, StringComparison.Ordinal);
    }

    private static async Task<(HttpStatusCode Status, string Body)> HealthAsync(TestServer server, string assertion)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/agent/v1/health")
        {
            Content = new StringContent("""{"rdpListening":true,"managedAccounts":0,"agentTime":"2026-12-07T00:00:00Z","intervalSeconds":30}""", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", assertion);
        using var response = await server.Client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static AgentJoinRequest JoinRequest(string token)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new AgentJoinRequest(token, Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), "Linux", "test", 3389, null, 30);
    }

    private static string CertificateSha256(TestServer server) =>
        Convert.ToHexString(server.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHash(HashAlgorithmName.SHA256));

    private static AdminOperations Operations(AsyncServiceScope scope, Guid tenantId, TestServer server) =>
        new(AdminCaller.Operator(tenantId), scope.ServiceProvider, () => new GatewayInfo("login.gatehouse.test", 0, CertificateSha256(server)));

    private static async Task<string> EnrollAsync(TestServer server, Guid tenantId)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var view = await Operations(scope, tenantId, server).EnrollHostAgentAsync("vm1", new HostEnrollRequest(600), CancellationToken.None);
        Assert.StartsWith("gatehouse agent join --server https://login.gatehouse.test --token ghjoin1.", view.Command, StringComparison.Ordinal);
        Assert.EndsWith(CertificateSha256(server).ToLowerInvariant(), view.Token, StringComparison.Ordinal);
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().AgentEnrollments.AsNoTracking().ToListAsync();
        Assert.DoesNotContain(stored, e => view.Token.Contains(e.SecretHash, StringComparison.Ordinal));
        return view.Token;
    }

    private static async Task<(Guid TenantId, Guid HostId, Guid UserId)> SeedAsync(TestServer server)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Alice-Passphrase-1", temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
        return (tenant.Id, host.Id, user.Id);
    }

    private static async Task<(string? Pin, string? By)> PinAsync(TestServer server, Guid hostId)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var host = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Hosts.AsNoTracking().SingleAsync(h => h.Id == hostId);
        return (host.CertificatePin, host.CertificatePinnedBy);
    }

    private sealed class FakeProbe(RdpProbeResult? result = null) : IRdpProbe
    {
        public Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken) => Task.FromResult(result ?? new RdpProbeResult(true, RdpPin, null));
    }

    /// <summary>Accounts in memory, as the agent would leave them on the host.</summary>
    private sealed class FakeAccounts : IHostAccounts
    {
        public System.Collections.Concurrent.ConcurrentDictionary<string, string> Passwords { get; } = new();

        public System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyCollection<string>> Groups { get; } = new();

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
            return Task.CompletedTask;
        }

        public Task LockAsync(string name, CancellationToken cancellationToken)
        {
            Passwords[name] = "!" + Passwords[name];
            return Task.CompletedTask;
        }
    }
}
