using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Front;

/// <summary>[MS-RDPBCGR] 2.2.7 capability set types the hold front writes or reads.</summary>
public enum CapabilitySetType : ushort
{
    /// <summary>CAPSTYPE_GENERAL.</summary>
    General = 1,

    /// <summary>CAPSTYPE_BITMAP.</summary>
    Bitmap = 2,

    /// <summary>CAPSTYPE_ORDER.</summary>
    Order = 3,

    /// <summary>CAPSTYPE_POINTER.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "Spec name.")]
    Pointer = 8,

    /// <summary>CAPSTYPE_SHARE.</summary>
    Share = 9,

    /// <summary>CAPSTYPE_INPUT.</summary>
    Input = 13,

    /// <summary>CAPSTYPE_FONT.</summary>
    Font = 14,

    /// <summary>CAPSTYPE_VIRTUALCHANNEL.</summary>
    VirtualChannel = 20,

    /// <summary>CAPSETTYPE_MULTIFRAGMENTUPDATE.</summary>
    MultifragmentUpdate = 26,
}

/// <summary>
/// The server PDUs of the connection sequence that the hold front writes: MCS Connect Response, Demand Active and the
/// server finalization PDUs, each as whole frames (TPKT, X.224 Data, MCS).
/// </summary>
internal static class FrontPdus
{
    /// <summary>The server's MCS user id (initiator of every Send Data Indication, pduSource of its share PDUs).</summary>
    public const ushort ServerChannelId = ServerRefusal.ServerChannelId;

    /// <summary>The I/O channel.</summary>
    public const ushort IoChannelId = ServerRefusal.IoChannelId;

    /// <summary>SC_CORE version: RDP 10.0 (0x00080004), what IronRDP and FreeRDP servers send.</summary>
    public const uint ServerVersion = 0x0008_0004;

    /// <summary>SC_CORE earlyCapabilityFlags RNS_UD_SC_SKIP_CHANNELJOIN_SUPPORTED.</summary>
    public const uint ServerSkipChannelJoin = 0x0000_0008;

    /// <summary>General extraFlags FASTPATH_OUTPUT_SUPPORTED.</summary>
    public const ushort FastPathOutputSupported = 0x0001;

    /// <summary>General extraFlags LONG_CREDENTIALS_SUPPORTED.</summary>
    public const ushort LongCredentialsSupported = 0x0004;

    /// <summary>Input flags: SCANCODES | MOUSEX | FASTPATH_INPUT | UNICODE | FASTPATH_INPUT2.</summary>
    public const ushort InputFlags = 0x0001 | 0x0004 | 0x0008 | 0x0010 | 0x0020;

    /// <summary>ConferenceCreateResponse as Windows writes it: nodeID 0x79F3, tag 1, result success, H.221 key "McDn".</summary>
    private static ReadOnlySpan<byte> ConferenceCreateResponse => [0x14, 0x76, 0x0A, 0x01, 0x01, 0x00, 0x01, 0xC0, 0x00, 0x4D, 0x63, 0x44, 0x6E];

    /// <summary>DomainParameters 34/3/0/1/0/1/65528/2, the server's answer to every RDP client.</summary>
    private static ReadOnlySpan<byte> DomainParameters =>
    [
        0x30, 0x1A,
        0x02, 0x01, 0x22, // maxChannelIds 34
        0x02, 0x01, 0x03, // maxUserIds 3
        0x02, 0x01, 0x00, // maxTokenIds 0
        0x02, 0x01, 0x01, // numPriorities 1
        0x02, 0x01, 0x00, // minThroughput 0
        0x02, 0x01, 0x01, // maxHeight 1
        0x02, 0x03, 0x00, 0xFF, 0xF8, // maxMCSPDUsize 65528
        0x02, 0x01, 0x02, // protocolVersion 2
    ];

