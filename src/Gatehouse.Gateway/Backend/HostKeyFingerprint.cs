using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.Gateway.Backend;

/// <summary>
/// The key a host is pinned by: the SHA-256 of its TLS certificate's SubjectPublicKeyInfo, written <c>SHA256:</c> and
/// the unpadded base64 of the hash (as OpenSSH writes key fingerprints). It names the key, not the certificate, so a
/// host that renews its certificate with the same key keeps its pin; the same key is what CredSSP binds an NLA logon to.
/// On a host with OpenSSL: <c>openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64</c>.
/// </summary>
public static class HostKeyFingerprint
{
    /// <summary>The prefix of every fingerprint.</summary>
    public const string Prefix = "SHA256:";

    /// <summary>Longest text a fingerprint is stored as (the prefix and 43 base64 characters; 64 leaves room).</summary>
    public const int MaxLength = 64;

    /// <summary>The fingerprint of <paramref name="certificate"/>'s public key.</summary>
    public static string Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Format(SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>
    /// Reads a fingerprint as an operator types it: <c>SHA256:</c> (any case) and the base64 of 32 bytes, padded or not;
    /// <paramref name="fingerprint"/> is then its canonical form.
    /// </summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out string? fingerprint)
    {
        fingerprint = null;
        if (!TryDecode(text?.Trim(), out var hash))
        {
            return false;
        }

        fingerprint = Format(hash);
        return true;
    }

    /// <summary>True when <paramref name="pinned"/> and <paramref name="presented"/> name the same key (compared in constant time; false when either is malformed).</summary>
    public static bool Matches(string? pinned, string? presented) =>
        TryDecode(pinned, out var a) & TryDecode(presented, out var b) && CryptographicOperations.FixedTimeEquals(a, b);

    private static string Format(ReadOnlySpan<byte> hash) => Prefix + Convert.ToBase64String(hash).TrimEnd('=');

    private static bool TryDecode(string? text, out byte[] hash)
    {
        hash = new byte[SHA256.HashSizeInBytes];
        if (text is null || text.Length > MaxLength || !text.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var body = text[Prefix.Length..].TrimEnd('=');
        if (body.Length != 43)
        {
            return false;
        }

        // 43 characters carry 258 bits: the last character's two low bits must be zero for a canonical 32-byte value.
        return Convert.TryFromBase64String(body + "=", hash, out var written) && written == hash.Length && Format(hash) == Prefix + body;
    }
}
