using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>
/// [MS-NLMP] 2.2.1.3 AUTHENTICATE_MESSAGE: the client's responses, names, encrypted session key, and the MIC over
/// all three messages. Only Unicode messages are accepted (every client that does NTLMv2 sends them).
/// </summary>
public sealed class NtlmAuthenticateMessage
{
    /// <summary>Offset of the MIC field when present.</summary>
    public const int MicOffset = 72;

    /// <summary>Size of the MIC.</summary>
    public const int MicSize = 16;

    private const string Pdu = "NTLM AUTHENTICATE_MESSAGE";
    private const int FixedSize = 8 /* Signature */ + 4 /* MessageType */ + 6 * 8 /* six payload fields */ + 4 /* NegotiateFlags */;
    private const int FullHeaderSize = FixedSize + NtlmMessage.VersionSize + MicSize;

    private readonly byte[] _lm;
    private readonly byte[] _nt;
    private readonly byte[] _encryptedKey;
    private readonly byte[] _version;
    private readonly byte[]? _mic;
    private readonly byte[]? _raw;

    /// <summary>Creates a message to send; the MIC can be set afterwards with <see cref="WithMic"/>.</summary>
    public NtlmAuthenticateMessage(
        NtlmNegotiateFlags flags,
        ReadOnlySpan<byte> lmChallengeResponse,
        ReadOnlySpan<byte> ntChallengeResponse,
        string domainName,
        string userName,
        string workstation,
        ReadOnlySpan<byte> encryptedRandomSessionKey,
        ReadOnlySpan<byte> version = default,
        ReadOnlySpan<byte> mic = default)
        : this(flags, lmChallengeResponse, ntChallengeResponse, domainName, userName, workstation, encryptedRandomSessionKey, version, mic, raw: null)
    {
    }

    private NtlmAuthenticateMessage(
        NtlmNegotiateFlags flags,
        ReadOnlySpan<byte> lm,
        ReadOnlySpan<byte> nt,
        string domainName,
        string userName,
        string workstation,
        ReadOnlySpan<byte> encryptedKey,
        ReadOnlySpan<byte> version,
        ReadOnlySpan<byte> mic,
        byte[]? raw)
    {
        ArgumentNullException.ThrowIfNull(domainName);
        ArgumentNullException.ThrowIfNull(userName);
        ArgumentNullException.ThrowIfNull(workstation);
        if (!version.IsEmpty && version.Length != NtlmMessage.VersionSize)
        {
            throw new ArgumentException("VERSION is 8 bytes.", nameof(version));
        }

        if (!mic.IsEmpty && mic.Length != MicSize)
        {
            throw new ArgumentException("The MIC is 16 bytes.", nameof(mic));
        }

        Flags = flags;
        _lm = lm.ToArray();
        _nt = nt.ToArray();
        DomainName = domainName;
        UserName = userName;
        Workstation = workstation;
        _encryptedKey = encryptedKey.ToArray();
        _version = version.IsEmpty ? new byte[NtlmMessage.VersionSize] : version.ToArray();
        _mic = mic.IsEmpty ? null : mic.ToArray();
        _raw = raw;
    }

    /// <summary>NegotiateFlags.</summary>
    public NtlmNegotiateFlags Flags { get; }

    /// <summary>LmChallengeResponse (LMv2: 24 bytes, or zeros when the server sent a timestamp).</summary>
    public ReadOnlySpan<byte> LmChallengeResponse => _lm;

    /// <summary>NtChallengeResponse (NTLMv2_RESPONSE: NTProofStr and the client blob).</summary>
    public ReadOnlySpan<byte> NtChallengeResponse => _nt;

    /// <summary>DomainName.</summary>
    public string DomainName { get; }

    /// <summary>UserName.</summary>
    public string UserName { get; }

    /// <summary>Workstation.</summary>
    public string Workstation { get; }

    /// <summary>EncryptedRandomSessionKey (16 bytes with key exchange, else empty).</summary>
    public ReadOnlySpan<byte> EncryptedRandomSessionKey => _encryptedKey;

    /// <summary>VERSION (zeros when absent).</summary>
    public ReadOnlySpan<byte> Version => _version;

    /// <summary>The MIC, when the message carries one.</summary>
    public ReadOnlySpan<byte> Mic => _mic;

    /// <summary>True when the message carries a MIC field.</summary>
    public bool HasMic => _mic is not null;

    /// <summary>The message exactly as received (null for a message built here), for the MIC computation.</summary>
    public ReadOnlySpan<byte> Raw => _raw;

    /// <summary>The encoded size of <see cref="Write"/>'s output.</summary>
    public int Size => FullHeaderSize + _lm.Length + _nt.Length + 2 * (DomainName.Length + UserName.Length + Workstation.Length) + _encryptedKey.Length;

