using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>
/// A fast local stand-in for an xrdp host, in the benchmark process: answers the X.224 Connection Request with TLS
/// selected, does the TLS handshake, answers the MCS Connect Initial with the captured Connect Response and the next
/// frame (the Client Info PDU) with the captured Demand Active, then obeys one 12-byte command from the client:
/// <c>BULK</c> + byte count (sends that many bytes in writes of <see cref="WriteBytes"/>, 16 KiB unless asked otherwise,
/// then waits for the client to close) or
/// <c>IDLE</c> (waits for the client to close). Reached directly (the baseline) or through the gateway (the same bytes).
/// </summary>
internal sealed class TlsStub : IAsyncDisposable
{
    /// <summary>The command that asks for bulk data.</summary>
    public static readonly byte[] Bulk = "BULK"u8.ToArray();

    /// <summary>The command that keeps the connection idle.</summary>
    public static readonly byte[] Idle = "IDLE"u8.ToArray();

    private const int ChunkBytes = 16 * 1024;
    private static readonly byte[] Chunk = RandomNumberGenerator.GetBytes(ChunkBytes);
    private readonly int _writeBytes;
    private readonly TcpListener _listener;
    private readonly X509Certificate2 _certificate;
    private readonly Task _accept;
    private readonly CancellationTokenSource _stop = new();
    private int _open;

    private TlsStub(int writeBytes)
    {
        _writeBytes = Math.Clamp(writeBytes, 1, ChunkBytes);
        _certificate = CreateCertificate();
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(1024);
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections currently held by the stub.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Bytes per write of a bulk transfer (one TLS record each: 16 KiB, or small records like a busy desktop's updates).</summary>
    public int WriteBytes => _writeBytes;

    public static TlsStub Start(int writeBytes = ChunkBytes) => new(writeBytes);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        _certificate.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var socket = await _listener.AcceptSocketAsync(_stop.Token);
            socket.NoDelay = true;
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        Interlocked.Increment(ref _open);
        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            if (await RdpFrames.ReadTpktAsync(stream, _stop.Token) is null)
            {
                return;
            }

            await stream.WriteAsync(Captures.ConnectionConfirmSsl, _stop.Token);
            await using var tls = new SslStream(stream, leaveInnerStreamOpen: false);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, _stop.Token);
            if (await RdpFrames.ReadTpktAsync(tls, _stop.Token) is null)
            {
                return;
            }

            await tls.WriteAsync(Captures.ConnectResponse, _stop.Token);
            if (await RdpFrames.ReadTpktAsync(tls, _stop.Token) is null)
            {
                return;
            }

            await tls.WriteAsync(Captures.DemandActive, _stop.Token);
            var command = new byte[12];
            await tls.ReadExactlyAsync(command, _stop.Token);
            if (command.AsSpan(0, 4).SequenceEqual(Bulk))
            {
                var remaining = BinaryPrimitives.ReadInt64LittleEndian(command.AsSpan(4));
                while (remaining > 0)
                {
                    var take = (int)Math.Min(remaining, _writeBytes);
                    await tls.WriteAsync(Chunk.AsMemory(0, take), _stop.Token);
                    remaining -= take;
                }
            }

            // Hold the connection until the client (or the gateway) closes it.
            var sink = new byte[1];
            while (await tls.ReadAsync(sink, _stop.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException or EndOfStreamException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=bench-host", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509Certificate2.CreateFromPem(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
