using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Transport;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Tls;

/// <summary>
/// TLS sign-in (PROTOCOL_SSL, the password in the Client Info PDU; off unless <c>Gatehouse:Gateway:SignInMethods</c>
/// names Tls). The Client Info PDU comes after the MCS phase, which the host must answer, so prove opens the host leg as
/// soon as TLS is up (the host is the first label of the TLS server name, or the preconnection PDU's payload; such legs
/// are capped per host), relays the MCS phase one PDU at a time within <see cref="GatewayOptions.ClientInfoTimeout"/>,
/// and holds the Client Info PDU back: the user name (the NLA forms) and the password through the identity provider's
/// checks (under <see cref="GatewayOptions.SignInDecisionTimeout"/>), exactly as NLA; the proof hands the host leg to the
/// session driver. Answer, allowed: the mapped account is injected into the held PDU (prepared before the entry is
/// written) and sent to the host, and the relay takes over. Refused: nothing of the PDU reaches the host, the host leg is
/// closed, and a client that reached the Client Info PDU gets a License Error (valid client) that ends its licensing
/// phase, a Set Error Info PDU (<see cref="SignInFailures.ErrorInfo"/>) and an MCS Disconnect Provider Ultimatum; one
/// still in the MCS phase gets the ultimatum.
/// </summary>
public sealed partial class TlsAuthenticator(
    INlaDirectory directory,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<TlsAuthenticator> logger) : ISignInMethod
{
    /// <summary>The protocol name in the sign-in log and session records.</summary>
    public const string ProtocolName = "tls";

    /// <summary>Largest client PDU accepted before the Client Info PDU (the MCS Connect Initial is the largest, about 1 KiB).</summary>
    public const int MaxConnectionSequencePduBytes = 16 * 1024;

    /// <summary>Most client PDUs before the Client Info PDU (Connect Initial, Erect Domain, Attach User, 2 + 31 channel joins).</summary>
    public const int MaxConnectionSequencePdus = 40;

    /// <summary>What the user is told when the client named no host, or an IP address.</summary>
    public const string UseHostNameMessage = SignInMessages.UseHostName;

    private GatewayOptions Limits => options.Value;

    private TimeProvider Clock => time;

    // Host legs opened for clients that have not proven a password yet, per host id.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, int> _unauthenticatedLegs = new();

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.Tls;

    /// <inheritdoc />
    string ISignInMethod.ProtocolName => ProtocolName;

    /// <inheritdoc />
    public bool QualifiesAccessRefusals => true;

    /// <inheritdoc />
    public HoldUses HoldUses => HoldUses.None;

    /// <inheritdoc />
    public ISignInAttempt Begin(GatewayConnection connection, Stream client)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(client);
        return new Attempt(this, connection, client);
    }

    private async Task<SignInProof> ProveAsync(Attempt x, CancellationToken cancellationToken)
    {
        var limits = options.Value;

        // 1. Which host: the preconnection PDU's payload when the client sent one, else the TLS server name.
        // A handover's reconnect goes to the host the hold screen decided, whatever name the client connects with.
        var handover = x.Connection.Handover is { SecretHash: not null } h ? h : null;
        if (handover is null && !limits.SignInMethods.HasFlag(SignInMethods.Tls))
        {
            // Only the QR sign-in is on, and the hold screen could not take this client (every place is taken).
            return x.Refuse(SignInRefusal.Of(SignInFailure.TooManyUnauthenticated, $"TLS password sign-in is off and the hold screen, which shows the QR sign-in, is full (Gatehouse:Gateway:HoldScreen:MaxConcurrentHolds)") with { Fix = "Try again in a moment; if it persists, raise MaxConcurrentHolds or look for a flood of TLS connections in the sign-in log." });
        }

        x.HostLabel = handover?.HostName ?? HostLabel(x.Connection);
        if (x.HostLabel is null)
        {
            return x.Refuse(new SignInRefusal(SignInFailure.UnknownHost, "unknown_host: the client named no host (connect with the host's name, not an IP address, so TLS carries it)") { Fix = "Connect with the registered host name ('gatehouse host list')." });
        }

        var lookup = await directory.FindHostLegAsync(x.HostLabel, x.Decide()).ConfigureAwait(false);
        x.EndDecision();
        if (lookup.Leg is not { } leg)
        {
            return x.Refuse(new SignInRefusal(lookup.Failure, lookup.Reason) { Fix = lookup.Fix });
        }

        if (handover is not null && leg.HostId != handover.HostId)
        {
            return x.Refuse(SignInRefusal.Of(SignInFailure.HostChanged, $"{leg.HostName}'s registration changed while the client was handed over; connect again"));
        }

        x.Leg = leg;

        // 2. The host leg, before any credentials: the MCS phase comes before the Client Info PDU. Such legs are capped
        // per host (released when this attempt ends, signed in or not).
        if (_unauthenticatedLegs.AddOrUpdate(leg.HostId, 1, (_, n) => n + 1) > limits.MaxUnauthenticatedHostLegsPerHost)
        {
            _unauthenticatedLegs.AddOrUpdate(leg.HostId, 0, (_, n) => Math.Max(0, n - 1));
            return x.Refuse(SignInRefusal.Of(SignInFailure.TooManyUnauthenticated, $"{leg.HostName} already has {limits.MaxUnauthenticatedHostLegsPerHost} TLS sign-ins in progress (Gatehouse:Gateway:MaxUnauthenticatedHostLegsPerHost)") with { Fix = "Try again in a moment; if it persists, someone may be flooding the host with TLS sign-ins (the sign-in log shows their addresses), or prefer NLA." });
        }

        x.CountedHost = leg.HostId;
        var connect = await BackendConnector.ConnectAsync(leg.Backend, limits.BackendConnectTimeout, cancellationToken, time).ConfigureAwait(false);
        if (!connect.Connected)
        {
            return x.Refuse(new SignInRefusal(SignInFailure.HostUnreachable, connect.Reason) { Fix = BackendAdvice.Fix(connect, leg.HostName, leg.Backend) });
        }

        x.Backend = connect.Connection!;

        // 3. The MCS phase, relayed one PDU at a time, until the Client Info PDU, within the phase deadline (alone: a
        // Client Info PDU sent just before the client closed is still read and decided).
        using (var deadline = new CancellationTokenSource(limits.ClientInfoTimeout, time))
        {
            try
            {
                var problem = await RelayUntilClientInfoAsync(x, deadline.Token).ConfigureAwait(false);
                if (problem is not null)
                {
                    return x.Refuse(new SignInRefusal(Classify(problem), problem));
                }
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return x.Refuse(SignInRefusal.Of(SignInFailure.ClientInfoTimeout, $"no Client Info PDU within {limits.ClientInfoTimeout.TotalSeconds:0} s of TLS (Gatehouse:Gateway:ClientInfoTimeout)"));
            }
        }

        if (x.ClientInfo is null)
        {
            // The client left before naming anyone: no decision, no entry.
            return SignInProof.Left(x.Subject, "client_disconnected: the client closed the connection before its Client Info PDU");
        }

        // The client's name and password are in hand: from here the checks run to their decision whatever the client
        // does (under their own deadline), and every way this attempt ends leaves its sign-in log entry.
        var deciding = x.Decide();

        // 4–5. The Client Info PDU: the password through the identity provider's checks, or, on a handover's reconnect,
        // the handover's user and secret.
        var proved = handover is not null
            ? await ProveHandoverAsync(directory, x.ClientInfo, handover, limits, x.Connection.RemoteAddress, deciding).ConfigureAwait(false)
            : await ProvePasswordAsync(directory, x.ClientInfo, limits, x.Connection.RemoteAddress, deciding).ConfigureAwait(false);
        x.ClientUser = proved.ClientUser;
        x.Upn = proved.Upn;
        x.Account = proved.Account;
        x.HandoverMethods = proved.HandoverMethods;
        if (proved.Refusal is { } refused)
        {
            return x.Refuse(refused);
        }

        // The proof hands the host leg over (the driver closes it when the sign-in is refused).
        var backend = x.Backend;
        x.Backend = null;
        return SignInProof.Of(x.Subject) with { HostLeg = new EarlyHostLeg(leg.HostId, backend, leg.Backend) };
    }

    /// <summary>What the Client Info PDU proved: the account, or the refusal (with what was named either way).</summary>
    /// <param name="Refusal">Why not, or null.</param>
    /// <param name="ClientUser">The name as typed (<c>DOMAIN\user</c> or a UPN).</param>
    /// <param name="Upn">The resolved work account name.</param>
    /// <param name="Account">The account, once found.</param>
    /// <param name="HandoverMethods">On a handover's reconnect: the methods proven on the hold screen.</param>
    public sealed record ClientInfoProof(SignInRefusal? Refusal, string? ClientUser, string? Upn, NlaAccount? Account, IReadOnlyList<string>? HandoverMethods = null);

    /// <summary>
    /// Steps 4 and 5 of a TLS sign-in, shared with the hold screen's front: the Client Info PDU bounded and well formed,
    /// a work account name, and its password through the identity provider's checks (lockout, disabled, temporary); an
    /// unknown user costs the same hashing work. The PDU's password bytes are wiped once read.
    /// </summary>
    public static async Task<ClientInfoProof> ProvePasswordAsync(INlaDirectory directory, byte[] clientInfo, GatewayOptions limits, System.Net.IPAddress client, CancellationToken deciding)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(clientInfo);
        ArgumentNullException.ThrowIfNull(limits);
        var (refusal, clientUser, upn, password) = ReadClientInfo(clientInfo, limits);
        if (refusal is not null)
        {
            return new ClientInfoProof(refusal, clientUser, upn, null);
        }

        if (password!.Length == 0)
        {
            return new ClientInfoProof(SignInRefusal.Of(SignInFailure.NoPassword, "the Client Info PDU carries no password; TLS sign-in needs one (FreeRDP /p:, or save the password in the client), or use NLA"), clientUser, upn, null);
        }

        var account = await directory.FindAccountAsync(upn!, deciding).ConfigureAwait(false);
        if (account is null)
        {
            // The same password-hashing work as for a real user, so the answer's timing does not tell which names exist.
            await directory.CheckUnknownUserPasswordAsync(password, deciding).ConfigureAwait(false);
            return new ClientInfoProof(SignInRefusal.Of(SignInFailure.UnknownUser, $"no user {upn}"), clientUser, upn, null);
        }

        var check = await directory.CheckPasswordAsync(account, password, client, deciding).ConfigureAwait(false);
        return new ClientInfoProof(check == NlaAccountCheck.Ok ? null : Describe(check), clientUser, upn, account);
    }

    /// <summary>
    /// A handover's reconnect (the hold screen's TLS sign-in sent the user name and a one-time secret in its Server
    /// Redirection PDU): the Client Info PDU must name the held user and carry the secret (compared in constant time);
    /// the account must still be usable. Nothing else is asked: the user proved who they are on the hold screen.
    /// </summary>
    public static async Task<ClientInfoProof> ProveHandoverAsync(INlaDirectory directory, byte[] clientInfo, HandoverGrant handover, GatewayOptions limits, System.Net.IPAddress client, CancellationToken deciding)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(clientInfo);
        ArgumentNullException.ThrowIfNull(handover);
        var (refusal, clientUser, upn, password) = ReadClientInfo(clientInfo, limits);
        if (refusal is not null)
        {
            return new ClientInfoProof(refusal, clientUser, upn, null);
        }

        // FreeRDP sends the redirection password with its terminator: trailing NULs are not part of the secret.
        var secretRight = handover.IsSecret(password!.AsSpan().TrimEnd('\0'));
        var userRight = string.Equals(upn, handover.UserPrincipalName, StringComparison.OrdinalIgnoreCase);
        if (!secretRight || !userRight)
        {
            return new ClientInfoProof(
                SignInRefusal.Of(SignInFailure.HandoverProofFailed, !userRight
                    ? $"the reconnect names '{clientUser}', not {handover.UserPrincipalName}, whose handover its routing token carries"
                    : "the reconnect's Client Info PDU does not carry the handover's secret (a routing token seen on the wire, replayed by another client?)") with
                { Fix = "Nothing to fix if this was not the user: the routing token was used without its secret and is spent. If it was the user, connect again." },
                clientUser,
                upn,
                null);
        }

        var account = await directory.FindAccountAsync(upn!, deciding).ConfigureAwait(false);
        if (account is null || account.UserId != handover.UserId)
        {
            return new ClientInfoProof(SignInRefusal.Of(SignInFailure.UnknownUser, $"{upn} no longer exists as the user who was handed over"), clientUser, upn, null);
        }

        var state = await directory.CheckStateAsync(account, client, deciding).ConfigureAwait(false);
        return new ClientInfoProof(state == NlaAccountCheck.Ok ? null : Describe(state), clientUser, upn, account, handover.Methods);
    }

    /// <summary>The name and the password of a Client Info PDU (the PDU's password bytes wiped), or why not.</summary>
    private static (SignInRefusal? Refusal, string? ClientUser, string? Upn, string? Password) ReadClientInfo(byte[] clientInfo, GatewayOptions limits)
    {
        if (clientInfo.Length > limits.MaxClientInfoBytes)
        {
            return (SignInRefusal.Of(SignInFailure.ClientInfoTooLarge, $"{clientInfo.Length} bytes, the limit is {limits.MaxClientInfoBytes} (Gatehouse:Gateway:MaxClientInfoBytes)"), null, null, null);
        }

        if (!ClientInfoPdu.TryParse(clientInfo, out var pdu, out var pduError))
        {
            return (SignInRefusal.Of(SignInFailure.MalformedClientInfo, $"{pduError}"), null, null, null);
        }

        try
        {
            var domain = pdu.Packet.Domain;
            var user = pdu.Packet.UserName;
            var clientUser = domain.Length == 0 ? user : $"{domain}\\{user}";
            if (!NlaUserName.TryResolve(domain, user, out var upn))
            {
                return (SignInRefusal.Of(SignInFailure.NotAWorkAccount, $"'{clientUser}' is not a work account name ({SignInMessages.NotAWorkAccount})"), clientUser, null, null);
            }

            return (null, clientUser, upn, pdu.Packet.Password);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(pdu.Packet.PasswordBytes).Span);
        }
    }

    /// <summary>The class of a problem of the relayed MCS phase (its text starts with the code).</summary>
    private static SignInFailure Classify(string problem) =>
        problem.StartsWith("client_info_too_large", StringComparison.Ordinal) ? SignInFailure.ClientInfoTooLarge
        : problem.StartsWith("host_", StringComparison.Ordinal) ? SignInFailure.HostFailed
        : SignInFailure.MalformedConnectionSequence;

    /// <summary>
    /// Relays client PDUs to the host and the host's answers back, one at a time (each request the host answers has
    /// exactly one answer in this phase), until the client's Client Info PDU, which is kept in <see cref="Attempt.ClientInfo"/>
    /// and not forwarded. Each PDU goes through the <see cref="ConnectionSequenceInterceptor"/> (with the sign-in's rules),
    /// the same one the session relay uses. Reads are exact, so nothing either side sends after is lost to the relay
    /// that follows. Returns the problem for the log, or null (then a null ClientInfo means the client left).
    /// </summary>
    private async Task<string?> RelayUntilClientInfoAsync(Attempt x, CancellationToken cancellationToken)
    {
        var backend = x.Backend!;
        var cap = Math.Max(MaxConnectionSequencePduBytes, options.Value.MaxClientInfoBytes);

        // Over the streams themselves, reading exactly each frame: the session relay reads on from the same streams.
        var fromClient = new RdpFrameReader(x.Tls, cap, acceptFastPath: false);
        var fromHost = new RdpFrameReader(backend.Stream, BackendConnector.MaxHostFrameBytes, acceptFastPath: false);
        var sequence = new ConnectionSequenceInterceptor(new ConnectionSequenceOptions
        {
            ClientRequestedProtocols = x.Connection.ConnectionRequest?.RequestedProtocols ?? SecurityProtocol.Ssl,
            HostSelectedProtocol = backend.Selected,
            SignInRules = true,
            MaxClientPdus = MaxConnectionSequencePdus,
        });
        while (!sequence.ClientPduLimitReached)
        {
            var (frame, problem) = await ReadClientFrameAsync(fromClient, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return problem;
            }

            var verdict = sequence.Intercept(ConnectionSequenceDirection.ClientToHost, frame, RdpFrameKind.SlowPath);
            x.ErrorInfoAnnounced = sequence.ErrorInfoAnnounced;
            switch (verdict.Action)
            {
                case ConnectionSequenceAction.Hold:
                    x.ClientInfo = verdict.Bytes;
                    return null;
                case ConnectionSequenceAction.Refuse:
                    return ConnectionSequenceReasons.ForSignIn(verdict, MaxConnectionSequencePdus);
            }

            await SendAsync(backend.Stream, verdict.Bytes, cancellationToken).ConfigureAwait(false);
            if (!verdict.AwaitsAnswer)
            {
                continue;
            }

            var first = sequence.ClientPdus == 1;
            RdpFrame? answer;
            try
            {
                answer = await fromHost.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RdpFrameException e)
            {
                return $"host_protocol: the host's answer cannot be framed: {e.Message}";
            }

            if (answer is not { } reply)
            {
                return first ? "host_closed: the host closed or sent no whole MCS Connect Response" : "host_closed: the host closed during the MCS phase";
            }

            var passed = sequence.Intercept(ConnectionSequenceDirection.HostToClient, reply.Bytes, reply.Kind);
            if (passed.Action == ConnectionSequenceAction.Refuse)
            {
                return ConnectionSequenceReasons.ForSignIn(passed, MaxConnectionSequencePdus);
            }

            await SendAsync(x.Tls, passed.Bytes, cancellationToken).ConfigureAwait(false);
            x.McsConnected = sequence.McsConnected;
        }

        return ConnectionSequenceReasons.TooManyPdus(MaxConnectionSequencePdus);
    }

    /// <summary>One TPKT frame from the client, at most the reader's cap; (null, null) when the client closed.</summary>
    private static async Task<(byte[]? Frame, string? Problem)> ReadClientFrameAsync(RdpFrameReader client, CancellationToken cancellationToken)
    {
        try
        {
            var frame = await client.ReadAsync(cancellationToken).ConfigureAwait(false);
            return (frame?.Bytes, null);
        }
        catch (RdpFrameException e) when (e.IsTooLarge)
        {
            return (null, $"client_info_too_large: a {e.DeclaredLength}-byte PDU before the session started, the limit is {client.MaxFrameBytes}");
        }
        catch (RdpFrameException e)
        {
            return (null, $"malformed_connection_sequence: {e.Error} (a fast-path PDU before the Client Info PDU, or not RDP)");
        }
    }

    private static async Task SendAsync(Stream stream, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The host the client asked for: the preconnection PDU's payload when there is one, else the TLS server name's first label.</summary>
    internal static string? HostLabel(GatewayConnection connection)
    {
        if (connection.Preconnection?.Payload is { Length: > 0 } payload)
        {
            var dot = payload.IndexOf('.', StringComparison.Ordinal);
            var label = dot < 0 ? payload : payload[..dot];
            return label.Length == 0 || AssertionValidator.LooksLikeAddress(payload) || AssertionValidator.LooksLikeAddress(label) ? null : label;
        }

        return NlaAuthenticator.HostLabel(connection);
    }

    private static SignInRefusal Describe(NlaAccountCheck check) => check switch
    {
        NlaAccountCheck.Disabled => SignInRefusal.Of(SignInFailure.UserDisabled, "the account is disabled"),
        NlaAccountCheck.MustChangePassword => SignInRefusal.Of(SignInFailure.PasswordChangeRequired, "the password is temporary; change it on the identity provider's sign-in page first"),
        NlaAccountCheck.LockedOut => SignInRefusal.Of(SignInFailure.LockedOut, "smart lockout holds the account"),
        _ => SignInRefusal.Of(SignInFailure.BadPassword, "the password in the Client Info PDU is wrong"),
    };

    /// <summary>
    /// Tells a refused client: one that reached the Client Info PDU gets the License Error (valid client), the Set Error
    /// Info PDU and the Disconnect Provider Ultimatum; one still in the MCS phase gets the ultimatum; one before it, nothing.
    /// </summary>
    private async Task AnswerRefusalAsync(Attempt x, SignInRefusal refusal, CancellationToken cancellationToken)
    {
        if (!x.McsConnected)
        {
            return;
        }

        var frames = new ArrayBufferWriter<byte>(128);
        if (x.ClientInfo is not null)
        {
            // [MS-RDPBCGR] 3.3.5.7.1 sends the Set Error Info PDU only to clients that announce
            // RNS_UD_CS_SUPPORT_ERRINFO_PDU. FreeRDP 3 does not announce it (SupportErrorInfoPdu is off by default) yet
            // reads it in every phase after licensing and then shows the reason; a client that ignores it still gets
            // the ultimatum right after. So every client gets it: the reason reaches the real client.
            ServerRefusal.Write(frames, SignInFailures.ErrorInfo(refusal.Failure), clientSupportsErrorInfo: true);
            if (!x.ErrorInfoAnnounced)
            {
                LogErrorInfoUnannounced(x.Connection.Id);
            }
        }
        else
        {
            ServerRefusal.WriteDisconnectProviderUltimatum(frames);
        }

        await SendAsync(x.Tls, frames.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventIds.TlsErrorInfoUnannounced, LogLevel.Debug, "RDP connection {ConnectionId}: the client did not announce RNS_UD_CS_SUPPORT_ERRINFO_PDU; it gets the Set Error Info PDU anyway (FreeRDP reads it).")]
    private partial void LogErrorInfoUnannounced(string connectionId);

    /// <summary>One connection's TLS sign-in state.</summary>
    private sealed class Attempt(TlsAuthenticator method, GatewayConnection connection, Stream tls) : ISignInAttempt
    {
        private ArrayBufferWriter<byte>? _rewritten;

        public GatewayConnection Connection { get; } = connection;

        public Stream Tls { get; } = tls;

        public string? HostLabel { get; set; }

        public PasswordHostLeg? Leg { get; set; }

        /// <summary>The host whose unauthenticated-leg count this attempt holds (released when it ends).</summary>
        public Guid? CountedHost { get; set; }

        /// <summary>The host leg while the attempt holds it (handed to the driver with the proof).</summary>
        public BackendConnection? Backend { get; set; }

        public bool McsConnected { get; set; }

        public bool ErrorInfoAnnounced { get; set; }

        public byte[]? ClientInfo { get; set; }

        public string? ClientUser { get; set; }

        public string? Upn { get; set; }

        public NlaAccount? Account { get; set; }

        /// <summary>On a handover's reconnect: the methods the user proved on the hold screen.</summary>
        public IReadOnlyList<string>? HandoverMethods { get; set; }

        /// <summary>The deadline of the decision under way (the directory), if any.</summary>
        public CancellationTokenSource? Deciding { get; set; }

        public SignInSubject Subject => new()
        {
            TenantId = Account?.TenantId,
            UserId = Account?.UserId,
            UserPrincipalName = Account?.UserPrincipalName ?? Upn ?? ClientUser,
            HostName = Leg?.HostName ?? HostLabel,
            HostLabel = HostLabel,
            Methods = Account is null ? [] : HandoverMethods ?? ["pwd"],
            AuthenticatedAt = method.Clock.GetUtcNow(),
        };

        public async Task<SignInProof> ProveAsync(CancellationToken clientClosed)
        {
            SignInProof proof;
            try
            {
                proof = await method.ProveAsync(this, clientClosed).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (Deciding is { IsCancellationRequested: true })
            {
                // The directory did not answer in time: refused (fail closed).
                proof = Refuse(SignInRefusal.Of(SignInFailure.DecisionTimeout, $"the sign-in decision took longer than {method.Limits.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)"));
            }
            finally
            {
                EndDecision();
            }

            if (!proof.Proven && Backend is { } backend)
            {
                // Refused (or the client left): the host leg closes first, so nothing more reaches the host.
                Backend = null;
                await backend.DisposeAsync().ConfigureAwait(false);
            }

            return proof;
        }

        /// <summary>A refusal of the method (the host leg is closed before it is answered).</summary>
        public SignInProof Refuse(SignInRefusal refusal) => SignInProof.Refused(Subject, refusal);

        public SignInRefusal? PrepareAnswer(SessionGrant grant)
        {
            ArgumentNullException.ThrowIfNull(grant);
            var credentials = grant.Credentials;
            _rewritten = new ArrayBufferWriter<byte>(ClientInfo!.Length + 1024);
            return ClientInfoRewriter.TryRewrite(ClientInfo, new ClientInfoCredentials(credentials.Domain, credentials.UserName, credentials.Password), _rewritten, out var error)
                ? null
                : SignInRefusal.Of(SignInFailure.MalformedClientInfo, $"cannot be rewritten: {error}");
        }

        public string? AnswerCode(SignInOutcome outcome) =>
            outcome.Refusal is { } refusal && McsConnected && ClientInfo is not null ? $"0x{(uint)SignInFailures.ErrorInfo(refusal.Failure):X8}" : null;

        public async Task AnswerAsync(SignInOutcome outcome, CancellationToken clientClosed)
        {
            if (outcome.Refusal is { } refusal)
            {
                await method.AnswerRefusalAsync(this, refusal, clientClosed).ConfigureAwait(false);
                return;
            }

            // The host gets the Client Info PDU with the mapped account; the host answers the client.
            if (outcome.Session is { Backend: { } backend } session && _rewritten is { } rewritten)
            {
                await backend.Stream.WriteAsync(rewritten.WrittenMemory, clientClosed).ConfigureAwait(false);
                await backend.Stream.FlushAsync(clientClosed).ConfigureAwait(false);
                session.Counters.Add(0, rewritten.WrittenCount);
            }
        }

        public CancellationToken Decide()
        {
            Deciding?.Dispose();
            Deciding = new CancellationTokenSource(method.Limits.SignInDecisionTimeout, method.Clock);
            return Deciding.Token;
        }

        public void EndDecision()
        {
            Deciding?.Dispose();
            Deciding = null;
        }

        public async ValueTask DisposeAsync()
        {
            EndDecision();
            if (ClientInfo is { } clientInfo)
            {
                // It holds the user's password.
                CryptographicOperations.ZeroMemory(clientInfo);
            }

            if (_rewritten is { } rewritten)
            {
                // It holds the injected password.
                CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(rewritten.WrittenMemory).Span);
            }

            if (Backend is { } backend)
            {
                Backend = null;
                await backend.DisposeAsync().ConfigureAwait(false);
            }

            if (CountedHost is { } counted)
            {
                method._unauthenticatedLegs.AddOrUpdate(counted, 0, (_, n) => Math.Max(0, n - 1));
            }
        }
    }
}
