using System.Text;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// RDS AAD Auth PDUs as FreeRDP 3.10.3 builds them (design/protocol/freerdp-aad-client.md §2), with the RFC 7638 §3.1
/// example RSA key as the PoP key. The signature bytes are a placeholder: parsers check the JWS shape, not the signature.
/// </summary>
public static class RdsAadCorpus
{
    /// <summary>The RFC 7638 §3.1 example key's modulus.</summary>
    public const string ExampleModulus =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    /// <summary>Its thumbprint (RFC 7638 §3.1).</summary>
    public const string ExampleThumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    /// <summary>FreeRDP's JWS header: <c>{"alg":"RS256","kid":"&lt;req_cnf&gt;"}</c>.</summary>
    public static string Header => $$"""{"alg":"RS256","kid":"{{B64($$"""{"kid":"{{ExampleThumbprint}}"}""")}}"}""";

    /// <summary>FreeRDP's payload format (aad.c:348-357) with <c>ts</c> as a string.</summary>
    public static string Payload =>
        $$$"""{"ts":"1795346132","at":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln","u":"ms-device-service://termsrv.wvd.microsoft.com/name/vm1","nonce":"AQIDBAUGBwgJCgsMDQ4PEA","cnf":{"jwk":{"kty":"RSA","e":"AQAB","n":"{{{ExampleModulus}}}"}},"client_claims":"{\"aad_nonce\":\"eyJ0eXAiOiJzcnZfY2hhbGxlbmdlIn0.e30.c2ln\"}"}""";

    /// <summary>The compact assertion.</summary>
    public static string Assertion => $"{B64(Header)}.{B64(Payload)}.{B64("signature")}";

    /// <summary>The server nonce PDU with its NUL.</summary>
    public static byte[] ServerNonce => Message("""{"ts_nonce":"AQIDBAUGBwgJCgsMDQ4PEA"}""");

    /// <summary>The authentication request PDU with its NUL.</summary>
    public static byte[] AuthRequest => Message($$"""{"rdp_assertion":"{{Assertion}}"}""");

    /// <summary>Result S_OK.</summary>
    public static byte[] ResultSuccess => Message("""{"authentication_result":0}""");

    /// <summary>Result E_ACCESSDENIED written as Windows does, a negative decimal.</summary>
    public static byte[] ResultAccessDenied => Message("""{"authentication_result":-2147024891}""");

    /// <summary>base64url without padding of a UTF-8 string.</summary>
    public static string B64(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>base64url without padding of bytes.</summary>
    public static string B64Bytes(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>JSON text plus the NUL terminator.</summary>
    public static byte[] Message(string json) => [.. Encoding.UTF8.GetBytes(json), 0];
}
