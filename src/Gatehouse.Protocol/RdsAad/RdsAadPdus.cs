using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Protocol.RdsAad;

/// <summary>
/// [MS-RDPBCGR] 2.2.18.1 RDS AAD Auth Server Nonce PDU: <c>{"ts_nonce":"…"}</c>. FreeRDP copies the value verbatim
/// into JSON, so the gateway only sends nonces made of URL-safe characters.
/// </summary>
public sealed record RdsAadServerNonce
{
    private const string Pdu = "RDS AAD Server Nonce";

    /// <summary>Creates the PDU.</summary>
    /// <exception cref="ArgumentException">The nonce is empty, longer than 1024 characters, or not made of <c>[A-Za-z0-9-_.~]</c>.</exception>
    public RdsAadServerNonce(string nonce)
    {
        ArgumentNullException.ThrowIfNull(nonce);
        Nonce = nonce;
    }

    /// <summary>ts_nonce.</summary>
    public string Nonce { get; }

    /// <summary>True for a nonce FreeRDP can embed without escaping: 1-1024 characters of <c>[A-Za-z0-9-_.~]</c>.</summary>
    public static bool IsSafe(string nonce) =>
        nonce is { Length: > 0 and <= 1024 } && nonce.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~');

    /// <summary>Parses the JSON (an optional trailing NUL is accepted); other members are ignored.</summary>
    public static bool TryParse(ReadOnlySpan<byte> json, [MaybeNullWhen(false)] out RdsAadServerNonce value, out PduError? error)
    {
        value = null;
        if (!RdsAadJson.TryReadObject(json, Pdu, out var members, out error)
            || !RdsAadJson.TryGetString(json, members, Pdu, "ts_nonce", out var nonce, out error))
        {
            return false;
        }

        if (nonce.Length == 0)
        {
            error = PduError.Invalid(Pdu, "ts_nonce", "empty");
            return false;
        }

        value = new RdsAadServerNonce(nonce);
        return true;
    }

    /// <summary>Writes <c>{"ts_nonce":"…"}</c> and the NUL terminator.</summary>
    /// <exception cref="InvalidOperationException">The nonce is not <see cref="IsSafe"/>.</exception>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!IsSafe(Nonce))
        {
            throw new InvalidOperationException("A server nonce must be 1-1024 characters of [A-Za-z0-9-_.~].");
        }

        RdsAadJson.WriteMessage(output, w => w.WriteString("ts_nonce", Nonce));
    }
}

/// <summary>[MS-RDPBCGR] 2.2.18.2 RDS AAD Auth Request PDU: <c>{"rdp_assertion":"&lt;JWS&gt;"}</c>.</summary>
public sealed record RdsAadAuthRequest
{
    private const string Pdu = "RDS AAD Auth Request";

    /// <summary>Creates the PDU.</summary>
    public RdsAadAuthRequest(RdpAssertion assertion)
    {
        ArgumentNullException.ThrowIfNull(assertion);
        Assertion = assertion;
    }

    /// <summary>rdp_assertion, parsed.</summary>
    public RdpAssertion Assertion { get; }

    /// <summary>Parses the JSON (an optional trailing NUL is accepted); the assertion is parsed and checked.</summary>
    public static bool TryParse(ReadOnlySpan<byte> json, [MaybeNullWhen(false)] out RdsAadAuthRequest value, out PduError? error)
    {
        value = null;
        if (json.Length > RdsAadFraming.DefaultMaxMessageBytes + 1)
        {
            error = PduError.TooLarge(Pdu, "message", json.Length, RdsAadFraming.DefaultMaxMessageBytes);
            return false;
        }

        if (!RdsAadJson.TryReadObject(json, Pdu, out var members, out error)
            || !RdsAadJson.TryGetString(json, members, Pdu, "rdp_assertion", out var compact, out error)
            || !RdpAssertion.TryParse(compact, out var assertion, out error))
        {
            return false;
        }

        value = new RdsAadAuthRequest(assertion);
        return true;
    }

    /// <summary>Writes <c>{"rdp_assertion":"…"}</c> and the NUL terminator.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        RdsAadJson.WriteMessage(output, w => w.WriteString("rdp_assertion", Assertion.Compact));
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.18.3 RDS AAD Auth Result PDU: <c>{"authentication_result":N}</c>, N a 32-bit code as a JSON number.
/// It is written as an unsigned decimal (<c>2148074248</c> for 0x80090308): FreeRDP reads a double and casts it to a
/// DWORD, which C defines only for values in the DWORD range. Both the unsigned and the signed (negative) forms parse.
/// </summary>
public sealed record RdsAadAuthResult(int Result)
{
    private const string Pdu = "RDS AAD Auth Result";

    /// <summary>S_OK: the sign-in succeeded.</summary>
    public const int Success = 0;

    /// <summary>SEC_E_INVALID_TOKEN (0x80090308): bad assertion, nonce, host or token.</summary>
    public const int InvalidToken = unchecked((int)0x80090308);

