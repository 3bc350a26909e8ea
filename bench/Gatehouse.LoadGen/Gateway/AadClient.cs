using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.X224;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>An RSA PoP key with what FreeRDP derives from it (aad.c): the JWK members, the RFC 7638 thumbprint and the wrapped header <c>kid</c>.</summary>
internal sealed class PopKeyPair : IDisposable
{
    private PopKeyPair(RSA key)
    {
        Key = key;
        var p = key.ExportParameters(false);
        E = B64(p.Exponent!);
        N = B64(p.Modulus!);
        Thumbprint = JwkThumbprint.ComputeRsa(E, N);
        HeaderKid = B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{Thumbprint}\"}}"));
    }

    public RSA Key { get; }

    public string E { get; }

    public string N { get; }

    /// <summary>The token's <c>cnf.kid</c>.</summary>
    public string Thumbprint { get; }

    public string HeaderKid { get; }

    public static PopKeyPair Create() => new(RSA.Create(2048));

    /// <summary>A key exported with <see cref="ToPem"/> (the peer processes get the pool this way).</summary>
    public static PopKeyPair FromPem(string pem)
    {
        var key = RSA.Create();
        key.ImportFromPem(pem);
        return new PopKeyPair(key);
    }

    public string ToPem() => Key.ExportPkcs8PrivateKeyPem();

    public void Dispose() => Key.Dispose();

    internal static string B64(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}

/// <summary>What one web-account sign-in needs, minted beforehand: the PoP-bound access token, its key, the <c>aad_nonce</c>.</summary>
internal sealed record SignInTicket(string AccessToken, PopKeyPair Key, string AadNonce, string HostLabel)
{
    /// <summary>The RDS AAD Auth Request in FreeRDP's shape (freerdp-aad-client.md §2b), signed now for <paramref name="serverNonce"/>.</summary>
    public byte[] Assertion(string serverNonce)
    {
        var header = $"{{\"alg\":\"RS256\",\"kid\":\"{Key.HeaderKid}\"}}";
        var payload = $"{{\"ts\":\"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}\",\"at\":\"{AccessToken}\",\"u\":\"ms-device-service://termsrv.wvd.microsoft.com/name/{HostLabel}\",\"nonce\":\"{serverNonce}\",\"cnf\":{{\"jwk\":{{\"kty\":\"RSA\",\"e\":\"{Key.E}\",\"n\":\"{Key.N}\"}}}},\"client_claims\":\"{{\\\"aad_nonce\\\":\\\"{AadNonce}\\\"}}\"}}";
        var input = $"{PopKeyPair.B64(Encoding.UTF8.GetBytes(header))}.{PopKeyPair.B64(Encoding.UTF8.GetBytes(payload))}";
        var signature = Key.Key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return [.. Encoding.UTF8.GetBytes($"{{\"rdp_assertion\":\"{input}.{PopKeyPair.B64(signature)}\"}}"), 0];
    }
}

/// <summary>
/// The benchmark's RDP client: over the gateway, RDS AAD Auth as FreeRDP 3 /sec:aad speaks it (X.224 with
/// PROTOCOL_RDSAAD, TLS, server nonce, signed assertion, result); directly to the stub, X.224 with PROTOCOL_SSL and TLS.
/// Then, on request, the connection sequence the relay needs (Connect Initial → Connect Response, Client Info →
/// Demand Active) and one stub command.
/// </summary>
internal sealed class BenchClient : IAsyncDisposable
{
    private readonly Socket _socket;

    private BenchClient(Socket socket, SslStream tls)
    {
        _socket = socket;
        Tls = tls;
    }

    public SslStream Tls { get; }

    /// <summary>The RDS AAD result code (0 = signed in), or null before the sign-in or on a direct connection.</summary>
    public int? Result { get; private set; }

    /// <summary>X.224 with <paramref name="request"/>, then TLS (any certificate: both peers are local and self-signed).</summary>
    public static async Task<BenchClient> ConnectAsync(int port, byte[] request, CancellationToken cancellationToken, IPAddress? bind = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (bind is not null)
            {
                // Several loopback source addresses: each has its own ephemeral ports and per-address caps.
                socket.Bind(new IPEndPoint(bind, 0));
            }

            await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(request, cancellationToken);
            var confirm = await RdpFrames.ReadTpktAsync(stream, cancellationToken) ?? throw new IOException("closed before the X.224 Connection Confirm");
            if (!ConnectionConfirm.TryParse(confirm, out var parsed, out var error) || parsed.Result is not { IsFailure: false })
            {
                throw new IOException($"negotiation refused or malformed: {error}");
            }

            var tls = new SslStream(stream, leaveInnerStreamOpen: false, (_, certificate, _, _) => certificate is not null);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "vm1.gatehouse.test" }, cancellationToken);
            return new BenchClient(socket, tls);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads the server nonce of this connection.</summary>
    public async Task<string> ReadNonceAsync(CancellationToken cancellationToken)
    {
        var message = await RdpFrames.ReadNulTerminatedAsync(Tls, cancellationToken);
        return RdsAadServerNonce.TryParse(message, out var nonce, out var error) ? nonce.Nonce : throw new IOException($"bad server nonce: {error}");
    }

    /// <summary>Reads the nonce, sends the assertion signed for it, reads the result.</summary>
    public async Task<int> SignInAsync(SignInTicket ticket, CancellationToken cancellationToken)
    {
        var nonce = await ReadNonceAsync(cancellationToken);
        await Tls.WriteAsync(ticket.Assertion(nonce), cancellationToken);
        var message = await RdpFrames.ReadNulTerminatedAsync(Tls, cancellationToken);
        Result = RdsAadAuthResult.TryParse(message, out var result, out var error) ? result.Result : throw new IOException($"bad auth result: {error}");
        return Result.Value;
    }

    /// <summary>Connect Initial → Connect Response, Client Info → Demand Active, then the stub command.</summary>
    public async Task StartSessionAsync(byte[] command, long argument, CancellationToken cancellationToken)
    {
        await RunSequenceAsync(cancellationToken);
        await SendCommandAsync(command, argument, cancellationToken);
    }

    /// <summary>Connect Initial → Connect Response, Client Info → Demand Active: afterwards the relay copies bytes.</summary>
    public async Task RunSequenceAsync(CancellationToken cancellationToken)
    {
        await Tls.WriteAsync(Captures.ConnectInitial, cancellationToken);
        _ = await RdpFrames.ReadTpktAsync(Tls, cancellationToken) ?? throw new IOException("closed before the Connect Response");
        await Tls.WriteAsync(Captures.ClientInfo, cancellationToken);
        _ = await RdpFrames.ReadTpktAsync(Tls, cancellationToken) ?? throw new IOException("closed before the Demand Active");
    }

    /// <summary>One stub command (<see cref="TlsStub.Bulk"/> with a byte count, or <see cref="TlsStub.Idle"/>).</summary>
    public async Task SendCommandAsync(byte[] command, long argument, CancellationToken cancellationToken)
    {
        var message = new byte[12];
        command.CopyTo(message, 0);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(message.AsSpan(4), argument);
        await Tls.WriteAsync(message, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Tls.DisposeAsync();
        }
        catch (IOException)
        {
        }

        _socket.Dispose();
    }
}
