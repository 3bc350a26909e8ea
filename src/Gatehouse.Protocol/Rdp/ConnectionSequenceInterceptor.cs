using System.Buffers.Binary;
using System.Security.Cryptography;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Rdp;

/// <summary>Which way a PDU of the connection sequence travels through the gateway.</summary>
public enum ConnectionSequenceDirection
{
    /// <summary>From the client to the host.</summary>
    ClientToHost,

    /// <summary>From the host to the client.</summary>
    HostToClient,
}

/// <summary>What the gateway does with one PDU of the connection sequence.</summary>
public enum ConnectionSequenceAction
{
    /// <summary>Send it on unchanged.</summary>
    Forward,

    /// <summary>Send <see cref="ConnectionSequenceVerdict.Bytes"/> instead (the PDU with the fields the gateway sets).</summary>
    Rewrite,

    /// <summary>Keep it back: the TLS sign-in reads the password from the Client Info PDU and decides first.</summary>
    Hold,

    /// <summary>Send nothing and end the connection, for <see cref="ConnectionSequenceVerdict.Refusal"/>.</summary>
    Refuse,
}

/// <summary>Why the connection sequence was refused (each edge words it for its own log).</summary>
public enum ConnectionSequenceRefusal
{
    /// <summary>Not refused.</summary>
    None,

    /// <summary>The client's first PDU is not an MCS Connect Initial (fast path, not X.224 Data, or malformed).</summary>
    NotConnectInitial,

    /// <summary>The client's MCS Connect Initial parses but its serverSelectedProtocol cannot be set.</summary>
    ConnectInitialNotRewritable,

    /// <summary>The host's first PDU is not an MCS Connect Response whose clientRequestedProtocols can be set.</summary>
    NotConnectResponse,

    /// <summary>Sign-in rules: a client PDU before the Client Info PDU is not a non-empty X.224 Data PDU.</summary>
    MalformedPdu,

    /// <summary>Sign-in rules: a Send Data Request other than the Client Info PDU came before it (standard RDP security).</summary>
    SendDataBeforeClientInfo,

    /// <summary>Sign-in rules: an MCS PDU that has no place before the Client Info PDU.</summary>
    UnexpectedMcsPdu,

    /// <summary>Sign-in rules: more than <see cref="ConnectionSequenceOptions.MaxClientPdus"/> client PDUs without a Client Info PDU.</summary>
    TooManyPdus,

    /// <summary>The Client Info PDU cannot take the injected account.</summary>
    ClientInfoNotRewritable,

    /// <summary>The host sent a Server Redirection PDU: a gateway session cannot be redirected.</summary>
    ServerRedirection,

    /// <summary>Sign-in rules: the client sent a Disconnect Provider Ultimatum before its Client Info PDU (it is leaving).</summary>
    ClientDisconnected,
}

/// <summary>The account the gateway injects into the Client Info PDU.</summary>
/// <param name="Domain">The domain (may be empty).</param>
/// <param name="UserName">The user name.</param>
/// <param name="Password">The password.</param>
public sealed record ConnectionSequenceAccount(string Domain, string UserName, string Password)
{
    /// <summary>Never prints the password.</summary>
    public override string ToString() => string.IsNullOrEmpty(Domain) ? UserName : $"{Domain}\\{UserName}";
}

/// <summary>What the interceptor needs to know about the two legs.</summary>
public sealed record ConnectionSequenceOptions
{
    /// <summary>The protocols the client asked for in its X.224 request (restored in the server core data).</summary>
    public required SecurityProtocol ClientRequestedProtocols { get; init; }

    /// <summary>The protocol the host selected on the gateway's leg (set in the client core data).</summary>
    public required SecurityProtocol HostSelectedProtocol { get; init; }

    /// <summary>The account injected into the Client Info PDU; null: the Client Info PDU is held (<see cref="ConnectionSequenceAction.Hold"/>).</summary>
    public ConnectionSequenceAccount? Account { get; init; }

    /// <summary>
    /// The TLS sign-in's rules for the MCS phase: the Connect Initial must parse whole, and before the Client Info PDU
    /// only Erect Domain, Attach User, Channel Join and a Disconnect Provider Ultimatum may come, at most
    /// <see cref="MaxClientPdus"/> of them. Off (the session relay), every client PDU before the Client Info is forwarded.
    /// </summary>
    public bool SignInRules { get; init; }