    /// <summary>E_ACCESSDENIED (0x80070005): a valid user without the right to sign in.</summary>
    public const int AccessDenied = unchecked((int)0x80070005);

    /// <summary>STATUS_LOGON_FAILURE (0xC000006D).</summary>
    public const int LogonFailure = unchecked((int)0xC000006D);

    /// <summary>STATUS_NO_LOGON_SERVERS (0xC000005E).</summary>
    public const int NoLogonServers = unchecked((int)0xC000005E);

    /// <summary>STATUS_INVALID_LOGON_HOURS (0xC000006F).</summary>
    public const int InvalidLogonHours = unchecked((int)0xC000006F);

    /// <summary>STATUS_INVALID_WORKSTATION (0xC0000070).</summary>
    public const int InvalidWorkstation = unchecked((int)0xC0000070);

    /// <summary>STATUS_PASSWORD_EXPIRED (0xC0000071).</summary>
    public const int PasswordExpired = unchecked((int)0xC0000071);

    /// <summary>STATUS_ACCOUNT_DISABLED (0xC0000072).</summary>
    public const int AccountDisabled = unchecked((int)0xC0000072);

    /// <summary>Parses the JSON (an optional trailing NUL is accepted); integers in the uint32 or int32 range are valid.</summary>
    public static bool TryParse(ReadOnlySpan<byte> json, [MaybeNullWhen(false)] out RdsAadAuthResult value, out PduError? error)
    {
        value = null;
        if (!RdsAadJson.TryReadObject(json, Pdu, out var members, out error))
        {
            return false;
        }

        if (!members.TryGetValue("authentication_result", out var member))
        {
            error = PduError.Invalid(Pdu, "authentication_result", "required member missing");
            return false;
        }

        if (member.Type != System.Text.Json.JsonTokenType.Number)
        {
            error = PduError.Invalid(Pdu, "authentication_result", $"expected a number, found {member.Type}");
            return false;
        }

        var raw = member.Slice(json);
        var reader = new System.Text.Json.Utf8JsonReader(raw);
        reader.Read();
        int result;
        if (raw.IndexOfAny("eE."u8) >= 0)
        {
            error = PduError.Invalid(Pdu, "authentication_result", "not a 32-bit integer");
            return false;
        }
        else if (reader.TryGetUInt32(out var unsignedResult))
        {
            result = unchecked((int)unsignedResult);
        }
        else if (!reader.TryGetInt32(out result))
        {
            error = PduError.Invalid(Pdu, "authentication_result", "not a 32-bit integer");
            return false;
        }

        value = new RdsAadAuthResult(result);
        return true;
    }

    /// <summary>Writes <c>{"authentication_result":N}</c> and the NUL terminator.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        RdsAadJson.WriteMessage(output, w => w.WriteNumber("authentication_result", unchecked((uint)Result)));
    }

    /// <summary>The code's name for logs (e.g. <c>E_ACCESSDENIED (0x80070005)</c>).</summary>
    public override string ToString() => Result switch
    {
        Success => "S_OK (0x00000000)",
        InvalidToken => "SEC_E_INVALID_TOKEN (0x80090308)",
        AccessDenied => "E_ACCESSDENIED (0x80070005)",
        LogonFailure => "STATUS_LOGON_FAILURE (0xC000006D)",
        NoLogonServers => "STATUS_NO_LOGON_SERVERS (0xC000005E)",
        InvalidLogonHours => "STATUS_INVALID_LOGON_HOURS (0xC000006F)",
        InvalidWorkstation => "STATUS_INVALID_WORKSTATION (0xC0000070)",
        PasswordExpired => "STATUS_PASSWORD_EXPIRED (0xC0000071)",
        AccountDisabled => "STATUS_ACCOUNT_DISABLED (0xC0000072)",
        _ => $"0x{unchecked((uint)Result):X8}",
    };
}

/// <summary>[RFC 7638] JWK thumbprints, as FreeRDP computes its PoP key id and the IdP binds it into <c>cnf.kid</c>.</summary>
public static class JwkThumbprint
{
    /// <summary>base64url(SHA-256(<c>{"e":"…","kty":"RSA","n":"…"}</c>)) for an RSA key given by its base64url members.</summary>
    /// <exception cref="ArgumentException"><paramref name="e"/> or <paramref name="n"/> is not base64url.</exception>
    public static string ComputeRsa(string e, string n)
    {
        ArgumentNullException.ThrowIfNull(e);
        ArgumentNullException.ThrowIfNull(n);
        if (!RdsAadJson.IsBase64Url(e) || !RdsAadJson.IsBase64Url(n) || e.Length == 0 || n.Length == 0)
        {
            throw new ArgumentException("e and n must be non-empty base64url without padding.");
        }

        var canonical = Encoding.UTF8.GetBytes($"{{\"e\":\"{e}\",\"kty\":\"RSA\",\"n\":\"{n}\"}}");
        return RdsAadJson.EncodeBase64Url(SHA256.HashData(canonical));
    }
}
