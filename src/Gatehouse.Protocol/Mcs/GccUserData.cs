using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Protocol.Mcs;

/// <summary>[MS-RDPBCGR] 2.2.1.3.1 User Data Header types of the client and server data blocks.</summary>
public enum GccBlockType : ushort
{
    /// <summary>CS_CORE.</summary>
    ClientCore = 0xC001,

    /// <summary>CS_SECURITY.</summary>
    ClientSecurity = 0xC002,

    /// <summary>CS_NET.</summary>
    ClientNetwork = 0xC003,

    /// <summary>CS_CLUSTER.</summary>
    ClientCluster = 0xC004,

    /// <summary>CS_MONITOR.</summary>
    ClientMonitor = 0xC005,

    /// <summary>CS_MCS_MSGCHANNEL.</summary>
    ClientMessageChannel = 0xC006,

    /// <summary>CS_MONITOR_EX.</summary>
    ClientMonitorEx = 0xC008,

    /// <summary>CS_MULTITRANSPORT.</summary>
    ClientMultitransport = 0xC00A,

    /// <summary>SC_CORE.</summary>
    ServerCore = 0x0C01,

    /// <summary>SC_SECURITY.</summary>
    ServerSecurity = 0x0C02,

    /// <summary>SC_NET.</summary>
    ServerNetwork = 0x0C03,

    /// <summary>SC_MCS_MSGCHANNEL.</summary>
    ServerMessageChannel = 0x0C04,

    /// <summary>SC_MULTITRANSPORT.</summary>
    ServerMultitransport = 0x0C08,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.3.1 one GCC user data block (type, length including the 4-byte header, data), kept as its
/// exact bytes; typed views read fields from it.
/// </summary>
public sealed class GccUserDataBlock
{
    /// <summary>Size of the header (type and length).</summary>
    public const int HeaderSize = 4;

    private readonly byte[] _bytes;

    /// <summary>Creates a block from its whole encoding (header included).</summary>
    /// <exception cref="ArgumentException">The bytes are shorter than a header or their length field disagrees.</exception>
    public GccUserDataBlock(ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length < HeaderSize || BinaryPrimitives.ReadUInt16LittleEndian(encoded[2..]) != encoded.Length)
        {
            throw new ArgumentException("A block is its 4-byte header (type, length) and data, with length = the whole size.", nameof(encoded));
        }

        _bytes = encoded.ToArray();
    }

    /// <summary>The block type.</summary>
    public GccBlockType Type => (GccBlockType)BinaryPrimitives.ReadUInt16LittleEndian(_bytes);

    /// <summary>The block length (header included).</summary>
    public int Length => _bytes.Length;

    /// <summary>The whole block.</summary>
    public ReadOnlySpan<byte> Encoded => _bytes;

    /// <summary>A copy with a little-endian u32 replaced at <paramref name="offset"/> (from the start of the block).</summary>
    internal GccUserDataBlock WithUInt32(int offset, uint value)
    {
        var copy = (byte[])_bytes.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return new GccUserDataBlock(copy);
    }

    /// <summary>A copy of <paramref name="blocks"/> with <paramref name="block"/> replacing the block of its type, or appended.</summary>
    internal static List<GccUserDataBlock> ReplaceOrAppend(IReadOnlyList<GccUserDataBlock> blocks, GccUserDataBlock block)
    {
        var copy = new List<GccUserDataBlock>(blocks);
        var index = copy.FindIndex(b => b.Type == block.Type);
        if (index >= 0)
        {
            copy[index] = block;
        }
        else
        {
            copy.Add(block);
        }

        return copy;
    }

    /// <summary>Writes TPKT and X.224 Data headers for a payload of <paramref name="payloadSize"/> bytes, then the payload.</summary>
    internal static void WriteFramed(System.Buffers.IBufferWriter<byte> output, int payloadSize, Action<System.Buffers.IBufferWriter<byte>> writePayload)
    {
        var size = X224.X224Data.FrameOverhead + payloadSize;
        X224.X224Data.WriteFrameHeader(output.GetSpan(X224.X224Data.FrameOverhead), size);
        output.Advance(X224.X224Data.FrameOverhead);
        writePayload(output);
    }

