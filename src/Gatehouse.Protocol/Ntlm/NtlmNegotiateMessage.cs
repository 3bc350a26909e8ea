using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>[MS-NLMP] 2.2.1.1 NEGOTIATE_MESSAGE: the client's flags and, rarely, its OEM domain and workstation.</summary>
public sealed class NtlmNegotiateMessage
{
    private const string Pdu = "NTLM NEGOTIATE_MESSAGE";
    private const int FixedSize = 8 /* Signature */ + 4 /* MessageType */ + 4 /* NegotiateFlags */ + 8 /* DomainNameFields */ + 8 /* WorkstationFields */;
    private readonly byte[] _domain;
    private readonly byte[] _workstation;
    private readonly byte[]? _version;

    /// <summary>Creates a message; <paramref name="version"/> (8 bytes) is written when given.</summary>
    public NtlmNegotiateMessage(NtlmNegotiateFlags flags, ReadOnlySpan<byte> domain = default, ReadOnlySpan<byte> workstation = default, ReadOnlySpan<byte> version = default)
    {
        if (!version.IsEmpty && version.Length != NtlmMessage.VersionSize)
        {
            throw new ArgumentException("VERSION is 8 bytes.", nameof(version));
        }

        Flags = flags;
        _domain = domain.ToArray();
        _workstation = workstation.ToArray();
        _version = version.IsEmpty ? null : version.ToArray();
    }

    /// <summary>NegotiateFlags.</summary>
    public NtlmNegotiateFlags Flags { get; }

    /// <summary>DomainName (OEM), usually empty.</summary>
    public ReadOnlySpan<byte> DomainName => _domain;

    /// <summary>Workstation (OEM), usually empty.</summary>
    public ReadOnlySpan<byte> Workstation => _workstation;

    /// <summary>VERSION, when present.</summary>
    public ReadOnlySpan<byte> Version => _version;

    /// <summary>The encoded size.</summary>
    public int Size => HeaderSize + _domain.Length + _workstation.Length;

    private int HeaderSize => FixedSize + (_version is null ? 0 : NtlmMessage.VersionSize);

    /// <summary>Parses a NEGOTIATE_MESSAGE.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out NtlmNegotiateMessage value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        if (!NtlmMessage.ExpectType(ref reader, NtlmMessage.NegotiateType)
            || !reader.TryReadU32LE("NegotiateFlags", out var flags)
            || !NtlmMessage.ReadPayload(ref reader, "DomainName", FixedSize, out var domain)
            || !NtlmMessage.ReadPayload(ref reader, "Workstation", FixedSize, out var workstation))
        {
            error = reader.Error;
            return false;
        }

        // VERSION sits between the fixed fields and the payload when the flag says so and there is room for it.
        ReadOnlySpan<byte> version = default;
        var payloadStart = Math.Min(domain.Length == 0 ? source.Length : domain.Offset, workstation.Length == 0 ? source.Length : workstation.Offset);
        if (((NtlmNegotiateFlags)flags).HasFlag(NtlmNegotiateFlags.Version) && payloadStart >= FixedSize + NtlmMessage.VersionSize && source.Length >= FixedSize + NtlmMessage.VersionSize)
        {
            version = source.Slice(FixedSize, NtlmMessage.VersionSize);
        }

        value = new NtlmNegotiateMessage((NtlmNegotiateFlags)flags, domain.Slice(source), workstation.Slice(source), version);
        error = null;
        return true;
    }

    /// <summary>Writes the message: fixed fields, VERSION when present, then domain and workstation.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(Size)[..Size];
        span.Clear();
        NtlmMessage.Signature.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], NtlmMessage.NegotiateType);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)Flags);
        var offset = HeaderSize;
        NtlmMessage.WritePayloadField(span, 16, _domain.Length, offset);
        _domain.CopyTo(span[offset..]);
        offset += _domain.Length;
        NtlmMessage.WritePayloadField(span, 24, _workstation.Length, offset);
        _workstation.CopyTo(span[offset..]);
        _version?.CopyTo(span[FixedSize..]);
        output.Advance(Size);
    }
}
