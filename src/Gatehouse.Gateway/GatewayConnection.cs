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

    /// <summary>The relayed session, once the sign-in opened one.</summary>
    public Sessions.LiveSession? Session { get; set; }

    /// <summary>True once this connection's sign-in log entry is written (there is at most one).</summary>
    public bool SignInLogged => Volatile.Read(ref _signInLogged) != 0;

    /// <summary>
    /// Set by the sign-in method once the client has named a user: the entry for the sign-in log if the attempt ends
    /// without a decision (the client leaves, the gateway fails), given the reason. The connection handler writes it.
    /// </summary>
    internal Func<string, Sessions.GatewaySignInEvent>? UnfinishedSignIn { get; set; }

    /// <summary>Claims the connection's one sign-in log entry: true the first time only.</summary>
    internal bool TryClaimSignInLog() => Interlocked.Exchange(ref _signInLogged, 1) == 0;
}

/// <summary>How a client-leg sign-in ended.</summary>
public sealed record ClientAuthenticationResult(bool Succeeded, string? FailureReason)
{
    /// <summary>A successful sign-in.</summary>
    public static ClientAuthenticationResult Success { get; } = new(true, null);

    /// <summary>A refused sign-in with the reason for the log.</summary>
    public static ClientAuthenticationResult Failure(string reason) => new(false, reason);
}

/// <summary>
/// The sign-in on the client leg after TLS, one implementation per <see cref="SignInMethods"/> value (RDS AAD Auth
/// for web-account sign-in, CredSSP for NLA, the Client Info PDU for TLS). It runs inside the TLS stream and owns
/// the answer it sends to the client.
/// </summary>
public interface IClientAuthenticator
{
    /// <summary>The method this authenticator implements.</summary>
    SignInMethods Method { get; }

    /// <summary>Authenticates the client over <paramref name="tls"/>.</summary>
    Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken);
}
