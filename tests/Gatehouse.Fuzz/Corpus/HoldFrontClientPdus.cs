using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>What the client side of a hold-front sequence announces.</summary>
public sealed record HoldFrontClientSettings
{
    public int Width { get; init; } = 1024;

    public int Height { get; init; } = 768;

    public bool Want32Bpp { get; init; } = true;

    /// <summary>CS_CORE highColorDepth (FreeRDP writes 16 for /bpp:16, 24 otherwise).</summary>
    public int HighColorDepth { get; init; } = 24;

    public bool SkipChannelJoin { get; init; }

    public bool SupportErrorInfo { get; init; } = true;

    public IReadOnlyList<string> Channels { get; init; } = ["rdpdr", "rdpsnd", "cliprdr"];

    public bool MessageChannel { get; init; }

    public bool Redirection { get; init; } = true;

    /// <summary>MaxRequestSize of the Confirm Active's Multifragment Update set; null leaves the set out.</summary>
    public uint? MaxRequestSize { get; init; } = 0x0009_8000;

    /// <summary>Bitmap preferredBitsPerPixel in the Confirm Active; null echoes what the server proposed.</summary>
    public int? ConfirmBitsPerPixel { get; init; }

    public ushort GeneralExtraFlags { get; init; } = 0x0001 | 0x0004 | 0x0400;
}

/// <summary>
/// Builders for the client PDUs of the hold front's connection sequence ([MS-RDPBCGR] 2.2.1.3-18) and input, each a
/// whole frame (TPKT, X.224 Data, MCS) or a fast-path PDU. Shared by the fuzz target's seeds and the test client.
/// </summary>
public static class HoldFrontClientPdus
{
    public const ushort IoChannelId = 1003;