    /// <summary>Reads blocks until <paramref name="source"/> is used up; each must fit and be at least a header long.</summary>
    internal static bool TryReadAll(ReadOnlySpan<byte> source, string pdu, int maxBlocks, out List<GccUserDataBlock> blocks, out PduError? error)
    {
        blocks = [];
        var offset = 0;
        while (offset < source.Length)
        {
            if (source.Length - offset < HeaderSize)
            {
                error = PduError.NotEnough(pdu, "user data header", HeaderSize, source.Length - offset);
                return false;
            }

            var type = BinaryPrimitives.ReadUInt16LittleEndian(source[offset..]);
            var length = BinaryPrimitives.ReadUInt16LittleEndian(source[(offset + 2)..]);
            if (length < HeaderSize)
            {
                error = PduError.Invalid(pdu, $"block 0x{type:X4} length", $"{length} is shorter than its 4-byte header");
                return false;
            }

            if (length > source.Length - offset)
            {
                error = PduError.Invalid(pdu, $"block 0x{type:X4} length", $"{length} runs past the user data ({source.Length - offset} bytes left)");
                return false;
            }

            if (blocks.Count == maxBlocks)
            {
                error = PduError.TooLarge(pdu, "blocks", blocks.Count + 1, maxBlocks);
                return false;
            }

            if (blocks.Exists(b => (ushort)b.Type == type))
            {
                error = PduError.Invalid(pdu, $"block 0x{type:X4}", "appears twice");
                return false;
            }

            blocks.Add(new GccUserDataBlock(source.Slice(offset, length)));
            offset += length;
        }

        error = null;
        return true;
    }
}

/// <summary>[MS-RDPBCGR] 2.2.1.3.2 TS_UD_CS_CORE: typed reading of the client core data (optional fields may be absent).</summary>
public readonly struct ClientCoreData
{
    /// <summary>Offset of serverSelectedProtocol from the start of the block (header included).</summary>
    public const int ServerSelectedProtocolOffset = 212;

    /// <summary>Smallest block that carries the mandatory fields (through imeFileName).</summary>
    public const int MinimumLength = 132;

    private readonly byte[] _block;

    internal ClientCoreData(GccUserDataBlock block) => _block = block.Encoded.ToArray();

    /// <summary>version (0x00080004 for RDP 5.0 and later, up to 0x000C000A).</summary>
    public uint Version => U32(4);

    /// <summary>desktopWidth.</summary>
    public ushort DesktopWidth => U16(8);

    /// <summary>desktopHeight.</summary>
    public ushort DesktopHeight => U16(10);

    /// <summary>keyboardLayout.</summary>
    public uint KeyboardLayout => U32(16);

    /// <summary>clientBuild.</summary>
    public uint ClientBuild => U32(20);

    /// <summary>clientName (up to 15 characters).</summary>
    public string ClientName
    {
        get
        {
            var name = Encoding.Unicode.GetString(_block, 24, 32);
            var nul = name.IndexOf('\0', StringComparison.Ordinal);
            return nul >= 0 ? name[..nul] : name;
        }
    }

    /// <summary>earlyCapabilityFlags, when present.</summary>
    public ushort? EarlyCapabilityFlags => _block.Length >= 146 ? U16(144) : null;

    /// <summary>connectionType, when present.</summary>
    public byte? ConnectionType => _block.Length >= 211 ? _block[210] : null;

    /// <summary>serverSelectedProtocol, when the block is long enough to carry it (216 bytes or more).</summary>
    public X224.SecurityProtocol? ServerSelectedProtocol =>
        _block.Length >= ServerSelectedProtocolOffset + 4 ? (X224.SecurityProtocol)U32(ServerSelectedProtocolOffset) : null;

    private uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_block.AsSpan(offset));

    private ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_block.AsSpan(offset));
}

/// <summary>[MS-RDPBCGR] 2.2.1.3.4.1 CHANNEL_DEF: one static virtual channel the client asks for.</summary>
public readonly record struct ChannelDefinition(string Name, uint Options);

