using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Backend;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Backend;

public sealed class BackendConnectorTests
{
    private static readonly X509Certificate2 HostCertificate = CreateCertificate();
    private static readonly X509Certificate2 OtherCertificate = CreateCertificate();

    [Fact]
    public async Task TlsHost_Connects_SendsTheMappedCookie_AndReportsTheCertificate()
    {
        await using var host = FakeHost.Start(confirm => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.ExtendedClientDataSupported)));
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "gh-admin"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(result.Connected, result.Reason);
        await using var connection = result.Connection!;
        Assert.Equal(SecurityProtocol.Ssl, connection.Selected);
        Assert.Equal(HostKeyFingerprint.Of(HostCertificate), connection.HostKey);
        Assert.False(connection.TrustedOnFirstUse);
        if (OperatingSystem.IsLinux())
        {
            // The host leg gives OpenSSL's record buffers back while idle (docs/benchmarks.md: 33 KiB per idle leg).
            Assert.True(Gateway.Tls.TlsIdleMemory.ReleasesBuffersWhenIdle(connection.Stream));
        }

        var request = await host.Request;
        Assert.Equal("gh-admin", request.TokenValue);
        Assert.Equal(SecurityProtocol.Ssl, request.RequestedProtocols);

        await connection.Stream.WriteAsync("ping"u8.ToArray());
        Assert.Equal("ping", await host.ReadFourAsync());
    }

    [Theory]
    [InlineData("127.0.0.1", "vm1", "vm1")]
    [InlineData("127.0.0.1", null, "")]
    [InlineData("127.0.0.1", "not a name!", "")]
    [InlineData("localhost", "vm1", "localhost")]
    public async Task HostByAddress_GetsItsRegisteredNameAsTlsServerName(string address, string? name, string expected)
    {
        // With a name, .NET shares one TLS client context between host legs (8 KiB less per idle session) and may resume.
        await using var host = FakeHost.Start(_ => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, 0)));
        var result = await BackendConnector.ConnectAsync(new BackendTarget(address, host.Port, SecurityProtocol.Ssl, "u") { TlsServerName = name }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(result.Connected, result.Reason);
        await using var connection = result.Connection!;
        Assert.Equal(expected, await host.ServerNameAsync());
    }

    [Fact]
    public void HostKeyFingerprint_IsTheSha256OfTheSubjectPublicKeyInfo_InOneCanonicalForm()
    {
        var expected = "SHA256:" + Convert.ToBase64String(SHA256.HashData(HostCertificate.PublicKey.ExportSubjectPublicKeyInfo())).TrimEnd('=');
        Assert.Equal(expected, HostKeyFingerprint.Of(HostCertificate));
        Assert.Equal(50, expected.Length);

        // A certificate renewed with the same key keeps its fingerprint; another key does not.
        using var key = RSA.Create(2048);
        using var renewed = new CertificateRequest("CN=xrdp-host-renewed", HostCertificate.GetRSAPublicKey()!, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .Create(new X500DistinguishedName("CN=issuer"), X509SignatureGenerator.CreateForRSA(key, RSASignaturePadding.Pkcs1), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3]);
        Assert.Equal(expected, HostKeyFingerprint.Of(renewed));
        Assert.NotEqual(expected, HostKeyFingerprint.Of(OtherCertificate));

        // What an operator pastes: padded base64 (openssl … | base64) and any case of the prefix are the same key.
        Assert.True(HostKeyFingerprint.TryParse("  sha256:" + expected[7..] + "=  ", out var parsed));
        Assert.Equal(expected, parsed);
        Assert.True(HostKeyFingerprint.Matches(expected, "sha256:" + expected[7..] + "="));
        Assert.False(HostKeyFingerprint.Matches(expected, HostKeyFingerprint.Of(OtherCertificate)));
        foreach (var bad in new[] { "", "SHA256:", expected[7..], "MD5:" + expected[7..], expected[..^1], expected + "A", "SHA256:" + new string('!', 43), HostCertificate.GetCertHashString(HashAlgorithmName.SHA256) })
        {
            Assert.False(HostKeyFingerprint.TryParse(bad, out _), bad);
            Assert.False(HostKeyFingerprint.Matches(bad, bad), bad);
        }
    }

    [Fact]
    public async Task PinnedKey_Matches_OrTheTlsHostIsRefusedBeforeAnyByteAfterTheHandshake()
    {
        await using var host = FakeHost.Start(_ => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, 0)));
        var ok = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u") { CertificatePin = HostKeyFingerprint.Of(HostCertificate) }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(ok.Connected, ok.Reason);
        await ok.Connection!.DisposeAsync();

        // The host now presents another key (a man in the middle, or a new certificate): refused, both keys named.
        await using var other = FakeHost.Watching(SecurityProtocol.Ssl, OtherCertificate);
        var refused = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", other.Port, SecurityProtocol.Ssl, "u") { CertificatePin = HostKeyFingerprint.Of(HostCertificate) }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.False(refused.Connected);
        Assert.Equal(BackendFailure.CertificateChanged, refused.Failure);
        Assert.StartsWith("backend_certificate_changed:", refused.Reason, StringComparison.Ordinal);
        Assert.Contains(HostKeyFingerprint.Of(OtherCertificate), refused.Reason, StringComparison.Ordinal);
        Assert.Contains(HostKeyFingerprint.Of(HostCertificate), refused.Reason, StringComparison.Ordinal);
        Assert.Equal((HostKeyFingerprint.Of(OtherCertificate), HostKeyFingerprint.Of(HostCertificate)), (refused.PresentedKey, refused.TrustedKey));
        Assert.Equal(0, await other.BytesAfterHandshakeAsync());

        var fix = BackendAdvice.Fix(refused, "vm1", new BackendTarget("127.0.0.1", other.Port, SecurityProtocol.Ssl, "u"));
        Assert.Contains($"gatehouse host trust vm1 --fingerprint {HostKeyFingerprint.Of(OtherCertificate)}", fix, StringComparison.Ordinal);
        Assert.Contains(HostKeyFingerprint.Of(HostCertificate), fix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NlaHost_WithAnotherKey_IsRefusedBeforeCredSspStarts()
    {
        await using var host = FakeHost.Watching(SecurityProtocol.HybridEx, OtherCertificate);
        var result = await BackendConnector.ConnectAsync(
            new BackendTarget("127.0.0.1", host.Port, BackendTarget.NlaProtocols, "rdpuser") { CertificatePin = HostKeyFingerprint.Of(HostCertificate) },
            new Gatehouse.Gateway.Relay.InjectedCredentials("WORK", "rdpuser", "host-secret"),
            TimeSpan.FromSeconds(10),
            CancellationToken.None);

        Assert.Equal(BackendFailure.CertificateChanged, result.Failure);
        Assert.DoesNotContain("host-secret", result.Reason, StringComparison.Ordinal);

        // Not even the NTLM NEGOTIATE (the first TSRequest) reached the host.
        Assert.Equal(0, await host.BytesAfterHandshakeAsync());
    }

    [Fact]
    public async Task NlaHost_WithTheTrustedKey_GoesOnToCredSsp()
    {
        await using var host = FakeHost.Watching(SecurityProtocol.HybridEx);
        var result = await BackendConnector.ConnectAsync(
            new BackendTarget("127.0.0.1", host.Port, BackendTarget.NlaProtocols, "rdpuser") { CertificatePin = HostKeyFingerprint.Of(HostCertificate) },
            new Gatehouse.Gateway.Relay.InjectedCredentials("WORK", "rdpuser", "host-secret"),
            TimeSpan.FromSeconds(10),
            CancellationToken.None);

        // The fake host speaks no CredSSP, so the logon fails there, after the NEGOTIATE was sent.
        Assert.Equal(BackendFailure.CredSsp, result.Failure);
        Assert.True(await host.BytesAfterHandshakeAsync() > 0);
    }

    [Fact]
    public async Task HostWithoutAKey_IsTrustedOnFirstUse_BeforeAnything_AndTheFirstRecordedKeyWins()
    {
        await using var host = FakeHost.Start(_ => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, 0)));
        var recorder = new Recorder(firstWins: null);
        var first = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u") { FirstUse = recorder }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(first.Connected, first.Reason);
        await using (first.Connection)
        {
            Assert.True(first.Connection!.TrustedOnFirstUse);
            Assert.Equal([HostKeyFingerprint.Of(HostCertificate)], recorder.Presented);
        }

        // Another connection recorded another key first: this one is held to it.
        await using var other = FakeHost.Watching(SecurityProtocol.Ssl, OtherCertificate);
        var raced = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", other.Port, SecurityProtocol.Ssl, "u") { FirstUse = new Recorder(firstWins: HostKeyFingerprint.Of(HostCertificate)) }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(BackendFailure.CertificateChanged, raced.Failure);
        Assert.Equal(0, await other.BytesAfterHandshakeAsync());
    }

    [Theory]
    [InlineData("gone")]
    [InlineData("store down")]
    public async Task HostWithoutAKey_WhoseKeyCannotBeRecorded_IsRefused(string why)
    {
        await using var host = FakeHost.Watching(SecurityProtocol.Ssl);
        var recorder = new Recorder(firstWins: null) { Gone = why == "gone", Fails = why == "store down" };
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u") { FirstUse = recorder }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(BackendFailure.CertificateNotTrusted, result.Failure);
        Assert.StartsWith("backend_certificate_not_trusted:", result.Reason, StringComparison.Ordinal);
        Assert.Contains("gatehouse host test vm1", BackendAdvice.Fix(result, "vm1", new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u")), StringComparison.Ordinal);
        Assert.Equal(0, await host.BytesAfterHandshakeAsync());
    }

    [Theory]
    [InlineData("failure", BackendFailure.Negotiation, "refused Ssl with HybridRequiredByServer")]
    [InlineData("hybrid", BackendFailure.Negotiation, "selected Hybrid")]
    [InlineData("no-negotiation", BackendFailure.Negotiation, "without RDP negotiation")]
    public async Task HostAnswersBadly_IsANegotiationFailure(string answer, BackendFailure failure, string reason)
    {
        await using var host = FakeHost.Start(_ => answer switch
        {
            "failure" => new ConnectionConfirm(NegotiationResult.Failure(NegotiationFailureCode.HybridRequiredByServer)),
            "hybrid" => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Hybrid, 0)),
            _ => new ConnectionConfirm(null),
        });
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.False(result.Connected);
        Assert.Equal(failure, result.Failure);
        Assert.Contains(reason, result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClosedPort_IsUnreachable()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", port, SecurityProtocol.Ssl, "u"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(BackendFailure.Unreachable, result.Failure);
        Assert.StartsWith("backend_unreachable", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentHost_IsUnreachableAtTheDeadline()
    {
        // The deadline runs on a clock the test moves: it fires when the host has the request and stays silent, never
        // because the machine is slow (and a deadline on the wall clock would outlast the test's backstop).
        var time = new ManualTime();
        var timeout = TimeSpan.FromMinutes(10);
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var connecting = BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", ((IPEndPoint)silent.LocalEndpoint).Port, SecurityProtocol.Ssl, "u"), timeout, CancellationToken.None, time);
        using var host = await silent.AcceptTcpClientAsync().WaitAsync(Until.Backstop);
        var header = new byte[4];
        await host.GetStream().ReadExactlyAsync(header).AsTask().WaitAsync(Until.Backstop);
        Assert.False(connecting.IsCompleted, "the connector waits for the host's answer until its deadline");

        time.Advance(timeout);

        var result = await connecting.WaitAsync(Until.Backstop);
        Assert.Equal(BackendFailure.Unreachable, result.Failure);
    }

    [Fact]
    public async Task HostSendingGarbage_IsAProtocolFailure()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            await stream.ReadExactlyAsync(new byte[4]);
            await stream.WriteAsync(Convert.FromHexString("0300000b06d0000000"));
            client.Client.Shutdown(SocketShutdown.Send);
            _ = await stream.ReadAtLeastAsync(new byte[64], 1, throwOnEndOfStream: false);
        });
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port, SecurityProtocol.Ssl, "u"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(BackendFailure.Protocol, result.Failure);
        await serve.WaitAsync(Until.Backstop);
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=xrdp-host", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509Certificate2.CreateFromPem(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A store stand-in for trust on first use: records the first key (or had <c>firstWins</c> recorded before).</summary>
    private sealed class Recorder(string? firstWins) : IHostKeyFirstUse
    {
        private string? _trusted = firstWins;

        public List<string> Presented { get; } = [];

        public bool Gone { get; init; }

        public bool Fails { get; init; }

        public Task<string?> RecordAsync(string presented, CancellationToken cancellationToken)
        {
            if (Fails)
            {
                throw new InvalidOperationException("the store is down");
            }

            Presented.Add(presented);
            _trusted ??= presented;
            return Task.FromResult(Gone ? null : _trusted);
        }
    }

    /// <summary>A host that answers the X.224 request as configured and then speaks TLS (unit-test stand-in for xrdp).</summary>
    private sealed class FakeHost : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly TaskCompletionSource<ConnectionRequest> _request = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<SslStream> _tls = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _stop = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _serve;

        private readonly TaskCompletionSource<int> _bytesAfterHandshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly X509Certificate2 _certificate;

        private readonly bool _count;

        private FakeHost(Func<ConnectionRequest, ConnectionConfirm> answer, X509Certificate2 certificate, bool count)
        {
            _certificate = certificate;
            _count = count;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _serve = ServeAsync(answer);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public Task<ConnectionRequest> Request => _request.Task;

        public static FakeHost Start(Func<ConnectionRequest, ConnectionConfirm> answer, X509Certificate2? certificate = null) => new(answer, certificate ?? HostCertificate, count: false);

        /// <summary>A host that, after the TLS handshake, only watches whether the client sends anything before it closes.</summary>
        public static FakeHost Watching(SecurityProtocol selected, X509Certificate2? certificate = null) =>
            new(_ => new ConnectionConfirm(NegotiationResult.Response(selected, 0)), certificate ?? HostCertificate, count: true);

        /// <summary>How many bytes the client sent after the TLS handshake before it closed (0: nothing; read once).</summary>
        public Task<int> BytesAfterHandshakeAsync() => _bytesAfterHandshake.Task.WaitAsync(TimeSpan.FromSeconds(30));

        /// <summary>The TLS server name (SNI) the gateway sent; empty when none.</summary>
        public async Task<string> ServerNameAsync() => (await _tls.Task.WaitAsync(Until.Backstop)).TargetHostName;

        public async Task<string> ReadFourAsync()
        {
            var tls = await _tls.Task.WaitAsync(Until.Backstop);
            var bytes = new byte[4];
            await tls.ReadExactlyAsync(bytes).AsTask().WaitAsync(Until.Backstop);
            return System.Text.Encoding.ASCII.GetString(bytes);
        }

        public async ValueTask DisposeAsync()
        {
            _stop.TrySetResult();
            _listener.Stop();
            try
            {
                await _serve.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or TimeoutException or System.Security.Authentication.AuthenticationException)
            {
            }
        }

        private async Task ServeAsync(Func<ConnectionRequest, ConnectionConfirm> answer)
        {
            using var client = await _listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var frame = await ReadFrameAsync(stream);
            Assert.True(ConnectionRequest.TryParse(frame, out var request, out _));
            _request.TrySetResult(request);
            var confirm = answer(request);
            var buffer = new ArrayBufferWriter<byte>();
            confirm.Write(buffer);
            await stream.WriteAsync(buffer.WrittenMemory);
            if (confirm.Result is { IsFailure: false })
            {
                var tls = new SslStream(stream);
                await tls.AuthenticateAsServerAsync(_certificate);
                _tls.TrySetResult(tls);
                if (_count)
                {
                    // Whether the client sends anything (a Client Info PDU, a CredSSP NEGOTIATE) before it closes; on the
                    // first bytes the host closes too, so a CredSSP client stops waiting for an answer.
                    var read = 0;
                    try
                    {
                        read = await tls.ReadAsync(new byte[4096]);
                    }
                    catch (IOException)
                    {
                    }

                    _bytesAfterHandshake.TrySetResult(read);
                    await tls.DisposeAsync();
                    return;
                }

                await _stop.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }

        private static async Task<byte[]> ReadFrameAsync(NetworkStream stream)
        {
            var header = new byte[4];
            await stream.ReadExactlyAsync(header);
            var frame = new byte[(header[2] << 8) | header[3]];
            header.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4));
            return frame;
        }
    }
}
