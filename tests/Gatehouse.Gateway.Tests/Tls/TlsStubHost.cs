using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Tls;

/// <summary>
/// An xrdp-like host for the TLS sign-in: accepts any number of connections, selects TLS, answers the MCS phase with
/// the PDUs xrdp sent in the capture, records every Client Info PDU it gets, and answers one with xrdp's License Error
/// and Demand Active. It counts connections that closed without a Client Info PDU.
/// </summary>
internal sealed class TlsStubHost : IAsyncDisposable
{
    private static readonly X509Certificate2 Certificate = CreateCertificate();
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<ClientInfoPdu> _clientInfos = new();
    private readonly Task _accept;
    private int _connections;
    private int _closedWithoutClientInfo;

    private TlsStubHost()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The key the host presents (<see cref="Gatehouse.Gateway.Backend.HostKeyFingerprint"/>).</summary>
    public static string HostKey => Gatehouse.Gateway.Backend.HostKeyFingerprint.Of(Certificate);

    public int Connections => Volatile.Read(ref _connections);

    public int ClosedWithoutClientInfo => Volatile.Read(ref _closedWithoutClientInfo);

    public IReadOnlyList<ClientInfoPdu> ClientInfos => [.. _clientInfos];

    public static TlsStubHost Start() => new();

    /// <summary>Waits (up to the backstop) until <paramref name="count"/> connections closed without a Client Info PDU.</summary>
    public async Task<bool> WaitClosedWithoutClientInfoAsync(int count)
    {
        await Until.TrueAsync(() => ClosedWithoutClientInfo >= count, $"{count} host leg(s) closed without a Client Info PDU");
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException or TimeoutException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var gotClientInfo = false;
        try
        {
            using (client)
            {
                var stream = client.GetStream();
                var request = await TlsTestClient.ReadFrameAsync(stream);
                Assert.NotNull(request);
                var buffer = new ArrayBufferWriter<byte>();
                new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None)).Write(buffer);
                await stream.WriteAsync(buffer.WrittenMemory);
                await using var tls = new SslStream(stream);
                await tls.AuthenticateAsServerAsync(Certificate);
                while (await TlsTestClient.ReadFrameAsync(tls) is { } frame)
                {
                    if (!X224Data.TryUnwrapFrame(frame, out var payload, out _) || payload.IsEmpty)
                    {
                        continue;
                    }

                    byte[]? answer = (DomainMcsPduType)(payload[0] >> 2) switch
                    {
                        _ when payload[0] == 0x7F => TlsTestClient.Capture("s2c-001-mcs-connect-response.bin"),
                        DomainMcsPduType.AttachUserRequest => TlsTestClient.Capture("s2c-002-mcs-attach-user-confirm.bin"),
                        DomainMcsPduType.ChannelJoinRequest => TlsTestClient.Capture("s2c-003-mcs-channel-join-confirm.bin"),
                        _ when ClientInfoPdu.TryParse(frame, out var info, out _) => Record(info),
                        _ => null,
                    };
                    if (answer is not null)
                    {
                        await tls.WriteAsync(answer);
                        await tls.FlushAsync();
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
        }
        finally
        {
            if (!gotClientInfo)
            {
                Interlocked.Increment(ref _closedWithoutClientInfo);
            }
        }

        byte[] Record(ClientInfoPdu info)
        {
            gotClientInfo = true;
            _clientInfos.Enqueue(info);
            return [.. TlsTestClient.Capture("s2c-010-license-error.bin"), .. TlsTestClient.Capture("s2c-011-demand-active.bin")];
        }
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=xrdp-host", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509Certificate2.CreateFromPem(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
