using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.FastPath;

/// <summary>The one frame reader's sans-IO core: <see cref="RdpFraming.Inspect"/> and the capped <see cref="RdpFraming.TryReadFrame(ref SequenceReader{byte}, int, bool, out ReadOnlySequence{byte})"/>.</summary>
public sealed class RdpFrameInspectTests
{
    private static readonly byte[] Tpkt = X224Corpus.SpecConnectionRequest;

    [Fact]
    public void Inspect_WholeTpkt_IsDoneWithItsLength()
    {
        var result = RdpFraming.Inspect(new ReadOnlySequence<byte>(Tpkt), 1024, acceptFastPath: false);
        Assert.Equal(new RdpFrameResult(OperationStatus.Done, RdpFrameKind.SlowPath, Tpkt.Length, Tpkt.Length, null), result);
    }

    [Fact]
    public void Inspect_EveryTpktPrefix_AsksForTheHeaderThenTheFrame()
    {
        for (var length = 0; length < Tpkt.Length; length++)
        {
            var result = RdpFraming.Inspect(new ReadOnlySequence<byte>(Tpkt, 0, length), 1024);
            Assert.Equal(OperationStatus.NeedMoreData, result.Status);
            Assert.Null(result.Error);
            Assert.Equal(length == 0 ? 1 : length < TpktHeader.Size ? TpktHeader.Size : Tpkt.Length, result.BytesNeeded);
        }
    }

