using System.Diagnostics;
using System.Globalization;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>What the gateway run measures.</summary>
internal sealed record GatewaySettings(int SignIns, int Concurrency, int Keys, int RelayMiB, int RelayRounds, int Sessions, int DesktopRuns, string XrdpUser, string XrdpPassword, int XrdpPort);

/// <summary>
/// The gateway benchmarks, each against a baseline measured in the same run: web-account sign-ins per second (and
/// AssertionValidator.ValidateAsync timed on its own), relay throughput against a direct TLS stream, memory per
/// idle relayed session against idle direct TLS connections, and optionally a real xfreerdp3 reaching the xrdp
/// desktop directly and through the gateway. One in-process host as <c>gatehouse serve</c> builds it.
/// </summary>
internal static class GatewayRun
{
    private const string Tenant = "common";
    private const string StubHost = "stub1";
    private const string DesktopHost = "vm1";
    private const string LoginRole = "Virtual Machine User Login";

    public static async Task<GatewayReport> RunAsync(GatewaySettings settings, Action<string> progress, CancellationToken cancellationToken)
    {
        // FreeRDP reaches the IdP at /azure:ad:<public name>, so the public name carries the port (login.gatehouse.test → 127.0.0.1 in /etc/hosts).
        var httpsPort = FreePort();
        var publicName = $"login.gatehouse.test:{httpsPort}";
        await using var stub = TlsStub.Start();
        await using var host = await BenchHost.StartAsync(
            $"https://127.0.0.1:{httpsPort}",
            publicName,
            new Dictionary<string, string?>
            {
                // Every benchmark connection comes from 127.0.0.1.
                ["Gatehouse:Gateway:MaxPendingConnectionsPerAddress"] = "4096",
                ["Gatehouse:Gateway:MaxPendingConnections"] = "4096",
            },
            progress,
            cancellationToken);
        var app = host.App;
        var dataDirectory = host.DataDirectory;
        var rdpPort = GatehouseHost.RdpEndPoint(app).Port;
        progress($"gateway on 127.0.0.1:{rdpPort}, TLS stub host on 127.0.0.1:{stub.Port} (data {dataDirectory})");
        var arranged = await ArrangeAsync(app.Services, stub.Port, settings, cancellationToken);
        progress($"generating {settings.Keys} RSA-2048 PoP keys (a pool: the connections use them round-robin)");
        var keys = Enumerable.Range(0, settings.Keys).Select(_ => PopKeyPair.Create()).ToArray();
        try
        {
            var minter = new Minter(app.Services, arranged, keys);

            // Warm-up: every path once per client.
            var warm = Math.Max(settings.Concurrency * 2, 8);
            await MeasureSignInsAsync("warm-up", rdpPort, await minter.MintAsync(arranged.NoRoleUser, warm, cancellationToken), settings.Concurrency, false, cancellationToken);
            await MeasureSignInsAsync("warm-up", rdpPort, await minter.MintAsync(arranged.User, warm, cancellationToken), settings.Concurrency, false, cancellationToken);
            await MeasureHandshakesAsync(rdpPort, warm, settings.Concurrency, cancellationToken);

            // (a) sign-ins.
            progress($"minting {settings.SignIns} access tokens and aad_nonces for each of two users");
            var mintStarted = Stopwatch.GetTimestamp();
            var refusedTickets = await minter.MintAsync(arranged.NoRoleUser, settings.SignIns, cancellationToken);
            var allowedTickets = await minter.MintAsync(arranged.User, settings.SignIns, cancellationToken);
            var mintSeconds = Stopwatch.GetElapsedTime(mintStarted).TotalSeconds;
            progress($"sign-ins: {settings.SignIns} each, {settings.Concurrency} clients");
            var signIns = new List<RateResult>
            {
                await MeasureHandshakesAsync(rdpPort, settings.SignIns, settings.Concurrency, cancellationToken),
                await MeasureSignInsAsync("sign-in refused (no role)", rdpPort, refusedTickets, settings.Concurrency, false, cancellationToken),
                await MeasureSignInsAsync("sign-in allowed (+host leg)", rdpPort, allowedTickets, settings.Concurrency, true, cancellationToken),
            };
            await WaitUntilAsync(() => app.Services.GetRequiredService<SessionRegistry>().Count == 0 && stub.Open == 0, cancellationToken);

            progress("AssertionValidator.ValidateAsync on its own (the allowed tickets again: validation does not consume them)");
            var validator = app.Services.GetRequiredService<AssertionValidator>();
            var directory = app.Services.GetRequiredService<IWebAccountDirectory>();
            var registered = await directory.FindHostAsync(StubHost, cancellationToken) ?? throw new InvalidOperationException("the stub host is not registered");
            var validations = new List<RateResult>
            {
                await RunConcurrentAsync("  of which FindHostAsync ×1", allowedTickets.Count, 1, async _ => await directory.FindHostAsync(StubHost, cancellationToken) is not null),
                await RunConcurrentAsync("  of which ValidateAccessToken ×1", allowedTickets.Count, 1, async i => (await directory.ValidateAccessTokenAsync(allowedTickets[i].AccessToken, registered, DateTimeOffset.UtcNow, cancellationToken)).Valid),
                await RunConcurrentAsync("  of which ValidateClientNonce ×1", allowedTickets.Count, 1, async i => await directory.ValidateClientNonceAsync(allowedTickets[i].AadNonce, DateTimeOffset.UtcNow, cancellationToken)),
                await MeasureValidationsAsync(validator, allowedTickets, 1, cancellationToken),
                await MeasureValidationsAsync(validator, allowedTickets, settings.Concurrency, cancellationToken),
            };

            // (b) relay throughput.
            var relay = new List<RelayRound>();
            var relayTickets = await minter.MintAsync(arranged.User, settings.RelayRounds, cancellationToken);
            for (var round = 0; round < settings.RelayRounds; round++)
            {
                progress($"relay round {round + 1}/{settings.RelayRounds}: {settings.RelayMiB} MiB host → client, direct then through the gateway");
                var direct = await MeasureBulkAsync(stub.Port, null, settings.RelayMiB, cancellationToken);
                var gateway = await MeasureBulkAsync(rdpPort, relayTickets[round], settings.RelayMiB, cancellationToken);
                relay.Add(new RelayRound(direct, gateway));
            }

            // (c) memory per idle session.
            var memoryTickets = await minter.MintAsync(arranged.User, settings.Sessions, cancellationToken);
            progress($"memory: {settings.Sessions} idle direct TLS connections, then {settings.Sessions} idle relayed sessions");
            var memory = await MeasureMemoryAsync(rdpPort, stub, app.Services.GetRequiredService<SessionRegistry>(), memoryTickets, settings.Concurrency, cancellationToken);

            // (d) the real client.
            DesktopResult? desktop = null;
            if (settings.DesktopRuns > 0)
            {
                desktop = await DesktopRun.RunAsync(app, rdpPort, publicName, arranged, settings, progress, cancellationToken);
            }

            return new GatewayReport(settings, Machine.Describe(), mintSeconds, signIns, validations, relay, memory, desktop);
        }
        finally
        {
            foreach (var key in keys)
            {
                key.Dispose();
            }
        }
    }

