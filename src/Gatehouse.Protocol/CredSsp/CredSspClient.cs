using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Protocol.Crypto;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>The account a <see cref="CredSspClient"/> logs on with and the server it expects.</summary>
public sealed class CredSspClientSettings
{
    /// <summary>Creates the settings; <paramref name="subjectPublicKey"/> is the SubjectPublicKey of the server's TLS certificate.</summary>
    public CredSspClientSettings(string domain, string userName, string password, ReadOnlySpan<byte> subjectPublicKey)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(userName);
        ArgumentNullException.ThrowIfNull(password);
        if (domain.Length > TsCredentials.MaxFieldChars || userName.Length > TsCredentials.MaxFieldChars || password.Length > TsCredentials.MaxFieldChars)
        {
            throw new ArgumentException($"Domain, user name and password are at most {TsCredentials.MaxFieldChars} characters.");
        }

        if (subjectPublicKey.IsEmpty)
        {
            throw new ArgumentException("The server's public key is required: it binds CredSSP to the TLS session.", nameof(subjectPublicKey));
        }

        Domain = domain;
        UserName = userName;
        Password = password;
        SubjectPublicKey = subjectPublicKey.ToArray();
    }

    /// <summary>The account's domain (empty for a local account).</summary>
    public string Domain { get; }

    /// <summary>The account's user name.</summary>
    public string UserName { get; }

    /// <summary>The account's password (sent only sealed, inside TSCredentials).</summary>
    public string Password { get; }

    /// <summary>The SubjectPublicKey of the certificate the server presented on this TLS connection.</summary>
    public byte[] SubjectPublicKey { get; }

    /// <summary>The AUTHENTICATE message's Workstation (empty by default).</summary>
    public string Workstation { get; init; } = string.Empty;

    /// <summary>MsvAvTargetName: the SPN the client means (e.g. <c>TERMSRV/host</c>); empty leaves it out.</summary>
    public string TargetName { get; init; } = string.Empty;

    /// <summary>
    /// [MS-NLMP] 3.1.1.2 ClientSuppressExtendedProtection: when true, MsvAvChannelBindings is not added to the client's
    /// target information (CredSSP binds to TLS through pubKeyAuth instead). False by default, as Windows and FreeRDP do.
    /// </summary>
    public bool SuppressExtendedProtection { get; init; }

    /// <summary>
    /// Wrap NTLM in SPNEGO (NegTokenInit, NegTokenResp with mechListMIC). False by default: raw NTLM in negoTokens, as
    /// FreeRDP's client sends it ("direct NTLM") and as both Windows' and FreeRDP's CredSSP servers accept it. FreeRDP's
    /// server (3.10) answers a SPNEGO mechListMIC with an extra round that echoes the client's pubKeyAuth.
    /// </summary>
    public bool UseSpnego { get; init; }
}

/// <summary>
/// The random and time inputs of one <see cref="CredSspClient"/> exchange, supplied by the caller so the state machine
/// stays deterministic (the library has no randomness or clock): fresh random bytes for every connection.
/// </summary>
public sealed class CredSspClientRandom
{
    /// <summary>Creates the inputs; each array must be freshly random for a real connection.</summary>
    public CredSspClientRandom(byte[] clientNonce, byte[] clientChallenge, byte[] exportedSessionKey, long fileTimeNow)
    {
        ArgumentNullException.ThrowIfNull(clientNonce);
        ArgumentNullException.ThrowIfNull(clientChallenge);
        ArgumentNullException.ThrowIfNull(exportedSessionKey);
        if (clientNonce.Length != TsRequest.NonceSize || clientChallenge.Length != 8 || exportedSessionKey.Length != 16)
        {
            throw new ArgumentException("The client nonce is 32 bytes, the client challenge 8, the session key 16.");
        }

        ClientNonce = clientNonce;
        ClientChallenge = clientChallenge;
        ExportedSessionKey = exportedSessionKey;
        FileTimeNow = fileTimeNow;
    }

