using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Gatehouse.Protocol.X224;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>What a minimal RDS AAD Auth server saw of one connection.</summary>
internal sealed class RdsAadSession
{
    private readonly List<string> _steps = [];

    public ConnectionRequest? ConnectionRequest { get; set; }

    public SslProtocols? TlsProtocol { get; set; }

    public string? SentNonce { get; set; }

    public string? AuthRequestJson { get; set; }

    public string? RdpAssertion { get; set; }

    public long? AuthenticationResult { get; set; }

    /// <summary>The first TPKT the client sent after the auth result (MCS Connect Initial on success).</summary>
    public byte[]? FirstTpktAfterAuth { get; set; }

    public Exception? Failure { get; set; }

    public IReadOnlyList<string> Steps
    {
        get
        {
            lock (_steps)
            {
                return [.. _steps];
            }
        }
    }

    public void Step(string text)
    {
        lock (_steps)
        {
            _steps.Add($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {text}");
        }
    }
}

/// <summary>
/// A minimal RDS AAD Auth acceptor ([MS-RDPBCGR] 5.4.5.4, FreeRDP's <c>/sec:aad</c>) for one connection, as the real
/// client expects it (design/protocol/freerdp-aad-client.md §0-§2): X.224 Connection Request → Connection Confirm
/// selecting PROTOCOL_RDSAAD → TLS as server → <c>{"ts_nonce":…}\0</c> → NUL-terminated <c>{"rdp_assertion":…}</c> →
/// the test's verdict → <c>{"authentication_result":N}\0</c> → the client's next TPKT (MCS Connect Initial).
/// </summary>
internal sealed class RdsAadAcceptor : IAsyncDisposable
{
    /// <summary>E_ACCESSDENIED as the unsigned decimal FreeRDP reads.</summary>
    public const long AccessDenied = 2147942405;

    private const int MaxPduBytes = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly X509Certificate2 _certificate;

    private RdsAadAcceptor(TcpListener listener, X509Certificate2 certificate, Func<RdsAadSession, Task<bool>> verify, TimeSpan timeout)
    {
        _listener = listener;
        _certificate = certificate;
        Session = new RdsAadSession();
        Completion = RunAsync(verify, timeout);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public RdsAadSession Session { get; }

    /// <summary>Completes when the connection is done (or failed: see <see cref="RdsAadSession.Failure"/>).</summary>
    public Task Completion { get; }

    /// <summary>
    /// Listens on 127.0.0.1 port 0. <paramref name="verify"/> gets the session once the assertion arrived and decides
    /// the auth result (true → 0, false or an exception → E_ACCESSDENIED).
    /// </summary>
    public static RdsAadAcceptor Start(Func<RdsAadSession, Task<bool>> verify, TimeSpan timeout)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(1);
        return new RdsAadAcceptor(listener, CreateCertificate(), verify, timeout);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await Completion;
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // Stopped while waiting.
        }

        _stop.Dispose();
        _certificate.Dispose();
    }

    private async Task RunAsync(Func<RdsAadSession, Task<bool>> verify, TimeSpan timeout)
    {
        await Task.Yield();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(timeout);
        var ct = deadline.Token;
        try
        {
            using var client = await _listener.AcceptTcpClientAsync(ct);
            client.NoDelay = true;
            Session.Step($"TCP connection from {client.Client.RemoteEndPoint}");
            await using var network = client.GetStream();

            // X.224: Connection Request in, Connection Confirm selecting PROTOCOL_RDSAAD out.
            var requestFrame = await ReadTpktAsync(network, ct);
            var sequence = new SequenceReader<byte>(new ReadOnlySequence<byte>(requestFrame));
            if (Tpkt.TryReadFrame(ref sequence, out var frame, out var frameError) != OperationStatus.Done)
            {
                throw new InvalidDataException($"the first bytes are not one TPKT frame: {frameError}");
            }

            if (!ConnectionRequest.TryParse(frame.ToArray(), out var request, out var error))
            {
                throw new InvalidDataException($"X.224 Connection Request refused: {error}");
            }

            Session.ConnectionRequest = request;
            Session.Step($"X.224 {request} ({Convert.ToHexString(requestFrame)})");
            if ((request.RequestedProtocols & SecurityProtocol.RdsAad) == 0)
            {
                throw new InvalidDataException($"the client did not request PROTOCOL_RDSAAD: {request.RequestedProtocols}");
            }

            var confirm = new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.RdsAad, NegotiationResponseFlags.ExtendedClientDataSupported));
            var confirmBytes = new ArrayBufferWriter<byte>();
            confirm.Write(confirmBytes);
            await network.WriteAsync(confirmBytes.WrittenMemory, ct);
            Session.Step($"sent {confirm} ({Convert.ToHexString(confirmBytes.WrittenSpan)})");

