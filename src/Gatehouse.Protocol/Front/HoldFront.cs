using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Front;

/// <summary>
/// The hold front: the server side of the RDP connection sequence ([MS-RDPBCGR] 1.3.1.1) after TLS and CredSSP, from
/// the client's MCS Connect Initial to the end of finalization, then the paint-and-read phase. Sans-IO: the caller
/// frames the client's bytes (<see cref="RdpFraming.Inspect"/>), hands each whole frame to <see cref="Receive"/>,
/// sends <see cref="HoldFrontResult.Output"/>, and reacts to the events. Once Active it paints with
/// <see cref="WriteBitmap"/> and ends with <see cref="WriteRefusal"/> or <see cref="WriteRedirection"/>.
/// The front never speaks on the virtual channels: data on them is ignored, so their state machines stay fresh.
/// </summary>
public sealed class HoldFront
{
    /// <summary>earlyCapabilityFlags RNS_UD_CS_SUPPORT_ERRINFO_PDU.</summary>
    public const ushort EarlySupportErrorInfo = 0x0001;

    /// <summary>earlyCapabilityFlags RNS_UD_CS_WANT_32BPP_SESSION.</summary>
    public const ushort EarlyWant32Bpp = 0x0002;

    /// <summary>earlyCapabilityFlags RNS_UD_CS_SUPPORT_SKIP_CHANNELJOIN.</summary>
    public const ushort EarlySkipChannelJoin = 0x0800;

    /// <summary>CS_CLUSTER flags REDIRECTION_SUPPORTED.</summary>
    public const uint ClusterRedirectionSupported = 0x0000_0001;

    /// <summary>The longest routing token <see cref="WriteRedirection"/> accepts.</summary>
    public const int MaxRoutingTokenLength = 128;

    private const ushort PersistentKeyList = 0x2B;
    private const ushort SuppressOutputType = 0x23;

    private readonly HoldFrontOptions _options;
    private readonly ArrayBufferWriter<byte> _output = new();
    private readonly List<HoldFrontEvent> _events = [];
    private readonly HashSet<ushort> _pendingJoins = [];
    private readonly List<ushort> _channelIds = [];
    private IReadOnlyList<ChannelDefinition> _channels = [];
    private ushort _earlyFlags;

