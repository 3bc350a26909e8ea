using System.Buffers.Binary;
using System.Text;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// A deterministic CredSSP server built from the library's server-side NTLM pieces (the checks a Windows or FreeRDP
/// server makes), to drive <see cref="CredSspClient"/> in tests and to make the fuzz seeds of the client's inputs.
/// </summary>
public sealed class FakeCredSspServer
{
    /// <summary>The [MS-NLMP] 4.2.4 server challenge.</summary>
    public static readonly byte[] ServerChallenge = Convert.FromHexString("0123456789abcdef");

    private static readonly string[] MechTypes = [SpnegoToken.NtlmOid];

    private byte[] _negotiate = [];
    private byte[] _challenge = [];
    private byte[] _nonce = [];
    private int _clientVersion;
    private bool _spnego;
    private NtlmSealer? _fromClient;

    /// <summary>The CredSSP version the server announces.</summary>
    public int Version { get; init; } = 6;

    /// <summary>The password the server checks against.</summary>
    public string Password { get; init; } = CredSspClientCorpus.Password;

    /// <summary>The TLS key the server binds to (another one than the client sees simulates a man in the middle).</summary>
    public byte[] SubjectPublicKey { get; init; } = CredSspClientCorpus.SubjectPublicKey;

    /// <summary>MsvAvTimestamp in the CHALLENGE (null: none, as in [MS-NLMP] 4.2.4.3).</summary>
    public long? Timestamp { get; init; } = CredSspClientCorpus.ServerTime;

    /// <summary>Answer the client's mechListMIC with the server's (Windows does; FreeRDP's shadow server does not).</summary>
    public bool SendMechListMic { get; init; } = true;

    /// <summary>Why the last check failed.</summary>
    public string? Failure { get; private set; }

    /// <summary>Answers the client's first TSRequest with the CHALLENGE in a NegTokenResp.</summary>
    public byte[]? Challenge(byte[] clientFirst)
    {
        if (!TsRequest.TryParse(clientFirst, out var request, out var error) || request.NegoTokens.Count != 1)
        {
            Failure = error?.ToString() ?? "no negoToken";
            return null;
        }

        // Raw NTLM (FreeRDP's "direct NTLM") or NTLM in SPNEGO; the answers keep the client's form.
        _spnego = SpnegoToken.LooksLikeSpnego(request.NegoTokens[0]);
        if (_spnego)
        {
            if (!SpnegoToken.TryParse(request.NegoTokens[0], out var init, out error))
            {
                Failure = error?.ToString();
                return null;
            }

            _negotiate = init.MechToken.ToArray();
        }
        else
        {
            _negotiate = request.NegoTokens[0];
        }

        _clientVersion = request.Version;
        _nonce = request.ClientNonce.ToArray();
        var flags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.RequestTarget | NtlmNegotiateFlags.Sign | NtlmNegotiateFlags.Seal
            | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.TargetTypeServer | NtlmNegotiateFlags.ExtendedSessionSecurity
            | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate56;
        var pairs = new List<(AvId, byte[])> { (AvId.NbDomainName, Encoding.Unicode.GetBytes("Domain")), (AvId.NbComputerName, Encoding.Unicode.GetBytes("Server")) };
        if (Timestamp is { } t)
        {
            var value = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(value, t);
            pairs.Add((AvId.Timestamp, value));
        }

        _challenge = new NtlmChallengeMessage(flags, ServerChallenge, Encoding.Unicode.GetBytes("Server"), new AvPairs(pairs), [6, 0, 0x70, 0x17, 0, 0, 0, 0x0F]).ToArray();
        return new TsRequest(Version, [_spnego ? SpnegoToken.Response(NegState.AcceptIncomplete, SpnegoToken.NtlmOid, _challenge, null).Encode() : _challenge]).Encode();
    }

