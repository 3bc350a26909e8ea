using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>[MS-NLMP] 2.2.1 NTLM messages: the signature, message types and shared field readers.</summary>
public static class NtlmMessage
{
    /// <summary>"NTLMSSP\0".</summary>
    public static ReadOnlySpan<byte> Signature => "NTLMSSP\0"u8;

    /// <summary>NtLmNegotiate.</summary>
    public const uint NegotiateType = 1;

    /// <summary>NtLmChallenge.</summary>
    public const uint ChallengeType = 2;

    /// <summary>NtLmAuthenticate.</summary>
    public const uint AuthenticateType = 3;

    /// <summary>Largest NTLM message accepted (real ones are well under 4 KiB).</summary>
    public const int MaxMessageSize = 16 * 1024;

    /// <summary>Size of the VERSION field ([MS-NLMP] 2.2.2.10).</summary>
    public const int VersionSize = 8;

    /// <summary>Reads the message type of an NTLM message (after checking the signature), for dispatch.</summary>
    public static bool TryReadType(ReadOnlySpan<byte> message, out uint type, out PduError? error)
    {
        var reader = new WireReader(message, "NTLM message");
        if (!ReadHeader(ref reader, out type))
        {
            error = reader.Error;
            return false;
        }

        error = null;
        return true;
    }

    internal static bool ReadHeader(ref WireReader reader, out uint type)
    {
        type = 0;
        if (reader.Data.Length > MaxMessageSize)
        {
            return reader.Fail(PduError.TooLarge(reader.Pdu, "message", reader.Data.Length, MaxMessageSize));
        }

        if (!reader.TryReadBytes(8, "Signature", out var signature))
        {
            return false;
        }

        if (!signature.SequenceEqual(Signature))
        {
            return reader.FailInvalid("Signature", "not NTLMSSP\\0");
        }

        return reader.TryReadU32LE("MessageType", out type);
    }

    internal static bool ExpectType(ref WireReader reader, uint expected)
    {
        if (!ReadHeader(ref reader, out var type))
        {
            return false;
        }

        return type == expected || reader.Fail(PduError.Unexpected(reader.Pdu, "MessageType", $"expected {expected}, got {type}"));
    }

    /// <summary>
    /// Reads a (Len, MaxLen, BufferOffset) field and returns the payload slice; refuses buffers that leave the message
    /// or start inside the fixed header.
    /// </summary>
    internal static bool ReadPayload(ref WireReader reader, string field, int headerMinimum, out ReadOnlyMemoryRange range)
    {
        range = default;
        if (!reader.TryReadU16LE(field + "Len", out var length) || !reader.TryReadU16LE(field + "MaxLen", out _) || !reader.TryReadU32LE(field + "BufferOffset", out var offset))
        {
            return false;
        }

        if (length == 0)
        {
            range = new ReadOnlyMemoryRange(checked((int)Math.Min(offset, (uint)reader.Data.Length)), 0);
            return true;
        }

        if (offset < headerMinimum)
        {
            return reader.FailInvalid(field + "BufferOffset", $"{offset} points into the fixed header (ends at {headerMinimum})");
        }

        if (offset > (uint)reader.Data.Length || length > reader.Data.Length - (int)offset)
        {
            return reader.Fail(PduError.Invalid(reader.Pdu, field, $"{length} bytes at offset {offset} run past the end of the {reader.Data.Length}-byte message"));
        }

        range = new ReadOnlyMemoryRange((int)offset, length);
        return true;
    }

    internal static void WritePayloadField(Span<byte> header, int fieldOffset, int length, int bufferOffset)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(header[fieldOffset..], (ushort)length);
        BinaryPrimitives.WriteUInt16LittleEndian(header[(fieldOffset + 2)..], (ushort)length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[(fieldOffset + 4)..], (uint)bufferOffset);
    }

    /// <summary>Decodes a UTF-16LE payload; an odd length is refused.</summary>
    internal static bool TryDecodeUnicode(ReadOnlySpan<byte> bytes, string pdu, string field, [NotNullWhen(true)] out string? text, out PduError? error)
    {
        if ((bytes.Length & 1) != 0)
        {
            text = null;
            error = PduError.Invalid(pdu, field, $"UTF-16 string of odd length {bytes.Length}");
            return false;
        }

        text = System.Text.Encoding.Unicode.GetString(bytes);
        error = null;
        return true;
    }
}

/// <summary>An offset and a length inside a parsed message.</summary>
internal readonly record struct ReadOnlyMemoryRange(int Offset, int Length)
{
    public ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> message) => message.Slice(Offset, Length);

    public int End => Offset + Length;
}
