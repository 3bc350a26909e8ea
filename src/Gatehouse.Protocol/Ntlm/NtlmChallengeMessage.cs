using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>[MS-NLMP] 2.2.1.2 CHALLENGE_MESSAGE: the server's flags, 8-byte challenge and target information.</summary>
public sealed class NtlmChallengeMessage
{
    private const string Pdu = "NTLM CHALLENGE_MESSAGE";
    private const int FixedSize = 8 /* Signature */ + 4 /* MessageType */ + 8 /* TargetNameFields */ + 4 /* NegotiateFlags */
        + 8 /* ServerChallenge */ + 8 /* Reserved */ + 8 /* TargetInfoFields */;

    private readonly byte[] _targetName;
    private readonly byte[] _serverChallenge;
    private readonly byte[] _targetInfo;
    private readonly byte[]? _version;

    /// <summary>Creates a message; <paramref name="targetName"/> is already encoded (UTF-16LE when Unicode is negotiated).</summary>
    public NtlmChallengeMessage(NtlmNegotiateFlags flags, ReadOnlySpan<byte> serverChallenge, ReadOnlySpan<byte> targetName, AvPairs? targetInfo, ReadOnlySpan<byte> version = default)
    {
        if (serverChallenge.Length != 8)
        {
            throw new ArgumentException("The server challenge is 8 bytes.", nameof(serverChallenge));
        }

        if (!version.IsEmpty && version.Length != NtlmMessage.VersionSize)
        {
            throw new ArgumentException("VERSION is 8 bytes.", nameof(version));
        }

        Flags = flags;
        _serverChallenge = serverChallenge.ToArray();
        _targetName = targetName.ToArray();
        _targetInfo = targetInfo?.ToArray() ?? [];
        TargetInfo = targetInfo;
        _version = version.IsEmpty ? null : version.ToArray();
    }

    /// <summary>NegotiateFlags.</summary>
    public NtlmNegotiateFlags Flags { get; }

    /// <summary>ServerChallenge (8 bytes).</summary>
    public ReadOnlySpan<byte> ServerChallenge => _serverChallenge;

    /// <summary>TargetName as sent.</summary>
    public ReadOnlySpan<byte> TargetName => _targetName;

    /// <summary>TargetInfo, parsed; null when absent.</summary>
    public AvPairs? TargetInfo { get; }

    /// <summary>TargetInfo as sent (the NTLMv2 client copies it).</summary>
    public ReadOnlySpan<byte> TargetInfoBytes => _targetInfo;

    /// <summary>VERSION, when present.</summary>
    public ReadOnlySpan<byte> Version => _version;

    /// <summary>The encoded size.</summary>
    public int Size => HeaderSize + _targetName.Length + _targetInfo.Length;

    private int HeaderSize => FixedSize + (_version is null ? 0 : NtlmMessage.VersionSize);

    /// <summary>Parses a CHALLENGE_MESSAGE.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out NtlmChallengeMessage value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        if (!NtlmMessage.ExpectType(ref reader, NtlmMessage.ChallengeType)
            || !NtlmMessage.ReadPayload(ref reader, "TargetName", FixedSize, out var targetName)
            || !reader.TryReadU32LE("NegotiateFlags", out var flags)
            || !reader.TryReadBytes(8, "ServerChallenge", out var challenge)
            || !reader.TrySkip(8, "Reserved")
            || !NtlmMessage.ReadPayload(ref reader, "TargetInfo", FixedSize, out var targetInfo))
        {
            error = reader.Error;
            return false;
        }

        AvPairs? pairs = null;
        if (targetInfo.Length > 0 && !AvPairs.TryParse(targetInfo.Slice(source), out pairs, out error))
        {
            return false;
        }

        ReadOnlySpan<byte> version = default;
        var payloadStart = Math.Min(targetName.Length == 0 ? source.Length : targetName.Offset, targetInfo.Length == 0 ? source.Length : targetInfo.Offset);
        if (((NtlmNegotiateFlags)flags).HasFlag(NtlmNegotiateFlags.Version) && payloadStart >= FixedSize + NtlmMessage.VersionSize && source.Length >= FixedSize + NtlmMessage.VersionSize)
        {
            version = source.Slice(FixedSize, NtlmMessage.VersionSize);
        }

        value = new NtlmChallengeMessage((NtlmNegotiateFlags)flags, challenge, targetName.Slice(source), pairs, version);
        error = null;
        return true;
    }

    /// <summary>Writes the message: fixed fields, VERSION when present, TargetName, TargetInfo.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(Size)[..Size];
        span.Clear();
        NtlmMessage.Signature.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], NtlmMessage.ChallengeType);
        var offset = HeaderSize;
        NtlmMessage.WritePayloadField(span, 12, _targetName.Length, offset);
        _targetName.CopyTo(span[offset..]);
        offset += _targetName.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], (uint)Flags);
        _serverChallenge.CopyTo(span[24..]);
        NtlmMessage.WritePayloadField(span, 40, _targetInfo.Length, offset);
        _targetInfo.CopyTo(span[offset..]);
        _version?.CopyTo(span[FixedSize..]);
        output.Advance(Size);
    }

    /// <summary>The encoded message.</summary>
    public byte[] ToArray()
    {
        var buffer = new ArrayBufferWriter<byte>(Size);
        Write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