    /// <summary>clientNonce of CredSSP 5+ (32 bytes).</summary>
    public byte[] ClientNonce { get; }

    /// <summary>The NTLMv2 client challenge (8 bytes).</summary>
    public byte[] ClientChallenge { get; }

    /// <summary>The random session key sent under NTLMSSP_NEGOTIATE_KEY_EXCH (16 bytes).</summary>
    public byte[] ExportedSessionKey { get; }

    /// <summary>The current time as a FILETIME, used when the server's CHALLENGE carries no MsvAvTimestamp.</summary>
    public long FileTimeNow { get; }
}

/// <summary>Why a <see cref="CredSspClient"/> exchange failed.</summary>
public enum CredSspClientFailure
{
    /// <summary>The server answered with a TSRequest errorCode (an NTSTATUS, in <see cref="CredSspClientError.Status"/>).</summary>
    ServerError,

    /// <summary>A server message could not be parsed, or is not the one expected at this step.</summary>
    Malformed,

    /// <summary>The server wants something this client does not do (Kerberos only, NTLM without extended session security, no sealing).</summary>
    Unsupported,

    /// <summary>
    /// The server's pubKeyAuth, mechListMIC or signature does not prove that it holds the session key and saw our TLS key:
    /// a man in the middle, or a server that did not verify the password. The credentials are not sent.
    /// </summary>
    ServerNotAuthenticated,
}

/// <summary>A typed CredSSP client failure.</summary>
/// <param name="Kind">The class of failure.</param>
/// <param name="Reason">What happened, as a lowercase sentence fragment.</param>
/// <param name="Status">The server's NTSTATUS for <see cref="CredSspClientFailure.ServerError"/>.</param>
/// <param name="Stage">The step at which it happened: <c>negotiate</c> (answer to NEGOTIATE) or <c>authenticate</c> (answer to AUTHENTICATE).</param>
public sealed record CredSspClientError(CredSspClientFailure Kind, string Reason, uint? Status, string Stage)
{
    /// <inheritdoc />
    public override string ToString() => Status is { } s ? $"{Reason} (0x{s:X8})" : Reason;
}

/// <summary>The states of <see cref="CredSspClient"/>.</summary>
public enum CredSspClientState
{
    /// <summary>Nothing sent yet: call <see cref="CredSspClient.Start"/>.</summary>
    Initial,

    /// <summary>NEGOTIATE sent; the server's CHALLENGE is next.</summary>
    WaitingForChallenge,

    /// <summary>AUTHENTICATE and pubKeyAuth sent; the server's pubKeyAuth is next.</summary>
    WaitingForServerBinding,

    /// <summary>The credentials were produced: CredSSP is over on this side.</summary>
    Completed,

    /// <summary>The exchange failed; nothing more may be sent.</summary>
    Failed,
}

/// <summary>What one <see cref="CredSspClient.Step"/> produced: bytes to send, completion, or a failure.</summary>
/// <param name="Output">The next TSRequest to send, or null.</param>
/// <param name="Error">The failure, or null.</param>
public readonly record struct CredSspClientStep(byte[]? Output, CredSspClientError? Error)
{
    /// <summary>True when the step failed.</summary>
    [MemberNotNullWhen(true, nameof(Error))]
    public bool Failed => Error is not null;
}

