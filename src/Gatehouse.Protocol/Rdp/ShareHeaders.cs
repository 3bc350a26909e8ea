using System.Buffers.Binary;

namespace Gatehouse.Protocol.Rdp;

/// <summary>[MS-RDPBCGR] 2.2.8.1.1.1.1 Share Control Header pduType (the low four bits of the field).</summary>
public enum ShareControlPduType : byte
{
    /// <summary>PDUTYPE_DEMANDACTIVEPDU.</summary>
    DemandActive = 0x1,

    /// <summary>PDUTYPE_CONFIRMACTIVEPDU.</summary>
    ConfirmActive = 0x3,

    /// <summary>PDUTYPE_DEACTIVATEALLPDU.</summary>
    DeactivateAll = 0x6,

    /// <summary>PDUTYPE_DATAPDU.</summary>
    Data = 0x7,

    /// <summary>PDUTYPE_SERVER_REDIR_PKT.</summary>
    ServerRedirect = 0xA,
}

/// <summary>[MS-RDPBCGR] 2.2.8.1.1.1.2 Share Data Header pduType2 (the values this library names; others are kept as numbers).</summary>
public enum ShareDataPduType : byte
{
    /// <summary>PDUTYPE2_UPDATE.</summary>
    Update = 0x02,

    /// <summary>PDUTYPE2_CONTROL.</summary>
    Control = 0x14,

    /// <summary>PDUTYPE2_POINTER.</summary>
    MousePointer = 0x1B,

    /// <summary>PDUTYPE2_INPUT.</summary>
    Input = 0x1C,

    /// <summary>PDUTYPE2_SYNCHRONIZE.</summary>
    Synchronize = 0x1F,

    /// <summary>PDUTYPE2_REFRESH_RECT.</summary>
    RefreshRect = 0x21,

    /// <summary>PDUTYPE2_SHUTDOWN_REQUEST.</summary>
    ShutdownRequest = 0x24,

    /// <summary>PDUTYPE2_SHUTDOWN_DENIED.</summary>
    ShutdownDenied = 0x25,

    /// <summary>PDUTYPE2_SAVE_SESSION_INFO.</summary>
    SaveSessionInfo = 0x26,

    /// <summary>PDUTYPE2_FONTLIST.</summary>
    FontList = 0x27,

    /// <summary>PDUTYPE2_FONTMAP.</summary>
    FontMap = 0x28,

    /// <summary>PDUTYPE2_SET_ERROR_INFO_PDU.</summary>
    SetErrorInfo = 0x2F,

    /// <summary>PDUTYPE2_ARC_STATUS_PDU.</summary>
    ArcStatus = 0x32,

    /// <summary>PDUTYPE2_STATUS_INFO_PDU.</summary>
    StatusInfo = 0x36,

