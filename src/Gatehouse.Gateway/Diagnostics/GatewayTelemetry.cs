using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;

namespace Gatehouse.Gateway.Diagnostics;

/// <summary>
/// The gateway's OpenTelemetry-shaped telemetry through <see cref="System.Diagnostics"/>: the <c>Gatehouse</c>
/// <see cref="Meter"/> (sign-ins, live sessions, relay bytes, phase durations, pending connections) and the
/// <c>Gatehouse.Gateway</c> <see cref="ActivitySource"/> (one span per RDP connection until its relay starts, with a
/// child span per phase). Nothing here is exported by the library itself: the host's OpenTelemetry SDK listens (see
/// <c>docs/observability.md</c> for every name and attribute). No attribute carries a secret or client-chosen free text:
/// user and tenant are ids, reasons are codes from a fixed set.
/// </summary>
public static class GatewayTelemetry
{
    /// <summary>The meter's name (shared with the identity provider's instruments).</summary>
    public const string MeterName = "Gatehouse";

    /// <summary>The gateway's activity source.</summary>
    public const string ActivitySourceName = "Gatehouse.Gateway";

    /// <summary>The span of one RDP connection, from the X.224 request to the start of the relay.</summary>
    public const string ConnectionSpanName = "gatehouse.rdp.connection";

    /// <summary>The reason code of a sign-in whose reason starts with no known code.</summary>
    public const string OtherReason = "other";

    /// <summary>Spans of the RDP gateway.</summary>
    public static readonly ActivitySource Source = new(ActivitySourceName);

    /// <summary>Gatehouse's meter.</summary>
    public static readonly Meter Meter = new(MeterName);

    /// <summary><c>gatehouse.sign_ins</c>: sign-in attempts (one per sign-in log entry) by protocol, result and reason code.</summary>
    public static readonly Counter<long> SignIns = Meter.CreateCounter<long>("gatehouse.sign_ins", "{sign_in}", "Sign-in attempts, one per sign-in log entry, by protocol, result and reason code.");

    /// <summary><c>gatehouse.sessions.live</c>: relayed sessions on this node now, by protocol.</summary>
    public static readonly UpDownCounter<long> LiveSessions = Meter.CreateUpDownCounter<long>("gatehouse.sessions.live", "{session}", "Relayed RDP sessions on this node now, by sign-in protocol.");

    /// <summary><c>gatehouse.relay.bytes</c>: bytes relayed, by direction.</summary>
    public static readonly Counter<long> RelayBytes = Meter.CreateCounter<long>("gatehouse.relay.bytes", "By", "Bytes relayed between clients and hosts, by direction (client_to_host, host_to_client).");

    /// <summary><c>gatehouse.rdp.phase.duration</c>: how long each phase of an RDP connection took.</summary>
    public static readonly Histogram<double> PhaseDuration = Meter.CreateHistogram<double>("gatehouse.rdp.phase.duration", "s", "Duration of each phase of an RDP connection (negotiation, tls, proof, authorization, host_leg, hold, answer).");

    /// <summary><c>gatehouse.rdp.connections.pending</c>: connections admitted that have not authenticated yet.</summary>
    public static readonly UpDownCounter<long> PendingConnections = Meter.CreateUpDownCounter<long>("gatehouse.rdp.connections.pending", "{connection}", "RDP connections admitted that have not authenticated yet (the pre-authentication caps count them).");

    /// <summary><c>gatehouse.rdp.admission.refusals</c>: connections refused by the pre-authentication caps.</summary>
    public static readonly Counter<long> AdmissionRefusals = Meter.CreateCounter<long>("gatehouse.rdp.admission.refusals", "{connection}", "RDP connections refused before negotiation by the pre-authentication caps, by cap.");

    private static readonly KeyValuePair<string, object?> ClientToHost = new("gatehouse.direction", "client_to_host");
    private static readonly KeyValuePair<string, object?> HostToClient = new("gatehouse.direction", "host_to_client");

    private static readonly ConditionalWeakTable<GatewayConnection, ConnectionTrace> Traces = [];

    /// <summary>
    /// Starts the span of <paramref name="connection"/> (a new trace: an RDP client carries no trace context) with its
    /// correlation id, the connection id the sign-in log records.
    /// </summary>
    public static ConnectionTrace StartConnection(GatewayConnection connection, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var trace = new ConnectionTrace(connection, time);
        Traces.AddOrUpdate(connection, trace);
        return trace;
    }

