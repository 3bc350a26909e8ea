using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Mcs;

public sealed class McsConnectPatchTests
{
    [Fact]
    public void ServerSelectedProtocol_InPlace_EqualsTheObjectModelRewrite()
    {
        var bytes = McsCorpus.ConnectInitial;
        Assert.True(McsConnectPatch.TrySetServerSelectedProtocol(bytes, SecurityProtocol.Hybrid, out var error), error?.ToString());
        Assert.True(McsConnectInitial.TryParse(McsCorpus.ConnectInitial, out var pdu, out _));
        Assert.True(pdu.TryWithServerSelectedProtocol(SecurityProtocol.Hybrid, out var rewritten, out _));
        var expected = new ArrayBufferWriter<byte>();
        rewritten.Write(expected);
        Assert.Equal(expected.WrittenSpan.ToArray(), bytes);
    }

    [Fact]
    public void ClientRequestedProtocols_InPlace_EqualsTheObjectModelRewrite()
    {
        var bytes = McsCorpus.ConnectResponse;
        Assert.True(McsConnectPatch.TrySetClientRequestedProtocols(bytes, SecurityProtocol.RdsAad, out var error), error?.ToString());
        Assert.True(McsConnectResponse.TryParse(bytes, out var parsed, out _));
        Assert.Equal(SecurityProtocol.RdsAad, parsed.Core.ClientRequestedProtocols);
        Assert.Equal(1, McsCorpus.ConnectResponse.Zip(bytes).Count(p => p.First != p.Second));
    }

    [Fact]
    public void Patches_AllocateNothing()
    {
        var initial = McsCorpus.ConnectInitial;
        var response = McsCorpus.ConnectResponse;
        McsConnectPatch.TrySetServerSelectedProtocol(initial, SecurityProtocol.Ssl, out _);
        McsConnectPatch.TrySetClientRequestedProtocols(response, SecurityProtocol.Ssl, out _);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            Assert.True(McsConnectPatch.TrySetServerSelectedProtocol(initial, SecurityProtocol.Hybrid, out _));
            Assert.True(McsConnectPatch.TrySetClientRequestedProtocols(response, SecurityProtocol.RdsAad, out _));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void EveryTruncation_IsRefusedAndLeavesTheBytesAlone()
    {
        foreach (var source in new[] { McsCorpus.ConnectInitial, McsCorpus.ConnectResponse })
        {
            for (var length = 0; length < source.Length; length++)
            {
                var copy = source[..length];
                var ok = source == McsCorpus.ConnectInitial
                    ? McsConnectPatch.TrySetServerSelectedProtocol(copy, SecurityProtocol.Hybrid, out var error)
                    : McsConnectPatch.TrySetClientRequestedProtocols(copy, SecurityProtocol.Hybrid, out error);
                Assert.False(ok, $"accepted a {length}-byte prefix");
                Assert.NotNull(error);
                Assert.Equal(source[..length], copy);
            }
        }
    }

    public static TheoryData<string, byte[], PduErrorKind> Refusals()
    {
        var ci = McsCorpus.ConnectInitial;
        var blocks = McsConnectTests.Index(ci, "Duca"u8) + 6;
        var coreLength = BinaryPrimitives.ReadUInt16LittleEndian(ci.AsSpan(blocks + 2));
        var cr = McsCorpus.ConnectResponse;
        var srvBlocks = McsConnectTests.Index(cr, "McDn"u8) + 6;
        return new TheoryData<string, byte[], PduErrorKind>
        {
            { "initial: response tag", With(ci, 1, 0x66), PduErrorKind.UnexpectedMessageType },
            { "initial: h221 key", With(ci, blocks - 3, (byte)'X'), PduErrorKind.InvalidField },
            { "initial: core missing", With(ci, blocks, 0xFF), PduErrorKind.InvalidField },
            { "initial: duplicate core", With16(ci, blocks + coreLength, 0xC001), PduErrorKind.InvalidField },
            { "initial: core length past the end", With16(ci, blocks + 2, 0xFFFF), PduErrorKind.InvalidField },
            { "initial: trailing byte", [.. ci, 0], PduErrorKind.InvalidField },
            { "response: initial tag", With(cr, 1, 0x65), PduErrorKind.UnexpectedMessageType },
            { "response: h221 key", With(cr, srvBlocks - 3, (byte)'X'), PduErrorKind.InvalidField },
            { "response: core missing", With(cr, srvBlocks + 1, 0xCC), PduErrorKind.InvalidField },
            { "response: core without the field", ShortServerCore(cr, srvBlocks), PduErrorKind.Unsupported },
        };
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        var copy = input.ToArray();
        var ok = name.StartsWith("initial", StringComparison.Ordinal)
            ? McsConnectPatch.TrySetServerSelectedProtocol(copy, SecurityProtocol.Hybrid, out var error)
            : McsConnectPatch.TrySetClientRequestedProtocols(copy, SecurityProtocol.Hybrid, out error);
        Assert.False(ok);
        Assert.Equal(kind, error!.Kind);
        Assert.Equal(input, copy);
    }

    [Fact]
    public void ShortClientCore_IsUnsupported()
    {
        var pdu = McsConnectTests.WithCoreLength(McsCorpus.ConnectInitial, 212);
        var buffer = new ArrayBufferWriter<byte>();
        pdu.Write(buffer);
        Assert.False(McsConnectPatch.TrySetServerSelectedProtocol(buffer.WrittenSpan.ToArray(), SecurityProtocol.Ssl, out var error));
        Assert.Equal(PduErrorKind.Unsupported, error!.Kind);
    }

    private static byte[] With(byte[] source, int offset, byte value)
    {
        var copy = source.ToArray();
        copy[offset] = value;
        return copy;
    }

    private static byte[] With16(byte[] source, int offset, ushort value)
    {
        var copy = source.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] ShortServerCore(byte[] source, int blocks)
    {
        // Shrink SC_CORE to 8 bytes (version only) and hand the rest to a filler block.
        var copy = source.ToArray();
        var length = BinaryPrimitives.ReadUInt16LittleEndian(copy.AsSpan(blocks + 2));
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 2), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 8), 0x0CEE);
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(blocks + 10), (ushort)(length - 8));
        return copy;
    }
}
