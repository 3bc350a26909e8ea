using System.Buffers;

namespace Gatehouse.Protocol.Mcs;

/// <summary>[T.125] DataPriority.</summary>
public enum McsDataPriority : byte
{
    /// <summary>top.</summary>
    Top = 0,

    /// <summary>high.</summary>
    High = 1,

    /// <summary>medium.</summary>
    Medium = 2,

    /// <summary>low.</summary>
    Low = 3,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.8.1.1.1.1 and [T.125] SendDataRequest (choice 25) / SendDataIndication (choice 26): initiator,
/// channelId, dataPriority and segmentation (one byte), a PER length (1- or 2-byte form) and the user data. The user
/// data is not copied: <see cref="UserDataOffset"/> and <see cref="UserDataLength"/> locate it in the parsed input
/// (see <see cref="GetUserData"/> and the <c>TryParse</c> overload that returns it as a span).
/// </summary>
/// <param name="Type"><see cref="DomainMcsPduType.SendDataRequest"/> or <see cref="DomainMcsPduType.SendDataIndication"/>.</param>
/// <param name="Initiator">initiator (the sender's user channel id, 1001..65535).</param>
/// <param name="ChannelId">channelId.</param>
/// <param name="PriorityAndSegmentation">The raw dataPriority (2 bits), segmentation (2 bits) and padding byte; RDP sends 0x70.</param>
/// <param name="UserDataOffset">Offset of the user data in the parsed input.</param>
/// <param name="UserDataLength">Length of the user data (at most 0x3FFF).</param>
/// <param name="LongLengthForm">True when the length used the 2-byte form although it fits one byte (FreeRDP does this).</param>
public readonly record struct McsSendData(
    DomainMcsPduType Type,
    ushort Initiator,
    ushort ChannelId,
    byte PriorityAndSegmentation,
    int UserDataOffset,
    int UserDataLength,
    bool LongLengthForm)
{
    internal const string Name = "MCS Send Data";

    /// <summary>What RDP peers send: priority high, segmentation begin | end.</summary>
    public const byte DefaultPriorityAndSegmentation = 0x70;

    /// <summary>Largest user data a single Send Data PDU carries here (the 2-byte PER length form).</summary>
    public const int MaxUserDataLength = DomainPer.MaxLength;

    /// <summary>dataPriority.</summary>
    public McsDataPriority Priority => (McsDataPriority)(PriorityAndSegmentation >> 6);

    /// <summary>segmentation bits (0x2 begin, 0x1 end).</summary>
    public int Segmentation => (PriorityAndSegmentation >> 4) & 0x3;

    /// <summary>Size of everything before the user data.</summary>
    public int HeaderSize => 1 /* choice */ + 2 /* initiator */ + 2 /* channelId */ + 1 /* priority + segmentation */
        + DomainPer.LengthSize(UserDataLength, LongLengthForm) /* PER length */;

    /// <summary>Encoded size, user data included.</summary>
    public int Size => HeaderSize + UserDataLength;

    /// <summary>A Send Data Request or Indication header for <paramref name="userDataLength"/> bytes, as RDP peers send it.</summary>
    public static McsSendData Create(DomainMcsPduType type, ushort initiator, ushort channelId, int userDataLength)
    {
        if (type is not (DomainMcsPduType.SendDataRequest or DomainMcsPduType.SendDataIndication))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a Send Data PDU");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(userDataLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(userDataLength, MaxUserDataLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(initiator, (ushort)DomainPer.UserIdBase);
        var offset = 1 + 2 + 2 + 1 + DomainPer.LengthSize(userDataLength, longForm: false);
        return new McsSendData(type, initiator, channelId, DefaultPriorityAndSegmentation, offset, userDataLength, false);
    }

    /// <summary>The user data inside <paramref name="source"/>, the input this header was parsed from.</summary>
    public ReadOnlySpan<byte> GetUserData(ReadOnlySpan<byte> source) => source.Slice(UserDataOffset, UserDataLength);

    /// <summary>Parses a Send Data Request or Indication from an X.224 Data payload.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out McsSendData value, out PduError? error) =>
        TryParse(source, out value, out _, out error);

    /// <summary>Parses a Send Data Request or Indication and returns its user data as a slice of <paramref name="source"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out McsSendData value, out ReadOnlySpan<byte> userData, out PduError? error)
    {
        value = default;
        userData = default;
        var reader = new WireReader(source, Name);
        if (!reader.TryReadU8("choice", out var first))
        {
            error = reader.Error;
            return false;
        }

        var type = DomainPer.ChoiceOf(first);
        if (type is not (DomainMcsPduType.SendDataRequest or DomainMcsPduType.SendDataIndication))
        {
            error = PduError.Unexpected(Name, "choice", $"{DomainPer.ChoiceName(first)} is not a Send Data PDU");
            return false;
        }

        if (DomainChecks.TryZeroBits(ref reader, first & 3, "choice")
            && DomainPer.TryReadUserId(ref reader, "initiator", out var initiator)
            && reader.TryReadU16BE("channelId", out var channelId)
            && reader.TryReadU8("dataPriority", out var priority)
            && DomainPer.TryReadLength(ref reader, "userData length", out var length, out var longForm))
        {
            var offset = reader.Position;
            if (length > reader.Remaining)
            {
                reader.Fail(PduError.NotEnough(Name, "userData", length, reader.Remaining));
            }
            else if (length < reader.Remaining)
            {
                reader.FailInvalid("userData length", $"{length} disagrees with the {reader.Remaining} bytes that follow");
            }
            else
            {
                userData = source.Slice(offset, length);
                value = new McsSendData(type, initiator, channelId, priority, offset, length, longForm && length <= DomainPer.MaxShortLength);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Parses a Send Data Request (not an Indication).</summary>
    public static bool TryParseRequest(ReadOnlySpan<byte> source, out McsSendData value, out ReadOnlySpan<byte> userData, out PduError? error) =>
        TryParseOf(DomainMcsPduType.SendDataRequest, source, out value, out userData, out error);

    /// <summary>Parses a Send Data Indication (not a Request).</summary>
    public static bool TryParseIndication(ReadOnlySpan<byte> source, out McsSendData value, out ReadOnlySpan<byte> userData, out PduError? error) =>
        TryParseOf(DomainMcsPduType.SendDataIndication, source, out value, out userData, out error);

    private static bool TryParseOf(DomainMcsPduType expected, ReadOnlySpan<byte> source, out McsSendData value, out ReadOnlySpan<byte> userData, out PduError? error)
    {
        if (!TryParse(source, out value, out userData, out error))
        {
            return false;
        }

        if (value.Type != expected)
        {
            error = PduError.Unexpected(Name, "choice", $"{value.Type} is not {expected}");
            value = default;
            userData = default;
            return false;
        }

        return true;
    }

    /// <summary>Writes the header and <paramref name="userData"/>, which must be <see cref="UserDataLength"/> bytes.</summary>
    public void Write(IBufferWriter<byte> output, ReadOnlySpan<byte> userData)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (userData.Length != UserDataLength)
        {
            throw new ArgumentException($"user data is {userData.Length} bytes, the header says {UserDataLength}", nameof(userData));
        }

        var size = Size;
        var span = output.GetSpan(size)[..size];
        var header = WriteHeader(span);
        userData.CopyTo(span[header..]);
        output.Advance(size);
    }

    /// <summary>Writes the header (everything before the user data) and returns its size.</summary>
    public int WriteHeader(Span<byte> destination)
    {
        if (Type is not (DomainMcsPduType.SendDataRequest or DomainMcsPduType.SendDataIndication))
        {
            throw new InvalidOperationException($"{Type} is not a Send Data PDU");
        }

        if ((uint)UserDataLength > MaxUserDataLength)
        {
            throw new InvalidOperationException($"user data of {UserDataLength} bytes needs PER fragmentation");
        }

        destination[0] = DomainPer.ChoiceByte(Type);
        DomainPer.WriteUserId(destination[1..], Initiator, nameof(Initiator));
        destination[3] = unchecked((byte)(ChannelId >> 8));
        destination[4] = unchecked((byte)ChannelId);
        destination[5] = PriorityAndSegmentation;
        return 6 + DomainPer.WriteLength(destination[6..], UserDataLength, DomainPer.LengthSize(UserDataLength, LongLengthForm));
    }
}
