using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>[MS-NLMP] 2.2.2.1 AV_PAIR: the attribute identifiers of the target information.</summary>
public enum AvId : ushort
{
    /// <summary>MsvAvEOL: the end of the list.</summary>
    Eol = 0x0000,

    /// <summary>MsvAvNbComputerName.</summary>
    NbComputerName = 0x0001,

    /// <summary>MsvAvNbDomainName.</summary>
    NbDomainName = 0x0002,

    /// <summary>MsvAvDnsComputerName.</summary>
    DnsComputerName = 0x0003,

    /// <summary>MsvAvDnsDomainName.</summary>
    DnsDomainName = 0x0004,

    /// <summary>MsvAvDnsTreeName.</summary>
    DnsTreeName = 0x0005,

    /// <summary>MsvAvFlags (0x2 = the AUTHENTICATE message carries a MIC).</summary>
    Flags = 0x0006,

    /// <summary>MsvAvTimestamp: FILETIME of the server.</summary>
    Timestamp = 0x0007,

    /// <summary>MsvAvSingleHost.</summary>
    SingleHost = 0x0008,

    /// <summary>MsvAvTargetName: the SPN the client meant.</summary>
    TargetName = 0x0009,

    /// <summary>MsvAvChannelBindings: MD5 of the gss_channel_bindings_struct.</summary>
    ChannelBindings = 0x000A,
}

/// <summary>
/// [MS-NLMP] 2.2.2.1 AV_PAIR list (the CHALLENGE's TargetInfo and the NTLMv2 client's copy of it): ordered
/// (id, value) pairs ending with MsvAvEOL. Values are kept as bytes, in order, so the list re-encodes byte-exact
/// (the NTLMv2 proof is computed over these bytes).
/// </summary>
public sealed class AvPairs
{
    /// <summary>MsvAvFlags bit: the AUTHENTICATE message carries a MIC.</summary>
    public const uint MicPresentFlag = 0x00000002;

    /// <summary>Most pairs accepted in one list.</summary>
    public const int MaxPairs = 64;

    private const string Pdu = "AV_PAIR list";
    private readonly List<(AvId Id, byte[] Value)> _pairs;

    /// <summary>Creates a list from pairs (without the terminating MsvAvEOL, which is implied).</summary>
    /// <exception cref="ArgumentException">A pair is MsvAvEOL, or a value is longer than 65535 bytes.</exception>
    public AvPairs(IEnumerable<(AvId Id, byte[] Value)> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        _pairs = [.. pairs];
        foreach (var (id, value) in _pairs)
        {
            if (id == AvId.Eol || value.Length > ushort.MaxValue)
            {
                throw new ArgumentException("MsvAvEOL is implied, and values are at most 65535 bytes.", nameof(pairs));
            }
        }
    }

    /// <summary>The pairs in order, without the terminating MsvAvEOL.</summary>
    public IReadOnlyList<(AvId Id, byte[] Value)> Pairs => _pairs;

    /// <summary>The encoded size including MsvAvEOL.</summary>
    public int Size => _pairs.Sum(p => 4 /* AvId + AvLen */ + p.Value.Length) + 4 /* MsvAvEOL */;

    /// <summary>The value of the first pair with <paramref name="id"/>, or null.</summary>
    public byte[]? Find(AvId id)
    {
        foreach (var (pairId, value) in _pairs)
        {
            if (pairId == id)
            {
                return value;
            }
        }

        return null;
    }

    /// <summary>MsvAvTimestamp as a FILETIME, when present and 8 bytes long.</summary>
    public long? Timestamp => Find(AvId.Timestamp) is { Length: 8 } t ? BinaryPrimitives.ReadInt64LittleEndian(t) : null;

    /// <summary>MsvAvFlags, when present and 4 bytes long; 0 otherwise.</summary>
    public uint Flags => Find(AvId.Flags) is { Length: 4 } f ? BinaryPrimitives.ReadUInt32LittleEndian(f) : 0;

    /// <summary>Parses a list that ends with MsvAvEOL; bytes after the terminator are refused.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out AvPairs value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        var pairs = new List<(AvId, byte[])>();
        while (true)
        {
            if (!reader.TryReadU16LE("AvId", out var id) || !reader.TryReadU16LE("AvLen", out var length))
            {
                error = reader.Error;
                return false;
            }

            if (id == (ushort)AvId.Eol)
            {
                if (length != 0)
                {
                    error = PduError.Invalid(Pdu, "AvLen", $"MsvAvEOL must have length 0, not {length}");
                    return false;
                }

                break;
            }

            if (pairs.Count == MaxPairs)
            {
                error = PduError.TooLarge(Pdu, "pairs", pairs.Count + 1, MaxPairs);
                return false;
            }

            if (!reader.TryReadBytes(length, "Value", out var bytes))
            {
                error = reader.Error;
                return false;
            }

            pairs.Add(((AvId)id, bytes.ToArray()));
        }

        if (reader.Remaining != 0)
        {
            error = PduError.Invalid(Pdu, "MsvAvEOL", $"{reader.Remaining} bytes follow the end of the list");
            return false;
        }

        value = new AvPairs(pairs);
        error = null;
        return true;
    }

    /// <summary>A copy with the first pair of <paramref name="id"/> replaced, or the pair appended.</summary>
    public AvPairs With(AvId id, byte[] newValue)
    {
        ArgumentNullException.ThrowIfNull(newValue);
        var copy = new List<(AvId, byte[])>(_pairs);
        var index = copy.FindIndex(p => p.Item1 == id);
        if (index >= 0)
        {
            copy[index] = (id, newValue);
        }
        else
        {
            copy.Add((id, newValue));
        }

        return new AvPairs(copy);
    }

    /// <summary>Writes the list and its MsvAvEOL into <paramref name="destination"/> (at least <see cref="Size"/> bytes).</summary>
    public void WriteTo(Span<byte> destination)
    {
        var writer = new WireWriter(destination);
        foreach (var (id, value) in _pairs)
        {
            writer.WriteU16LE((ushort)id);
            writer.WriteU16LE((ushort)value.Length);
            writer.WriteBytes(value);
        }

        writer.WriteU32LE(0);
    }

    /// <summary>The encoded list.</summary>
    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        WriteTo(bytes);
        return bytes;
    }
}
