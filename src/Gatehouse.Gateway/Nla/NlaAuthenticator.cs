using System.Buffers.Binary;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.Transport;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Nla;

/// <summary>
/// NLA on the client leg ([MS-CSSP] over the client's TLS, PROTOCOL_HYBRID and HYBRID_EX): the gateway is the CredSSP
/// server. NEGOTIATE (raw NTLM or in SPNEGO) → CHALLENGE with a fresh server challenge and target information →
/// AUTHENTICATE verified as NTLMv2 with the user's NT hash (and its MIC) plus the public-key binding of the gateway's
/// certificate → TSCredentials whose password goes through the identity provider's checks and the access engine
/// (amr <c>pwd</c>). The host leg is opened before the last answer; HYBRID_EX gets the Early User Authorization
/// Result. Every refusal is a TSRequest errorCode (or AUTHZ_ACCESS_DENIED) and a sign-in log entry with the reason.
/// Once the client has named a user, the checks run to their decision whatever the client does (under
/// <see cref="GatewayOptions.SignInDecisionTimeout"/>), and the entry is written before the client hears the answer.
/// </summary>
public sealed partial class NlaAuthenticator(
    INlaDirectory directory,
    GatewayCertificate certificate,
    SessionOpener opener,
    IGatewaySignInLog signInLog,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<NlaAuthenticator> logger) : IClientAuthenticator
{
    /// <summary>The protocol name in the sign-in log.</summary>
    public const string ProtocolName = "nla";

    /// <summary>Flags the client must offer: NTLMv2 with extended session security, signing and sealing, Unicode.</summary>
    public const NtlmNegotiateFlags RequiredFlags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.Sign
        | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.ExtendedSessionSecurity;

    private const NtlmNegotiateFlags OfferedFlags = RequiredFlags | NtlmNegotiateFlags.AlwaysSign | NtlmNegotiateFlags.Negotiate128
        | NtlmNegotiateFlags.Negotiate56 | NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.RequestTarget;

    private const string Unavailable = "The remote computer can't be reached right now. Try again later or contact your system administrator.";

    /// <summary>VERSION: Windows 10.0 build 20348, NTLMSSP_REVISION_W2K3 (what the client expects of a current server).</summary>
    private static readonly byte[] ServerVersion = [10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F];

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.Nla;

    /// <inheritdoc />
    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tls);
        var exchange = new Exchange(connection, tls);
        try
        {
            return await RunAsync(exchange, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (exchange.Deciding is { IsCancellationRequested: true })
        {
            // The directory, the authorisation or the host leg did not answer in time: refused (fail closed) and logged.
            var reason = $"decision_timeout: the sign-in decision took longer than {options.Value.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)";
            return exchange.CredentialsReceived
                ? await RefuseAfterCredentialsAsync(exchange, NtStatus.NoLogonServers, reason, Unavailable, cancellationToken).ConfigureAwait(false)
                : await RefuseAsync(exchange, NtStatus.NoLogonServers, reason, cancellationToken, Unavailable).ConfigureAwait(false);
        }
        finally
        {
            exchange.Deciding?.Dispose();
        }
    }

    private async Task<ClientAuthenticationResult> RunAsync(Exchange x, CancellationToken cancellationToken)
    {
        x.HostLabel = HostLabel(x.Tls);

        // 1. TSRequest { negoTokens: [NEGOTIATE], clientNonce }.
        var first = await ReadAsync(x, cancellationToken).ConfigureAwait(false);
        if (first.Request is not { } negotiateRequest)
        {
            return await FailReadAsync(x, first, "NEGOTIATE", cancellationToken).ConfigureAwait(false);
        }

        x.ClientVersion = negotiateRequest.Version;
        if (!TryUnwrap(negotiateRequest, x, initial: true, out var negotiateBytes, out var problem))
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"malformed_negotiate: {problem}", cancellationToken).ConfigureAwait(false);
        }

        if (!NtlmNegotiateMessage.TryParse(negotiateBytes, out var negotiate, out var pduError))
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"malformed_negotiate: {pduError}", cancellationToken).ConfigureAwait(false);
        }

        if ((negotiate.Flags & RequiredFlags) != RequiredFlags)
        {
            return await RefuseAsync(x, NtStatus.UnsupportedFunction, $"ntlm_flags: the client did not offer {RequiredFlags & ~negotiate.Flags} (NTLMv2 with signing and sealing is required)", cancellationToken).ConfigureAwait(false);
        }

        x.Nonce = negotiateRequest.ClientNonce.ToArray();

        // 2. CHALLENGE with a fresh server challenge and the target information.
        var flags = (negotiate.Flags & OfferedFlags) | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.TargetTypeServer;
        var serverChallenge = RandomNumberGenerator.GetBytes(8);
        var computer = (x.HostLabel ?? "GATEHOUSE").ToUpperInvariant();
        var dnsName = (x.Tls as SslStream)?.TargetHostName is { Length: > 0 } sni ? sni : computer;
        var targetInfo = new AvPairs(
        [
            (AvId.NbDomainName, Encoding.Unicode.GetBytes(computer)),
            (AvId.NbComputerName, Encoding.Unicode.GetBytes(computer)),
            (AvId.DnsDomainName, Encoding.Unicode.GetBytes(dnsName)),
            (AvId.DnsComputerName, Encoding.Unicode.GetBytes(dnsName)),
            (AvId.Timestamp, FileTime(time.GetUtcNow())),
        ]);
        var challenge = new NtlmChallengeMessage(flags, serverChallenge, Encoding.Unicode.GetBytes(computer), targetInfo, flags.HasFlag(NtlmNegotiateFlags.Version) ? ServerVersion : default).ToArray();
        var challengeToken = x.Spnego ? SpnegoToken.Response(NegState.AcceptIncomplete, SpnegoToken.NtlmOid, challenge, null).Encode() : challenge;
        await SendAsync(x, new TsRequest(TsRequest.CurrentVersion, [challengeToken]), cancellationToken).ConfigureAwait(false);

        // 3. TSRequest { negoTokens: [AUTHENTICATE], pubKeyAuth, clientNonce }.
        var third = await ReadAsync(x, cancellationToken).ConfigureAwait(false);
        if (third.Request is not { } authenticateRequest)
        {
            return await FailReadAsync(x, third, "AUTHENTICATE", cancellationToken).ConfigureAwait(false);
        }

        if (authenticateRequest.Version != x.ClientVersion)
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"version_changed: the client sent CredSSP version {x.ClientVersion}, then {authenticateRequest.Version}", cancellationToken).ConfigureAwait(false);
        }

        if (!TryUnwrap(authenticateRequest, x, initial: false, out var authenticateBytes, out problem))
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"malformed_authenticate: {problem}", cancellationToken).ConfigureAwait(false);
        }

        if (!NtlmAuthenticateMessage.TryParse(authenticateBytes, out var authenticate, out pduError))
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"malformed_authenticate: {pduError}", cancellationToken).ConfigureAwait(false);
        }

        if (!authenticateRequest.HasPubKeyAuth)
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, "malformed_authenticate: the TSRequest with AUTHENTICATE has no pubKeyAuth", cancellationToken).ConfigureAwait(false);
        }

        if (x.ClientVersion >= 5)
        {
            if (authenticateRequest.ClientNonce.Length != TsRequest.NonceSize || (x.Nonce.Length > 0 && !authenticateRequest.ClientNonce.SequenceEqual(x.Nonce)))
            {
                return await RefuseAsync(x, NtStatus.InvalidToken, "bad_client_nonce: a CredSSP 5+ client must send the same 32-byte clientNonce with its pubKeyAuth", cancellationToken).ConfigureAwait(false);
            }

            x.Nonce = authenticateRequest.ClientNonce.ToArray();
        }

        x.NtlmUser = authenticate.DomainName.Length == 0 ? authenticate.UserName : $"{authenticate.DomainName}\\{authenticate.UserName}";

        // The client has named a user: from here every way this attempt ends leaves its sign-in log entry, and the
        // gateway's checks run to their decision whatever the client does (bounded by their own deadline).
        x.Connection.UnfinishedSignIn = reason => Entry(x, false, reason, null, null);
        var deciding = Decide(x);
        if (!NlaUserName.TryResolve(authenticate.DomainName, authenticate.UserName, out var upn))
        {
            return await RefuseAsync(x, NtStatus.LogonFailure, $"not_a_work_account: '{x.NtlmUser}' is not a work account name ({NlaUserName.EntraJoinedMessage})", cancellationToken, NlaUserName.EntraJoinedMessage).ConfigureAwait(false);
        }

        x.Upn = upn;
        var account = await directory.FindAccountAsync(upn, deciding).ConfigureAwait(false);
        if (account is null)
        {
            return await RefuseAsync(x, NtStatus.LogonFailure, $"unknown_user: no user {upn}", cancellationToken, "Your credentials didn't work.").ConfigureAwait(false);
        }

        x.Account = account;
        if (account.NtHash is not { Length: 16 } ntHash)
        {
            return await RefuseAsync(x, NtStatus.LogonFailure, "no_nt_hash: the user's password was set before NLA support and has not been used since; sign in once with it on the identity provider's pages (web account sign-in), or set it again (gatehouse user reset-password), to sign in with NLA", cancellationToken, "Your credentials didn't work.").ConfigureAwait(false);
        }

        var sessionBaseKey = NtlmV2.VerifyResponse(ntHash, authenticate.UserName, authenticate.DomainName, serverChallenge, authenticate.NtChallengeResponse);
        if (sessionBaseKey is null)
        {
            var counted = await directory.RecordWrongProofAsync(account, x.Connection.RemoteAddress, deciding).ConfigureAwait(false);
            return counted == NlaAccountCheck.LockedOut
                ? await RefuseAsync(x, NtStatus.AccountLockedOut, "locked_out: too many wrong passwords (smart lockout)", cancellationToken, "Your account is locked. Try again later.").ConfigureAwait(false)
                : await RefuseAsync(x, NtStatus.LogonFailure, "bad_password: the NTLMv2 response does not match the user's password", cancellationToken, "Your credentials didn't work.").ConfigureAwait(false);
        }

        var authFlags = authenticate.Flags;
        var exportedKey = NtlmV2.ExportedSessionKey(sessionBaseKey, authenticate.EncryptedRandomSessionKey, authFlags);
        var clientPairs = NtlmV2.ClientTargetInfo(authenticate.NtChallengeResponse);
        if (clientPairs.Length > 0 && AvPairs.TryParse(clientPairs, out var clientInfo, out _) && (clientInfo.Flags & AvPairs.MicPresentFlag) != 0
            && !NtlmV2.VerifyMic(exportedKey, negotiateBytes, challenge, authenticateBytes))
        {
            return await RefuseAsync(x, NtStatus.MessageAltered, "bad_mic: the AUTHENTICATE message's MIC does not cover the exchange", cancellationToken).ConfigureAwait(false);
        }

        // SPNEGO's mechListMIC (when the client sent one) is checked and answered with fresh keys, which both sides then
        // reset before CredSSP seals anything ([MS-SPNG] 3.3.5.1, FreeRDP ntlm_reset_cipher_state).
        byte[]? serverMechListMic = null;
        if (x.Spnego && x.ClientMechListMic is { } clientMic)
        {
            if (!new NtlmSealer(exportedKey, authFlags, clientToServer: true).VerifySignature(x.MechTypesDer, clientMic))
            {
                return await RefuseAsync(x, NtStatus.MessageAltered, "bad_mech_list_mic: the SPNEGO mechListMIC does not match", cancellationToken).ConfigureAwait(false);
            }

            serverMechListMic = new NtlmSealer(exportedKey, authFlags, clientToServer: false).ComputeSignature(x.MechTypesDer);
        }

        var fromClient = new NtlmSealer(exportedKey, authFlags, clientToServer: true);
        var toClient = new NtlmSealer(exportedKey, authFlags, clientToServer: false);
        var subjectPublicKey = certificate.Certificate.PublicKey.EncodedKeyValue.RawData;
        var binding = fromClient.Unseal(authenticateRequest.PubKeyAuth);
        if (binding is null || !PublicKeyBinding.Matches(binding, PublicKeyBinding.ClientValue(x.ClientVersion, x.Nonce, subjectPublicKey)))
        {
            return await RefuseAsync(x, NtStatus.MessageAltered, binding is null ? "bad_pub_key_auth: pubKeyAuth's signature does not verify" : "bad_pub_key_auth: pubKeyAuth is not bound to the gateway's TLS key (a man in the middle, or a client bug)", cancellationToken).ConfigureAwait(false);
        }

        // The password is proven; the account's state is answered now, as Windows does, so the client can say why.
        var state = await directory.CheckStateAsync(account, x.Connection.RemoteAddress, deciding).ConfigureAwait(false);
        if (state != NlaAccountCheck.Ok)
        {
            return await RefuseStateAsync(x, state, cancellationToken).ConfigureAwait(false);
        }

        var serverBinding = toClient.Seal(PublicKeyBinding.ServerValue(x.ClientVersion, x.Nonce, subjectPublicKey));
        var finalToken = x.Spnego ? SpnegoToken.Response(NegState.AcceptCompleted, null, null, serverMechListMic).Encode() : null;
        await SendAsync(x, new TsRequest(TsRequest.CurrentVersion, finalToken is null ? null : [finalToken], pubKeyAuth: serverBinding), cancellationToken).ConfigureAwait(false);

        // 4. TSRequest { authInfo: Seal(TSCredentials) }.
        EndDecision(x);
        var fourth = await ReadAsync(x, cancellationToken).ConfigureAwait(false);
        if (fourth.Request is not { } credentialsRequest)
        {
            return await FailReadAsync(x, fourth, "the credentials (TSCredentials)", cancellationToken).ConfigureAwait(false);
        }

        x.CredentialsReceived = true;
        deciding = Decide(x);

        if (credentialsRequest.Version != x.ClientVersion)
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, $"version_changed: the client sent CredSSP version {x.ClientVersion}, then {credentialsRequest.Version}", cancellationToken).ConfigureAwait(false);
        }

        if (!credentialsRequest.HasAuthInfo)
        {
            return await RefuseAsync(x, NtStatus.InvalidToken, "malformed_credentials: the last TSRequest has no authInfo", cancellationToken).ConfigureAwait(false);
        }

        var plaintext = fromClient.Unseal(credentialsRequest.AuthInfo);
        if (plaintext is null)
        {
            return await RefuseAsync(x, NtStatus.MessageAltered, "bad_auth_info: authInfo's signature does not verify", cancellationToken).ConfigureAwait(false);
        }

        TsCredentials? credentials;
        try
        {
            if (!TsCredentials.TryParse(plaintext, out credentials, out pduError))
            {
                return await RefuseAsync(x, pduError!.Kind == PduErrorKind.Unsupported ? NtStatus.UnsupportedFunction : NtStatus.InvalidToken, $"malformed_credentials: {pduError}", cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }

        if (!NlaUserName.TryResolve(credentials.DomainName, credentials.UserName, out var credentialUpn) || !string.Equals(credentialUpn, upn, StringComparison.OrdinalIgnoreCase))
        {
            return await RefuseAsync(x, NtStatus.LogonFailure, "credentials_mismatch: TSPasswordCreds name another user than the NTLM AUTHENTICATE (restricted admin and remote credential guard are not supported)", cancellationToken).ConfigureAwait(false);
        }

        var check = await directory.CheckPasswordAsync(account, credentials.Password, x.Connection.RemoteAddress, deciding).ConfigureAwait(false);
        if (check != NlaAccountCheck.Ok)
        {
            return await RefuseStateAsync(x, check, cancellationToken).ConfigureAwait(false);
        }

        var decision = await directory.AuthorizeAsync(x.Connection, account, x.HostLabel ?? string.Empty, deciding).ConfigureAwait(false);
        x.Decision = decision;
        if (!decision.Allowed)
        {
            return await RefuseAfterCredentialsAsync(x, unchecked((uint)decision.ResultCode), $"authorization: {decision.Reason}", decision.UserMessage, cancellationToken).ConfigureAwait(false);
        }

        if (decision.Grant is { } grant)
        {
            var open = await opener.OpenAsync(x.Connection, ProtocolName, grant, deciding).ConfigureAwait(false);
            if (!open.Opened)
            {
                x.Fix = open.Fix;
                return await RefuseAfterCredentialsAsync(x, NtStatus.NoLogonServers, open.Reason, Unavailable, cancellationToken).ConfigureAwait(false);
            }

            x.Connection.Session = open.Session;
        }

        // The decision is logged before the client hears it; if the client has left meanwhile, the connection handler
        // closes the session that was opened for it.
        await LogAsync(x, true, decision.Reason, 0).ConfigureAwait(false);
        LogSignedIn(x.Connection.Id, upn, x.HostLabel ?? "?", decision.Reason);
        if (IsHybridEx(x.Connection))
        {
            await SendAuthorizationResultAsync(x, NtStatus.AuthzSuccess, cancellationToken).ConfigureAwait(false);
        }

        return ClientAuthenticationResult.Success;
    }

    /// <summary>The host the client asked for: the first label of the TLS server name (SNI), as in the web-account scope.</summary>
    internal static string? HostLabel(Stream tls)
    {
        if ((tls as SslStream)?.TargetHostName is not { Length: > 0 } name || AssertionValidator.LooksLikeAddress(name))
        {
            return null;
        }

        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? name : name[..dot];
    }

    private static bool IsHybridEx(GatewayConnection connection) =>
        connection.Negotiation?.Result.SelectedProtocol == SecurityProtocol.HybridEx;

    private static byte[] FileTime(DateTimeOffset now)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(value, now.ToFileTime());
        return value;
    }

    /// <summary>Takes the NTLM message out of the first negoToken: raw NTLMSSP, or SPNEGO (NegTokenInit first, NegTokenResp after).</summary>
    private static bool TryUnwrap(TsRequest request, Exchange x, bool initial, out byte[] ntlm, out string? problem)
    {
        ntlm = [];
        problem = null;
        if (request.NegoTokens.Count != 1)
        {
            problem = $"{request.NegoTokens.Count} negoTokens, expected 1";
            return false;
        }

        var token = request.NegoTokens[0];
        if (initial)
        {
            x.Spnego = SpnegoToken.LooksLikeSpnego(token);
        }
        else if (x.Spnego != SpnegoToken.LooksLikeSpnego(token))
        {
            problem = x.Spnego ? "raw NTLM after an SPNEGO start" : "SPNEGO after a raw NTLM start";
            return false;
        }

        if (!x.Spnego)
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

            x.MechTypesDer = spnego.MechTypesDer.ToArray();
        }
        else
        {
            if (spnego.IsInit)
            {
                problem = "SPNEGO NegTokenInit where NegTokenResp was expected";
                return false;
            }

            x.ClientMechListMic = spnego.HasMechListMic ? spnego.MechListMic.ToArray() : null;
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

    /// <summary>
    /// One TSRequest from the client within the CredSSP deadline: the request, or why not. The read is bounded by the
    /// deadline alone, not by the client leaving: a message sent just before the client closed is still read.
    /// </summary>
    private async Task<ClientMessage> ReadAsync(Exchange x, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(options.Value.CredSspTimeout, time);
        byte[]? frame;
        string? problem;
        try
        {
            (frame, problem) = await TsRequestFraming.ReadAsync(x.Tls, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new ClientMessage(null, null, TimedOut: true);
        }

        if (frame is null)
        {
            return new ClientMessage(null, problem, TimedOut: false);
        }

        if (!TsRequest.TryParse(frame, out var request, out var parseError))
        {
            return new ClientMessage(null, parseError!.ToString(), TimedOut: false);
        }

        if (request.ErrorCode is { } code)
        {
            return new ClientMessage(null, $"the client reported error 0x{code:X8}", TimedOut: false);
        }

        return new ClientMessage(request, null, TimedOut: false);
    }

    /// <summary>
    /// No usable message: the deadline passed (refused and logged), the client closed (logged by the connection
    /// handler when the client had named a user), or the message was malformed (refused and logged).
    /// </summary>
    private async Task<ClientAuthenticationResult> FailReadAsync(Exchange x, ClientMessage read, string awaited, CancellationToken cancellationToken)
    {
        if (read.TimedOut)
        {
            var reason = $"credssp_timeout: no CredSSP message within {options.Value.CredSspTimeout.TotalSeconds:0} s (waiting for {awaited})";
            await LogAsync(x, false, reason, null).ConfigureAwait(false);
            return ClientAuthenticationResult.Failure(reason);
        }

        if (read.Problem is null)
        {
            return ClientAuthenticationResult.Failure($"client_disconnected: the client closed the connection during CredSSP (waiting for {awaited})");
        }

        return await RefuseAsync(x, NtStatus.InvalidToken, $"malformed_tsrequest: {read.Problem}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts a decision: the directory and the host leg under their own deadline, not the client's.</summary>
    private CancellationToken Decide(Exchange x)
    {
        x.Deciding?.Dispose();
        x.Deciding = new CancellationTokenSource(options.Value.SignInDecisionTimeout, time);
        return x.Deciding.Token;
    }

    private static void EndDecision(Exchange x)
    {
        x.Deciding?.Dispose();
        x.Deciding = null;
    }

    private Task<ClientAuthenticationResult> RefuseStateAsync(Exchange x, NlaAccountCheck check, CancellationToken cancellationToken) => check switch
    {
        NlaAccountCheck.Disabled => RefuseAsync(x, NtStatus.AccountDisabled, "user_disabled: the account is disabled", cancellationToken, "Your account has been disabled. Contact your administrator."),
        NlaAccountCheck.MustChangePassword => RefuseAsync(x, NtStatus.PasswordMustChange, "password_change_required: the password is temporary; change it on the identity provider's sign-in page first", cancellationToken, "You must change your password before signing in."),
        NlaAccountCheck.LockedOut => RefuseAsync(x, NtStatus.AccountLockedOut, "locked_out: smart lockout holds the account", cancellationToken, "Your account is locked. Try again later."),
        _ => RefuseAsync(x, NtStatus.LogonFailure, "bad_password: the password in TSPasswordCreds is wrong", cancellationToken, "Your credentials didn't work."),
    };

    /// <summary>After the credentials: HYBRID_EX clients wait for the Early User Authorization Result, HYBRID ones for nothing.</summary>
    private async Task<ClientAuthenticationResult> RefuseAfterCredentialsAsync(Exchange x, uint status, string reason, string? userMessage, CancellationToken cancellationToken)
    {
        if (IsHybridEx(x.Connection))
        {
            await LogAsync(x, false, reason, status, userMessage).ConfigureAwait(false);
            await AnswerRefusalAsync(() => SendAuthorizationResultAsync(x, NtStatus.AuthzAccessDenied, cancellationToken), cancellationToken).ConfigureAwait(false);
            return ClientAuthenticationResult.Failure(reason);
        }

        return await RefuseAsync(x, status, reason, cancellationToken, userMessage).ConfigureAwait(false);
    }

    /// <summary>Logs the refusal, then tells the client (which may have left: the entry is written either way).</summary>
    private async Task<ClientAuthenticationResult> RefuseAsync(Exchange x, uint status, string reason, CancellationToken cancellationToken, string? userMessage = null)
    {
        await LogAsync(x, false, reason, status, userMessage).ConfigureAwait(false);
        await AnswerRefusalAsync(() => SendAsync(x, new TsRequest(TsRequest.CurrentVersion, errorCode: status), cancellationToken), cancellationToken).ConfigureAwait(false);
        return ClientAuthenticationResult.Failure(reason);
    }

    private static async Task AnswerRefusalAsync(Func<Task> answer, CancellationToken cancellationToken)
    {
        try
        {
            await answer().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // The client is gone; the refusal is logged already.
        }
    }

    private static async Task SendAsync(Exchange x, TsRequest request, CancellationToken cancellationToken)
    {
        await x.Tls.WriteAsync(request.Encode(), cancellationToken).ConfigureAwait(false);
        await x.Tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task SendAuthorizationResultAsync(Exchange x, uint result, CancellationToken cancellationToken)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, result);
        await x.Tls.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await x.Tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes this connection's one sign-in log entry (not cancelled by the client leaving).</summary>
    private async Task LogAsync(Exchange x, bool succeeded, string reason, uint? code, string? userMessage = null)
    {
        if (await signInLog.WriteOnceAsync(x.Connection, Entry(x, succeeded, reason, code, userMessage), options.Value.SignInDecisionTimeout, time).ConfigureAwait(false) && !succeeded)
        {
            LogRefused(x.Connection.Id, x.Upn ?? x.NtlmUser ?? "?", reason);
        }
    }

    private static GatewaySignInEvent Entry(Exchange x, bool succeeded, string reason, uint? code, string? userMessage) =>
        GatewaySignInEvent.ForPassword(x.Connection, ProtocolName, succeeded, reason, code is { } c ? $"0x{c:X8}" : null, userMessage, x.Fix, x.Account, x.Upn ?? x.NtlmUser, x.HostLabel, x.Decision);

    [LoggerMessage(60, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with NLA to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string upn, string host, string decision);

    [LoggerMessage(61, LogLevel.Information, "RDP connection {ConnectionId}: NLA sign-in of {User} refused: {Reason}")]
    private partial void LogRefused(string connectionId, string user, string reason);

    /// <summary>A TSRequest from the client, or why there is none.</summary>
    private readonly record struct ClientMessage(TsRequest? Request, string? Problem, bool TimedOut);

    /// <summary>One connection's CredSSP state.</summary>
    private sealed class Exchange(GatewayConnection connection, Stream tls)
    {
        public GatewayConnection Connection { get; } = connection;

        public Stream Tls { get; } = tls;

        public int ClientVersion { get; set; }

        public bool Spnego { get; set; }

        public byte[] MechTypesDer { get; set; } = [];

        public byte[]? ClientMechListMic { get; set; }

        public byte[] Nonce { get; set; } = [];

        public string? HostLabel { get; set; }

        public string? NtlmUser { get; set; }

        public string? Upn { get; set; }

        public NlaAccount? Account { get; set; }

        public WebAccountAuthorization? Decision { get; set; }

        public string? Fix { get; set; }

        /// <summary>The deadline of the decision under way (the directory, the authorisation, the host leg), if any.</summary>
        public CancellationTokenSource? Deciding { get; set; }

        /// <summary>True once the TSCredentials arrived (a refusal then uses the Early User Authorization Result).</summary>
        public bool CredentialsReceived { get; set; }
    }
}
