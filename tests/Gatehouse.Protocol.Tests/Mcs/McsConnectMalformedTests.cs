using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Mcs;

public sealed class McsConnectMalformedTests
{
    private static byte[] Ci => McsCorpus.ConnectInitial;

    private static byte[] Cr => McsCorpus.ConnectResponse;

    [Fact]
    public void ConnectInitial_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<McsConnectInitial>(McsConnectInitial.TryParse, Ci);

    [Fact]
    public void ConnectResponse_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<McsConnectResponse>(McsConnectResponse.TryParse, Cr);

    [Fact]
    public void ConnectInitialFrame_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<McsConnectInitial>(McsConnectInitial.TryParseFrame, McsCorpus.ConnectInitialFrame);

    public static TheoryData<string, byte[]> ConnectInitialCases()
    {
        var duca = McsConnectTests.Index(Ci, "Duca"u8);
        var ccr = duca - 8;
        var connectLength = ccr - 2;        // 81 58
        var t124 = connectLength - 7;
        var userDataTag = t124 - 4;         // 04 82 01 61
        var blocksLength = duca + 4;        // 81 4a
        var blocks = duca + 6;
        var core = blocks;
        var coreLength = BinaryPrimitives.ReadUInt16LittleEndian(Ci.AsSpan(core + 2));
        var second = core + coreLength;
        var net = FindBlock(Ci, blocks, 0xC003);

        var data = new TheoryData<string, byte[]>
        {
            { "Connect-Response tag", Set(Ci, 0, 0x7F, 0x66) },
            { "one-octet tag", Set(Ci, 0, 0x65) },
            { "outer length + 1", AddU16BE(Ci, 3, 1) },
            { "outer length - 1", AddU16BE(Ci, 3, -1) },
            { "outer length 0", Set(Ci, 2, 0x82, 0x00, 0x00) },
            { "outer length 4 GiB", [.. Ci[..2], 0x84, 0xFF, 0xFF, 0xFF, 0xFF, .. Ci[5..]] },
            { "outer length five octets", [.. Ci[..2], 0x85, 0x00, 0x00, 0x00, 0x01, 0xC7, .. Ci[5..]] },
            { "indefinite length", Set(Ci, 2, 0x80) },
            { "calling selector tag", Set(Ci, 5, 0x05) },
            { "calling selector past the end", Set(Ci, 6, 0x7F) },
            { "upward flag tag", Set(Ci, 11, 0x02) },
            { "upward flag two octets", Set(Ci, 12, 0x02) },
            { "target parameters tag", Set(Ci, 14, 0x31) },
            { "target parameters length short", Set(Ci, 15, 0x19) },
            { "target integer length 0", Set(Ci, 17, 0x00) },
            { "target integer length 6", Set(Ci, 17, 0x06) },
            { "target integer of 40 bits", [.. Ci[..2], 0x82, 0x01, 0xCB, .. Ci[5..14], 0x30, 0x1E, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x22, .. Ci[19..]] },
            { "target integer tag", Set(Ci, 16, 0x04) },
            { "userData tag", Set(Ci, userDataTag, 0x03) },
            { "userData length + 1", AddU16BE(Ci, userDataTag + 2, 1) },
            { "userData length - 1", AddU16BE(Ci, userDataTag + 2, -1) },
            { "t124 identifier", Set(Ci, t124 + 6, 0x02) },
            { "connectPDU length + 1", AddPer(Ci, connectLength, 1) },
            { "connectPDU length - 1", AddPer(Ci, connectLength, -1) },
            { "connectPDU length fragmented", Set(Ci, connectLength, 0xC1) },
            { "conference choice", Set(Ci, ccr, 0x01) },
            { "h221 choice", Set(Ci, ccr + 6, 0x80) },
            { "h221 key", Set(Ci, duca + 3, (byte)'b') },
            { "user data length + 1", AddPer(Ci, blocksLength, 1) },
            { "user data length - 1", AddPer(Ci, blocksLength, -1) },
            { "user data length 0", Set(Ci, blocksLength, 0x80, 0x00) },
            { "user data length 0x3FFF", Set(Ci, blocksLength, 0xBF, 0xFF) },
            { "block length 0", SetU16LE(Ci, core + 2, 0) },
            { "block length 3", SetU16LE(Ci, core + 2, 3) },
            { "block length past the end", SetU16LE(Ci, core + 2, 0xFFFF) },
            { "block length one short", SetU16LE(Ci, core + 2, (ushort)(coreLength - 1)) },
            { "duplicate core block", SetU16LE(Ci, second, 0xC001) },
            { "core block missing", SetU16LE(Ci, core, 0xC0FF) },
            { "network channelCount 32", SetU32LE(Ci, net + 4, 32) },
            { "network channelCount 4 GiB", SetU32LE(Ci, net + 4, uint.MaxValue) },
            { "network channelCount disagrees", SetU32LE(Ci, net + 4, 3) },
            { "network channel name without NUL", Fill(Ci, net + 8, 8, (byte)'A') },
            { "trailing byte", [.. Ci, 0x00] },
        };

        return data;
    }

    [Theory]
    [MemberData(nameof(ConnectInitialCases))]
    public void ConnectInitial_Malformed_IsRefused(string name, byte[] input)
    {
        Assert.NotNull(name);
        Malformed.Rejects<McsConnectInitial>(McsConnectInitial.TryParse, input);
    }

    [Fact]
    public void ConnectInitial_CoreBlockShorterThanItsMandatoryFields_IsRefused()
    {
        var shortCore = McsConnectTests.WithCoreLength(Ci, 100);
        var buffer = new ArrayBufferWriter<byte>();
        shortCore.Write(buffer);
        Malformed.Rejects<McsConnectInitial>(McsConnectInitial.TryParse, buffer.WrittenSpan.ToArray(), PduErrorKind.InvalidField);
    }

