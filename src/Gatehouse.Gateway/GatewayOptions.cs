namespace Gatehouse.Gateway;

/// <summary>The sign-in methods the gateway offers on its client leg.</summary>
[Flags]
public enum SignInMethods
{
    /// <summary>Nothing: every connection is refused.</summary>
    None = 0,

    /// <summary>RDS AAD Auth ("use a web account to sign in", PROTOCOL_RDSAAD).</summary>
    WebAccount = 1,

    /// <summary>NLA: CredSSP with a password (PROTOCOL_HYBRID / HYBRID_EX).</summary>
    Nla = 2,

    /// <summary>TLS with the password in the Client Info PDU (PROTOCOL_SSL); off by default.</summary>
    Tls = 4,

    /// <summary>
    /// TLS with no password: the hold screen shows a QR code and a short code, the user signs in on a phone (the
    /// device-code page, with whatever the policies ask) and the client is handed over (PROTOCOL_SSL); off by default.
    /// Needs the hold screen (<c>Gatehouse:Gateway:HoldScreen:Enabled</c>).
    /// </summary>
    QrSignIn = 8,
}

/// <summary>
/// Limits of the RDP listener (configuration section <c>Gatehouse:Gateway</c>). Every limit before authentication is
/// small, because anyone can open a connection; the wait for the assertion is long because the user is signing in in
/// a browser meanwhile.
/// </summary>
public sealed class GatewayOptions
{
    /// <summary>The sign-in methods offered.</summary>
    public SignInMethods SignInMethods { get; set; } = SignInMethods.WebAccount;

    /// <summary>
    /// What accepts the RDP port's connections: the gateway's own accept loop (<see cref="RdpListenerKind.Socket"/>, the
    /// default: the client leg's TLS runs straight on the socket) or a Kestrel endpoint (<see cref="RdpListenerKind.Kestrel"/>).
    /// </summary>
    public RdpListenerKind Listener { get; set; } = RdpListenerKind.Socket;

    /// <summary>
    /// When the node stops (SIGTERM): how long live sessions are kept while the node takes no new connections, before
    /// those still open are ended with <c>node_draining</c>. The host's shutdown timeout is raised to cover it.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time for the optional preconnection PDU and the X.224 Connection Request.</summary>
    public TimeSpan NegotiationTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time for the TLS handshake.</summary>
    public TimeSpan TlsHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Time from the server nonce to the client's assertion (the user signs in meanwhile).</summary>
    public TimeSpan AssertionTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Time for each CredSSP message from the client under NLA (the client has its credentials before it connects).</summary>
    public TimeSpan CredSspTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Time for the gateway's decision once the client has sent its credentials or assertion (the directory, the
    /// authorisation, the host leg), and, separately, for writing the sign-in log entry: neither is cut short by the
    /// client leaving, so every decision is logged; a decision that takes longer is refused as <c>decision_timeout</c>.
    /// </summary>
    public TimeSpan SignInDecisionTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// TLS sign-in: time from the end of the TLS handshake to the client's Client Info PDU (the host leg is open
    /// meanwhile, so it is short; the client has its password before it connects).
    /// </summary>
    public TimeSpan ClientInfoTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>TLS sign-in: largest Client Info PDU accepted (a real one is well under 2 KiB).</summary>
    public int MaxClientInfoBytes { get; set; } = 8 * 1024;

    /// <summary>
    /// TLS sign-in: most host legs one host may have open for clients that have not yet proven a password (the MCS
    /// phase is relayed before the Client Info PDU), so unauthenticated clients cannot exhaust a host's connections.
    /// </summary>
    public int MaxUnauthenticatedHostLegsPerHost { get; set; } = 8;

    /// <summary>Largest RDS AAD Auth request accepted.</summary>
    public int MaxAssertionBytes { get; set; } = 64 * 1024;

    /// <summary>Connections that have not authenticated yet, over all addresses.</summary>
    public int MaxPendingConnections { get; set; } = 512;

    /// <summary>Connections that have not authenticated yet, per client address.</summary>
    public int MaxPendingConnectionsPerAddress { get; set; } = 16;

    /// <summary>Time to reach the backend host and finish its TLS handshake.</summary>
    public TimeSpan BackendConnectTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Bytes read per direction of a relay before the gateway waits for the other side to take them (4 KiB–4 MiB): the
    /// gateway holds at most this much per direction, so a slow reader stops it reading from the sender.
    /// </summary>
    public int RelayBufferBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// The identity provider's JWKS URL (<c>https://&lt;idp&gt;/common/discovery/v2.0/keys</c>) for a gateway node that
    /// runs apart from the IdP and cannot read its signing keys; empty: the keys of this node's own store.
    /// </summary>
    public string? JwksUrl { get; set; }

    /// <summary>SHA-256 (hex) of the IdP's TLS certificate, pinned when fetching <see cref="JwksUrl"/>; empty: system trust.</summary>
    public string? JwksCertificateSha256 { get; set; }

    /// <summary>How often live sessions are authorised again (roles, user state, Conditional Access); zero turns it off.</summary>
    public TimeSpan ReevaluationInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary><c>Gatehouse:Gateway:HoldScreen:*</c>: the screens the gateway paints inside the RDP window.</summary>
    public Hold.HoldScreenOptions HoldScreen { get; set; } = new();
}

/// <summary>What accepts the RDP port's connections (<see cref="GatewayOptions.Listener"/>).</summary>
public enum RdpListenerKind
{
    /// <summary>The gateway's own accept loop (<see cref="Transport.RdpSocketListener"/>): TLS on the socket's stream.</summary>
    Socket,

    /// <summary>A Kestrel endpoint: TLS on a stream over Kestrel's connection pipes (the listener before December 2026).</summary>
    Kestrel,
}