    /// <summary>Writes the MCS Connect Response frame with SC_CORE, SC_SECURITY, SC_NET and (when asked) SC_MCS_MSGCHANNEL.</summary>
    public static void WriteConnectResponse(IBufferWriter<byte> output, SecurityProtocol clientRequested, uint earlyCapabilityFlags, IReadOnlyList<ushort> channelIds, ushort? messageChannelId)
    {
        var blocks = new ArrayBufferWriter<byte>();
        Span<byte> core = stackalloc byte[16];
        BinaryPrimitives.WriteUInt16LittleEndian(core, (ushort)GccBlockType.ServerCore);
        BinaryPrimitives.WriteUInt16LittleEndian(core[2..], 16);
        BinaryPrimitives.WriteUInt32LittleEndian(core[4..], ServerVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(core[8..], (uint)clientRequested);
        BinaryPrimitives.WriteUInt32LittleEndian(core[12..], earlyCapabilityFlags);
        blocks.Write(core);

        Span<byte> security = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(security, (ushort)GccBlockType.ServerSecurity);
        BinaryPrimitives.WriteUInt16LittleEndian(security[2..], 12);
        blocks.Write(security); // encryptionMethod 0, encryptionLevel 0: TLS carries the security, no random, no certificate.

        var padded = channelIds.Count % 2 == 1;
        var netLength = 4 /* header */ + 2 /* MCSChannelId */ + 2 /* channelCount */ + (2 * channelIds.Count) + (padded ? 2 : 0);
        var net = new byte[netLength];
        BinaryPrimitives.WriteUInt16LittleEndian(net, (ushort)GccBlockType.ServerNetwork);
        BinaryPrimitives.WriteUInt16LittleEndian(net.AsSpan(2), unchecked((ushort)netLength));
        BinaryPrimitives.WriteUInt16LittleEndian(net.AsSpan(4), IoChannelId);
        BinaryPrimitives.WriteUInt16LittleEndian(net.AsSpan(6), unchecked((ushort)channelIds.Count));
        for (var i = 0; i < channelIds.Count; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(net.AsSpan(8 + (2 * i)), channelIds[i]);
        }

        blocks.Write(net);
        if (messageChannelId is { } message)
        {
            Span<byte> msg = stackalloc byte[6];
            BinaryPrimitives.WriteUInt16LittleEndian(msg, (ushort)GccBlockType.ServerMessageChannel);
            BinaryPrimitives.WriteUInt16LittleEndian(msg[2..], 6);
            BinaryPrimitives.WriteUInt16LittleEndian(msg[4..], message);
            blocks.Write(msg);
        }

        // userData: T.124 ConnectData. The connectPDU length counts what follows it, as Windows writes it.
        var blocksLength = blocks.WrittenCount;
        var blocksLengthSize = DomainPer.LengthSize(blocksLength, longForm: true);
        var connectPduLength = ConferenceCreateResponse.Length + blocksLengthSize + blocksLength;
        var connectPduLengthSize = DomainPer.LengthSize(connectPduLength, longForm: false);
        var userData = McsConnectInitial.T124Identifier.Length + connectPduLengthSize + connectPduLength;
        var userDataLengthSize = McsBer.LengthSize(userData, 0);
        var outer = 3 /* result */ + 3 /* calledConnectId */ + DomainParameters.Length + 1 /* userData tag */ + userDataLengthSize + userData;
        var outerLengthSize = McsBer.LengthSize(outer, 0);
        var pdu = 2 /* tag */ + outerLengthSize + outer;
        var frame = X224Data.FrameOverhead + pdu;

        var span = output.GetSpan(frame)[..frame];
        X224Data.WriteFrameHeader(span, frame);
        var o = X224Data.FrameOverhead;
        span[o++] = 0x7F;
        span[o++] = 0x66;
        o += McsBer.WriteLength(span[o..], outer, outerLengthSize);
        span[o++] = 0x0A; // result: ENUMERATED
        span[o++] = 0x01;
        span[o++] = McsConnectResponse.ResultSuccessful;
        span[o++] = 0x02; // calledConnectId: INTEGER 0
        span[o++] = 0x01;
        span[o++] = 0x00;
        DomainParameters.CopyTo(span[o..]);
        o += DomainParameters.Length;
        span[o++] = 0x04; // userData: OCTET STRING
        o += McsBer.WriteLength(span[o..], userData, userDataLengthSize);
        McsConnectInitial.T124Identifier.CopyTo(span[o..]);
        o += McsConnectInitial.T124Identifier.Length;
        o += DomainPer.WriteLength(span[o..], connectPduLength, connectPduLengthSize);
        ConferenceCreateResponse.CopyTo(span[o..]);
        o += ConferenceCreateResponse.Length;
        o += DomainPer.WriteLength(span[o..], blocksLength, blocksLengthSize);
        blocks.WrittenSpan.CopyTo(span[o..]);
        output.Advance(frame);
    }

    /// <summary>Writes an MCS domain PDU (Attach User Confirm, Channel Join Confirm) in its X.224 Data frame.</summary>
    public static void WriteDomainFrame(IBufferWriter<byte> output, int size, Action<IBufferWriter<byte>> write)
    {
        var frame = X224Data.FrameOverhead + size;
        X224Data.WriteFrameHeader(output.GetSpan(frame), frame);
        output.Advance(X224Data.FrameOverhead);
        write(output);
    }

    /// <summary>Writes a Send Data Indication from the server channel on <paramref name="channelId"/>.</summary>
    public static void WriteIndication(IBufferWriter<byte> output, ushort channelId, ReadOnlySpan<byte> userData)
    {
        var mcs = McsSendData.Create(DomainMcsPduType.SendDataIndication, ServerChannelId, channelId, userData.Length);
        var frame = X224Data.FrameOverhead + mcs.Size;
        X224Data.WriteFrameHeader(output.GetSpan(frame), frame);
        output.Advance(X224Data.FrameOverhead);
        mcs.Write(output, userData);
    }

    /// <summary>Writes a Share Data PDU (pduType2 and body) on the I/O channel.</summary>
    public static void WriteShareData(IBufferWriter<byte> output, uint shareId, ShareDataPduType type, ReadOnlySpan<byte> body)
    {
        var total = ShareDataHeader.Size + body.Length;
        Span<byte> pdu = stackalloc byte[total];
        var header = new ShareDataHeader(
            ShareControlHeader.Create(ShareControlPduType.Data, unchecked((ushort)total), ServerChannelId),
            shareId,
            0,
            ShareDataHeader.StreamLow,
            unchecked((ushort)(total - 14)), // uncompressedLength counts from pduType2 on, as in the spec's traces.
            type,
            0,
            0);
        header.WriteTo(pdu);
        body.CopyTo(pdu[ShareDataHeader.Size..]);
        WriteIndication(output, IoChannelId, pdu);
    }

    /// <summary>[MS-RDPBCGR] 2.2.1.19-22: the server's Synchronize, Control Cooperate, Control Granted and Font Map, in that order.</summary>
    public static void WriteFinalization(IBufferWriter<byte> output, uint shareId, ushort userChannelId)
    {
        Span<byte> body = stackalloc byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(body, 1); // messageType SYNCMSGTYPE_SYNC
        BinaryPrimitives.WriteUInt16LittleEndian(body[2..], userChannelId); // targetUser
        WriteShareData(output, shareId, ShareDataPduType.Synchronize, body[..4]);

        body.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(body, 4); // CTRLACTION_COOPERATE
        WriteShareData(output, shareId, ShareDataPduType.Control, body);

        BinaryPrimitives.WriteUInt16LittleEndian(body, 2); // CTRLACTION_GRANTED_CONTROL
        BinaryPrimitives.WriteUInt16LittleEndian(body[2..], userChannelId); // grantId
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], ServerChannelId); // controlId
        WriteShareData(output, shareId, ShareDataPduType.Control, body);