    /// <summary>With <see cref="SignInRules"/>: most client PDUs before the Client Info PDU (the Connect Initial included).</summary>
    public int MaxClientPdus { get; init; } = 40;

    /// <summary>
    /// True when the MCS Connect exchange and the Client Info PDU already passed (the TLS sign-in relayed them): the
    /// client's direction is over, and the host's is watched for Server Redirection until the Demand Active PDU.
    /// </summary>
    public bool ClientInfoRelayed { get; init; }
}

/// <summary>The interceptor's answer for one PDU.</summary>
/// <param name="Action">What to do with the PDU.</param>
/// <param name="Bytes">What to send for Forward and Rewrite (the PDU itself for Forward, and for Hold the held PDU); null for Refuse.</param>
/// <param name="Refusal">Why, for Refuse.</param>
/// <param name="Error">The parse error behind a refusal, when there is one.</param>
/// <param name="AwaitsAnswer">True for a client PDU the host answers with exactly one PDU (Connect Initial, Attach User, Channel Join).</param>
/// <param name="HoldsSecret">True when <paramref name="Bytes"/> hold a password: wipe them once sent.</param>
public readonly record struct ConnectionSequenceVerdict(
    ConnectionSequenceAction Action,
    byte[]? Bytes,
    ConnectionSequenceRefusal Refusal,
    PduError? Error,
    bool AwaitsAnswer,
    bool HoldsSecret)
{
    internal static ConnectionSequenceVerdict Forward(byte[] bytes, bool awaitsAnswer = false) =>
        new(ConnectionSequenceAction.Forward, bytes, ConnectionSequenceRefusal.None, null, awaitsAnswer, false);

    internal static ConnectionSequenceVerdict Refuse(ConnectionSequenceRefusal refusal, PduError? error) =>
        new(ConnectionSequenceAction.Refuse, null, refusal, error, false, false);
}

/// <summary>
/// The one place that decides, PDU by PDU, what the gateway does with the connection sequence ([MS-RDPBCGR] 1.3.1.1)
/// in both directions, for the session relay and the TLS sign-in alike. Client to host: the MCS Connect Initial gets
/// serverSelectedProtocol = what the host selected; the Client Info PDU gets the injected account (the client's buffer,
/// which may hold the client's password, is wiped) or is held; with <see cref="ConnectionSequenceOptions.SignInRules"/>
/// the MCS phase is checked PDU by PDU. Host to client: the MCS Connect Response gets clientRequestedProtocols = what the
/// client asked for, and a Server Redirection PDU is refused. A direction is over (<see cref="ClientDone"/>,
/// <see cref="HostDone"/>) once the Client Info PDU has passed, and once the Demand Active PDU (or the first fast-path
/// PDU) came from the host; from then on every PDU of it is forwarded, and the caller may copy bytes without framing.
/// Sans-IO: frames in, verdicts out; it never throws for what a peer sends.
/// </summary>
public sealed class ConnectionSequenceInterceptor
{
    private const string McsDomainPdu = "MCS domain PDU";

    private readonly ConnectionSequenceOptions _options;
    private ConnectionSequenceVerdict? _refused;

    /// <summary>Starts at the client's MCS Connect Initial and the host's MCS Connect Response (or after them, see <see cref="ConnectionSequenceOptions.ClientInfoRelayed"/>).</summary>
    public ConnectionSequenceInterceptor(ConnectionSequenceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        if (options.ClientInfoRelayed)
        {
            ClientDone = true;
            McsConnected = true;
        }
    }

    /// <summary>True once the Client Info PDU has passed (rewritten or held) from the client.</summary>
    public bool ClientDone { get; private set; }

    /// <summary>True once the host sent the Demand Active PDU or its first fast-path PDU.</summary>
    public bool HostDone { get; private set; }

    /// <summary>True when both directions are over: the rest is a plain byte pump.</summary>
    public bool IsComplete => ClientDone && HostDone;

    /// <summary>True once a PDU was refused (every later PDU is refused the same way).</summary>
    public bool IsRefused => _refused is not null;

    /// <summary>Client PDUs seen so far.</summary>
    public int ClientPdus { get; private set; }

