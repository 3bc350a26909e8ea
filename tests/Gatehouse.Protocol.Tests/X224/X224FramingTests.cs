using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.X224;

public sealed class X224FramingTests
{
    [Fact]
    public void TryReadFrame_SplitAtEveryOffset_ReadsTheWholeFrame()
    {
        var bytes = X224Corpus.SpecConnectionRequest;
        for (var split = 1; split < bytes.Length; split++)
        {
            var reader = new SequenceReader<byte>(Malformed.Segmented(bytes, split));
            Assert.Equal(OperationStatus.Done, Tpkt.TryReadFrame(ref reader, out var frame, out var error));
            Assert.Null(error);
            Assert.Equal(bytes, frame.ToArray());
            Assert.Equal(bytes.Length, reader.Consumed);
        }
    }

    [Fact]
    public void TryReadFrame_EveryPrefix_AsksForMoreAndConsumesNothing()
    {
        var bytes = X224Corpus.SpecConnectionRequest;
        for (var length = 0; length < bytes.Length; length++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes, 0, length));
            Assert.Equal(OperationStatus.NeedMoreData, Tpkt.TryReadFrame(ref reader, out _, out var error));
            Assert.Null(error);
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Fact]
    public void TryReadFrame_TlsClientHelloBehindTheRequest_IsLeftUnread()
    {
        // The STYLE.md deadlock: bytes behind the frame must stay in the reader.
        var clientHello = Hex.Bytes("16 03 01 00 05 01 00 00 01 00");
        var input = X224Corpus.FreeRdpAadConnectionRequest.Concat(clientHello).ToArray();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
        Assert.Equal(OperationStatus.Done, Tpkt.TryReadFrame(ref reader, out var frame, out _));
        Assert.Equal(X224Corpus.FreeRdpAadConnectionRequest.Length, frame.Length);
        Assert.Equal(clientHello, reader.UnreadSequence.ToArray());
    }

    [Theory]
    [InlineData("16")]
    [InlineData("16 03 01 02 00")]
    [InlineData("03 00 00 02")]
    public void TryReadFrame_NotTpkt_IsInvalid(string hex)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Hex.Bytes(hex)));
        Assert.Equal(OperationStatus.InvalidData, Tpkt.TryReadFrame(ref reader, out _, out var error));
        Assert.NotNull(error);
        Assert.Equal(0, reader.Consumed);
    }

    [Fact]
    public void WriteHeader_OutOfRange_Throws()
    {
        var span = new byte[4];
        Assert.Throws<ArgumentOutOfRangeException>(() => Tpkt.WriteHeader(span, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tpkt.WriteHeader(span, 65536));
    }

    [Fact]
    public void X224Data_WriteFrameHeader_RoundTrips()
    {
        var frame = new byte[9];
        X224Data.WriteFrameHeader(frame, frame.Length);
        frame[7] = 0x04;
        frame[8] = 0x01;
        Assert.Equal(Hex.Bytes("03 00 00 09 02 f0 80 04 01"), frame);
        Assert.True(X224Data.TryUnwrapFrame(frame, out var userData, out _));
        Assert.Equal(new byte[] { 4, 1 }, userData.ToArray());
        Assert.True(X224Tpdu.TryClassify(frame, out var kind, out _));
        Assert.Equal(X224TpduKind.Data, kind);
    }

    [Theory]
    [MemberData(nameof(Classified))]
    public void X224Tpdu_Classifies(byte[] frame, X224TpduKind expected)
    {
        Assert.True(X224Tpdu.TryClassify(frame, out var kind, out var error), error?.ToString());
        Assert.Equal(expected, kind);
    }

    public static TheoryData<byte[], X224TpduKind> Classified() => new()
    {
        { X224Corpus.SpecConnectionRequest, X224TpduKind.ConnectionRequest },
        { X224Corpus.ConfirmHybrid, X224TpduKind.ConnectionConfirm },
        { X224Corpus.Disconnect, X224TpduKind.DisconnectRequest },
    };
}
