using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Gatehouse.Protocol.RdsAad;

/// <summary>
/// [MS-RDPBCGR] 2.2.18.2.1 the RDP assertion: a compact JWS whose header names the algorithm and whose payload
/// carries <c>ts</c> (a string of decimal seconds from FreeRDP, a number from other clients), <c>at</c> (the access
/// token), <c>u</c> (the device URL ending in the host label), <c>nonce</c> (the server nonce), <c>cnf.jwk</c> (the
/// PoP key) and <c>client_claims</c> (a JSON string that holds a JSON object, e.g. <c>{"aad_nonce":"…"}</c>). The
/// signature is exposed with its signing input; verifying it is the gateway's job.
/// </summary>
public sealed class RdpAssertion
{
    /// <summary>The prefix of <c>u</c> before the host label.</summary>
    public const string DevicePrefix = "ms-device-service://termsrv.wvd.microsoft.com/name/";

    private const string Pdu = "RDP assertion";
    private readonly byte[] _signature;
    private readonly byte[] _signingInput;

    private RdpAssertion(string compact, int firstDot, byte[] signature)
    {
        Compact = compact;
        _signingInput = Encoding.ASCII.GetBytes(compact, 0, compact.LastIndexOf('.'));
        _signature = signature;
        EncodedHeader = compact[..firstDot];
    }

    /// <summary>The compact serialization as received.</summary>
    public string Compact { get; }

    /// <summary>The first part, as received.</summary>
    public string EncodedHeader { get; }

    /// <summary>Header <c>alg</c>.</summary>
    public string Algorithm { get; private init; } = string.Empty;

    /// <summary>Header <c>kid</c>, when present (FreeRDP: base64url of <c>{"kid":"&lt;thumbprint&gt;"}</c>).</summary>
    public string? KeyId { get; private init; }

    /// <summary>Header <c>typ</c>, when present.</summary>
    public string? Type { get; private init; }

    /// <summary>Payload <c>ts</c>: seconds since the epoch.</summary>
    public long Timestamp { get; private init; }

    /// <summary>Payload <c>at</c>: the access token, as sent.</summary>
    public string AccessToken { get; private init; } = string.Empty;

    /// <summary>Payload <c>u</c>.</summary>
    public string Url { get; private init; } = string.Empty;

    /// <summary>The host label at the end of <see cref="Url"/> when it has the device prefix (case-insensitive); otherwise null.</summary>
    public string? HostLabel => Url.StartsWith(DevicePrefix, StringComparison.OrdinalIgnoreCase) && Url.Length > DevicePrefix.Length
        ? Url[DevicePrefix.Length..]
        : null;

    /// <summary>Payload <c>nonce</c>.</summary>
    public string Nonce { get; private init; } = string.Empty;

    /// <summary>Payload <c>cnf.jwk.kty</c>.</summary>
    public string KeyType { get; private init; } = string.Empty;

    /// <summary>Payload <c>cnf.jwk.n</c> (base64url), for RSA keys.</summary>
    public string? Modulus { get; private init; }

    /// <summary>Payload <c>cnf.jwk.e</c> (base64url), for RSA keys.</summary>
    public string? Exponent { get; private init; }

    /// <summary>The members of the decoded <c>client_claims</c> object that are strings (e.g. <c>aad_nonce</c>).</summary>
    public IReadOnlyDictionary<string, string> ClientClaims { get; private init; } = new Dictionary<string, string>();

    /// <summary>The ASCII bytes of <c>header.payload</c>, what the signature covers.</summary>
    public ReadOnlySpan<byte> SigningInput => _signingInput;

    /// <summary>The decoded signature.</summary>
    public ReadOnlySpan<byte> Signature => _signature;

    /// <summary>The RFC 7638 thumbprint of the RSA key in <c>cnf.jwk</c>.</summary>
    public string Thumbprint => JwkThumbprint.ComputeRsa(Exponent!, Modulus!);

    /// <summary>Parses and checks the shape of a compact JWS assertion (not its signature).</summary>
    public static bool TryParse(string compact, [MaybeNullWhen(false)] out RdpAssertion value, out PduError? error)
    {
        ArgumentNullException.ThrowIfNull(compact);
        value = null;
        if (compact.Length > RdsAadFraming.DefaultMaxMessageBytes)
        {
            error = PduError.TooLarge(Pdu, "rdp_assertion", compact.Length, RdsAadFraming.DefaultMaxMessageBytes);
            return false;
        }

        var first = compact.IndexOf('.', StringComparison.Ordinal);
        var last = compact.LastIndexOf('.');
        if (first < 0 || first == last || compact.IndexOf('.', first + 1) != last)
        {
            error = PduError.Invalid(Pdu, "rdp_assertion", "a compact JWS has exactly three parts separated by '.'");
            return false;
        }

        if (!Decode(compact.AsSpan(0, first), "header", out var header, out error)
            || !Decode(compact.AsSpan(first + 1, last - first - 1), "payload", out var payload, out error)
            || !Decode(compact.AsSpan(last + 1), "signature", out var signature, out error))
        {
            return false;
        }

        if (signature.Length == 0)
        {
            error = PduError.Invalid(Pdu, "signature", "empty");
            return false;
        }

        if (!RdsAadJson.TryReadObject(header, Pdu + " header", out var h, out error)
            || !RdsAadJson.TryGetString(header, h, Pdu + " header", "alg", out var alg, out error)
            || !OptionalString(header, h, "header", "kid", out var kid, out error)
            || !OptionalString(header, h, "header", "typ", out var typ, out error))
        {
            return false;
        }

        const string PayloadPdu = Pdu + " payload";
        if (!RdsAadJson.TryReadObject(payload, PayloadPdu, out var p, out error)
            || !TryReadTimestamp(payload, p, out var ts, out error)
            || !RdsAadJson.TryGetString(payload, p, PayloadPdu, "at", out var at, out error)
            || !RdsAadJson.TryGetString(payload, p, PayloadPdu, "u", out var u, out error)
            || !RdsAadJson.TryGetString(payload, p, PayloadPdu, "nonce", out var nonce, out error)
            || !TryReadJwk(payload, p, out var kty, out var n, out var e, out error)
            || !TryReadClientClaims(payload, p, out var claims, out error))
        {
            return false;
        }

        value = new RdpAssertion(compact, first, signature)
        {
            Algorithm = alg,
            KeyId = kid,
            Type = typ,
            Timestamp = ts,
            AccessToken = at,
            Url = u,
            Nonce = nonce,
            KeyType = kty,
            Modulus = n,
            Exponent = e,
            ClientClaims = claims,
        };
        return true;
    }

