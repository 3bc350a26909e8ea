using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.X224;

public sealed class ConnectionConfirmTests
{
    [Fact]
    public void TryParse_Hybrid_SelectsHybrid()
    {
        Assert.True(ConnectionConfirm.TryParse(X224Corpus.ConfirmHybrid, out var confirm, out _));
        Assert.Equal(0x1234, confirm.SourceReference);
        Assert.NotNull(confirm.Result);
        Assert.False(confirm.Result.Value.IsFailure);
        Assert.Equal(SecurityProtocol.Hybrid, confirm.Result.Value.SelectedProtocol);
        Assert.Contains("Hybrid", confirm.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_Windows7Flags_KeepsFlags()
    {
        Assert.True(ConnectionConfirm.TryParse(X224Corpus.ConfirmWindows7, out var confirm, out _));
        Assert.Equal(
            NegotiationResponseFlags.ExtendedClientDataSupported | NegotiationResponseFlags.RestrictedAdminModeSupported,
            confirm.Result!.Value.ResponseFlags);
    }

    [Fact]
    public void TryParse_Failure_ReadsTheCode()
    {
        Assert.True(ConnectionConfirm.TryParse(X224Corpus.ConfirmFailure, out var confirm, out _));
        Assert.True(confirm.Result!.Value.IsFailure);
        Assert.Equal(NegotiationFailureCode.SslNotAllowedByServer, confirm.Result.Value.FailureCode);
        Assert.Contains("failure", confirm.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_NoNegotiationData_HasNoResult()
    {
        Assert.True(ConnectionConfirm.TryParse(X224Corpus.ConfirmNoNegotiation, out var confirm, out _));
        Assert.Null(confirm.Result);
        Assert.Contains("no negotiation", confirm.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Write_ParsedVector_IsByteExact(byte[] bytes)
    {
        Assert.True(ConnectionConfirm.TryParse(bytes, out var confirm, out _));
        Assert.Equal(bytes, Write(confirm));
    }

    public static TheoryData<byte[]> Vectors() =>
        [X224Corpus.ConfirmHybrid, X224Corpus.ConfirmWindows7, X224Corpus.ConfirmFailure, X224Corpus.ConfirmNoNegotiation];

    [Fact]
    public void Write_RdsAadResponse_IsWhatFreeRdpExpects()
    {
        var confirm = new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.RdsAad, NegotiationResponseFlags.ExtendedClientDataSupported));
        Assert.Equal(Hex.Bytes("03 00 00 13 0e d0 00 00 12 34 00 02 01 08 00 10 00 00 00"), Write(confirm));
    }

    [Fact]
    public void Write_Failure_HasZeroFlags()
    {
        var confirm = new ConnectionConfirm(NegotiationResult.Failure(NegotiationFailureCode.HybridRequiredByServer));
        Assert.Equal(Hex.Bytes("03 00 00 13 0e d0 00 00 12 34 00 03 00 08 00 05 00 00 00"), Write(confirm));
    }

    [Fact]
    public void DisconnectRequest_RoundTrips()
    {
        Assert.True(DisconnectRequest.TryParse(X224Corpus.Disconnect, out var dr, out _));
        Assert.Equal(0, dr.Reason);
        Assert.True(dr.VariablePart.IsEmpty);
        var buffer = new ArrayBufferWriter<byte>();
        dr.Write(buffer);
        Assert.Equal(X224Corpus.Disconnect, buffer.WrittenSpan.ToArray());

        var built = new DisconnectRequest(0, 0x1234, 1);
        buffer.Clear();
        built.Write(buffer);
        Assert.True(DisconnectRequest.TryParse(buffer.WrittenSpan, out var again, out _));
        Assert.Equal(1, again.Reason);
        Assert.Equal(0x1234, again.SourceReference);
        Assert.Equal(0, again.DestinationReference);
    }

    private static byte[] Write(ConnectionConfirm confirm)
    {
        var buffer = new ArrayBufferWriter<byte>();
        confirm.Write(buffer);
        Assert.Equal(confirm.Size, buffer.WrittenCount);
        return buffer.WrittenSpan.ToArray();
    }
}
