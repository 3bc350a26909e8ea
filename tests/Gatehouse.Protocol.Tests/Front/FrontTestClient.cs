using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Front;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Front;

/// <summary>A decoded Demand Active PDU: shareId, sourceDescriptor and the capability sets by type.</summary>
internal sealed record DemandActive(uint ShareId, string SourceDescriptor, IReadOnlyDictionary<ushort, byte[]> Capabilities, ushort PduSource);

/// <summary>One Bitmap Update rectangle, decoded back to top-down pixels cropped to its destination.</summary>
internal sealed record DecodedBitmap(int Left, int Top, int Right, int Bottom, int Width, int Height, int BitsPerPixel, uint[] Pixels);

/// <summary>
/// The client side of the hold front's connection sequence, sans-IO: it writes the client's frames (with the shared
/// builders of the fuzz corpus) and decodes and checks every server PDU the front writes.
/// </summary>
internal sealed class FrontTestClient(HoldFrontClientSettings settings)
{
    public HoldFrontClientSettings Settings { get; } = settings;

    public ushort UserChannelId { get; private set; }

    public uint ShareId { get; private set; }

    public int ServerBitsPerPixel { get; private set; }

    public McsConnectResponse? ConnectResponse { get; private set; }

    public IReadOnlyList<ushort> StaticChannelIds { get; private set; } = [];

    public ushort? MessageChannelId { get; private set; }

    public DemandActive? Demand { get; private set; }

    public byte[] ConnectInitial() => HoldFrontClientPdus.ConnectInitial(Settings);

    /// <summary>Splits the front's output into whole frames.</summary>
    public static List<byte[]> Frames(ReadOnlyMemory<byte> output)
    {
        var frames = new List<byte[]>();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(output));
        while (!reader.End)
        {
            Assert.Equal(OperationStatus.Done, RdpFraming.TryReadFrame(ref reader, out var frame, out _, out var error));
            Assert.Null(error);
            frames.Add(frame.ToArray());
        }

