using System.Buffers;
using System.Buffers.Binary;

namespace Gatehouse.Protocol.X224;

/// <summary>
/// [T.123] 8 TPKT header: <c>version(1)=3 | reserved(1) | length(2, big-endian, whole packet)</c>. Every slow-path
/// RDP PDU travels in one TPKT packet.
/// </summary>
public readonly record struct TpktHeader(ushort PacketLength)
{
    /// <summary>Size of the header.</summary>
    public const int Size = 1 /* version */ + 1 /* reserved */ + 2 /* length */;

    /// <summary>The only TPKT version.</summary>
    public const byte Version = 3;

    /// <summary>Reads the header from the start of <paramref name="source"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out TpktHeader header, out PduError? error)
    {
        header = default;
        error = null;
        if (source.Length < Size)
        {
            error = PduError.NotEnough(Tpkt.Name, "header", Size, source.Length);
            return false;
        }

        if (source[0] != Version)
        {
            error = PduError.Unexpected(Tpkt.Name, "version", $"got {source[0]}, expected 3");
            return false;
        }

        var length = BinaryPrimitives.ReadUInt16BigEndian(source[2..]);
        if (length < Size)
        {
            error = PduError.Invalid(Tpkt.Name, "length", $"{length} is shorter than the header");
            return false;
        }

        header = new TpktHeader(length);
        return true;
    }

    /// <summary>Writes the header for a packet of <see cref="PacketLength"/> bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        destination[0] = Version;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], PacketLength);
    }
}

/// <summary>TPKT framing over a byte stream.</summary>
public static class Tpkt
{
    internal const string Name = "TPKT";

    /// <summary>The largest packet a 16-bit length can describe.</summary>
    public const int MaxPacketLength = ushort.MaxValue;

    /// <summary>
    /// Takes one whole TPKT packet (header included) off the front of a stream. <see cref="OperationStatus.NeedMoreData"/>
    /// leaves the reader where it was; <see cref="OperationStatus.InvalidData"/> sets <paramref name="error"/>.
    /// </summary>
    public static OperationStatus TryReadFrame(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> frame, out PduError? error)
    {
        var result = FastPath.RdpFraming.TryReadFrame(ref reader, MaxPacketLength, acceptFastPath: false, out frame);
        error = result.Error;
        return result.Status;
    }

    /// <summary>
    /// Checks that <paramref name="frame"/> is exactly one TPKT packet and returns what it carries.
    /// </summary>
    public static bool TryUnwrap(ReadOnlySpan<byte> frame, out ReadOnlySpan<byte> payload, out PduError? error)
    {
        payload = default;
        if (!TpktHeader.TryParse(frame, out var header, out error))
        {
            return false;
        }

        if (header.PacketLength > frame.Length)
        {
            error = PduError.NotEnough(Name, "payload", header.PacketLength, frame.Length);
            return false;
        }

        if (header.PacketLength < frame.Length)
        {
            error = PduError.Invalid(Name, "length", $"{header.PacketLength} disagrees with the {frame.Length}-byte frame");
            return false;
        }

        payload = frame[TpktHeader.Size..];
        return true;
    }

    /// <summary>Writes a TPKT header for a packet of <paramref name="packetLength"/> bytes (header included).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The packet does not fit a 16-bit length.</exception>
    public static void WriteHeader(Span<byte> destination, int packetLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(packetLength, TpktHeader.Size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(packetLength, MaxPacketLength);
        new TpktHeader((ushort)packetLength).WriteTo(destination);
    }
}