    [Fact]
    public void Inspect_FastPathWithOneLengthByte_NeedsTwoHeaderBytes()
    {
        var bytes = FramingCorpus.FastPathShort; // 04 06 ...: the 1-byte length form, 6 bytes
        Assert.Equal(1, RdpFraming.Inspect(ReadOnlySequence<byte>.Empty, 64).BytesNeeded);
        Assert.Equal(2, RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes, 0, 1), 64).BytesNeeded);
        var partial = RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes, 0, 2), 64);
        Assert.Equal((OperationStatus.NeedMoreData, RdpFrameKind.FastPath, 6, 6), (partial.Status, partial.Kind, partial.Length, partial.BytesNeeded));
        var done = RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes), 64);
        Assert.Equal((OperationStatus.Done, RdpFrameKind.FastPath, 6), (done.Status, done.Kind, done.Length));
    }

    [Fact]
    public void Inspect_FastPathWithTwoLengthBytes_NeedsThreeHeaderBytes()
    {
        var bytes = FramingCorpus.FastPathInput; // 0c 80 08 ...: the 2-byte length form, 8 bytes
        Assert.Equal(2, RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes, 0, 1), 64).BytesNeeded);
        Assert.Equal(3, RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes, 0, 2), 64).BytesNeeded);
        Assert.Equal(8, RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes, 0, 3), 64).BytesNeeded);
        var done = RdpFraming.Inspect(new ReadOnlySequence<byte>(bytes), 64);
        Assert.Equal((OperationStatus.Done, RdpFrameKind.FastPath, 8), (done.Status, done.Kind, done.Length));
    }

    [Fact]
    public void TryReadFrame_TwoFramesInOneBuffer_ReadsOneAtATime()
    {
        byte[] both = [.. Tpkt, .. FramingCorpus.FastPathInput];
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(both));
        var first = RdpFraming.TryReadFrame(ref reader, 1024, acceptFastPath: true, out var frame);
        Assert.Equal(OperationStatus.Done, first.Status);
        Assert.Equal(Tpkt, frame.ToArray());
        Assert.Equal(Tpkt.Length, reader.Consumed);
        var second = RdpFraming.TryReadFrame(ref reader, 1024, acceptFastPath: true, out frame);
        Assert.Equal((OperationStatus.Done, RdpFrameKind.FastPath), (second.Status, second.Kind));
        Assert.Equal(FramingCorpus.FastPathInput, frame.ToArray());
        Assert.Equal(OperationStatus.NeedMoreData, RdpFraming.TryReadFrame(ref reader, 1024, acceptFastPath: true, out _).Status);
        Assert.Equal(both.Length, reader.Consumed);
    }

    [Fact]
    public void TryReadFrame_SplitAtEveryOffset_ReadsTheFrameAndNothingBehindIt()
    {
        byte[] bytes = [.. Tpkt, 0x16, 0x03, 0x01]; // a TLS ClientHello starts behind the request
        for (var split = 1; split < bytes.Length; split++)
        {
            var reader = new SequenceReader<byte>(Malformed.Segmented(bytes, split));
            var result = RdpFraming.TryReadFrame(ref reader, 1024, acceptFastPath: false, out var frame);
            Assert.Equal(OperationStatus.Done, result.Status);
            Assert.Equal(Tpkt, frame.ToArray());
            Assert.Equal(Tpkt.Length, reader.Consumed);
        }
    }

    [Fact]
    public void Inspect_TpktOnly_RefusesAnotherFirstByteAtOnce()
    {
        var result = RdpFraming.Inspect(new ReadOnlySequence<byte>([0x04]), 1024, acceptFastPath: false);
        Assert.Equal(OperationStatus.InvalidData, result.Status);
        Assert.Equal(PduErrorKind.UnexpectedMessageType, result.Error!.Kind);
        Assert.Equal("TPKT: version: got 4, expected 3", result.Error.ToString());
    }

    [Fact]
    public void Inspect_FirstByteOfNeitherFraming_IsRefused()
    {
        var result = RdpFraming.Inspect(new ReadOnlySequence<byte>([0x05, 0x06]), 1024);
        Assert.Equal(OperationStatus.InvalidData, result.Status);
        Assert.Equal(PduErrorKind.UnexpectedMessageType, result.Error!.Kind);
        Assert.StartsWith("RDP frame: first byte: 0x05", result.Error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("03 00 00 03", "TPKT")]          // TPKT length shorter than its 4-byte header
    [InlineData("04 01", "fast-path header")]   // fast-path length 1, shorter than its 2-byte header
    [InlineData("04 80 02", "fast-path header")] // 2-byte form, length 2, shorter than its 3-byte header
    public void Inspect_LengthShorterThanTheHeader_IsRefused(string hex, string pdu)
    {
        var result = RdpFraming.Inspect(new ReadOnlySequence<byte>(Hex.Bytes(hex)), 1024);
        Assert.Equal(OperationStatus.InvalidData, result.Status);
        Assert.Equal(PduErrorKind.InvalidField, result.Error!.Kind);
        Assert.Equal(pdu, result.Error.Pdu);
    }

    [Theory]
    [InlineData("03 00 04 01", 1025, RdpFrameKind.SlowPath)]
    [InlineData("03 00 ff ff", 65535, RdpFrameKind.SlowPath)]
    [InlineData("04 84 01", 1025, RdpFrameKind.FastPath)]
    public void Inspect_FrameOverTheCap_IsRefusedFromItsHeaderAlone(string hex, int length, RdpFrameKind kind)
    {
        var result = RdpFraming.Inspect(new ReadOnlySequence<byte>(Hex.Bytes(hex)), 1024);
        Assert.Equal(OperationStatus.InvalidData, result.Status);
        Assert.Equal(kind, result.Kind);
        Assert.Equal(length, result.Length);
        Assert.Equal(PduErrorKind.TooLarge, result.Error!.Kind);
        Assert.Contains("exceeds the limit of 1024", result.Error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Inspect_FrameOfExactlyTheCap_IsAccepted()
    {
        var frame = new byte[1024];
        frame[0] = 3;
        frame[2] = 0x04; // length 0x0400
        Assert.Equal(OperationStatus.Done, RdpFraming.Inspect(new ReadOnlySequence<byte>(frame), 1024).Status);
        Assert.Equal(OperationStatus.InvalidData, RdpFraming.Inspect(new ReadOnlySequence<byte>(frame), 1023).Status);
    }

    [Fact]
    public void Inspect_CapBelowAHeader_IsAProgrammingError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpFraming.Inspect(new ReadOnlySequence<byte>(Tpkt), 3));
    }

    [Fact]
    public void TryReadFrame_Refused_ConsumesNothing()
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Hex.Bytes("03 00 ff ff")));
        Assert.Equal(OperationStatus.InvalidData, RdpFraming.TryReadFrame(ref reader, 1024, acceptFastPath: true, out _).Status);
        Assert.Equal(0, reader.Consumed);
    }
}
