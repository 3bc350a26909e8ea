using System.Text.Json;

namespace Gatehouse.Identity;

/// <summary>Proof-of-possession key binding: the token request's <c>req_cnf</c> (RFC 7800 / RFC 7638).</summary>
public static class PopKey
{
    /// <summary>Longest <c>req_cnf</c> accepted (characters).</summary>
    public const int MaxReqCnfLength = 1024;

    /// <summary>Length of a base64url SHA-256 thumbprint.</summary>
    public const int ThumbprintLength = 43;

    /// <summary>
    /// Parses <c>req_cnf</c> = base64url(<c>{"kid":"&lt;RFC 7638 thumbprint&gt;"}</c>) (other members such as <c>xms_ksl</c> are
    /// ignored). The thumbprint must be 43 base64url characters. On failure <paramref name="error"/> says why.
    /// </summary>
    public static bool TryParseReqCnf(string reqCnf, out string thumbprint, out string error)
    {
        thumbprint = "";
        if (string.IsNullOrEmpty(reqCnf))
        {
            error = "req_cnf is missing";
            return false;
        }

        if (reqCnf.Length > MaxReqCnfLength)
        {
            error = "req_cnf is too long";
            return false;
        }

        if (!Base64Url.TryDecode(reqCnf, out var json))
        {
            error = "req_cnf is not base64url";
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 4 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                error = "req_cnf is not a JSON object";
                return false;
            }

            string? kid = null;
            foreach (var member in doc.RootElement.EnumerateObject())
            {
                if (!member.NameEquals("kid"))
                {
                    continue;
                }

                if (kid is not null)
                {
                    error = "req_cnf has a duplicate kid";
                    return false;
                }

                if (member.Value.ValueKind != JsonValueKind.String)
                {
                    error = "req_cnf kid is not a string";
                    return false;
                }

                kid = member.Value.GetString()!;
            }

            if (kid is null)
            {
                error = "req_cnf has no kid";
                return false;
            }

            if (kid.Length != ThumbprintLength || !Base64Url.IsAlphabet(kid))
            {
                error = "req_cnf kid is not a SHA-256 JWK thumbprint";
                return false;
            }

            thumbprint = kid;
            error = "";
            return true;
        }
        catch (JsonException)
        {
            error = "req_cnf is not valid JSON";
            return false;
        }
    }
}

/// <summary>Unpadded base64url helpers (RFC 4648 §5).</summary>
public static class Base64Url
{
    /// <summary>Encodes without padding.</summary>
    public static string Encode(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    /// <summary>True when every character is in <c>[A-Za-z0-9_-]</c>.</summary>
    public static bool IsAlphabet(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        foreach (var c in s)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Decodes strict unpadded base64url (no padding, no whitespace, no '+' or '/').</summary>
    public static bool TryDecode(string s, out byte[] bytes)
    {
        bytes = [];
        if (s is null || !IsAlphabet(s) || s.Length % 4 == 1)
        {
            return false;
        }

        try
        {
            bytes = System.Buffers.Text.Base64Url.DecodeFromChars(s);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
