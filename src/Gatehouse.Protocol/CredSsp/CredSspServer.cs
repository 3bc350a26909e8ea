using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>Who a <see cref="CredSspServer"/> is: the TLS key CredSSP binds to and the names of its CHALLENGE.</summary>
public sealed class CredSspServerSettings
{
    /// <summary>Longest computer or DNS name accepted.</summary>
    public const int MaxNameLength = 255;

    /// <summary>
    /// Creates the settings. <paramref name="subjectPublicKey"/> is the SubjectPublicKey of the certificate this TLS
    /// session presented; <paramref name="computerName"/> goes into TargetName, MsvAvNbComputerName and
    /// MsvAvNbDomainName (NetBIOS names are upper-case), <paramref name="dnsName"/> into MsvAvDnsComputerName and
    /// MsvAvDnsDomainName.
    /// </summary>
    public CredSspServerSettings(ReadOnlySpan<byte> subjectPublicKey, string computerName, string dnsName)
    {
        ArgumentNullException.ThrowIfNull(computerName);
        ArgumentNullException.ThrowIfNull(dnsName);
        if (subjectPublicKey.IsEmpty)
        {
            throw new ArgumentException("The server's public key is required: it binds CredSSP to the TLS session.", nameof(subjectPublicKey));
        }

        if (computerName.Length is 0 or > MaxNameLength || dnsName.Length is 0 or > MaxNameLength)
        {
            throw new ArgumentException($"The computer and DNS names are 1 to {MaxNameLength} characters.");
        }

        SubjectPublicKey = subjectPublicKey.ToArray();
        ComputerName = computerName;
        DnsName = dnsName;
    }

    /// <summary>The SubjectPublicKey of the server's TLS certificate.</summary>
    public byte[] SubjectPublicKey { get; }

    /// <summary>The NetBIOS computer (and domain) name of the CHALLENGE.</summary>
    public string ComputerName { get; }

    /// <summary>The DNS computer (and domain) name of the CHALLENGE.</summary>
    public string DnsName { get; }

    /// <summary>
    /// Maps a (domain, user name) pair, from the NTLM AUTHENTICATE or from TSPasswordCreds, to the account it names, or
    /// null when the name is not an accepted form. The two must map to the same account (compared ignoring case). Null
    /// (the default) compares <c>domain\user</c> (or <c>user</c> when the domain is empty) as sent. Must be a pure function.
    /// </summary>
    public Func<string, string, string?>? ResolveUserName { get; init; }
}

/// <summary>
/// The random and time inputs of one <see cref="CredSspServer"/> exchange, supplied by the caller so the state machine
/// stays deterministic (the library has no randomness or clock).
/// </summary>
public sealed class CredSspServerRandom
{
    /// <summary>Creates the inputs; <paramref name="serverChallenge"/> must be 8 fresh random bytes for a real connection.</summary>
    public CredSspServerRandom(byte[] serverChallenge, long fileTimeNow)
    {
        ArgumentNullException.ThrowIfNull(serverChallenge);
        if (serverChallenge.Length != 8)
        {
            throw new ArgumentException("The server challenge is 8 bytes.", nameof(serverChallenge));
        }

        ServerChallenge = serverChallenge;
        FileTimeNow = fileTimeNow;
    }

    /// <summary>The NTLM ServerChallenge (8 bytes).</summary>
    public byte[] ServerChallenge { get; }

    /// <summary>The current time as a FILETIME (UTC), sent as MsvAvTimestamp.</summary>
    public long FileTimeNow { get; }
}

/// <summary>The user an NTLM AUTHENTICATE names, and the account <see cref="CredSspServerSettings.ResolveUserName"/> maps it to.</summary>
/// <param name="Domain">DomainName as sent.</param>
/// <param name="UserName">UserName as sent.</param>
/// <param name="AccountName">The resolved account name, or null when the name is not an accepted form.</param>
public sealed record CredSspUser(string Domain, string UserName, string? AccountName)
{
    /// <summary><c>domain\user</c>, or <c>user</c> when the domain is empty (as the client typed it).</summary>
    public override string ToString() => Domain.Length == 0 ? UserName : $"{Domain}\\{UserName}";
}

/// <summary>The states of <see cref="CredSspServer"/>; the name says what the machine waits for.</summary>
public enum CredSspServerState
{
    /// <summary>The client's first TSRequest (NEGOTIATE): call <see cref="CredSspServer.Step"/>.</summary>
    WaitingForNegotiate,