    /// <summary>Parses an AUTHENTICATE_MESSAGE.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out NtlmAuthenticateMessage value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        if (!NtlmMessage.ExpectType(ref reader, NtlmMessage.AuthenticateType)
            || !NtlmMessage.ReadPayload(ref reader, "LmChallengeResponse", FixedSize, out var lm)
            || !NtlmMessage.ReadPayload(ref reader, "NtChallengeResponse", FixedSize, out var nt)
            || !NtlmMessage.ReadPayload(ref reader, "DomainName", FixedSize, out var domain)
            || !NtlmMessage.ReadPayload(ref reader, "UserName", FixedSize, out var user)
            || !NtlmMessage.ReadPayload(ref reader, "Workstation", FixedSize, out var workstation)
            || !NtlmMessage.ReadPayload(ref reader, "EncryptedRandomSessionKey", FixedSize, out var key)
            || !reader.TryReadU32LE("NegotiateFlags", out var rawFlags))
        {
            error = reader.Error;
            return false;
        }

        var flags = (NtlmNegotiateFlags)rawFlags;
        if (!flags.HasFlag(NtlmNegotiateFlags.Unicode))
        {
            error = PduError.Unsupported(Pdu, "NegotiateFlags", "OEM strings (NTLMSSP_NEGOTIATE_UNICODE not set)");
            return false;
        }

        if (key.Length is not (0 or 16))
        {
            error = PduError.Invalid(Pdu, "EncryptedRandomSessionKey", $"length {key.Length}, expected 0 or 16");
            return false;
        }

        if (!NtlmMessage.TryDecodeUnicode(domain.Slice(source), Pdu, "DomainName", out var domainName, out error)
            || !NtlmMessage.TryDecodeUnicode(user.Slice(source), Pdu, "UserName", out var userName, out error)
            || !NtlmMessage.TryDecodeUnicode(workstation.Slice(source), Pdu, "Workstation", out var workstationName, out error))
        {
            return false;
        }

        // The optional VERSION and MIC sit between the fixed fields and the first payload byte.
        var payloadStart = source.Length;
        foreach (var range in new[] { lm, nt, domain, user, workstation, key })
        {
            if (range.Length > 0)
            {
                payloadStart = Math.Min(payloadStart, range.Offset);
            }
        }

        var version = payloadStart >= FixedSize + NtlmMessage.VersionSize ? source.Slice(FixedSize, NtlmMessage.VersionSize) : default;
        var mic = payloadStart >= FullHeaderSize ? source.Slice(MicOffset, MicSize) : default;
        value = new NtlmAuthenticateMessage(flags, lm.Slice(source), nt.Slice(source), domainName, userName, workstationName, key.Slice(source), version, mic, source.ToArray());
        error = null;
        return true;
    }

    /// <summary>The same message with <paramref name="mic"/> in its MIC field.</summary>
    public NtlmAuthenticateMessage WithMic(ReadOnlySpan<byte> mic) =>
        new(Flags, _lm, _nt, DomainName, UserName, Workstation, _encryptedKey, _version, mic, raw: null);

    /// <summary>
    /// Writes the message: the fixed fields, VERSION and MIC (zeros when not set), then LM, NT, domain, user,
    /// workstation and the encrypted key; empty fields point at the start of the payload.
    /// </summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var span = output.GetSpan(size)[..size];
        span.Clear();
        NtlmMessage.Signature.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], NtlmMessage.AuthenticateType);
        var offset = FullHeaderSize;
        offset = Put(span, 12, _lm, offset);
        offset = Put(span, 20, _nt, offset);
        offset = Put(span, 28, Encoding.Unicode.GetBytes(DomainName), offset);
        offset = Put(span, 36, Encoding.Unicode.GetBytes(UserName), offset);
        offset = Put(span, 44, Encoding.Unicode.GetBytes(Workstation), offset);
        Put(span, 52, _encryptedKey, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(span[60..], (uint)Flags);
        _version.CopyTo(span[FixedSize..]);
        _mic?.CopyTo(span[MicOffset..]);
        output.Advance(size);
    }

    /// <summary>The encoded message.</summary>
    public byte[] ToArray()
    {
        var buffer = new ArrayBufferWriter<byte>(Size);
        Write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static int Put(Span<byte> span, int field, ReadOnlySpan<byte> bytes, int offset)
    {
        NtlmMessage.WritePayloadField(span, field, bytes.Length, bytes.IsEmpty ? FullHeaderSize : offset);
        bytes.CopyTo(span[offset..]);
        return offset + bytes.Length;
    }
}
