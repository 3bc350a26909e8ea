using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
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
/// names Tls). The Client Info PDU comes after the MCS phase, which the host must answer, so the gateway opens the host
/// leg as soon as TLS is up (the host is the first label of the TLS server name, or the preconnection PDU's payload),
/// relays the MCS phase one PDU at a time within <see cref="GatewayOptions.ClientInfoTimeout"/>, and holds the Client
/// Info PDU back: the user name (the NLA forms), the password through the identity provider's checks and the one access
/// call (amr <c>pwd</c>), exactly as NLA. Allowed: the mapped account is injected into that PDU and the session relay
/// takes over. Refused: nothing reaches the host, the host leg is closed, and the client gets a License Error (valid
/// client) that ends its licensing phase, a Set Error Info PDU with the reason, and an MCS Disconnect Provider
/// Ultimatum; the sign-in log says precisely why. Once the Client Info PDU is in, the checks run to their decision
/// whatever the client does (under <see cref="GatewayOptions.SignInDecisionTimeout"/>), and the entry is written before
/// the client or the host hears the answer.
/// </summary>
public sealed partial class TlsAuthenticator(
    INlaDirectory directory,
    SessionOpener opener,
    IGatewaySignInLog signInLog,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<TlsAuthenticator> logger) : IClientAuthenticator
{
    /// <summary>The protocol name in the sign-in log and session records.</summary>
    public const string ProtocolName = "tls";

    /// <summary>Largest client PDU accepted before the Client Info PDU (the MCS Connect Initial is the largest, about 1 KiB).</summary>
    public const int MaxConnectionSequencePduBytes = 16 * 1024;

    /// <summary>Most client PDUs before the Client Info PDU (Connect Initial, Erect Domain, Attach User, 2 + 31 channel joins).</summary>
    public const int MaxConnectionSequencePdus = 40;

    /// <summary>What the user is told when the client named no host, or an IP address.</summary>
    public const string UseHostNameMessage = SignInMessages.UseHostName;

    private const string CredentialsMessage = SignInMessages.CredentialsDidNotWork;

    // Host legs opened for clients that have not proven a password yet, per host id.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, int> _unauthenticatedLegs = new();
    private const string UnreachableMessage = SignInMessages.HostUnreachable;

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.Tls;

    /// <inheritdoc />
    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tls);
        var x = new Attempt(connection, tls);
        try
        {
            return await RunAsync(x, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (x.Deciding is { IsCancellationRequested: true })
        {
            // The directory, the authorisation or the session record did not answer in time: refused (fail closed) and logged.
            return await RefuseAsync(x, $"decision_timeout: the sign-in decision took longer than {options.Value.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)", ErrorInfoCode.ServerDeniedConnection, cancellationToken, UnreachableMessage).ConfigureAwait(false);
        }
        finally
        {
            x.Deciding?.Dispose();
            if (x.ClientInfo is { } clientInfo)
            {
                // It holds the user's password.
                CryptographicOperations.ZeroMemory(clientInfo);
            }

            if (x.Backend is { } backend)
            {
                x.Backend = null;
                await backend.DisposeAsync().ConfigureAwait(false);
            }

            if (x.CountedHost is { } counted)
            {
                _unauthenticatedLegs.AddOrUpdate(counted, 0, (_, n) => Math.Max(0, n - 1));
            }
        }
    }

    private async Task<ClientAuthenticationResult> RunAsync(Attempt x, CancellationToken cancellationToken)
    {
        var limits = options.Value;

        // 1. Which host: the preconnection PDU's payload when the client sent one, else the TLS server name.
        x.HostLabel = HostLabel(x.Connection, x.Tls);
        if (x.HostLabel is null)
        {
            return await RefuseAsync(x, "unknown_host: the client named no host (connect with the host's name, not an IP address, so TLS carries it)", ErrorInfoCode.ServerDeniedConnection, cancellationToken, UseHostNameMessage, "Connect with the registered host name ('gatehouse host list').").ConfigureAwait(false);
        }

        var lookup = await directory.FindHostLegAsync(x.HostLabel, Decide(x)).ConfigureAwait(false);
        EndDecision(x);
        if (lookup.Leg is not { } leg)
        {
            return await RefuseAsync(x, lookup.Reason, ErrorInfoCode.ServerDeniedConnection, cancellationToken, UseHostNameMessage, lookup.Fix).ConfigureAwait(false);
        }

        x.Leg = leg;

        // 2. The host leg, before any credentials: the MCS phase comes before the Client Info PDU. Such legs are capped
        // per host (released when this attempt ends, signed in or not).
        if (_unauthenticatedLegs.AddOrUpdate(leg.HostId, 1, (_, n) => n + 1) > limits.MaxUnauthenticatedHostLegsPerHost)
        {
            _unauthenticatedLegs.AddOrUpdate(leg.HostId, 0, (_, n) => Math.Max(0, n - 1));
            return await RefuseAsync(x, $"too_many_unauthenticated: {leg.HostName} already has {limits.MaxUnauthenticatedHostLegsPerHost} TLS sign-ins in progress (Gatehouse:Gateway:MaxUnauthenticatedHostLegsPerHost)", ErrorInfoCode.ServerDeniedConnection, cancellationToken, UnreachableMessage, "Try again in a moment; if it persists, someone may be flooding the host with TLS sign-ins (the sign-in log shows their addresses), or prefer NLA.").ConfigureAwait(false);
        }

        x.CountedHost = leg.HostId;
        var connect = await BackendConnector.ConnectAsync(leg.Backend, limits.BackendConnectTimeout, cancellationToken, time).ConfigureAwait(false);
        if (!connect.Connected)
        {
            return await RefuseAsync(x, connect.Reason, ErrorInfoCode.ServerDeniedConnection, cancellationToken, UnreachableMessage, BackendAdvice.Fix(connect, leg.HostName, leg.Backend)).ConfigureAwait(false);
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
                    return await RefuseAsync(x, problem, ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return await RefuseAsync(x, $"client_info_timeout: no Client Info PDU within {limits.ClientInfoTimeout.TotalSeconds:0} s of TLS (Gatehouse:Gateway:ClientInfoTimeout)", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
            }
        }

        if (x.ClientInfo is null)
        {
            // The client left before naming anyone: no decision, no entry.
            return ClientAuthenticationResult.Failure("client_disconnected: the client closed the connection before its Client Info PDU");
        }

        // The client's name and password are in hand: from here the checks run to their decision whatever the client
        // does (under their own deadline), and every way this attempt ends leaves its sign-in log entry.
        x.Connection.UnfinishedSignIn = reason => Entry(x, false, reason, null, null);
        var deciding = Decide(x);

        // 4. The Client Info PDU: bounded, well formed, a work account name and a password.
        if (x.ClientInfo.Length > limits.MaxClientInfoBytes)
        {
            return await RefuseAsync(x, $"client_info_too_large: {x.ClientInfo.Length} bytes, the limit is {limits.MaxClientInfoBytes} (Gatehouse:Gateway:MaxClientInfoBytes)", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
        }

        if (!ClientInfoPdu.TryParse(x.ClientInfo, out var pdu, out var pduError))
        {
            return await RefuseAsync(x, $"malformed_client_info: {pduError}", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
        }

        string password;
        string upn;
        try
        {
            var domain = pdu.Packet.Domain;
            var user = pdu.Packet.UserName;
            x.ClientUser = domain.Length == 0 ? user : $"{domain}\\{user}";
            password = pdu.Packet.Password;
            if (!NlaUserName.TryResolve(domain, user, out upn))
            {
                return await RefuseAsync(x, $"not_a_work_account: '{x.ClientUser}' is not a work account name ({SignInMessages.NotAWorkAccount})", ErrorInfoCode.ServerDeniedConnection, cancellationToken, SignInMessages.NotAWorkAccount).ConfigureAwait(false);
            }

            x.Upn = upn;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(pdu.Packet.PasswordBytes).Span);
        }

        if (password.Length == 0)
        {
            return await RefuseAsync(x, "no_password: the Client Info PDU carries no password; TLS sign-in needs one (FreeRDP /p:, or save the password in the client), or use NLA", ErrorInfoCode.ServerDeniedConnection, cancellationToken, CredentialsMessage).ConfigureAwait(false);
        }

        // 5. The same checks as NLA: the user, the password (lockout, disabled, temporary), then roles and Conditional Access.
        var account = await directory.FindAccountAsync(upn, deciding).ConfigureAwait(false);
        if (account is null)
        {
            // The same password-hashing work as for a real user, so the answer's timing does not tell which names exist.
            await directory.CheckUnknownUserPasswordAsync(password, deciding).ConfigureAwait(false);
            return await RefuseAsync(x, $"unknown_user: no user {upn}", ErrorInfoCode.ServerDeniedConnection, cancellationToken, CredentialsMessage).ConfigureAwait(false);
        }

        x.Account = account;
        var check = await directory.CheckPasswordAsync(account, password, x.Connection.RemoteAddress, deciding).ConfigureAwait(false);
        if (check != NlaAccountCheck.Ok)
        {
            var (reason, message) = Describe(check);
            return await RefuseAsync(x, reason, ErrorInfoCode.ServerDeniedConnection, cancellationToken, message).ConfigureAwait(false);
        }

        var decision = await directory.AuthorizeAsync(x.Connection, account, x.HostLabel, deciding).ConfigureAwait(false);
        x.Decision = decision;
        if (!decision.Allowed)
        {
            return await RefuseAsync(x, $"authorization: {decision.Reason}", ErrorInfoCode.ServerInsufficientPrivileges, cancellationToken, decision.UserMessage).ConfigureAwait(false);
        }

        if (decision.Grant is not { } grant)
        {
            return await RefuseAsync(x, "no_grant: the authorisation allowed the sign-in but named no account to log on with", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
        }

        if (grant.HostId != leg.HostId || !string.Equals(grant.Backend.Host, leg.Backend.Host, StringComparison.OrdinalIgnoreCase) || grant.Backend.Port != leg.Backend.Port)
        {
            return await RefuseAsync(x, $"host_changed: {leg.HostName}'s registration changed while the client signed in; connect again", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
        }

        // 6. The mapped account into the held Client Info PDU, the session record, then the PDU to the host.
        var rewritten = new ArrayBufferWriter<byte>(x.ClientInfo.Length + 1024);
        try
        {
            var credentials = grant.Credentials;
            if (!ClientInfoRewriter.TryRewrite(x.ClientInfo, new ClientInfoCredentials(credentials.Domain, credentials.UserName, credentials.Password), rewritten, out pduError))
            {
                return await RefuseAsync(x, $"malformed_client_info: cannot be rewritten: {pduError}", ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
            }

            var backend = x.Backend;
            x.Backend = null; // The session owns it from here (AttachAsync closes it when the record fails).
            var open = await opener.AttachAsync(x.Connection, ProtocolName, grant, backend, deciding).ConfigureAwait(false);
            if (open.Session is not { } session)
            {
                return await RefuseAsync(x, open.Reason, ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
            }

            session.ClientInfoRelayed = true;
            x.Connection.Session = session;

            // Logged before the host gets the Client Info PDU (the host answers the client); if the client or the host
            // has gone meanwhile, the connection handler closes the session.
            await LogAsync(x, true, decision.Reason, null).ConfigureAwait(false);
            LogSignedIn(x.Connection.Id, upn, leg.HostName, decision.Reason);
            await backend.Stream.WriteAsync(rewritten.WrittenMemory, cancellationToken).ConfigureAwait(false);
            await backend.Stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            session.Counters.Add(0, rewritten.WrittenCount);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsMemory(rewritten.WrittenMemory).Span);
        }

        return ClientAuthenticationResult.Success;
    }

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
    internal static string? HostLabel(GatewayConnection connection, Stream tls)
    {
        if (connection.Preconnection?.Payload is { Length: > 0 } payload)
        {
            var dot = payload.IndexOf('.', StringComparison.Ordinal);
            var label = dot < 0 ? payload : payload[..dot];
            return label.Length == 0 || AssertionValidator.LooksLikeAddress(payload) || AssertionValidator.LooksLikeAddress(label) ? null : label;
        }

        return NlaAuthenticator.HostLabel(tls);
    }

    private static (string Reason, string Message) Describe(NlaAccountCheck check) => check switch
    {
        NlaAccountCheck.Disabled => ("user_disabled: the account is disabled", SignInMessages.AccountDisabled),
        NlaAccountCheck.MustChangePassword => ("password_change_required: the password is temporary; change it on the identity provider's sign-in page first", SignInMessages.MustChangePassword),
        NlaAccountCheck.LockedOut => ("locked_out: smart lockout holds the account", SignInMessages.AccountLocked),
        _ => ("bad_password: the password in the Client Info PDU is wrong", CredentialsMessage),
    };

    /// <summary>
    /// Refuses: the host leg is closed with nothing of the Client Info PDU sent to it; a client that reached the Client
    /// Info PDU gets the License Error (valid client), the Set Error Info PDU (when it supports it) and the Disconnect
    /// Provider Ultimatum; one still in the MCS phase gets the ultimatum. The refusal is logged first (the client may have
    /// left: the entry is written either way).
    /// </summary>
    private async Task<ClientAuthenticationResult> RefuseAsync(Attempt x, string reason, ErrorInfoCode errorInfo, CancellationToken cancellationToken, string? userMessage = null, string? fix = null)
    {
        if (x.Backend is { } backend)
        {
            x.Backend = null;
            await backend.DisposeAsync().ConfigureAwait(false);
        }

        x.Fix = fix;
        var code = x.McsConnected && x.ClientInfo is not null ? $"0x{(uint)errorInfo:X8}" : null;
        await LogAsync(x, false, reason, code, userMessage).ConfigureAwait(false);
        if (x.McsConnected)
        {
            var frames = new ArrayBufferWriter<byte>(128);
            if (x.ClientInfo is not null)
            {
                // [MS-RDPBCGR] 3.3.5.7.1 sends the Set Error Info PDU only to clients that announce
                // RNS_UD_CS_SUPPORT_ERRINFO_PDU. FreeRDP 3 does not announce it (SupportErrorInfoPdu is off by default) yet
                // reads it in every phase after licensing and then shows the reason; a client that ignores it still gets
                // the ultimatum right after. So every client gets it: the reason reaches the real client.
                ServerRefusal.Write(frames, errorInfo, clientSupportsErrorInfo: true);
                if (!x.ErrorInfoAnnounced)
                {
                    LogErrorInfoUnannounced(x.Connection.Id);
                }
            }
            else
            {
                ServerRefusal.WriteDisconnectProviderUltimatum(frames);
            }

            try
            {
                await SendAsync(x.Tls, frames.WrittenMemory, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // The client is gone; the refusal is logged already.
            }
        }

        return ClientAuthenticationResult.Failure(reason);
    }

    /// <summary>Starts a decision: the directory and the session record under their own deadline, not the client's.</summary>
    private CancellationToken Decide(Attempt x)
    {
        x.Deciding?.Dispose();
        x.Deciding = new CancellationTokenSource(options.Value.SignInDecisionTimeout, time);
        return x.Deciding.Token;
    }

    private static void EndDecision(Attempt x)
    {
        x.Deciding?.Dispose();
        x.Deciding = null;
    }

    /// <summary>Writes this connection's one sign-in log entry (not cancelled by the client leaving).</summary>
    private async Task LogAsync(Attempt x, bool succeeded, string reason, string? code, string? userMessage = null)
    {
        if (await signInLog.WriteOnceAsync(x.Connection, Entry(x, succeeded, reason, code, userMessage), options.Value.SignInDecisionTimeout, time).ConfigureAwait(false) && !succeeded)
        {
            LogRefused(x.Connection.Id, x.Upn ?? x.ClientUser ?? "?", reason);
        }
    }

    private static GatewaySignInEvent Entry(Attempt x, bool succeeded, string reason, string? code, string? userMessage) =>
        GatewaySignInEvent.ForPassword(x.Connection, ProtocolName, succeeded, reason, code, userMessage, x.Fix, x.Account, x.Upn ?? x.ClientUser, x.Leg?.HostName ?? x.HostLabel, x.Decision);

    [LoggerMessage(EventIds.TlsSignedIn, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with TLS (password in the Client Info PDU) to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string upn, string host, string decision);

    [LoggerMessage(EventIds.TlsRefused, LogLevel.Information, "RDP connection {ConnectionId}: TLS sign-in of {User} refused: {Reason}")]
    private partial void LogRefused(string connectionId, string user, string reason);

    [LoggerMessage(EventIds.TlsErrorInfoUnannounced, LogLevel.Debug, "RDP connection {ConnectionId}: the client did not announce RNS_UD_CS_SUPPORT_ERRINFO_PDU; it gets the Set Error Info PDU anyway (FreeRDP reads it).")]
    private partial void LogErrorInfoUnannounced(string connectionId);

    /// <summary>One connection's TLS sign-in state.</summary>
    private sealed class Attempt(GatewayConnection connection, Stream tls)
    {
        public GatewayConnection Connection { get; } = connection;

        public Stream Tls { get; } = tls;

        public string? HostLabel { get; set; }

        public PasswordHostLeg? Leg { get; set; }

        /// <summary>The host whose unauthenticated-leg count this attempt holds (released when it ends).</summary>
        public Guid? CountedHost { get; set; }

        public BackendConnection? Backend { get; set; }

        public bool McsConnected { get; set; }

        public bool ErrorInfoAnnounced { get; set; }

        public byte[]? ClientInfo { get; set; }

        public string? ClientUser { get; set; }

        public string? Upn { get; set; }

        public NlaAccount? Account { get; set; }

        public WebAccountAuthorization? Decision { get; set; }

        public string? Fix { get; set; }

        /// <summary>The deadline of the decision under way (the directory, the session record), if any.</summary>
        public CancellationTokenSource? Deciding { get; set; }
    }
}
