using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Preconnection;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Preconnection;

public sealed class PreconnectionTests
{
    [Fact]
    public void V1_ParsesAndWritesByteExact()
    {
        Assert.True(PreconnectionPdu.TryParse(FramingCorpus.PreconnectionV1, out var pdu, out var error), error?.ToString());
        Assert.Equal(1u, pdu.Version);
        Assert.Equal(42u, pdu.Id);
        Assert.Null(pdu.Payload);
        Assert.Equal(FramingCorpus.PreconnectionV1, Write(pdu));
        Assert.Equal(FramingCorpus.PreconnectionV1, Write(new PreconnectionPdu(42)));
    }

    [Fact]
    public void V2_CountsCodeUnitsIncludingTheTerminator()
    {
        Assert.True(PreconnectionPdu.TryParse(FramingCorpus.PreconnectionV2, out var pdu, out var error), error?.ToString());
        Assert.Equal(2u, pdu.Version);
        Assert.Equal("vm1:", pdu.Payload);
        Assert.Equal(5, pdu.CharacterCount);
        Assert.Equal(28, pdu.Size);
        Assert.Equal(FramingCorpus.PreconnectionV2, Write(new PreconnectionPdu(0, "vm1:")));
    }

    [Fact]
    public void V2_SurrogatePairs_CountAsTwoCodeUnits()
    {
        var pdu = new PreconnectionPdu(7, "vm\U0001F600");
        Assert.Equal(5, pdu.CharacterCount);                    // v, m, two surrogates, NUL
        Assert.Equal(18 + 10, pdu.Size);
        Assert.True(PreconnectionPdu.TryParse(Write(pdu), out var parsed, out _));
        Assert.Equal("vm\U0001F600", parsed.Payload);
    }

    [Fact]
    public void V2_EmptyPayload_IsJustTheTerminator()
    {
        var bytes = Write(new PreconnectionPdu(1, string.Empty));
        Assert.Equal(20, bytes.Length);
        Assert.True(PreconnectionPdu.TryParse(bytes, out var parsed, out _));
        Assert.Equal(string.Empty, parsed.Payload);
    }

    [Fact]
    public void V2_CchPcbZero_HasNoStringAtAll()
    {
        // [MS-RDPEPS] 3.1.5.2: cbSize 18, cchPCB 0, no wszPCB.
        byte[] bytes = [.. Hex.Bytes("12000000 00000000 02000000 07000000 0000")];
        Assert.True(PreconnectionPdu.TryParse(bytes, out var pdu, out var error), error?.ToString());
        Assert.Equal(string.Empty, pdu.Payload);
        Assert.Equal(0, pdu.CharacterCount);
        Assert.Equal(7u, pdu.Id);
        Assert.Equal(bytes, Write(pdu));
    }

    [Theory]
    [InlineData("with\0nul")]
    public void Constructor_BadPayload_Throws(string payload) =>
        Assert.Throws<ArgumentException>(() => new PreconnectionPdu(1, payload));

