using System.Buffers.Binary;

namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// The few T.125 ALIGNED PER encodings the MCS domain PDUs need ([MS-RDPBCGR] 2.2.1.5–2.2.1.9 and 2.2.8.1.1.1.1):
/// the 6-bit DomainMCSPDU choice, 16-bit channel ids, user ids (offset from 1001) and the length determinant.
/// </summary>
internal static class DomainPer
{
    /// <summary>T.125 UserId ::= DynamicChannelId (1001..65535): PER sends the offset from 1001.</summary>
    public const int UserIdBase = 1001;

    /// <summary>Largest length the 2-byte length determinant form can carry (fragmentation is not supported).</summary>
    public const int MaxLength = 0x3FFF;

    /// <summary>Largest length the 1-byte length determinant form can carry.</summary>
    public const int MaxShortLength = 0x7F;

    public static DomainMcsPduType ChoiceOf(byte first) => (DomainMcsPduType)(first >> 2);

    public static byte ChoiceByte(DomainMcsPduType type, int lowBits = 0) => unchecked((byte)(((int)type << 2) | lowBits));

    /// <summary>Reads the choice byte and checks it names <paramref name="expected"/>; returns the two low bits.</summary>
    public static bool TryReadChoice(ref WireReader reader, DomainMcsPduType expected, out int lowBits)
    {
        lowBits = 0;
        if (!reader.TryReadU8("choice", out var first))
        {
            return false;
        }

        var actual = ChoiceOf(first);
        if (actual != expected)
        {
            return reader.Fail(PduError.Unexpected(reader.Pdu, "choice", $"{ChoiceName(first)} is not {expected}"));
        }

        lowBits = first & 0x03;
        return true;
    }

    public static string ChoiceName(byte first) =>
        McsDomainPdu.TryClassify(first, out var type) ? type.ToString() : $"choice {first >> 2}";

    public static bool TryReadUserId(ref WireReader reader, string field, out ushort userId)
    {
        userId = 0;
        if (!reader.TryReadU16BE(field, out var raw))
        {
            return false;
        }

        if (raw > ushort.MaxValue - UserIdBase)
        {
            return reader.FailInvalid(field, $"offset {raw} is outside the UserId range 1001..65535");
        }

        userId = unchecked((ushort)(raw + UserIdBase));
        return true;
    }

    public static void WriteUserId(ref WireWriter writer, ushort userId, string field)
    {
        if (userId < UserIdBase)
        {
            throw new ArgumentOutOfRangeException(field, userId, "a UserId is in 1001..65535");
        }

        writer.WriteU16BE(unchecked((ushort)(userId - UserIdBase)));
    }

    public static void WriteUserId(Span<byte> destination, ushort userId, string field)
    {
        if (userId < UserIdBase)
        {
            throw new ArgumentOutOfRangeException(field, userId, "a UserId is in 1001..65535");
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination, unchecked((ushort)(userId - UserIdBase)));
    }

    /// <summary>Reads a PER length determinant (1- or 2-byte form); the fragmented form is refused as unsupported.</summary>
    public static bool TryReadLength(ref WireReader reader, string field, out int length, out bool longForm)
    {
        length = 0;
        longForm = false;
        if (!reader.TryReadU8(field, out var first))
        {
            return false;
        }

        if ((first & 0x80) == 0)
        {
            length = first;
            return true;
        }

        if ((first & 0xC0) == 0xC0)
        {
            return reader.Fail(PduError.Unsupported(reader.Pdu, field, "fragmented PER length (16K blocks) is not used by RDP"));
        }

        if (!reader.TryReadU8(field, out var second))
        {
            return false;
        }

        longForm = true;
        length = ((first & 0x3F) << 8) | second;
        return true;
    }

    /// <summary>Bytes the length determinant takes: the 2-byte form when asked for or when the value needs it.</summary>
    public static int LengthSize(int length, bool longForm) => longForm || length > MaxShortLength ? 2 : 1;

    /// <summary>Writes a length determinant in <paramref name="size"/> bytes (1 or 2) and returns the size.</summary>
    public static int WriteLength(Span<byte> destination, int length, int size)
    {
        if (size == 1)
        {
            destination[0] = unchecked((byte)length);
            return 1;
        }

        destination[0] = unchecked((byte)(0x80 | (length >> 8)));
        destination[1] = unchecked((byte)length);
        return 2;
    }

    /// <summary>Reads a T.125 unconstrained INTEGER as RDP uses it (length octet then 1..4 big-endian octets).</summary>
    public static bool TryReadInteger(ref WireReader reader, string field, out uint value)
    {
        value = 0;
        if (!reader.TryReadU8(field, out var count))
        {
            return false;
        }

        if (count == 0)
        {
            return reader.FailInvalid(field, "integer with zero length");
        }

        if (count > 4)
        {
            return reader.Fail(PduError.Unsupported(reader.Pdu, field, $"{count}-byte integer is larger than 32 bits"));
        }

        if (!reader.TryReadBytes(count, field, out var bytes))
        {
            return false;
        }

        foreach (var b in bytes)
        {
            value = (value << 8) | b;
        }

        return true;
    }

    public static int IntegerSize(uint value) => 1 /* length */ + (value <= 0xFF ? 1 : value <= 0xFFFF ? 2 : 4);

    public static void WriteInteger(ref WireWriter writer, uint value)
    {
        var count = IntegerSize(value) - 1;
        writer.WriteU8(unchecked((byte)count));
        for (var i = count - 1; i >= 0; i--)
        {
            writer.WriteU8(unchecked((byte)(value >> (8 * i))));
        }
    }
}

/// <summary>Small shared checks of the domain PDU parsers.</summary>
internal static class DomainChecks
{
    /// <summary>A domain PDU fills its X.224 Data payload exactly; extra bytes are a length disagreement.</summary>
    public static bool TryEnd(ref WireReader reader)
    {
        if (reader.Error is not null)
        {
            return false;
        }

        return reader.Remaining == 0 || reader.FailInvalid("length", $"{reader.Remaining} bytes after the end of the PDU");
    }

    public static bool TryZeroBits(ref WireReader reader, int bits, string field) =>
        bits == 0 || reader.FailInvalid(field, "padding bits are not zero");
}