/// <summary>
/// [MS-CSSP] 3.1.5 the CredSSP client, sans-IO: NTLMv2, raw (as FreeRDP sends it) or in SPNEGO (<see cref="CredSspClientSettings.UseSpnego"/>). <see cref="Start"/>
/// gives TSRequest { version 6, NegTokenInit(NEGOTIATE), clientNonce }; the server's CHALLENGE yields TSRequest
/// { NegTokenResp(AUTHENTICATE with MIC, mechListMIC), pubKeyAuth = Seal(binding of the server's TLS key) }; the server's
/// pubKeyAuth is verified (key + 1 below version 5, the Server-To-Client hash from 5 on) and only then TSRequest
/// { authInfo = Seal(TSPasswordCreds) } is produced. Any errorCode from the server, malformed message or failed proof
/// ends the exchange with a typed <see cref="CredSspClientError"/>; the credentials are never sent to a server that did
/// not prove itself. One instance per connection; inputs are bounded by <see cref="TsRequest.MaxSize"/>.
/// </summary>
public sealed class CredSspClient
{
    /// <summary>The NEGOTIATE flags: NTLMv2 with extended session security, 128-bit key exchange, signing and sealing.</summary>
    public const NtlmNegotiateFlags NegotiateFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.RequestTarget | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.ExtendedSessionSecurity
        | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate56;

    /// <summary>What the server's CHALLENGE must keep of <see cref="NegotiateFlags"/>: the sealer assumes extended session security, and keys are 128-bit.</summary>
    public const NtlmNegotiateFlags RequiredFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.ExtendedSessionSecurity | NtlmNegotiateFlags.Negotiate128;

    /// <summary>VERSION: Windows 10.0 build 20348, NTLMSSP_REVISION_W2K3.</summary>
    private static readonly byte[] ClientVersion = [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F];

    private static readonly string[] MechTypes = [SpnegoToken.NtlmOid];

    private readonly CredSspClientSettings _settings;
    private readonly CredSspClientRandom _random;
    private byte[] _negotiate = [];
    private byte[] _binding = [];
    private byte[]? _exportedKey;
    private NtlmNegotiateFlags _flags;
    private NtlmSealer? _toServer;