        return frames;
    }

    /// <summary>The user data of a Send Data Indication frame from the server channel on the I/O channel.</summary>
    public static byte[] Indication(byte[] frame)
    {
        Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out var error), error?.ToString());
        Assert.True(McsSendData.TryParseIndication(payload, out var mcs, out var data, out error), error?.ToString());
        Assert.Equal(1002, mcs.Initiator);
        Assert.Equal(1003, mcs.ChannelId);
        return data.ToArray();
    }

    public void ReadConnectResponse(HoldFrontResult result)
    {
        Assert.True(result.IsSuccess, result.ToString());
        var frames = Frames(result.Output);
        Assert.Single(frames);
        Assert.True(McsConnectResponse.TryParseFrame(frames[0], out var response, out var error), error?.ToString());
        Assert.Equal(McsConnectResponse.ResultSuccessful, response.Result);
        ConnectResponse = response;
        var net = response.Find(GccBlockType.ServerNetwork)!.Encoded;
        Assert.Equal(1003, BinaryPrimitives.ReadUInt16LittleEndian(net[4..]));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(net[6..]);
        Assert.Equal(8 + (2 * count) + (count % 2 == 1 ? 2 : 0), net.Length);
        var ids = new List<ushort>();
        for (var i = 0; i < count; i++)
        {
            ids.Add(BinaryPrimitives.ReadUInt16LittleEndian(net[(8 + (2 * i))..]));
        }

        StaticChannelIds = ids;
        MessageChannelId = response.Find(GccBlockType.ServerMessageChannel) is { } msg ? BinaryPrimitives.ReadUInt16LittleEndian(msg.Encoded[4..]) : null;
    }

    public void ReadAttachUserConfirm(HoldFrontResult result)
    {
        Assert.True(result.IsSuccess, result.ToString());
        var frame = Assert.Single(Frames(result.Output));
        Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out var error), error?.ToString());
        Assert.True(AttachUserConfirm.TryParse(payload, out var confirm, out error), error?.ToString());
        Assert.Equal(McsResult.Successful, confirm.Result);
        UserChannelId = confirm.Initiator!.Value;
    }

    /// <summary>The channels a client joins: its user channel, the I/O channel, the statics and the message channel.</summary>
    public List<ushort> ChannelsToJoin()
    {
        List<ushort> ids = [UserChannelId, 1003, .. StaticChannelIds];
        if (MessageChannelId is { } msg)
        {
            ids.Add(msg);
        }

        return ids;
    }

    public void ReadChannelJoinConfirm(HoldFrontResult result, ushort channel)
    {
        Assert.True(result.IsSuccess, result.ToString());
        var frame = Assert.Single(Frames(result.Output));
        Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out var error), error?.ToString());
        Assert.True(ChannelJoinConfirm.TryParse(payload, out var confirm, out error), error?.ToString());
        Assert.Equal(McsResult.Successful, confirm.Result);
        Assert.Equal(UserChannelId, confirm.Initiator);
        Assert.Equal(channel, confirm.Requested);
        Assert.Equal(channel, confirm.ChannelId);
    }

    public byte[] ClientInfo(string password = "Sw0rdfish!") => HoldFrontClientPdus.ClientInfo(UserChannelId, "CORP", "alice", password);

    /// <summary>Reads the License Error (valid client) and the Demand Active that answer the Client Info PDU.</summary>
    public void ReadLicenseAndDemandActive(HoldFrontResult result)
    {
        Assert.True(result.IsSuccess, result.ToString());
        var frames = Frames(result.Output);
        Assert.Equal(2, frames.Count);
        Assert.True(ServerRefusal.TryParseLicenseError(Indication(frames[0]), out var code, out var transition, out var error), error?.ToString());
        Assert.Equal(ServerRefusal.StatusValidClient, code);
        Assert.Equal(ServerRefusal.NoTransition, transition);
        Demand = ParseDemandActive(Indication(frames[1]));
        ShareId = Demand.ShareId;
        ServerBitsPerPixel = BinaryPrimitives.ReadUInt16LittleEndian(Demand.Capabilities[2]);
    }

    public static DemandActive ParseDemandActive(byte[] pdu)
    {
        Assert.True(ShareControlHeader.TryParse(pdu, out var control, out var error), error?.ToString());
        Assert.Equal(ShareControlPduType.DemandActive, control.Type);
        var shareId = BinaryPrimitives.ReadUInt32LittleEndian(pdu.AsSpan(6));
        int sourceLength = BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(10));
        int combined = BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(12));
        var source = System.Text.Encoding.ASCII.GetString(pdu, 14, sourceLength);
        var o = 14 + sourceLength;
        Assert.Equal(pdu.Length, o + combined + 4); // sessionId follows the capabilities
        int count = BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(o));
        o += 4;
        var caps = new Dictionary<ushort, byte[]>();
        for (var i = 0; i < count; i++)
        {
            var type = BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(o));
            int length = BinaryPrimitives.ReadUInt16LittleEndian(pdu.AsSpan(o + 2));
            caps.Add(type, pdu.AsSpan(o + 4, length - 4).ToArray());
            o += length;
        }

        Assert.Equal(pdu.Length - 4, o);
        return new DemandActive(shareId, source, caps, control.PduSource);
    }

    public byte[] ConfirmActive() => HoldFrontClientPdus.ConfirmActive(UserChannelId, ShareId, ServerBitsPerPixel, Settings);

    public List<byte[]> FinalizationFrames() =>
    [
        HoldFrontClientPdus.Synchronize(UserChannelId, ShareId),
        HoldFrontClientPdus.Control(UserChannelId, ShareId, 4),
        HoldFrontClientPdus.Control(UserChannelId, ShareId, 1),
        HoldFrontClientPdus.PersistentKeyList(UserChannelId, ShareId),
        HoldFrontClientPdus.FontList(UserChannelId, ShareId),
    ];

    /// <summary>Checks Synchronize, Cooperate, Granted, Font Map (in that order), then PTR_DEFAULT when expected.</summary>
    public void ReadFinalization(HoldFrontResult result, bool defaultPointer = true)
    {
        Assert.True(result.IsSuccess, result.ToString());
        var frames = Frames(result.Output);
        Assert.Equal(defaultPointer ? 5 : 4, frames.Count);
        var types = new List<(ShareDataPduType Type, byte[] Body)>();
        foreach (var frame in frames.Take(4))
        {
            var data = Indication(frame);
            Assert.True(ShareDataHeader.TryParse(data, out var header, out var error), error?.ToString());
            Assert.Equal(ShareId, header.ShareId);
            Assert.Equal(data.Length - 14, header.UncompressedLength);
            types.Add((header.PduType2, data[ShareDataHeader.Size..]));
        }

        Assert.Equal([ShareDataPduType.Synchronize, ShareDataPduType.Control, ShareDataPduType.Control, ShareDataPduType.FontMap], types.Select(t => t.Type));
        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(types[1].Body)); // CTRLACTION_COOPERATE
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(types[2].Body)); // CTRLACTION_GRANTED_CONTROL
        Assert.Equal(UserChannelId, BinaryPrimitives.ReadUInt16LittleEndian(types[2].Body.AsSpan(2))); // grantId
        Assert.Equal(0x03EAu, BinaryPrimitives.ReadUInt32LittleEndian(types[2].Body.AsSpan(4))); // controlId
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(types[3].Body.AsSpan(4))); // mapFlags
        if (defaultPointer)
        {
            Assert.Equal(new byte[] { 0x00, 0x05, 0x06, 0x00, 0x00 }, frames[4]);
        }
    }

    /// <summary>Drives <paramref name="front"/> from the Connect Initial to Active, checking every server PDU.</summary>
    public HoldFront RunToActive(HoldFront front)
    {
        ReadConnectResponse(front.Receive(ConnectInitial()));
        AssertQuiet(front.Receive(HoldFrontClientPdus.ErectDomain()));
        ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        if (!Settings.SkipChannelJoin)
        {
            foreach (var channel in ChannelsToJoin())
            {
                ReadChannelJoinConfirm(front.Receive(HoldFrontClientPdus.ChannelJoin(UserChannelId, channel)), channel);
            }
        }

        Assert.Equal(HoldFrontState.WaitingForClientInfo, front.State);
        var info = front.Receive(ClientInfo());
        ReadLicenseAndDemandActive(info);
        Assert.IsType<ClientInfoReceived>(Assert.Single(info.Events));
        AssertQuiet(front.Receive(ConfirmActive()));
        var frames = FinalizationFrames();
        foreach (var frame in frames.Take(frames.Count - 1))
        {
            AssertQuiet(front.Receive(frame));
        }

        var last = front.Receive(frames[^1]);
        ReadFinalization(last);
        Assert.IsType<Activated>(Assert.Single(last.Events));
        Assert.Equal(HoldFrontState.Active, front.State);
        return front;
    }

    public static void AssertQuiet(HoldFrontResult result)
    {
        Assert.True(result.IsSuccess, result.ToString());
        Assert.True(result.Output.IsEmpty);
    }

    /// <summary>
    /// Reassembles the fast-path Bitmap Updates in <paramref name="output"/>, checking every PDU's size, the
    /// fragmentation order and the reassembled size against <paramref name="maxRequestSize"/>, and un-flips the rows.
    /// </summary>
    public static List<DecodedBitmap> DecodeBitmaps(ReadOnlyMemory<byte> output, uint maxRequestSize)
    {
        var bitmaps = new List<DecodedBitmap>();
        List<byte>? pending = null;
        foreach (var frame in Frames(output))
        {
            Assert.True(frame.Length <= FrontOutput.MaxFastPathPduSize, $"a {frame.Length}-byte fast-path PDU");
            Assert.True(FastPathHeader.TryParse(frame, out var header, out var error), error?.ToString());
            Assert.Equal(frame.Length, header.Length);
            var o = header.HeaderSize;
            var updateHeader = frame[o];
            Assert.Equal(FrontOutput.UpdateCodeBitmap, updateHeader & 0x0F);
            Assert.Equal(0, updateHeader >> 6); // no compression
            var fragmentation = (updateHeader >> 4) & 0x3;
            int size = BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(o + 1));
            Assert.Equal(frame.Length - o - 3, size);
            var chunk = frame.AsSpan(o + 3, size).ToArray();
            switch (fragmentation)
            {
                case FrontOutput.FragmentSingle:
                    Assert.Null(pending);
                    bitmaps.Add(DecodeUpdate(chunk));
                    break;
                case FrontOutput.FragmentFirst:
                    Assert.Null(pending);
                    pending = [.. chunk];
                    break;
                case FrontOutput.FragmentNext:
                    Assert.NotNull(pending);
                    pending.AddRange(chunk);
                    break;
                default:
                    Assert.NotNull(pending);
                    pending.AddRange(chunk);
                    Assert.True(pending.Count <= maxRequestSize, $"a reassembled update of {pending.Count} bytes exceeds MaxRequestSize {maxRequestSize}");
                    bitmaps.Add(DecodeUpdate([.. pending]));
                    pending = null;
                    break;
            }
        }

        Assert.Null(pending);
        return bitmaps;
    }

    private static DecodedBitmap DecodeUpdate(byte[] update)
    {
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(update)); // UPDATETYPE_BITMAP
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(update.AsSpan(2))); // one rectangle per update
        int U(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(update.AsSpan(4 + offset));
        int left = U(0), top = U(2), right = U(4), bottom = U(6), width = U(8), height = U(10), bpp = U(12), flags = U(14), length = U(16);
        Assert.Equal(0, width % 4);
        Assert.True(width <= 64 && height <= 64);
        Assert.Equal(bottom - top + 1, height);
        Assert.InRange(right - left + 1, width - 3, width);
        var bytesPerPixel = bpp / 8;
        Assert.Equal(22 + length, update.Length);
        if (flags == FrontOutput.BitmapCompression)
        {
            Assert.Equal(32, bpp);
            var header = update.AsSpan(22, 8);
            Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(header)); // cbCompFirstRowSize
            Assert.Equal(length - 8, BinaryPrimitives.ReadUInt16LittleEndian(header[2..])); // cbCompMainBodySize
            Assert.Equal(width * 4, BinaryPrimitives.ReadUInt16LittleEndian(header[4..])); // cbScanWidth
            Assert.Equal(width * height * 4, BinaryPrimitives.ReadUInt16LittleEndian(header[6..])); // cbUncompressedSize
            Assert.True(length - 8 < width * height * 4, "a compressed tile must be smaller than the raw one");
            update = [.. update.AsSpan(0, 22), .. DecodePlanar(update.AsSpan(30), width, height)];
        }
        else
        {
            Assert.Equal(0, flags);
            Assert.Equal(width * height * bytesPerPixel, length);
        }
        var visible = right - left + 1;
        var pixels = new uint[visible * height];
        for (var row = 0; row < height; row++)
        {
            var line = update.AsSpan(22 + ((height - 1 - row) * width * bytesPerPixel)); // bottom-up
            for (var i = 0; i < visible; i++)
            {
                pixels[(row * visible) + i] = bytesPerPixel == 4
                    ? BinaryPrimitives.ReadUInt32LittleEndian(line[(4 * i)..])
                    : BinaryPrimitives.ReadUInt16LittleEndian(line[(2 * i)..]);
            }
        }

        return new DecodedBitmap(left, top, right, bottom, width, height, bpp, pixels);
    }

    /// <summary>
    /// [MS-RDPEGDI] 3.1.9 RDP 6.0 planar decoding for the form the front writes (RLE, no alpha, no colour loss): the
    /// planes red, green, blue, each scanline in RLE segments, the first scanline absolute and the rest deltas.
    /// Returns BGRA rows in the order they were sent, alpha 0xFF.
    /// </summary>
    public static byte[] DecodePlanar(ReadOnlySpan<byte> stream, int width, int height)
    {
        Assert.Equal(Rdp6Planar.FormatHeader, stream[0]);
        var bgra = new byte[width * height * 4];
        for (var i = 3; i < bgra.Length; i += 4)
        {
            bgra[i] = 0xFF;
        }

        var o = 1;
        foreach (var channel in new[] { 2, 1, 0 })
        {
            var plane = DecodePlane(stream, ref o, width, height);
            for (var p = 0; p < width * height; p++)
            {
                bgra[(4 * p) + channel] = plane[p];
            }
        }

        Assert.Equal(stream.Length, o);
        return bgra;
    }

    /// <summary>Decodes one RLE plane at <paramref name="o"/> (absolute first scanline, then deltas).</summary>
    public static byte[] DecodePlane(ReadOnlySpan<byte> stream, ref int o, int width, int height)
    {
        var plane = new byte[width * height];
        for (var y = 0; y < height; y++)
        {
            var x = 0;
            byte value = 0;
            while (x < width)
            {
                var control = stream[o++];
                int raw = control >> 4, run = control & 0x0F;
                if (run is 1 or 2)
                {
                    run = (run * 16) + raw;
                    raw = 0;
                }

                Assert.True(x + raw + run <= width, $"a segment runs past the {width}-byte scanline");
                for (var i = 0; i < raw + run; i++)
                {
                    if (i < raw)
                    {
                        value = stream[o++];
                    }

                    plane[(y * width) + x++] = value;
                }
            }

            if (y > 0)
            {
                for (var i = 0; i < width; i++)
                {
                    var encoded = plane[(y * width) + i];
                    var delta = (encoded & 1) != 0 ? -((encoded >> 1) + 1) : encoded >> 1;
                    plane[(y * width) + i] = unchecked((byte)(plane[((y - 1) * width) + i] + delta));
                }
            }
        }

        return plane;
    }
}