    /// <summary>The trace of <paramref name="connection"/>, or a trace that records nothing.</summary>
    public static ConnectionTrace For(GatewayConnection connection) =>
        connection is not null && Traces.TryGetValue(connection, out var trace) ? trace : ConnectionTrace.None;

    /// <summary>Counts a sign-in log entry and puts its result on the connection's span.</summary>
    public static void SignInLogged(GatewayConnection connection, GatewaySignInEvent signIn)
    {
        ArgumentNullException.ThrowIfNull(signIn);
        var result = signIn.Succeeded ? "success" : "failure";
        var reason = ReasonCode(signIn.Reason);
        SignIns.Add(1, new("gatehouse.protocol", signIn.Protocol), new("gatehouse.result", result), new("gatehouse.reason", reason));
        For(connection).SignInLogged(signIn.Protocol, result, reason);
    }

    /// <summary>Adds relayed bytes to <see cref="RelayBytes"/>.</summary>
    internal static void Relayed(int direction, long bytes) => RelayBytes.Add(bytes, direction == 0 ? ClientToHost : HostToClient);

    /// <summary>
    /// The code a reason starts with (<c>credssp_refused: …</c> → <c>credssp_refused</c>): a snake_case word of at most
    /// 40 characters before the first colon, which the gateway and the identity provider write from a fixed vocabulary;
    /// anything else is <see cref="OtherReason"/>, since a reason's text can carry names a client sent and would make one
    /// series per attempt.
    /// </summary>
    public static string ReasonCode(string? reason)
    {
        if (string.IsNullOrEmpty(reason))
        {
            return OtherReason;
        }

        var colon = reason.IndexOf(':', StringComparison.Ordinal);
        var code = colon < 0 ? reason : reason[..colon];
        return code.Length is > 0 and <= 40 && char.IsAsciiLetterLower(code[0]) && code.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_')
            ? code
            : OtherReason;
    }
}

/// <summary>
/// The span of one RDP connection and its phase spans, opened and closed at the driver's phase boundaries with one call
/// each: <see cref="Phase"/> ends the running phase (recording its duration) and starts the next as a child span that is
/// the current activity, so work inside it (database commands, HTTP calls) nests under it. Disposing ends both.
/// </summary>
public sealed class ConnectionTrace : IDisposable
{
    /// <summary>A trace that records nothing (a connection the driver did not start one for).</summary>
    internal static readonly ConnectionTrace None = new();

    private readonly Lock _gate = new();
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly Activity? _root;
    private Activity? _signIn;
    private Activity? _phase;
    private string? _phaseName;
    private long _phaseStarted;
    private bool _ended;

    internal ConnectionTrace(GatewayConnection connection, TimeProvider time)
    {
        _time = time ?? TimeProvider.System;
        _root = GatewayTelemetry.Source.StartActivity(GatewayTelemetry.ConnectionSpanName, ActivityKind.Server, parentContext: default);
        if (_root is not null)
        {
            _root.SetTag("gatehouse.correlation_id", connection.Id);
            _root.SetTag("client.address", connection.RemoteAddress.ToString());
            _root.SetCustomProperty(SignInTraces.ConnectionProperty, this);
        }
    }

    private ConnectionTrace()
    {
        _ended = true;
    }

    /// <summary>The connection's span (null when nobody listens).</summary>
    public Activity? Activity => _root;

    /// <summary>The connection's span in its sign-in's trace, once a token named that trace (<see cref="SignedIn"/>).</summary>
    public Activity? SignInActivity => _signIn;

    /// <summary>
    /// The presented token names its sign-in's trace: starts <c>gatehouse.rdp.sign_in</c> there, as a child of the token
    /// endpoint's span that issued it, linked both ways with the connection's span (which started, at the X.224 request,
    /// before any token was known, so it stays the root of its own trace). The phases after this one are its children.
    /// The current activity is left as it is.
    /// </summary>
    public void SignedIn(ActivityContext signIn)
    {
        lock (_gate)
        {
            if (_ended || _root is null || _signIn is not null)
            {
                return;
            }

            var current = Activity.Current;
            _signIn = GatewayTelemetry.Source.StartActivity(
                "gatehouse.rdp.sign_in",
                ActivityKind.Internal,
                signIn,
                tags: [new("gatehouse.correlation_id", _root.GetTagItem("gatehouse.correlation_id")), new("client.address", _root.GetTagItem("client.address"))],
                links: [new ActivityLink(_root.Context, new ActivityTagsCollection { ["gatehouse.link"] = "connection" })]);
            Activity.Current = current;
            if (_signIn is not null)
            {
                _signIn.SetCustomProperty(SignInTraces.ConnectionProperty, this);
                _root.AddLink(new ActivityLink(_signIn.Context, new ActivityTagsCollection { ["gatehouse.link"] = "sign_in" }));
            }
        }
    }

