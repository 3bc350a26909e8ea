using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Gatehouse.Protocol.X224;

/// <summary>What the optional CRLF-terminated line of an X.224 Connection Request carries.</summary>
public enum ConnectionRequestTokenKind
{
    /// <summary>No line.</summary>
    None,

    /// <summary><c>Cookie: mstshash=IDENTIFIER</c>: [MS-RDPBCGR] 2.2.1.1 cookie (usually the user name).</summary>
    Cookie,

    /// <summary><c>Cookie: msts=...</c>: [MS-RDPBCGR] 2.2.1.1 routingToken, used for load balancing.</summary>
    RoutingToken,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.1 Client X.224 Connection Request PDU: <c>tpktHeader | x224Crq | routingToken or cookie
/// (optional, CRLF-terminated) | rdpNegReq (optional) | rdpCorrelationInfo (optional)</c>.
/// </summary>
public sealed class ConnectionRequest
{
    internal const string Name = "X.224 Connection Request";

    /// <summary>The CR TPDU code (with CDT = 0).</summary>
    public const byte Code = 0xE0;

    /// <summary>Size of the fixed x224Crq part.</summary>
    public const int FixedHeaderSize = 1 /* LI */ + 1 /* CR-CDT */ + 2 /* DST-REF */ + 2 /* SRC-REF */ + 1 /* class option */;

    /// <summary>The longest token line accepted (an X.224 header's LI is one byte, so a CR TPDU is at most 255 bytes).</summary>
    public const int MaxTokenLength = 255 - FixedHeaderSize + 1 - NegotiationRequest.Size;

    private static ReadOnlySpan<byte> CookiePrefix => "Cookie: mstshash="u8;

    private static ReadOnlySpan<byte> RoutingTokenPrefix => "Cookie: msts="u8;

    private readonly byte[] _token;

    /// <summary>Creates a Connection Request.</summary>
    /// <param name="sourceReference">SRC-REF (FreeRDP and mstsc send 0).</param>
    /// <param name="tokenKind">Which token line to send, if any.</param>
    /// <param name="tokenValue">The text after <c>mstshash=</c> or <c>msts=</c> (ASCII, without CR, LF or NUL).</param>
    /// <param name="negotiation">The RDP_NEG_REQ, or null for none (standard RDP security).</param>
    /// <param name="correlation">Correlation info; requires <paramref name="negotiation"/>, whose CorrelationInfoPresent flag must match.</param>
    /// <exception cref="ArgumentException">The token is not ASCII, contains CR, LF or NUL, is too long, or the correlation info and flag disagree.</exception>
    public ConnectionRequest(
        ushort sourceReference = 0,
        ConnectionRequestTokenKind tokenKind = ConnectionRequestTokenKind.None,
        string? tokenValue = null,
        NegotiationRequest? negotiation = null,
        CorrelationInfo? correlation = null)
    {
        SourceReference = sourceReference;
        ClassOption = 0;
        TokenKind = tokenKind;
        Negotiation = negotiation;
        Correlation = correlation;
        _token = tokenKind switch
        {
            ConnectionRequestTokenKind.None when tokenValue is null => [],
            ConnectionRequestTokenKind.None => throw new ArgumentException("A token value needs a token kind.", nameof(tokenValue)),
            _ => BuildToken(tokenKind, tokenValue ?? throw new ArgumentNullException(nameof(tokenValue))),
        };
        var flagged = negotiation is { } n && n.Flags.HasFlag(NegotiationRequestFlags.CorrelationInfoPresent);
        if (flagged != correlation is not null)
        {
            throw new ArgumentException("CORRELATION_INFO_PRESENT must be set exactly when correlation info is given.", nameof(correlation));
        }

        if (Size - TpktHeader.Size - 1 > byte.MaxValue)
        {
            throw new ArgumentException("The Connection Request would exceed the 255-byte X.224 header.", nameof(tokenValue));
        }
    }

    private ConnectionRequest(ushort sourceReference, byte classOption, ConnectionRequestTokenKind kind, byte[] token, NegotiationRequest? negotiation, CorrelationInfo? correlation)
    {
        SourceReference = sourceReference;
        ClassOption = classOption;
        TokenKind = kind;
        _token = token;
        Negotiation = negotiation;
        Correlation = correlation;
    }

    /// <summary>SRC-REF.</summary>
    public ushort SourceReference { get; }

    /// <summary>Class option byte (0 for class 0).</summary>
    public byte ClassOption { get; }

    /// <summary>Which token line the request carries.</summary>
    public ConnectionRequestTokenKind TokenKind { get; }

    /// <summary>The whole token line as on the wire, CRLF included (empty when there is none).</summary>
    public ReadOnlySpan<byte> TokenLine => _token;