    /// <summary>The Connect Initial frame: CS_CORE, CS_SECURITY, CS_NET, CS_CLUSTER and optionally CS_MCS_MSGCHANNEL.</summary>
    public static byte[] ConnectInitial(HoldFrontClientSettings settings, SecurityProtocol selected = SecurityProtocol.Hybrid)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var blocks = new ArrayBufferWriter<byte>();
        var core = new byte[216];
        BinaryPrimitives.WriteUInt16LittleEndian(core, 0xC001);
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(2), (ushort)core.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(4), 0x0008_0004); // version
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(8), (ushort)settings.Width);
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(10), (ushort)settings.Height);
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(12), 0xCA01); // colorDepth RNS_UD_COLOR_8BPP
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(14), 0xAA03); // SASSequence
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(16), 0x0409); // keyboardLayout
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(20), 2600); // clientBuild
        Encoding.Unicode.GetBytes("FRONTTEST").CopyTo(core.AsSpan(24));
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(56), 4); // keyboardType
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(64), 12); // keyboardFunctionKey
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(132), 0xCA01); // postBeta2ColorDepth
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(134), 1); // clientProductId
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(140), (ushort)settings.HighColorDepth); // highColorDepth
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(142), 0x000F); // supportedColorDepths: 24, 16, 15 and 32, as FreeRDP lists them
        var early = (settings.SupportErrorInfo ? 0x0001 : 0) | (settings.Want32Bpp ? 0x0002 : 0) | (settings.SkipChannelJoin ? 0x0800 : 0);
        BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(144), (ushort)early);
        BinaryPrimitives.WriteUInt32LittleEndian(core.AsSpan(212), (uint)selected);
        blocks.Write(core);

        blocks.Write(new byte[] { 0x02, 0xC0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0 }); // CS_SECURITY: no encryption methods

        var net = new byte[8 + (12 * settings.Channels.Count)];
        BinaryPrimitives.WriteUInt16LittleEndian(net, 0xC003);
        BinaryPrimitives.WriteUInt16LittleEndian(net.AsSpan(2), (ushort)net.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(net.AsSpan(4), (uint)settings.Channels.Count);
        for (var i = 0; i < settings.Channels.Count; i++)
        {
            Encoding.ASCII.GetBytes(settings.Channels[i]).CopyTo(net.AsSpan(8 + (12 * i)));
            BinaryPrimitives.WriteUInt32LittleEndian(net.AsSpan(16 + (12 * i)), 0x8080_0000); // INITIALIZED | ENCRYPT_RDP
        }

        blocks.Write(net);
        var cluster = new byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(cluster, 0xC004);
        BinaryPrimitives.WriteUInt16LittleEndian(cluster.AsSpan(2), 12);
        BinaryPrimitives.WriteUInt32LittleEndian(cluster.AsSpan(4), settings.Redirection ? 0x0000_000Du : 0x0000_000Cu); // REDIRECTION_SUPPORTED | version 3
        blocks.Write(cluster);
        if (settings.MessageChannel)
        {
            blocks.Write(new byte[] { 0x06, 0xC0, 8, 0, 0, 0, 0, 0 });
        }

        ReadOnlySpan<byte> parameters = [0x30, 0x19, 0x02, 0x01, 0x22, 0x02, 0x01, 0x02, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01, 0x02, 0x02, 0xFF, 0xFF, 0x02, 0x01, 0x02];
        ReadOnlySpan<byte> t124 = [0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01];
        ReadOnlySpan<byte> request = [0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xC0, 0x00, 0x44, 0x75, 0x63, 0x61];
        var blockBytes = blocks.WrittenSpan;
        var connectPdu = request.Length + 2 + blockBytes.Length;
        var userData = t124.Length + 2 + connectPdu;
        var pdu = new List<byte>();
        pdu.AddRange([0x04, 0x01, 0x01, 0x04, 0x01, 0x01, 0x01, 0x01, 0xFF]); // calling, called, upwardFlag
        for (var i = 0; i < 3; i++)
        {
            pdu.AddRange(parameters);
        }

        pdu.AddRange([0x04, 0x82, (byte)(userData >> 8), unchecked((byte)userData)]);
        pdu.AddRange(t124);
        pdu.AddRange([(byte)(0x80 | (connectPdu >> 8)), unchecked((byte)connectPdu)]);
        pdu.AddRange(request);
        pdu.AddRange([(byte)(0x80 | (blockBytes.Length >> 8)), unchecked((byte)blockBytes.Length)]);
        pdu.AddRange(blockBytes.ToArray());
        var body = pdu.Count;
        byte[] head = [0x7F, 0x65, 0x82, (byte)(body >> 8), unchecked((byte)body)];
        return Frame([.. head, .. pdu]);
    }

    /// <summary>An X.224 Data frame around an MCS PDU.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> mcs)
    {
        var frame = new byte[X224Data.FrameOverhead + mcs.Length];
        X224Data.WriteFrameHeader(frame, frame.Length);
        mcs.CopyTo(frame.AsSpan(X224Data.FrameOverhead));
        return frame;
    }

    public static byte[] ErectDomain() => Domain(new ErectDomainRequest(0, 0).Write);

    public static byte[] AttachUser() => Domain(new AttachUserRequest().Write);

    public static byte[] ChannelJoin(ushort user, ushort channel) => Domain(new ChannelJoinRequest(user, channel).Write);

    public static byte[] Disconnect() => Domain(new DisconnectProviderUltimatum(McsDisconnectReason.UserRequested).Write);

    /// <summary>A Send Data Request frame from <paramref name="user"/> on <paramref name="channel"/>.</summary>
    public static byte[] SendData(ushort user, ushort channel, ReadOnlySpan<byte> userData)
    {
        var buffer = new ArrayBufferWriter<byte>();
        McsSendData.Create(DomainMcsPduType.SendDataRequest, user, channel, userData.Length).Write(buffer, userData);
        return Frame(buffer.WrittenSpan);
    }

    /// <summary>The Client Info PDU frame.</summary>
    public static byte[] ClientInfo(ushort user, string domain, string userName, string password)
    {
        var pdu = new ClientInfoPdu
        {
            Initiator = user,
            ChannelId = IoChannelId,
            Packet = new ClientInfoPacket
            {
                Flags = ClientInfoFlags.Unicode | ClientInfoFlags.Mouse | ClientInfoFlags.LogonNotify | ClientInfoFlags.AutoLogon,
                DomainBytes = ClientInfoPacket.Utf16(domain),
                UserNameBytes = ClientInfoPacket.Utf16(userName),
                PasswordBytes = ClientInfoPacket.Utf16(password),
            },
        };
        var buffer = new ArrayBufferWriter<byte>();
        pdu.Write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The Confirm Active PDU frame (General, Bitmap, Order, Input, Multifragment Update).</summary>
    public static byte[] ConfirmActive(ushort user, uint shareId, int bitsPerPixel, HoldFrontClientSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var caps = new List<byte[]>();
        var general = new byte[24];
        Cap(general, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(general.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16LittleEndian(general.AsSpan(6), 3);
        BinaryPrimitives.WriteUInt16LittleEndian(general.AsSpan(8), 0x0200);
        BinaryPrimitives.WriteUInt16LittleEndian(general.AsSpan(14), settings.GeneralExtraFlags);
        caps.Add(general);
        var bitmap = new byte[28];
        Cap(bitmap, 2);
        BinaryPrimitives.WriteUInt16LittleEndian(bitmap.AsSpan(4), (ushort)(settings.ConfirmBitsPerPixel ?? bitsPerPixel));
        BinaryPrimitives.WriteUInt16LittleEndian(bitmap.AsSpan(12), (ushort)settings.Width);
        BinaryPrimitives.WriteUInt16LittleEndian(bitmap.AsSpan(14), (ushort)settings.Height);
        caps.Add(bitmap);
        var order = new byte[88];
        Cap(order, 3);
        caps.Add(order);
        var input = new byte[88];
        Cap(input, 13);
        BinaryPrimitives.WriteUInt16LittleEndian(input.AsSpan(4), 0x0035);
        caps.Add(input);
        if (settings.MaxRequestSize is { } max)
        {
            var multifragment = new byte[8];
            Cap(multifragment, 26);
            BinaryPrimitives.WriteUInt32LittleEndian(multifragment.AsSpan(4), max);
            caps.Add(multifragment);
        }

        ReadOnlySpan<byte> source = "MSTSC\0"u8;
        var combined = 4 + caps.Sum(c => c.Length);
        var total = 6 + 4 + 2 + 2 + 2 + source.Length + combined;
        var pdu = new byte[total];
        BinaryPrimitives.WriteUInt16LittleEndian(pdu, (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(2), (ushort)(ShareControlHeader.ProtocolVersion | (ushort)ShareControlPduType.ConfirmActive));
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(4), user);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(6), shareId);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(10), 0x03EA); // originatorId
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(12), (ushort)source.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(14), (ushort)combined);
        source.CopyTo(pdu.AsSpan(16));
        var o = 16 + source.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o), (ushort)caps.Count);
        o += 4;
        foreach (var cap in caps)
        {
            cap.CopyTo(pdu.AsSpan(o));
            o += cap.Length;
        }

        return SendData(user, IoChannelId, pdu);
    }

    /// <summary>A Share Data PDU frame (pduType2 and body) on the I/O channel.</summary>
    public static byte[] ShareData(ushort user, uint shareId, byte pduType2, ReadOnlySpan<byte> body)
    {
        var total = ShareDataHeader.Size + body.Length;
        var pdu = new byte[total];
        new ShareDataHeader(
            ShareControlHeader.Create(ShareControlPduType.Data, (ushort)total, user), shareId, 0, ShareDataHeader.StreamLow,
            (ushort)(total - 14), (ShareDataPduType)pduType2, 0, 0).WriteTo(pdu);
        body.CopyTo(pdu.AsSpan(ShareDataHeader.Size));
        return SendData(user, IoChannelId, pdu);
    }

    public static byte[] Synchronize(ushort user, uint shareId) => ShareData(user, shareId, 0x1F, [0x01, 0x00, 0xEA, 0x03]);

    public static byte[] Control(ushort user, uint shareId, ushort action) => ShareData(user, shareId, 0x14, [unchecked((byte)action), 0, 0, 0, 0, 0, 0, 0]);

    public static byte[] PersistentKeyList(ushort user, uint shareId) => ShareData(user, shareId, 0x2B, new byte[24] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0 });

    public static byte[] FontList(ushort user, uint shareId) => ShareData(user, shareId, 0x27, [0, 0, 0, 0, 3, 0, 0x32, 0]);

    public static byte[] ShutdownRequest(ushort user, uint shareId) => ShareData(user, shareId, 0x24, []);

    public static byte[] RefreshRect(ushort user, uint shareId, params (ushort Left, ushort Top, ushort Right, ushort Bottom)[] areas)
    {
        ArgumentNullException.ThrowIfNull(areas);
        var body = new byte[4 + (8 * areas.Length)];
        body[0] = unchecked((byte)areas.Length);
        for (var i = 0; i < areas.Length; i++)
        {
            var s = body.AsSpan(4 + (8 * i));
            BinaryPrimitives.WriteUInt16LittleEndian(s, areas[i].Left);
            BinaryPrimitives.WriteUInt16LittleEndian(s[2..], areas[i].Top);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], areas[i].Right);
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], areas[i].Bottom);
        }

        return ShareData(user, shareId, 0x21, body);
    }

    public static byte[] SuppressOutput(ushort user, uint shareId, bool allow, ushort width = 0, ushort height = 0)
    {
        if (!allow)
        {
            return ShareData(user, shareId, 0x23, [0, 0, 0, 0]);
        }

        var body = new byte[12];
        body[0] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(8), (ushort)(width - 1));
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(10), (ushort)(height - 1));
        return ShareData(user, shareId, 0x23, body);
    }

    /// <summary>A slow-path input PDU with events of (messageType, three 16-bit words).</summary>
    public static byte[] SlowPathInput(ushort user, uint shareId, params (ushort Type, ushort A, ushort B, ushort C)[] events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var body = new byte[4 + (12 * events.Length)];
        BinaryPrimitives.WriteUInt16LittleEndian(body, (ushort)events.Length);
        for (var i = 0; i < events.Length; i++)
        {
            var s = body.AsSpan(4 + (12 * i));
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], events[i].Type);
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], events[i].A);
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], events[i].B);
            BinaryPrimitives.WriteUInt16LittleEndian(s[10..], events[i].C);
        }

        return ShareData(user, shareId, 0x1C, body);
    }

    /// <summary>A fast-path input PDU around already encoded events (numEvents in the header when it fits).</summary>
    public static byte[] FastPathInput(int count, ReadOnlySpan<byte> events)
    {
        var inHeader = count is > 0 and < 16;
        var length = 3 + (inHeader ? 0 : 1) + events.Length;
        var pdu = new byte[length];
        pdu[0] = (byte)(inHeader ? count << 2 : 0);
        pdu[1] = (byte)(0x80 | (length >> 8));
        pdu[2] = unchecked((byte)length);
        var o = 3;
        if (!inHeader)
        {
            pdu[o++] = unchecked((byte)count);
        }

        events.CopyTo(pdu.AsSpan(o));
        return pdu;
    }

    /// <summary>The client frames from the Connect Initial to the Font List, given the ids the server will assign.</summary>
    public static List<byte[]> Sequence(HoldFrontClientSettings settings, uint shareId)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var user = UserChannel(settings);
        var frames = new List<byte[]> { ConnectInitial(settings), ErectDomain(), AttachUser() };
        if (!settings.SkipChannelJoin)
        {
            for (var id = IoChannelId; id <= user; id++)
            {
                frames.Add(ChannelJoin(user, id));
            }
        }

        frames.Add(ClientInfo(user, "CORP", "alice", "Sw0rdfish!"));
        frames.Add(ConfirmActive(user, shareId, settings.Want32Bpp ? 32 : 16, settings));
        frames.Add(Synchronize(user, shareId));
        frames.Add(Control(user, shareId, 4));
        frames.Add(Control(user, shareId, 1));
        frames.Add(PersistentKeyList(user, shareId));
        frames.Add(FontList(user, shareId));
        return frames;
    }

    /// <summary>The user channel id the hold front gives: after the I/O, static and message channels.</summary>
    public static ushort UserChannel(HoldFrontClientSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return (ushort)(IoChannelId + 1 + settings.Channels.Count + (settings.MessageChannel ? 1 : 0));
    }

    private static void Cap(byte[] cap, ushort type)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(cap, type);
        BinaryPrimitives.WriteUInt16LittleEndian(cap.AsSpan(2), (ushort)cap.Length);
    }

    private static byte[] Domain(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return Frame(buffer.WrittenSpan);
    }
}
