using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Mcs;

public sealed class McsConnectTests
{
    internal static int Index(byte[] bytes, ReadOnlySpan<byte> pattern) => bytes.AsSpan().IndexOf(pattern);

    [Fact]
    public void ConnectInitial_FreeRdpCapture_ParsesEveryLayer()
    {
        Assert.True(McsConnectInitial.TryParseFrame(McsCorpus.ConnectInitialFrame, out var pdu, out var error), error?.ToString());
        Assert.Equal([0x01], pdu.CallingDomainSelector.ToArray());
        Assert.Equal([0x01], pdu.CalledDomainSelector.ToArray());
        Assert.True(pdu.UpwardFlag);
        Assert.Equal(34u, pdu.TargetParameters.MaxChannelIds);
        Assert.Equal(2u, pdu.TargetParameters.MaxUserIds);
        Assert.Equal(65535u, pdu.TargetParameters.MaxMcsPduSize);
        Assert.Equal(2u, pdu.TargetParameters.ProtocolVersion);
        Assert.Equal(1056u, pdu.MinimumParameters.MaxMcsPduSize);
        Assert.Equal(64535u, pdu.MaximumParameters.MaxUserIds);

        Assert.Equal(GccBlockType.ClientCore, pdu.Blocks[0].Type);
        Assert.Contains(pdu.Blocks, b => b.Type == GccBlockType.ClientSecurity);
        var core = pdu.Core;
        Assert.Equal(SecurityProtocol.Ssl, core.ServerSelectedProtocol);
        Assert.True(core.Version >= 0x00080004);
        Assert.True(core.DesktopWidth > 0 && core.DesktopHeight > 0);
        Assert.NotNull(core.EarlyCapabilityFlags);

        Assert.True(ClientNetworkData.TryRead(pdu.Find(GccBlockType.ClientNetwork)!, out var channels, out error), error?.ToString());
        Assert.Equal(["rdpdr", "rdpsnd", "cliprdr", "drdynvc"], channels.Select(c => c.Name));
    }

