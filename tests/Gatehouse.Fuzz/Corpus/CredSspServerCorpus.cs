using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Crypto;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>The messages of a CredSSP client, in the order the server sees them; what a fuzz run replaces.</summary>
public enum CredSspClientStage
{
    /// <summary>The whole first TSRequest.</summary>
    First,

    /// <summary>The NTLM NEGOTIATE inside it (the client's MIC then covers the replaced bytes).</summary>
    Negotiate,

    /// <summary>The whole second TSRequest (AUTHENTICATE and pubKeyAuth).</summary>
    Third,

    /// <summary>The NTLM AUTHENTICATE inside it, after its MIC was computed.</summary>
    Authenticate,

    /// <summary>The public-key binding value, before it is sealed into pubKeyAuth.</summary>
    Binding,

    /// <summary>The whole last TSRequest (authInfo).</summary>
    Fourth,

    /// <summary>The TSCredentials DER, before it is sealed into authInfo.</summary>
    Credentials,
}

/// <summary>
/// A deterministic CredSSP client built from the library's client-side NTLM pieces, for driving
/// <see cref="CredSspServer"/>: any CredSSP version, raw NTLM or SPNEGO, with or without a mechListMIC, and a hook
/// per message that may replace it (tests tamper, the fuzz target substitutes mutated bytes). Unlike
/// <see cref="CredSspClient"/> it sends its credentials even when the server's pubKeyAuth does not verify (it records
/// <see cref="ServerBindingOk"/>), so the server's last step can be reached with any binding.
/// </summary>
public sealed class ScriptedCredSspClient
{
    private const NtlmNegotiateFlags ClientFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.RequestTarget | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.ExtendedSessionSecurity
        | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate56;

    private static readonly byte[] ClientVersionField = [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F];
    private static readonly string[] MechTypes = [SpnegoToken.NtlmOid];

    private byte[] _negotiate = [];
    private NtlmNegotiateFlags _flags;
    private byte[] _exportedKey = [];
    private NtlmSealer? _toServer;

    /// <summary>The CredSSP version of every TSRequest.</summary>
    public int Version { get; init; } = TsRequest.CurrentVersion;

    /// <summary>NTLM in SPNEGO (true) or raw (false).</summary>
    public bool Spnego { get; init; } = true;

    /// <summary>Send SPNEGO's mechListMIC with AUTHENTICATE (Windows does; some clients do not).</summary>
    public bool SendMechListMic { get; init; } = true;

    /// <summary>The NTLM DomainName.</summary>
    public string Domain { get; init; } = string.Empty;

    /// <summary>The NTLM UserName.</summary>
    public string User { get; init; } = CredSspServerCorpus.Account;

    /// <summary>The password the NTLMv2 response and the TSCredentials are made from.</summary>
    public string Password { get; init; } = CredSspServerCorpus.Password;

    /// <summary>The TLS key the client sees (another one than the server's is a man in the middle).</summary>
    public byte[] SubjectPublicKey { get; init; } = CredSspClientCorpus.SubjectPublicKey;

    /// <summary>The NEGOTIATE flags.</summary>
    public NtlmNegotiateFlags NegotiateFlags { get; init; } = ClientFlags;

    /// <summary>The TSCredentials sealed into authInfo (default: Domain, User, Password).</summary>
    public TsCredentials? Credentials { get; init; }

    /// <summary>The clientNonce of CredSSP 5+ (32 bytes), sent in the first and second TSRequest.</summary>
    public byte[] Nonce { get; init; } = Enumerable.Repeat((byte)0x22, TsRequest.NonceSize).ToArray();

    /// <summary>The random session key sent under NTLMSSP_NEGOTIATE_KEY_EXCH (16 bytes).</summary>
    public byte[] ExportedSessionKey { get; init; } = Enumerable.Repeat((byte)0x55, 16).ToArray();

    /// <summary>Replaces one message: called with the stage and the genuine bytes, returns what is sent.</summary>
    public Func<CredSspClientStage, byte[], byte[]>? Tamper { get; init; }

    /// <summary>True once the server's pubKeyAuth verified for this client's TLS key.</summary>
    public bool ServerBindingOk { get; private set; }

    /// <summary>The NEGOTIATE the client sent and its MIC covers (after the <see cref="CredSspClientStage.Negotiate"/> hook).</summary>
    public byte[] SignedNegotiate => _negotiate;

    /// <summary>The CHALLENGE the client answered (its MIC covers it).</summary>
    public byte[] SignedChallenge { get; private set; } = [];

    /// <summary>The AUTHENTICATE with the MIC the client computed (before the <see cref="CredSspClientStage.Authenticate"/> hook).</summary>
    public byte[] SignedAuthenticate { get; private set; } = [];

