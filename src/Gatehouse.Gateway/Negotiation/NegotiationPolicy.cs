using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Negotiation;

/// <summary>What the gateway answers to an X.224 Connection Request, and why (the reason goes to the sign-in log).</summary>
public sealed record NegotiationDecision
{
    private NegotiationDecision(NegotiationResult result, SignInMethods method, string? refusal)
    {
        Result = result;
        Method = method;
        Refusal = refusal;
    }

    /// <summary>The RDP_NEG_RSP or RDP_NEG_FAILURE to send in the Connection Confirm.</summary>
    public NegotiationResult Result { get; }

    /// <summary>The sign-in method that follows, or <see cref="SignInMethods.None"/> when refused.</summary>
    public SignInMethods Method { get; }

    /// <summary>Why the connection is refused, in words for the sign-in log; null when accepted.</summary>
    public string? Refusal { get; }

    /// <summary>True when the connection is refused.</summary>
    public bool IsRefused => Refusal is not null;

    internal static NegotiationDecision Select(SecurityProtocol protocol, SignInMethods method) =>
        new(NegotiationResult.Response(protocol, NegotiationResponseFlags.ExtendedClientDataSupported), method, null);

    internal static NegotiationDecision Refuse(NegotiationFailureCode code, string reason) =>
        new(NegotiationResult.Failure(code), SignInMethods.None, reason);
}

/// <summary>
/// Chooses the security protocol for a client leg ([MS-RDPBCGR] 3.3.5.3.2): RDS AAD Auth when the client offers it
/// and web-account sign-in is on, then HYBRID_EX, HYBRID, then TLS, each only when its sign-in method is enabled.
/// Clients that require restricted admin mode or Remote Credential Guard are refused: both hand the client's own
/// credentials to the host, which a gateway that logs on with accounts of its own cannot honour.
/// </summary>
public static class NegotiationPolicy
{
    /// <summary>Decides the answer to <paramref name="request"/> given the enabled <paramref name="methods"/>.</summary>
    public static NegotiationDecision Decide(ConnectionRequest request, SignInMethods methods)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Negotiation is not { } negotiation)
        {
            return NegotiationDecision.Refuse(
                NegotiationFailureCode.SslRequiredByServer,
                "The client offered only standard RDP security, which the gateway does not accept; use a client that supports TLS (any current RDP client).");
        }

        if ((negotiation.Flags & NegotiationRequestFlags.RestrictedAdminModeRequired) != 0)
        {
            return NegotiationDecision.Refuse(
                NegotiationFailureCode.SslNotAllowedByServer,
                "The client requires restricted admin mode, which the gateway does not support; turn it off (mstsc without /restrictedAdmin, FreeRDP without /restricted-admin).");
        }

        if ((negotiation.Flags & NegotiationRequestFlags.RedirectedAuthenticationModeRequired) != 0)
        {
            return NegotiationDecision.Refuse(
                NegotiationFailureCode.SslNotAllowedByServer,
                "The client requires Remote Credential Guard, which the gateway does not support; turn it off (mstsc without /remoteGuard).");
        }

        var offered = negotiation.RequestedProtocols;
        if (methods.HasFlag(SignInMethods.WebAccount) && offered.HasFlag(SecurityProtocol.RdsAad))
        {
            return NegotiationDecision.Select(SecurityProtocol.RdsAad, SignInMethods.WebAccount);
        }

        if (methods.HasFlag(SignInMethods.Nla) && offered.HasFlag(SecurityProtocol.HybridEx))
        {
            return NegotiationDecision.Select(SecurityProtocol.HybridEx, SignInMethods.Nla);
        }

        if (methods.HasFlag(SignInMethods.Nla) && offered.HasFlag(SecurityProtocol.Hybrid))
        {
            return NegotiationDecision.Select(SecurityProtocol.Hybrid, SignInMethods.Nla);
        }

        if ((methods & (SignInMethods.Tls | SignInMethods.QrSignIn)) != 0 && offered.HasFlag(SecurityProtocol.Ssl))
        {
            // Both are TLS sign-ins: the password, or the QR sign-in, is proven after the handshake.
            return NegotiationDecision.Select(SecurityProtocol.Ssl, SignInMethods.Tls);
        }

        return Unmatched(offered, methods);
    }

    private static NegotiationDecision Unmatched(SecurityProtocol offered, SignInMethods methods)
    {
        var enabled = Describe(methods);
        var reason = $"The client offered {DescribeOffer(offered)} but the gateway accepts only {enabled}.";
        if (offered.HasFlag(SecurityProtocol.RdsAad))
        {
            reason += " Web account sign-in is turned off on this gateway (Gatehouse:Gateway:SignInMethods).";
        }
        else if (methods.HasFlag(SignInMethods.WebAccount))
        {
            reason += " Sign in with a web account: FreeRDP /sec:aad, or mstsc with \"Use a web account to sign in to the remote computer\".";
        }

        if (offered.HasFlag(SecurityProtocol.Ssl) && !offered.HasFlag(SecurityProtocol.Hybrid) && !offered.HasFlag(SecurityProtocol.RdsAad) && (methods & (SignInMethods.Tls | SignInMethods.QrSignIn)) == 0)
        {
            reason += methods.HasFlag(SignInMethods.Nla)
                ? " TLS with a password (FreeRDP /sec:tls) is turned off on this gateway: use NLA (FreeRDP /sec:nla, mstsc's default), or an administrator adds Tls to Gatehouse:Gateway:SignInMethods."
                : " TLS with a password (FreeRDP /sec:tls) is turned off on this gateway; an administrator can add Tls (or Nla) to Gatehouse:Gateway:SignInMethods.";
        }

        // The failure code steers the client: HYBRID_REQUIRED when NLA would work, SSL_REQUIRED when it offered
        // nothing secure at all, otherwise SSL_NOT_ALLOWED (the client's protocols are all refused).
        var code = methods.HasFlag(SignInMethods.Nla) && !offered.HasFlag(SecurityProtocol.Hybrid)
            ? NegotiationFailureCode.HybridRequiredByServer
            : offered == SecurityProtocol.Rdp
                ? NegotiationFailureCode.SslRequiredByServer
                : NegotiationFailureCode.SslNotAllowedByServer;
        return NegotiationDecision.Refuse(code, reason);
    }

    private static string Describe(SignInMethods methods)
    {
        var parts = new List<string>();
        if (methods.HasFlag(SignInMethods.WebAccount))
        {
            parts.Add("web account sign-in (RDS AAD Auth)");
        }

        if (methods.HasFlag(SignInMethods.Nla))
        {
            parts.Add("NLA");
        }

        if (methods.HasFlag(SignInMethods.Tls))
        {
            parts.Add("TLS with a password");
        }

        if (methods.HasFlag(SignInMethods.QrSignIn))
        {
            parts.Add("TLS with the QR sign-in");
        }

        return parts.Count == 0 ? "nothing (every sign-in method is turned off)" : string.Join(" or ", parts);
    }

    private static string DescribeOffer(SecurityProtocol offered) =>
        offered == SecurityProtocol.Rdp ? "standard RDP security only" : $"protocols {offered}";
}