    /// <summary>The <c>mstshash</c> or <c>msts</c> value (the text between the prefix and CRLF), or null.</summary>
    public string? TokenValue => TokenKind switch
    {
        ConnectionRequestTokenKind.Cookie => Encoding.ASCII.GetString(_token.AsSpan(CookiePrefix.Length, _token.Length - CookiePrefix.Length - 2)),
        ConnectionRequestTokenKind.RoutingToken => Encoding.ASCII.GetString(_token.AsSpan(RoutingTokenPrefix.Length, _token.Length - RoutingTokenPrefix.Length - 2)),
        _ => null,
    };

    /// <summary>The RDP_NEG_REQ, when present. Absent means the client only supports standard RDP security.</summary>
    public NegotiationRequest? Negotiation { get; }

    /// <summary>The RDP_NEG_CORRELATION_INFO, when present.</summary>
    public CorrelationInfo? Correlation { get; }

    /// <summary>The protocols the client asks for (PROTOCOL_RDP when no RDP_NEG_REQ is present).</summary>
    public SecurityProtocol RequestedProtocols => Negotiation?.RequestedProtocols ?? SecurityProtocol.Rdp;

    /// <summary>Size of the whole PDU, TPKT header included.</summary>
    public int Size =>
        TpktHeader.Size
        + FixedHeaderSize
        + _token.Length
        + (Negotiation is null ? 0 : NegotiationRequest.Size)
        + (Correlation is null ? 0 : CorrelationInfo.Size);

    /// <summary>Parses a whole TPKT frame holding a Connection Request.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out ConnectionRequest value, out PduError? error)
    {
        value = null;
        if (!Tpkt.TryUnwrap(frame, out var tpdu, out error))
        {
            return false;
        }

        return TryParseTpdu(tpdu, out value, out error);
    }