    /// <summary>True once the host's MCS Connect Response went to the client (the client then understands MCS PDUs).</summary>
    public bool McsConnected { get; private set; }

    /// <summary>
    /// With <see cref="ConnectionSequenceOptions.SignInRules"/>: the client's Connect Initial carries client core data
    /// announcing RNS_UD_CS_SUPPORT_ERRINFO_PDU.
    /// </summary>
    public bool ErrorInfoAnnounced { get; private set; }

    /// <summary>
    /// With <see cref="ConnectionSequenceOptions.SignInRules"/>: the client has sent its allowance of PDUs without the
    /// Client Info PDU, so there is no point in reading another.
    /// </summary>
    public bool ClientPduLimitReached => _options.SignInRules && !ClientDone && ClientPdus >= _options.MaxClientPdus;

    /// <summary>
    /// Decides what happens to one whole frame (TPKT or fast path, as <see cref="RdpFraming"/> reads them). The frame
    /// may be changed in place (the MCS patches) or wiped (a rewritten Client Info PDU): the caller sends
    /// <see cref="ConnectionSequenceVerdict.Bytes"/>, never the frame it passed in.
    /// </summary>
    public ConnectionSequenceVerdict Intercept(ConnectionSequenceDirection direction, byte[] frame, RdpFrameKind kind)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (_refused is { } refused)
        {
            return refused;
        }

        var verdict = direction == ConnectionSequenceDirection.ClientToHost ? FromClient(frame, kind) : FromHost(frame, kind);
        if (verdict.Action == ConnectionSequenceAction.Refuse)
        {
            _refused = verdict;
        }

