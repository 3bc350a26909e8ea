namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// The BER subset of T.125's connect PDUs: definite lengths in short form or long form of one to four octets (the
/// number of octets is remembered so a rewrite re-encodes in the same form when the value still fits), tags of one
/// or two octets (APPLICATION 101/102 use the high-tag-number form 7F 65 / 7F 66).
/// </summary>
internal static class McsBer
{
    /// <summary>Reads a definite length; <paramref name="octets"/> is 0 for the short form.</summary>
    public static bool TryReadLength(ref WireReader reader, string field, out int length, out int octets)
    {
        length = 0;
        octets = 0;
        if (!reader.TryReadU8(field, out var first))
        {
            return false;
        }

        if (first < 0x80)
        {
            length = first;
            return true;
        }

        octets = first & 0x7F;
        if (octets == 0)
        {
            return reader.FailInvalid(field, "indefinite length is not allowed");
        }

        if (octets > 4)
        {
            return reader.FailInvalid(field, $"a length of {octets} octets");
        }

        long value = 0;
        for (var i = 0; i < octets; i++)
        {
            if (!reader.TryReadU8(field, out var b))
            {
                return false;
            }

            value = (value << 8) | b;
        }

        if (value > int.MaxValue)
        {
            return reader.Fail(PduError.TooLarge(reader.Pdu, field, value, int.MaxValue));
        }

        length = (int)value;
        return true;
    }

    /// <summary>Bytes a length takes when written with the preferred number of long-form octets (0 = short when it fits).</summary>
    public static int LengthSize(int length, int preferredOctets)
    {
        var needed = length < 0x80 ? 0 : length <= 0xFF ? 1 : length <= 0xFFFF ? 2 : length <= 0xFFFFFF ? 3 : 4;
        return 1 + Math.Max(needed, preferredOctets);
    }

    /// <summary>Writes a length in <paramref name="size"/> bytes (from <see cref="LengthSize"/>).</summary>
    public static int WriteLength(Span<byte> destination, int length, int size)
    {
        if (size == 1)
        {
            destination[0] = (byte)length;
            return 1;
        }

        var octets = size - 1;
        destination[0] = (byte)(0x80 | octets);
        for (var i = 0; i < octets; i++)
        {
            destination[size - 1 - i] = unchecked((byte)(length >> (8 * i)));
        }

        return size;
    }

    /// <summary>Reads a tag of one octet, or two for the APPLICATION high-tag-number form.</summary>
    public static bool TryExpectTag(ref WireReader reader, scoped ReadOnlySpan<byte> tag, string field)
    {
        if (!reader.TryReadBytes(tag.Length, field, out var actual))
        {
            return false;
        }

        return actual.SequenceEqual(tag) || reader.Fail(PduError.Unexpected(reader.Pdu, field, $"tag {Convert.ToHexString(actual)}, expected {Convert.ToHexString(tag)}"));
    }

    /// <summary>[APPLICATION 101] Connect-Initial.</summary>
    public static ReadOnlySpan<byte> ConnectInitialTag => [0x7F, 0x65];

    /// <summary>[APPLICATION 102] Connect-Response.</summary>
    public static ReadOnlySpan<byte> ConnectResponseTag => [0x7F, 0x66];

    /// <summary>Reads a one-octet tag and a length, checking the value fits in what is left (allocates nothing).</summary>
    public static bool TryReadHeader(ref WireReader reader, byte tag, string field, out int length, out int octets)
    {
        length = 0;
        octets = 0;
        if (!reader.TryReadU8(field, out var actual))
        {
            return false;
        }

        if (actual != tag)
        {
            return reader.Fail(PduError.Unexpected(reader.Pdu, field, $"tag {actual:X2}, expected {tag:X2}"));
        }

        if (!TryReadLength(ref reader, field, out length, out octets))
        {
            return false;
        }

        return length <= reader.Remaining || reader.Fail(PduError.NotEnough(reader.Pdu, field, length, reader.Remaining));
    }

    /// <summary>Reads a tag and length, checking the value fits in what is left.</summary>
    public static bool TryReadHeader(ref WireReader reader, scoped ReadOnlySpan<byte> tag, string field, out int length, out int octets)
    {
        length = 0;
        octets = 0;
        if (!TryExpectTag(ref reader, tag, field) || !TryReadLength(ref reader, field, out length, out octets))
        {
            return false;
        }

        return length <= reader.Remaining || reader.Fail(PduError.NotEnough(reader.Pdu, field, length, reader.Remaining));
    }
}

/// <summary>
/// [T.125] 7 DomainParameters: the eight INTEGERs of an MCS domain, parsed for reading and kept as the original
/// encoding (clients write them with varying widths, e.g. 65535 as 02 03 00 FF FF).
/// </summary>
public sealed class DomainParameters
{
    private readonly byte[] _encoded;

    private DomainParameters(uint[] values, byte[] encoded)
    {
        MaxChannelIds = values[0];
        MaxUserIds = values[1];
        MaxTokenIds = values[2];
        NumPriorities = values[3];
        MinThroughput = values[4];
        MaxHeight = values[5];
        MaxMcsPduSize = values[6];
        ProtocolVersion = values[7];
        _encoded = encoded;
    }

    /// <summary>maxChannelIds.</summary>
    public uint MaxChannelIds { get; }

    /// <summary>maxUserIds.</summary>
    public uint MaxUserIds { get; }

    /// <summary>maxTokenIds.</summary>
    public uint MaxTokenIds { get; }

    /// <summary>numPriorities.</summary>
    public uint NumPriorities { get; }

    /// <summary>minThroughput.</summary>
    public uint MinThroughput { get; }

    /// <summary>maxHeight.</summary>
    public uint MaxHeight { get; }

    /// <summary>maxMCSPDUsize.</summary>
    public uint MaxMcsPduSize { get; }

    /// <summary>protocolVersion (2 for RDP).</summary>
    public uint ProtocolVersion { get; }

    /// <summary>The SEQUENCE as received (tag and length included).</summary>
    public ReadOnlySpan<byte> Encoded => _encoded;

    internal static bool TryRead(ref WireReader reader, string field, out DomainParameters? value)
    {
        value = null;
        var start = reader.Position;
        if (!McsBer.TryReadHeader(ref reader, 0x30, field, out var length, out _))
        {
            return false;
        }

        var end = reader.Position + length;
        var values = new uint[8];
        for (var i = 0; i < values.Length; i++)
        {
            if (!McsBer.TryReadHeader(ref reader, 0x02, field, out var intLength, out _))
            {
                return false;
            }

            if (intLength is 0 or > 5 || reader.Position + intLength > end)
            {
                return reader.FailInvalid(field, $"INTEGER of {intLength} octets");
            }

            // RDP peers write these INTEGERs as unsigned (the spec's own example encodes 65535 as 02 02 FF FF), so
            // the octets are read as an unsigned number of at most 32 bits.
            reader.TryReadBytes(intLength, field, out var digits);
            if (intLength == 5 && digits[0] != 0)
            {
                return reader.FailInvalid(field, "INTEGER larger than 32 bits");
            }

            ulong v = 0;
            foreach (var d in digits)
            {
                v = (v << 8) | d;
            }

            values[i] = (uint)v;
        }

        if (reader.Position != end)
        {
            return reader.FailInvalid(field, $"{end - reader.Position} bytes after the eight INTEGERs");
        }

        value = new DomainParameters(values, reader.Data[start..end].ToArray());
        return true;
    }
}
