using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Gatehouse.Protocol.Preconnection;

/// <summary>
/// [MS-RDPEPS] 2.2.1.1 RDP_PRECONNECTION_PDU_V1 and 2.2.1.2 RDP_PRECONNECTION_PDU_V2: sent by the client before the
/// X.224 Connection Request, never answered. V1 is 16 bytes (cbSize, Flags, Version, Id); V2 adds cchPCB and the
/// UTF-16LE wszPCB, where cchPCB counts UTF-16 code units including the terminating NUL (so cbSize = 18 + 2·cchPCB).
/// </summary>
public sealed class PreconnectionPdu
{
    /// <summary>RDP_PRECONNECTION_PDU_V1.</summary>
    public const uint Version1 = 1;

    /// <summary>RDP_PRECONNECTION_PDU_V2.</summary>
    public const uint Version2 = 2;

    /// <summary>Size of a V1 PDU.</summary>
    public const int V1Size = 4 /* cbSize */ + 4 /* Flags */ + 4 /* Version */ + 4 /* Id */;

    /// <summary>Size of a V2 PDU before wszPCB.</summary>
    public const int V2HeaderSize = V1Size + 2 /* cchPCB */;

    /// <summary>The default cap on cbSize (a Devolutions-style JWT fits with room to spare).</summary>
    public const int DefaultMaxSize = 16 * 1024;

    private const string Pdu = "RDP_PRECONNECTION_PDU";
    private readonly byte[]? _pcb;

    /// <summary>Creates a V1 PDU.</summary>
    public PreconnectionPdu(uint id, uint flags = 0)
    {
        Version = Version1;
        Id = id;
        Flags = flags;
    }

    /// <summary>Creates a V2 PDU carrying <paramref name="payload"/> (without terminator; one is added).</summary>
    /// <exception cref="ArgumentException">The payload contains a NUL or is longer than 65534 UTF-16 code units.</exception>
    public PreconnectionPdu(uint id, string payload, uint flags = 0)
    {
        ArgumentNullException.ThrowIfNull(payload);
        if (payload.Contains('\0', StringComparison.Ordinal) || payload.Length > ushort.MaxValue - 1)
        {
            throw new ArgumentException("The payload must have no NUL and at most 65534 UTF-16 code units.", nameof(payload));
        }

        Version = Version2;
        Id = id;
        Flags = flags;
        _pcb = Encoding.Unicode.GetBytes(payload + "\0");
    }

    private PreconnectionPdu(uint version, uint flags, uint id, byte[]? pcb)
    {
        Version = version;
        Flags = flags;
        Id = id;
        _pcb = pcb;
    }

    /// <summary>Version: 1 or 2.</summary>
    public uint Version { get; }

    /// <summary>Flags (unused by the protocol; kept as sent).</summary>
    public uint Flags { get; }

    /// <summary>Id: the session or VM id the client asks for.</summary>
    public uint Id { get; }

    /// <summary>wszPCB without its terminator (V2; empty when cchPCB is 0), or null (V1).</summary>
    public string? Payload => _pcb is null ? null : _pcb.Length == 0 ? string.Empty : Encoding.Unicode.GetString(_pcb, 0, _pcb.Length - 2);

    /// <summary>cchPCB (V2): UTF-16 code units including the terminator.</summary>
    public int CharacterCount => _pcb is null ? 0 : _pcb.Length / 2;

    /// <summary>cbSize.</summary>
    public int Size => _pcb is null ? V1Size : V2HeaderSize + _pcb.Length;

    /// <summary>
    /// Reads one PDU from the start of a stream buffer, using only <c>cbSize</c> bytes: Done, NeedMoreData (nothing
    /// consumed), or InvalidData with the error (a cbSize of 17, under 16, odd for V2, or over <paramref name="maxSize"/>).
    /// </summary>
    public static OperationStatus TryReadFrame(ref SequenceReader<byte> reader, int maxSize, out ReadOnlySequence<byte> frame, out PduError? error)
    {
        frame = default;
        error = null;
        Span<byte> sizeBytes = stackalloc byte[4];
        if (!reader.TryCopyTo(sizeBytes))
        {
            return OperationStatus.NeedMoreData;
        }

        var size = BinaryPrimitives.ReadUInt32LittleEndian(sizeBytes);
        if (!CheckSize(size, maxSize, out error))
        {
            return OperationStatus.InvalidData;
        }

        if (reader.Remaining < size)
        {
            return OperationStatus.NeedMoreData;
        }

        frame = reader.UnreadSequence.Slice(0, size);
        reader.Advance(size);
        return OperationStatus.Done;
    }

