using System.Buffers;

namespace Gatehouse.Protocol.Mcs;

/// <summary>[T.125] Result: the outcome of an MCS request (rt-successful … rt-user-rejected).</summary>
public enum McsResult : byte
{
    /// <summary>rt-successful.</summary>
    Successful = 0,

    /// <summary>rt-domain-merging.</summary>
    DomainMerging = 1,

    /// <summary>rt-domain-not-hierarchical.</summary>
    DomainNotHierarchical = 2,

    /// <summary>rt-no-such-channel.</summary>
    NoSuchChannel = 3,

    /// <summary>rt-no-such-domain.</summary>
    NoSuchDomain = 4,

    /// <summary>rt-no-such-user.</summary>
    NoSuchUser = 5,

    /// <summary>rt-not-admitted.</summary>
    NotAdmitted = 6,

    /// <summary>rt-other-user-id.</summary>
    OtherUserId = 7,

    /// <summary>rt-parameters-unacceptable.</summary>
    ParametersUnacceptable = 8,

    /// <summary>rt-token-not-available.</summary>
    TokenNotAvailable = 9,

    /// <summary>rt-token-not-possessed.</summary>
    TokenNotPossessed = 10,

    /// <summary>rt-too-many-channels.</summary>
    TooManyChannels = 11,

    /// <summary>rt-too-many-tokens.</summary>
    TooManyTokens = 12,

    /// <summary>rt-too-many-users.</summary>
    TooManyUsers = 13,

    /// <summary>rt-unspecified-failure.</summary>
    UnspecifiedFailure = 14,

    /// <summary>rt-user-rejected.</summary>
    UserRejected = 15,
}

/// <summary>[T.125] Reason: why a provider disconnects (rn-domain-disconnected … rn-channel-purged).</summary>
public enum McsDisconnectReason : byte
{
    /// <summary>rn-domain-disconnected.</summary>
    DomainDisconnected = 0,

    /// <summary>rn-provider-initiated.</summary>
    ProviderInitiated = 1,

    /// <summary>rn-token-purged.</summary>
    TokenPurged = 2,

    /// <summary>rn-user-requested.</summary>
    UserRequested = 3,

    /// <summary>rn-channel-purged.</summary>
    ChannelPurged = 4,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.5 Client MCS Erect Domain Request PDU: the T.125 ErectDomainRequest (choice 1) with the
/// unconstrained integers subHeight and subInterval (RDP sends 0 and 0: <c>04 01 00 01 00</c>).
/// </summary>
/// <param name="SubHeight">subHeight.</param>
/// <param name="SubInterval">subInterval.</param>
public readonly record struct ErectDomainRequest(uint SubHeight, uint SubInterval)
{
    internal const string Name = "MCS Erect Domain Request";

    /// <summary>Encoded size.</summary>
    public int Size => 1 /* choice */ + DomainPer.IntegerSize(SubHeight) /* subHeight */ + DomainPer.IntegerSize(SubInterval) /* subInterval */;

    /// <summary>Parses an Erect Domain Request from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ErectDomainRequest value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (DomainPer.TryReadChoice(ref reader, DomainMcsPduType.ErectDomainRequest, out var low)
            && DomainChecks.TryZeroBits(ref reader, low, "choice")
            && DomainPer.TryReadInteger(ref reader, "subHeight", out var height)
            && DomainPer.TryReadInteger(ref reader, "subInterval", out var interval)
            && DomainChecks.TryEnd(ref reader))
        {
            value = new ErectDomainRequest(height, interval);
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var writer = new WireWriter(output.GetSpan(size)[..size]);
        writer.WriteU8(DomainPer.ChoiceByte(DomainMcsPduType.ErectDomainRequest));
        DomainPer.WriteInteger(ref writer, SubHeight);
        DomainPer.WriteInteger(ref writer, SubInterval);
        output.Advance(size);
    }
}