    /// <summary>Parses the X.224 CR TPDU (without the TPKT header).</summary>
    public static bool TryParseTpdu(ReadOnlySpan<byte> tpdu, [MaybeNullWhen(false)] out ConnectionRequest value, out PduError? error)
    {
        value = null;
        error = null;
        var reader = new WireReader(tpdu, Name);
        if (!reader.TryReadU8("LI", out var li)
            || !reader.TryReadU8("CR-CDT", out var code))
        {
            error = reader.Error;
            return false;
        }

        if ((code & 0xF0) != Code)
        {
            error = PduError.Unexpected(Name, "CR-CDT", $"0x{code:X2} is not a Connection Request");
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

        if (dstRef != 0)
        {
            error = PduError.Invalid(Name, "DST-REF", $"{dstRef}, expected 0");
            return false;
        }

        if ((classOption & 0xF0) != 0)
        {
            error = PduError.Unsupported(Name, "class option", $"class {classOption >> 4}, only class 0 is used by RDP");
            return false;
        }

        // The token line: anything that does not start with the RDP_NEG_REQ type byte must be a CRLF-terminated
        // "Cookie: ..." line (its first byte, 'C', can never be mistaken for TYPE_RDP_NEG_REQ).
        var kind = ConnectionRequestTokenKind.None;
        byte[] token = [];
        var rest = reader.Rest;
        if (rest.Length > 0 && rest[0] != NegotiationRequest.Type)
        {
            var end = rest.IndexOf("\r\n"u8);
            if (end < 0)
            {
                error = PduError.Invalid(Name, "routingToken/cookie", "not terminated by CR LF");
                return false;
            }

            var line = rest[..end];
            if (line.StartsWith(CookiePrefix))
            {
                kind = ConnectionRequestTokenKind.Cookie;
            }
            else if (line.StartsWith(RoutingTokenPrefix))
            {
                kind = ConnectionRequestTokenKind.RoutingToken;
            }
            else
            {
                error = PduError.Invalid(Name, "routingToken/cookie", "does not start with \"Cookie: mstshash=\" or \"Cookie: msts=\"");
                return false;
            }

            foreach (var b in line)
            {
                if (b is 0 or (byte)'\r' or (byte)'\n' or > 0x7E)
                {
                    error = PduError.Invalid(Name, "routingToken/cookie", $"contains the byte 0x{b:X2}");
                    return false;
                }
            }

            token = rest[..(end + 2)].ToArray();
            reader.TrySkip(end + 2, "routingToken/cookie");
        }

        NegotiationRequest? negotiation = null;
        CorrelationInfo? correlation = null;
        if (reader.Remaining > 0)
        {
            if (!TryReadNegotiationRequest(ref reader, out var request))
            {
                error = reader.Error;
                return false;
            }

            negotiation = request;
            if (request.Flags.HasFlag(NegotiationRequestFlags.CorrelationInfoPresent))
            {
                if (!TryReadCorrelationInfo(ref reader, out correlation))
                {
                    error = reader.Error;
                    return false;
                }
            }
        }

        if (reader.Remaining != 0)
        {
            error = PduError.Invalid(Name, "LI", $"{reader.Remaining} unexpected bytes after the last field");
            return false;
        }

        value = new ConnectionRequest(srcRef, classOption, kind, token, negotiation, correlation);
        return true;
    }

    private static bool TryReadNegotiationRequest(ref WireReader reader, out NegotiationRequest request)
    {
        request = default;
        if (!reader.TryReadU8("rdpNegReq.type", out var type)
            || !reader.TryReadU8("rdpNegReq.flags", out var flags)
            || !reader.TryReadU16LE("rdpNegReq.length", out var length)
            || !reader.TryReadU32LE("rdpNegReq.requestedProtocols", out var requested))
        {
            return false;
        }

        if (type != NegotiationRequest.Type)
        {
            return reader.Fail(PduError.Unexpected(Name, "rdpNegReq.type", $"0x{type:X2}, expected TYPE_RDP_NEG_REQ"));
        }

        if (length != NegotiationRequest.Size)
        {
            return reader.FailInvalid("rdpNegReq.length", $"{length}, must be 8");
        }

        request = new NegotiationRequest((NegotiationRequestFlags)flags, (SecurityProtocol)requested);
        return true;
    }

    private static bool TryReadCorrelationInfo(ref WireReader reader, [NotNullWhen(true)] out CorrelationInfo? info)
    {
        info = null;
        if (!reader.TryReadU8("rdpCorrelationInfo.type", out var type)
            || !reader.TryReadU8("rdpCorrelationInfo.flags", out var flags)
            || !reader.TryReadU16LE("rdpCorrelationInfo.length", out var length)
            || !reader.TryReadBytes(16, "rdpCorrelationInfo.correlationId", out var id)
            || !reader.TryReadBytes(16, "rdpCorrelationInfo.reserved", out var reserved))
        {
            return false;
        }

        if (type != CorrelationInfo.Type)
        {
            return reader.Fail(PduError.Unexpected(Name, "rdpCorrelationInfo.type", $"0x{type:X2}, expected TYPE_RDP_CORRELATION_INFO"));
        }

        if (flags != 0)
        {
            return reader.FailInvalid("rdpCorrelationInfo.flags", $"0x{flags:X2}, must be 0");
        }

        if (length != CorrelationInfo.Size)
        {
            return reader.FailInvalid("rdpCorrelationInfo.length", $"{length}, must be 36");
        }

        if (reserved.ContainsAnyExcept((byte)0))
        {
            return reader.FailInvalid("rdpCorrelationInfo.reserved", "must be zero");
        }

        info = new CorrelationInfo(id);
        return true;
    }

    /// <summary>Writes the whole PDU, TPKT header included.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        var span = output.GetSpan(size)[..size];
        var writer = new WireWriter(span);
        writer.WriteU8(TpktHeader.Version);
        writer.WriteU8(0);
        writer.WriteU16BE((ushort)size);
        writer.WriteU8((byte)(size - TpktHeader.Size - 1)); // LI counts the bytes after itself.
        writer.WriteU8(Code);
        writer.WriteU16BE(0); // DST-REF
        writer.WriteU16BE(SourceReference);
        writer.WriteU8(ClassOption);
        writer.WriteBytes(_token);
        if (Negotiation is { } negotiation)
        {
            writer.WriteU8(NegotiationRequest.Type);
            writer.WriteU8((byte)negotiation.Flags);
            writer.WriteU16LE(NegotiationRequest.Size);
            writer.WriteU32LE((uint)negotiation.RequestedProtocols);
        }

        if (Correlation is { } correlation)
        {
            writer.WriteU8(CorrelationInfo.Type);
            writer.WriteU8(0);
            writer.WriteU16LE(CorrelationInfo.Size);
            writer.WriteBytes(correlation.CorrelationId);
            writer.WriteZeros(16);
        }

        output.Advance(size);
    }

    /// <summary>A copy of this request with a different RDP_NEG_REQ (for the gateway's target leg).</summary>
    public ConnectionRequest WithNegotiation(NegotiationRequest? negotiation) =>
        new(SourceReference, ClassOption, TokenKind, _token, negotiation,
            negotiation is { } n && n.Flags.HasFlag(NegotiationRequestFlags.CorrelationInfoPresent) ? Correlation : null);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name} (token {TokenKind}, requested {RequestedProtocols}, flags {Negotiation?.Flags ?? NegotiationRequestFlags.None})";

    private static byte[] BuildToken(ConnectionRequestTokenKind kind, string value)
    {
        foreach (var c in value)
        {
            if (c is < ' ' or > '~')
            {
                throw new ArgumentException("A cookie or routing token must be printable ASCII without CR, LF or NUL.", nameof(value));
            }
        }

        var prefix = kind == ConnectionRequestTokenKind.Cookie ? CookiePrefix : RoutingTokenPrefix;
        var token = new byte[prefix.Length + value.Length + 2];
        prefix.CopyTo(token);
        Encoding.ASCII.GetBytes(value, token.AsSpan(prefix.Length));
        token[^2] = (byte)'\r';
        token[^1] = (byte)'\n';
        if (token.Length > MaxTokenLength)
        {
            throw new ArgumentException($"A token line is at most {MaxTokenLength} bytes.", nameof(value));
        }

        return token;
    }
}
