namespace Gatehouse.Gateway.Diagnostics;

/// <summary>
/// The logging event ids of the RDP gateway library, one per <c>[LoggerMessage]</c>, unique across the product: a
/// range per area (1xx connection handler, 2xx web account, 3xx NLA, 4xx TLS, 5xx backend, 6xx sessions and relay, 7xx the RDP listener).
/// The executable's ids start at 1000 (<c>Gatehouse.Diagnostics.ServerEventIds</c>), so no two collide.
/// </summary>
internal static class EventIds
{
    // 1xx: RdpConnectionHandler, the session driver (admission, negotiation, TLS, the sign-in decision and its entry).
    public const int AdmissionRefused = 101;
    public const int NegotiationRefused = 102;
    public const int PhaseTimedOut = 103;
    public const int MalformedNegotiation = 104;
    public const int TlsEstablished = 105;
    public const int NoAuthenticator = 106;
    public const int SignInFailed = 107;
    public const int ClosedByClient = 108;
    public const int TransportError = 109;
    public const int PreconnectionPdu = 110;
    public const int SignInUnfinished = 111;
    public const int SignedIn = 112;
    public const int SignInRefused = 113;
    public const int RoutingTokenRefused = 114;
    public const int HandoverUserMismatch = 115;
    public const int HoldEnded = 116;
    public const int StoreUnavailable = 117;

    // 2xx: web account (RDSAAD) sign-in; none of its own (the driver logs every decision).

    // 3xx: NLA (CredSSP) sign-in; none of its own.

    // 4xx: TLS sign-in (password in the Client Info PDU).
    public const int TlsErrorInfoUnannounced = 403;

    // 5xx: backend (host leg); no messages yet.

    // 6xx: sessions and relay.
    public const int SessionStartRecordFailed = 601;
    public const int SessionEndRecordFailed = 602;
    public const int SessionEnded = 603;

    // 7xx: the RDP listener's own accept loop (RdpSocketListener).
    public const int ListenerConnectionLimit = 701;
    public const int ListenerAcceptFailed = 702;
    public const int ListenerConnectionFailed = 703;
    public const int ListenerStopped = 704;
}