    /// <summary>Connect, X.224, TLS, read the server nonce, close: the part of a sign-in before any token is looked at.</summary>
    private static Task<RateResult> MeasureHandshakesAsync(int port, int total, int concurrency, CancellationToken cancellationToken) =>
        RunConcurrentAsync("X.224 + TLS + nonce only", total, concurrency, async _ =>
        {
            await using var client = await BenchClient.ConnectAsync(port, Captures.ConnectionRequestAad, cancellationToken);
            await client.ReadNonceAsync(cancellationToken);
            return true;
        });

    private static Task<RateResult> MeasureSignInsAsync(string name, int port, List<SignInTicket> tickets, int concurrency, bool expectAllowed, CancellationToken cancellationToken) =>
        RunConcurrentAsync(name, tickets.Count, concurrency, async i =>
        {
            await using var client = await BenchClient.ConnectAsync(port, Captures.ConnectionRequestAad, cancellationToken);
            var result = await client.SignInAsync(tickets[i], cancellationToken);
            return result == (expectAllowed ? RdsAadAuthResult.Success : RdsAadAuthResult.AccessDenied);
        });

    /// <summary>The validator alone, as the authenticator calls it (fresh server nonce each time).</summary>
    private static Task<RateResult> MeasureValidationsAsync(AssertionValidator validator, List<SignInTicket> tickets, int concurrency, CancellationToken cancellationToken) =>
        RunConcurrentAsync($"ValidateAsync ×{concurrency} concurrent", tickets.Count, concurrency, async i =>
        {
            var nonce = ServerNonce.Issue(DateTimeOffset.UtcNow);
            var request = tickets[i].Assertion(nonce.Value);
            var started = Stopwatch.GetTimestamp();
            var verdict = await validator.ValidateAsync(request, nonce, cancellationToken);
            return verdict.Accepted ? Stopwatch.GetElapsedTime(started) : null;
        });

