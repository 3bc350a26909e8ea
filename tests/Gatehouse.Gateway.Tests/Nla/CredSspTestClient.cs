using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Crypto;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Nla;

/// <summary>What the test client does at each step (defaults: a well-behaved FreeRDP-like client).</summary>
internal sealed record CredSspClientOptions
{
    public string Domain { get; init; } = string.Empty;

    public string User { get; init; } = "alice@contoso.test";

    public string Password { get; init; } = "Correct-Horse-1";

    public int Version { get; init; } = 6;

    public bool Spnego { get; init; } = true;

    public SecurityProtocol Requested { get; init; } = SecurityProtocol.Hybrid | SecurityProtocol.HybridEx | SecurityProtocol.Ssl;

    /// <summary>Replaces the first TSRequest's bytes.</summary>
    public Func<byte[], byte[]>? TamperNegotiate { get; init; }

    /// <summary>Replaces the NTLM AUTHENTICATE bytes (after the MIC).</summary>
    public Func<byte[], byte[]>? TamperAuthenticate { get; init; }

    /// <summary>Replaces the third TSRequest's bytes.</summary>
    public Func<byte[], byte[]>? TamperThird { get; init; }

    /// <summary>Replaces the public-key binding value before it is sealed.</summary>
    public Func<byte[], byte[]>? TamperBinding { get; init; }

    /// <summary>Credentials sealed into authInfo (default: the same user and password).</summary>
    public TsCredentials? Credentials { get; init; }

    /// <summary>Replaces the fourth TSRequest's bytes (the sealed credentials).</summary>
    public Func<byte[], byte[]>? TamperCredentials { get; init; }

    /// <summary>Where the client stops and returns (the caller then closes the connection at once).</summary>
    public CredSspLeave Leave { get; init; }

    /// <summary>Closing resets the connection (RST) instead of closing it (FIN).</summary>
    public bool Abort { get; init; }

    /// <summary>A routing token for the X.224 Connection Request (<c>Cookie: msts=</c>), as a client sends after a redirection.</summary>
    public string? RoutingToken { get; init; }

    /// <summary>
    /// After a tampered TSRequest that is not exactly one whole frame, stop sending (half-close) so the gateway ends on
    /// what it has instead of waiting for the rest (the mutation fuzzer; a silent client keeps the connection open).
    /// </summary>
    public bool HalfCloseAfterPartialFrame { get; init; }

    /// <summary>Gets the TCP connection as soon as it is open (a test can close it while the client waits).</summary>
    public Action<TcpClient>? Connected { get; init; }

    /// <summary>
    /// HYBRID (no Early User Authorization Result): the gateway's sign-in log entry for this connection once written
    /// (null before). The gateway logs its decision before it answers, so a HYBRID client waits for it and then reads
    /// the errorCode of a refusal; a success has no answer.
    /// </summary>
    public Func<Gatehouse.Gateway.Sessions.GatewaySignInEvent?>? Decided { get; init; }
}

/// <summary>Where a client leaves the exchange.</summary>
internal enum CredSspLeave
{
    /// <summary>It runs the whole exchange.</summary>
    Never,

    /// <summary>Right after sending AUTHENTICATE (the user name and the NTLM proof), without reading the answer.</summary>
    AfterAuthenticate,

    /// <summary>After the server's pubKeyAuth, without sending its credentials.</summary>
    BeforeCredentials,

    /// <summary>Right after sending its credentials, without reading any answer (impacket's rdp_check.py).</summary>
    AfterCredentials,
}

/// <summary>How the exchange ended for the client.</summary>
internal sealed record CredSspOutcome(uint? ErrorCode, uint? EarlyResult, bool ServerBindingOk, string Stage);

/// <summary>A CredSSP client built from Gatehouse.Protocol's client-side NTLM pieces, over a real TCP/TLS connection.</summary>
internal static class CredSspTestClient
{
    private const NtlmNegotiateFlags ClientFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.RequestTarget | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.ExtendedSessionSecurity
        | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate56;

