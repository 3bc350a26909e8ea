using System.Buffers.Binary;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// The gateway's hot path for the two MCS connect rewrites: both change a 32-bit field inside a data block without
/// changing any length, so they are done in place on the received bytes after a structural walk that allocates
/// nothing (the same checks as <see cref="McsConnectInitial.TryParse"/> on every length and key, without building
/// the object model).
/// </summary>
public static class McsConnectPatch
{
    /// <summary>Sets serverSelectedProtocol in the client core data of a Connect Initial (X.224 Data payload), in place.</summary>
    public static bool TrySetServerSelectedProtocol(Span<byte> connectInitial, SecurityProtocol protocol, out PduError? error)
    {
        if (!TryFindBlocks(connectInitial, McsBer.ConnectInitialTag, isResponse: false, out var blocksOffset, out error)
            || !TryFindBlock(connectInitial, blocksOffset, GccBlockType.ClientCore, "MCS Connect Initial", out var core, out var coreLength, out error))
        {
            return false;
        }

        if (coreLength < ClientCoreData.ServerSelectedProtocolOffset + 4)
        {
            error = PduError.Unsupported("MCS Connect Initial", "serverSelectedProtocol", $"the client core data is {coreLength} bytes and has no serverSelectedProtocol field");
            return false;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(connectInitial[(core + ClientCoreData.ServerSelectedProtocolOffset)..], (uint)protocol);
        return true;
    }

    /// <summary>Sets clientRequestedProtocols in the server core data of a Connect Response (X.224 Data payload), in place.</summary>
    public static bool TrySetClientRequestedProtocols(Span<byte> connectResponse, SecurityProtocol protocols, out PduError? error)
    {
        if (!TryFindBlocks(connectResponse, McsBer.ConnectResponseTag, isResponse: true, out var blocksOffset, out error)
            || !TryFindBlock(connectResponse, blocksOffset, GccBlockType.ServerCore, "MCS Connect Response", out var core, out var coreLength, out error))
        {
            return false;
        }

        if (coreLength < ServerCoreData.ClientRequestedProtocolsOffset + 4)
        {
            error = PduError.Unsupported("MCS Connect Response", "clientRequestedProtocols", "the server core data has no clientRequestedProtocols field");
            return false;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(connectResponse[(core + ServerCoreData.ClientRequestedProtocolsOffset)..], (uint)protocols);
        return true;
    }

    private static bool TryFindBlocks(ReadOnlySpan<byte> pdu, scoped ReadOnlySpan<byte> tag, bool isResponse, out int blocksOffset, out PduError? error)
    {
        blocksOffset = 0;
        var name = isResponse ? "MCS Connect Response" : "MCS Connect Initial";
        var reader = new WireReader(pdu, name);
        var ok = McsBer.TryReadHeader(ref reader, tag, "tag", out var length, out _)
            && GccConnectData.Exact(ref reader, length, "length")
            && (isResponse
                ? Skip(ref reader, 0x0A, "result") && Skip(ref reader, 0x02, "calledConnectId") && Skip(ref reader, 0x30, "domainParameters")
                : Skip(ref reader, 0x04, "callingDomainSelector") && Skip(ref reader, 0x04, "calledDomainSelector") && Skip(ref reader, 0x01, "upwardFlag")
                    && Skip(ref reader, 0x30, "targetParameters") && Skip(ref reader, 0x30, "minimumParameters") && Skip(ref reader, 0x30, "maximumParameters"))
            && McsBer.TryReadHeader(ref reader, 0x04, "userData", out var userData, out _)
            && GccConnectData.Exact(ref reader, userData, "userData length")
            && GccConnectData.TryRead(ref reader, isResponse, out _, out _, out _, out _);
        if (!ok)
        {
            error = reader.Error;
            return false;
        }

        blocksOffset = reader.Position;
        error = null;
        return true;
    }

    private static bool TryFindBlock(ReadOnlySpan<byte> pdu, int offset, GccBlockType type, string name, out int blockOffset, out int blockLength, out PduError? error)
    {
        blockOffset = -1;
        blockLength = 0;
        while (offset < pdu.Length)
        {
            if (pdu.Length - offset < GccUserDataBlock.HeaderSize)
            {
                error = PduError.NotEnough(name, "user data header", GccUserDataBlock.HeaderSize, pdu.Length - offset);
                return false;
            }

            var blockType = (GccBlockType)BinaryPrimitives.ReadUInt16LittleEndian(pdu[offset..]);
            var length = BinaryPrimitives.ReadUInt16LittleEndian(pdu[(offset + 2)..]);
            if (length < GccUserDataBlock.HeaderSize || length > pdu.Length - offset)
            {
                error = PduError.Invalid(name, $"block 0x{(ushort)blockType:X4} length", $"{length} does not fit the user data");
                return false;
            }

            if (blockType == type)
            {
                if (blockOffset >= 0)
                {
                    error = PduError.Invalid(name, $"block 0x{(ushort)type:X4}", "appears twice");
                    return false;
                }

                blockOffset = offset;
                blockLength = length;
            }

            offset += length;
        }

        error = blockOffset < 0 ? PduError.Invalid(name, $"block 0x{(ushort)type:X4}", "missing") : null;
        return blockOffset >= 0;
    }

    private static bool Skip(ref WireReader reader, byte tag, string field)
    {
        if (!reader.TryReadU8(field, out var actual))
        {
            return false;
        }

        if (actual != tag)
        {
            return reader.Fail(PduError.Unexpected(reader.Pdu, field, $"tag {actual:X2}, expected {tag:X2}"));
        }

        return McsBer.TryReadLength(ref reader, field, out var length, out _) && reader.TrySkip(length, field);
    }

}
