using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.Negotiation;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol;
using Gatehouse.Protocol.Preconnection;
using Gatehouse.Protocol.X224;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway;

/// <summary>The certificate the gateway presents on the client leg's TLS.</summary>
public sealed record GatewayCertificate(X509Certificate2 Certificate);

/// <summary>
/// The session driver of the RDP listener (<see cref="RdpSocketListener"/>, or a Kestrel endpoint): one connection, top to bottom, as its phases —
/// admission → preconnection/X.224 → negotiation → TLS → the sign-in method proves who the client is → authorisation →
/// host leg → start record → sign-in log entry → the method answers the client → relay → end record. It alone owns the
/// admission lease, the session, the connection's one sign-in log entry and the cleanup; the sign-in methods
/// (<see cref="ISignInMethod"/>) only prove and answer. Every connection that reaches a decision leaves exactly one
/// entry, written before the client is answered; a client that named a user and left before the decision leaves one too
/// (<c>client_disconnected</c>). One connection's failure never touches another. Deadlines run on the
/// <see cref="TimeProvider"/>.
/// </summary>
public sealed partial class RdpConnectionHandler : ConnectionHandler
{
    /// <summary>Largest number of bytes accepted before the X.224 Connection Request is complete.</summary>
    public const int MaxNegotiationBytes = 1024;

    /// <summary>Largest preconnection PDU accepted (a v2 PDU carries a short routing string).</summary>
    public const int MaxPreconnectionBytes = 4096;

    private readonly GatewayOptions _options;
    private readonly PreauthAdmission _admission;
    private readonly GatewayCertificate _certificate;
    private readonly Dictionary<SignInMethods, ISignInMethod> _methods;
    private readonly ISignInAuthorizer _authorizer;
    private readonly TimeProvider _time;
    private readonly SessionOpener _sessions;
    private readonly IGatewaySignInLog _signInLog;
    private readonly ILogger<RdpConnectionHandler> _logger;
    private readonly HoldPhase? _hold;
    private readonly IStoreAvailability _store;

