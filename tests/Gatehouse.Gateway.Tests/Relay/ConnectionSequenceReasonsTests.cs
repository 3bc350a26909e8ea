using Gatehouse.Gateway.Relay;
using Gatehouse.Protocol;
using Gatehouse.Protocol.Rdp;

namespace Gatehouse.Gateway.Tests.Relay;

/// <summary>The words each edge uses for a refused connection sequence (the sign-in log's prefixes are what operators search for).</summary>
public sealed class ConnectionSequenceReasonsTests
{
    private static readonly PduError Error = new(PduErrorKind.InvalidField, "MCS Connect Initial", "length", "too short");

    private static ConnectionSequenceVerdict Refused(ConnectionSequenceRefusal refusal, PduError? error = null) =>
        new(ConnectionSequenceAction.Refuse, null, refusal, error, false, false);

    [Theory]
    [InlineData(ConnectionSequenceRefusal.MalformedPdu, "malformed_connection_sequence: MCS Connect Initial: length: too short")]
    [InlineData(ConnectionSequenceRefusal.NotConnectInitial, "malformed_connection_sequence: the first PDU after TLS is not a usable MCS Connect Initial: MCS Connect Initial: length: too short")]
    [InlineData(ConnectionSequenceRefusal.ConnectInitialNotRewritable, "malformed_connection_sequence: the MCS Connect Initial cannot be rewritten: MCS Connect Initial: length: too short")]
    [InlineData(ConnectionSequenceRefusal.NotConnectResponse, "host_protocol: the host's answer is not a usable MCS Connect Response: MCS Connect Initial: length: too short")]
    [InlineData(ConnectionSequenceRefusal.SendDataBeforeClientInfo, "malformed_connection_sequence: a Send Data Request other than the Client Info PDU came before it (standard RDP security is not supported)")]
    [InlineData(ConnectionSequenceRefusal.UnexpectedMcsPdu, "malformed_connection_sequence: too short")]
    [InlineData(ConnectionSequenceRefusal.TooManyPdus, "malformed_connection_sequence: more than 40 PDUs without a Client Info PDU")]
    [InlineData(ConnectionSequenceRefusal.ServerRedirection, "host_protocol: the host sent a Server Redirection PDU; a gateway session cannot be redirected (check the host's load-balancing or connection broker)")]
    [InlineData(ConnectionSequenceRefusal.ClientInfoNotRewritable, "malformed_connection_sequence: the connection sequence was refused (ClientInfoNotRewritable): MCS Connect Initial: length: too short")]
    public void ForSignIn_NamesTheRefusal(ConnectionSequenceRefusal refusal, string expected)
    {
        Assert.Equal(expected, ConnectionSequenceReasons.ForSignIn(Refused(refusal, Error), 40));
    }

    [Fact]
    public void ForSignIn_EmptyDataPdu_AndAClientThatLeaves()
    {
        Assert.Equal("malformed_connection_sequence: an empty X.224 Data PDU", ConnectionSequenceReasons.ForSignIn(Refused(ConnectionSequenceRefusal.MalformedPdu), 40));
        Assert.Null(ConnectionSequenceReasons.ForSignIn(Refused(ConnectionSequenceRefusal.ClientDisconnected), 40));
    }

    [Theory]
    [InlineData(ConnectionSequenceRefusal.ServerRedirection, RelayEnd.RedirectionRefused, "the host sent a Server Redirection PDU")]
    [InlineData(ConnectionSequenceRefusal.NotConnectInitial, RelayEnd.ProtocolError, "the client's first PDU is not a usable MCS Connect Initial: fast-path PDU")]
    [InlineData(ConnectionSequenceRefusal.ConnectInitialNotRewritable, RelayEnd.ProtocolError, "the client's first PDU is not a usable MCS Connect Initial: fast-path PDU")]
    [InlineData(ConnectionSequenceRefusal.NotConnectResponse, RelayEnd.ProtocolError, "the host's first PDU is not a usable MCS Connect Response: fast-path PDU")]
    [InlineData(ConnectionSequenceRefusal.ClientInfoNotRewritable, RelayEnd.ProtocolError, "the client's Client Info PDU cannot be rewritten")]
    [InlineData(ConnectionSequenceRefusal.TooManyPdus, RelayEnd.ProtocolError, "the connection sequence was refused (TooManyPdus)")]
    public void ForRelay_NamesTheEnd(ConnectionSequenceRefusal refusal, RelayEnd end, string reason)
    {
        var (actualEnd, actualReason) = ConnectionSequenceReasons.ForRelay(Refused(refusal));
        Assert.Equal(end, actualEnd);
        Assert.StartsWith(reason, actualReason, StringComparison.Ordinal);
    }
}
