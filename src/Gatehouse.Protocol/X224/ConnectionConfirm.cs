using System.Buffers;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.X224;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.2 Server X.224 Connection Confirm PDU: <c>tpktHeader | x224Ccf | rdpNegData (optional:
/// RDP_NEG_RSP or RDP_NEG_FAILURE)</c>.
/// </summary>
public sealed class ConnectionConfirm
{
    internal const string Name = "X.224 Connection Confirm";

    /// <summary>The CC TPDU code (with CDT = 0).</summary>
    public const byte Code = 0xD0;

    /// <summary>Size of the fixed x224Ccf part.</summary>
    public const int FixedHeaderSize = 1 /* LI */ + 1 /* CC-CDT */ + 2 /* DST-REF */ + 2 /* SRC-REF */ + 1 /* class option */;

    /// <summary>The SRC-REF Windows and FreeRDP servers send.</summary>
    public const ushort DefaultSourceReference = 0x1234;

    /// <summary>Creates a Connection Confirm.</summary>
    public ConnectionConfirm(NegotiationResult? result, ushort destinationReference = 0, ushort sourceReference = DefaultSourceReference, byte classOption = 0)
    {
        Result = result;
        DestinationReference = destinationReference;
        SourceReference = sourceReference;
        ClassOption = classOption;
    }

    /// <summary>DST-REF.</summary>
    public ushort DestinationReference { get; }

    /// <summary>SRC-REF.</summary>
    public ushort SourceReference { get; }

    /// <summary>Class option byte.</summary>
    public byte ClassOption { get; }

    /// <summary>RDP_NEG_RSP or RDP_NEG_FAILURE, when present (absent: standard RDP security).</summary>
    public NegotiationResult? Result { get; }

    /// <summary>Size of the whole PDU, TPKT header included.</summary>
    public int Size => TpktHeader.Size + FixedHeaderSize + (Result is null ? 0 : NegotiationResult.Size);

    /// <summary>Parses a whole TPKT frame holding a Connection Confirm.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out ConnectionConfirm value, out PduError? error)
    {
        value = null;
        if (!Tpkt.TryUnwrap(frame, out var tpdu, out error))
        {
            return false;
        }

        var reader = new WireReader(tpdu, Name);
        if (!reader.TryReadU8("LI", out var li) || !reader.TryReadU8("CC-CDT", out var code))
        {
            error = reader.Error;
            return false;
        }

        if ((code & 0xF0) != Code)
        {
            error = PduError.Unexpected(Name, "CC-CDT", $"0x{code:X2} is not a Connection Confirm");
            return false;
        }

        if (li != tpdu.Length - 1)
        {
            error = PduError.Invalid(Name, "LI", $"{li} disagrees with the {tpdu.Length - 1} bytes that follow it");
            return false;
        }

        if (!reader.TryReadU16BE("DST-REF", out var dstRef)
            || !reader.TryReadU16BE("SRC-REF", out var srcRef)
            || !reader.TryReadU8("class option", out var classOption))
        {
            error = reader.Error;
            return false;
        }

        NegotiationResult? result = null;
        if (reader.Remaining > 0)
        {
            if (!reader.TryReadU8("rdpNegData.type", out var type)
                || !reader.TryReadU8("rdpNegData.flags", out var flags)
                || !reader.TryReadU16LE("rdpNegData.length", out var length)
                || !reader.TryReadU32LE("rdpNegData.value", out var raw))
            {
                error = reader.Error;
                return false;
            }

            if (type is not (NegotiationResult.ResponseType or NegotiationResult.FailureType))
            {
                error = PduError.Unexpected(Name, "rdpNegData.type", $"0x{type:X2}, expected TYPE_RDP_NEG_RSP or TYPE_RDP_NEG_FAILURE");
                return false;
            }

            if (length != NegotiationResult.Size)
            {
                error = PduError.Invalid(Name, "rdpNegData.length", $"{length}, must be 8");
                return false;
            }

            result = NegotiationResult.Raw(type == NegotiationResult.FailureType, flags, raw);
        }

        if (reader.Remaining != 0)
        {
            error = PduError.Invalid(Name, "LI", $"{reader.Remaining} unexpected bytes after the last field");
            return false;
        }

        value = new ConnectionConfirm(result, dstRef, srcRef, classOption);
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
        writer.WriteU8(ClassOption);
        if (Result is { } result)
        {
            writer.WriteU8(result.IsFailure ? NegotiationResult.FailureType : NegotiationResult.ResponseType);
            writer.WriteU8(result.RawFlags);
            writer.WriteU16LE(NegotiationResult.Size);
            writer.WriteU32LE(result.RawValue);
        }

        output.Advance(size);
    }

    /// <inheritdoc />
    public override string ToString() => Result switch
    {
        null => $"{Name} (no negotiation data)",
        { IsFailure: true } r => $"{Name} (failure {r.FailureCode})",
        { } r => $"{Name} (selected {r.SelectedProtocol}, flags {r.ResponseFlags})",
    };
}
