using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.X224;

public sealed class ConnectionRequestTests
{
    [Fact]
    public void TryParse_SpecExample_ReadsCookieAndNegotiation()
    {
        Assert.True(ConnectionRequest.TryParse(X224Corpus.SpecConnectionRequest, out var request, out var error), error?.ToString());
        Assert.Equal(ConnectionRequestTokenKind.Cookie, request.TokenKind);
        Assert.Equal("eltons", request.TokenValue);
        Assert.Equal(new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.Rdp), request.Negotiation);
        Assert.Null(request.Correlation);
        Assert.Equal(0, request.SourceReference);
    }

    [Fact]
    public void TryParse_FreeRdpAad_AsksForRdsAadOnly()
    {
        Assert.True(ConnectionRequest.TryParse(X224Corpus.FreeRdpAadConnectionRequest, out var request, out _));
        Assert.Equal("root", request.TokenValue);
        Assert.Equal(SecurityProtocol.RdsAad, request.RequestedProtocols);
    }

    [Fact]
    public void TryParse_RoutingTokenAndCorrelation_ReadsBoth()
    {
        Assert.True(ConnectionRequest.TryParse(X224Corpus.RoutingTokenWithCorrelation, out var request, out var error), error?.ToString());
        Assert.Equal(ConnectionRequestTokenKind.RoutingToken, request.TokenKind);
        Assert.Equal("vm1", request.TokenValue);
        Assert.Equal(SecurityProtocol.Ssl | SecurityProtocol.Hybrid | SecurityProtocol.HybridEx, request.RequestedProtocols);
        Assert.NotNull(request.Correlation);
        Assert.Equal(Hex.Bytes("01 02 03 04 05 06 07 08 09 0a 0b 0c 0e 0f 10 11"), request.Correlation.CorrelationId.ToArray());
    }

    [Fact]
    public void TryParse_NoTokenNoNegotiation_IsStandardRdp()
    {
        var bytes = Hex.Bytes("03 00 00 0b 06 e0 00 00 00 00 00");
        Assert.True(ConnectionRequest.TryParse(bytes, out var request, out _));
        Assert.Equal(ConnectionRequestTokenKind.None, request.TokenKind);
        Assert.Null(request.TokenValue);
        Assert.Null(request.Negotiation);
        Assert.Equal(SecurityProtocol.Rdp, request.RequestedProtocols);
        Assert.Equal(bytes, Write(request));
    }

    [Theory]
    [MemberData(nameof(ValidVectors))]
    public void Write_ParsedVector_IsByteExact(string name, byte[] bytes)
    {
        Assert.True(ConnectionRequest.TryParse(bytes, out var request, out var error), $"{name}: {error}");
        Assert.Equal(bytes.Length, request.Size);
        Assert.Equal(bytes, Write(request));
    }

    public static TheoryData<string, byte[]> ValidVectors() => new()
    {
        { "spec 4.1.1", X224Corpus.SpecConnectionRequest },
        { "freerdp aad", X224Corpus.FreeRdpAadConnectionRequest },
        { "routing token + correlation", X224Corpus.RoutingTokenWithCorrelation },
    };

    [Fact]
    public void Constructor_BuildsTheFreeRdpBytes()
    {
        var request = new ConnectionRequest(
            tokenKind: ConnectionRequestTokenKind.Cookie,
            tokenValue: "root",
            negotiation: new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.RdsAad));
        Assert.Equal(X224Corpus.FreeRdpAadConnectionRequest, Write(request));
    }

    [Fact]
    public void Constructor_CorrelationWithoutFlag_Throws()
    {
        var correlation = new CorrelationInfo(new byte[16]);
        Assert.Throws<ArgumentException>(() => new ConnectionRequest(
            negotiation: new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.Ssl), correlation: correlation));
        Assert.Throws<ArgumentException>(() => new ConnectionRequest(
            negotiation: new NegotiationRequest(NegotiationRequestFlags.CorrelationInfoPresent, SecurityProtocol.Ssl)));
    }

    [Theory]
    [InlineData("bad\r\nvalue")]
    [InlineData("nul\0")]
    [InlineData("é")]
    public void Constructor_UnsafeToken_Throws(string value) =>
        Assert.Throws<ArgumentException>(() => new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.Cookie, tokenValue: value));

    [Fact]
    public void Constructor_TooLongToken_Throws() =>
        Assert.Throws<ArgumentException>(() => new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.Cookie, tokenValue: new string('a', 300)));

    [Fact]
    public void Constructor_ValueWithoutKind_Throws() =>
        Assert.Throws<ArgumentException>(() => new ConnectionRequest(tokenValue: "x"));

    [Fact]
    public void WithNegotiation_RemovesRdsAadForTheTarget()
    {
        Assert.True(ConnectionRequest.TryParse(X224Corpus.RoutingTokenWithCorrelation, out var request, out _));
        var target = request.WithNegotiation(new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.Ssl));
        Assert.Null(target.Correlation);
        Assert.True(ConnectionRequest.TryParse(Write(target), out var again, out _));
        Assert.Equal(SecurityProtocol.Ssl, again.RequestedProtocols);
        Assert.Equal("vm1", again.TokenValue);
        Assert.Contains("Ssl", again.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void CorrelationInfo_WrongLength_Throws() => Assert.Throws<ArgumentException>(() => new CorrelationInfo(new byte[15]));

    [Fact]
    public void CorrelationInfo_AsGuid_UsesTheBytes() =>
        Assert.Equal(new Guid(new byte[16]), new CorrelationInfo(new byte[16]).AsGuid);

    internal static byte[] Write(ConnectionRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>();
        request.Write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