        return verdict;
    }

    private ConnectionSequenceVerdict FromClient(byte[] frame, RdpFrameKind kind)
    {
        if (ClientDone)
        {
            return ConnectionSequenceVerdict.Forward(frame);
        }

        var index = ClientPdus;
        if (_options.SignInRules && index >= _options.MaxClientPdus)
        {
            return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.TooManyPdus, null);
        }

        ClientPdus = index + 1;
        if (index == 0)
        {
            return ConnectInitial(frame, kind);
        }

        var slowPath = kind == RdpFrameKind.SlowPath;
        if (!_options.SignInRules)
        {
            // The relay forwards everything until the Client Info PDU.
            return slowPath && X224Data.TryUnwrapFrame(frame, out var mcs, out _) && IsClientInfo(mcs)
                ? ClientInfo(frame)
                : ConnectionSequenceVerdict.Forward(frame);
        }

        if (!slowPath)
        {
            return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.MalformedPdu, PduError.Unexpected(RdpFrameName, "kind", "a fast-path PDU before the Client Info PDU"));
        }

        if (!X224Data.TryUnwrapFrame(frame, out var payload, out var error) || payload.IsEmpty)
        {
            return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.MalformedPdu, error);
        }

        var type = (DomainMcsPduType)(payload[0] >> 2);
        switch (type)
        {
            case DomainMcsPduType.ErectDomainRequest:
                return ConnectionSequenceVerdict.Forward(frame);
            case DomainMcsPduType.AttachUserRequest or DomainMcsPduType.ChannelJoinRequest:
                return ConnectionSequenceVerdict.Forward(frame, awaitsAnswer: true);
            case DomainMcsPduType.SendDataRequest when IsClientInfo(payload):
                return ClientInfo(frame);
            case DomainMcsPduType.SendDataRequest:
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.SendDataBeforeClientInfo, null);
            case DomainMcsPduType.DisconnectProviderUltimatum:
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.ClientDisconnected, null);
            default:
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.UnexpectedMcsPdu, PduError.Unexpected(McsDomainPdu, "type", $"MCS {type} is not expected before the Client Info PDU"));
        }
    }

    private const string RdpFrameName = "RDP frame";

    private ConnectionSequenceVerdict ConnectInitial(byte[] frame, RdpFrameKind kind)
    {
        if (kind != RdpFrameKind.SlowPath)
        {
            return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.NotConnectInitial, null);
        }

        if (!X224Data.TryUnwrapFrame(frame, out var payload, out var error))
        {
            return ConnectionSequenceVerdict.Refuse(_options.SignInRules ? ConnectionSequenceRefusal.MalformedPdu : ConnectionSequenceRefusal.NotConnectInitial, error);
        }

        if (_options.SignInRules)
        {
            if (payload.IsEmpty)
            {
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.MalformedPdu, null);
            }

            if (!McsConnectInitial.TryParse(payload, out var initial, out error))
            {
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.NotConnectInitial, error);
            }

            ErrorInfoAnnounced = initial.Find(GccBlockType.ClientCore) is not null
                && ((initial.Core.EarlyCapabilityFlags ?? 0) & ServerRefusal.SupportErrorInfoPdu) != 0;
        }

        if (!McsConnectPatch.TrySetServerSelectedProtocol(frame.AsSpan(X224Data.FrameOverhead), _options.HostSelectedProtocol, out error))
        {
            return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.ConnectInitialNotRewritable, error);
        }

        return new(ConnectionSequenceAction.Rewrite, frame, ConnectionSequenceRefusal.None, null, AwaitsAnswer: true, HoldsSecret: false);
    }

    private ConnectionSequenceVerdict ClientInfo(byte[] frame)
    {
        if (_options.Account is not { } account)
        {
            ClientDone = true;
            return new(ConnectionSequenceAction.Hold, frame, ConnectionSequenceRefusal.None, null, AwaitsAnswer: false, HoldsSecret: true);
        }

        var credentials = new ClientInfoCredentials(account.Domain, account.UserName, account.Password);
        byte[] rewritten;
        try
        {
            if (!ClientInfoRewriter.TryGetRewrittenSize(frame, credentials, out var size, out var error))
            {
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.ClientInfoNotRewritable, error);
            }

            // The same plan as the size, so this writes exactly size bytes and cannot refuse.
            rewritten = new byte[size];
            _ = ClientInfoRewriter.TryRewrite(frame, credentials, rewritten, out _, out _);
        }
        finally
        {
            // The client's own Client Info PDU may carry the client's password: it goes no further.
            CryptographicOperations.ZeroMemory(frame);
        }

        ClientDone = true;
        return new(ConnectionSequenceAction.Rewrite, rewritten, ConnectionSequenceRefusal.None, null, AwaitsAnswer: false, HoldsSecret: true);
    }

    private ConnectionSequenceVerdict FromHost(byte[] frame, RdpFrameKind kind)
    {
        if (HostDone)
        {
            return ConnectionSequenceVerdict.Forward(frame);
        }

        if (!McsConnected)
        {
            PduError? error = null;
            if (kind != RdpFrameKind.SlowPath
                || !X224Data.TryUnwrapFrame(frame, out _, out error)
                || !McsConnectPatch.TrySetClientRequestedProtocols(frame.AsSpan(X224Data.FrameOverhead), _options.ClientRequestedProtocols, out error))
            {
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.NotConnectResponse, error);
            }

            McsConnected = true;
            return new(ConnectionSequenceAction.Rewrite, frame, ConnectionSequenceRefusal.None, null, AwaitsAnswer: false, HoldsSecret: false);
        }

        if (kind == RdpFrameKind.FastPath)
        {
            // Fast-path output starts only once the session runs.
            HostDone = true;
            return ConnectionSequenceVerdict.Forward(frame);
        }

        if (X224Data.TryUnwrapFrame(frame, out var mcs, out _) && McsSendData.TryParseIndication(mcs, out _, out var userData, out _))
        {
            if (ServerRedirection.IsRedirection(userData))
            {
                return ConnectionSequenceVerdict.Refuse(ConnectionSequenceRefusal.ServerRedirection, null);
            }

            if (ShareControlHeader.TryParse(userData, out var header, out _) && header.Type == ShareControlPduType.DemandActive)
            {
                // Redirection comes before the Demand Active PDU, never after it.
                HostDone = true;
            }
        }

        return ConnectionSequenceVerdict.Forward(frame);
    }

    /// <summary>True when an MCS PDU is a Send Data Request whose basic security header has SEC_INFO_PKT.</summary>
    public static bool IsClientInfo(ReadOnlySpan<byte> mcs) =>
        McsSendData.TryParseRequest(mcs, out _, out var userData, out _) && userData.Length >= ClientInfoPdu.SecurityHeaderSize
        && ((BasicSecurityFlags)BinaryPrimitives.ReadUInt16LittleEndian(userData) & BasicSecurityFlags.InfoPkt) != 0;
}