    /// <summary>Creates a client for one connection.</summary>
    public CredSspClient(CredSspClientSettings settings, CredSspClientRandom random)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(random);
        _settings = settings;
        _random = random;
    }

    /// <summary>Where the exchange is.</summary>
    public CredSspClientState State { get; private set; } = CredSspClientState.Initial;

    /// <summary>The CredSSP version in effect: the smaller of ours (6) and the server's, once the server answered.</summary>
    public int NegotiatedVersion { get; private set; } = TsRequest.CurrentVersion;

    /// <summary>The version the server announced, once it answered (0 before).</summary>
    public int ServerVersion { get; private set; }

    /// <summary>The first TSRequest: version 6, SPNEGO NegTokenInit with the NTLM NEGOTIATE, and the client nonce.</summary>
    public byte[] Start()
    {
        if (State != CredSspClientState.Initial)
        {
            ThrowWrongState(nameof(Start));
        }

        var negotiate = new System.Buffers.ArrayBufferWriter<byte>(64);
        new NtlmNegotiateMessage(NegotiateFlags, version: ClientVersion).Write(negotiate);
        _negotiate = negotiate.WrittenSpan.ToArray();
        State = CredSspClientState.WaitingForChallenge;
        var token = _settings.UseSpnego ? SpnegoToken.Init(MechTypes, _negotiate).Encode() : _negotiate;
        return new TsRequest(TsRequest.CurrentVersion, [token], clientNonce: _random.ClientNonce).Encode();
    }

    /// <summary>
    /// Takes one whole TSRequest from the server (frame it with <see cref="TsRequest.TryGetFrameLength"/>) and returns
    /// the TSRequest to send next; after the last one <see cref="State"/> is <see cref="CredSspClientState.Completed"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not waiting for a server message (before <see cref="Start"/>, after completion or failure).</exception>
    public CredSspClientStep Step(ReadOnlySpan<byte> serverMessage)
    {
        var stage = State switch
        {
            CredSspClientState.WaitingForChallenge => "negotiate",
            CredSspClientState.WaitingForServerBinding => "authenticate",
            _ => ThrowWrongState<string>(nameof(Step)),
        };

        if (!TsRequest.TryParse(serverMessage, out var request, out var pduError))
        {
            return Fail(CredSspClientFailure.Malformed, $"the server's TSRequest is malformed: {pduError}", stage);
        }

        if (request.ErrorCode is { } status && status != 0)
        {
            State = CredSspClientState.Failed;
            return new CredSspClientStep(null, new CredSspClientError(CredSspClientFailure.ServerError, $"the server refused the logon at the {stage} step with {Describe(status)}", status, stage));
        }

        if (State == CredSspClientState.WaitingForChallenge)
        {
            ServerVersion = request.Version;
            NegotiatedVersion = Math.Min(TsRequest.CurrentVersion, request.Version);
        }
        else if (request.Version != ServerVersion)
        {
            return Fail(CredSspClientFailure.Malformed, $"the server changed its CredSSP version from {ServerVersion} to {request.Version}", stage);
        }

        return State == CredSspClientState.WaitingForChallenge ? OnChallenge(request, stage) : OnServerBinding(request, stage);
    }

    /// <summary>A name for an NTSTATUS a CredSSP server sends.</summary>
    public static string Describe(uint status) => status switch
    {
        NtStatus.LogonFailure => "STATUS_LOGON_FAILURE",
        NtStatus.AccessDenied => "STATUS_ACCESS_DENIED",
        NtStatus.AccountDisabled => "STATUS_ACCOUNT_DISABLED",
        NtStatus.AccountLockedOut => "STATUS_ACCOUNT_LOCKED_OUT",
        NtStatus.PasswordMustChange => "STATUS_PASSWORD_MUST_CHANGE",
        NtStatus.NoLogonServers => "STATUS_NO_LOGON_SERVERS",
        NtStatus.InvalidToken => "SEC_E_INVALID_TOKEN",
        NtStatus.MessageAltered => "SEC_E_MESSAGE_ALTERED",
        NtStatus.UnsupportedFunction => "SEC_E_UNSUPPORTED_FUNCTION",
        0xC0000071 => "STATUS_PASSWORD_EXPIRED",
        0xC000006E => "STATUS_ACCOUNT_RESTRICTION",
        0xC000006F => "STATUS_INVALID_LOGON_HOURS",
        0xC0000193 => "STATUS_ACCOUNT_EXPIRED",
        0xC000015B => "STATUS_LOGON_TYPE_NOT_GRANTED",
        0x8009030C => "SEC_E_LOGON_DENIED",
        _ => "NTSTATUS",
    } + $" 0x{status:X8}";

    private CredSspClientStep OnChallenge(TsRequest request, string stage)
    {
        if (request.NegoTokens.Count != 1)
        {
            return Fail(CredSspClientFailure.Malformed, $"the server's answer to NEGOTIATE has {request.NegoTokens.Count} negoTokens, expected 1", stage);
        }

        var token = request.NegoTokens[0];
        byte[] challengeBytes;
        if (SpnegoToken.LooksLikeSpnego(token))
        {
            if (!SpnegoToken.TryParse(token, out var spnego, out var spnegoError))
            {
                return Fail(CredSspClientFailure.Malformed, $"the server's SPNEGO answer is malformed: {spnegoError}", stage);
            }

            if (spnego.IsInit || spnego.State == NegState.Reject)
            {
                return Fail(CredSspClientFailure.Unsupported, spnego.IsInit ? "the server answered with a NegTokenInit" : "the server rejected NTLM in SPNEGO (it may accept Kerberos only)", stage);
            }

            if (spnego.SupportedMech is { } mech && mech != SpnegoToken.NtlmOid)
            {
                return Fail(CredSspClientFailure.Unsupported, $"the server chose mechanism {mech}, not NTLM", stage);
            }

            if (!spnego.HasMechToken)
            {
                return Fail(CredSspClientFailure.Malformed, "the server's SPNEGO answer carries no NTLM CHALLENGE", stage);
            }

            challengeBytes = spnego.MechToken.ToArray();
        }
        else
        {
            // The answer to raw NTLM (some servers answer SPNEGO this way too; the exchange keeps its own form).
            challengeBytes = token;
        }

        if (!NtlmChallengeMessage.TryParse(challengeBytes, out var challenge, out var pduError))
        {
            return Fail(CredSspClientFailure.Malformed, $"the server's CHALLENGE is malformed: {pduError}", stage);
        }

        if ((challenge.Flags & RequiredFlags) != RequiredFlags)
        {
            return Fail(CredSspClientFailure.Unsupported, $"the server's CHALLENGE lacks {RequiredFlags & ~challenge.Flags} (NTLMv2 with extended session security, 128-bit keys, signing and sealing is required)", stage);
        }

        _flags = challenge.Flags & (NegotiateFlags | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.TargetTypeDomain | NtlmNegotiateFlags.TargetTypeServer);

        // [MS-NLMP] 3.1.5.1.2: with a server timestamp the client uses it, sets MsvAvFlags' MIC bit and sends Z(24) as
        // LmChallengeResponse; without one it uses its own clock and sends LMv2.
        var serverInfo = challenge.TargetInfo ?? new AvPairs([]);
        var serverTimestamp = serverInfo.Timestamp;
        var clientInfo = _settings.SuppressExtendedProtection ? serverInfo : serverInfo.With(AvId.ChannelBindings, new byte[16]);
        if (serverTimestamp is not null)
        {
            var flagsValue = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(flagsValue, serverInfo.Flags | AvPairs.MicPresentFlag);
            clientInfo = clientInfo.With(AvId.Flags, flagsValue);
        }

        if (_settings.TargetName.Length > 0)
        {
            clientInfo = clientInfo.With(AvId.TargetName, Encoding.Unicode.GetBytes(_settings.TargetName));
        }

        var responseKey = NtlmV2.NtOwfV2(NtlmV2.NtHash(_settings.Password), _settings.UserName, _settings.Domain);
        var temp = NtlmV2.ClientBlob(serverTimestamp ?? _random.FileTimeNow, _random.ClientChallenge, clientInfo.ToArray());
        var (ntResponse, sessionBaseKey) = NtlmV2.ComputeResponse(responseKey, challenge.ServerChallenge, temp);
        var lmResponse = serverTimestamp is null ? NtlmV2.LmV2Response(responseKey, challenge.ServerChallenge, _random.ClientChallenge) : new byte[24];
        byte[] encryptedKey;
        if (_flags.HasFlag(NtlmNegotiateFlags.KeyExchange))
        {
            _exportedKey = (byte[])_random.ExportedSessionKey.Clone();
            encryptedKey = Rc4.Transform(sessionBaseKey, _exportedKey);
        }
        else
        {
            _exportedKey = sessionBaseKey;
            encryptedKey = [];
        }

        CryptographicOperations.ZeroMemory(responseKey);
        var authenticate = new NtlmAuthenticateMessage(_flags, lmResponse, ntResponse, _settings.Domain, _settings.UserName, _settings.Workstation, encryptedKey, ClientVersion, new byte[NtlmAuthenticateMessage.MicSize]).ToArray();
        if (serverTimestamp is not null)
        {
            NtlmV2.ComputeMic(_exportedKey, _negotiate, challengeBytes, authenticate).CopyTo(authenticate, NtlmAuthenticateMessage.MicOffset);
        }

        // SPNEGO's mechListMIC is signed with the first sequence number; both sides then reset the NTLM sealing state
        // before CredSSP seals anything ([MS-SPNG] 3.3.5.1, as Windows and FreeRDP do).
        var third = _settings.UseSpnego
            ? SpnegoToken.Response(null, null, authenticate, new NtlmSealer(_exportedKey, _flags, clientToServer: true).ComputeSignature(SpnegoToken.EncodeMechTypes(MechTypes))).Encode()
            : authenticate;
        _toServer = new NtlmSealer(_exportedKey, _flags, clientToServer: true);
        _binding = PublicKeyBinding.ClientValue(NegotiatedVersion, _random.ClientNonce, _settings.SubjectPublicKey);
        var pubKeyAuth = _toServer.Seal(_binding);
        State = CredSspClientState.WaitingForServerBinding;
        return new CredSspClientStep(new TsRequest(TsRequest.CurrentVersion, [third], pubKeyAuth: pubKeyAuth, clientNonce: NegotiatedVersion >= 5 ? _random.ClientNonce : null).Encode(), null);
    }

    private CredSspClientStep OnServerBinding(TsRequest request, string stage)
    {
        var exportedKey = _exportedKey!;
        if (request.NegoTokens.Count > 1)
        {
            return Fail(CredSspClientFailure.Malformed, $"the server's last answer has {request.NegoTokens.Count} negoTokens", stage);
        }

        if (request.NegoTokens.Count == 1)
        {
            if (!_settings.UseSpnego)
            {
                return Fail(CredSspClientFailure.Malformed, "the server answered the raw NTLM AUTHENTICATE with another negoToken (raw NTLM ends with AUTHENTICATE)", stage);
            }

            if (!SpnegoToken.TryParse(request.NegoTokens[0], out var final, out var spnegoError))
            {
                return Fail(CredSspClientFailure.Malformed, $"the server's final SPNEGO token is malformed: {spnegoError}", stage);
            }

            if (final.IsInit || final.State == NegState.Reject)
            {
                return Fail(CredSspClientFailure.ServerNotAuthenticated, "the server rejected the NTLM AUTHENTICATE in SPNEGO", stage);
            }

            if (final.HasMechListMic
                && !new NtlmSealer(exportedKey, _flags, clientToServer: false).VerifySignature(SpnegoToken.EncodeMechTypes(MechTypes), final.MechListMic))
            {
                return Fail(CredSspClientFailure.ServerNotAuthenticated, "the server's SPNEGO mechListMIC does not verify (a man in the middle, or the server does not hold the session key)", stage);
            }
        }

        if (!request.HasPubKeyAuth)
        {
            return Fail(CredSspClientFailure.Malformed, "the server's answer to AUTHENTICATE has no pubKeyAuth", stage);
        }

        var fromServer = new NtlmSealer(exportedKey, _flags, clientToServer: false);
        var binding = fromServer.Unseal(request.PubKeyAuth);
        if (binding is null)
        {
            return Fail(CredSspClientFailure.ServerNotAuthenticated, "the server's pubKeyAuth signature does not verify (a man in the middle, or the server does not hold the session key)", stage);
        }

        if (!PublicKeyBinding.Matches(binding, PublicKeyBinding.ServerValue(NegotiatedVersion, _random.ClientNonce, _settings.SubjectPublicKey)))
        {
            return Fail(CredSspClientFailure.ServerNotAuthenticated, "the server's pubKeyAuth is not bound to the TLS key this connection sees (a man in the middle: another TLS endpoint sits between the gateway and the host)", stage);
        }

        var credentials = new TsCredentials(_settings.Domain, _settings.UserName, _settings.Password).Encode();
        try
        {
            var authInfo = _toServer!.Seal(credentials);
            State = CredSspClientState.Completed;
            return new CredSspClientStep(new TsRequest(TsRequest.CurrentVersion, authInfo: authInfo, clientNonce: NegotiatedVersion >= 5 ? _random.ClientNonce : null).Encode(), null);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(credentials);
        }
    }

    private CredSspClientStep Fail(CredSspClientFailure kind, string reason, string stage)
    {
        State = CredSspClientState.Failed;
        if (_exportedKey is not null)
        {
            CryptographicOperations.ZeroMemory(_exportedKey);
        }

        return new CredSspClientStep(null, new CredSspClientError(kind, reason, null, stage));
    }

    [DoesNotReturn]
    private void ThrowWrongState(string operation) =>
        throw new InvalidOperationException($"CredSspClient.{operation} is not valid in state {State}.");

    [DoesNotReturn]
    private T ThrowWrongState<T>(string operation) =>
        throw new InvalidOperationException($"CredSspClient.{operation} is not valid in state {State}.");
}