    [Fact]
    public void ConnectInitial_SeventeenBlocks_IsTooLarge()
    {
        Assert.True(McsConnectInitial.TryParse(Ci, out var pdu, out _));
        for (var i = 0; i < McsConnectInitial.MaxBlocks; i++)
        {
            pdu = pdu.WithBlock(McsConnectTests.Block((ushort)(0xC100 + i), 4));
        }

        var buffer = new ArrayBufferWriter<byte>();
        pdu.Write(buffer);
        Malformed.Rejects<McsConnectInitial>(McsConnectInitial.TryParse, buffer.WrittenSpan.ToArray(), PduErrorKind.TooLarge);
    }

    public static TheoryData<string, byte[]> ConnectResponseCases()
    {
        var mcdn = McsConnectTests.Index(Cr, "McDn"u8);
        var blocksLength = mcdn + 4;        // 80 28
        var blocks = mcdn + 6;
        var ccr = mcdn - 9;
        var t124 = ccr - 1 - 7;
        var userDataTag = t124 - 2;         // 04 3f
        return new TheoryData<string, byte[]>
        {
            { "Connect-Initial tag", Set(Cr, 1, 0x65) },
            { "outer length + 1", Set(Cr, 2, (byte)(Cr[2] + 1)) },
            { "outer length - 1", Set(Cr, 2, (byte)(Cr[2] - 1)) },
            { "outer length 0", Set(Cr, 2, 0x00) },
            { "outer length 4 GiB", [.. Cr[..2], 0x84, 0xFF, 0xFF, 0xFF, 0xFF, .. Cr[3..]] },
            { "result tag", Set(Cr, 3, 0x02) },
            { "result two octets", Set(Cr, 4, 0x02) },
            { "calledConnectId tag", Set(Cr, 6, 0x0A) },
            { "calledConnectId length 0", Set(Cr, 7, 0x00) },
            { "calledConnectId length 5", Set(Cr, 7, 0x05) },
            { "domain parameters tag", Set(Cr, 9, 0x31) },
            { "userData tag", Set(Cr, userDataTag, 0x03) },
            { "userData length + 1", Set(Cr, userDataTag + 1, (byte)(Cr[userDataTag + 1] + 1)) },
            { "userData length - 1", Set(Cr, userDataTag + 1, (byte)(Cr[userDataTag + 1] - 1)) },
            { "t124 identifier", Set(Cr, t124 + 2, 0x15) },
            { "response choice", Set(Cr, ccr, 0x00) },
            { "h221 key", Set(Cr, mcdn, (byte)'X') },
            { "user data length + 1", AddPer(Cr, blocksLength, 1) },
            { "user data length - 1", AddPer(Cr, blocksLength, -1) },
            { "user data length fragmented", Set(Cr, blocksLength, 0xC0) },
            { "block length 2", SetU16LE(Cr, blocks + 2, 2) },
            { "block length past the end", SetU16LE(Cr, blocks + 2, 0x0400) },
            { "core block missing", SetU16LE(Cr, blocks, 0x0CFF) },
            { "core block 6 bytes", SetCoreShort(Cr, blocks) },
            { "trailing byte", [.. Cr, 0x00] },
        };
    }

    [Theory]
    [MemberData(nameof(ConnectResponseCases))]
    public void ConnectResponse_Malformed_IsRefused(string name, byte[] input)
    {
        Assert.NotNull(name);
        Malformed.Rejects<McsConnectResponse>(McsConnectResponse.TryParse, input);
    }

    [Theory]
    [InlineData("03 00 00 08 02 f0 80 7f")]      // X.224 Data holding one byte of MCS
    [InlineData("03 00 00 07 02 f0 00")]         // not an EOT data TPDU
    public void Frames_Malformed_AreRefused(string hex)
    {
        Malformed.Rejects<McsConnectInitial>(McsConnectInitial.TryParseFrame, Hex.Bytes(hex));
        Malformed.Rejects<McsConnectResponse>(McsConnectResponse.TryParseFrame, Hex.Bytes(hex));
    }

    private static int FindBlock(byte[] pdu, int offset, ushort type)
    {
        while (BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(offset)) != type)
        {
            offset += BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(offset + 2));
        }

        return offset;
    }

    private static byte[] Set(byte[] source, int offset, params byte[] values)
    {
        var copy = (byte[])source.Clone();
        values.CopyTo(copy, offset);
        return copy;
    }

    private static byte[] Fill(byte[] source, int offset, int count, byte value)
    {
        var copy = (byte[])source.Clone();
        copy.AsSpan(offset, count).Fill(value);
        return copy;
    }

    private static byte[] AddU16BE(byte[] source, int offset, int delta)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(offset), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(copy.AsSpan(offset)) + delta));
        return copy;
    }

    private static byte[] AddPer(byte[] source, int offset, int delta)
    {
        var copy = (byte[])source.Clone();
        var value = ((copy[offset] & 0x3F) << 8) | copy[offset + 1];
        value += delta;
        copy[offset] = (byte)(0x80 | (value >> 8));
        copy[offset + 1] = unchecked((byte)value);
        return copy;
    }

    private static byte[] SetU16LE(byte[] source, int offset, ushort value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] SetU32LE(byte[] source, int offset, uint value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] SetCoreShort(byte[] source, int blocks)
    {
        // Shrink the server core block to 6 bytes and give the 6 freed bytes to a filler block.
        var copy = (byte[])source.Clone();
        var coreLength = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(blocks + 2));
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 2), 6);
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 6), 0x0CEE);
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 8), (ushort)(coreLength - 6));
        return copy;
    }
}