    /// <summary>Ends the running phase and starts <paramref name="name"/> (<c>gatehouse.rdp.</c><paramref name="name"/>).</summary>
    public void Phase(string name)
    {
        lock (_gate)
        {
            if (_ended)
            {
                return;
            }

            EndPhase();
            _phaseName = name;
            _phaseStarted = _time.GetTimestamp();
            if (_root is not null)
            {
                _phase = GatewayTelemetry.Source.StartActivity("gatehouse.rdp." + name, ActivityKind.Internal, (_signIn ?? _root).Context);
                _phase?.SetCustomProperty(SignInTraces.ConnectionProperty, this);
            }
        }
    }

    /// <summary>Sets a tag on the connection's span and its sign-in span (never a secret or free text a client chose).</summary>
    public void Tag(string key, object? value)
    {
        _root?.SetTag(key, value);
        _signIn?.SetTag(key, value);
    }

    /// <summary>The negotiation's outcome: the method chosen, or the refusal's failure code.</summary>
    public void Negotiated(Negotiation.NegotiationDecision negotiation)
    {
        ArgumentNullException.ThrowIfNull(negotiation);
        Tag("gatehouse.rdp.method", negotiation.IsRefused ? null : negotiation.Method.ToString());
        Tag("gatehouse.rdp.negotiation", negotiation.IsRefused ? negotiation.Result.FailureCode.ToString() : "accepted");
    }

    /// <summary>The proof's outcome: who (ids only), and whether the method proved it.</summary>
    public void Proved(SignInProof proof)
    {
        ArgumentNullException.ThrowIfNull(proof);
        Tag("gatehouse.proven", proof.Proven);
        Tag("gatehouse.tenant_id", proof.Subject.TenantId?.ToString());
        Tag("enduser.id", proof.Subject.UserId?.ToString());
        _phase?.AddEvent(new ActivityEvent("gatehouse.proof", tags: new ActivityTagsCollection { ["gatehouse.proven"] = proof.Proven }));
    }

    /// <summary>The relay starts: the sign-in is over, so the connection's span ends here (a session can last hours).</summary>
    public void RelayStarting(LiveSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _root?.AddEvent(new ActivityEvent("gatehouse.relay.start", tags: new ActivityTagsCollection
        {
            ["gatehouse.session_id"] = session.Id.ToString(),
            ["gatehouse.host_id"] = session.Grant.HostId.ToString(),
        }));
        _root?.SetTag("gatehouse.session_id", session.Id.ToString());
        _signIn?.AddEvent(new ActivityEvent("gatehouse.relay.start", tags: new ActivityTagsCollection
        {
            ["gatehouse.session_id"] = session.Id.ToString(),
            ["gatehouse.host_id"] = session.Grant.HostId.ToString(),
        }));
        _signIn?.SetTag("gatehouse.session_id", session.Id.ToString());
        Dispose();
    }

    internal void SignInLogged(string protocol, string result, string reason)
    {
        foreach (var span in new[] { _root, _signIn })
        {
            if (span is null)
            {
                continue;
            }

            span.SetTag("gatehouse.protocol", protocol);
            span.SetTag("gatehouse.result", result);
            span.SetTag("gatehouse.reason", reason);
            span.AddEvent(new ActivityEvent("gatehouse.sign_in_log", tags: new ActivityTagsCollection
            {
                ["gatehouse.result"] = result,
                ["gatehouse.reason"] = reason,
            }));
            if (result != "success")
            {
                span.SetStatus(ActivityStatusCode.Error, reason);
            }
        }
    }

    /// <summary>Ends the running phase and the connection's span.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_ended)
            {
                return;
            }

            _ended = true;
            EndPhase();
            _signIn?.Dispose();
            _root?.Dispose();
        }
    }

    private void EndPhase()
    {
        if (_phaseName is null)
        {
            return;
        }

        GatewayTelemetry.PhaseDuration.Record(_time.GetElapsedTime(_phaseStarted).TotalSeconds, new KeyValuePair<string, object?>("gatehouse.phase", _phaseName));
        _phase?.Dispose();
        _phase = null;
        _phaseName = null;
    }
}