        body.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(body[4..], 0x0003); // mapFlags FONTMAP_FIRST | FONTMAP_LAST
        BinaryPrimitives.WriteUInt16LittleEndian(body[6..], 0x0004); // entrySize
        WriteShareData(output, shareId, ShareDataPduType.FontMap, body);
    }

    /// <summary>[MS-RDPBCGR] 2.2.1.13.1 Demand Active PDU with the hold front's minimal capability sets.</summary>
    public static void WriteDemandActive(IBufferWriter<byte> output, uint shareId, int width, int height, int bitsPerPixel, uint maxRequestSize)
    {
        var caps = new ArrayBufferWriter<byte>();
        var count = 0;
        void Cap(CapabilitySetType type, ReadOnlySpan<byte> data)
        {
            var s = caps.GetSpan(4 + data.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)type);
            BinaryPrimitives.WriteUInt16LittleEndian(s[2..], unchecked((ushort)(4 + data.Length)));
            data.CopyTo(s[4..]);
            caps.Advance(4 + data.Length);
            count++;
        }

        Span<byte> d = stackalloc byte[84];

        // General: Windows, RDP 5+, fast-path output and long credentials, refresh rect and suppress output.
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, 1); // osMajorType OSMAJORTYPE_WINDOWS
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], 3); // osMinorType OSMINORTYPE_WINDOWS_NT
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], 0x0200); // protocolVersion TS_CAPS_PROTOCOLVERSION
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], FastPathOutputSupported | LongCredentialsSupported); // extraFlags
        d[18] = 1; // refreshRectSupport
        d[19] = 1; // suppressOutputSupport
        Cap(CapabilitySetType.General, d[..20]);

        // Bitmap: the client's size at the chosen depth; resize, compression and multiple rectangles allowed.
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, unchecked((ushort)bitsPerPixel)); // preferredBitsPerPixel
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], 1); // receive1BitPerPixel
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], 1); // receive4BitsPerPixel
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], 1); // receive8BitsPerPixel
        BinaryPrimitives.WriteUInt16LittleEndian(d[8..], unchecked((ushort)width)); // desktopWidth
        BinaryPrimitives.WriteUInt16LittleEndian(d[10..], unchecked((ushort)height)); // desktopHeight
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], 1); // desktopResizeFlag
        BinaryPrimitives.WriteUInt16LittleEndian(d[16..], 1); // bitmapCompressionFlag
        BinaryPrimitives.WriteUInt16LittleEndian(d[20..], 1); // multipleRectangleSupport
        Cap(CapabilitySetType.Bitmap, d[..24]);

        // Order: NEGOTIATEORDERSUPPORT | ZEROBOUNDSDELTASSUPPORT and no drawing order at all.
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d[20..], 1); // desktopSaveXGranularity
        BinaryPrimitives.WriteUInt16LittleEndian(d[22..], 20); // desktopSaveYGranularity
        BinaryPrimitives.WriteUInt16LittleEndian(d[26..], 1); // maximumOrderLevel ORD_LEVEL_1_ORDERS
        BinaryPrimitives.WriteUInt16LittleEndian(d[30..], 0x000A); // orderFlags
        Cap(CapabilitySetType.Order, d[..84]);

        // Pointer: colour pointers with a 25-entry cache.
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, 1); // colorPointerFlag
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], 25); // colorPointerCacheSize
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], 25); // pointerCacheSize
        Cap(CapabilitySetType.Pointer, d[..6]);

        // Input: scancodes, extended mouse, Unicode and both fast-path input forms.
        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, InputFlags);
        Cap(CapabilitySetType.Input, d[..84]);

        // Virtual Channel: no compression; the front never speaks on the channels.
        d.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], 1600); // VCChunkSize
        Cap(CapabilitySetType.VirtualChannel, d[..8]);

        d.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d, maxRequestSize);
        Cap(CapabilitySetType.MultifragmentUpdate, d[..4]);

        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, ServerChannelId); // nodeId
        Cap(CapabilitySetType.Share, d[..4]);

        d.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(d, 1); // fontSupportFlags FONTSUPPORT_FONTLIST
        Cap(CapabilitySetType.Font, d[..4]);

        ReadOnlySpan<byte> source = "RDP\0"u8;
        var combined = 2 /* numberCapabilities */ + 2 /* pad2Octets */ + caps.WrittenCount;
        var total = ShareControlHeader.Size + 4 /* shareId */ + 2 /* lengthSourceDescriptor */ + 2 /* lengthCombinedCapabilities */
            + source.Length + combined + 4 /* sessionId */;
        var pdu = new byte[total];
        ShareControlHeader.Create(ShareControlPduType.DemandActive, unchecked((ushort)total), ServerChannelId).WriteTo(pdu);
        var o = ShareControlHeader.Size;
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o), shareId);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o + 4), unchecked((ushort)source.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o + 6), unchecked((ushort)combined));
        o += 8;
        source.CopyTo(pdu.AsSpan(o));
        o += source.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o), unchecked((ushort)count));
        o += 4;
        caps.WrittenSpan.CopyTo(pdu.AsSpan(o));

        // sessionId stays 0 (the last four bytes).
        WriteIndication(output, IoChannelId, pdu);
    }
}