/// <summary>[MS-RDPBCGR] 2.2.1.6 Client MCS Attach User Request PDU: the T.125 AttachUserRequest (choice 10), one byte <c>28</c>.</summary>
public readonly record struct AttachUserRequest
{
    internal const string Name = "MCS Attach User Request";

    /// <summary>Encoded size.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Size is an instance property on every PDU.")]
    public int Size => 1 /* choice */;

    /// <summary>Parses an Attach User Request from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out AttachUserRequest value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        _ = DomainPer.TryReadChoice(ref reader, DomainMcsPduType.AttachUserRequest, out var low)
            && DomainChecks.TryZeroBits(ref reader, low, "choice")
            && DomainChecks.TryEnd(ref reader);
        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(Size);
        span[0] = DomainPer.ChoiceByte(DomainMcsPduType.AttachUserRequest);
        output.Advance(Size);
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.7 Server MCS Attach User Confirm PDU: the T.125 AttachUserConfirm (choice 11) with result and
/// the optional initiator (the user channel id). Like FreeRDP and IronRDP (and every capture seen), the result is read
/// as the whole byte after the choice byte.
/// </summary>
/// <param name="Result">result.</param>
/// <param name="Initiator">initiator (a UserId, 1001..65535), when present.</param>
public readonly record struct AttachUserConfirm(McsResult Result, ushort? Initiator)
{
    internal const string Name = "MCS Attach User Confirm";

    /// <summary>Encoded size.</summary>
    public int Size => 1 /* choice + optional bitmap */ + 1 /* result */ + (Initiator.HasValue ? 2 /* initiator */ : 0);

    /// <summary>Parses an Attach User Confirm from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out AttachUserConfirm value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (DomainPer.TryReadChoice(ref reader, DomainMcsPduType.AttachUserConfirm, out var low)
            && DomainChecks.TryZeroBits(ref reader, low & 1, "choice")
            && TryReadResult(ref reader, out var result))
        {
            ushort? initiator = null;
            if ((low & 2) != 0 && DomainPer.TryReadUserId(ref reader, "initiator", out var id))
            {
                initiator = id;
            }

            if (DomainChecks.TryEnd(ref reader))
            {
                value = new AttachUserConfirm(result, initiator);
            }
        }

        error = reader.Error;
        return error is null;
    }

    internal static bool TryReadResult(ref WireReader reader, out McsResult result)
    {
        result = default;
        if (!reader.TryReadU8("result", out var raw))
        {
            return false;
        }

        if (raw > (byte)McsResult.UserRejected)
        {
            return reader.FailInvalid("result", $"{raw} is not a T.125 Result");
        }

        result = (McsResult)raw;
        return true;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var writer = new WireWriter(output.GetSpan(size)[..size]);
        writer.WriteU8(DomainPer.ChoiceByte(DomainMcsPduType.AttachUserConfirm, Initiator.HasValue ? 2 : 0));
        writer.WriteU8((byte)Result);
        if (Initiator is { } initiator)
        {
            DomainPer.WriteUserId(ref writer, initiator, nameof(Initiator));
        }

        output.Advance(size);
    }
}

