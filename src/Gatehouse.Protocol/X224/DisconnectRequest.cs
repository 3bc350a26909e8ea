using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.X224;

/// <summary>
/// [X.224] 13.5 Disconnect Request (DR) TPDU, class 0: <c>LI | 0x80 | DST-REF | SRC-REF | reason</c>, with an
/// optional variable part kept as received. RDP peers send it to end the connection at the transport layer.
/// </summary>
public sealed class DisconnectRequest
{
    internal const string Name = "X.224 Disconnect Request";

    /// <summary>The DR TPDU code.</summary>
    public const byte Code = 0x80;

    /// <summary>Size of the fixed part.</summary>
    public const int FixedHeaderSize = 1 /* LI */ + 1 /* DR */ + 2 /* DST-REF */ + 2 /* SRC-REF */ + 1 /* reason */;

    private readonly byte[] _variablePart;

    /// <summary>Creates a Disconnect Request.</summary>
    public DisconnectRequest(ushort destinationReference, ushort sourceReference, byte reason)
        : this(destinationReference, sourceReference, reason, [])
    {
    }

    private DisconnectRequest(ushort destinationReference, ushort sourceReference, byte reason, byte[] variablePart)
    {
        DestinationReference = destinationReference;
        SourceReference = sourceReference;
        Reason = reason;
        _variablePart = variablePart;
    }

    /// <summary>DST-REF.</summary>
    public ushort DestinationReference { get; }

    /// <summary>SRC-REF.</summary>
    public ushort SourceReference { get; }

    /// <summary>The reason code ([X.224] 13.5.3 d; 0 = not specified).</summary>
    public byte Reason { get; }

    /// <summary>The variable part, as received.</summary>
    public ReadOnlySpan<byte> VariablePart => _variablePart;

    /// <summary>Size of the whole PDU, TPKT header included.</summary>
    public int Size => TpktHeader.Size + FixedHeaderSize + _variablePart.Length;

    /// <summary>Parses a whole TPKT frame holding a Disconnect Request.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out DisconnectRequest value, out PduError? error)
    {
        value = null;
        if (!Tpkt.TryUnwrap(frame, out var tpdu, out error))
        {
            return false;
        }

        var reader = new WireReader(tpdu, Name);
        if (!reader.TryReadU8("LI", out var li) || !reader.TryReadU8("DR", out var code))
        {
            error = reader.Error;
            return false;
        }

        if (code != Code)
        {
            error = PduError.Unexpected(Name, "DR", $"0x{code:X2} is not a Disconnect Request");
            return false;
        }

        if (li != tpdu.Length - 1)
        {
            error = PduError.Invalid(Name, "LI", $"{li} disagrees with the {tpdu.Length - 1} bytes that follow it");
            return false;
        }

        if (!reader.TryReadU16BE("DST-REF", out var dstRef)
            || !reader.TryReadU16BE("SRC-REF", out var srcRef)
            || !reader.TryReadU8("reason", out var reason))
        {
            error = reader.Error;
            return false;
        }

        value = new DisconnectRequest(dstRef, srcRef, reason, reader.Rest.ToArray());
        return true;
    }

    /// <summary>Writes the whole PDU, TPKT header included.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var writer = new WireWriter(output.GetSpan(size)[..size]);
        writer.WriteU8(TpktHeader.Version);
        writer.WriteU8(0);
        writer.WriteU16BE((ushort)size);
        writer.WriteU8((byte)(size - TpktHeader.Size - 1));
        writer.WriteU8(Code);
        writer.WriteU16BE(DestinationReference);
        writer.WriteU16BE(SourceReference);
        writer.WriteU8(Reason);
        writer.WriteBytes(_variablePart);
        output.Advance(size);
    }
}

/// <summary>The X.224 TPDU kinds RDP uses.</summary>
public enum X224TpduKind
{
    /// <summary>CR: Connection Request.</summary>
    ConnectionRequest,

    /// <summary>CC: Connection Confirm.</summary>
    ConnectionConfirm,

    /// <summary>DR: Disconnect Request.</summary>
    DisconnectRequest,

    /// <summary>DT: Data.</summary>
    Data,
}

/// <summary>One dispatch point for the X.224 layer: which TPDU a TPKT frame carries.</summary>
public static class X224Tpdu
{
    /// <summary>Classifies a whole TPKT frame by its X.224 TPDU code.</summary>
    public static bool TryClassify(ReadOnlySpan<byte> frame, out X224TpduKind kind, out PduError? error)
    {
        kind = default;
        if (!Tpkt.TryUnwrap(frame, out var tpdu, out error))
        {
            return false;
        }

        if (tpdu.Length < 2)
        {
            error = PduError.NotEnough("X.224", "code", 2, tpdu.Length);
            return false;
        }

        switch (tpdu[1] & 0xF0)
        {
            case ConnectionRequest.Code:
                kind = X224TpduKind.ConnectionRequest;
                return true;
            case ConnectionConfirm.Code:
                kind = X224TpduKind.ConnectionConfirm;
                return true;
            case DisconnectRequest.Code:
                kind = X224TpduKind.DisconnectRequest;
                return true;
            case X224Data.Code:
                kind = X224TpduKind.Data;
                return true;
            default:
                error = PduError.Unexpected("X.224", "code", $"0x{tpdu[1]:X2} is not a TPDU RDP uses");
                return false;
        }
    }
}
