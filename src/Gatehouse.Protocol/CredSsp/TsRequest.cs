using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>
/// [MS-CSSP] 2.2.1 TSRequest, versions 2 to 6: the CredSSP message carrying SPNEGO/NTLM tokens, the sealed
/// credentials, the public-key binding, an NTSTATUS error code and the client nonce. DER, read with caps.
/// </summary>
public sealed class TsRequest
{
    /// <summary>The version Gatehouse sends.</summary>
    public const int CurrentVersion = 6;

    /// <summary>Largest TSRequest accepted (real ones are a few KiB).</summary>
    public const int MaxSize = 32 * 1024;

    /// <summary>Most negoTokens in one message (CredSSP uses one).</summary>
    public const int MaxNegoTokens = 4;

    /// <summary>Size of clientNonce.</summary>
    public const int NonceSize = 32;

    private const string Pdu = "TSRequest";
    private readonly byte[][] _negoTokens;
    private readonly byte[]? _authInfo;
    private readonly byte[]? _pubKeyAuth;
    private readonly byte[]? _clientNonce;

    /// <summary>Creates a TSRequest.</summary>
    public TsRequest(int version, IEnumerable<byte[]>? negoTokens = null, byte[]? authInfo = null, byte[]? pubKeyAuth = null, uint? errorCode = null, byte[]? clientNonce = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);

        if (clientNonce is not null && clientNonce.Length != NonceSize)
        {
            throw new ArgumentException("clientNonce is 32 bytes.", nameof(clientNonce));
        }