    private static Task<RateResult> RunConcurrentAsync(string name, int total, int concurrency, Func<int, Task<bool>> operation) =>
        RunConcurrentAsync(name, total, concurrency, async i => await operation(i) ? TimeSpan.MinValue : (TimeSpan?)null);

    /// <summary>
    /// Runs <paramref name="total"/> operations from <paramref name="concurrency"/> workers. An operation returns null
    /// on failure, <see cref="TimeSpan.MinValue"/> to be timed end to end, or its own timing of the part that counts.
    /// </summary>
    private static async Task<RateResult> RunConcurrentAsync(string name, int total, int concurrency, Func<int, Task<TimeSpan?>> operation)
    {
        var latencies = new double[total];
        var errors = 0;
        string? firstError = null;
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < total)
            {
                var sent = Stopwatch.GetTimestamp();
                TimeSpan? timed;
                try
                {
                    timed = await operation(i);
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
                {
                    Interlocked.CompareExchange(ref firstError, $"{e.GetType().Name}: {e.Message}", null);
                    timed = null;
                }

                if (timed is null)
                {
                    Interlocked.Increment(ref errors);
                }

                latencies[i] = (timed is { } t && t != TimeSpan.MinValue ? t : Stopwatch.GetElapsedTime(sent)).TotalMilliseconds;
            }
        })));
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        Array.Sort(latencies);
        return new RateResult(name, total, errors, firstError, total / elapsed, LoadRun.Percentile(latencies, 0.50), LoadRun.Percentile(latencies, 0.99), cpuSeconds * 1000 / total);
    }

    /// <summary>One connection moving <paramref name="mib"/> MiB host → client after the connection sequence; timed from the command to the last byte.</summary>
    private static async Task<BulkResult> MeasureBulkAsync(int port, SignInTicket? ticket, int mib, CancellationToken cancellationToken)
    {
        var total = (long)mib * 1024 * 1024;
        await using var client = await BenchClient.ConnectAsync(port, ticket is null ? Captures.ConnectionRequestSsl : Captures.ConnectionRequestAad, cancellationToken);
        if (ticket is not null && await client.SignInAsync(ticket, cancellationToken) != RdsAadAuthResult.Success)
        {
            throw new IOException($"the relay round's sign-in was refused (0x{client.Result:X8})");
        }

        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        var workItems = ThreadPool.CompletedWorkItemCount;
        var started = Stopwatch.GetTimestamp();
        await client.StartSessionAsync(TlsStub.Bulk, total, cancellationToken);
        var buffer = new byte[64 * 1024];
        long received = 0;
        while (received < total)
        {
            var read = await client.Tls.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                throw new IOException($"closed after {received} of {total} bytes");
            }

            received += read;
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        var gib = total / (1024.0 * 1024 * 1024);
        return new BulkResult(
            total / seconds / (1024 * 1024),
            cpuSeconds / gib,
            (GC.GetTotalAllocatedBytes(precise: true) - allocated) / gib / (1024 * 1024),
            (ThreadPool.CompletedWorkItemCount - workItems) / gib);
    }

    private static async Task<MemoryResult> MeasureMemoryAsync(int rdpPort, TlsStub stub, SessionRegistry sessions, List<SignInTicket> tickets, int concurrency, CancellationToken cancellationToken)
    {
        var count = tickets.Count;

        async Task<(MemorySnapshot Opened, MemorySnapshot Released)> OpenAndMeasureAsync(bool throughGateway)
        {
            await WaitUntilAsync(() => stub.Open == 0 && sessions.Count == 0, cancellationToken);
            var before = MemorySnapshot.Take();
            var clients = new BenchClient[count];
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < count)
                {
                    var client = await BenchClient.ConnectAsync(throughGateway ? rdpPort : stub.Port, throughGateway ? Captures.ConnectionRequestAad : Captures.ConnectionRequestSsl, cancellationToken);
                    if (throughGateway && await client.SignInAsync(tickets[i], cancellationToken) != RdsAadAuthResult.Success)
                    {
                        throw new IOException($"sign-in refused (0x{client.Result:X8})");
                    }

                    await client.StartSessionAsync(TlsStub.Idle, 0, cancellationToken);
                    clients[i] = client;
                }
            })));
            await WaitUntilAsync(() => stub.Open == count && (!throughGateway || sessions.Count == count), cancellationToken);

            // Let the last copies settle into their idle reads.
            await Task.Delay(500, cancellationToken);
            var after = MemorySnapshot.Take();
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            // What closing them gives back: the part that really is per connection, whatever the GC kept committed meanwhile.
            await WaitUntilAsync(() => stub.Open == 0 && sessions.Count == 0, cancellationToken);
            await Task.Delay(500, cancellationToken);
            var closed = MemorySnapshot.Take();
            return (after - before, after - closed);
        }

        var (direct, directReleased) = await OpenAndMeasureAsync(throughGateway: false);
        var (gateway, gatewayReleased) = await OpenAndMeasureAsync(throughGateway: true);
        return new MemoryResult(count, direct, gateway, directReleased, gatewayReleased);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while (!condition())
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("the connections did not reach the expected state within 30 s");
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    internal static async Task<Arranged> ArrangeAsync(IServiceProvider services, int stubPort, GatewaySettings settings, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var access = scope.ServiceProvider.GetRequiredService<AccessService>();
        var tenant = await directory.FindTenantAsync(Tenant, cancellationToken) ?? throw new InvalidOperationException("the first-run bootstrap created no tenant");
        var domain = tenant.Domains.Single(d => d.IsInitial).Name;
        // GATEHOUSE_BENCH_STUB_ADDRESS=localhost registers the stub by name instead of by address (the host leg's TLS
        // context is then shared: .NET caches a client SSL_CTX only for a TLS target name, not for an IP address).
        var stubAddress = Environment.GetEnvironmentVariable("GATEHOUSE_BENCH_STUB_ADDRESS") is { Length: > 0 } named ? named : "127.0.0.1";
        var host = await directory.CreateHostAsync(tenant.Id, StubHost, stubAddress, stubPort, BackendSecurity.Tls, userAccountName: "benchuser", userSecret: "stub-has-no-password", cancellationToken: cancellationToken);
        var desktop = await directory.CreateHostAsync(tenant.Id, DesktopHost, "127.0.0.1", settings.XrdpPort, BackendSecurity.Tls, userAccountName: settings.XrdpUser, userSecret: settings.XrdpPassword, cancellationToken: cancellationToken);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, $"bench@{domain}", "Gateway benchmark", password: "Gateway-Benchmark-Password-1!", temporary: false, cancellationToken);
        var (noRole, _) = await directory.CreateUserAsync(tenant.Id, $"norole@{domain}", "Gateway benchmark without a role", password: "Gateway-Benchmark-Password-1!", temporary: false, cancellationToken);
        await access.AssignRoleAsync(tenant.Id, LoginRole, user.UserPrincipalName, $"/hosts/{StubHost}", cancellationToken: cancellationToken);
        await access.AssignRoleAsync(tenant.Id, LoginRole, user.UserPrincipalName, $"/hosts/{DesktopHost}", cancellationToken: cancellationToken);
        return new Arranged(tenant, host, desktop, user, noRole);
    }
}

