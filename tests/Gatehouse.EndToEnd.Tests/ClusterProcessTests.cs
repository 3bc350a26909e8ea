using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.LoadGen.Gateway;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// Issue 16's cluster scenarios with real <c>gatehouse serve</c> processes on one PostgreSQL database
/// (<c>GATEHOUSE_TEST_POSTGRES</c>): nodes started together, a kill through another node's admin API, a node killed with
/// SIGKILL, a drain on SIGTERM, readiness while the database is cut off, and the per-account throttle across nodes.
/// The relayed sessions are web-account (RDS AAD) sign-ins of the gateway benchmark's client to its TLS stub host
/// (bench/Gatehouse.LoadGen/Gateway), with the access token minted on the shared store; everything after the token
/// (the sign-in, the relay, the session records, kills, heartbeats, the drain) happens in the node processes.
/// Its own collection, run alone: the node processes take the machine's CPU, and the timings it checks should not
/// compete with the browser and desktop tests.
/// </summary>
[Collection(ClusterProcessCollection.Name)]
public sealed class ClusterProcessTests(ClusterProcessTests.Cluster cluster, ITestOutputHelper output) : IClassFixture<ClusterProcessTests.Cluster>
{
    /// <summary>How long a node may take to become ready on a loaded machine.</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    /// <summary>The settings every node of the cluster gets (the same values on every node, as docs/multi-node.md asks).</summary>
    private static readonly Dictionary<string, string> NodeSettings = new()
    {
        // Heartbeats every second; a node silent for 6 s is taken for dead (real time: these are separate processes).
        ["Gatehouse:Cluster:HeartbeatInterval"] = "00:00:01",
        ["Gatehouse:Cluster:NodeLostAfter"] = "00:00:06",
        ["Gatehouse:Gateway:DrainTimeout"] = "00:00:06",
        ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "6",

        // 'gatehouse login' polls the token endpoint at this interval while the test approves its device code.
        ["Gatehouse:Limits:DeviceCodePollInterval"] = "00:00:01",

        // The readiness probe's SELECT 1 on a loaded machine.
        ["Gatehouse:Database:ReadyTimeout"] = "00:00:10",
    };