    public static async Task<(CredSspOutcome Outcome, SslStream Tls, TcpClient Tcp)> RunAsync(int port, CredSspClientOptions o)
    {
        var tcp = new TcpClient();
        if (o.Abort)
        {
            tcp.LingerState = new LingerOption(true, 0);
        }

        await tcp.ConnectAsync(IPAddress.Loopback, port);
        o.Connected?.Invoke(tcp);
        var stream = tcp.GetStream();
        byte[] request;
        if (o.RoutingToken is { } routingToken)
        {
            var writer = new System.Buffers.ArrayBufferWriter<byte>(128);
            new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.RoutingToken, tokenValue: routingToken, negotiation: new NegotiationRequest(0, o.Requested)).Write(writer);
            request = writer.WrittenSpan.ToArray();
        }
        else
        {
            request = new byte[19];
            Convert.FromHexString("030000130ee000000000000100080000000000").CopyTo(request, 0);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(15), (uint)o.Requested);
        }

        await stream.WriteAsync(request);
        var header = new byte[4];
        await stream.ReadExactlyAsync(header);
        var frame = new byte[(header[2] << 8) | header[3]];
        header.CopyTo(frame, 0);
        await stream.ReadExactlyAsync(frame.AsMemory(4));
        Assert.True(ConnectionConfirm.TryParse(frame, out var confirm, out _));
        var selected = confirm.Result!.Value.SelectedProtocol;
        Assert.True(selected is SecurityProtocol.Hybrid or SecurityProtocol.HybridEx, $"selected {selected}");
        var tls = new SslStream(stream, false, (_, certificate, _, _) => certificate is not null);
        await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
        using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(tls.RemoteCertificate!.GetRawCertData());
        var spk = certificate.PublicKey.EncodedKeyValue.RawData;
        var outcome = await ExchangeAsync(tls, tcp.Client, o, spk, selected == SecurityProtocol.HybridEx);
        return (outcome, tls, tcp);
    }

    /// <summary>
    /// After a tampered TSRequest that is not exactly one whole frame (cut short, or with bytes after it) the gateway
    /// would wait for bytes that never come, or take the rest for the next message: the client then stops sending
    /// (half-close), so the gateway ends on what it has, never on its clock. True when it did.
    /// </summary>
    private static bool HalfCloseUnlessWholeFrame(Socket socket, CredSspClientOptions o, byte[] sent, byte[] original)
    {
        if (!o.HalfCloseAfterPartialFrame || ReferenceEquals(sent, original) || !TsRequest.TryGetFrameLength(sent, out var length, out _) || (length > 0 && length == sent.Length))
        {
            return false;
        }

        socket.Shutdown(SocketShutdown.Send);
        return true;
    }

    /// <summary>What a half-closed client gets: the answers until the gateway closes; the first errorCode among them.</summary>
    private static async Task<CredSspOutcome> AfterHalfCloseAsync(SslStream tls, string stage)
    {
        uint? error = null;
        while (await ReadAsync(tls) is { } answer)
        {
            error ??= answer.ErrorCode;
        }

        return new CredSspOutcome(error, null, false, $"half-closed after {stage}");
    }

    private static async Task<CredSspOutcome> ExchangeAsync(SslStream tls, Socket socket, CredSspClientOptions o, byte[] spk, bool hybridEx)
    {
        var nonce = o.Version >= 5 ? RandomNumberGenerator.GetBytes(32) : null;
        var negotiateWriter = new System.Buffers.ArrayBufferWriter<byte>();
        new NtlmNegotiateMessage(ClientFlags, version: [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F]).Write(negotiateWriter);
        var negotiate = negotiateWriter.WrittenSpan.ToArray();
        string[] mechTypes = [SpnegoToken.NtlmOid];
        var first = o.Spnego ? SpnegoToken.Init(mechTypes, negotiate).Encode() : negotiate;
        var firstBytes = new TsRequest(o.Version, [first], clientNonce: nonce).Encode();
        var firstSent = o.TamperNegotiate?.Invoke(firstBytes) ?? firstBytes;
        await WriteAsync(tls, firstSent);
        if (HalfCloseUnlessWholeFrame(socket, o, firstSent, firstBytes))
        {
            return await AfterHalfCloseAsync(tls, "negotiate");
        }

        var answer = await ReadAsync(tls);
        if (answer is null || answer.ErrorCode is not null)
        {
            return new CredSspOutcome(answer?.ErrorCode, null, false, "negotiate");
        }

        var challengeBytes = answer.NegoTokens[0];
        if (o.Spnego)
        {
            Assert.True(SpnegoToken.TryParse(challengeBytes, out var resp, out _));
            Assert.Equal(NegState.AcceptIncomplete, resp.State);
            challengeBytes = resp.MechToken.ToArray();
        }

        Assert.True(NtlmChallengeMessage.TryParse(challengeBytes, out var challenge, out var error), error?.ToString());
        var flags = challenge.Flags;
        var clientInfo = challenge.TargetInfo!.With(AvId.Flags, [2, 0, 0, 0]).ToArray();
        var temp = NtlmV2.ClientBlob(challenge.TargetInfo!.Timestamp ?? DateTime.UtcNow.ToFileTimeUtc(), RandomNumberGenerator.GetBytes(8), clientInfo);
        var responseKey = NtlmV2.NtOwfV2(NtlmV2.NtHash(o.Password), o.User, o.Domain);
        var (nt, sessionBaseKey) = NtlmV2.ComputeResponse(responseKey, challenge.ServerChallenge, temp);
        var exported = RandomNumberGenerator.GetBytes(16);
        var authenticate = new NtlmAuthenticateMessage(flags, new byte[24], nt, o.Domain, o.User, "WORKSTATION", Rc4.Transform(sessionBaseKey, exported), [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F], new byte[16]);
        var mic = NtlmV2.ComputeMic(exported, negotiate, challengeBytes, authenticate.ToArray());
        var authBytes = authenticate.WithMic(mic).ToArray();
        authBytes = o.TamperAuthenticate?.Invoke(authBytes) ?? authBytes;
        var third = o.Spnego
            ? SpnegoToken.Response(null, null, authBytes, new NtlmSealer(exported, flags, true).ComputeSignature(SpnegoToken.EncodeMechTypes(mechTypes))).Encode()
            : authBytes;
        var toServer = new NtlmSealer(exported, flags, clientToServer: true);
        var fromServer = new NtlmSealer(exported, flags, clientToServer: false);
        var binding = PublicKeyBinding.ClientValue(o.Version, nonce, spk);
        binding = o.TamperBinding?.Invoke(binding) ?? binding;
        var thirdBytes = new TsRequest(o.Version, [third], pubKeyAuth: toServer.Seal(binding), clientNonce: nonce).Encode();
        var thirdSent = o.TamperThird?.Invoke(thirdBytes) ?? thirdBytes;
        await WriteAsync(tls, thirdSent);
        if (HalfCloseUnlessWholeFrame(socket, o, thirdSent, thirdBytes))
        {
            return await AfterHalfCloseAsync(tls, "authenticate");
        }

        if (o.Leave == CredSspLeave.AfterAuthenticate)
        {
            return new CredSspOutcome(null, null, false, "left after authenticate");
        }

        answer = await ReadAsync(tls);
        if (answer is null || answer.ErrorCode is not null)
        {
            return new CredSspOutcome(answer?.ErrorCode, null, false, "authenticate");
        }

        if (o.Spnego)
        {
            Assert.True(SpnegoToken.TryParse(answer.NegoTokens[0], out var final, out _));
            Assert.Equal(NegState.AcceptCompleted, final.State);
            Assert.True(new NtlmSealer(exported, flags, false).VerifySignature(SpnegoToken.EncodeMechTypes(mechTypes), final.MechListMic), "the server's mechListMIC");
        }

        var serverBinding = fromServer.Unseal(answer.PubKeyAuth);
        var bindingOk = serverBinding is not null && serverBinding.AsSpan().SequenceEqual(PublicKeyBinding.ServerValue(o.Version, nonce, spk));
        if (o.Leave == CredSspLeave.BeforeCredentials)
        {
            return new CredSspOutcome(null, null, bindingOk, "left before credentials");
        }

        var credentials = o.Credentials ?? new TsCredentials(o.Domain, o.User, o.Password);
        var fourthBytes = new TsRequest(o.Version, authInfo: toServer.Seal(credentials.Encode())).Encode();
        var fourthSent = o.TamperCredentials?.Invoke(fourthBytes) ?? fourthBytes;
        await WriteAsync(tls, fourthSent);

        // The last message: a half-closed client still reads the gateway's answer to what it sent.
        HalfCloseUnlessWholeFrame(socket, o, fourthSent, fourthBytes);
        if (o.Leave == CredSspLeave.AfterCredentials)
        {
            return new CredSspOutcome(null, null, bindingOk, "left after credentials");
        }

        if (hybridEx)
        {
            var result = new byte[4];
            try
            {
                await tls.ReadExactlyAsync(result).AsTask().WaitAsync(Until.Backstop);
            }
            catch (EndOfStreamException)
            {
                return new CredSspOutcome(null, null, bindingOk, "credentials");
            }

            return new CredSspOutcome(null, BinaryPrimitives.ReadUInt32LittleEndian(result), bindingOk, "credentials");
        }

        // HYBRID: a refusal comes as a TSRequest with errorCode; success as nothing (the client goes on to MCS). The
        // entry is written before the answer, so the client knows which it is without waiting on the clock.
        Assert.NotNull(o.Decided);
        await Until.TrueAsync(() => o.Decided() is not null, "the gateway's sign-in log entry");
        if (o.Decided()!.Succeeded)
        {
            return new CredSspOutcome(null, null, bindingOk, "credentials");
        }

        var after = await ReadAsync(tls);
        return new CredSspOutcome(after?.ErrorCode, null, bindingOk, "credentials");
    }

    private static async Task WriteAsync(SslStream tls, byte[] bytes)
    {
        await tls.WriteAsync(bytes);
        await tls.FlushAsync();
    }

    /// <summary>Reads one TSRequest; null when the server closed (or sent nothing before the backstop).</summary>
    public static async Task<TsRequest?> ReadAsync(SslStream tls)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            int n;
            try
            {
                n = await tls.ReadAsync(one).AsTask().WaitAsync(Until.Backstop);
            }
            catch (Exception e) when (e is IOException or TimeoutException)
            {
                return null;
            }

            if (n == 0)
            {
                return null;
            }

            buffer.Add(one[0]);
            Assert.True(TsRequest.TryGetFrameLength([.. buffer], out var length, out var error), error?.ToString());
            if (length > 0 && buffer.Count == length)
            {
                Assert.True(TsRequest.TryParse([.. buffer], out var request, out error), error?.ToString());
                return request;
            }
        }
    }
}