    private static bool Decode(ReadOnlySpan<char> part, string field, out byte[] bytes, out PduError? error)
    {
        if (!RdsAadJson.TryDecodeBase64Url(part, out bytes))
        {
            error = PduError.Invalid(Pdu, field, "not base64url without padding");
            return false;
        }

        error = null;
        return true;
    }

    private static bool OptionalString(ReadOnlySpan<byte> json, JsonMembers members, string where, string name, out string? value, out PduError? error)
    {
        value = null;
        error = null;
        if (!members.ContainsKey(name))
        {
            return true;
        }

        if (!RdsAadJson.TryGetString(json, members, $"{Pdu} {where}", name, out var text, out error))
        {
            return false;
        }

        value = text;
        return true;
    }

    private static bool TryReadTimestamp(ReadOnlySpan<byte> json, JsonMembers members, out long ts, out PduError? error)
    {
        ts = 0;
        const string PayloadPdu = Pdu + " payload";
        if (!members.TryGetValue("ts", out var member))
        {
            error = PduError.Invalid(PayloadPdu, "ts", "required member missing");
            return false;
        }

        var raw = member.Slice(json);
        var reader = new Utf8JsonReader(raw);
        reader.Read();
        var ok = member.Type switch
        {
            JsonTokenType.String => long.TryParse(reader.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out ts),
            JsonTokenType.Number => raw.IndexOfAny("eE.-"u8) < 0 && reader.TryGetInt64(out ts),
            _ => false,
        };
        error = ok ? null : PduError.Invalid(PayloadPdu, "ts", "expected non-negative whole seconds as a string or a number");
        return ok;
    }

    private static bool TryReadJwk(ReadOnlySpan<byte> json, JsonMembers members, out string kty, out string? n, out string? e, out PduError? error)
    {
        kty = string.Empty;
        n = null;
        e = null;
        const string CnfPdu = Pdu + " cnf";
        if (!members.TryGetValue("cnf", out var cnf) || cnf.Type != JsonTokenType.StartObject)
        {
            error = PduError.Invalid(Pdu + " payload", "cnf", "required object missing");
            return false;
        }

        var cnfJson = cnf.Slice(json);
        if (!RdsAadJson.TryReadObject(cnfJson, CnfPdu, out var cnfMembers, out error))
        {
            return false;
        }

        if (!cnfMembers.TryGetValue("jwk", out var jwk) || jwk.Type != JsonTokenType.StartObject)
        {
            error = PduError.Invalid(CnfPdu, "jwk", "required object missing");
            return false;
        }

        const string JwkPdu = Pdu + " cnf.jwk";
        var jwkJson = jwk.Slice(cnfJson);
        if (!RdsAadJson.TryReadObject(jwkJson, JwkPdu, out var key, out error)
            || !RdsAadJson.TryGetString(jwkJson, key, JwkPdu, "kty", out kty, out error))
        {
            return false;
        }

        if (kty != "RSA")
        {
            error = PduError.Unsupported(JwkPdu, "kty", $"key type '{kty}' (RSA expected)");
            return false;
        }

        if (!RdsAadJson.TryGetString(jwkJson, key, JwkPdu, "n", out var modulus, out error)
            || !RdsAadJson.TryGetString(jwkJson, key, JwkPdu, "e", out var exponent, out error))
        {
            return false;
        }

        if (modulus.Length == 0 || exponent.Length == 0 || !RdsAadJson.IsBase64Url(modulus) || !RdsAadJson.IsBase64Url(exponent))
        {
            error = PduError.Invalid(JwkPdu, "n/e", "not base64url without padding");
            return false;
        }

        n = modulus;
        e = exponent;
        return true;
    }

    private static bool TryReadClientClaims(ReadOnlySpan<byte> json, JsonMembers members, out Dictionary<string, string> claims, out PduError? error)
    {
        claims = new Dictionary<string, string>(StringComparer.Ordinal);
        error = null;
        if (!members.ContainsKey("client_claims"))
        {
            return true;
        }

        const string ClaimsPdu = Pdu + " client_claims";
        if (!RdsAadJson.TryGetString(json, members, Pdu + " payload", "client_claims", out var text, out error))
        {
            return false;
        }

        // Double-encoded: a JSON string whose value is itself a JSON object.
        var innerJson = Encoding.UTF8.GetBytes(text);
        if (!RdsAadJson.TryReadObject(innerJson, ClaimsPdu, out var inner, out error))
        {
            return false;
        }

        foreach (var (name, member) in inner)
        {
            if (member.Type == JsonTokenType.String && RdsAadJson.TryGetString(innerJson, inner, ClaimsPdu, name, out var claim, out _))
            {
                claims[name] = claim;
            }
        }

        return true;
    }
}
