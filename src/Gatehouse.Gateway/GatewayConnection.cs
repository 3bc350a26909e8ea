using System.Net;
using Gatehouse.Gateway.Negotiation;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway;

/// <summary>What the gateway knows about one client connection as it moves through the phases.</summary>
public sealed class GatewayConnection
{
    private int _signInLogged;

    internal GatewayConnection(string id, IPAddress remoteAddress, DateTimeOffset acceptedAt)
    {
        Id = id;
        RemoteAddress = remoteAddress;
        AcceptedAt = acceptedAt;
    }

    /// <summary>Kestrel's connection id, also the correlation id in the logs.</summary>
    public string Id { get; }

    /// <summary>The client's address.</summary>
    public IPAddress RemoteAddress { get; }

    /// <summary>When the TCP connection was accepted.</summary>
    public DateTimeOffset AcceptedAt { get; }

    /// <summary>The client's preconnection PDU, when it sent one.</summary>
    public Gatehouse.Protocol.Preconnection.PreconnectionPdu? Preconnection { get; internal set; }

    /// <summary>The client's X.224 Connection Request, once read.</summary>
    public ConnectionRequest? ConnectionRequest { get; internal set; }

    /// <summary>What the gateway answered, once decided.</summary>
    public NegotiationDecision? Negotiation { get; internal set; }

    /// <summary>What the client leg's TLS established (server name, the key the client saw), once it is up.</summary>
    public SignIn.TlsFacts? Tls { get; internal set; }

    /// <summary>The hold screen's handover this connection continues (its routing token was honoured), if any.</summary>
    public Hold.HandoverGrant? Handover { get; internal set; }

    /// <summary>True once this connection's sign-in log entry is written (there is at most one).</summary>
    public bool SignInLogged => Volatile.Read(ref _signInLogged) != 0;

    /// <summary>Claims the connection's one sign-in log entry: true the first time only.</summary>
    internal bool TryClaimSignInLog() => Interlocked.Exchange(ref _signInLogged, 1) == 0;
}