/// <summary>What the hold front reads from the client's Confirm Active PDU ([MS-RDPBCGR] 2.2.1.13.2).</summary>
/// <param name="ShareId">shareId.</param>
/// <param name="GeneralExtraFlags">General extraFlags, or null when the set is absent.</param>
/// <param name="BitsPerPixel">Bitmap preferredBitsPerPixel, or 0.</param>
/// <param name="DesktopWidth">Bitmap desktopWidth, or 0.</param>
/// <param name="DesktopHeight">Bitmap desktopHeight, or 0.</param>
/// <param name="MaxRequestSize">Multifragment Update MaxRequestSize, or 0 when the set is absent.</param>
/// <param name="InputFlags">Input inputFlags, or 0.</param>
/// <param name="CapabilityCount">numberCapabilities.</param>
public readonly record struct ConfirmActiveInfo(
    uint ShareId,
    ushort? GeneralExtraFlags,
    int BitsPerPixel,
    int DesktopWidth,
    int DesktopHeight,
    uint MaxRequestSize,
    ushort InputFlags,
    int CapabilityCount)
{
    internal const string Name = "Confirm Active PDU";

    /// <summary>Most capability sets a Confirm Active may carry here (clients send about 20).</summary>
    public const int MaxCapabilitySets = 64;

    /// <summary>Parses a Confirm Active PDU (share control header first) that fills <paramref name="source"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ConfirmActiveInfo value, out PduError? error)
    {
        value = default;
        if (!ShareControlHeader.TryParse(source, out var control, out error))
        {
            return false;
        }

        if (control.Type != ShareControlPduType.ConfirmActive)
        {
            error = PduError.Unexpected(Name, "pduType", $"{control.PduType & 0xF} is not PDUTYPE_CONFIRMACTIVEPDU");
            return false;
        }

        var reader = new WireReader(source, Name);
        reader.TrySkip(ShareControlHeader.Size, "shareControlHeader");
        if (!reader.TryReadU32LE("shareId", out var shareId)
            || !reader.TryReadU16LE("originatorId", out _)
            || !reader.TryReadU16LE("lengthSourceDescriptor", out var sourceLength)
            || !reader.TryReadU16LE("lengthCombinedCapabilities", out var combinedLength)
            || !reader.TrySkip(sourceLength, "sourceDescriptor")
            || !reader.TryReadBytes(combinedLength, "capabilities", out var combined))
        {
            error = reader.Error;
            return false;
        }

        var caps = new WireReader(combined, Name);
        if (!caps.TryReadU16LE("numberCapabilities", out var number) || !caps.TryReadU16LE("pad2Octets", out _))
        {
            error = caps.Error;
            return false;
        }

        if (number > MaxCapabilitySets)
        {
            error = PduError.TooLarge(Name, "numberCapabilities", number, MaxCapabilitySets);
            return false;
        }

        ushort? extraFlags = null;
        int bpp = 0, width = 0, height = 0;
        uint maxRequest = 0;
        ushort inputFlags = 0;
        for (var i = 0; i < number; i++)
        {
            if (!caps.TryReadU16LE("capabilitySetType", out var type) || !caps.TryReadU16LE("lengthCapability", out var length))
            {
                error = caps.Error;
                return false;
            }

            if (length < 4)
            {
                error = PduError.Invalid(Name, "lengthCapability", $"{length} is shorter than the capability header");
                return false;
            }

            if (!caps.TryReadBytes(length - 4, "capabilityData", out var data))
            {
                error = caps.Error;
                return false;
            }

            switch ((CapabilitySetType)type)
            {
                case CapabilitySetType.General when data.Length >= 12:
                    extraFlags = BinaryPrimitives.ReadUInt16LittleEndian(data[10..]);
                    break;
                case CapabilitySetType.Bitmap when data.Length >= 12:
                    bpp = BinaryPrimitives.ReadUInt16LittleEndian(data);
                    width = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
                    height = BinaryPrimitives.ReadUInt16LittleEndian(data[10..]);
                    break;
                case CapabilitySetType.MultifragmentUpdate when data.Length >= 4:
                    maxRequest = BinaryPrimitives.ReadUInt32LittleEndian(data);
                    break;
                case CapabilitySetType.Input when data.Length >= 2:
                    inputFlags = BinaryPrimitives.ReadUInt16LittleEndian(data);
                    break;
                case CapabilitySetType.General or CapabilitySetType.Bitmap or CapabilitySetType.MultifragmentUpdate or CapabilitySetType.Input:
                    error = PduError.Invalid(Name, "lengthCapability", $"{length} is too short for capability set {type}");
                    return false;
                default:
                    break;
            }
        }

        value = new ConfirmActiveInfo(shareId, extraFlags, bpp, width, height, maxRequest, inputFlags, number);
        error = null;
        return true;
    }
}
