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

/// <summary>
/// What <see cref="RdpFraming.Inspect"/> found at the front of the buffered bytes: a whole frame
/// (<see cref="OperationStatus.Done"/>, <see cref="Kind"/> and <see cref="Length"/>), not enough bytes yet
/// (<see cref="OperationStatus.NeedMoreData"/>, with <see cref="BytesNeeded"/>), or a typed error
/// (<see cref="OperationStatus.InvalidData"/>: <see cref="PduErrorKind.UnexpectedMessageType"/> for a bad TPKT version
/// or a first byte that starts no RDP PDU, <see cref="PduErrorKind.InvalidField"/> for a length shorter than its
/// header, <see cref="PduErrorKind.TooLarge"/> for a frame larger than the cap).
/// </summary>
/// <param name="Status">Done, NeedMoreData or InvalidData.</param>
/// <param name="Kind">The framing (meaningful once the first byte is known).</param>
/// <param name="Length">The frame's declared length, header included (0 while the header is incomplete; set for a frame over the cap).</param>
/// <param name="BytesNeeded">
/// How many bytes the buffer must hold before the next call can make progress: the header size while the header is
/// incomplete, then <see cref="Length"/>. A stream reader that reads exactly this many never reads past the frame.
/// </param>
/// <param name="Error">The typed error when <paramref name="Status"/> is InvalidData.</param>
public readonly record struct RdpFrameResult(OperationStatus Status, RdpFrameKind Kind, int Length, int BytesNeeded, PduError? Error);

/// <summary>Frames the PDUs of an RDP connection: TPKT (slow path) or fast path, each with a size cap.</summary>
public static class RdpFraming
{
    private const string Pdu = "RDP frame";

    /// <summary>The largest frame either framing can describe (a TPKT's 16-bit length).</summary>
    public const int MaxFrameBytes = Tpkt.MaxPacketLength;

    /// <summary>
    /// Looks at the front of <paramref name="buffered"/> without consuming anything and says whether it holds one
    /// whole frame of at most <paramref name="maxFrameBytes"/> bytes. With <paramref name="acceptFastPath"/> false only
    /// TPKT is accepted (a first byte other than 3 is a bad TPKT version). A wrong first byte fails at once, before the
    /// rest of the header arrives; a length over the cap fails as soon as the header is complete.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFrameBytes"/> is below the smallest header.</exception>
    public static RdpFrameResult Inspect(ReadOnlySequence<byte> buffered, int maxFrameBytes, bool acceptFastPath = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameBytes, TpktHeader.Size);
        if (buffered.IsEmpty)
        {
            return new(OperationStatus.NeedMoreData, RdpFrameKind.SlowPath, 0, 1, null);
        }

        Span<byte> header = stackalloc byte[TpktHeader.Size];
        var available = (int)Math.Min(buffered.Length, TpktHeader.Size);
        buffered.Slice(0, available).CopyTo(header);
        header = header[..available];
        var first = header[0];
        if (!acceptFastPath || first == TpktHeader.Version)
        {
            if (first != TpktHeader.Version)
            {
                return Invalid(RdpFrameKind.SlowPath, 0, PduError.Unexpected(Tpkt.Name, "version", $"got {first}, expected 3"));
            }

            if (available < TpktHeader.Size)
            {
                return new(OperationStatus.NeedMoreData, RdpFrameKind.SlowPath, 0, TpktHeader.Size, null);
            }

            if (!TpktHeader.TryParse(header, out var tpkt, out var error))
            {
                return Invalid(RdpFrameKind.SlowPath, 0, error!);
            }

            return Sized(buffered, RdpFrameKind.SlowPath, tpkt.PacketLength, maxFrameBytes, Tpkt.Name);
        }

        if (!FastPathHeader.TryClassify(first, out _))
        {
            return Invalid(RdpFrameKind.FastPath, 0, PduError.Unexpected(Pdu, "first byte", $"0x{first:x2} starts neither a TPKT nor a fast-path PDU"));
        }

        // The length is one byte, or two when the high bit of the first is set.
        var headerSize = available >= 2 && (header[1] & 0x80) != 0 ? 3 : 2;
        if (available < headerSize)
        {
            return new(OperationStatus.NeedMoreData, RdpFrameKind.FastPath, 0, headerSize, null);
        }

        if (!FastPathHeader.TryParse(header[..headerSize], out var fast, out var fastError))
        {
            return Invalid(RdpFrameKind.FastPath, 0, fastError!);
        }

        return Sized(buffered, RdpFrameKind.FastPath, fast.Length, maxFrameBytes, "fast-path header");
    }

    /// <summary>
    /// Takes one whole frame of at most <paramref name="maxFrameBytes"/> off the front of a stream (see
    /// <see cref="Inspect"/>). Done advances the reader past the frame and nothing more; NeedMoreData and InvalidData
    /// leave it where it was.
    /// </summary>
    public static RdpFrameResult TryReadFrame(ref SequenceReader<byte> reader, int maxFrameBytes, bool acceptFastPath, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        var unread = reader.UnreadSequence;
        var result = Inspect(unread, maxFrameBytes, acceptFastPath);
        if (result.Status == OperationStatus.Done)
        {
            frame = unread.Slice(0, result.Length);
            reader.Advance(result.Length);
        }

        return result;
    }

    /// <summary>
    /// Reads one whole PDU of either kind: Done, NeedMoreData (nothing consumed), or InvalidData when the first byte is
    /// neither a TPKT nor fast path, or a length is impossible.
    /// </summary>
    public static OperationStatus TryReadFrame(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> frame, out RdpFrameKind kind, out PduError? error)
    {
        var result = TryReadFrame(ref reader, MaxFrameBytes, acceptFastPath: true, out frame);
        kind = result.Kind;
        error = result.Error;
        return result.Status;
    }

    private static RdpFrameResult Sized(ReadOnlySequence<byte> buffered, RdpFrameKind kind, int length, int maxFrameBytes, string pdu)
    {
        if (length > maxFrameBytes)
        {
            return new(OperationStatus.InvalidData, kind, length, length, PduError.TooLarge(pdu, "length", length, maxFrameBytes));
        }

        return buffered.Length < length
            ? new(OperationStatus.NeedMoreData, kind, length, length, null)
            : new(OperationStatus.Done, kind, length, length, null);
    }

    private static RdpFrameResult Invalid(RdpFrameKind kind, int length, PduError error) =>
        new(OperationStatus.InvalidData, kind, length, 0, error);
}