    [Fact]
    public async Task ThreeNodes_StartedTogetherOnAnEmptyDatabase_TenRounds_AllReadyWithOneTenant()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        for (var round = 1; round <= 10; round++)
        {
            var roundClock = Stopwatch.StartNew();
            await using var database = await TestPostgres.CreateDatabaseAsync();
            var clock = Stopwatch.StartNew();
            var nodes = new[] { "A", "B", "C" }.Select(n => GatehouseProcess.Start(n, database.ConnectionString(), cluster.Secrets, NodeSettings)).ToList();
            try
            {
                await Task.WhenAll(nodes.Select(n => n.WaitReadyAsync(StartTimeout)));
                var ready = clock.Elapsed;

                Assert.All(nodes, n => Assert.False(n.HasExited, $"node {n.Name} exited"));
                Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Tenants\""));
                Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Users\""));
                Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"RoleAssignments\""));
                var lines = nodes.SelectMany(n => n.Lines).ToList();
                Assert.Equal(1, lines.Count(l => l.Contains("Temporary password:", StringComparison.Ordinal)));
                Assert.DoesNotContain(lines, l => l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal) || l.Contains("Unhandled exception", StringComparison.Ordinal));
                output.WriteLine($"round {round}: three nodes ready {ready.TotalSeconds:0.0} s after they were started together ({clock.Elapsed.TotalSeconds:0.0} s with the checks); one tenant, one administrator");
                foreach (var node in nodes)
                {
                    output.WriteLine("  " + node.StartupTimeline());
                }
            }
            catch
            {
                foreach (var node in nodes)
                {
                    output.WriteLine(node.Output);
                }

                throw;
            }
            finally
            {
                await Task.WhenAll(nodes.Select(n => n.DisposeAsync().AsTask()));
            }

            output.WriteLine($"round {round}: {roundClock.Elapsed.TotalSeconds:0.0} s in all (creating the database, starting, checking and killing the nodes)");
        }
    }

    [Fact]
    public async Task Kill_ThroughNodeBsAdminApi_EndsTheSessionOnNodeA_WithinSeconds()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        // Arrange: a session relayed by node A, and an administrator signed in to node B's admin API the documented way
        // (README, "Administer from another machine"): 'gatehouse login --server B --ca-cert' with the shared
        // certificate, the device code approved on B's /devicelogin. The CLI runs as a process with its own
        // configuration directory and nothing else: no store, no key-encryption key.
        await using var a = await cluster.StartNodeAsync("A");
        var (user, host) = await cluster.Store.ArrangeAsync("stub-kill", cluster.Stub.Port, $"kim@{cluster.Store.Domain}", Password);
        await using var session = await LiveSession.OpenAsync(a, cluster.Store, user, host);
        Assert.Equal(a.NodeName, session.Record.Node);
        var server = $"https://127.0.0.1:{cluster.B.HttpsPort}";
        var cli = await SignInCliAsync(cluster, cluster.B, output);

        // 'sessions list' through B shows A's session with A's node name.
        var (listExit, listed) = await RunRemoteAsync(cli, "sessions", "list", "--server", server, "--output", "json");
        Assert.True(listExit == 0, listed);
        using (var rows = System.Text.Json.JsonDocument.Parse(listed))
        {
            var row = Assert.Single(rows.RootElement.EnumerateArray(), r => r.GetProperty("id").GetString() == session.Record.Id.ToString());
            Assert.Equal(a.NodeName, row.GetProperty("node").GetString());
        }

        // Act: the administrator kills it through node B's admin API.
        var started = DateTimeOffset.UtcNow;
        var (exit, text) = await RunRemoteAsync(cli, "sessions", "kill", session.Record.Id.ToString(), "--server", server);
        var cliExitedAt = DateTimeOffset.UtcNow;
        Assert.True(exit == 0, text);
        Assert.Contains($"node {a.NodeName}", text, StringComparison.Ordinal);

        // Assert: B's API accepted it (its request log: the DELETE answered 200), node A closed the client's connection
        // on the notification and wrote the end record; each measured from the moment B wrote the kill
        // (KillRequestedAt, B's clock: the same machine as node A and the test).
        await Wait.UntilAsync(
            () => cluster.B.Lines.Any(l => l.Contains($"DELETE {server}/admin/v1/sessions/{session.Record.Id} - 200", StringComparison.Ordinal)),
            Wait.Generous,
            "node B logging the admin API's DELETE of the session answered 200",
            () => cluster.B.Output);
        var closedAt = await Wait.ForAsync(session.Closed, Wait.Generous, "node A closing the killed session's client connection", () => a.Output);
        var ended = await session.WaitEndedAsync(cluster.Store);
        Assert.Equal(SessionKillWatcher.KilledReason, ended.EndReason);
        var killedAt = ended.KillRequestedAt!.Value;
        var toClose = closedAt - killedAt;
        var toRecord = ended.EndedAt!.Value - killedAt;
        var exitToClose = closedAt - cliExitedAt;
        output.WriteLine(
            $"kill through node B's admin API: the CLI ran {(cliExitedAt - started).TotalSeconds:0.0} s; after B wrote the kill, node A closed the client's socket in {toClose.TotalMilliseconds:0} ms " +
            $"and wrote the end record in {toRecord.TotalMilliseconds:0} ms; from the CLI's exit to the socket's close: {exitToClose.TotalMilliseconds:0} ms " +
            "(negative: the socket was closed before the CLI process had exited)");
        Assert.True(toClose < TimeSpan.FromSeconds(5), $"the client was closed {toClose.TotalSeconds:0.0} s after the kill");
        Assert.True(toRecord < TimeSpan.FromSeconds(5), $"the record was ended {toRecord.TotalSeconds:0.0} s after the kill");
        Assert.True(exitToClose <= TimeSpan.FromSeconds(5), $"the client was closed {exitToClose.TotalSeconds:0.0} s after the CLI exited");

        // Node A logs the kill after it ended the session, and its output reaches the test through a pipe: wait for the line.
        await Wait.UntilAsync(
            () => a.Lines.Any(l => l.Contains($"Session {session.Record.Id}", StringComparison.Ordinal) && l.Contains("(notified)", StringComparison.Ordinal)),
            Wait.Generous,
            "node A logging the session ended on the notification",
            () => a.Output);
    }

    [Fact]
    public async Task NodeA_KilledWithSigkillMidSession_ItsRecordIsClosedByNodeB_WithNodeLost()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        // Arrange: a session relayed by node A.
        await using var a = await cluster.StartNodeAsync("A");
        var (user, host) = await cluster.Store.ArrangeAsync("stub-lost", cluster.Stub.Port, $"lou@{cluster.Store.Domain}", Password);
        await using var session = await LiveSession.OpenAsync(a, cluster.Store, user, host);

        // Act: kill -9.
        a.KillHard();
        var killed = DateTimeOffset.UtcNow;
        await a.WaitForExitAsync(Wait.Generous);

        // Assert: node B closes A's record with node_lost once A's heartbeat is older than NodeLostAfter.
        var ended = await session.WaitEndedAsync(cluster.Store);
        Assert.StartsWith($"node_lost: node {a.NodeName} stopped sending heartbeats at ", ended.EndReason, StringComparison.Ordinal);
        var after = ended.EndedAt!.Value - killed;
        var lastSeen = DateTimeOffset.ParseExact(ended.EndReason![^"yyyy-MM-ddTHH:mm:ssZ".Length..], "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        var silentFor = ended.EndedAt.Value - lastSeen;
        output.WriteLine($"node A killed with SIGKILL: its record closed by node B with node_lost {after.TotalSeconds:0.0} s after the kill, {silentFor.TotalSeconds:0.0} s after A's last heartbeat (NodeLostAfter 6 s, heartbeats every 1 s): {ended.EndReason}");

        // Not before the grace period: A's last heartbeat (written to the second, rounded down) is at least NodeLostAfter old.
        Assert.True(silentFor >= TimeSpan.FromSeconds(6), $"closed {silentFor.TotalSeconds:0.0} s after A's last heartbeat, before the grace period ran out");

        // Node B logs it after it closed the record, and its output reaches the test through a pipe: wait for the line.
        await Wait.UntilAsync(
            () => cluster.B.Lines.Any(l => l.Contains($"Node {a.NodeName} stopped sending heartbeats", StringComparison.Ordinal)),
            Wait.Generous,
            "node B logging node A as lost",
            () => cluster.B.Output);
    }

    [Fact]
    public async Task NodeA_OnSigterm_RefusesNewConnections_KeepsTheLiveSessionForTheDrainTimeout_ThenEndsItAndExitsZero()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        // Arrange: a session relayed by node A.
        await using var a = await cluster.StartNodeAsync("A");
        var (user, host) = await cluster.Store.ArrangeAsync("stub-drain", cluster.Stub.Port, $"max@{cluster.Store.Domain}", Password);
        await using var session = await LiveSession.OpenAsync(a, cluster.Store, user, host);

        // Act: SIGTERM.
        var terminated = Stopwatch.GetTimestamp();
        var terminatedAt = DateTimeOffset.UtcNow;
        a.Terminate();

        // Assert: a load balancer's readiness probe stops answering 200 (503 "not ready" while Kestrel still answers,
        // then no HTTP answer at all, the connection refused, once it stops accepting), and new connections are refused
        // while the live session goes on.
        await Wait.UntilAsync(async () => await a.StatusAsync(Readiness.ReadyPath) != HttpStatusCode.OK, Wait.Generous, "node A's readiness turning off", () => a.Output);
        var notReadyAfter = Stopwatch.GetElapsedTime(terminated);
        await Wait.UntilAsync(() => !Accepts(a.RdpPort), Wait.Generous, "node A refusing new RDP connections");
        var refusedAfter = Stopwatch.GetElapsedTime(terminated);
        Assert.False(session.Closed.IsCompleted, $"the live session was closed within {refusedAfter.TotalSeconds:0.0} s of SIGTERM, before the drain timeout");
        Assert.Null((await cluster.Store.SessionAsync(session.Record.Id))!.EndedAt);

        // For the rest of the drain (until the session is ended), readiness is never 200 again; what liveness and
        // readiness answer meanwhile is printed ("no answer": the connection refused).
        var readyAnswers = new SortedSet<string>(StringComparer.Ordinal);
        var liveAnswers = new SortedSet<string>(StringComparer.Ordinal);
        await Wait.UntilAsync(
            async () =>
            {
                var drained = session.Closed.IsCompleted;
                var ready = await a.StatusAsync(Readiness.ReadyPath);
                var live = await a.StatusAsync(Readiness.LivePath);
                Assert.NotEqual(HttpStatusCode.OK, ready);
                readyAnswers.Add(ready is { } r ? ((int)r).ToString(CultureInfo.InvariantCulture) : "no answer");
                liveAnswers.Add(live is { } l ? ((int)l).ToString(CultureInfo.InvariantCulture) : "no answer");
                return drained;
            },
            Wait.Generous,
            "node A ending the drained session",
            () => a.Output);

        // Then: ended with node_draining after DrainTimeout, and the process exits 0.
        var closedAt = await Wait.ForAsync(session.Closed, Wait.Generous, "node A ending the drained session", () => a.Output);
        var exit = await a.WaitForExitAsync(Wait.Generous);
        var exitedAfter = Stopwatch.GetElapsedTime(terminated);
        var ended = await session.WaitEndedAsync(cluster.Store);
        var keptFor = closedAt - terminatedAt;
        output.WriteLine($"SIGTERM: readiness not 200 after {notReadyAfter.TotalSeconds:0.0} s; during the drain /healthz/ready answered {string.Join(", ", readyAnswers)} and /healthz {string.Join(", ", liveAnswers)}");
        output.WriteLine($"SIGTERM: new connections refused after {refusedAfter.TotalSeconds:0.0} s, the live session kept {keptFor.TotalSeconds:0.0} s (DrainTimeout 6 s), exit code {exit} after {exitedAfter.TotalSeconds:0.0} s");
        Assert.Equal(0, exit);
        Assert.Equal(SessionDrain.Reason, ended.EndReason);
        Assert.True(keptFor >= TimeSpan.FromSeconds(5.5), $"the session was ended {keptFor.TotalSeconds:0.0} s after SIGTERM, before DrainTimeout");
    }

    [Fact]
    public async Task Readiness_FalseWhileTheDatabaseIsCutOff_With503s_ThenTrue()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        // Arrange: node C reaches the database through a proxy the test can cut (the shared PostgreSQL keeps running).
        await using var proxy = new DatabaseProxy(cluster.Database.ServerEndPoint, up: true);
        await using var c = await cluster.StartNodeAsync("C", cluster.Database.ConnectionString(proxy.EndPoint));
        Assert.Equal(HttpStatusCode.OK, await c.StatusAsync(Readiness.ReadyPath));

        // Act: the database stops answering.
        var cut = Stopwatch.GetTimestamp();
        proxy.Down();

        // Assert: liveness stays, readiness and requests that need the database answer 503 with Retry-After.
        await Wait.UntilAsync(async () => await c.StatusAsync(Readiness.ReadyPath) == HttpStatusCode.ServiceUnavailable, Wait.Generous, "node C not ready", () => c.Output);
        var notReadyAfter = Stopwatch.GetElapsedTime(cut);
        using (var ready = await c.Http.GetAsync(new Uri(Readiness.ReadyPath, UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.NotNull(ready.Headers.RetryAfter?.Delta);
            Assert.Contains("database: the database did not answer", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, await c.StatusAsync(Readiness.LivePath));
        using (var token = await c.Http.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = RdpClientId,
            ["code"] = "x",
        })))
        {
            var body = await token.Content.ReadAsStringAsync();
            Assert.True(token.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)token.StatusCode}: {body}");
            Assert.NotNull(token.Headers.RetryAfter?.Delta);
            Assert.Contains("\"error\":\"temporarily_unavailable\"", body, StringComparison.Ordinal);
        }

        // Act: the database answers again. Assert: ready again by itself.
        proxy.Up();
        var restored = Stopwatch.GetTimestamp();
        await Wait.UntilAsync(async () => await c.StatusAsync(Readiness.ReadyPath) == HttpStatusCode.OK, Wait.Generous, "node C ready again", () => c.Output);
        output.WriteLine($"database cut: /healthz/ready 503 after {notReadyAfter.TotalSeconds:0.0} s, ready again {Stopwatch.GetElapsedTime(restored).TotalSeconds:0.0} s after it answered; {proxy.Refused} connection(s) refused meanwhile");
        Assert.False(c.HasExited);
    }

    [Fact]
    public async Task PerAccountThrottle_HoldsAcrossTwoNodeProcesses()
    {
        if (!RequirePostgres(output))
        {
            return;
        }

        // Arrange: nodes A and B, a user; the limit is 6 attempts per account per minute on every node.
        await using var a = await cluster.StartNodeAsync("A");
        var upn = $"nina@{cluster.Store.Domain}";
        await cluster.Store.ArrangeAsync("stub-throttle", cluster.Stub.Port, upn, Password);
        var nodes = new[] { a, cluster.B };

        // Act: six wrong passwords, alternating between the nodes (three each: half of what each node alone allows).
        for (var i = 0; i < 6; i++)
        {
            var (status, error) = await SignInAsync(nodes[i % 2], "stub-throttle", upn, $"wrong-guess-{i}");
            Assert.True(error?.Contains("AADSTS50126", StringComparison.Ordinal) == true, $"attempt {i + 1} on node {nodes[i % 2].Name}: {(int)status} {error}");
        }

        // Assert: the seventh attempt, with the right password, is throttled on either node.
        var (throttledA, messageA) = await SignInAsync(a, "stub-throttle", upn, Password);
        var (throttledB, messageB) = await SignInAsync(cluster.B, "stub-throttle", upn, Password);
        output.WriteLine($"per-account limit 6/min: 3 wrong passwords on A + 3 on B, then the right one: A answered {(int)throttledA}, B answered {(int)throttledB}");
        Assert.Equal((HttpStatusCode)429, throttledA);
        Assert.Equal((HttpStatusCode)429, throttledB);
        Assert.Contains("Too many requests", messageA, StringComparison.Ordinal);
        Assert.Contains("Too many requests", messageB, StringComparison.Ordinal);
    }

    private const string Password = "Cluster-Test-Password-1!";
    private const string RdpClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";

    /// <summary>
    /// Signs an administrator in to <paramref name="node"/>'s admin API as README's "Administer from another machine"
    /// says: <c>gatehouse login --server https://127.0.0.1:PORT --ca-cert tls.crt</c> (the shared certificate, which names
    /// 127.0.0.1 too) prints a device code; the test approves it on the node's <c>/devicelogin</c> (code, user name,
    /// password, Continue) and the command saves the sign-in. Returns the CLI's environment for later commands: its own
    /// configuration directory, which holds the sign-in and the certificate to trust.
    /// </summary>
    private static async Task<Dictionary<string, string?>> SignInCliAsync(Cluster cluster, GatehouseProcess node, ITestOutputHelper output)
    {
        var upn = $"ada@{cluster.Store.Domain}";
        await cluster.Store.ArrangeAdministratorAsync(upn, Password);
        var server = $"https://127.0.0.1:{node.HttpsPort}";
        var environment = new Dictionary<string, string?>
        {
            ["GATEHOUSE_CONFIG_DIR"] = Path.Combine(cluster.Secrets.Directory, "cli-" + Guid.NewGuid().ToString("N")),
            ["GATEHOUSE_SERVER"] = null,
            ["GATEHOUSE_TOKEN"] = null,
            ["GATEHOUSE_CA_CERT"] = null,
        };
        using var login = CliProcess.Start(environment, "login", "--server", server, "--ca-cert", cluster.Secrets.CertificatePath);
        string? code = null;
        await Wait.UntilAsync(() => (code = DeviceCode(login.Text)) is not null, Wait.Generous, "gatehouse login printing its device code", () => login.Text);

        using var browser = new SignInBrowser(new Uri(server + "/"), node.Thumbprint);
        await browser.OpenAsync("/devicelogin");
        await browser.SubmitAsync(("otc", code));
        await browser.SubmitAsync(("username", upn));
        await browser.SubmitAsync(("password", Password));
        Assert.True(browser.Html.Contains("Are you trying to sign in to Gatehouse CLI?", StringComparison.Ordinal), browser.Html);
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Equal(HttpStatusCode.OK, browser.Status);

        var exit = await login.WaitForExitAsync(Wait.Generous);
        Assert.True(exit == 0, login.Text);
        output.WriteLine($"gatehouse login --server {server}: {(login.Lines.Count > 0 ? login.Lines[^1] : "")}");
        return environment;
    }

    /// <summary>The user code in <c>gatehouse login</c>'s "…enter the code XXXX-XXXX to authenticate." line, or null.</summary>
    private static string? DeviceCode(string text) =>
        System.Text.RegularExpressions.Regex.Match(text, "enter the code (?<code>[A-Z0-9-]+) to authenticate") is { Success: true } m ? m.Groups["code"].Value : null;

    /// <summary>Runs a CLI command with <paramref name="environment"/> (a signed-in configuration directory) to its end.</summary>
    private static async Task<(int Exit, string Output)> RunRemoteAsync(Dictionary<string, string?> environment, params string[] arguments)
    {
        using var cli = CliProcess.Start(environment, arguments);
        var exit = await cli.WaitForExitAsync(Wait.Generous);
        return (exit, cli.Text);
    }

    private static bool RequirePostgres(ITestOutputHelper output)
    {
        if (TestPostgres.ConnectionString is not null)
        {
            return true;
        }

        if (Peers.AllowMissing)
        {
            output.WriteLine($"Not run: {TestPostgres.Missing} ({Peers.AllowMissingVariable}=1).");
            return false;
        }

        Assert.Fail(TestPostgres.Missing + $". Set {Peers.AllowMissingVariable}=1 to skip instead.");
        return false;
    }

    /// <summary>The user name and password pages of an RDP sign-in on <paramref name="node"/>: the status and error of the password step.</summary>
    private static async Task<(HttpStatusCode Status, string? Error)> SignInAsync(GatehouseProcess node, string host, string upn, string password)
    {
        using var browser = new SignInBrowser(new Uri($"https://127.0.0.1:{node.HttpsPort}/"), node.Thumbprint);
        await browser.OpenAsync($"/common/oauth2/v2.0/authorize?client_id={RdpClientId}&response_type=code&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2F{host}%2Fuser_impersonation&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2f{RdpClientId}");
        await browser.SubmitAsync(("username", upn));
        await browser.SubmitAsync(("password", password));
        return (browser.Status, browser.Error);
    }

    /// <summary>True when a TCP connection to the port is accepted and kept for the X.224 exchange.</summary>
    private static bool Accepts(int port)
    {
        using var tcp = new TcpClient();
        try
        {
            tcp.Connect(IPAddress.Loopback, port);
            tcp.GetStream().Write(Captures.ConnectionRequestAad);
            tcp.ReceiveTimeout = 10_000;
            return tcp.GetStream().Read(new byte[64]) > 0;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false;
        }
    }

    /// <summary>One relayed session: the benchmark client signed in through a node to the stub host, idle.</summary>
    private sealed class LiveSession : IAsyncDisposable
    {
        private readonly BenchClient client;
        private readonly PopKeyPair key;

        private LiveSession(BenchClient client, PopKeyPair key, SessionRecord record)
        {
            this.client = client;
            this.key = key;
            Record = record;
            Closed = WatchAsync(client);
        }

        public SessionRecord Record { get; }

        /// <summary>Completes (with the time) when the gateway closes the client's connection.</summary>
        public Task<DateTimeOffset> Closed { get; }

        public static async Task<LiveSession> OpenAsync(GatehouseProcess node, ClusterStore store, Storage.User user, Storage.Host host)
        {
            var key = PopKeyPair.Create();
            var ticket = await store.MintAsync(user, host, key);
            using var timeout = new CancellationTokenSource(Wait.Generous);
            var client = await BenchClient.ConnectAsync(node.RdpPort, Captures.ConnectionRequestAad, timeout.Token);
            var result = await client.SignInAsync(ticket, timeout.Token);
            Assert.True(result == RdsAadAuthResult.Success, $"sign-in through node {node.Name} refused: 0x{result:X8}{Environment.NewLine}{node.Output}");
            await client.StartSessionAsync(TlsStub.Idle, 0, timeout.Token);
            SessionRecord? record = null;
            await Wait.UntilAsync(
                async () => (record = (await store.OpenSessionsAsync(user)).FirstOrDefault()) is not null,
                Wait.Generous,
                $"the session record of {user.UserPrincipalName} on node {node.Name}",
                () => node.Output);
            return new LiveSession(client, key, record!);
        }

        /// <summary>The record once it has ended.</summary>
        public async Task<SessionRecord> WaitEndedAsync(ClusterStore store)
        {
            SessionRecord? record = null;
            await Wait.UntilAsync(async () => (record = await store.SessionAsync(Record.Id))?.EndedAt is not null, Wait.Generous, $"session {Record.Id} ended in the store");
            return record!;
        }

        public async ValueTask DisposeAsync()
        {
            await client.DisposeAsync();
            key.Dispose();
        }

        private static async Task<DateTimeOffset> WatchAsync(BenchClient client)
        {
            var buffer = new byte[4096];
            try
            {
                while (await client.Tls.ReadAsync(buffer) > 0)
                {
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
            }

            return DateTimeOffset.UtcNow;
        }
    }

    /// <summary>
    /// The class's cluster: a fresh database, the shared secrets, the stub host and node B (which lives for the whole
    /// class; the tests start their own node A and kill or stop it).
    /// </summary>
    public sealed class Cluster : IAsyncLifetime
    {
        private TestDatabase? database;
        private ClusterSecrets? secrets;
        private TlsStub? stub;
        private GatehouseProcess? b;
        private ClusterStore? store;

        internal TestDatabase Database => database ?? throw new InvalidOperationException(TestPostgres.Missing);

        internal ClusterSecrets Secrets => secrets ?? throw new InvalidOperationException(TestPostgres.Missing);

        internal TlsStub Stub => stub ?? throw new InvalidOperationException(TestPostgres.Missing);

        internal GatehouseProcess B => b ?? throw new InvalidOperationException(TestPostgres.Missing);

        internal ClusterStore Store => store ?? throw new InvalidOperationException(TestPostgres.Missing);

        public async Task InitializeAsync()
        {
            if (TestPostgres.ConnectionString is null)
            {
                return;
            }

            secrets = ClusterSecrets.Create();
            database = await TestPostgres.CreateDatabaseAsync();
            stub = TlsStub.Start();
            // Node B also logs each request it answers: the kill test checks that B's admin API took the DELETE.
            b = GatehouseProcess.Start("B", database.ConnectionString(), secrets, new Dictionary<string, string>(NodeSettings)
            {
                ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "Information",
            });
            await b.WaitReadyAsync(StartTimeout);
            store = await ClusterStore.OpenAsync(database.ConnectionString(), secrets);
        }

        /// <summary>Starts another node on the class's database (or on <paramref name="connectionString"/>) and waits until it is ready.</summary>
        internal async Task<GatehouseProcess> StartNodeAsync(string name, string? connectionString = null)
        {
            var node = GatehouseProcess.Start(name, connectionString ?? Database.ConnectionString(), Secrets, NodeSettings);
            try
            {
                await node.WaitReadyAsync(StartTimeout);
                return node;
            }
            catch
            {
                await node.DisposeAsync();
                throw;
            }
        }

        public async Task DisposeAsync()
        {
            if (store is not null)
            {
                await store.DisposeAsync();
            }

            if (b is not null)
            {
                await b.DisposeAsync();
            }

            if (stub is not null)
            {
                await stub.DisposeAsync();
            }

            if (database is not null)
            {
                await database.DisposeAsync();
            }

            secrets?.Dispose();
        }
    }
}

/// <summary>The cluster tests start several server processes: run them on their own, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterProcessCollection
{
    public const string Name = "Cluster processes";
}