            // TLS as server, straight after the Connection Confirm.
            await using var tls = new SslStream(network, leaveInnerStreamOpen: true);
            await tls.AuthenticateAsServerAsync(
                new SslServerAuthenticationOptions { ServerCertificate = _certificate, ClientCertificateRequired = false },
                ct);
            Session.TlsProtocol = tls.SslProtocol;
            Session.Step($"TLS established ({tls.SslProtocol}, {tls.NegotiatedCipherSuite})");

            // Server nonce PDU; it waits in the socket while the user signs in.
            Session.SentNonce = Jose.B64(RandomNumberGenerator.GetBytes(32));
            await WritePduAsync(tls, JsonSerializer.Serialize(new Dictionary<string, string> { ["ts_nonce"] = Session.SentNonce }), ct);
            Session.Step("sent the server nonce PDU");

            // Client auth request PDU.
            var authRequest = await ReadNulTerminatedAsync(tls, ct);
            Session.AuthRequestJson = authRequest;
            Session.Step($"received the auth request PDU ({authRequest.Length} characters)");
            using (var json = JsonDocument.Parse(authRequest))
            {
                Session.RdpAssertion = json.RootElement.GetProperty("rdp_assertion").GetString();
            }

            bool accepted;
            try
            {
                accepted = await verify(Session);
            }
            catch (Exception e)
            {
                Session.Failure = e;
                accepted = false;
            }

            Session.AuthenticationResult = accepted ? 0 : AccessDenied;
            await WritePduAsync(tls, "{\"authentication_result\":" + Session.AuthenticationResult.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}", ct);
            Session.Step($"sent authentication_result {Session.AuthenticationResult}");
            if (!accepted)
            {
                return;
            }

            // Back to TPKT framing: the next bytes are MCS Connect Initial.
            Session.FirstTpktAfterAuth = await ReadTpktAsync(tls, ct);
            Session.Step($"received a {Session.FirstTpktAfterAuth.Length}-byte TPKT: {Convert.ToHexString(Session.FirstTpktAfterAuth.AsSpan(0, Math.Min(16, Session.FirstTpktAfterAuth.Length)))}…");
        }
        catch (Exception e) when (Session.Failure is null)
        {
            Session.Failure = e;
            Session.Step($"failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task<byte[]> ReadTpktAsync(Stream stream, CancellationToken ct)
    {
        var header = new byte[TpktHeader.Size];
        await stream.ReadExactlyAsync(header, ct);
        if (!TpktHeader.TryParse(header, out var parsed, out var error))
        {
            throw new InvalidDataException($"not a TPKT header ({Convert.ToHexString(header)}): {error}");
        }

        var frame = new byte[parsed.PacketLength];
        header.CopyTo(frame, 0);
        await stream.ReadExactlyAsync(frame.AsMemory(TpktHeader.Size), ct);
        return frame;
    }

    private static async Task WritePduAsync(Stream stream, string json, CancellationToken ct)
    {
        var bytes = Encoding.UTF8.GetBytes(json + "\0");
        await stream.WriteAsync(bytes, ct);
        await stream.FlushAsync(ct);
    }

    private static async Task<string> ReadNulTerminatedAsync(Stream stream, CancellationToken ct)
    {
        // One byte at a time: the PDU has no length, and nothing after the NUL may be consumed.
        var buffer = new MemoryStream();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                throw new EndOfStreamException($"the client closed the connection inside an RDS AAD PDU after {buffer.Length} bytes");
            }

            if (one[0] == 0)
            {
                return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            }

            if (buffer.Length >= MaxPduBytes)
            {
                throw new InvalidDataException($"no NUL within {MaxPduBytes} bytes");
            }

            buffer.WriteByte(one[0]);
        }
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=vm1.gatehouse.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("vm1.gatehouse.test");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var ephemeral = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
    }
}
