using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Gateway.Tests.WebAccount;

/// <summary>
/// RDS AAD Auth through the real connection handler on loopback, driven by a C# client that behaves like FreeRDP's
/// /sec:aad (CR with PROTOCOL_RDSAAD, TLS, read the nonce, send the signed assertion, read the result).
/// </summary>
public sealed partial class WebAccountSignInTests
{
    private static readonly RSA Key = RSA.Create(2048);

    [Fact]
    public async Task ValidAssertion_AndAllowed_GetsSuccessAndSignsIn()
    {
        var authorizer = new FakeAuthorizer(RdsAadAuthResult.Success);
        await using var gateway = await StartAsync(authorizer);
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        var nonce = await client.ReadNonceAsync();
        await client.SendAsync(Assertion(nonce));
        Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());
        Assert.Equal(1, authorizer.Calls);
    }

    [Fact]
    public async Task ValidAssertion_ButNoRole_GetsAccessDenied()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied));
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.AccessDenied, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task NonceOfAnotherConnection_GetsInvalidTokenAndTheAuthorizerIsNotAsked()
    {
        var authorizer = new FakeAuthorizer(RdsAadAuthResult.Success);
        await using var gateway = await StartAsync(authorizer);
        await using var first = await AadTestClient.ConnectAsync(gateway.Port);
        await using var second = await AadTestClient.ConnectAsync(gateway.Port);
        var firstNonce = await first.ReadNonceAsync();
        await second.ReadNonceAsync();
        await second.SendAsync(Assertion(firstNonce));
        Assert.Equal(RdsAadAuthResult.InvalidToken, await second.ReadResultAsync());
        Assert.Equal(0, authorizer.Calls);

        // The first connection is unaffected and still signs in with its own nonce.
        await first.SendAsync(Assertion(firstNonce));
        Assert.Equal(RdsAadAuthResult.Success, await first.ReadResultAsync());
    }

    [Fact]
    public async Task OversizedRequest_IsRefusedWithoutReadingItAll()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success), o => o.MaxAssertionBytes = 4096);
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.ReadNonceAsync();
        await client.SendAsync(Encoding.ASCII.GetBytes("{\"rdp_assertion\":\"" + new string('A', 8192)));
        Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task SlowClient_IsClosedAtTheAssertionDeadline_WhileAnotherSignsIn()
    {
        // The deadline is the gateway's clock, moved by the test: how fast the machine is decides nothing.
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success));
        var assertionTimeout = new GatewayOptions().AssertionTimeout;
        await using var slow = await AadTestClient.ConnectAsync(gateway.Port);
        await slow.ReadNonceAsync();
        await using var fast = await AadTestClient.ConnectAsync(gateway.Port);
        await fast.SendAsync(Assertion(await fast.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.Success, await fast.ReadResultAsync());
        Assert.Equal(1, gateway.Time.Armed(assertionTimeout));

        // Only the slow client is still waiting for its assertion: the deadline passes for it alone.
        gateway.Time.Advance(assertionTimeout);
        Assert.True(await slow.IsClosedAsync());
        var timedOut = (await gateway.SignInLog.WaitForAsync(2)).Single(e => !e.Succeeded);
        Assert.StartsWith("assertion_timeout: no authentication request within 300 s", timedOut.Reason, StringComparison.Ordinal);
        Assert.Equal("web_account", Assert.Single(gateway.SignInLog.Entries, e => e.Succeeded).Protocol);
    }

    [Fact]
    public async Task GarbageJson_GetsInvalidToken()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success));
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.ReadNonceAsync();
        await client.SendAsync("[\"not an object\"]\0"u8.ToArray());
        Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
    }

    [Fact]
    public async Task Allowed_ButTheHostIsUnreachable_GetsNoLogonServers_AndTheLogSaysBackendUnreachable()
    {
        var closedPort = ClosedPort();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(closedPort) }, o => o.BackendConnectTimeout = TimeSpan.FromSeconds(5));
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.NoLogonServers, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith("backend_unreachable:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("0xC000005E", entry.Code);
        Assert.Contains("gatehouse host test vm1", entry.Fix, StringComparison.Ordinal);
        Assert.Equal(0, gateway.Sessions.Count);
        Assert.Empty(gateway.Journal.Events);
    }

    [Fact]
    public async Task Allowed_ButTheHostPresentsAnotherKey_GetsNoLogonServers_NothingIsSent_AndTheLogSaysHowToTrustIt()
    {
        const string trusted = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        await using var host = TlsBackend.Start();
        var grant = Grant(host.Port);
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = grant with { Backend = grant.Backend with { CertificatePin = trusted } } });
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.NoLogonServers, await client.ReadResultAsync());
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith("backend_certificate_changed:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains(trusted, entry.Reason, StringComparison.Ordinal);
        Assert.Contains("gatehouse host trust vm1 --fingerprint SHA256:", entry.Fix, StringComparison.Ordinal);
        Assert.Equal(0, gateway.Sessions.Count);

        // The host leg was closed without a byte after the TLS handshake: no Client Info PDU with the mapped account.
        Assert.True(await host.ClosedAsync());
    }

    [Fact]
    public async Task Allowed_ButTheSessionStartRecordCannotBeWritten_IsRefused_AndTheHostLegIsClosed()
    {
        await using var host = TlsBackend.Start();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) });
        gateway.Journal.FailStart = true;
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.NoLogonServers, await client.ReadResultAsync());
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.StartsWith("session_record_failed:", entry.Reason, StringComparison.Ordinal);
        Assert.True(await host.ClosedAsync(), "the host leg is closed when the session is refused");
        Assert.Equal(0, gateway.Sessions.Count);
    }

    [Fact]
    public async Task Allowed_OpensALiveSession_WithItsRecords_AndAKillEndsIt()
    {
        await using var host = TlsBackend.Start();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) });
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());

        var session = Assert.Single(gateway.Sessions.List());
        Assert.Equal("alice@contoso.test", session.Grant.UserPrincipalName);
        Assert.Equal("vmuser", session.Grant.Credentials.UserName);
        Assert.StartsWith($"start {session.Id} alice@contoso.test vm1", Assert.Single(gateway.Journal.Events), StringComparison.Ordinal);
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.True(entry.Succeeded);
        Assert.Equal(session.Id, entry.SessionId);
        Assert.Equal("vmuser", entry.TargetAccount);
        Assert.Equal("Virtual Machine User Login", entry.RoleName);

        // Nothing else can end it: no deadline fires on the test's clock, and neither side closes.
        Assert.True(gateway.Sessions.Kill(session.Id, "killed: by the test"));
        Assert.True(await client.IsClosedAsync());
        await WaitUntilAsync(() => gateway.Journal.Events.Count == 2);
        Assert.Equal($"end {session.Id} killed: by the test", gateway.Journal.Events[1]);
        Assert.Equal(0, gateway.Sessions.Count);
        Assert.True(await host.ClosedAsync());
    }

    [Fact]
    public async Task ClientLeavingRightAfterItsAssertion_LeavesNoSessionOrHostLegBehind()
    {
        await using var host = TlsBackend.Start();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) });
        await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
        {
            await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        }

        // The decision runs to its end whatever the client does: the session opens, the sign-in is logged, and the
        // session is closed again with its end record once the answer finds no client.
        await gateway.WaitIdleAsync();
        await WaitUntilAsync(() => gateway.Journal.Events.Count == 2);
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.StartsWith($"start {entry.SessionId} ", gateway.Journal.Events[0], StringComparison.Ordinal);
        Assert.StartsWith($"end {entry.SessionId} client_closed", gateway.Journal.Events[1], StringComparison.Ordinal);
        Assert.True(await host.ClosedAsync(), "the host leg is closed");
    }

    // Every connection that reaches a decision leaves exactly one sign-in log entry, written before the client is
    // answered, whatever the client does next. The holds stand for the access engine at work when the client leaves.

    [Fact]
    public async Task ValidAssertion_ClientLeavesWhileTheGatewayDecides_LeavesOneSuccessEntry_AndNoSession()
    {
        await using var host = TlsBackend.Start();
        var hold = new Gate();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port), Hold = hold });
        await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
        {
            await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        }

        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal("vm1", entry.HostName);
        Assert.NotNull(entry.SessionId);
        await WaitUntilAsync(() => gateway.Journal.Events.Count == 2);
        Assert.StartsWith($"end {entry.SessionId} client_closed", gateway.Journal.Events[1], StringComparison.Ordinal);
        Assert.Equal(0, gateway.SignInLog.Lost);
    }

    [Fact]
    public async Task Refused_ClientLeavesWhileTheGatewayDecides_IsLogged()
    {
        var hold = new Gate();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied) { Hold = hold });
        await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
        {
            await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        }

        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.False(entry.Succeeded);
        Assert.Equal(("0x80070005", "no role"), (entry.Code, entry.Reason));
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
    }

    [Fact]
    public async Task Refusal_IsLoggedBeforeTheClientHearsIt()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied));
        var hold = new Gate();
        gateway.SignInLog.Hold = hold;
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        var result = client.ReadResultAsync();

        // The gateway is writing the entry: the client has no answer yet; it has one once the entry is written.
        await hold.Entered.WaitAsync(Until.Backstop);
        Assert.False(result.IsCompleted, "the client heard the refusal before it was logged");
        hold.Open();
        Assert.Equal(RdsAadAuthResult.AccessDenied, await result);
        Assert.Single(gateway.SignInLog.Entries);
    }

    [Fact]
    public async Task RacingClients_EveryConnectionThatReachedADecisionLeavesExactlyOneEntry_50Times()
    {
        const int Iterations = 50;
        await using var host = TlsBackend.StartForMany();
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) });
        for (var i = 0; i < Iterations; i++)
        {
            // A valid assertion, and the client leaves at once.
            await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
            {
                await client.SendAsync(Assertion(await client.ReadNonceAsync()));
            }

            // A malformed request, and the client leaves at once.
            await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
            {
                await client.ReadNonceAsync();
                await client.SendAsync("[\"not an object\"]\0"u8.ToArray());
            }

            // Another connection's nonce, and the client leaves at once.
            await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
            {
                await client.ReadNonceAsync();
                await client.SendAsync(Assertion(ServerNonce.Issue(gateway.Time.GetUtcNow()).Value));
            }

            // A client that stays for its answer, then leaves.
            await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
            {
                await client.SendAsync(Assertion(await client.ReadNonceAsync()));
                Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());
            }

            await gateway.WaitIdleAsync();
            var entries = gateway.SignInLog.Entries;
            Assert.True(entries.Count == (i + 1) * 4, $"iteration {i}: {entries.Count} entries for {(i + 1) * 4} connections: {string.Join(" | ", entries.Skip(i * 4).Select(e => e.Reason))}");
        }

        var all = gateway.SignInLog.Entries;
        Assert.Equal(all.Count, all.Select(e => e.ConnectionId).Distinct().Count());
        Assert.Equal(2 * Iterations, all.Count(e => e.Succeeded));
        Assert.Equal(Iterations, all.Count(e => e.Reason.StartsWith("malformed_assertion:", StringComparison.Ordinal)));
        Assert.Equal(Iterations, all.Count(e => e.Reason.StartsWith("bad_nonce:", StringComparison.Ordinal)));
        Assert.Equal(0, gateway.SignInLog.Lost);
    }

    [Fact]
    public async Task MaximumSessionDuration_EndsTheSession_WithThatReason()
    {
        await using var host = TlsBackend.Start();
        var limit = TimeSpan.FromMinutes(90);
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success) { Grant = Grant(host.Port) with { MaxDuration = limit } });
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());
        await gateway.Time.AdvanceWhenArmedAsync(limit);
        Assert.True(await client.IsClosedAsync());
        await WaitUntilAsync(() => gateway.Journal.Events.Count == 2);
        Assert.Contains("max_session_duration", gateway.Journal.Events[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refusals_AreInTheSignInLog_WithCodeAndReason()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied));
        await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
        {
            await client.SendAsync(Assertion(await client.ReadNonceAsync()));
            Assert.Equal(RdsAadAuthResult.AccessDenied, await client.ReadResultAsync());
        }

        await using (var client = await AadTestClient.ConnectAsync(gateway.Port))
        {
            await client.ReadNonceAsync();
            await client.SendAsync("[\"not an object\"]\0"u8.ToArray());
            Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
        }

        var entries = await gateway.SignInLog.WaitForAsync(2);
        Assert.Equal(2, entries.Count);
        Assert.Equal(("0x80070005", "no role"), (entries[0].Code, entries[0].Reason));
        Assert.Equal("web_account", entries[0].Protocol);
        Assert.Equal("0x80090308", entries[1].Code);
        Assert.StartsWith("malformed_assertion:", entries[1].Reason, StringComparison.Ordinal);
        Assert.All(entries, e => Assert.False(e.Succeeded));
    }

    private static SessionGrant Grant(int backendPort) => new()
    {
        TenantId = Guid.NewGuid(),
        UserId = Guid.NewGuid(),
        UserPrincipalName = "alice@contoso.test",
        HostId = Guid.NewGuid(),
        HostName = "vm1",
        RoleName = "Virtual Machine User Login",
        Backend = new BackendTarget("127.0.0.1", backendPort, SecurityProtocol.Ssl, "vmuser"),
        Credentials = new InjectedCredentials(string.Empty, "vmuser", "host-secret"),
    };

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Task WaitUntilAsync(Func<bool> condition) => Until.TrueAsync(condition, "the condition");

    private static Task<GatewayHost> StartAsync(FakeAuthorizer authorizer, Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions { NegotiationTimeout = TimeSpan.FromSeconds(10), TlsHandshakeTimeout = TimeSpan.FromSeconds(10) };
        change?.Invoke(options);
        var directory = new FakeWebAccountDirectory { CnfKid = Thumbprint() };
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<IWebAccountDirectory>(directory);
            services.AddSingleton<ISignInAuthorizer>(authorizer);
            services.AddSingleton(new WebAccountOptions());
            services.AddSingleton<AssertionValidator>();
            services.AddSingleton<ISignInMethod, WebAccountAuthenticator>();
        });
    }

    private static string Thumbprint()
    {
        var p = Key.ExportParameters(false);
        return JwkThumbprint.ComputeRsa(B64(p.Exponent!), B64(p.Modulus!));
    }

    /// <summary>The request FreeRDP's aad.c builds, signed with the PoP key.</summary>
    private static byte[] Assertion(string nonce)
    {
        var p = Key.ExportParameters(false);
        var header = $"{{\"alg\":\"RS256\",\"kid\":\"{B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{Thumbprint()}\"}}"))}\"}}";
        var payload = $"{{\"ts\":\"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}\",\"at\":\"h.p.s\",\"u\":\"ms-device-service://termsrv.wvd.microsoft.com/name/vm1\",\"nonce\":\"{nonce}\",\"cnf\":{{\"jwk\":{{\"kty\":\"RSA\",\"e\":\"{B64(p.Exponent!)}\",\"n\":\"{B64(p.Modulus!)}\"}}}},\"client_claims\":\"{{\\\"aad_nonce\\\":\\\"good\\\"}}\"}}";
        var input = $"{B64(Encoding.UTF8.GetBytes(header))}.{B64(Encoding.UTF8.GetBytes(payload))}";
        var signature = Key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return [.. Encoding.UTF8.GetBytes($"{{\"rdp_assertion\":\"{input}.{B64(signature)}\"}}"), 0];
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private sealed class FakeAuthorizer(int code) : ISignInAuthorizer
    {
        private int _calls;

        public int Calls => _calls;

        /// <summary>Like the real one, it yields and honours its token.</summary>
        public async Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
        {
            await Task.Yield();
            if (Hold is { } hold)
            {
                await hold.PassAsync(cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Increment(ref _calls);
            return code == 0
                ? AccessOutcome.Allow("allowed by test", Grant)
                : AccessOutcome.Deny(code == RdsAadAuthResult.AccessDenied ? SignInFailure.AccessDenied : SignInFailure.AccessNotPossible, "no role");
        }

        public SessionGrant? Grant { get; init; }

        /// <summary>Holds the decision (the access engine at work) until opened.</summary>
        public Gate? Hold { get; init; }
    }

    /// <summary>A host that answers X.224 with TLS selected, does the TLS handshake and then holds the connection (an xrdp stand-in).</summary>
    internal sealed class TlsBackend : IAsyncDisposable
    {
        private static readonly X509Certificate2 Certificate = CreateCertificate();
        private readonly TcpListener _listener;
        private readonly TaskCompletionSource<SslStream> _tls = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _serve;

        private TlsBackend(bool many)
        {
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _serve = many ? ServeManyAsync() : ServeAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>A host for one connection (the tests look at its TLS stream).</summary>
        public static TlsBackend Start() => new(many: false);

        /// <summary>A host that answers every connection (X.224 confirm and TLS), each on its own, until disposed.</summary>
        public static TlsBackend StartForMany() => new(many: true);

        /// <summary>True when the gateway closes the host leg (read returns 0 or fails) before the backstop.</summary>
        public async Task<bool> ClosedAsync()
        {
            var tls = await _tls.Task.WaitAsync(Until.Backstop);
            try
            {
                return await tls.ReadAsync(new byte[64]).AsTask().WaitAsync(Until.Backstop) == 0;
            }
            catch (IOException)
            {
                return true;
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            if (_tls.Task.IsCompletedSuccessfully)
            {
                await _tls.Task.Result.DisposeAsync();
            }

            try
            {
                await _serve.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or TimeoutException or System.Security.Authentication.AuthenticationException)
            {
            }
        }

        private async Task ServeManyAsync()
        {
            var connections = new List<Task>();
            while (true)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    break;
                }

                connections.Add(Task.Run(async () =>
                {
                    using (client)
                    {
                        try
                        {
                            await using var tls = await AnswerAsync(client);
                            var sink = new byte[4096];
                            while (await tls.ReadAsync(sink) > 0)
                            {
                            }
                        }
                        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
                        {
                        }
                    }
                }));
            }

            await Task.WhenAll(connections);
        }

        private async Task ServeAsync()
        {
            var client = await _listener.AcceptTcpClientAsync();
            _tls.TrySetResult(await AnswerAsync(client));
        }

        private static async Task<SslStream> AnswerAsync(TcpClient client)
        {
            var stream = client.GetStream();
            var header = new byte[4];
            await stream.ReadExactlyAsync(header);
            var frame = new byte[(header[2] << 8) | header[3]];
            header.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4));
            var buffer = new ArrayBufferWriter<byte>();
            new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None)).Write(buffer);
            await stream.WriteAsync(buffer.WrittenMemory);
            var tls = new SslStream(stream);
            await tls.AuthenticateAsServerAsync(Certificate);
            return tls;
        }

        private static X509Certificate2 CreateCertificate()
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest("CN=xrdp-host", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            return X509Certificate2.CreateFromPem(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        }
    }
}
