using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Negotiation;
using Gatehouse.Gateway.Sessions;
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
/// The RDP listener's connection handler (hosted on Kestrel): admission against the pre-authentication caps, the
/// X.224 negotiation with a deadline, TLS with the gateway's certificate with a deadline, then the sign-in of the
/// negotiated method. Every refusal is logged with its reason; one connection's failure never touches another. Every
/// connection that reaches a sign-in decision leaves exactly one sign-in log entry, written before the client is
/// answered; a client that named a user and left before the decision leaves one too (<c>client_disconnected</c>).
/// Phase deadlines run on the <see cref="TimeProvider"/>.
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
    private readonly Dictionary<SignInMethods, IClientAuthenticator> _authenticators;
    private readonly TimeProvider _time;
    private readonly SessionOpener _sessions;
    private readonly IGatewaySignInLog _signInLog;
    private readonly ILogger<RdpConnectionHandler> _logger;

    /// <summary>Creates the handler.</summary>
    public RdpConnectionHandler(
        IOptions<GatewayOptions> options,
        PreauthAdmission admission,
        GatewayCertificate certificate,
        IEnumerable<IClientAuthenticator> authenticators,
        SessionOpener sessions,
        IGatewaySignInLog signInLog,
        TimeProvider time,
        ILogger<RdpConnectionHandler> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(authenticators);
        _options = options.Value;
        _admission = admission;
        _certificate = certificate;
        _authenticators = authenticators.ToDictionary(a => a.Method);
        _time = time;
        _sessions = sessions;
        _signInLog = signInLog;
        _logger = logger;
    }

    /// <inheritdoc />
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        var refusal = _admission.TryAdmit(remote, out var lease);
        if (refusal != AdmissionRefusal.None)
        {
            LogAdmissionRefused(connection.ConnectionId, remote, refusal);
            connection.Abort(new ConnectionAbortedException($"admission refused: {refusal}"));
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
        }
    }

    private async Task RunAsync(ConnectionContext connection, GatewayConnection state, PreauthAdmission.AdmissionLease? lease)
    {
        // Phase 1: (preconnection PDU and) X.224 Connection Request.
        var request = await ReadConnectionRequestAsync(connection, state).ConfigureAwait(false);
        if (request is null)
        {
            return;
        }

        state.ConnectionRequest = request;
        var decision = NegotiationPolicy.Decide(request, _options.SignInMethods);
        state.Negotiation = decision;
        if (decision.IsRefused)
        {
            // The refusal is a decision: its entry is written before the client is answered, whatever it does next.
            LogNegotiationRefused(state.Id, state.RemoteAddress, decision.Result.FailureCode, decision.Refusal!);
            await _signInLog.WriteOnceAsync(
                state,
                new GatewaySignInEvent
                {
                    ConnectionId = state.Id,
                    ClientAddress = state.RemoteAddress,
                    Protocol = "rdp",
                    Succeeded = false,
                    Reason = $"negotiation_refused: {decision.Refusal}",
                    Code = decision.Result.FailureCode.ToString(),
                    UserPrincipalName = request.TokenKind == ConnectionRequestTokenKind.Cookie ? request.TokenValue : null,
                },
                _options.SignInDecisionTimeout,
                _time).ConfigureAwait(false);
            WriteConfirm(connection.Transport.Output, decision);
            await connection.Transport.Output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);
            await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
            return;
        }

        WriteConfirm(connection.Transport.Output, decision);
        await connection.Transport.Output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);

        // Phase 2: TLS on the same connection, with its own deadline.
        var tls = new SslStream(new DuplexPipeStream(connection.Transport), leaveInnerStreamOpen: false);
        await using (tls.ConfigureAwait(false))
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
                    LogTimeout(state.Id, state.RemoteAddress, "tls", _options.TlsHandshakeTimeout);
                    return;
                }
            }

            LogTlsEstablished(state.Id, state.RemoteAddress, tls.SslProtocol, decision.Method);

            // Phase 3: the negotiated sign-in.
            if (!_authenticators.TryGetValue(decision.Method, out var authenticator))
            {
                LogNoAuthenticator(state.Id, decision.Method);
                return;
            }

            ClientAuthenticationResult result;
            try
            {
                result = await authenticator.AuthenticateAsync(state, tls, connection.ConnectionClosed).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // No answer reached the client. A client that named a user and left before the decision still leaves its
                // entry (the methods write every decision before they answer, so a decided attempt has its entry already).
                var left = connection.ConnectionClosed.IsCancellationRequested || e is IOException or AuthenticationException or ConnectionResetException;
                await WriteUnfinishedAsync(
                    state,
                    decision.Method,
                    left ? $"client_disconnected: the client left during the {MethodName(decision.Method)} sign-in before the gateway decided" : $"gateway_error: the {MethodName(decision.Method)} sign-in failed ({e.GetType().Name})").ConfigureAwait(false);
                if (state.Session is { } opened)
                {
                    // The host leg was opened but the client went away before it got its answer: close what was opened.
                    state.Session = null;
                    await _sessions.AbandonAsync(opened, left ? "client_closed: the client left before the sign-in answer reached it" : $"gateway_error: the sign-in failed after the session opened ({e.GetType().Name})").ConfigureAwait(false);
                }

                throw;
            }

            if (!result.Succeeded)
            {
                LogSignInFailed(state.Id, state.RemoteAddress, decision.Method, result.FailureReason ?? "unspecified");
                await WriteUnfinishedAsync(state, decision.Method, result.FailureReason ?? "client_disconnected: the client left before the gateway decided").ConfigureAwait(false);
                if (state.Session is { } orphan)
                {
                    state.Session = null;
                    await _sessions.AbandonAsync(orphan, $"refused: {result.FailureReason}").ConfigureAwait(false);
                }

                return;
            }

            // Phase 4: the relayed session. It no longer counts against the pre-authentication caps.
            if (state.Session is { } session)
            {
                lease?.Dispose();
                await _sessions.RunAsync(session, state, tls, connection.ConnectionClosed).ConfigureAwait(false);
            }
        }
    }

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

    private static void WriteConfirm(PipeWriter output, NegotiationDecision decision) =>
        new ConnectionConfirm(decision.Result).Write(output);

    /// <summary>
    /// The entry of an attempt that ended without a decision, when the client had named a user (nothing otherwise, and
    /// nothing when the attempt has its entry already).
    /// </summary>
    private async Task WriteUnfinishedAsync(GatewayConnection state, SignInMethods method, string reason)
    {
        if (state.UnfinishedSignIn is not { } unfinished || state.SignInLogged)
        {
            return;
        }

        if (await _signInLog.WriteOnceAsync(state, unfinished(reason), _options.SignInDecisionTimeout, _time).ConfigureAwait(false))
        {
            LogUnfinished(state.Id, state.RemoteAddress, method, reason);
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

    [LoggerMessage(EventIds.NoAuthenticator, LogLevel.Error, "RDP connection {ConnectionId}: no authenticator is registered for {Method}; check Gatehouse:Gateway:SignInMethods.")]
    private partial void LogNoAuthenticator(string connectionId, SignInMethods method);

    [LoggerMessage(EventIds.SignInFailed, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: {Method} sign-in failed: {Reason}")]
    private partial void LogSignInFailed(string connectionId, IPAddress remote, SignInMethods method, string reason);

    [LoggerMessage(EventIds.ClosedByClient, LogLevel.Debug, "RDP connection {ConnectionId} from {Remote} closed by the client.")]
    private partial void LogClosedByClient(string connectionId, IPAddress remote);

    [LoggerMessage(EventIds.PreconnectionPdu, LogLevel.Debug, "RDP connection {ConnectionId}: preconnection PDU v{Version}, id {Id}.")]
    private partial void LogPreconnection(string connectionId, uint version, uint id);

    [LoggerMessage(EventIds.SignInUnfinished, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: the {Method} sign-in ended without a decision: {Reason}")]
    private partial void LogUnfinished(string connectionId, IPAddress remote, SignInMethods method, string reason);

    [LoggerMessage(EventIds.TransportError, LogLevel.Information, "RDP connection {ConnectionId} from {Remote}: transport error {Kind}: {Message}")]
    private partial void LogTransportError(string connectionId, IPAddress remote, string kind, string message);
}