    [Fact]
    public void ConnectInitial_SpecExample_4_1_3_ParsesAndWritesByteExact()
    {
        Assert.True(McsConnectInitial.TryParseFrame(McsCorpus.SpecConnectInitialFrame, out var pdu, out var error), error?.ToString());
        Assert.Equal(65535u, pdu.MaximumParameters.MaxChannelIds);                // 02 02 ff ff, read as unsigned
        Assert.Equal(64535u, pdu.MaximumParameters.MaxUserIds);
        Assert.Equal([GccBlockType.ClientCore, GccBlockType.ClientCluster, GccBlockType.ClientSecurity, GccBlockType.ClientNetwork], pdu.Blocks.Select(b => b.Type));
        var core = pdu.Core;
        Assert.Equal(0x00080004u, core.Version);
        Assert.Equal(1280, core.DesktopWidth);
        Assert.Equal(1024, core.DesktopHeight);
        Assert.Equal(0x409u, core.KeyboardLayout);
        Assert.Equal(3790u, core.ClientBuild);
        Assert.Equal("ELTONS-DEV2", core.ClientName);
        Assert.Equal((ushort)0x0001, core.EarlyCapabilityFlags);
        Assert.Equal(SecurityProtocol.Rdp, core.ServerSelectedProtocol);          // a 216-byte block: the field is there, PROTOCOL_RDP
        Assert.True(ClientNetworkData.TryRead(pdu.Find(GccBlockType.ClientNetwork)!, out var channels, out error), error?.ToString());
        Assert.Equal([new ChannelDefinition("rdpdr", 0x80800000), new ChannelDefinition("cliprdr", 0xc0a00000), new ChannelDefinition("rdpsnd", 0xc0000000)], channels);
        var buffer = new ArrayBufferWriter<byte>();
        pdu.WriteFrame(buffer);
        Assert.Equal(McsCorpus.SpecConnectInitialFrame, buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void ConnectInitial_FreeRdpCapture_WritesByteExact()
    {
        Assert.True(McsConnectInitial.TryParse(McsCorpus.ConnectInitial, out var pdu, out _));
        Assert.Equal(McsCorpus.ConnectInitial.Length, pdu.Size);
        Assert.Equal(McsCorpus.ConnectInitial, Write(pdu.Write));
        Assert.Equal(McsCorpus.ConnectInitialFrame, Write(pdu.WriteFrame));
    }

    [Fact]
    public void ConnectInitial_RewriteServerSelectedProtocol_ChangesOnlyThatField()
    {
        Assert.True(McsConnectInitial.TryParse(McsCorpus.ConnectInitial, out var pdu, out _));
        Assert.True(pdu.TryWithServerSelectedProtocol(SecurityProtocol.Hybrid, out var rewritten, out var error), error?.ToString());
        var bytes = Write(rewritten.Write);
        var blocks = Index(McsCorpus.ConnectInitial, "Duca"u8) + 6;
        var field = blocks + ClientCoreData.ServerSelectedProtocolOffset;
        var expected = McsCorpus.ConnectInitial.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(expected.AsSpan(field), 2);
        Assert.Equal(expected, bytes);
        Assert.Equal(1, McsCorpus.ConnectInitial.Zip(bytes).Count(p => p.First != p.Second));
        Assert.True(McsConnectInitial.TryParse(bytes, out var again, out _));
        Assert.Equal(SecurityProtocol.Hybrid, again.Core.ServerSelectedProtocol);
        Assert.Equal(SecurityProtocol.Ssl, pdu.Core.ServerSelectedProtocol);        // the original is unchanged
    }

    [Fact]
    public void ConnectInitial_ShortCoreBlock_CannotCarryTheProtocol()
    {
        var pdu = WithCoreLength(McsCorpus.ConnectInitial, 212);
        Assert.Null(pdu.Core.ServerSelectedProtocol);
        Assert.False(pdu.TryWithServerSelectedProtocol(SecurityProtocol.Ssl, out _, out var error));
        Assert.Equal(PduErrorKind.Unsupported, error!.Kind);
    }

    [Fact]
    public void ConnectInitial_RemovingChannels_ReencodesEveryLength()
    {
        Assert.True(McsConnectInitial.TryParse(McsCorpus.ConnectInitial, out var pdu, out _));
        var network = ClientNetworkData.Without(pdu.Find(GccBlockType.ClientNetwork)!, name => name is "rdpsnd" or "cliprdr");
        var smaller = pdu.WithBlock(network);
        var bytes = Write(smaller.Write);
        Assert.Equal(McsCorpus.ConnectInitial.Length - 24, bytes.Length);
        Assert.True(McsConnectInitial.TryParse(bytes, out var again, out var error), error?.ToString());
        Assert.True(ClientNetworkData.TryRead(again.Find(GccBlockType.ClientNetwork)!, out var channels, out _));
        Assert.Equal(["rdpdr", "drdynvc"], channels.Select(c => c.Name));
        Assert.Equal(McsCorpus.ConnectInitial.Length - 24, BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(3)) + 5);
    }

    [Fact]
    public void ConnectInitial_AppendedBlock_GrowsLengthsAcrossEncodingBoundaries()
    {
        Assert.True(McsConnectInitial.TryParse(McsCorpus.ConnectInitial, out var pdu, out _));
        var big = Block(0xC00C, 3000);
        var bigger = pdu.WithBlock(big);
        var bytes = Write(bigger.Write);
        Assert.True(McsConnectInitial.TryParse(bytes, out var again, out var error), error?.ToString());
        Assert.Equal(3000, again.Find((GccBlockType)0xC00C)!.Length);
        Assert.Equal(bytes.Length, again.Size);
    }

    [Fact]
    public void ConnectResponse_XrdpCapture_ParsesAndWritesByteExact()
    {
        Assert.True(McsConnectResponse.TryParseFrame(McsCorpus.ConnectResponseFrame, out var pdu, out var error), error?.ToString());
        Assert.Equal(McsConnectResponse.ResultSuccessful, pdu.Result);
        Assert.Equal(65528u, pdu.DomainParameters.MaxMcsPduSize);
        Assert.Equal(0x2a, pdu.ConnectPduLength);                            // kept as sent; clients ignore it
        Assert.Equal(SecurityProtocol.Ssl, pdu.Core.ClientRequestedProtocols);
        Assert.Contains(pdu.Blocks, b => b.Type == GccBlockType.ServerNetwork);
        Assert.Equal(McsCorpus.ConnectResponse, Write(pdu.Write));
        Assert.Equal(McsCorpus.ConnectResponseFrame, Write(pdu.WriteFrame));
    }

    [Fact]
    public void ConnectResponse_RewriteClientRequestedProtocols_ChangesOnlyThatField()
    {
        Assert.True(McsConnectResponse.TryParse(McsCorpus.ConnectResponse, out var pdu, out _));
        Assert.True(pdu.TryWithClientRequestedProtocols(SecurityProtocol.RdsAad, out var rewritten, out var error), error?.ToString());
        var bytes = Write(rewritten.Write);
        var field = Index(McsCorpus.ConnectResponse, "McDn"u8) + 6 + ServerCoreData.ClientRequestedProtocolsOffset;
        var expected = McsCorpus.ConnectResponse.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(expected.AsSpan(field), 0x10);
        Assert.Equal(expected, bytes);
        Assert.True(McsConnectResponse.TryParse(bytes, out var again, out _));
        Assert.Equal(SecurityProtocol.RdsAad, again.Core.ClientRequestedProtocols);
    }

    [Fact]
    public void ConnectResponse_GrowingUserData_SwitchesBerLengthsToTheLongForm()
    {
        Assert.True(McsConnectResponse.TryParse(McsCorpus.ConnectResponse, out var pdu, out _));
        Assert.Equal(0x63, McsCorpus.ConnectResponse[2]);                        // short form outer length
        var bytes = Write(pdu.WithBlock(Block(0x0C0A, 80)).Write);
        Assert.Equal(0x81, bytes[2]);                                             // long form now
        Assert.Equal(bytes.Length - 4, bytes[3]);
        Assert.True(McsConnectResponse.TryParse(bytes, out var again, out var error), error?.ToString());
        Assert.Equal(80, again.Find((GccBlockType)0x0C0A)!.Length);
    }

    [Fact]
    public void ServerCore_WithoutRequestedProtocols_CannotBeRewritten()
    {
        Assert.True(McsConnectResponse.TryParse(McsCorpus.ConnectResponse, out var pdu, out _));
        var shortCore = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(shortCore, 0x0C01);
        BinaryPrimitives.WriteUInt16LittleEndian(shortCore.AsSpan(2), 8);
        BinaryPrimitives.WriteUInt32LittleEndian(shortCore.AsSpan(4), 0x00080004);
        var bytes = Write(pdu.WithBlock(new GccUserDataBlock(shortCore)).Write);
        Assert.True(McsConnectResponse.TryParse(bytes, out var old, out _));
        Assert.Null(old.Core.ClientRequestedProtocols);
        Assert.Null(old.Core.EarlyCapabilityFlags);
        Assert.Equal(0x00080004u, old.Core.Version);
        Assert.False(old.TryWithClientRequestedProtocols(SecurityProtocol.Ssl, out _, out var error));
        Assert.Equal(PduErrorKind.Unsupported, error!.Kind);
    }

    [Theory]
    [InlineData(0x7F, 0)]
    [InlineData(0x80, 1)]
    [InlineData(0xFF, 1)]
    [InlineData(0x100, 2)]
    [InlineData(0x10000, 3)]
    public void BerLength_UsesTheShortestFormUnlessALongerOneWasUsed(int length, int octets)
    {
        Assert.Equal(1 + octets, McsBer.LengthSize(length, 0));
        Assert.Equal(3, McsBer.LengthSize(length & 0xFF, 2));
        var buffer = new byte[5];
        var size = McsBer.LengthSize(length, 0);
        McsBer.WriteLength(buffer, length, size);
        var reader = new WireReader(buffer, "test");
        Assert.True(McsBer.TryReadLength(ref reader, "length", out var read, out var readOctets));
        Assert.Equal(length, read);
        Assert.Equal(octets, readOctets);
    }

    [Fact]
    public void GccUserDataBlock_BadEncoding_Throws()
    {
        Assert.Throws<ArgumentException>(() => new GccUserDataBlock([1, 0, 3]));
        Assert.Throws<ArgumentException>(() => new GccUserDataBlock([1, 0, 9, 0, 0]));
    }

    internal static McsConnectInitial WithCoreLength(byte[] connectInitial, int length)
    {
        Assert.True(McsConnectInitial.TryParse(connectInitial, out var pdu, out _));
        var core = pdu.Find(GccBlockType.ClientCore)!.Encoded[..length].ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(2), (ushort)length);
        return pdu.WithBlock(new GccUserDataBlock(core));
    }

    internal static GccUserDataBlock Block(ushort type, int length)
    {
        var bytes = new byte[length];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, type);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)length);
        return new GccUserDataBlock(bytes);
    }

    private static byte[] Write(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