    /// <summary>CHALLENGE sent; the client's AUTHENTICATE with pubKeyAuth is next: call <see cref="CredSspServer.Step"/>.</summary>
    WaitingForAuthenticate,

    /// <summary>
    /// The NT hash of <see cref="CredSspServer.User"/> is needed: answer <see cref="CredSspServer.ProvideAccount"/>, or
    /// <see cref="CredSspServer.Refuse"/> (not a work account, unknown user, no NT hash).
    /// </summary>
    WaitingForAccount,

    /// <summary>
    /// The NTLMv2 response does not match the NT hash: count it toward lockout and <see cref="CredSspServer.Refuse"/> with
    /// <see cref="CredSspServerFailure.BadPassword"/> or <see cref="CredSspServerFailure.LockedOut"/>.
    /// </summary>
    WrongProof,

    /// <summary>
    /// The password is proven (NTLMv2, MIC, pubKeyAuth bound to our TLS key): check the account's state, then
    /// <see cref="CredSspServer.ConfirmAccount"/> (which answers with the server's pubKeyAuth) or <see cref="CredSspServer.Refuse"/>.
    /// </summary>
    WaitingForAccountCheck,

    /// <summary>The server's pubKeyAuth sent; the sealed TSCredentials are next: call <see cref="CredSspServer.Step"/>.</summary>
    WaitingForCredentials,

    /// <summary>
    /// The TSCredentials name the NTLM user: check <see cref="CredSspServer.Credentials"/>' password, then
    /// <see cref="CredSspServer.ConfirmPassword"/> or <see cref="CredSspServer.Refuse"/>.
    /// </summary>
    WaitingForPasswordCheck,

    /// <summary>CredSSP is over: the user is authenticated (authorisation and the Early User Authorization Result are the caller's).</summary>
    Authenticated,

    /// <summary>The exchange was refused; the errorCode TSRequest was the last output.</summary>
    Failed,
}

/// <summary>What one call on <see cref="CredSspServer"/> produced: bytes to send (a TSRequest), and the refusal when it failed.</summary>
/// <param name="Output">The TSRequest to send now, or null (then <see cref="CredSspServer.State"/> says what is needed).</param>
/// <param name="Error">The refusal, or null; a refusal's output is the errorCode TSRequest.</param>
public readonly record struct CredSspServerStep(byte[]? Output, CredSspServerError? Error)
{
    /// <summary>True when the step refused the exchange.</summary>
    [MemberNotNullWhen(true, nameof(Error))]
    public bool Failed => Error is not null;
}

/// <summary>
/// [MS-CSSP] 3.1.5 the CredSSP server, sans-IO, the mirror of <see cref="CredSspClient"/>: NTLMv2, raw or in SPNEGO.
/// <list type="number">
/// <item>TSRequest { NEGOTIATE, clientNonce } → TSRequest { CHALLENGE } with the caller's server challenge, the target
/// information and MsvAvTimestamp.</item>
/// <item>TSRequest { AUTHENTICATE, pubKeyAuth } → <see cref="CredSspServerState.WaitingForAccount"/>: the caller looks the
/// user up and gives its NT hash to <see cref="ProvideAccount"/>, which verifies the NTLMv2 response, the MIC, the
/// SPNEGO mechListMIC and the public-key binding to our TLS key; after the caller checked the account's state,
/// <see cref="ConfirmAccount"/> answers with the server's pubKeyAuth.</item>
/// <item>TSRequest { authInfo } → the sealed TSCredentials are unsealed and must name the NTLM user;
/// <see cref="CredSspServerState.WaitingForPasswordCheck"/> hands their password to the caller, whose
/// <see cref="ConfirmPassword"/> ends in <see cref="CredSspServerState.Authenticated"/>.</item>
/// </list>
/// Every refusal — found by the machine or given by the caller through <see cref="Refuse"/> — is a typed
/// <see cref="CredSspServerError"/> whose output is a TSRequest with the NTSTATUS in errorCode. The machine never
/// talks to a directory, a socket or a clock; randomness and time come in <see cref="CredSspServerRandom"/>. One
/// instance per connection; inputs are bounded by <see cref="TsRequest.MaxSize"/>; secrets are compared in constant time.
/// </summary>
public sealed class CredSspServer
{
    /// <summary>Flags the client must offer: NTLMv2 with extended session security, signing and sealing, Unicode.</summary>
    public const NtlmNegotiateFlags RequiredFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.ExtendedSessionSecurity;