    [Fact]
    public void StreamFraming_ReadsOnlyCbSizeBytes_AndLeavesTheX224Request()
    {
        byte[] stream = [.. FramingCorpus.PreconnectionV2, .. X224Corpus.FreeRdpAadConnectionRequest];
        Assert.True(PreconnectionPdu.StartsPreconnection(stream[0]));
        Assert.False(PreconnectionPdu.StartsPreconnection(X224Corpus.FreeRdpAadConnectionRequest[0]));
        for (var split = 1; split < stream.Length; split++)
        {
            var reader = new SequenceReader<byte>(Malformed.Segmented(stream, split));
            Assert.Equal(OperationStatus.Done, PreconnectionPdu.TryReadFrame(ref reader, PreconnectionPdu.DefaultMaxSize, out var frame, out _));
            Assert.Equal(FramingCorpus.PreconnectionV2, frame.ToArray());
            Assert.Equal(X224Corpus.FreeRdpAadConnectionRequest.Length, reader.Remaining);
        }

        for (var length = 0; length < FramingCorpus.PreconnectionV2.Length; length++)
        {
            var partial = new SequenceReader<byte>(new ReadOnlySequence<byte>(FramingCorpus.PreconnectionV2[..length]));
            Assert.Equal(OperationStatus.NeedMoreData, PreconnectionPdu.TryReadFrame(ref partial, PreconnectionPdu.DefaultMaxSize, out _, out _));
            Assert.Equal(0, partial.Consumed);
        }
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(15u)]
    [InlineData(17u)]
    [InlineData(19u)]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(16u * 1024 + 2)]
    public void StreamFraming_ImpossibleSize_IsInvalidData(uint size)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, size);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.InvalidData, PreconnectionPdu.TryReadFrame(ref reader, PreconnectionPdu.DefaultMaxSize, out _, out var error));
        Assert.NotNull(error);
        Assert.Equal(0, reader.Consumed);
    }

    [Fact]
    public void EveryTruncation_IsRefused()
    {
        Malformed.RejectsEveryTruncation<PreconnectionPdu>(PreconnectionPdu.TryParse, FramingCorpus.PreconnectionV1);
        Malformed.RejectsEveryTruncation<PreconnectionPdu>(PreconnectionPdu.TryParse, FramingCorpus.PreconnectionV2);
    }

    public static TheoryData<string, byte[], PduErrorKind> MalformedCases() => new()
    {
        { "cbSize 0", Patch32(FramingCorpus.PreconnectionV1, 0, 0), PduErrorKind.InvalidField },
        { "cbSize 15", Patch32(FramingCorpus.PreconnectionV1, 0, 15), PduErrorKind.InvalidField },
        { "cbSize 17", [.. Patch32(FramingCorpus.PreconnectionV1, 0, 17), 0], PduErrorKind.InvalidField },
        { "cbSize 4 GiB", Patch32(FramingCorpus.PreconnectionV1, 0, uint.MaxValue), PduErrorKind.TooLarge },
        { "cbSize larger than the data", Patch32(FramingCorpus.PreconnectionV1, 0, 18), PduErrorKind.NotEnoughBytes },
        { "cbSize smaller than the data", [.. FramingCorpus.PreconnectionV1, 0, 0], PduErrorKind.InvalidField },
        { "V1 with V2 size", [.. Patch32(FramingCorpus.PreconnectionV1, 0, 18), 0, 0], PduErrorKind.InvalidField },
        { "version 0", Patch32(FramingCorpus.PreconnectionV1, 8, 0), PduErrorKind.Unsupported },
        { "version 3", Patch32(FramingCorpus.PreconnectionV1, 8, 3), PduErrorKind.Unsupported },
        { "cchPCB 0 with a string behind it", Patch16(FramingCorpus.PreconnectionV2, 16, 0), PduErrorKind.InvalidField },
        { "cchPCB too large", Patch16(FramingCorpus.PreconnectionV2, 16, 6), PduErrorKind.InvalidField },
        { "cchPCB too small", Patch16(FramingCorpus.PreconnectionV2, 16, 4), PduErrorKind.InvalidField },
        { "cchPCB 0xFFFF", Patch16(FramingCorpus.PreconnectionV2, 16, 0xFFFF), PduErrorKind.InvalidField },
        { "no terminator", Patch16(FramingCorpus.PreconnectionV2, 26, 0x0041), PduErrorKind.InvalidField },
        { "NUL inside", Patch16(FramingCorpus.PreconnectionV2, 20, 0), PduErrorKind.InvalidField },
        { "odd V2 size", [.. Patch32(FramingCorpus.PreconnectionV2, 0, 29), 0], PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<PreconnectionPdu>(PreconnectionPdu.TryParse, input, kind);
    }

    [Fact]
    public void MaxSize_IsConfigurable()
    {
        var big = Write(new PreconnectionPdu(1, new string('x', 100)));
        Assert.True(PreconnectionPdu.TryParse(big, out _, out _));
        Assert.False(PreconnectionPdu.TryParse(big, 64, out _, out var error));
        Assert.Equal(PduErrorKind.TooLarge, error!.Kind);
    }

    private static byte[] Write(PreconnectionPdu pdu)
    {
        var buffer = new ArrayBufferWriter<byte>();
        pdu.Write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Patch32(byte[] source, int offset, uint value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] Patch16(byte[] source, int offset, ushort value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }
}