/// <summary>[MS-RDPBCGR] 2.2.1.3.4 TS_UD_CS_NET: the static virtual channels (at most 31).</summary>
public static class ClientNetworkData
{
    /// <summary>Most channels a client may request ([MS-RDPBCGR] 2.2.1.3.4).</summary>
    public const int MaxChannels = 31;

    /// <summary>Reads the channel list; refuses a count over 31 or one that disagrees with the block length.</summary>
    public static bool TryRead(GccUserDataBlock block, out IReadOnlyList<ChannelDefinition> channels, out PduError? error)
    {
        ArgumentNullException.ThrowIfNull(block);
        channels = [];
        const string Pdu = "TS_UD_CS_NET";
        var data = block.Encoded;
        if (data.Length < 8)
        {
            error = PduError.NotEnough(Pdu, "channelCount", 8, data.Length);
            return false;
        }

        var count = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        if (count > MaxChannels)
        {
            error = PduError.TooLarge(Pdu, "channelCount", count, MaxChannels);
            return false;
        }

        if (data.Length != 8 + (12 * (int)count))
        {
            error = PduError.Invalid(Pdu, "channelCount", $"{count} channels need a block of {8 + (12 * count)} bytes, not {data.Length}");
            return false;
        }

        var list = new List<ChannelDefinition>((int)count);
        for (var i = 0; i < count; i++)
        {
            var entry = data.Slice(8 + (12 * i), 12);
            var nameBytes = entry[..8];
            var nul = nameBytes.IndexOf((byte)0);
            if (nul < 0)
            {
                error = PduError.Invalid(Pdu, $"channel {i} name", "not NUL-terminated within 8 bytes");
                return false;
            }

            list.Add(new ChannelDefinition(Encoding.ASCII.GetString(nameBytes[..nul]), BinaryPrimitives.ReadUInt32LittleEndian(entry[8..])));
        }

        channels = list;
        error = null;
        return true;
    }

    /// <summary>A network block with the channels whose name matches <paramref name="remove"/> (case-insensitive) taken out.</summary>
    public static GccUserDataBlock Without(GccUserDataBlock block, Func<string, bool> remove)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(remove);
        var data = block.Encoded;
        var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        var kept = new List<byte>(data.Length);
        kept.AddRange(data[..8].ToArray());
        var keptCount = 0;
        for (var i = 0; i < count; i++)
        {
            var entry = data.Slice(8 + (12 * i), 12);
            var nul = entry[..8].IndexOf((byte)0);
            if (!remove(Encoding.ASCII.GetString(entry[..(nul < 0 ? 8 : nul)])))
            {
                kept.AddRange(entry.ToArray());
                keptCount++;
            }
        }

        var bytes = kept.ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)bytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)keptCount);
        return new GccUserDataBlock(bytes);
    }
}

/// <summary>[MS-RDPBCGR] 2.2.1.4.2 TS_UD_SC_CORE: typed reading of the server core data.</summary>
public readonly struct ServerCoreData
{
    /// <summary>Offset of clientRequestedProtocols from the start of the block.</summary>
    public const int ClientRequestedProtocolsOffset = 8;

    private readonly byte[] _block;

    internal ServerCoreData(GccUserDataBlock block) => _block = block.Encoded.ToArray();

    /// <summary>version.</summary>
    public uint Version => BinaryPrimitives.ReadUInt32LittleEndian(_block.AsSpan(4));

    /// <summary>clientRequestedProtocols, when present.</summary>
    public X224.SecurityProtocol? ClientRequestedProtocols =>
        _block.Length >= 12 ? (X224.SecurityProtocol)BinaryPrimitives.ReadUInt32LittleEndian(_block.AsSpan(8)) : null;

    /// <summary>earlyCapabilityFlags, when present.</summary>
    public uint? EarlyCapabilityFlags => _block.Length >= 16 ? BinaryPrimitives.ReadUInt32LittleEndian(_block.AsSpan(12)) : null;
}