    /// <summary>The SPNEGO mechListMIC of this client's session key (sent only with <see cref="SendMechListMic"/>), or null for raw NTLM.</summary>
    public byte[]? SignedMechListMic { get; private set; }

    /// <summary>The TSCredentials DER the client sealed (after the <see cref="CredSspClientStage.Credentials"/> hook), or null.</summary>
    public byte[]? SealedCredentials { get; private set; }

    /// <summary>The first TSRequest: NEGOTIATE (in a NegTokenInit under SPNEGO) and, from version 5, the nonce.</summary>
    public byte[] First()
    {
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        new NtlmNegotiateMessage(NegotiateFlags, version: ClientVersionField).Write(writer);
        _negotiate = Apply(CredSspClientStage.Negotiate, writer.WrittenSpan.ToArray());
        var token = Spnego ? SpnegoToken.Init(MechTypes, _negotiate).Encode() : _negotiate;
        return Apply(CredSspClientStage.First, new TsRequest(Version, [token], clientNonce: Version >= 5 ? Nonce : null).Encode());
    }

    /// <summary>The answer to the server's CHALLENGE: AUTHENTICATE with a MIC, pubKeyAuth, the nonce; null when the answer is not a CHALLENGE.</summary>
    public byte[]? Third(byte[] serverAnswer)
    {
        ArgumentNullException.ThrowIfNull(serverAnswer);
        if (!TsRequest.TryParse(serverAnswer, out var answer, out _) || answer.ErrorCode is not null || answer.NegoTokens.Count != 1)
        {
            return null;
        }

        var challengeBytes = answer.NegoTokens[0];
        if (Spnego)
        {
            if (!SpnegoToken.TryParse(challengeBytes, out var resp, out _) || !resp.HasMechToken)
            {
                return null;
            }

            challengeBytes = resp.MechToken.ToArray();
        }

        if (!NtlmChallengeMessage.TryParse(challengeBytes, out var challenge, out _))
        {
            return null;
        }

        SignedChallenge = challengeBytes;
        _flags = challenge.Flags;
        var serverInfo = challenge.TargetInfo ?? new AvPairs([]);
        var clientInfo = serverInfo.With(AvId.Flags, [2, 0, 0, 0]).With(AvId.ChannelBindings, new byte[16]).ToArray();
        var temp = NtlmV2.ClientBlob(serverInfo.Timestamp ?? 0, Enumerable.Repeat((byte)0xaa, 8).ToArray(), clientInfo);
        var responseKey = NtlmV2.NtOwfV2(NtlmV2.NtHash(Password), User, Domain);
        var (nt, sessionBaseKey) = NtlmV2.ComputeResponse(responseKey, challenge.ServerChallenge, temp);
        var keyExchange = _flags.HasFlag(NtlmNegotiateFlags.KeyExchange);
        _exportedKey = keyExchange ? ExportedSessionKey : sessionBaseKey;
        var encryptedKey = keyExchange ? Rc4.Transform(sessionBaseKey, _exportedKey) : [];
        var unsigned = new NtlmAuthenticateMessage(_flags, new byte[24], nt, Domain, User, "WORKSTATION", encryptedKey, ClientVersionField, new byte[NtlmAuthenticateMessage.MicSize]);
        var mic = NtlmV2.ComputeMic(_exportedKey, _negotiate, challengeBytes, unsigned.ToArray());
        SignedAuthenticate = unsigned.WithMic(mic).ToArray();
        var authenticate = Apply(CredSspClientStage.Authenticate, SignedAuthenticate);
        SignedMechListMic = Spnego ? new NtlmSealer(_exportedKey, _flags, clientToServer: true).ComputeSignature(SpnegoToken.EncodeMechTypes(MechTypes)) : null;
        var token = Spnego ? SpnegoToken.Response(null, null, authenticate, SendMechListMic ? SignedMechListMic : null).Encode() : authenticate;
        _toServer = new NtlmSealer(_exportedKey, _flags, clientToServer: true);
        var binding = Apply(CredSspClientStage.Binding, PublicKeyBinding.ClientValue(Version, Nonce, SubjectPublicKey));
        return Apply(CredSspClientStage.Third, new TsRequest(Version, [token], pubKeyAuth: _toServer.Seal(binding), clientNonce: Version >= 5 ? Nonce : null).Encode());
    }