/// <summary>[MS-RDPBCGR] 2.2.1.8 Client MCS Channel Join Request PDU: the T.125 ChannelJoinRequest (choice 14).</summary>
/// <param name="Initiator">initiator (the user channel id, 1001..65535).</param>
/// <param name="ChannelId">channelId to join.</param>
public readonly record struct ChannelJoinRequest(ushort Initiator, ushort ChannelId)
{
    internal const string Name = "MCS Channel Join Request";

    /// <summary>Encoded size.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Size is an instance property on every PDU.")]
    public int Size => 1 /* choice */ + 2 /* initiator */ + 2 /* channelId */;

    /// <summary>Parses a Channel Join Request from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ChannelJoinRequest value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (DomainPer.TryReadChoice(ref reader, DomainMcsPduType.ChannelJoinRequest, out var low)
            && DomainChecks.TryZeroBits(ref reader, low, "choice")
            && DomainPer.TryReadUserId(ref reader, "initiator", out var initiator)
            && reader.TryReadU16BE("channelId", out var channelId)
            && DomainChecks.TryEnd(ref reader))
        {
            value = new ChannelJoinRequest(initiator, channelId);
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var writer = new WireWriter(output.GetSpan(size)[..size]);
        writer.WriteU8(DomainPer.ChoiceByte(DomainMcsPduType.ChannelJoinRequest));
        DomainPer.WriteUserId(ref writer, Initiator, nameof(Initiator));
        writer.WriteU16BE(ChannelId);
        output.Advance(size);
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.9 Server MCS Channel Join Confirm PDU: the T.125 ChannelJoinConfirm (choice 15) with result,
/// initiator, requested and the optional channelId.
/// </summary>
/// <param name="Result">result.</param>
/// <param name="Initiator">initiator (1001..65535).</param>
/// <param name="Requested">requested channel id.</param>
/// <param name="ChannelId">channelId joined, when present.</param>
public readonly record struct ChannelJoinConfirm(McsResult Result, ushort Initiator, ushort Requested, ushort? ChannelId)
{
    internal const string Name = "MCS Channel Join Confirm";

    /// <summary>Encoded size.</summary>
    public int Size => 1 /* choice + optional bitmap */ + 1 /* result */ + 2 /* initiator */ + 2 /* requested */
        + (ChannelId.HasValue ? 2 /* channelId */ : 0);

    /// <summary>Parses a Channel Join Confirm from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out ChannelJoinConfirm value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (DomainPer.TryReadChoice(ref reader, DomainMcsPduType.ChannelJoinConfirm, out var low)
            && DomainChecks.TryZeroBits(ref reader, low & 1, "choice")
            && AttachUserConfirm.TryReadResult(ref reader, out var result)
            && DomainPer.TryReadUserId(ref reader, "initiator", out var initiator)
            && reader.TryReadU16BE("requested", out var requested))
        {
            ushort? channelId = null;
            if ((low & 2) != 0 && reader.TryReadU16BE("channelId", out var joined))
            {
                channelId = joined;
            }

            if (DomainChecks.TryEnd(ref reader))
            {
                value = new ChannelJoinConfirm(result, initiator, requested, channelId);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var writer = new WireWriter(output.GetSpan(size)[..size]);
        writer.WriteU8(DomainPer.ChoiceByte(DomainMcsPduType.ChannelJoinConfirm, ChannelId.HasValue ? 2 : 0));
        writer.WriteU8((byte)Result);
        DomainPer.WriteUserId(ref writer, Initiator, nameof(Initiator));
        writer.WriteU16BE(Requested);
        if (ChannelId is { } channelId)
        {
            writer.WriteU16BE(channelId);
        }

        output.Advance(size);
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.2.3 MCS Disconnect Provider Ultimatum PDU: the T.125 DisconnectProviderUltimatum (choice 8) whose
/// 3-bit reason follows the choice bits (<c>21 80</c> = rn-user-requested).
/// </summary>
/// <param name="Reason">reason.</param>
public readonly record struct DisconnectProviderUltimatum(McsDisconnectReason Reason)
{
    internal const string Name = "MCS Disconnect Provider Ultimatum";

    /// <summary>Encoded size.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Size is an instance property on every PDU.")]
    public int Size => 2 /* choice (6 bits) + reason (3 bits) + padding (7 bits) */;

    /// <summary>Parses a Disconnect Provider Ultimatum from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out DisconnectProviderUltimatum value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Name);
        if (DomainPer.TryReadChoice(ref reader, DomainMcsPduType.DisconnectProviderUltimatum, out var high)
            && reader.TryReadU8("reason", out var second)
            && DomainChecks.TryZeroBits(ref reader, second & 0x7F, "reason"))
        {
            var reason = (high << 1) | (second >> 7);
            if (reason > (int)McsDisconnectReason.ChannelPurged)
            {
                reader.FailInvalid("reason", $"{reason} is not a T.125 Reason");
            }
            else if (DomainChecks.TryEnd(ref reader))
            {
                value = new DisconnectProviderUltimatum((McsDisconnectReason)reason);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(Size);
        var reason = (int)Reason;
        span[0] = DomainPer.ChoiceByte(DomainMcsPduType.DisconnectProviderUltimatum, (reason >> 1) & 3);
        span[1] = unchecked((byte)((reason & 1) << 7));
        output.Advance(Size);
    }
}