    /// <summary>PDUTYPE2_MONITOR_LAYOUT_PDU.</summary>
    MonitorLayout = 0x37,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.8.1.1.1.1 Share Control Header (TS_SHARECONTROLHEADER): totalLength, pduType (type in the low
/// four bits, TS_PROTOCOL_VERSION 0x0010 in the upper bits) and pduSource.
/// </summary>
/// <param name="TotalLength">totalLength: the whole PDU, this header included.</param>
/// <param name="PduType">The raw pduType field (type | version).</param>
/// <param name="PduSource">pduSource: the sender's channel id.</param>
public readonly record struct ShareControlHeader(ushort TotalLength, ushort PduType, ushort PduSource)
{
    internal const string Name = "TS_SHARECONTROLHEADER";

    /// <summary>Encoded size.</summary>
    public const int Size = 2 /* totalLength */ + 2 /* pduType */ + 2 /* pduSource */;

    /// <summary>TS_PROTOCOL_VERSION, in the upper 12 bits of pduType.</summary>
    public const ushort ProtocolVersion = 0x0010;

    /// <summary>The type (low four bits of pduType).</summary>
    public ShareControlPduType Type => (ShareControlPduType)(PduType & 0x000F);

    /// <summary>A header of <paramref name="type"/> with the protocol version.</summary>
    public static ShareControlHeader Create(ShareControlPduType type, ushort totalLength, ushort pduSource) =>
        new(totalLength, unchecked((ushort)(ProtocolVersion | (byte)type)), pduSource);

    /// <summary>
    /// Reads the header at the start of <paramref name="source"/> (the PDU): the version must be 1 and totalLength
    /// must equal the length of <paramref name="source"/>.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ShareControlHeader value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (reader.TryReadU16LE("totalLength", out var total)
            && reader.TryReadU16LE("pduType", out var type)
            && reader.TryReadU16LE("pduSource", out var pduSource))
        {
            if ((type & 0xFFF0) != ProtocolVersion)
            {
                reader.FailInvalid("pduType", $"version 0x{type & 0xFFF0:X4}, expected 0x0010");
            }
            else if (total > source.Length)
            {
                reader.Fail(PduError.NotEnough(Name, "totalLength", total, source.Length));
            }
            else if (total != source.Length)
            {
                reader.FailInvalid("totalLength", $"{total} disagrees with the {source.Length}-byte PDU");
            }
            else
            {
                value = new ShareControlHeader(total, type, pduSource);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the header.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, TotalLength);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], PduType);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], PduSource);
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.8.1.1.1.2 Share Data Header (TS_SHAREDATAHEADER): the share control header, shareId, pad1,
/// streamId, uncompressedLength, pduType2, compressedType and compressedLength.
/// </summary>
/// <param name="ShareControl">shareControlHeader.</param>
/// <param name="ShareId">shareId.</param>
/// <param name="Pad1">pad1.</param>
/// <param name="StreamId">streamId (STREAM_LOW 1, STREAM_MED 2, STREAM_HI 4).</param>
/// <param name="UncompressedLength">uncompressedLength.</param>
/// <param name="PduType2">pduType2.</param>
/// <param name="CompressedType">compressedType.</param>
/// <param name="CompressedLength">compressedLength.</param>
public readonly record struct ShareDataHeader(
    ShareControlHeader ShareControl,
    uint ShareId,
    byte Pad1,
    byte StreamId,
    ushort UncompressedLength,
    ShareDataPduType PduType2,
    byte CompressedType,
    ushort CompressedLength)
{
    internal const string Name = "TS_SHAREDATAHEADER";

    /// <summary>Encoded size.</summary>
    public const int Size = ShareControlHeader.Size /* shareControlHeader */ + 4 /* shareId */ + 1 /* pad1 */ + 1 /* streamId */
        + 2 /* uncompressedLength */ + 1 /* pduType2 */ + 1 /* compressedType */ + 2 /* compressedLength */;

    /// <summary>PACKET_COMPRESSED in compressedType.</summary>
    public const byte PacketCompressed = 0x20;

    /// <summary>STREAM_LOW.</summary>
    public const byte StreamLow = 0x01;

    /// <summary>
    /// Reads the header of a Share Data PDU that fills <paramref name="source"/>: pduType must be PDUTYPE_DATAPDU and
    /// compressed data is refused as unsupported.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ShareDataHeader value, out PduError? error)
    {
        value = default;
        if (!ShareControlHeader.TryParse(source, out var control, out error))
        {
            return false;
        }

        if (control.Type != ShareControlPduType.Data)
        {
            error = PduError.Unexpected(Name, "pduType", $"{control.PduType & 0xF} is not PDUTYPE_DATAPDU");
            return false;
        }

        var reader = new WireReader(source, Name);
        if (reader.TrySkip(ShareControlHeader.Size, "shareControlHeader")
            && reader.TryReadU32LE("shareId", out var shareId)
            && reader.TryReadU8("pad1", out var pad1)
            && reader.TryReadU8("streamId", out var streamId)
            && reader.TryReadU16LE("uncompressedLength", out var uncompressed)
            && reader.TryReadU8("pduType2", out var pduType2)
            && reader.TryReadU8("compressedType", out var compressedType)
            && reader.TryReadU16LE("compressedLength", out var compressedLength))
        {
            if ((compressedType & PacketCompressed) != 0)
            {
                reader.Fail(PduError.Unsupported(Name, "compressedType", "compressed share data is not supported"));
            }
            else
            {
                value = new ShareDataHeader(control, shareId, pad1, streamId, uncompressed, (ShareDataPduType)pduType2, compressedType, compressedLength);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the header.</summary>
    public void WriteTo(Span<byte> destination)
    {
        ShareControl.WriteTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[6..], ShareId);
        destination[10] = Pad1;
        destination[11] = StreamId;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[12..], UncompressedLength);
        destination[14] = (byte)PduType2;
        destination[15] = CompressedType;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[16..], CompressedLength);
    }
}