    /// <summary>A front for one client connection.</summary>
    public HoldFront(HoldFrontOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>Where the front is.</summary>
    public HoldFrontState State { get; private set; } = HoldFrontState.WaitingForConnectInitial;

    /// <summary>The client's Connect Initial as received (kept for a later replay towards a backend).</summary>
    public McsConnectInitial? ConnectInitial { get; private set; }

    /// <summary>The static virtual channels the client asked for, in order.</summary>
    public IReadOnlyList<ChannelDefinition> Channels => _channels;

    /// <summary>The MCS channel id given to each of <see cref="Channels"/>, in the same order (1004 on).</summary>
    public IReadOnlyList<ushort> ChannelIds => _channelIds;

    /// <summary>The message channel id, when the client asked for one.</summary>
    public ushort? MessageChannelId { get; private set; }

    /// <summary>The client's MCS user channel id (after the static and message channels).</summary>
    public ushort UserChannelId { get; private set; }

    /// <summary>True when both sides skip the channel joins.</summary>
    public bool SkipChannelJoin { get; private set; }

    /// <summary>True when the client's CS_CLUSTER says REDIRECTION_SUPPORTED (a redirection can hand it over).</summary>
    public bool ClientSupportsRedirection { get; private set; }

    /// <summary>True when the client understands the Set Error Info PDU.</summary>
    public bool ClientSupportsErrorInfo => (_earlyFlags & EarlySupportErrorInfo) != 0;

    /// <summary>The desktop width (CS_CORE, then the Confirm Active's Bitmap capability).</summary>
    public int DesktopWidth { get; private set; }

    /// <summary>The desktop height.</summary>
    public int DesktopHeight { get; private set; }

    /// <summary>The colour depth of the bitmaps the front writes: 32 or 16.</summary>
    public int BitsPerPixel { get; private set; }

    /// <summary>The client's Multifragment Update MaxRequestSize (0 when it sent none: no fragmented update is sent then).</summary>
    public uint ClientMaxRequestSize { get; private set; }

    /// <summary>What the Client Info PDU said, once it arrived.</summary>
    public HoldClientInfo? ClientInfo { get; private set; }

    /// <summary>True after a Suppress Output PDU that stopped display updates, until one resumes them (paint nothing meanwhile).</summary>
    public bool OutputSuppressed { get; private set; }

    /// <summary>Input events that arrived before activation and were dropped.</summary>
    public int DroppedInputFrames { get; private set; }

    /// <summary>
    /// Handles one whole client frame (a TPKT or a fast-path PDU). The caller should wipe its own copy of the frame
    /// that carried the Client Info PDU, which holds the password.
    /// </summary>
    public HoldFrontResult Receive(ReadOnlySpan<byte> frame)
    {
        _output.ResetWrittenCount();
        _events.Clear();
        if (State == HoldFrontState.Closed)
        {
            return Failure(HoldFrontError.Closed, "the hold front is closed", null);
        }

        if (frame.IsEmpty)
        {
            return Failure(HoldFrontError.MalformedPdu, "an empty frame", PduError.NotEnough("RDP frame", "first byte", 1, 0));
        }

        if (frame[0] != TpktHeader.Version)
        {
            return ReceiveFastPath(frame);
        }

        if (!X224Data.TryUnwrapFrame(frame, out var payload, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the frame is not an X.224 Data TPDU", error);
        }

        if (State == HoldFrontState.WaitingForConnectInitial)
        {
            return ReceiveConnectInitial(payload);
        }

        if (!McsDomainPdu.TryClassify(payload, out var type, out error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS PDU is malformed", error);
        }

        if (type == DomainMcsPduType.DisconnectProviderUltimatum)
        {
            return Failure(HoldFrontError.ClientDisconnected, "the client disconnected", null);
        }

        return (State, type) switch
        {
            (HoldFrontState.WaitingForErectDomain, DomainMcsPduType.ErectDomainRequest) => ReceiveErectDomain(payload),
            (HoldFrontState.WaitingForAttachUser, DomainMcsPduType.AttachUserRequest) => ReceiveAttachUser(payload),
            (HoldFrontState.JoiningChannels or HoldFrontState.WaitingForClientInfo, DomainMcsPduType.ChannelJoinRequest) => ReceiveChannelJoin(payload),
            (HoldFrontState.JoiningChannels or HoldFrontState.WaitingForClientInfo, DomainMcsPduType.SendDataRequest) => ReceiveClientInfo(frame, payload),
            ( >= HoldFrontState.WaitingForConfirmActive, DomainMcsPduType.SendDataRequest) => ReceiveSendData(payload),
            _ => Failure(HoldFrontError.UnexpectedPdu, $"MCS {type} is not expected in state {State}", null),
        };
    }

    /// <summary>
    /// Paints pixels (0xAARRGGBB, row-major, <paramref name="stride"/> pixels per row) at (<paramref name="x"/>,
    /// <paramref name="y"/>) as fast-path Bitmap Updates in 64×64 tiles. Returns the number of tiles.
    /// </summary>
    /// <exception cref="InvalidOperationException">The front is not Active.</exception>
    public int WriteBitmap(IBufferWriter<byte> output, int x, int y, int width, int height, ReadOnlySpan<uint> pixels, int stride)
    {
        RequireActive();
        if (x + width > DesktopWidth || y + height > DesktopHeight)
        {
            throw new ArgumentException($"the rectangle leaves the {DesktopWidth}x{DesktopHeight} desktop");
        }

        return FrontOutput.WriteBitmap(output, x, y, width, height, pixels, stride, BitsPerPixel, ClientMaxRequestSize, _options.CompressBitmaps);
    }

    /// <summary>Writes PTR_DEFAULT (the front already sends it once on activation unless told not to).</summary>
    public void WriteDefaultPointer(IBufferWriter<byte> output)
    {
        RequireActive();
        FrontOutput.WriteDefaultPointer(output);
    }

    /// <summary>
    /// Ends the connection with a reason the client shows: a Set Error Info PDU and an MCS Disconnect Provider
    /// Ultimatum. The front is Closed afterwards.
    /// </summary>
    /// <exception cref="InvalidOperationException">No MCS domain exists yet (before the Connect Response).</exception>
    public void WriteRefusal(IBufferWriter<byte> output, ErrorInfoCode errorInfo)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (State is HoldFrontState.WaitingForConnectInitial or HoldFrontState.Closed)
        {
            throw new InvalidOperationException($"a refusal cannot be written in state {State}");
        }

        // Sent even when the client did not announce RNS_UD_CS_SUPPORT_ERRINFO_PDU: FreeRDP 3.10 never announces it
        // (earlyCapabilityFlags 0x0FB2) yet shows the reason, and a client that does not know the PDU ignores it.
        var pdu = new ArrayBufferWriter<byte>(SetErrorInfoPdu.EncodedSize);
        SetErrorInfoPdu.Create(_options.ShareId, errorInfo, pduSource: 0).Write(pdu);
        FrontPdus.WriteIndication(output, FrontPdus.IoChannelId, pdu.WrittenSpan);

        ServerRefusal.WriteDisconnectProviderUltimatum(output);
        State = HoldFrontState.Closed;
    }

    /// <summary>
    /// Hands the client over: an Enhanced Security Server Redirection PDU (SessionID 0, RedirFlags LB_LOAD_BALANCE_INFO
    /// only) whose LoadBalanceInfo is <c>Cookie: msts=&lt;token&gt;\r\n</c>. The client reconnects to the same address with
    /// that routing token. The front is Closed afterwards. With <paramref name="userName"/> and
    /// <paramref name="passwordCookie"/> it also carries LB_USERNAME and LB_PASSWORD: a client that reconnects with TLS
    /// security then sends both in its Client Info PDU (inside TLS), which is how a client that proved nothing itself
    /// (the QR sign-in) proves on the reconnect that it is the one that was held.
    /// </summary>
    /// <exception cref="ArgumentException">The token is empty, too long, or not printable ASCII; or the user name or cookie is too long.</exception>
    /// <exception cref="InvalidOperationException">The front is not Active.</exception>
    public void WriteRedirection(IBufferWriter<byte> output, ReadOnlySpan<byte> routingToken, string? userName = null, ReadOnlySpan<char> passwordCookie = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        RequireActive();
        if (routingToken.IsEmpty || routingToken.Length > MaxRoutingTokenLength)
        {
            throw new ArgumentException($"the routing token must have 1 to {MaxRoutingTokenLength} bytes", nameof(routingToken));
        }

        foreach (var b in routingToken)
        {
            if (b is < 0x21 or > 0x7E)
            {
                throw new ArgumentException("the routing token must be printable ASCII without spaces", nameof(routingToken));
            }
        }

        ReadOnlySpan<byte> prefix = "Cookie: msts="u8;
        var info = new byte[prefix.Length + routingToken.Length + 2];
        prefix.CopyTo(info);
        routingToken.CopyTo(info.AsSpan(prefix.Length));
        info[^2] = (byte)'\r';
        info[^1] = (byte)'\n';
        FrontPdus.WriteIndication(output, FrontPdus.IoChannelId, ServerRedirection.CreateLoadBalanceRedirection(info, userName, passwordCookie, FrontPdus.ServerChannelId));
        State = HoldFrontState.Closed;
    }

    private void RequireActive()
    {
        if (State != HoldFrontState.Active)
        {
            throw new InvalidOperationException($"the hold front is {State}, not Active");
        }
    }

    private HoldFrontResult ReceiveFastPath(ReadOnlySpan<byte> frame)
    {
        if ((frame[0] & 0x03) != 0)
        {
            return Failure(HoldFrontError.MalformedPdu, "the frame is neither a TPKT nor fast-path input", PduError.Unexpected("RDP frame", "first byte", $"0x{frame[0]:x2}"));
        }

        if (State != HoldFrontState.Active)
        {
            // Input may arrive before activation (IronRDP buffers it); the hold screen has nothing to act on yet.
            DroppedInputFrames++;
            return Success();
        }

        return FrontInput.TryParseFastPath(frame, _events, out var error)
            ? Success()
            : Failure(HoldFrontError.MalformedPdu, "the fast-path input PDU is malformed", error);
    }

    private HoldFrontResult ReceiveConnectInitial(ReadOnlySpan<byte> payload)
    {
        if (!McsConnectInitial.TryParse(payload, out var initial, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Connect Initial is malformed", error);
        }

        var core = initial.Find(GccBlockType.ClientCore)!.Encoded;
        var coreData = initial.Core;
        DesktopWidth = coreData.DesktopWidth;
        DesktopHeight = coreData.DesktopHeight;
        if (DesktopWidth is 0 || DesktopHeight is 0 || DesktopWidth > _options.MaxDesktopSize || DesktopHeight > _options.MaxDesktopSize)
        {
            return Failure(HoldFrontError.UnsupportedClient, $"a desktop of {DesktopWidth}x{DesktopHeight} is outside 1..{_options.MaxDesktopSize}", PduError.Invalid("TS_UD_CS_CORE", "desktopWidth", $"{DesktopWidth}x{DesktopHeight}"));
        }

        _earlyFlags = coreData.EarlyCapabilityFlags ?? 0;
        var highColorDepth = core.Length >= 142 ? BinaryPrimitives.ReadUInt16LittleEndian(core[140..]) : (ushort)0;
        var supportedDepths = core.Length >= 144 ? BinaryPrimitives.ReadUInt16LittleEndian(core[142..]) : (ushort)0;

        // 32 bpp when the client wants a 32-bit session (RNS_UD_CS_WANT_32BPP_SESSION), or asks for 24 bpp and lists
        // RNS_UD_32BPP_SUPPORT; otherwise 16. FreeRDP's /bpp:16 lists 32 bpp support but asks for highColorDepth 16.
        BitsPerPixel = (_earlyFlags & EarlyWant32Bpp) != 0 || (highColorDepth >= 24 && (supportedDepths & 0x0008) != 0) ? 32 : 16;

        if (initial.Find(GccBlockType.ClientNetwork) is { } network)
        {
            ClientNetworkData.TryRead(network, out _channels, out _); // Checked by McsConnectInitial.TryParse.
        }

        if (initial.Find(GccBlockType.ClientCluster) is { Length: >= 8 } cluster)
        {
            ClientSupportsRedirection = (BinaryPrimitives.ReadUInt32LittleEndian(cluster.Encoded[4..]) & ClusterRedirectionSupported) != 0;
        }

        var next = (ushort)(FrontPdus.IoChannelId + 1);
        foreach (var unused in _channels)
        {
            _channelIds.Add(next++);
        }

        if (initial.Find(GccBlockType.ClientMessageChannel) is not null)
        {
            MessageChannelId = next++;
        }

        UserChannelId = next;
        SkipChannelJoin = (_earlyFlags & EarlySkipChannelJoin) != 0;
        ConnectInitial = initial;
        FrontPdus.WriteConnectResponse(
            _output,
            _options.ClientRequestedProtocols,
            SkipChannelJoin ? FrontPdus.ServerSkipChannelJoin : 0,
            _channelIds,
            MessageChannelId);
        State = HoldFrontState.WaitingForErectDomain;
        return Success();
    }

    private HoldFrontResult ReceiveErectDomain(ReadOnlySpan<byte> payload)
    {
        if (!ErectDomainRequest.TryParse(payload, out _, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Erect Domain Request is malformed", error);
        }

        State = HoldFrontState.WaitingForAttachUser;
        return Success();
    }

    private HoldFrontResult ReceiveAttachUser(ReadOnlySpan<byte> payload)
    {
        if (!AttachUserRequest.TryParse(payload, out _, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Attach User Request is malformed", error);
        }

        var confirm = new AttachUserConfirm(McsResult.Successful, UserChannelId);
        FrontPdus.WriteDomainFrame(_output, confirm.Size, confirm.Write);
        _pendingJoins.Add(UserChannelId);
        _pendingJoins.Add(FrontPdus.IoChannelId);
        _pendingJoins.UnionWith(_channelIds);
        if (MessageChannelId is { } message)
        {
            _pendingJoins.Add(message);
        }

        State = SkipChannelJoin ? HoldFrontState.WaitingForClientInfo : HoldFrontState.JoiningChannels;
        return Success();
    }

    private HoldFrontResult ReceiveChannelJoin(ReadOnlySpan<byte> payload)
    {
        if (!ChannelJoinRequest.TryParse(payload, out var request, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Channel Join Request is malformed", error);
        }

        if (request.Initiator != UserChannelId)
        {
            return Failure(HoldFrontError.WrongIdentifier, $"the join names user {request.Initiator}, not {UserChannelId}", null);
        }

        var known = request.ChannelId == UserChannelId || request.ChannelId == FrontPdus.IoChannelId
            || request.ChannelId == MessageChannelId || _channelIds.Contains(request.ChannelId);
        if (!known)
        {
            return Failure(HoldFrontError.WrongIdentifier, $"the client asked to join channel {request.ChannelId}, which it was not given", null);
        }

        var confirm = new ChannelJoinConfirm(McsResult.Successful, UserChannelId, request.ChannelId, request.ChannelId);
        FrontPdus.WriteDomainFrame(_output, confirm.Size, confirm.Write);
        _pendingJoins.Remove(request.ChannelId);
        if (_pendingJoins.Count == 0)
        {
            State = HoldFrontState.WaitingForClientInfo;
        }

        return Success();
    }

    private HoldFrontResult ReceiveClientInfo(ReadOnlySpan<byte> frame, ReadOnlySpan<byte> payload)
    {
        if (State == HoldFrontState.JoiningChannels)
        {
            return Failure(HoldFrontError.UnexpectedPdu, $"data arrived before the channel joins were done ({_pendingJoins.Count} left)", null);
        }

        if (!McsSendData.TryParseRequest(payload, out var mcs, out _, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Send Data Request is malformed", error);
        }

        if (mcs.ChannelId != FrontPdus.IoChannelId)
        {
            return Success(); // A virtual channel: the front never speaks on them.
        }

        if (mcs.Initiator != UserChannelId)
        {
            return Failure(HoldFrontError.WrongIdentifier, $"the data comes from user {mcs.Initiator}, not {UserChannelId}", null);
        }

        if (!ClientInfoPdu.TryParse(frame, out var pdu, out error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the Client Info PDU is malformed", error);
        }

        var packet = pdu.Packet;
        var passwordGiven = packet.PasswordBytes.Span.ContainsAnyExcept((byte)0);
        if (MemoryMarshal.TryGetArray(packet.PasswordBytes, out var password) && password.Array is not null)
        {
            Array.Clear(password.Array, password.Offset, password.Count);
        }

        ClientInfo = new HoldClientInfo(packet.UserName.TrimEnd('\0'), packet.Domain.TrimEnd('\0'), passwordGiven, packet.Flags, packet.Extended?.ClientAddress.TrimEnd('\0') ?? string.Empty);
        _events.Add(new ClientInfoReceived(ClientInfo));
        ServerRefusal.WriteLicenseValidClient(_output);
        FrontPdus.WriteDemandActive(_output, _options.ShareId, DesktopWidth, DesktopHeight, BitsPerPixel, _options.ServerMaxRequestSize);
        State = HoldFrontState.WaitingForConfirmActive;
        return Success();
    }

    private HoldFrontResult ReceiveSendData(ReadOnlySpan<byte> payload)
    {
        if (!McsSendData.TryParseRequest(payload, out var mcs, out var data, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the MCS Send Data Request is malformed", error);
        }

        if (mcs.ChannelId != FrontPdus.IoChannelId)
        {
            return Success(); // Virtual channel data is ignored.
        }

        if (mcs.Initiator != UserChannelId)
        {
            return Failure(HoldFrontError.WrongIdentifier, $"the data comes from user {mcs.Initiator}, not {UserChannelId}", null);
        }

        if (!ShareControlHeader.TryParse(data, out var control, out error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the share control header is malformed", error);
        }

        if (control.Type == ShareControlPduType.ConfirmActive)
        {
            return State == HoldFrontState.WaitingForConfirmActive
                ? ReceiveConfirmActive(data)
                : Failure(HoldFrontError.UnexpectedPdu, $"a Confirm Active arrived in state {State}", null);
        }

        if (control.Type != ShareControlPduType.Data)
        {
            return Success(); // Nothing else a client sends matters to the hold screen.
        }

        if (!ShareDataHeader.TryParse(data, out var header, out error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the share data header is malformed", error);
        }

        var body = data[ShareDataHeader.Size..];
        return State == HoldFrontState.Active ? ReceiveActiveData(header.PduType2, body) : ReceiveFinalization(header.PduType2);
    }

    private HoldFrontResult ReceiveConfirmActive(ReadOnlySpan<byte> data)
    {
        if (!ConfirmActiveInfo.TryParse(data, out var confirm, out var error))
        {
            return Failure(HoldFrontError.MalformedPdu, "the Confirm Active PDU is malformed", error);
        }

        if (confirm.ShareId != _options.ShareId)
        {
            return Failure(HoldFrontError.WrongIdentifier, $"the Confirm Active names share 0x{confirm.ShareId:X8}, not 0x{_options.ShareId:X8}", null);
        }

        if (confirm.GeneralExtraFlags is not { } extra || (extra & FrontPdus.FastPathOutputSupported) == 0)
        {
            return Failure(HoldFrontError.UnsupportedClient, "the client does not support fast-path output", null);
        }

        if (confirm.BitsPerPixel is 16 or 32)
        {
            BitsPerPixel = confirm.BitsPerPixel;
        }

        if (confirm.DesktopWidth is > 0 && confirm.DesktopHeight is > 0 && confirm.DesktopWidth <= _options.MaxDesktopSize && confirm.DesktopHeight <= _options.MaxDesktopSize)
        {
            DesktopWidth = confirm.DesktopWidth;
            DesktopHeight = confirm.DesktopHeight;
        }

        ClientMaxRequestSize = confirm.MaxRequestSize;
        State = HoldFrontState.Finalizing;
        return Success();
    }

    private HoldFrontResult ReceiveFinalization(ShareDataPduType type)
    {
        switch (type)
        {
            case ShareDataPduType.FontList when State == HoldFrontState.Finalizing:
                FrontPdus.WriteFinalization(_output, _options.ShareId, UserChannelId);
                if (_options.SendDefaultPointer)
                {
                    FrontOutput.WriteDefaultPointer(_output);
                }

                State = HoldFrontState.Active;
                _events.Add(new Activated(DesktopWidth, DesktopHeight, BitsPerPixel));
                return Success();
            case ShareDataPduType.Input:
                DroppedInputFrames++;
                return Success();
            default:
                // Synchronize, Control Cooperate/Request, Persistent Key List: the server answers after the Font List.
                return Success();
        }
    }

    private HoldFrontResult ReceiveActiveData(ShareDataPduType type, ReadOnlySpan<byte> body)
    {
        PduError? error;
        switch ((ushort)type)
        {
            case (ushort)ShareDataPduType.Input:
                return FrontInput.TryParseSlowPath(body, _events, out error)
                    ? Success()
                    : Failure(HoldFrontError.MalformedPdu, "the input PDU is malformed", error);
            case (ushort)ShareDataPduType.RefreshRect:
                if (!FrontInput.TryParseRefreshRect(body, out var refresh, out error))
                {
                    return Failure(HoldFrontError.MalformedPdu, "the Refresh Rect PDU is malformed", error);
                }

                _events.Add(refresh);
                return Success();
            case SuppressOutputType:
                if (!FrontInput.TryParseSuppressOutput(body, out var suppress, out error))
                {
                    return Failure(HoldFrontError.MalformedPdu, "the Suppress Output PDU is malformed", error);
                }

                OutputSuppressed = !suppress.AllowDisplayUpdates;
                _events.Add(suppress);
                return Success();
            case (ushort)ShareDataPduType.ShutdownRequest:
                _events.Add(new ClientShutdownRequested());
                return Success();
            case PersistentKeyList:
            default:
                return Success();
        }
    }

    private HoldFrontResult Success() =>
        new(_output.WrittenSpan.ToArray(), _events.Count == 0 ? [] : [.. _events], HoldFrontError.None, null, null);

    private HoldFrontResult Failure(HoldFrontError error, string text, PduError? pduError)
    {
        State = HoldFrontState.Closed;
        _output.ResetWrittenCount();
        return new HoldFrontResult(ReadOnlyMemory<byte>.Empty, [], error, pduError is null ? text : $"{text} ({pduError})", pduError);
    }

}
