using System.Buffers;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Captures;

public sealed class CapturedX224Tests
{
    [Fact]
    public void ConnectionRequest_FreeRdpTls_RoundTrips()
    {
        var bytes = Captured.FreeRdpToXrdp("c2s-000-x224-connection-request.bin");
        Assert.True(ConnectionRequest.TryParse(bytes, out var request, out var error), error?.ToString());
        Assert.Equal("rdpuser", request.TokenValue);
        Assert.Equal(SecurityProtocol.Ssl, request.RequestedProtocols);
        var buffer = new ArrayBufferWriter<byte>();
        request.Write(buffer);
        Assert.Equal(bytes, buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void ConnectionConfirm_Xrdp_SelectsSsl()
    {
        var bytes = Captured.FreeRdpToXrdp("s2c-000-x224-connection-confirm.bin");
        Assert.True(ConnectionConfirm.TryParse(bytes, out var confirm, out var error), error?.ToString());
        Assert.Equal(SecurityProtocol.Ssl, confirm.Result!.Value.SelectedProtocol);
        Assert.Equal(NegotiationResponseFlags.ExtendedClientDataSupported, confirm.Result.Value.ResponseFlags);
        var buffer = new ArrayBufferWriter<byte>();
        confirm.Write(buffer);
        Assert.Equal(bytes, buffer.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData("c2s-001-mcs-connect-initial.bin")]
    [InlineData("c2s-010-client-info.bin")]
    [InlineData("s2c-001-mcs-connect-response.bin")]
    public void TpktFrames_AreXDataFrames(string file)
    {
        var bytes = Captured.FreeRdpToXrdp(file);
        Assert.True(X224Tpdu.TryClassify(bytes, out var kind, out _));
        Assert.Equal(X224TpduKind.Data, kind);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.Done, Tpkt.TryReadFrame(ref reader, out var frame, out _));
        Assert.Equal(bytes.Length, frame.Length);
    }
}
