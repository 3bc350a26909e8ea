using Gatehouse.Protocol.Rdp;

namespace Gatehouse.Gateway.Relay;

/// <summary>
/// The words for a refused connection sequence (<see cref="ConnectionSequenceInterceptor"/>), one table per place that
/// reports it: the session relay's outcome and the TLS sign-in's log reason.
/// </summary>
internal static class ConnectionSequenceReasons
{
    /// <summary>What the sign-in log says when the host tries to redirect the client.</summary>
    public const string Redirection = "the host sent a Server Redirection PDU; a gateway session cannot be redirected (check the host's load-balancing or connection broker)";

    /// <summary>The session relay's end and reason.</summary>
    public static (RelayEnd End, string Reason) ForRelay(ConnectionSequenceVerdict verdict) => verdict.Refusal switch
    {
        ConnectionSequenceRefusal.ServerRedirection => (RelayEnd.RedirectionRefused, Redirection),
        ConnectionSequenceRefusal.NotConnectInitial or ConnectionSequenceRefusal.ConnectInitialNotRewritable =>
            (RelayEnd.ProtocolError, $"the client's first PDU is not a usable MCS Connect Initial: {verdict.Error?.ToString() ?? "fast-path PDU"}"),
        ConnectionSequenceRefusal.NotConnectResponse =>
            (RelayEnd.ProtocolError, $"the host's first PDU is not a usable MCS Connect Response: {verdict.Error?.ToString() ?? "fast-path PDU"}"),
        ConnectionSequenceRefusal.ClientInfoNotRewritable => (RelayEnd.ProtocolError, $"the client's Client Info PDU cannot be rewritten: {verdict.Error}"),
        _ => (RelayEnd.ProtocolError, $"the connection sequence was refused ({verdict.Refusal}){Detail(verdict)}"),
    };

    /// <summary>The TLS sign-in's log reason for a refusal in the MCS phase (null for a client that is leaving).</summary>
    public static string? ForSignIn(ConnectionSequenceVerdict verdict, int maxPdus) => verdict.Refusal switch
    {
        ConnectionSequenceRefusal.ClientDisconnected => null,
        ConnectionSequenceRefusal.MalformedPdu => $"malformed_connection_sequence: {verdict.Error?.ToString() ?? "an empty X.224 Data PDU"}",
        ConnectionSequenceRefusal.NotConnectInitial => $"malformed_connection_sequence: the first PDU after TLS is not a usable MCS Connect Initial: {verdict.Error}",
        ConnectionSequenceRefusal.ConnectInitialNotRewritable => $"malformed_connection_sequence: the MCS Connect Initial cannot be rewritten: {verdict.Error}",
        ConnectionSequenceRefusal.NotConnectResponse => $"host_protocol: the host's answer is not a usable MCS Connect Response: {verdict.Error?.ToString() ?? "fast-path PDU"}",
        ConnectionSequenceRefusal.SendDataBeforeClientInfo => "malformed_connection_sequence: a Send Data Request other than the Client Info PDU came before it (standard RDP security is not supported)",
        ConnectionSequenceRefusal.UnexpectedMcsPdu => $"malformed_connection_sequence: {verdict.Error?.Reason ?? "an MCS PDU that is not expected before the Client Info PDU"}",
        ConnectionSequenceRefusal.TooManyPdus => TooManyPdus(maxPdus),
        ConnectionSequenceRefusal.ServerRedirection => $"host_protocol: {Redirection}",
        _ => $"malformed_connection_sequence: the connection sequence was refused ({verdict.Refusal}){Detail(verdict)}",
    };

    /// <summary>The TLS sign-in's reason when the client sent its allowance of PDUs without a Client Info PDU.</summary>
    public static string TooManyPdus(int maxPdus) => $"malformed_connection_sequence: more than {maxPdus} PDUs without a Client Info PDU";

    private static string Detail(ConnectionSequenceVerdict verdict) => verdict.Error is null ? string.Empty : $": {verdict.Error}";
}
