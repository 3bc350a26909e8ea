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

    [Fact]
    public async Task TlsHost_Connects_SendsTheMappedCookie_AndReportsTheCertificate()
    {
        await using var host = FakeHost.Start(confirm => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.ExtendedClientDataSupported)));
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "gh-admin"), TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(result.Connected, result.Reason);
        await using var connection = result.Connection!;
        Assert.Equal(SecurityProtocol.Ssl, connection.Selected);
        Assert.Equal(HostCertificate.GetCertHashString(HashAlgorithmName.SHA256), connection.CertificateSha256);
        var request = await host.Request;
        Assert.Equal("gh-admin", request.TokenValue);
        Assert.Equal(SecurityProtocol.Ssl, request.RequestedProtocols);

        await connection.Stream.WriteAsync("ping"u8.ToArray());
        Assert.Equal("ping", await host.ReadFourAsync());
    }

    [Fact]
    public async Task PinnedCertificate_Matches_OrIsRefused()
    {
        await using var host = FakeHost.Start(_ => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, 0)));
        var pin = HostCertificate.GetCertHashString(HashAlgorithmName.SHA256);
        var ok = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "u") { CertificateSha256 = pin.ToLowerInvariant() }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.True(ok.Connected, ok.Reason);
        await ok.Connection!.DisposeAsync();

        await using var other = FakeHost.Start(_ => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, 0)));
        var refused = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", other.Port, SecurityProtocol.Ssl, "u") { CertificateSha256 = new string('0', 64) }, TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(BackendFailure.Tls, refused.Failure);
        Assert.Contains("not the registered one", refused.Reason, StringComparison.Ordinal);
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
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", ((IPEndPoint)silent.LocalEndpoint).Port, SecurityProtocol.Ssl, "u"), TimeSpan.FromMilliseconds(300), CancellationToken.None);
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

    /// <summary>A host that answers the X.224 request as configured and then speaks TLS (unit-test stand-in for xrdp).</summary>
    private sealed class FakeHost : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly TaskCompletionSource<ConnectionRequest> _request = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<SslStream> _tls = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _stop = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _serve;

        private FakeHost(Func<ConnectionRequest, ConnectionConfirm> answer)
        {
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _serve = ServeAsync(answer);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public Task<ConnectionRequest> Request => _request.Task;

        public static FakeHost Start(Func<ConnectionRequest, ConnectionConfirm> answer) => new(answer);

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
                await tls.AuthenticateAsServerAsync(HostCertificate);
                _tls.TrySetResult(tls);
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
