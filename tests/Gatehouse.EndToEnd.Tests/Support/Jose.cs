using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// A small, independent JOSE toolkit for checking what the real client and the IdP produce: compact JWS split and
/// RS256 verification, RSA JWK import and the RFC 7638 thumbprint. Deliberately not the IdP's own code.
/// </summary>
internal static class Jose
{
    public static string B64(ReadOnlySpan<byte> bytes) => Base64Url.EncodeToString(bytes);

    public static string B64(string text) => B64(Encoding.UTF8.GetBytes(text));

    public static byte[] UnB64(string text) => Base64Url.DecodeFromChars(text);

    /// <summary>RFC 7638 §3.2: SHA-256 over the members e, kty, n in lexicographic order, no whitespace.</summary>
    public static string RsaThumbprint(string e, string n)
    {
        // e and n are base64url: JSON-safe as they are.
        var canonical = "{\"e\":\"" + e + "\",\"kty\":\"RSA\",\"n\":\"" + n + "\"}";
        return B64(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    public static RSA ImportRsa(string e, string n)
    {
        var rsa = RSA.Create();
        rsa.ImportParameters(new RSAParameters { Exponent = UnB64(e), Modulus = UnB64(n) });
        return rsa;
    }

    /// <summary>RS256 (RSASSA-PKCS1-v1_5 with SHA-256) over the ASCII signing input <c>h.p</c>.</summary>
    public static bool VerifyRs256(CompactJws jws, RSA key)
    {
        ArgumentNullException.ThrowIfNull(jws);
        ArgumentNullException.ThrowIfNull(key);
        return key.VerifyData(
            Encoding.ASCII.GetBytes(jws.SigningInput),
            jws.Signature,
            HashAlgorithmName.SHA256,
            RSASignaturePadding.Pkcs1);
    }
}

/// <summary>A compact JWS (<c>header.payload.signature</c>) with its JSON parts parsed.</summary>
internal sealed class CompactJws
{
    private CompactJws(string text, JsonElement header, JsonElement payload, byte[] signature)
    {
        Text = text;
        Header = header;
        Payload = payload;
        Signature = signature;
        SigningInput = text[..text.LastIndexOf('.')];
    }

    public string Text { get; }

    public JsonElement Header { get; }

    public JsonElement Payload { get; }

    public byte[] Signature { get; }

    public string SigningInput { get; }

    public string Algorithm => Header.GetProperty("alg").GetString() ?? string.Empty;

    public string? KeyId => Header.TryGetProperty("kid", out var kid) ? kid.GetString() : null;

    public static CompactJws Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('.');
        if (parts.Length != 3)
        {
            throw new FormatException($"a compact JWS has 3 parts, this has {parts.Length}: '{Shorten(text)}'");
        }

        using var header = JsonDocument.Parse(Jose.UnB64(parts[0]));
        using var payload = JsonDocument.Parse(Jose.UnB64(parts[1]));
        return new CompactJws(text, header.RootElement.Clone(), payload.RootElement.Clone(), Jose.UnB64(parts[2]));
    }

    public string PayloadString(string name) =>
        Payload.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new FormatException($"the JWS payload has no string member '{name}': {Payload}");

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
