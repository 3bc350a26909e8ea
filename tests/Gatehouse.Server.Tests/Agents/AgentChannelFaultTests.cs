using System.Net;
using System.Net.Sockets;
using Gatehouse.Agents;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests;
using Gatehouse.Server.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// Issue 17, the agent channel under faults, against the real host (Kestrel, HTTPS on loopback) with the server and the
/// agent on one manual clock (back-off, poll waits and the logon's backend timeout move only when the test says so):
/// a server restart, a network cut between agent and server, and an agent killed in the middle of a logon.
/// </summary>
public sealed class AgentChannelFaultTests
{
    private static readonly TimeSpan BackendTimeout = new GatewayOptions().BackendConnectTimeout;

    [Fact]
    public async Task ServerRestart_AgentBacksOff_ReconnectsToTheNewInstance_AndALogonAfterwardsIsAnswered()
    {
        // Arrange: a node on a fixed port and data directory (its certificate and database survive the restart).
        var time = new ManualTime();
        var data = TempDirectory.Create();
        var overrides = new Dictionary<string, string?> { ["Gatehouse:Urls"] = $"https://127.0.0.1:{FreePort()}" };
        var first = await TestServer.StartAsync(data, overrides, time: time);
        var (tenantId, hostId, userId) = await AgentTestKit.SeedAsync(first);
        var (state, config) = await AgentTestKit.JoinAsync(first, tenantId);
        var accounts = new AgentTestKit.FakeAccounts();
        await using var agent = Agent.Start(state, config, accounts, time);
        await Until.TrueAsync(() => first.App.Services.GetRequiredService<AgentBroker>().IsPolling(config.AgentId), "the agent's long poll on the first instance");

        // Act: the server stops (its polls are answered at once) and comes back on the same port with the same identity.
        await first.DisposeAsync();
        await Until.TrueAsync(() => agent.Runner.Reconnects >= 1, "the agent's poll failed while the server was down");
        await using var second = await TestServer.StartAsync(data, overrides, time: time);
        var broker = second.App.Services.GetRequiredService<AgentBroker>();
        await PumpBackoffUntilAsync(time, () => broker.IsPolling(config.AgentId), "the agent reconnected to the new instance");

        // Assert: a logon requested after the restart is answered with alice's own account and the password the agent set.
        var outcome = await AuthorizeAsync(second, tenantId, userId, hostId);
        Assert.True(outcome.Allowed, outcome.Refusal?.Reason);
        Assert.Equal("alice", outcome.Grant!.Credentials.UserName);
        Assert.True(accounts.Works("alice", outcome.Grant.Credentials.Password));
    }

    [Fact]
    public async Task NetworkCut_ALogonFailsWithinTheBackendTimeout_ThenOneWaitsAndSucceedsWhenTheCutHeals()
    {
        // Arrange: the agent reaches the node through a proxy the test can cut.
        var time = new ManualTime();
        await using var server = await TestServer.StartAsync(time: time);
        var (tenantId, hostId, userId) = await AgentTestKit.SeedAsync(server);
        var (state, joined) = await AgentTestKit.JoinAsync(server, tenantId);
        await using var proxy = new DatabaseProxy(new IPEndPoint(IPAddress.Loopback, server.BaseAddress.Port), up: true);
        var config = joined with { Server = new Uri($"https://127.0.0.1:{proxy.EndPoint.Port}/") };
        var accounts = new AgentTestKit.FakeAccounts();
        await using var agent = Agent.Start(state, config, accounts, time);
        var broker = server.App.Services.GetRequiredService<AgentBroker>();
        await Until.TrueAsync(() => broker.IsPolling(config.AgentId), "the agent's long poll through the proxy");

        // Act 1: the network is cut mid-poll; a logon is requested while it stays cut.
        proxy.Down();
        await Until.TrueAsync(() => agent.Runner.Reconnects >= 1 && !broker.IsPolling(config.AgentId), "the cut poll failed on both ends");
        var failing = AuthorizeAsync(server, tenantId, userId, hostId);
        await Until.TrueAsync(() => broker.PendingLogons == 1, "the logon waits for the agent");

        // The broker counts the logon as pending before it arms its timeout on the manual clock: wait for the timer.
        await Until.TrueAsync(() => time.Armed(BackendTimeout) == 1, "the logon's backend timeout armed");
        time.Advance(BackendTimeout - TimeSpan.FromSeconds(1));
        Assert.False(failing.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));

