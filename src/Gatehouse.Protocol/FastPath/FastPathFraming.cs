using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.FastPath;

/// <summary>Which framing a PDU on an RDP connection uses.</summary>
public enum RdpFrameKind
{
    /// <summary>Slow path: a TPKT (first byte 0x03).</summary>
    SlowPath,

    /// <summary>Fast path: action bits 0 ([MS-RDPBCGR] 2.2.8.1.2 / 2.2.9.1.2).</summary>
    FastPath,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.8.1.2 TS_FP_INPUT_PDU / 2.2.9.1.2 TS_FP_UPDATE_PDU header: the first byte (action in the low two
/// bits, then numEvents or reserved bits, then the two security flags) and the length in one byte, or two bytes when
/// the high bit of the first length byte is set (15 bits). The length counts the whole PDU including this header.
/// </summary>
public readonly record struct FastPathHeader(byte First, int Length, bool LongLengthForm)
{
    /// <summary>Largest fast-path length (15 bits).</summary>
    public const int MaxLength = 0x7FFF;

    private const string Pdu = "fast-path header";

    /// <summary>Bits 2-5: numEvents on input (0 means a numEvents byte follows), reserved on output.</summary>
    public int EventCount => (First >> 2) & 0x0F;

    /// <summary>Bits 6-7: FASTPATH_*_SECURE_CHECKSUM (1) and FASTPATH_*_ENCRYPTED (2).</summary>
    public int SecurityFlags => First >> 6;

    /// <summary>Bytes taken by the header: 2 or 3.</summary>
    public int HeaderSize => LongLengthForm ? 3 : 2;

    /// <summary>Classifies a PDU by its first byte; false for anything that is neither a TPKT nor fast path.</summary>
    public static bool TryClassify(byte first, out RdpFrameKind kind)
    {
        if (first == TpktHeader.Version)
        {
            kind = RdpFrameKind.SlowPath;
            return true;
        }

        kind = RdpFrameKind.FastPath;
        return (first & 0x03) == 0;
    }

    /// <summary>Parses the header at the start of <paramref name="source"/> (the rest of the PDU may follow).</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out FastPathHeader value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(source, Pdu);
        if (!reader.TryReadU8("fpHeader", out var first) || !reader.TryReadU8("length1", out var length1))
        {
            error = reader.Error;
            return false;
        }

        if ((first & 0x03) != 0)
        {
            error = PduError.Unexpected(Pdu, "action", $"action {first & 0x03} is not FASTPATH_ACTION_FASTPATH (0)");
            return false;
        }

        int length;
        var longForm = (length1 & 0x80) != 0;
        if (longForm)
        {
            if (!reader.TryReadU8("length2", out var length2))
            {
                error = reader.Error;
                return false;
            }

            length = ((length1 & 0x7F) << 8) | length2;
        }
        else
        {
            length = length1;
        }

        var headerSize = longForm ? 3 : 2;
        if (length < headerSize)
        {
            error = PduError.Invalid(Pdu, "length", $"{length} is shorter than the {headerSize}-byte header");
            return false;
        }

        value = new FastPathHeader(first, length, longForm);
        error = null;
        return true;
    }

    /// <summary>Writes the header (in its original length form).</summary>
    /// <exception cref="InvalidOperationException">The length does not fit the form.</exception>
    public int WriteTo(Span<byte> destination)
    {
        if (Length > (LongLengthForm ? MaxLength : 0x7F) || Length < HeaderSize)
        {
            throw new InvalidOperationException($"A fast-path length of {Length} does not fit the {HeaderSize}-byte header.");
        }

        destination[0] = First;
        if (LongLengthForm)
        {
            destination[1] = (byte)(0x80 | (Length >> 8));
            destination[2] = unchecked((byte)Length);
            return 3;
        }

        destination[1] = (byte)Length;
        return 2;
    }
}

/// <summary>Frames the PDUs of an RDP connection after the connection sequence: TPKT (slow path) or fast path.</summary>
public static class RdpFraming
{
    private const string Pdu = "RDP frame";

    /// <summary>
    /// Reads one whole PDU of either kind: Done, NeedMoreData (nothing consumed), or InvalidData when the first byte is
    /// neither a TPKT nor fast path, or a length is impossible.
    /// </summary>
    public static OperationStatus TryReadFrame(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> frame, out RdpFrameKind kind, out PduError? error)
    {
        frame = default;
        kind = RdpFrameKind.SlowPath;
        error = null;
        if (!reader.TryPeek(out var first))
        {
            return OperationStatus.NeedMoreData;
        }

        if (!FastPathHeader.TryClassify(first, out kind))
        {
            error = PduError.Unexpected(Pdu, "first byte", $"0x{first:x2} starts neither a TPKT nor a fast-path PDU");
            return OperationStatus.InvalidData;
        }

        if (kind == RdpFrameKind.SlowPath)
        {
            return Tpkt.TryReadFrame(ref reader, out frame, out error);
        }

        Span<byte> header = stackalloc byte[3];
        var available = (int)Math.Min(reader.Remaining, 3);
        reader.TryCopyTo(header[..available]);
        if (!FastPathHeader.TryParse(header[..available], out var parsed, out error))
        {
            if (error!.Kind == PduErrorKind.NotEnoughBytes)
            {
                error = null;
                return OperationStatus.NeedMoreData;
            }

            return OperationStatus.InvalidData;
        }

        if (reader.Remaining < parsed.Length)
        {
            return OperationStatus.NeedMoreData;
        }

        frame = reader.UnreadSequence.Slice(0, parsed.Length);
        reader.Advance(parsed.Length);
        return OperationStatus.Done;
    }
}