    /// <summary>The answer to the server's pubKeyAuth: the sealed TSCredentials (sent even when the binding is wrong); null after an errorCode.</summary>
    public byte[]? Fourth(byte[] serverAnswer)
    {
        ArgumentNullException.ThrowIfNull(serverAnswer);
        if (_toServer is null || !TsRequest.TryParse(serverAnswer, out var answer, out _) || answer.ErrorCode is not null)
        {
            return null;
        }

        var fromServer = new NtlmSealer(_exportedKey, _flags, clientToServer: false);
        var binding = fromServer.Unseal(answer.PubKeyAuth);
        ServerBindingOk = binding is not null && PublicKeyBinding.Matches(binding, PublicKeyBinding.ServerValue(Version, Nonce, SubjectPublicKey));
        SealedCredentials = Apply(CredSspClientStage.Credentials, (Credentials ?? new TsCredentials(Domain, User, Password)).Encode());
        return Apply(CredSspClientStage.Fourth, new TsRequest(Version, authInfo: _toServer.Seal(SealedCredentials)).Encode());
    }

    private byte[] Apply(CredSspClientStage stage, byte[] genuine) => Tamper?.Invoke(stage, genuine) ?? genuine;
}

/// <summary>How a <see cref="CredSspServerHarness"/> run ended, and what the harness saw on the way.</summary>
/// <param name="State">The server's final state.</param>
/// <param name="Error">The refusal, when there was one.</param>
/// <param name="ProofAccepted">The server accepted the NTLMv2 proof, MIC and pubKeyAuth (reached the account check).</param>
/// <param name="ClientBindingOk">The client verified the server's pubKeyAuth.</param>
/// <param name="Transcript">Every message, in order: client, server, client…</param>
/// <param name="Credentials">The credentials the server handed to the password check, or null.</param>
public sealed record CredSspServerRun(CredSspServerState State, CredSspServerError? Error, bool ProofAccepted, bool ClientBindingOk, IReadOnlyList<byte[]> Transcript, TsCredentials? Credentials);

/// <summary>
/// Drives a whole exchange between a <see cref="ScriptedCredSspClient"/> and a <see cref="CredSspServer"/> in memory,
/// playing the directory as the gateway's driver does: one account (<see cref="CredSspServerCorpus.Account"/>) with
/// the NT hash it is given; a wrong proof and a wrong password are refused as <c>bad_password</c>. It checks the
/// machine's contract at every step and throws <see cref="OracleViolationException"/> when it breaks.
/// </summary>
public static class CredSspServerHarness
{
    public static CredSspServerRun Run(ScriptedCredSspClient client, CredSspServer server, byte[] ntHash)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(ntHash);
        var transcript = new List<byte[]>();
        var proofAccepted = false;
        TsCredentials? checkedCredentials = null;
        CredSspServerError? error = null;
        byte[]? next = client.First();
        while (next is not null && error is null && server.State is not (CredSspServerState.Authenticated or CredSspServerState.Failed))
        {
            transcript.Add(next);
            var step = Expect(server, server.Step(next));
            while (!step.Failed && step.Output is null && server.State is not CredSspServerState.Authenticated)
            {
                step = server.State switch
                {
                    CredSspServerState.WaitingForAccount => AnswerAccount(server, ntHash),
                    CredSspServerState.WrongProof => server.Refuse(CredSspServerFailure.BadPassword, "the NTLMv2 response does not match the user's password"),
                    CredSspServerState.WaitingForAccountCheck => server.ConfirmAccount(),
                    CredSspServerState.WaitingForPasswordCheck => AnswerPassword(server, out checkedCredentials),
                    _ => throw new OracleViolationException($"a step without output or error left the server in {server.State}"),
                };
                proofAccepted |= server.State == CredSspServerState.WaitingForAccountCheck;
                step = Expect(server, step);
            }

            error = step.Error;
            if (step.Output is not { } output)
            {
                break;
            }

            transcript.Add(output);
            next = server.State switch
            {
                CredSspServerState.WaitingForAuthenticate => client.Third(output),
                CredSspServerState.WaitingForCredentials => client.Fourth(output),
                _ => null,
            };
        }