        Version = version;
        _negoTokens = negoTokens?.ToArray() ?? [];
        _authInfo = authInfo;
        _pubKeyAuth = pubKeyAuth;
        ErrorCode = errorCode;
        _clientNonce = clientNonce;
    }

    /// <summary>version: the sender's CredSSP version (2-6; higher is treated as 6).</summary>
    public int Version { get; }

    /// <summary>negoTokens: the SPNEGO or raw NTLM tokens, in order.</summary>
    public IReadOnlyList<byte[]> NegoTokens => _negoTokens;

    /// <summary>authInfo: the sealed TSCredentials, or empty.</summary>
    public ReadOnlySpan<byte> AuthInfo => _authInfo;

    /// <summary>True when authInfo is present.</summary>
    public bool HasAuthInfo => _authInfo is not null;

    /// <summary>pubKeyAuth: the sealed public-key binding, or empty.</summary>
    public ReadOnlySpan<byte> PubKeyAuth => _pubKeyAuth;

    /// <summary>True when pubKeyAuth is present.</summary>
    public bool HasPubKeyAuth => _pubKeyAuth is not null;

    /// <summary>errorCode: an NTSTATUS (v3+), when present.</summary>
    public uint? ErrorCode { get; }

    /// <summary>clientNonce (v5+), or empty.</summary>
    public ReadOnlySpan<byte> ClientNonce => _clientNonce;

    /// <summary>Parses a DER TSRequest; trailing bytes after it are refused.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out TsRequest value, out PduError? error)
    {
        value = null;
        if (source.Length > MaxSize)
        {
            error = PduError.TooLarge(Pdu, "message", source.Length, MaxSize);
            return false;
        }

        if (source.IsEmpty)
        {
            error = PduError.NotEnough(Pdu, "TSRequest", 2, 0);
            return false;
        }

        try
        {
            var outer = new AsnReader(source.ToArray(), AsnEncodingRules.DER);
            var sequence = outer.ReadSequence();
            outer.ThrowIfNotEmpty();

            var version = Der.ReadExplicitInteger(sequence, 0);
            if (version is < 1 or > int.MaxValue)
            {
                error = PduError.Invalid(Pdu, "version", $"{version} is not a CredSSP version");
                return false;
            }

            var tokens = new List<byte[]>();
            if (Der.IsNext(sequence, 1))
            {
                var negoData = sequence.ReadSequence(Der.Context(1)).ReadSequence();
                while (negoData.HasData)
                {
                    if (tokens.Count == MaxNegoTokens)
                    {
                        error = PduError.TooLarge(Pdu, "negoTokens", tokens.Count + 1, MaxNegoTokens);
                        return false;
                    }

                    var item = negoData.ReadSequence();
                    tokens.Add(Der.ReadExplicitOctets(item, 0, MaxSize, Pdu, "negoToken"));
                    item.ThrowIfNotEmpty();
                }
            }

            var authInfo = Der.IsNext(sequence, 2) ? Der.ReadExplicitOctets(sequence, 2, MaxSize, Pdu, "authInfo") : null;
            var pubKeyAuth = Der.IsNext(sequence, 3) ? Der.ReadExplicitOctets(sequence, 3, MaxSize, Pdu, "pubKeyAuth") : null;
            uint? errorCode = null;
            if (Der.IsNext(sequence, 4))
            {
                var code = Der.ReadExplicitInteger(sequence, 4);
                if (code is < int.MinValue or > uint.MaxValue)
                {
                    error = PduError.Invalid(Pdu, "errorCode", "not a 32-bit NTSTATUS");
                    return false;
                }

                errorCode = unchecked((uint)code);
            }

            byte[]? nonce = null;
            if (Der.IsNext(sequence, 5))
            {
                nonce = Der.ReadExplicitOctets(sequence, 5, MaxSize, Pdu, "clientNonce");
                if (nonce.Length != NonceSize)
                {
                    error = PduError.Invalid(Pdu, "clientNonce", $"{nonce.Length} bytes, expected {NonceSize}");
                    return false;
                }
            }

            if (sequence.HasData)
            {
                error = PduError.Invalid(Pdu, "TSRequest", $"unexpected field {sequence.PeekTag()}");
                return false;
            }

            value = new TsRequest((int)version, tokens, authInfo, pubKeyAuth, errorCode, nonce);
            error = null;
            return true;
        }
        catch (LimitException e)
        {
            error = e.Error;
            return false;
        }
        catch (AsnContentException e)
        {
            error = Der.Error(Pdu, "TSRequest", e);
            return false;
        }
    }

    /// <summary>The DER encoding.</summary>
    public byte[] Encode()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.PushSequence();
        Der.WriteExplicitInteger(writer, 0, Version);
        if (_negoTokens.Length > 0)
        {
            writer.PushSequence(Der.Context(1));
            writer.PushSequence();
            foreach (var token in _negoTokens)
            {
                writer.PushSequence();
                Der.WriteExplicitOctets(writer, 0, token);
                writer.PopSequence();
            }

            writer.PopSequence();
            writer.PopSequence(Der.Context(1));
        }

        if (_authInfo is not null)
        {
            Der.WriteExplicitOctets(writer, 2, _authInfo);
        }

        if (_pubKeyAuth is not null)
        {
            Der.WriteExplicitOctets(writer, 3, _pubKeyAuth);
        }

        if (ErrorCode is { } code)
        {
            Der.WriteExplicitInteger(writer, 4, unchecked((int)code));
        }

        if (_clientNonce is not null)
        {
            Der.WriteExplicitOctets(writer, 5, _clientNonce);
        }

        writer.PopSequence();
        return writer.Encode();
    }

    /// <summary>Writes the DER encoding.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Write(Encode());
    }

    /// <summary>
    /// How many bytes the next TSRequest in <paramref name="buffer"/> takes (from its DER header), so a transport can
    /// read exactly one; 0 when more bytes are needed; an error when the header is not a SEQUENCE or exceeds the cap.
    /// </summary>
    public static bool TryGetFrameLength(ReadOnlySpan<byte> buffer, out int length, out PduError? error)
    {
        length = 0;
        error = null;
        if (buffer.Length < 2)
        {
            return true;
        }

        if (buffer[0] != 0x30)
        {
            error = PduError.Invalid(Pdu, "tag", $"0x{buffer[0]:x2} is not a SEQUENCE");
            return false;
        }

        int headerLength;
        long contentLength;
        if (buffer[1] < 0x80)
        {
            headerLength = 2;
            contentLength = buffer[1];
        }
        else
        {
            var count = buffer[1] & 0x7F;
            if (count is 0 or > 3)
            {
                error = PduError.Invalid(Pdu, "length", count == 0 ? "indefinite length is not DER" : "length of more than 3 bytes");
                return false;
            }

            if (buffer.Length < 2 + count)
            {
                return true;
            }

            contentLength = 0;
            for (var i = 0; i < count; i++)
            {
                contentLength = (contentLength << 8) | buffer[2 + i];
            }

            headerLength = 2 + count;
        }

        if (headerLength + contentLength > MaxSize)
        {
            error = PduError.TooLarge(Pdu, "length", headerLength + contentLength, MaxSize);
            return false;
        }

        length = (int)(headerLength + contentLength);
        return true;
    }
}