    /// <summary>Parses exactly one PDU (the whole span must be the PDU).</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out PreconnectionPdu value, out PduError? error) =>
        TryParse(source, DefaultMaxSize, out value, out error);

    /// <summary>Parses exactly one PDU with a cap on its size.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, int maxSize, [MaybeNullWhen(false)] out PreconnectionPdu value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        if (!reader.TryReadU32LE("cbSize", out var size))
        {
            error = reader.Error;
            return false;
        }

        if (!CheckSize(size, maxSize, out error))
        {
            return false;
        }

        if (size != source.Length)
        {
            error = size > source.Length
                ? PduError.NotEnough(Pdu, "cbSize", (int)size, source.Length)
                : PduError.Invalid(Pdu, "cbSize", $"{size} but {source.Length} bytes given");
            return false;
        }

        if (!reader.TryReadU32LE("Flags", out var flags) || !reader.TryReadU32LE("Version", out var version) || !reader.TryReadU32LE("Id", out var id))
        {
            error = reader.Error;
            return false;
        }

        if (version == Version1)
        {
            if (size != V1Size)
            {
                error = PduError.Invalid(Pdu, "cbSize", $"{size} for a V1 PDU (16 expected)");
                return false;
            }

            value = new PreconnectionPdu(version, flags, id, null);
            return true;
        }

        if (version != Version2)
        {
            error = PduError.Unsupported(Pdu, "Version", $"version {version}");
            return false;
        }

        if (!reader.TryReadU16LE("cchPCB", out var count))
        {
            error = reader.Error;
            return false;
        }

        // [MS-RDPEPS] 3.1.5.2: cchPCB 0 means no wszPCB at all (cbSize 18).
        if (count == 0)
        {
            if (size != V2HeaderSize)
            {
                error = PduError.Invalid(Pdu, "cchPCB", $"0 needs cbSize {V2HeaderSize}, not {size}");
                return false;
            }

            value = new PreconnectionPdu(version, flags, id, []);
            return true;
        }

        if (V2HeaderSize + (2 * count) != size)
        {
            error = PduError.Invalid(Pdu, "cchPCB", $"{count} code units need cbSize {V2HeaderSize + (2 * count)}, not {size}");
            return false;
        }

        if (!reader.TryReadBytes(2 * count, "wszPCB", out var pcb))
        {
            error = reader.Error;
            return false;
        }

        if (pcb[^2] != 0 || pcb[^1] != 0)
        {
            error = PduError.Invalid(Pdu, "wszPCB", "not terminated by a NUL");
            return false;
        }

        if (MemoryMarshalIndexOfNul(pcb[..^2]) >= 0)
        {
            error = PduError.Invalid(Pdu, "wszPCB", "a NUL before the terminator");
            return false;
        }

        value = new PreconnectionPdu(version, flags, id, pcb.ToArray());
        return true;
    }

    /// <summary>Writes the PDU.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(Size)[..Size];
        var writer = new WireWriter(span);
        writer.WriteU32LE((uint)Size);
        writer.WriteU32LE(Flags);
        writer.WriteU32LE(Version);
        writer.WriteU32LE(Id);
        if (_pcb is not null)
        {
            writer.WriteU16LE((ushort)CharacterCount);
            writer.WriteBytes(_pcb);
        }

        output.Advance(Size);
    }

    /// <summary>True when a stream that starts with <paramref name="first"/> begins with a preconnection PDU rather than a TPKT (version 3).</summary>
    public static bool StartsPreconnection(byte first) => first != X224.TpktHeader.Version;

    private static bool CheckSize(uint size, int maxSize, out PduError? error)
    {
        error = size switch
        {
            < V1Size => PduError.Invalid(Pdu, "cbSize", $"{size} is less than the 16 bytes of a V1 PDU"),
            17 => PduError.Invalid(Pdu, "cbSize", "17 is neither a V1 (16) nor a V2 (18 and more) size"),
            _ when size > (uint)maxSize => PduError.TooLarge(Pdu, "cbSize", size, maxSize),
            _ when size > V1Size && (size & 1) != 0 => PduError.Invalid(Pdu, "cbSize", $"{size} is odd; a V2 PDU is 18 + 2·cchPCB bytes"),
            _ => null,
        };
        return error is null;
    }

    private static int MemoryMarshalIndexOfNul(ReadOnlySpan<byte> utf16)
    {
        for (var i = 0; i + 1 < utf16.Length; i += 2)
        {
            if (utf16[i] == 0 && utf16[i + 1] == 0)
            {
                return i;
            }
        }

        return -1;
    }
}