        return new CredSspServerRun(server.State, error, proofAccepted, client.ServerBindingOk, transcript, checkedCredentials);
    }

    /// <summary>The machine's contract for one step: a refusal is a parseable errorCode TSRequest with its status; other output is a clean TSRequest.</summary>
    public static CredSspServerStep Expect(CredSspServer server, CredSspServerStep step)
    {
        ArgumentNullException.ThrowIfNull(server);
        if (step.Failed)
        {
            var expected = CredSspServer.DefaultStatus(step.Error.Kind);
            var allowed = expected == step.Error.Status || (step.Error.Kind == CredSspServerFailure.MalformedCredentials && step.Error.Status == NtStatus.UnsupportedFunction);
            if (server.State != CredSspServerState.Failed || step.Output is null || !allowed || string.IsNullOrEmpty(step.Error.Detail)
                || !TsRequest.TryParse(step.Output, out var refusal, out _) || refusal.ErrorCode != step.Error.Status || refusal.NegoTokens.Count != 0 || refusal.HasPubKeyAuth)
            {
                throw new OracleViolationException($"a refusal ({step.Error}) left state {server.State} or did not send exactly its errorCode");
            }

            if (server.Credentials is not null)
            {
                throw new OracleViolationException("a refused server still holds the credentials");
            }

            return step;
        }

        if (step.Output is { } output && (!TsRequest.TryParse(output, out var request, out _) || request.ErrorCode is not null || request.Version != TsRequest.CurrentVersion))
        {
            throw new OracleViolationException($"an accepted step wrote an unparsable TSRequest or one with an errorCode (state {server.State})");
        }

        return step;
    }

    private static CredSspServerStep AnswerAccount(CredSspServer server, byte[] ntHash) => server.User switch
    {
        null => throw new OracleViolationException("the server asks for an account without naming the user"),
        { AccountName: null } user => server.Refuse(CredSspServerFailure.NotAWorkAccount, $"'{user}' is not a work account name"),
        { AccountName: { } name } when !string.Equals(name, CredSspServerCorpus.Account, StringComparison.OrdinalIgnoreCase) => server.Refuse(CredSspServerFailure.UnknownUser, $"no user {name}"),
        _ => server.ProvideAccount(ntHash),
    };

    private static CredSspServerStep AnswerPassword(CredSspServer server, out TsCredentials? checkedCredentials)
    {
        checkedCredentials = server.Credentials;
        if (server.Credentials is not { } credentials || server.User is not { AccountName: { } account }
            || !string.Equals(CredSspServerCorpus.Resolve(credentials.DomainName, credentials.UserName), account, StringComparison.OrdinalIgnoreCase))
        {
            throw new OracleViolationException($"the server asks to check a password of credentials that do not name the NTLM user ({server.Credentials} for {server.User})");
        }

        return credentials.Password == CredSspServerCorpus.Password
            ? server.ConfirmPassword()
            : server.Refuse(CredSspServerFailure.BadPassword, "the password in TSPasswordCreds is wrong");
    }
}

/// <summary>The fixed inputs of <see cref="CredSspServer"/> tests and fuzz seeds.</summary>
public static class CredSspServerCorpus
{
    /// <summary>The one account of the harness's directory.</summary>
    public const string Account = "alice@contoso.test";

    /// <summary>Its password.</summary>
    public const string Password = "Correct-Horse-1";

    /// <summary>A FILETIME (2017) for MsvAvTimestamp.</summary>
    public const long Now = CredSspClientCorpus.ServerTime;

    /// <summary>The account's NT hash.</summary>
    public static byte[] NtHash { get; } = NtlmV2.NtHash(Password);

    /// <summary>Another TLS key than the client sees: a man in the middle terminates TLS with it.</summary>
    public static byte[] OtherSubjectPublicKey { get; } = [.. CredSspClientCorpus.SubjectPublicKey[..^6], (byte)(CredSspClientCorpus.SubjectPublicKey[^6] ^ 0xFF), .. CredSspClientCorpus.SubjectPublicKey[^5..]];

    /// <summary>
    /// The shape of the gateway's user-name rule, for tests: <c>user@domain</c>, optionally after <c>AzureAD\</c>, is
    /// that UPN; <c>DOMAIN\user</c> and bare names are not accepted.
    /// </summary>
    public static string? Resolve(string domain, string user)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(user);
        var name = domain.Length == 0 ? user : $"{domain}\\{user}";
        if (name.StartsWith("AzureAD\\", StringComparison.OrdinalIgnoreCase))
        {
            name = name["AzureAD\\".Length..];
        }

        var at = name.IndexOf('@', StringComparison.Ordinal);
        return at <= 0 || at == name.Length - 1 || name.Contains('\\', StringComparison.Ordinal) ? null : name;
    }

    public static CredSspServerSettings Settings(byte[]? key = null) =>
        new(key ?? CredSspClientCorpus.SubjectPublicKey, "VM1", "vm1.gatehouse.test") { ResolveUserName = Resolve };

    /// <summary>The [MS-NLMP] 4.2.4 server challenge (its last byte XORed with <paramref name="variant"/>) and a fixed time.</summary>
    public static CredSspServerRandom Random(byte variant = 0) => new([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, (byte)(0xef ^ variant)], Now);

    public static CredSspServer Server(byte[]? key = null, byte variant = 0) => new(Settings(key), Random(variant));
}