    /// <summary>Flags the CHALLENGE keeps of the client's offer (plus TargetInfo and TargetTypeServer).</summary>
    public const NtlmNegotiateFlags OfferedFlags = RequiredFlags | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.Negotiate128
        | NtlmNegotiateFlags.Negotiate56 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.RequestTarget;

    /// <summary>VERSION: Windows 10.0 build 20348, NTLMSSP_REVISION_W2K3 (what the client expects of a current server).</summary>
    private static readonly byte[] ServerVersion = [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F];

    private readonly CredSspServerSettings _settings;
    private readonly CredSspServerRandom _random;
    private byte[] _negotiate = [];
    private byte[] _challenge = [];
    private byte[] _nonce = [];
    private byte[] _mechTypesDer = [];
    private byte[]? _clientMechListMic;
    private byte[]? _serverMechListMic;
    private NtlmAuthenticateMessage? _authenticate;
    private byte[] _pubKeyAuth = [];
    private NtlmSealer? _fromClient;
    private NtlmSealer? _toClient;

    /// <summary>Creates a server for one connection.</summary>
    public CredSspServer(CredSspServerSettings settings, CredSspServerRandom random)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(random);
        _settings = settings;
        _random = random;
    }

    /// <summary>Where the exchange is, and so what the caller must do next.</summary>
    public CredSspServerState State { get; private set; } = CredSspServerState.WaitingForNegotiate;

    /// <summary>The CredSSP version of the client's first TSRequest (0 before it); later ones must repeat it.</summary>
    public int ClientVersion { get; private set; }

    /// <summary>True when the client wrapped NTLM in SPNEGO (the answers keep its form).</summary>
    public bool UsesSpnego { get; private set; }

    /// <summary>The user the NTLM AUTHENTICATE names (from <see cref="CredSspServerState.WaitingForAccount"/> on), or null.</summary>
    public CredSspUser? User { get; private set; }

    /// <summary>The unsealed TSCredentials, only in <see cref="CredSspServerState.WaitingForPasswordCheck"/>.</summary>
    public TsCredentials? Credentials { get; private set; }

    /// <summary>The stable code of a failure, as the sign-in log writes it.</summary>
    public static string Code(CredSspServerFailure failure) => failure switch
    {
        CredSspServerFailure.MalformedTsRequest => "malformed_tsrequest",
        CredSspServerFailure.MalformedNegotiate => "malformed_negotiate",
        CredSspServerFailure.NtlmFlags => "ntlm_flags",
        CredSspServerFailure.VersionChanged => "version_changed",
        CredSspServerFailure.MalformedAuthenticate => "malformed_authenticate",
        CredSspServerFailure.BadClientNonce => "bad_client_nonce",
        CredSspServerFailure.NotAWorkAccount => "not_a_work_account",
        CredSspServerFailure.UnknownUser => "unknown_user",
        CredSspServerFailure.NoNtHash => "no_nt_hash",
        CredSspServerFailure.BadPassword => "bad_password",
        CredSspServerFailure.LockedOut => "locked_out",
        CredSspServerFailure.BadMic => "bad_mic",
        CredSspServerFailure.BadMechListMic => "bad_mech_list_mic",
        CredSspServerFailure.BadPubKeyAuth => "bad_pub_key_auth",
        CredSspServerFailure.UserDisabled => "user_disabled",
        CredSspServerFailure.PasswordChangeRequired => "password_change_required",
        CredSspServerFailure.MalformedCredentials => "malformed_credentials",
        CredSspServerFailure.BadAuthInfo => "bad_auth_info",
        CredSspServerFailure.CredentialsMismatch => "credentials_mismatch",
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, "not a CredSSP server failure"),
    };

    /// <summary>The NTSTATUS a failure is answered with.</summary>
    public static uint DefaultStatus(CredSspServerFailure failure) => failure switch
    {
        CredSspServerFailure.MalformedTsRequest or CredSspServerFailure.MalformedNegotiate or CredSspServerFailure.VersionChanged
            or CredSspServerFailure.MalformedAuthenticate or CredSspServerFailure.BadClientNonce or CredSspServerFailure.MalformedCredentials => NtStatus.InvalidToken,
        CredSspServerFailure.NtlmFlags => NtStatus.UnsupportedFunction,
        CredSspServerFailure.NotAWorkAccount or CredSspServerFailure.UnknownUser or CredSspServerFailure.NoNtHash
            or CredSspServerFailure.BadPassword or CredSspServerFailure.CredentialsMismatch => NtStatus.LogonFailure,
        CredSspServerFailure.LockedOut => NtStatus.AccountLockedOut,
        CredSspServerFailure.BadMic or CredSspServerFailure.BadMechListMic or CredSspServerFailure.BadPubKeyAuth or CredSspServerFailure.BadAuthInfo => NtStatus.MessageAltered,
        CredSspServerFailure.UserDisabled => NtStatus.AccountDisabled,
        CredSspServerFailure.PasswordChangeRequired => NtStatus.PasswordMustChange,
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, "not a CredSSP server failure"),
    };

    /// <summary>The TSRequest that refuses with <paramref name="status"/> in errorCode (also for refusals after CredSSP, under HYBRID).</summary>
    public static byte[] ErrorMessage(uint status) => new TsRequest(TsRequest.CurrentVersion, errorCode: status).Encode();

    /// <summary>[MS-RDPBCGR] 2.2.10.2 Early User Authorization Result PDU (HYBRID_EX): the 32-bit result, little-endian.</summary>
    public static byte[] EarlyUserAuthorizationResult(uint result)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, result);
        return bytes;
    }

    /// <summary>
    /// Takes one whole TSRequest from the client (frame it with <see cref="TsRequest.TryGetFrameLength"/>) in
    /// <see cref="CredSspServerState.WaitingForNegotiate"/>, <see cref="CredSspServerState.WaitingForAuthenticate"/> or
    /// <see cref="CredSspServerState.WaitingForCredentials"/>. Returns the CHALLENGE to send, or no output and a state
    /// that asks the caller for something, or a refusal.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not waiting for a client message.</exception>
    public CredSspServerStep Step(ReadOnlySpan<byte> clientMessage)
    {
        if (State is not (CredSspServerState.WaitingForNegotiate or CredSspServerState.WaitingForAuthenticate or CredSspServerState.WaitingForCredentials))
        {
            ThrowWrongState(nameof(Step));
        }

        if (!TsRequest.TryParse(clientMessage, out var request, out var pduError))
        {
            return Fail(CredSspServerFailure.MalformedTsRequest, pduError!.ToString());
        }

        if (request.ErrorCode is { } code)
        {
            return Fail(CredSspServerFailure.MalformedTsRequest, $"the client reported error 0x{code:X8}");
        }

        if (State == CredSspServerState.WaitingForNegotiate)
        {
            return OnNegotiate(request);
        }

        if (request.Version != ClientVersion)
        {
            return Fail(CredSspServerFailure.VersionChanged, $"the client sent CredSSP version {ClientVersion}, then {request.Version}");
        }

        return State == CredSspServerState.WaitingForAuthenticate ? OnAuthenticate(request) : OnCredentials(request);
    }

    /// <summary>
    /// In <see cref="CredSspServerState.WaitingForAccount"/>: the NT hash of <see cref="User"/>. Verifies the NTLMv2
    /// response (→ <see cref="CredSspServerState.WrongProof"/> when it does not match), then the MIC, the mechListMIC
    /// and pubKeyAuth (→ a refusal), and waits for the account check (<see cref="CredSspServerState.WaitingForAccountCheck"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not waiting for an account.</exception>
    /// <exception cref="ArgumentException">The NT hash is not 16 bytes (refuse with <see cref="CredSspServerFailure.NoNtHash"/> instead).</exception>
    public CredSspServerStep ProvideAccount(ReadOnlySpan<byte> ntHash)
    {
        if (State != CredSspServerState.WaitingForAccount)
        {
            ThrowWrongState(nameof(ProvideAccount));
        }

        if (ntHash.Length != 16)
        {
            throw new ArgumentException("An NT hash is 16 bytes; refuse with NoNtHash when the account has none.", nameof(ntHash));
        }

        var authenticate = _authenticate!;
        var sessionBaseKey = NtlmV2.VerifyResponse(ntHash, authenticate.UserName, authenticate.DomainName, _random.ServerChallenge, authenticate.NtChallengeResponse);
        if (sessionBaseKey is null)
        {
            State = CredSspServerState.WrongProof;
            return default;
        }

        var flags = authenticate.Flags;
        var exportedKey = NtlmV2.ExportedSessionKey(sessionBaseKey, authenticate.EncryptedRandomSessionKey, flags);
        CryptographicOperations.ZeroMemory(sessionBaseKey);
        NtlmSealer fromClient;
        try
        {
            var clientPairs = NtlmV2.ClientTargetInfo(authenticate.NtChallengeResponse);
            if (clientPairs.Length > 0 && AvPairs.TryParse(clientPairs, out var clientInfo, out _) && (clientInfo.Flags & AvPairs.MicPresentFlag) != 0
                && !NtlmV2.VerifyMic(exportedKey, _negotiate, _challenge, authenticate.Raw))
            {
                return Fail(CredSspServerFailure.BadMic, "the AUTHENTICATE message's MIC does not cover the exchange");
            }

            // SPNEGO's mechListMIC (when the client sent one) is checked and answered with fresh keys, which both sides then
            // reset before CredSSP seals anything ([MS-SPNG] 3.3.5.1, FreeRDP ntlm_reset_cipher_state).
            if (UsesSpnego && _clientMechListMic is { } clientMic)
            {
                if (!new NtlmSealer(exportedKey, flags, clientToServer: true).VerifySignature(_mechTypesDer, clientMic))
                {
                    return Fail(CredSspServerFailure.BadMechListMic, "the SPNEGO mechListMIC does not match");
                }

                _serverMechListMic = new NtlmSealer(exportedKey, flags, clientToServer: false).ComputeSignature(_mechTypesDer);
            }

            fromClient = new NtlmSealer(exportedKey, flags, clientToServer: true);
            _toClient = new NtlmSealer(exportedKey, flags, clientToServer: false);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(exportedKey);
        }

        _fromClient = fromClient;
        var binding = fromClient.Unseal(_pubKeyAuth);
        if (binding is null)
        {
            return Fail(CredSspServerFailure.BadPubKeyAuth, "pubKeyAuth's signature does not verify");
        }

        if (!PublicKeyBinding.Matches(binding, PublicKeyBinding.ClientValue(ClientVersion, _nonce, _settings.SubjectPublicKey)))
        {
            return Fail(CredSspServerFailure.BadPubKeyAuth, "pubKeyAuth is not bound to the gateway's TLS key (a man in the middle, or a client bug)");
        }

        State = CredSspServerState.WaitingForAccountCheck;
        return default;
    }

    /// <summary>
    /// In <see cref="CredSspServerState.WaitingForAccountCheck"/>: the account may sign in; returns the TSRequest with the
    /// server's pubKeyAuth (and, under SPNEGO, the final NegTokenResp) and waits for the credentials.
    /// </summary>
    /// <exception cref="InvalidOperationException">The machine is not waiting for the account check.</exception>
    public CredSspServerStep ConfirmAccount()
    {
        if (State != CredSspServerState.WaitingForAccountCheck)
        {
            ThrowWrongState(nameof(ConfirmAccount));
        }

        var serverBinding = _toClient!.Seal(PublicKeyBinding.ServerValue(ClientVersion, _nonce, _settings.SubjectPublicKey));
        var finalToken = UsesSpnego ? SpnegoToken.Response(NegState.AcceptCompleted, null, null, _serverMechListMic).Encode() : null;
        State = CredSspServerState.WaitingForCredentials;
        return new CredSspServerStep(new TsRequest(TsRequest.CurrentVersion, finalToken is null ? null : [finalToken], pubKeyAuth: serverBinding).Encode(), null);
    }

    /// <summary>In <see cref="CredSspServerState.WaitingForPasswordCheck"/>: the password is right; CredSSP ends authenticated, with nothing to send.</summary>
    /// <exception cref="InvalidOperationException">The machine is not waiting for the password check.</exception>
    public CredSspServerStep ConfirmPassword()
    {
        if (State != CredSspServerState.WaitingForPasswordCheck)
        {
            ThrowWrongState(nameof(ConfirmPassword));
        }

        Credentials = null;
        State = CredSspServerState.Authenticated;
        return default;
    }

    /// <summary>
    /// Refuses the exchange in any state but <see cref="CredSspServerState.Authenticated"/> and
    /// <see cref="CredSspServerState.Failed"/>: the caller's answer (unknown user, wrong password, lockout, account
    /// state) or a transport problem (a frame that cannot be read: <see cref="CredSspServerFailure.MalformedTsRequest"/>).
    /// The output is the errorCode TSRequest with the failure's NTSTATUS.
    /// </summary>
    /// <exception cref="InvalidOperationException">The exchange is already over.</exception>
    public CredSspServerStep Refuse(CredSspServerFailure failure, string detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        if (State is CredSspServerState.Authenticated or CredSspServerState.Failed)
        {
            ThrowWrongState(nameof(Refuse));
        }

        return Fail(failure, detail);
    }

    private CredSspServerStep OnNegotiate(TsRequest request)
    {
        ClientVersion = request.Version;
        if (!TryUnwrap(request, initial: true, out var negotiateBytes, out var problem))
        {
            return Fail(CredSspServerFailure.MalformedNegotiate, problem);
        }

        if (!NtlmNegotiateMessage.TryParse(negotiateBytes, out var negotiate, out var pduError))
        {
            return Fail(CredSspServerFailure.MalformedNegotiate, pduError!.ToString());
        }

        if ((negotiate.Flags & RequiredFlags) != RequiredFlags)
        {
            return Fail(CredSspServerFailure.NtlmFlags, $"the client did not offer {RequiredFlags & ~negotiate.Flags} (NTLMv2 with signing and sealing is required)");
        }

        _negotiate = negotiateBytes;
        _nonce = request.ClientNonce.ToArray();
        var flags = (negotiate.Flags & OfferedFlags) | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.TargetTypeServer;
        var timestamp = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(timestamp, _random.FileTimeNow);
        var computer = Encoding.Unicode.GetBytes(_settings.ComputerName);
        var dns = Encoding.Unicode.GetBytes(_settings.DnsName);
        var targetInfo = new AvPairs(
        [
            (AvId.NbDomainName, computer),
            (AvId.NbComputerName, computer),
            (AvId.DnsDomainName, dns),
            (AvId.DnsComputerName, dns),
            (AvId.Timestamp, timestamp),
        ]);
        _challenge = new NtlmChallengeMessage(flags, _random.ServerChallenge, computer, targetInfo, flags.HasFlag(NtlmNegotiateFlags.Version) ? ServerVersion : default).ToArray();
        var token = UsesSpnego ? SpnegoToken.Response(NegState.AcceptIncomplete, SpnegoToken.NtlmOid, _challenge, null).Encode() : _challenge;
        State = CredSspServerState.WaitingForAuthenticate;
        return new CredSspServerStep(new TsRequest(TsRequest.CurrentVersion, [token]).Encode(), null);
    }

    private CredSspServerStep OnAuthenticate(TsRequest request)
    {
        if (!TryUnwrap(request, initial: false, out var authenticateBytes, out var problem))
        {
            return Fail(CredSspServerFailure.MalformedAuthenticate, problem);
        }

        if (!NtlmAuthenticateMessage.TryParse(authenticateBytes, out var authenticate, out var pduError))
        {
            return Fail(CredSspServerFailure.MalformedAuthenticate, pduError!.ToString());
        }

        if (!request.HasPubKeyAuth)
        {
            return Fail(CredSspServerFailure.MalformedAuthenticate, "the TSRequest with AUTHENTICATE has no pubKeyAuth");
        }

        if (ClientVersion >= 5)
        {
            // The first TSRequest's nonce, when there was one, must come back; the binding hashes this one.
            if (request.ClientNonce.Length != TsRequest.NonceSize || (_nonce.Length > 0 && !CryptographicOperations.FixedTimeEquals(request.ClientNonce, _nonce)))
            {
                return Fail(CredSspServerFailure.BadClientNonce, "a CredSSP 5+ client must send the same 32-byte clientNonce with its pubKeyAuth");
            }

            _nonce = request.ClientNonce.ToArray();
        }

        _authenticate = authenticate;
        _pubKeyAuth = request.PubKeyAuth.ToArray();
        User = new CredSspUser(authenticate.DomainName, authenticate.UserName, Resolve(authenticate.DomainName, authenticate.UserName));
        State = CredSspServerState.WaitingForAccount;
        return default;
    }

    private CredSspServerStep OnCredentials(TsRequest request)
    {
        if (!request.HasAuthInfo)
        {
            return Fail(CredSspServerFailure.MalformedCredentials, "the last TSRequest has no authInfo");
        }

        var plaintext = _fromClient!.Unseal(request.AuthInfo);
        if (plaintext is null)
        {
            return Fail(CredSspServerFailure.BadAuthInfo, "authInfo's signature does not verify");
        }

        TsCredentials? credentials;
        try
        {
            if (!TsCredentials.TryParse(plaintext, out credentials, out var pduError))
            {
                return Fail(CredSspServerFailure.MalformedCredentials, pduError!.ToString(), pduError.Kind == PduErrorKind.Unsupported ? NtStatus.UnsupportedFunction : NtStatus.InvalidToken);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }

        if (User!.AccountName is not { } account || Resolve(credentials.DomainName, credentials.UserName) is not { } named
            || !string.Equals(named, account, StringComparison.OrdinalIgnoreCase))
        {
            return Fail(CredSspServerFailure.CredentialsMismatch, "TSPasswordCreds name another user than the NTLM AUTHENTICATE (restricted admin and remote credential guard are not supported)");
        }

        Credentials = credentials;
        State = CredSspServerState.WaitingForPasswordCheck;
        return default;
    }

    private string? Resolve(string domain, string user) =>
        _settings.ResolveUserName is { } resolve ? resolve(domain, user) : domain.Length == 0 ? user : $"{domain}\\{user}";

    /// <summary>Takes the NTLM message out of the first negoToken: raw NTLMSSP, or SPNEGO (NegTokenInit first, NegTokenResp after).</summary>
    private bool TryUnwrap(TsRequest request, bool initial, out byte[] ntlm, out string problem)
    {
        ntlm = [];
        problem = string.Empty;
        if (request.NegoTokens.Count != 1)
        {
            problem = $"{request.NegoTokens.Count} negoTokens, expected 1";
            return false;
        }

        var token = request.NegoTokens[0];
        if (initial)
        {
            UsesSpnego = SpnegoToken.LooksLikeSpnego(token);
        }
        else if (UsesSpnego != SpnegoToken.LooksLikeSpnego(token))
        {
            problem = UsesSpnego ? "raw NTLM after an SPNEGO start" : "SPNEGO after a raw NTLM start";
            return false;
        }

        if (!UsesSpnego)
        {
            ntlm = token;
            return true;
        }

        if (!SpnegoToken.TryParse(token, out var spnego, out var error))
        {
            problem = error!.ToString();
            return false;
        }

        if (initial)
        {
            if (!spnego.IsInit || !spnego.MechTypes.Contains(SpnegoToken.NtlmOid))
            {
                problem = spnego.IsInit ? "SPNEGO offers no NTLM (Kerberos is not supported)" : "SPNEGO NegTokenResp where NegTokenInit was expected";
                return false;
            }

            _mechTypesDer = spnego.MechTypesDer.ToArray();
        }
        else
        {
            if (spnego.IsInit)
            {
                problem = "SPNEGO NegTokenInit where NegTokenResp was expected";
                return false;
            }

            _clientMechListMic = spnego.HasMechListMic ? spnego.MechListMic.ToArray() : null;
        }

        if (!spnego.HasMechToken || spnego.MechToken.Length == 0)
        {
            problem = "SPNEGO token without an NTLM message (an optimistic Kerberos token is not supported)";
            return false;
        }

        ntlm = spnego.MechToken.ToArray();
        if (!ntlm.AsSpan().StartsWith(NtlmMessage.Signature))
        {
            problem = "SPNEGO's mechToken is not NTLMSSP (Kerberos is not supported)";
            return false;
        }

        return true;
    }

    private CredSspServerStep Fail(CredSspServerFailure failure, string detail, uint? status = null)
    {
        var error = new CredSspServerError(failure, status ?? DefaultStatus(failure), detail);
        State = CredSspServerState.Failed;
        Credentials = null;
        _fromClient = null;
        _toClient = null;
        return new CredSspServerStep(ErrorMessage(error.Status), error);
    }

    [DoesNotReturn]
    private void ThrowWrongState(string operation) =>
        throw new InvalidOperationException($"CredSspServer.{operation} is not valid in state {State}.");
}