    /// <summary>Creates the handler.</summary>
    public RdpConnectionHandler(
        IOptions<GatewayOptions> options,
        PreauthAdmission admission,
        GatewayCertificate certificate,
        IEnumerable<ISignInMethod> methods,
        ISignInAuthorizer authorizer,
        SessionOpener sessions,
        IGatewaySignInLog signInLog,
        TimeProvider time,
        ILogger<RdpConnectionHandler> logger,
        HoldPhase? hold = null,
        IStoreAvailability? store = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(methods);
        _options = options.Value;
        _admission = admission;
        _certificate = certificate;
        _methods = methods.ToDictionary(a => a.Method);
        _authorizer = authorizer;
        _time = time;
        _sessions = sessions;
        _signInLog = signInLog;
        _logger = logger;
        _hold = hold;
        _store = store ?? AlwaysAvailable.Instance;
    }

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);

        // ── Admission: the pre-authentication caps (per gateway, per address). ──
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        var refusal = _admission.TryAdmit(remote, out var lease);
        if (refusal != AdmissionRefusal.None)
        {
            LogAdmissionRefused(connection.ConnectionId, remote, refusal);
            connection.Abort(new ConnectionAbortedException($"admission refused: {refusal}"));
            return;
        }

        // ── The store down: a sign-in could not be decided (nor logged), so it is refused at once, before negotiation. ──
        if (_store.Unavailable is { } down)
        {
            using (lease)
            {
                RefuseStoreDown(connection.ConnectionId, remote, down);
                connection.Abort(new ConnectionAbortedException("the gateway's database does not answer"));
            }

            return;
        }

        var state = new GatewayConnection(connection.ConnectionId, remote, _time.GetUtcNow());
        using (lease)
        {
            try
            {
                await RunAsync(connection, state, lease).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
            {
                LogClosedByClient(state.Id, remote);
            }
            catch (Exception e) when (e is IOException or AuthenticationException or ConnectionResetException)
            {
                LogTransportError(state.Id, remote, e.GetType().Name, e.Message);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store stopped answering during this sign-in: one line with the reason, no stack trace.
                if (!await _store.ConfirmUnavailableAsync(e, CancellationToken.None).ConfigureAwait(false))
                {
                    throw;
                }

                RefuseStoreDown(state.Id, remote, _store.Unavailable ?? e.Message);
                connection.Abort(new ConnectionAbortedException("the gateway's database does not answer"));
            }
        }
    }

    /// <summary>The phases of one admitted connection.</summary>
    private async Task RunAsync(ConnectionContext transport, GatewayConnection connection, PreauthAdmission.AdmissionLease? lease)
    {
        var clientClosed = transport.ConnectionClosed;
        using var trace = GatewayTelemetry.StartConnection(connection, _time);
        trace.Phase("negotiation");

        // ── Preconnection PDU and X.224 Connection Request, within the negotiation deadline. ──
        var request = await ReadConnectionRequestAsync(transport, connection).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }

        connection.ConnectionRequest = request;
        RedeemRoutingToken(connection, request);

        // ── Negotiation: the sign-in method, or a refusal (a decision: logged before the client hears it). ──
        var negotiation = NegotiationPolicy.Decide(request, _options.SignInMethods);
        connection.Negotiation = negotiation;
        trace.Negotiated(negotiation);
        new ConnectionConfirm(negotiation.Result).Write(transport.Transport.Output);
        if (negotiation.IsRefused)
        {
            await LogNegotiationRefusalAsync(connection, negotiation).ConfigureAwait(false);
            await transport.Transport.Output.FlushAsync(clientClosed).ConfigureAwait(false);
            await transport.Transport.Output.CompleteAsync().ConfigureAwait(false);
            return;
        }

        await transport.Transport.Output.FlushAsync(clientClosed).ConfigureAwait(false);
        if (!_methods.TryGetValue(negotiation.Method, out var method))
        {
            LogNoAuthenticator(connection.Id, negotiation.Method);
            return;
        }

        // ── TLS with the gateway's certificate, within its deadline; its facts are published on the connection. ──
        trace.Phase("tls");
        // On the gateway's own listener the TLS runs straight on the socket's stream; on a Kestrel endpoint (tests) on
        // a stream over the connection's pipes.
        var pipeStream = transport.Features.Get<IClientLegStreamFeature>() is null ? new DuplexPipeStream(transport.Transport) : null;
        var clientStream = pipeStream ?? transport.Features.Get<IClientLegStreamFeature>()!.TakeStream();
        var tls = new SslStream(clientStream, leaveInnerStreamOpen: false);
        await using var tlsScope = tls.ConfigureAwait(false);
        if (!await HandshakeAsync(tls, connection).ConfigureAwait(false))
        {
            return;
        }

        // ── A TLS sign-in the hold screen takes from the start: the password, or the QR sign-in, proven on its own front. ──
        if (negotiation.Method == SignInMethods.Tls && _hold is not null && _hold.TakesTlsSignIn(connection))
        {
            trace.Phase("hold");
            await _hold.RunTlsSignInAsync(connection, tls, d => LogHeldAsync(method, connection, d), clientClosed).ConfigureAwait(false);
            return;
        }

        // ── The sign-in method proves who the client is. ──
        trace.Phase("proof");
        var attempt = method.Begin(connection, tls);
        await using var attemptScope = attempt.ConfigureAwait(false);
        var proof = ContinueHandover(connection, await ProveAsync(method, attempt, connection, clientClosed).ConfigureAwait(false));
        trace.Proved(proof);
        await using var hostLeg = new OwnedHostLeg(proof.HostLeg);
        if (proof.Unfinished is { } unfinished)
        {
            await LogUnfinishedAsync(method, connection, proof.Subject, unfinished).ConfigureAwait(false);
            return;
        }

        // ── Authorisation, host leg and start record: one decision under its own deadline, not the client's. ──
        trace.Phase("authorization");
        var decision = proof.Refusal is { } refused
            ? Decision.Refused(refused)
            : await DecideAsync(method, attempt, connection, proof, hostLeg).ConfigureAwait(false);
        if (decision.Refusal is not null)
        {
            // Nothing of a refused sign-in reaches the host: a leg the method opened closes before the client is answered.
            await hostLeg.DisposeAsync().ConfigureAwait(false);
        }

        // ── The hold screen: a second factor, or a readable refusal, painted inside the client's RDP window. ──
        if (proof.Proven && decision.Refusal is { } held && _hold?.Use(method, held, decision.Authorization) is { } use)
        {
            // The method tells the client to go on (inside the hold, so a client gone by then still leaves its row).
            trace.Phase("hold");
            await _hold.RunAsync(connection, tls, use, proof.Subject, held, decision.Authorization, () => attempt.AnswerAsync(SignInOutcome.Proceed, clientClosed), d => LogHeldAsync(method, connection, d), clientClosed).ConfigureAwait(false);
            return;
        }

        var session = decision.Session;
        var answered = false;
        try
        {
            // ── The sign-in log entry, then the method's answer in the client's own protocol. ──
            trace.Phase("answer");
            var outcome = decision.Refusal is { } refusal ? SignInOutcome.Refuse(refusal) : SignInOutcome.Allow(decision.Grant, session);
            await LogDecisionAsync(method, attempt, connection, proof.Subject, decision, outcome).ConfigureAwait(false);
            answered = true;
            if (!await AnswerAsync(method, attempt, connection, outcome, clientClosed).ConfigureAwait(false) || session is null)
            {
                return;
            }

            // ── The relay: the session no longer counts against the pre-authentication caps. ──
            lease?.Dispose();
            var relayed = session;
            session = null;
            trace.RelayStarting(relayed);
            // Over a pipe the relay flushes each batch itself (one flush per batch of TLS records rather than one per
            // record); a socket's stream sends each record as it is written.
            pipeStream?.FlushOnWrite = false;
            try
            {
                await _sessions.RunAsync(relayed, connection, tls, clientClosed).ConfigureAwait(false);
            }
            finally
            {
                pipeStream?.FlushOnWrite = true;
            }
        }
        finally
        {
            // ── A session opened but never relayed (refused answer, client gone): host leg closed, end record written. ──
            if (session is not null)
            {
                await _sessions.AbandonAsync(session, decision.AbandonReason ?? (answered || clientClosed.IsCancellationRequested
                    ? "client_closed: the client left before the sign-in answer reached it"
                    : "gateway_error: the sign-in decision could not be logged after the session opened")).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The TLS handshake within its deadline; the facts the sign-in methods need are published on the connection.</summary>
    private async Task<bool> HandshakeAsync(SslStream tls, GatewayConnection connection)
    {
        using (var deadline = Deadline(_options.TlsHandshakeTimeout))
        {
            try
            {
                await tls.AuthenticateAsServerAsync(
                    new SslServerAuthenticationOptions
                    {
                        ServerCertificate = _certificate.Certificate,
                        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        ClientCertificateRequired = false,
                    },
                    deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                LogTimeout(connection.Id, connection.RemoteAddress, "tls", _options.TlsHandshakeTimeout);
                return false;
            }
        }

        connection.Tls = new TlsFacts(
            string.IsNullOrEmpty(tls.TargetHostName) ? null : tls.TargetHostName,
            _certificate.Certificate.PublicKey.EncodedKeyValue.RawData,
            tls.SslProtocol);
        LogTlsEstablished(connection.Id, connection.RemoteAddress, tls.SslProtocol, connection.Negotiation!.Method);
        return true;
    }

    /// <summary>
    /// The method's proof. A method that throws has no decision: the client left (or the gateway failed) before it, and
    /// the attempt is logged as unfinished if the client had named a user.
    /// </summary>
    private async Task<SignInProof> ProveAsync(ISignInMethod method, ISignInAttempt attempt, GatewayConnection connection, CancellationToken clientClosed)
    {
        try
        {
            return await attempt.ProveAsync(clientClosed).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            var left = clientClosed.IsCancellationRequested || e is IOException or AuthenticationException or ConnectionResetException or OperationCanceledException;
            var reason = left
                ? $"client_disconnected: the client left during the {MethodName(method.Method)} sign-in before the gateway decided"
                : $"gateway_error: the {MethodName(method.Method)} sign-in failed ({e.GetType().Name})";
            if (left)
            {
                return SignInProof.Left(attempt.Subject, reason);
            }

            // A gateway failure is still logged (when the client had named a user), then surfaces.
            await LogUnfinishedAsync(method, connection, attempt.Subject, reason).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Authorisation, the method's last check, the host leg (opened here, or the one the method opened early) and the start
    /// record, under <see cref="GatewayOptions.SignInDecisionTimeout"/>. Nothing is left open when it refuses.
    /// </summary>
    private async Task<Decision> DecideAsync(ISignInMethod method, ISignInAttempt attempt, GatewayConnection connection, SignInProof proof, OwnedHostLeg hostLeg)
    {
        using var deciding = Deadline(_options.SignInDecisionTimeout);
        try
        {
            var authorization = await _authorizer.AuthorizeAsync(connection, proof.Subject, deciding.Token).ConfigureAwait(false);
            if (authorization.Refusal is { } denied)
            {
                var reason = method.QualifiesAccessRefusals ? $"authorization: {denied.Reason}" : denied.Reason;
                return Decision.Refused(denied with { Reason = reason }, authorization);
            }

            if (authorization.Grant is not { } grant)
            {
                return proof.HostLeg is null
                    ? Decision.Allowed(authorization, null)
                    : Decision.Refused(SignInRefusal.Of(SignInFailure.NoGrant, "the authorisation allowed the sign-in but named no account to log on with"), authorization);
            }

            if (attempt.PrepareAnswer(grant) is { } unanswerable)
            {
                return Decision.Refused(unanswerable, authorization);
            }

            BackendConnection backend;
            GatewayTelemetry.For(connection).Phase("host_leg");
            if (hostLeg.Take() is { } early)
            {
                if (grant.HostId != early.HostId || !string.Equals(grant.Backend.Host, early.Target.Host, StringComparison.OrdinalIgnoreCase) || grant.Backend.Port != early.Target.Port)
                {
                    await early.Connection.DisposeAsync().ConfigureAwait(false);
                    return Decision.Refused(SignInRefusal.Of(SignInFailure.HostChanged, $"{grant.HostName}'s registration changed while the client signed in; connect again"), authorization);
                }

                backend = early.Connection;
            }
            else
            {
                var connect = await BackendConnector.ConnectAsync(grant.Backend, grant.Credentials, _options.BackendConnectTimeout, deciding.Token, _time).ConfigureAwait(false);
                if (!connect.Connected)
                {
                    return Decision.Refused(new SignInRefusal(SignInFailure.HostUnreachable, connect.Reason) { Fix = BackendAdvice.Fix(connect, grant.HostName, grant.Backend) }, authorization);
                }

                backend = connect.Connection!;
            }

            var open = await _sessions.AttachAsync(connection, method.ProtocolName, grant, backend, deciding.Token).ConfigureAwait(false);
            if (open.Session is not { } session)
            {
                return Decision.Refused(new SignInRefusal(SignInFailure.SessionRecordFailed, open.Reason), authorization);
            }

            session.ClientInfoRelayed = proof.HostLeg is not null;
            if (grant.Backend.IsNla)
            {
                // CredSSP succeeded: the host accepted the injected password (a TLS host checks it only later, in its
                // own login screen, so a just-in-time password there is rotated by the agent's own deadline).
                grant.HostLogonAccepted?.Invoke();
            }

            return Decision.Allowed(authorization, session);
        }
        catch (OperationCanceledException) when (deciding.IsCancellationRequested)
        {
            // The directory, the access engine, the host or the session record did not answer in time: refused (fail closed).
            return Decision.Refused(SignInRefusal.Of(SignInFailure.DecisionTimeout, $"the sign-in decision took longer than {_options.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)"));
        }
    }

    /// <summary>The method's answer; false when the client did not get it (gone) or was refused.</summary>
    private async Task<bool> AnswerAsync(ISignInMethod method, ISignInAttempt attempt, GatewayConnection connection, SignInOutcome outcome, CancellationToken clientClosed)
    {
        try
        {
            await attempt.AnswerAsync(outcome, clientClosed).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or AuthenticationException or ConnectionResetException || (e is OperationCanceledException && clientClosed.IsCancellationRequested))
        {
            // The client is gone; the decision is logged already (an allowed session is closed by the caller).
            if (outcome.Allowed)
            {
                LogTransportError(connection.Id, connection.RemoteAddress, e.GetType().Name, e.Message);
                return false;
            }
        }

        return outcome.Allowed;
    }

    /// <summary>
    /// A routing token in the X.224 Connection Request continues a hold screen's handover when it is this gateway's, unused,
    /// unexpired and from the same address; anything else makes an ordinary connection (logged).
    /// </summary>
    private void RedeemRoutingToken(GatewayConnection connection, ConnectionRequest request)
    {
        if (_hold is null || request.TokenKind != ConnectionRequestTokenKind.RoutingToken)
        {
            return;
        }

        var refusal = _hold.Tokens.TryRedeem(request.TokenValue, connection.RemoteAddress, out var grant);
        connection.Handover = grant;
        if (refusal != RoutingTokenRefusal.None)
        {
            LogRoutingTokenRefused(connection.Id, connection.RemoteAddress, refusal);
        }
    }

    /// <summary>
    /// A proof on a connection that continues a handover: the same user proved again, so the methods of the hold screen
    /// (the second factor) and its host count; another user gets no part of the handover.
    /// </summary>
    private SignInProof ContinueHandover(GatewayConnection connection, SignInProof proof)
    {
        if (connection.Handover is not { } handover || !proof.Proven)
        {
            return proof;
        }

        if (proof.Subject.UserId != handover.UserId || proof.Subject.TenantId != handover.TenantId)
        {
            LogHandoverUserMismatch(connection.Id, connection.RemoteAddress, proof.Subject.UserPrincipalName ?? "?");
            connection.Handover = null;
            return proof;
        }

        return SignInProof.Of(proof.Subject with
        {
            Methods = [.. proof.Subject.Methods.Union(handover.Methods, StringComparer.Ordinal)],
            HostId = handover.HostId,
            AuthenticatedAt = handover.AuthenticatedAt,
        }) with
        { HostLeg = proof.HostLeg };
    }

    /// <summary>The entry of a held sign-in, written before the hold's last answer (the redirection or the refusal).</summary>
    private async Task LogHeldAsync(ISignInMethod method, GatewayConnection connection, HoldDecision held)
    {
        var refusal = held.Refusal;
        if (!held.Subject.Named)
        {
            // A TLS client that left the hold screen (or was refused) before naming anyone leaves no entry.
            LogSignInFailed(connection.Id, connection.RemoteAddress, method.Method, refusal?.Reason ?? held.Reason);
            return;
        }

        var entry = Entry(method, connection, held.Subject, refusal is null, refusal?.Reason ?? held.Reason) with
        {
            Code = refusal is null ? null : $"0x{(uint)SignInFailures.ErrorInfo(refusal.Failure):X8}",
            UserMessage = refusal?.Message,
            Fix = refusal?.Fix,
            TenantId = held.Authorization?.TenantId ?? held.Subject.TenantId,
            UserId = held.Authorization?.UserId ?? held.Subject.UserId,
            PoliciesJson = held.Authorization?.PoliciesJson,
            RoleAssignmentId = held.Authorization?.Grant?.RoleAssignmentId,
            RoleName = held.Authorization?.Grant?.RoleName,
            HostName = held.Authorization?.Grant?.HostName ?? held.Subject.HostName,
        };
        if (await _signInLog.WriteOnceAsync(connection, entry, _options.SignInDecisionTimeout, _time).ConfigureAwait(false))
        {
            LogHoldEnded(connection.Id, MethodName(method.Method), held.Subject.UserPrincipalName ?? "?", entry.Reason);
        }
    }

    /// <summary>The negotiation refusal's entry (nobody signed in; the cookie's user name when the client sent one).</summary>
    private async Task LogNegotiationRefusalAsync(GatewayConnection connection, NegotiationDecision negotiation)
    {
        LogNegotiationRefused(connection.Id, connection.RemoteAddress, negotiation.Result.FailureCode, negotiation.Refusal!);
        await _signInLog.WriteOnceAsync(
            connection,
            new GatewaySignInEvent
            {
                ConnectionId = connection.Id,
                ClientAddress = connection.RemoteAddress,
                Protocol = "rdp",
                Succeeded = false,
                Reason = $"{SignInFailures.Code(SignInFailure.NegotiationRefused)}: {negotiation.Refusal}",
                Code = negotiation.Result.FailureCode.ToString(),
                UserPrincipalName = connection.ConnectionRequest?.TokenKind == ConnectionRequestTokenKind.Cookie ? connection.ConnectionRequest.TokenValue : null,
            },
            _options.SignInDecisionTimeout,
            _time).ConfigureAwait(false);
    }

    /// <summary>The connection's one entry for a decided sign-in, written before the answer whatever the client does next.</summary>
    private async Task LogDecisionAsync(ISignInMethod method, ISignInAttempt attempt, GatewayConnection connection, SignInSubject subject, Decision decision, SignInOutcome outcome)
    {
        var grant = decision.Grant;
        var succeeded = outcome.Allowed;
        var entry = Entry(method, connection, subject, succeeded, succeeded ? decision.Authorization?.Reason ?? string.Empty : outcome.Refusal!.Reason) with
        {
            Code = attempt.AnswerCode(outcome),
            UserMessage = outcome.Refusal?.Message,
            Fix = outcome.Refusal?.Fix,
            TenantId = decision.Authorization?.TenantId ?? subject.TenantId,
            UserId = decision.Authorization?.UserId ?? subject.UserId,
            HostName = grant?.HostName ?? subject.HostName,
            PoliciesJson = decision.Authorization?.PoliciesJson,
            RoleAssignmentId = grant?.RoleAssignmentId,
            RoleName = grant?.RoleName,
            TargetAccount = succeeded ? grant?.Credentials.ToString() : null,
            SessionId = succeeded ? decision.Session?.Id : null,
        };
        if (!await _signInLog.WriteOnceAsync(connection, entry, _options.SignInDecisionTimeout, _time).ConfigureAwait(false))
        {
            return;
        }

        if (succeeded)
        {
            LogSignedIn(connection.Id, MethodName(method.Method), subject.UserPrincipalName ?? "?", grant?.HostName ?? subject.HostName ?? "?", entry.Reason);
        }
        else
        {
            LogRefused(connection.Id, MethodName(method.Method), subject.UserPrincipalName ?? "?", entry.Reason);
        }
    }

    /// <summary>
    /// The entry of an attempt that ended without a decision, when the client had named a user (nothing otherwise: a
    /// client that named no one leaves no entry).
    /// </summary>
    private async Task LogUnfinishedAsync(ISignInMethod method, GatewayConnection connection, SignInSubject subject, string reason)
    {
        LogSignInFailed(connection.Id, connection.RemoteAddress, method.Method, reason);
        if (!subject.Named)
        {
            return;
        }

        if (await _signInLog.WriteOnceAsync(connection, Entry(method, connection, subject, false, reason), _options.SignInDecisionTimeout, _time).ConfigureAwait(false))
        {
            LogUnfinished(connection.Id, connection.RemoteAddress, method.Method, reason);
        }
    }

    private static GatewaySignInEvent Entry(ISignInMethod method, GatewayConnection connection, SignInSubject subject, bool succeeded, string reason) => new()
    {
        ConnectionId = connection.Id,
        ClientAddress = connection.RemoteAddress,
        Protocol = method.ProtocolName,
        Succeeded = succeeded,
        Reason = reason,
        TenantId = subject.TenantId,
        UserId = subject.UserId,
        UserPrincipalName = subject.UserPrincipalName,
        HostName = subject.HostName,
        Methods = subject.Methods,
    };

    /// <summary>
    /// Reads an optional preconnection PDU ([MS-RDPEPS]; its first byte is not TPKT's version 3), then exactly one TPKT
    /// frame holding the Connection Request, within the negotiation deadline and byte caps.
    /// </summary>
    private async Task<ConnectionRequest?> ReadConnectionRequestAsync(ConnectionContext connection, GatewayConnection state)
    {
        var input = connection.Transport.Input;
        using var deadline = Deadline(_options.NegotiationTimeout);
        try
        {
            // The optional preconnection PDU: it starts with a byte that is not TPKT's version 3.
            while (true)
            {
                var read = await input.ReadAsync(deadline.Token).ConfigureAwait(false);
                var buffer = read.Buffer;
                if (buffer.IsEmpty)
                {
                    if (read.IsCompleted)
                    {
                        LogMalformed(state.Id, state.RemoteAddress, "the client closed before a whole X.224 Connection Request");
                        return null;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (!PreconnectionPdu.StartsPreconnection(buffer.FirstSpan[0]))
                {
                    // Nothing consumed or examined: the frame reader below sees the same bytes at once.
                    input.AdvanceTo(buffer.Start);
                    break;
                }

                var reader = new SequenceReader<byte>(buffer);
                var pcbStatus = PreconnectionPdu.TryReadFrame(ref reader, MaxPreconnectionBytes, out var pcbFrame, out var pcbError);
                if (pcbStatus == OperationStatus.NeedMoreData && !read.IsCompleted)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                }

                if (pcbStatus != OperationStatus.Done || !PreconnectionPdu.TryParse(pcbFrame.ToArray(), MaxPreconnectionBytes, out var preconnection, out pcbError))
                {
                    input.AdvanceTo(buffer.End);
                    LogMalformed(state.Id, state.RemoteAddress, pcbError?.ToString() ?? "the client closed inside the preconnection PDU");
                    return null;
                }

                state.Preconnection = preconnection;
                input.AdvanceTo(reader.Position);
                LogPreconnection(state.Id, preconnection.Version, preconnection.Id);
                break;
            }

            // Exactly one TPKT frame of at most MaxNegotiationBytes; what follows (the TLS ClientHello) stays in the pipe.
            RdpFrame? frame;
            try
            {
                frame = await new RdpFrameReader(input, MaxNegotiationBytes, acceptFastPath: false).ReadAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (RdpFrameException e)
            {
                LogMalformed(state.Id, state.RemoteAddress, e.IsTooLarge ? $"more than {MaxNegotiationBytes} bytes without a whole X.224 Connection Request ({e.Message})" : e.Message);
                return null;
            }

            if (frame is not { } request)
            {
                LogMalformed(state.Id, state.RemoteAddress, "the client closed before a whole X.224 Connection Request");
                return null;
            }

            if (!ConnectionRequest.TryParse(request.Bytes, out var parsed, out var error))
            {
                LogMalformed(state.Id, state.RemoteAddress, error!.ToString());
                return null;
            }

            return parsed;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            LogTimeout(state.Id, state.RemoteAddress, "negotiation", _options.NegotiationTimeout);
            return null;
        }
    }

    private static string MethodName(SignInMethods method) => method switch
    {
        SignInMethods.WebAccount => "web account",
        SignInMethods.Nla => "NLA",
        SignInMethods.Tls => "TLS",
        _ => method.ToString(),
    };

    /// <summary>
    /// A phase deadline on the gateway's clock. Reads from the client are bounded by it alone, not by the client leaving:
    /// what a client sent before it closed is still read (its input ends there anyway), so a request followed at once by
    /// a close is still decided and logged.
    /// </summary>
    private CancellationTokenSource Deadline(TimeSpan timeout) => new(timeout, _time);

    /// <summary>What the decision phase settled: the refusal, or the grant and the session (opened, start recorded).</summary>
    private sealed record Decision(SignInRefusal? Refusal, AccessOutcome? Authorization, LiveSession? Session)
    {
        public SessionGrant? Grant => Authorization?.Grant;

        /// <summary>The end reason of a session that is opened but not relayed: a refused answer names the refusal.</summary>
        public string? AbandonReason => Refusal is { } r ? $"refused: {r.Reason}" : null;

        public static Decision Refused(SignInRefusal refusal, AccessOutcome? authorization = null) => new(refusal, authorization, null);

        public static Decision Allowed(AccessOutcome authorization, LiveSession? session) => new(null, authorization, session);
    }

    /// <summary>The host leg a method opened early, closed unless the decision takes it.</summary>
    private sealed class OwnedHostLeg(EarlyHostLeg? leg) : IAsyncDisposable
    {
        private EarlyHostLeg? _leg = leg;

        public EarlyHostLeg? Take() => Interlocked.Exchange(ref _leg, null);

        public async ValueTask DisposeAsync()
        {
            if (Take() is { } leg)
            {
                await leg.Connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private void RefuseStoreDown(string connectionId, IPAddress remote, string reason)
    {
        var count = _store.CountRefusal();
        GatewayTelemetry.AdmissionRefusals.Add(1, new KeyValuePair<string, object?>("gatehouse.refusal", "store_unavailable"));
        LogStoreDown(connectionId, remote, reason, count);
    }

    [LoggerMessage(EventIds.StoreUnavailable, LogLevel.Warning, "RDP connection {ConnectionId} from {Remote}: sign-in refused, the database does not answer ({Reason}); {Count} sign-in(s) refused since it stopped answering. Live sessions go on.")]
    private partial void LogStoreDown(string connectionId, IPAddress remote, string reason, long count);

    [LoggerMessage(EventIds.AdmissionRefused, LogLevel.Warning, "RDP connection {ConnectionId} from {Remote} refused before negotiation: {Refusal} (Gatehouse:Gateway:MaxPendingConnections / MaxPendingConnectionsPerAddress).")]
    private partial void LogAdmissionRefused(string connectionId, IPAddress remote, AdmissionRefusal refusal);

    [LoggerMessage(EventIds.NegotiationRefused, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: negotiation refused with {FailureCode}: {Reason}")]
    private partial void LogNegotiationRefused(string connectionId, IPAddress remote, NegotiationFailureCode failureCode, string reason);

    [LoggerMessage(EventIds.PhaseTimedOut, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: {Phase} timed out after {Timeout}.")]
    private partial void LogTimeout(string connectionId, IPAddress remote, string phase, TimeSpan timeout);

    [LoggerMessage(EventIds.MalformedNegotiation, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: malformed negotiation: {Reason}")]
    private partial void LogMalformed(string connectionId, IPAddress remote, string reason);

    [LoggerMessage(EventIds.TlsEstablished, LogLevel.Debug, "RDP connection {ConnectionId} from {Remote}: {Protocol} established, sign-in method {Method}.")]
    private partial void LogTlsEstablished(string connectionId, IPAddress remote, SslProtocols protocol, SignInMethods method);

    [LoggerMessage(EventIds.NoAuthenticator, LogLevel.Error, "RDP connection {ConnectionId}: no sign-in method is registered for {Method}; check Gatehouse:Gateway:SignInMethods.")]
    private partial void LogNoAuthenticator(string connectionId, SignInMethods method);

    [LoggerMessage(EventIds.SignInFailed, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: {Method} sign-in failed: {Reason}")]
    private partial void LogSignInFailed(string connectionId, IPAddress remote, SignInMethods method, string reason);

    [LoggerMessage(EventIds.SignedIn, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with {Method} to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string method, string upn, string host, string decision);

    [LoggerMessage(EventIds.RoutingTokenRefused, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: its routing token is not honoured ({Refusal}); an ordinary connection.")]
    private partial void LogRoutingTokenRefused(string connectionId, IPAddress remote, RoutingTokenRefusal refusal);

    [LoggerMessage(EventIds.HandoverUserMismatch, LogLevel.Warning, "RDP connection {ConnectionId} from {Remote}: {User} signed in on a handover minted for another user; the handover is ignored.")]
    private partial void LogHandoverUserMismatch(string connectionId, IPAddress remote, string user);

    [LoggerMessage(EventIds.HoldEnded, LogLevel.Information, "RDP connection {ConnectionId}: the hold screen of the {Method} sign-in of {User} ended: {Reason}")]
    private partial void LogHoldEnded(string connectionId, string method, string user, string reason);

    [LoggerMessage(EventIds.SignInRefused, LogLevel.Information, "RDP connection {ConnectionId}: {Method} sign-in of {User} refused: {Reason}")]
    private partial void LogRefused(string connectionId, string method, string user, string reason);

    [LoggerMessage(EventIds.ClosedByClient, LogLevel.Debug, "RDP connection {ConnectionId} from {Remote} closed by the client.")]
    private partial void LogClosedByClient(string connectionId, IPAddress remote);

    [LoggerMessage(EventIds.PreconnectionPdu, LogLevel.Debug, "RDP connection {ConnectionId}: preconnection PDU v{Version}, id {Id}.")]
    private partial void LogPreconnection(string connectionId, uint version, uint id);

    [LoggerMessage(EventIds.SignInUnfinished, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: the {Method} sign-in ended without a decision: {Reason}")]
    private partial void LogUnfinished(string connectionId, IPAddress remote, SignInMethods method, string reason);

    [LoggerMessage(EventIds.TransportError, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: transport error {Kind}: {Message}")]
    private partial void LogTransportError(string connectionId, IPAddress remote, string kind, string message);
}