    /// <summary>Verifies AUTHENTICATE, its MIC, the mechListMIC and pubKeyAuth; answers with the server's binding, or null.</summary>
    public byte[]? Answer(byte[] clientThird)
    {
        SpnegoToken? resp = null;
        if (!TsRequest.TryParse(clientThird, out var request, out var error) || request.NegoTokens.Count != 1
            || (_spnego && !SpnegoToken.TryParse(request.NegoTokens[0], out resp, out error))
            || !NtlmAuthenticateMessage.TryParse(resp is null ? request.NegoTokens[0] : resp.MechToken, out var authenticate, out error))
        {
            Failure = error?.ToString() ?? "no negoToken";
            return null;
        }

        var baseKey = NtlmV2.VerifyResponse(NtlmV2.NtHash(Password), authenticate.UserName, authenticate.DomainName, ServerChallenge, authenticate.NtChallengeResponse);
        if (baseKey is null)
        {
            Failure = "bad password";
            return new TsRequest(Version, errorCode: NtStatus.LogonFailure).Encode();
        }

        var exported = NtlmV2.ExportedSessionKey(baseKey, authenticate.EncryptedRandomSessionKey, authenticate.Flags);
        if (Timestamp is not null && !NtlmV2.VerifyMic(exported, _negotiate, _challenge, authenticate.Raw))
        {
            Failure = "bad MIC";
            return null;
        }

        var mechTypes = SpnegoToken.EncodeMechTypes(MechTypes);
        if (resp is not null && (!resp.HasMechListMic || !new NtlmSealer(exported, authenticate.Flags, true).VerifySignature(mechTypes, resp.MechListMic)))
        {
            Failure = "bad mechListMIC";
            return null;
        }

        var version = Math.Min(_clientVersion, Version);
        var nonce = version >= 5 ? request.ClientNonce.ToArray() : _nonce;
        _fromClient = new NtlmSealer(exported, authenticate.Flags, true);
        var binding = _fromClient.Unseal(request.PubKeyAuth);
        if (binding is null || !PublicKeyBinding.Matches(binding, PublicKeyBinding.ClientValue(version, nonce, SubjectPublicKey)))
        {
            Failure = "bad pubKeyAuth";
            return new TsRequest(Version, errorCode: NtStatus.MessageAltered).Encode();
        }

        var toClient = new NtlmSealer(exported, authenticate.Flags, false);
        var serverMic = SendMechListMic ? new NtlmSealer(exported, authenticate.Flags, false).ComputeSignature(mechTypes) : null;
        var pubKeyAuth = toClient.Seal(PublicKeyBinding.ServerValue(version, nonce, SubjectPublicKey));
        return _spnego
            ? new TsRequest(Version, [SpnegoToken.Response(NegState.AcceptCompleted, null, null, serverMic).Encode()], pubKeyAuth: pubKeyAuth).Encode()
            : new TsRequest(Version, pubKeyAuth: pubKeyAuth).Encode();
    }

    /// <summary>Unseals the client's TSCredentials, or null.</summary>
    public TsCredentials? Credentials(byte[] clientFourth)
    {
        if (_fromClient is null || !TsRequest.TryParse(clientFourth, out var request, out _) || _fromClient.Unseal(request.AuthInfo) is not { } plain
            || !TsCredentials.TryParse(plain, out var credentials, out _))
        {
            return null;
        }

        return credentials;
    }
}

/// <summary>The fixed inputs of <see cref="CredSspClient"/> tests and fuzz seeds ([MS-NLMP] 4.2.4's User/Domain/Password).</summary>
public static class CredSspClientCorpus
{
    public const string User = "User";

    public const string Domain = "Domain";

    public const string Password = "Password";

    /// <summary>The client timestamp of the [MS-NLMP] AUTHENTICATE capture (a FILETIME in 2017).</summary>
    public const long ServerTime = 131400439870000000;

    /// <summary>A stand-in for an RSA SubjectPublicKey (DER RSAPublicKey header, then a fixed pattern).</summary>
    public static byte[] SubjectPublicKey { get; } = [.. Convert.FromHexString("3082010a0282010100"), .. Enumerable.Range(0, 257).Select(i => unchecked((byte)((i * 7) + 1))), .. Convert.FromHexString("0203010001")];

    public static CredSspClientSettings Settings(string password = Password, byte[]? key = null, bool spnego = true) =>
        new(Domain, User, password, key ?? SubjectPublicKey) { TargetName = "TERMSRV/vm1", Workstation = "GATEHOUSE", UseSpnego = spnego };

    public static CredSspClientRandom Random() =>
        new(Enumerable.Repeat((byte)0x11, 32).ToArray(), Enumerable.Repeat((byte)0xaa, 8).ToArray(), Enumerable.Repeat((byte)0x55, 16).ToArray(), 0);

    /// <summary>A client that has sent NEGOTIATE and waits for the CHALLENGE, and the server it talks to.</summary>
    public static (CredSspClient Client, FakeCredSspServer Server, byte[] First) Started(FakeCredSspServer? server = null, bool spnego = true)
    {
        var client = new CredSspClient(Settings(spnego: spnego), Random());
        return (client, server ?? new FakeCredSspServer(), client.Start());
    }

    /// <summary>The server's answer to NEGOTIATE (the CHALLENGE TSRequest): the seed of the client's first input.</summary>
    public static byte[] ChallengeAnswer()
    {
        var (_, server, first) = Started();
        return server.Challenge(first)!;
    }

    /// <summary>The server's answer to AUTHENTICATE (pubKeyAuth): the seed of the client's second input.</summary>
    public static byte[] BindingAnswer()
    {
        var (client, server, first) = Started();
        var third = client.Step(server.Challenge(first)!).Output!;
        return server.Answer(third)!;
    }
}
