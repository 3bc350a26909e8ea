using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Tls;

namespace Gatehouse.Gateway.Tests.Tls;

/// <summary>OpenSSL's record buffers given back while a TLS leg is idle (SSL_MODE_RELEASE_BUFFERS; Linux only).</summary>
public sealed class TlsIdleMemoryTests
{
    [Fact]
    public async Task ReleaseBuffersWhenIdle_SetsTheMode_OnBothEnds_AndDataStillFlowsBothWays()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        await using var pair = await TlsPair.CreateAsync();

        // .NET leaves the buffers in place: this is what the gateway changes.
        Assert.False(TlsIdleMemory.ReleasesBuffersWhenIdle(pair.Server));
        Assert.False(TlsIdleMemory.ReleasesBuffersWhenIdle(pair.Client));

        Assert.True(TlsIdleMemory.ReleaseBuffersWhenIdle(pair.Server));
        Assert.True(TlsIdleMemory.ReleaseBuffersWhenIdle(pair.Client));
        Assert.True(TlsIdleMemory.ReleasesBuffersWhenIdle(pair.Server));
        Assert.True(TlsIdleMemory.ReleasesBuffersWhenIdle(pair.Client));

        // Records of every size, both ways, with idle (zero-byte) reads in between: each one re-allocates the buffers.
        foreach (var size in new[] { 1, 100, 16 * 1024, 16 * 1024 + 1, 200 * 1024 })
        {
            var data = RandomNumberGenerator.GetBytes(size);
            await EchoAsync(pair.Client, pair.Server, data);
            await EchoAsync(pair.Server, pair.Client, data);
        }
    }

    [Fact]
    public async Task AStreamThatIsNotAuthenticated_IsLeftAlone()
    {
        using var socket = new MemoryStream();
        await using var tls = new SslStream(socket);
        Assert.False(TlsIdleMemory.ReleaseBuffersWhenIdle(tls));
        Assert.Null(TlsIdleMemory.ReleasesBuffersWhenIdle(tls));
    }

    private static async Task EchoAsync(SslStream from, SslStream to, byte[] data)
    {
        var parked = to.ReadAsync(Memory<byte>.Empty).AsTask();
        await from.WriteAsync(data);
        await from.FlushAsync();
        Assert.Equal(0, await parked.WaitAsync(Until.Backstop));
        var got = new byte[data.Length];
        await to.ReadExactlyAsync(got).AsTask().WaitAsync(Until.Backstop);
        Assert.Equal(data, got);
    }
}

/// <summary>Two authenticated <see cref="SslStream"/>s over a loopback TCP connection (a TLS server end and a client end).</summary>
internal sealed class TlsPair : IAsyncDisposable
{
    private static readonly X509Certificate2 Certificate = CreateCertificate();

    private TlsPair(SslStream server, SslStream client)
    {
        Server = server;
        Client = client;
    }

    public SslStream Server { get; }

    public SslStream Client { get; }

    public static async Task<TlsPair> CreateAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepting = listener.AcceptSocketAsync();
        var clientSocket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await clientSocket.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        var serverSocket = await accepting;
        var server = new SslStream(new NetworkStream(serverSocket, ownsSocket: true));
        var client = new SslStream(new NetworkStream(clientSocket, ownsSocket: true));
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Certificate, EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13 }),
            client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "host.test", RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && presented.GetCertHashString() == Certificate.GetCertHashString() })).WaitAsync(Until.Backstop);
        return new TlsPair(server, client);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Client.DisposeAsync();
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=host.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509Certificate2.CreateFromPem(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
