using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Tests.Captures;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.FastPath;

public sealed class FastPathTests
{
    [Theory]
    [InlineData("c2s-017-fastpath-input.bin", 8, 3)]
    [InlineData("c2s-018-fastpath-input.bin", 10, 1)]
    [InlineData("s2c-016-fastpath-update.bin", 7, 0)]
    [InlineData("s2c-018-fastpath-update.bin", 186, 0)]
    public void CapturedFrames_HaveTheirLengthInTheHeader(string file, int length, int events)
    {
        var bytes = Captured.FreeRdpToXrdp(file);
        Assert.True(FastPathHeader.TryClassify(bytes[0], out var kind));
        Assert.Equal(RdpFrameKind.FastPath, kind);
        Assert.True(FastPathHeader.TryParse(bytes, out var header, out var error), error?.ToString());
        Assert.Equal(length, header.Length);
        Assert.Equal(bytes.Length, header.Length);
        Assert.Equal(events, header.EventCount);
        Assert.Equal(0, header.SecurityFlags);
        Assert.True(header.LongLengthForm);                 // FreeRDP and xrdp use the 2-byte form even for short PDUs
        var written = new byte[3];
        Assert.Equal(3, header.WriteTo(written));
        Assert.Equal(bytes[..3], written);
    }

    [Fact]
    public void ShortForm_RoundTrips()
    {
        Assert.True(FastPathHeader.TryParse(FramingCorpus.FastPathShort, out var header, out _));
        Assert.False(header.LongLengthForm);
        Assert.Equal(6, header.Length);
        Assert.Equal(2, header.HeaderSize);
        var written = new byte[2];
        Assert.Equal(2, header.WriteTo(written));
        Assert.Equal(FramingCorpus.FastPathShort[..2], written);
    }

    [Theory]
    [InlineData(0x03, true, RdpFrameKind.SlowPath)]
    [InlineData(0x00, true, RdpFrameKind.FastPath)]
    [InlineData(0xC4, true, RdpFrameKind.FastPath)]
    [InlineData(0x01, false, RdpFrameKind.FastPath)]
    [InlineData(0x02, false, RdpFrameKind.FastPath)]
    [InlineData(0x07, false, RdpFrameKind.FastPath)]
    public void Classify_FromTheFirstByte(byte first, bool known, RdpFrameKind kind)
    {
        Assert.Equal(known, FastPathHeader.TryClassify(first, out var actual));
        if (known)
        {
            Assert.Equal(kind, actual);
        }
    }

    [Fact]
    public void Framing_MixedStream_SplitAnywhere_YieldsEachPdu()
    {
        byte[][] pdus = [FramingCorpus.FastPathInput, Captured.FreeRdpToXrdp("c2s-021-share-data.bin"), FramingCorpus.FastPathShort, Captured.FreeRdpToXrdp("s2c-018-fastpath-update.bin")];
        byte[] stream = [.. pdus.SelectMany(p => p)];
        for (var split = 1; split < stream.Length; split += 3)
        {
            var reader = new SequenceReader<byte>(Malformed.Segmented(stream, split));
            foreach (var expected in pdus)
            {
                Assert.Equal(OperationStatus.Done, RdpFraming.TryReadFrame(ref reader, out var frame, out var kind, out var error));
                Assert.Null(error);
                Assert.Equal(expected, frame.ToArray());
                Assert.Equal(expected[0] == 0x03 ? RdpFrameKind.SlowPath : RdpFrameKind.FastPath, kind);
            }

            Assert.Equal(OperationStatus.NeedMoreData, RdpFraming.TryReadFrame(ref reader, out _, out _, out _));
        }
    }

    [Fact]
    public void Framing_PartialPdus_NeedMoreData()
    {
        var stream = Captured.FreeRdpToXrdp("s2c-018-fastpath-update.bin");
        for (var length = 0; length < stream.Length; length++)
        {
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(stream[..length]));
            Assert.Equal(OperationStatus.NeedMoreData, RdpFraming.TryReadFrame(ref reader, out _, out _, out _));
            Assert.Equal(0, reader.Consumed);
        }
    }

    [Theory]
    [InlineData("01 05 00 00 00")]   // action 1
    [InlineData("04 01")]            // length 1 < header 2
    [InlineData("04 00")]            // length 0
    [InlineData("04 80 02")]         // long form length 2 < header 3
    [InlineData("04 80 00")]         // long form length 0
    public void Framing_ImpossibleHeaders_AreInvalidData(string hex)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Hex.Bytes(hex)));
        Assert.Equal(OperationStatus.InvalidData, RdpFraming.TryReadFrame(ref reader, out _, out _, out var error));
        Assert.NotNull(error);
        Assert.Equal(0, reader.Consumed);
    }

    public static TheoryData<string, string, PduErrorKind> MalformedHeaders() => new()
    {
        { "empty", "", PduErrorKind.NotEnoughBytes },
        { "one byte", "04", PduErrorKind.NotEnoughBytes },
        { "long form without second byte", "04 80", PduErrorKind.NotEnoughBytes },
        { "slow path byte", "03 00 00 07", PduErrorKind.UnexpectedMessageType },
        { "action 2", "02 05", PduErrorKind.UnexpectedMessageType },
        { "length 1", "04 01", PduErrorKind.InvalidField },
        { "long length 2", "04 80 02", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void Header_Malformed_IsRefused(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<FastPathHeader>(FastPathHeader.TryParse, Hex.Bytes(hex), kind);
    }

    [Fact]
    public void WriteTo_LengthThatDoesNotFit_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => new FastPathHeader(0, 0x80, false).WriteTo(new byte[3]));
        Assert.Throws<InvalidOperationException>(() => new FastPathHeader(0, 0x8000, true).WriteTo(new byte[3]));
        Assert.Throws<InvalidOperationException>(() => new FastPathHeader(0, 2, true).WriteTo(new byte[3]));
    }
}
