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
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        var request = new byte[19];
        Convert.FromHexString("030000130ee000000000000100080000000000").CopyTo(request, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(15), (uint)o.Requested);
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
        var outcome = await ExchangeAsync(tls, o, spk, selected == SecurityProtocol.HybridEx);
        return (outcome, tls, tcp);
    }

    private static async Task<CredSspOutcome> ExchangeAsync(SslStream tls, CredSspClientOptions o, byte[] spk, bool hybridEx)
    {
        var nonce = o.Version >= 5 ? RandomNumberGenerator.GetBytes(32) : null;
        var negotiateWriter = new System.Buffers.ArrayBufferWriter<byte>();
        new NtlmNegotiateMessage(ClientFlags, version: [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F]).Write(negotiateWriter);
        var negotiate = negotiateWriter.WrittenSpan.ToArray();
        string[] mechTypes = [SpnegoToken.NtlmOid];
        var first = o.Spnego ? SpnegoToken.Init(mechTypes, negotiate).Encode() : negotiate;
        var firstBytes = new TsRequest(o.Version, [first], clientNonce: nonce).Encode();
        await WriteAsync(tls, o.TamperNegotiate?.Invoke(firstBytes) ?? firstBytes);

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
        await WriteAsync(tls, o.TamperThird?.Invoke(thirdBytes) ?? thirdBytes);

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
        var credentials = o.Credentials ?? new TsCredentials(o.Domain, o.User, o.Password);
        var fourthBytes = new TsRequest(o.Version, authInfo: toServer.Seal(credentials.Encode())).Encode();
        await WriteAsync(tls, o.TamperCredentials?.Invoke(fourthBytes) ?? fourthBytes);
        if (hybridEx)
        {
            var result = new byte[4];
            try
            {
                await tls.ReadExactlyAsync(result).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (EndOfStreamException)
            {
                return new CredSspOutcome(null, null, bindingOk, "credentials");
            }

            return new CredSspOutcome(null, BinaryPrimitives.ReadUInt32LittleEndian(result), bindingOk, "credentials");
        }

        // HYBRID: a refusal comes as a TSRequest with errorCode; success as nothing (the client goes on to MCS).
        var after = await ReadAsync(tls, TimeSpan.FromMilliseconds(1500));
        return new CredSspOutcome(after?.ErrorCode, null, bindingOk, "credentials");
    }

    private static async Task WriteAsync(SslStream tls, byte[] bytes)
    {
        await tls.WriteAsync(bytes);
        await tls.FlushAsync();
    }

    /// <summary>Reads one TSRequest; null when the server closed (or, with a short wait, sent nothing).</summary>
    public static async Task<TsRequest?> ReadAsync(SslStream tls, TimeSpan? wait = null)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            int n;
            try
            {
                n = await tls.ReadAsync(one).AsTask().WaitAsync(wait ?? TimeSpan.FromSeconds(10));
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