/// <summary>The directory objects of the run.</summary>
internal sealed record Arranged(Tenant Tenant, Host Host, Host Desktop, User User, User NoRoleUser);

/// <summary>Mints what FreeRDP gets from the IdP before it connects: a PoP-bound access token (TokenService) and an aad_nonce (ServerChallengeService).</summary>
internal sealed class Minter(IServiceProvider services, Arranged arranged, IReadOnlyList<PopKeyPair> keys)
{
    private int _next;

    public Task<List<SignInTicket>> MintAsync(User user, int count, CancellationToken cancellationToken) => MintAsync(user, arranged.Host, count, cancellationToken);

    public async Task<List<SignInTicket>> MintAsync(User user, Host host, int count, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<TokenService>();
        var challenges = scope.ServiceProvider.GetRequiredService<ServerChallengeService>();
        var tickets = new List<SignInTicket>(count);
        for (var i = 0; i < count; i++)
        {
            var pop = keys[_next++ % keys.Count];
            var token = await tokens.IssueRdpAccessTokenAsync(new RdpTokenRequest
            {
                Tenant = arranged.Tenant,
                User = user,
                Host = host,
                Amr = ["pwd"],
                AuthTime = DateTimeOffset.UtcNow,
                ClientId = RdpClient.ClientId,
                CnfKid = pop.Thumbprint,
                GrantId = Guid.NewGuid(),
            }, cancellationToken);
            tickets.Add(new SignInTicket(token, pop, await challenges.IssueAsync(DateTimeOffset.UtcNow, cancellationToken), host.Name));
        }

        return tickets;
    }
}