        // Assert 1: it fails closed at the backend timeout, with the reason for the log and a sentence for the user.
        var failed = await failing;
        Assert.False(failed.Allowed);
        Assert.Equal($"agent_unavailable: the agent on vm1 did not answer within {BackendTimeout.TotalSeconds} s", failed.Refusal!.Reason);
        Assert.Equal("The computer you are connecting to cannot prepare your account right now. Try again later or contact your system administrator.", failed.Refusal!.UserMessage);

        // The agent tries again while the network is still cut and is refused (its back-off moves only on the manual
        // clock, and the advance above may have come before the back-off was armed, so pump it until a refusal is seen).
        await PumpBackoffUntilAsync(time, () => proxy.Refused >= 1, "the agent tried again while cut and was refused");

        // Act 2: another logon is requested while cut, and the cut heals before its timeout.
        var waiting = AuthorizeAsync(server, tenantId, userId, hostId);
        await Until.TrueAsync(() => broker.PendingLogons == 1, "the second logon waits for the agent");
        proxy.Up();
        await PumpBackoffUntilAsync(time, () => waiting.IsCompleted, "the agent reconnected and answered the waiting logon");

        // Assert 2: the agent reconnected and answered; the logon that had given up was never handed to it (one password set, for the logon that waited).
        var outcome = await waiting;
        Assert.True(outcome.Allowed, outcome.Refusal?.Reason);
        Assert.True(accounts.Works("alice", outcome.Grant!.Credentials.Password));
        Assert.Single(accounts.History, h => h.Name == "alice");
    }

    [Fact]
    public async Task AgentKilledMidLogon_OnRestartItRotatesThePasswordItHadHandedOut()
    {
        var time = new ManualTime();
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var accounts = new AgentTestKit.FakeAccounts();
        string handedOut;
        using (var doomed = Runner(state, accounts, time))
        {
            var logon = await doomed.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None);
            handedOut = logon!.Password!;
            Assert.True(accounts.Works("alice", handedOut));
            Assert.Equal(["alice"], state.LoadPendingRotations());
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.PendingRotationsPath));
            }

            // Killed before the host accepted the logon and before the minute ran out: no rotation happened.
        }

        Assert.True(accounts.Works("alice", handedOut));

        // The agent starts again.
        using var restarted = Runner(state, accounts, time);
        Assert.Equal(1, await restarted.RecoverAsync(CancellationToken.None));

        Assert.False(accounts.Works("alice", handedOut));
        Assert.NotEqual(handedOut, accounts.Passwords["alice"]);
        Assert.Empty(state.LoadPendingRotations());
        Assert.Equal(0, await restarted.RecoverAsync(CancellationToken.None));
    }

    [Fact]
    public async Task AgentKilledMidLogon_TheNextLogonSetsAFreshPassword_TheFirstNoLongerWorks()
    {
        var time = new ManualTime();
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var accounts = new AgentTestKit.FakeAccounts();
        string first;
        using (var doomed = Runner(state, accounts, time))
        {
            first = (await doomed.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None))!.Password!;
        }

        using var next = Runner(state, accounts, time);
        var second = (await next.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None))!.Password!;

        Assert.NotEqual(first, second);
        Assert.False(accounts.Works("alice", first));
        Assert.True(accounts.Works("alice", second));

        // The second logon's own rotation (the minute runs out) leaves nothing pending.
        time.Advance(HostAgentRunner.RotateAfter);
        await Until.TrueAsync(() => next.PendingRotations == 0 && state.LoadPendingRotations().Count == 0, "the second logon's rotation");
        Assert.False(accounts.Works("alice", second));
    }

    [Fact]
    public async Task LateAnswer_NobodyTakesIt_TheAgentRotatesThePasswordAtOnce()
    {
        // A server that hands out one logon and then says nobody waits for its answer any more (the gateway gave up).
        var time = new ManualTime();
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var accounts = new AgentTestKit.FakeAccounts();
        using var handler = new LateServer();
        using var http = new HttpClient(handler);
        var config = new AgentConfig { Server = new Uri("https://login.gatehouse.test"), ServerCertificateSha256 = new string('a', 64), AgentId = Guid.NewGuid(), Audience = "aud", AdminGroups = ["sudo"], UserGroups = [] };
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var runner = new HostAgentRunner(state, config, key, new AgentClient(http, time), accounts, new AgentTestKit.FakeProbe(), time, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = runner.RunAsync(stop.Token);

        // The rotation sets the password, then takes the account off the pending list: wait for both.
        await Until.TrueAsync(
            () => handler.Results == 1 && accounts.History.Count(h => h.Name == "alice") == 2 && state.LoadPendingRotations().Count == 0,
            "the answer was refused, the password rotated and the rotation no longer pending");
        var handedOut = accounts.History.First(h => h.Name == "alice").Password;
        Assert.False(accounts.Works("alice", handedOut));
        Assert.Equal(0, runner.PendingRotations);
        Assert.Empty(state.LoadPendingRotations());

        await stop.CancelAsync();
        await running;
    }

    private static HostAgentRunner Runner(AgentState state, AgentTestKit.FakeAccounts accounts, TimeProvider time)
    {
        var config = new AgentConfig { Server = new Uri("https://login.gatehouse.test"), ServerCertificateSha256 = new string('a', 64), AgentId = Guid.NewGuid(), Audience = "aud", AdminGroups = ["sudo"], UserGroups = [] };
        return new HostAgentRunner(state, config, System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256), new AgentClient(new HttpClient(), time), accounts, new AgentTestKit.FakeProbe(), time, NullLogger.Instance);
    }

    private static async Task<AccessOutcome> AuthorizeAsync(TestServer server, Guid tenantId, Guid userId, Guid hostId) =>
        await server.App.Services.GetRequiredService<ISignInAuthorizer>().AuthorizeAsync(
            new GatewayConnection("c1", IPAddress.Loopback, DateTimeOffset.UtcNow),
            new SignInSubject { TenantId = tenantId, UserId = userId, HostId = hostId, Methods = ["pwd"], AuthenticatedAt = DateTimeOffset.UtcNow },
            CancellationToken.None);

    /// <summary>Moves the manual clock past the agent's armed back-off (1 s to 16 s), one at a time, until <paramref name="done"/>.</summary>
    private static async Task PumpBackoffUntilAsync(ManualTime time, Func<bool> done, string what)
    {
        var giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < giveUp, $"not within 60 s: {what}");
            // One back-off per round, then look again: the attempt it releases may already be what was waited for.
            var armed = new[] { 1, 2, 4, 8, 16 }.Select(s => TimeSpan.FromSeconds(s)).FirstOrDefault(b => time.Armed(b) > 0);
            if (armed > TimeSpan.Zero)
            {
                time.Advance(armed);
            }

            await Task.Delay(10);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Answers the first poll with a logon, later polls only when cancelled, results with <c>taken: false</c>, health with OK.</summary>
    private sealed class LateServer : HttpMessageHandler
    {
        private int _polls;
        private int _results;

        public int Results => Volatile.Read(ref _results);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var path = request.RequestUri!.AbsolutePath;
            string body;
            if (path.EndsWith("/poll", StringComparison.Ordinal))
            {
                if (Interlocked.Increment(ref _polls) > 1)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }

                body = System.Text.Json.JsonSerializer.Serialize(new AgentPollResponse([new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user")]), AgentJson.Options);
            }
            else if (path.EndsWith("/result", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _results);
                body = "{\"taken\":false}";
            }
            else
            {
                body = "{\"recorded\":true}";
            }

            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        }
    }

    /// <summary>A running agent with its own HTTPS client (pinned to the server's certificate), stopped on dispose.</summary>
    private sealed class Agent : IAsyncDisposable
    {
        private readonly HttpClient _http;
        private readonly System.Security.Cryptography.ECDsa _key;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _running;

        private Agent(AgentState state, AgentConfig config, AgentTestKit.FakeAccounts accounts, TimeProvider time)
        {
            _http = new HttpClient(AgentClient.PinnedHandler(config.ServerCertificateSha256));
            _key = state.LoadKey();
            Runner = new HostAgentRunner(state, config, _key, new AgentClient(_http, time), accounts, new AgentTestKit.FakeProbe(), time, NullLogger.Instance);
            _running = Runner.RunAsync(_stop.Token);
        }

        public HostAgentRunner Runner { get; }

        public static Agent Start(AgentState state, AgentConfig config, AgentTestKit.FakeAccounts accounts, TimeProvider time) => new(state, config, accounts, time);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _running;
            }
            catch (OperationCanceledException)
            {
            }

            Runner.Dispose();
            _http.Dispose();
            _key.Dispose();
            _stop.Dispose();
        }
    }
}
