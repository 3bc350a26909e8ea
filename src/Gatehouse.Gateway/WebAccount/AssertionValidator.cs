using System.Security.Cryptography;
using System.Text;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.Gateway.WebAccount;

/// <summary>What the identity provider says about the access token inside an assertion.</summary>
public sealed record AccessTokenCheck
{
    /// <summary>True when the token's signature, issuer, tenant, lifetime, audience and revocation all check out.</summary>
    public required bool Valid { get; init; }

    /// <summary>Why not, for the log.</summary>
    public string? FailureReason { get; init; }

    /// <summary><c>cnf.kid</c>: the PoP key thumbprint the token is bound to.</summary>
    public string? CnfKid { get; init; }

    /// <summary><c>tid</c>.</summary>
    public Guid TenantId { get; init; }

    /// <summary><c>oid</c>.</summary>
    public Guid ObjectId { get; init; }

    /// <summary><c>upn</c>.</summary>
    public string? Upn { get; init; }

    /// <summary><c>amr</c>.</summary>
    public IReadOnlyList<string> Amr { get; init; } = [];

    /// <summary><c>auth_time</c> (or <c>iat</c>), for sign-in frequency.</summary>
    public DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>The token's expiry.</summary>
    public DateTimeOffset ExpiresAt { get; init; }
}

/// <summary>The host a label names, as the gateway's directory knows it.</summary>
public sealed record RegisteredHost(Guid Id, string Name, string? HostGroup);

/// <summary>The identity provider as the web-account sign-in needs it (in process, or through the JWKS URL when apart).</summary>
public interface IWebAccountDirectory
{
    /// <summary>The registered host a label names (name or alias, case-insensitive), or null.</summary>
    Task<RegisteredHost?> FindHostAsync(string label, CancellationToken cancellationToken);

    /// <summary>Validates an RDP access token for <paramref name="host"/>: signature, iss, tid, exp/nbf, aud, revocation.</summary>
    Task<AccessTokenCheck> ValidateAccessTokenAsync(string accessToken, RegisteredHost host, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Validates the <c>aad_nonce</c> the client got from <c>grant_type=srv_challenge</c>.</summary>
    Task<bool> ValidateClientNonceAsync(string aadNonce, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>Why an assertion was refused (the sign-in log's reason code).</summary>
public enum AssertionFailure
{
    /// <summary>Accepted.</summary>
    None,

    /// <summary>The request or the JWS is malformed.</summary>
    Malformed,

    /// <summary>The JWS algorithm is not RS256.</summary>
    Algorithm,

    /// <summary>The nonce is not this connection's, or was already used.</summary>
    Nonce,

    /// <summary>This connection's nonce has expired.</summary>
    NonceExpired,

    /// <summary><c>ts</c> is outside the allowed window.</summary>
    Timestamp,

    /// <summary>The PoP key is unusable (not RSA 2048-4096).</summary>
    Key,

    /// <summary>The assertion's signature does not verify with its own key.</summary>
    Signature,

    /// <summary><c>u</c> is not a device URL, or its label looks like an IP address.</summary>
    HostLabel,

    /// <summary>The label names no registered host.</summary>
    UnknownHost,

    /// <summary>The access token is invalid (see the reason).</summary>
    AccessToken,

    /// <summary>The assertion's key is not the key the token is bound to.</summary>
    ProofOfPossession,

    /// <summary>The <c>aad_nonce</c> is missing, forged or expired.</summary>
    ClientNonce,
}

/// <summary>The verdict on one assertion: the RDS AAD result code to send, and everything the log and the authorisation step need.</summary>
public sealed record AssertionVerdict
{
    /// <summary>The failure, or <see cref="AssertionFailure.None"/>.</summary>
    public required AssertionFailure Failure { get; init; }

    /// <summary>The reason in words, for the sign-in log.</summary>
    public required string Reason { get; init; }

    /// <summary>The code for the Auth Result PDU when refused (SEC_E_INVALID_TOKEN for every assertion failure).</summary>
    public int ResultCode => Failure == AssertionFailure.None ? RdsAadAuthResult.Success : RdsAadAuthResult.InvalidToken;

    /// <summary>The parsed assertion, when it parsed.</summary>
    public RdpAssertion? Assertion { get; init; }

    /// <summary>The host, once resolved.</summary>
    public RegisteredHost? Host { get; init; }

    /// <summary>The token check, once done.</summary>
    public AccessTokenCheck? Token { get; init; }

    /// <summary>True when the assertion is accepted (authorisation still follows).</summary>
    public bool Accepted => Failure == AssertionFailure.None;
}

/// <summary>Limits of web-account sign-in.</summary>
public sealed class WebAccountOptions
{
    /// <summary>How far <c>ts</c> may be from the gateway's clock, either way.</summary>
    public TimeSpan TimestampWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a server nonce stays valid after it is sent.</summary>
    public TimeSpan NonceLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Require and check <c>client_claims.aad_nonce</c>.</summary>
    public bool RequireClientNonce { get; set; } = true;
}

/// <summary>
/// Validates an RDS AAD Auth Request in the order of design/protocol/rdsaad-server.md §3.2: shape and <c>alg</c>,
/// this connection's nonce (single use, fresh), <c>ts</c> window, the signature with <c>cnf.jwk</c>, <c>u</c> naming a
/// registered host (never an IP address), the access token for that host, the PoP binding (thumbprint = token
/// <c>cnf.kid</c>), and the <c>aad_nonce</c>. The first failure decides; every failure is SEC_E_INVALID_TOKEN to the
/// client and a precise reason in the log. Authorisation (roles, Conditional Access) comes after.
/// </summary>
public sealed class AssertionValidator(IWebAccountDirectory directory, WebAccountOptions options, TimeProvider time)
{
    /// <summary>Smallest PoP key accepted (bits).</summary>
    public const int MinimumKeyBits = 2048;

    /// <summary>Largest PoP key accepted (bits).</summary>
    public const int MaximumKeyBits = 4096;

    /// <summary>Validates the request JSON (as framed, terminator optional) against this connection's nonce.</summary>
    public async Task<AssertionVerdict> ValidateAsync(ReadOnlyMemory<byte> requestJson, ServerNonce nonce, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nonce);
        var now = time.GetUtcNow();

        // 1. Shape and algorithm.
        if (!RdsAadAuthRequest.TryParse(requestJson.Span, out var request, out var error))
        {
            return Refuse(AssertionFailure.Malformed, $"malformed authentication request: {error}");
        }

        var a = request.Assertion;
        if (!string.Equals(a.Algorithm, "RS256", StringComparison.Ordinal))
        {
            return Refuse(AssertionFailure.Algorithm, $"assertion algorithm '{Shorten(a.Algorithm)}' is not allowed (RS256 only)", a);
        }

        // 2. The nonce of this connection, once, while fresh.
        if (!nonce.TryConsume(a.Nonce))
        {
            return Refuse(AssertionFailure.Nonce, nonce.IsConsumed && string.Equals(a.Nonce, nonce.Value, StringComparison.Ordinal)
                ? "the server nonce was already used on this connection"
                : "the assertion's nonce is not the one this connection issued (replayed or from another connection)", a);
        }

        if (now - nonce.IssuedAt > options.NonceLifetime)
        {
            return Refuse(AssertionFailure.NonceExpired, $"the server nonce expired ({(now - nonce.IssuedAt).TotalSeconds:0} s old, limit {options.NonceLifetime.TotalSeconds:0} s)", a);
        }

        // 3. ts window.
        var skew = now.ToUnixTimeSeconds() - a.Timestamp;
        if (Math.Abs(skew) > options.TimestampWindow.TotalSeconds)
        {
            return Refuse(AssertionFailure.Timestamp, skew > 0
                ? $"the assertion's ts is {skew} s old (window {options.TimestampWindow.TotalSeconds:0} s); check the client's clock"
                : $"the assertion's ts is {-skew} s in the future (window {options.TimestampWindow.TotalSeconds:0} s); check the client's clock", a);
        }

        // 4. The signature, with the key the assertion carries.
        if (!TryImportKey(a, out var key, out var keyProblem))
        {
            return Refuse(AssertionFailure.Key, keyProblem, a);
        }

        using (key)
        {
            if (!key.VerifyData(a.SigningInput, a.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
            {
                return Refuse(AssertionFailure.Signature, "the assertion's signature does not verify with its cnf.jwk key", a);
            }
        }

        // 5. u names a registered host, never an address.
        if (a.HostLabel is not { } label)
        {
            return Refuse(AssertionFailure.HostLabel, $"u '{Shorten(a.Url)}' is not a device URL ({RdpAssertion.DevicePrefix}<host>)", a);
        }

        if (LooksLikeAddress(label))
        {
            return Refuse(AssertionFailure.HostLabel, $"IP address can't be used with web account sign-in; connect with the host name (the client asked for '{Shorten(label)}')", a);
        }

        var host = await directory.FindHostAsync(label, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return Refuse(AssertionFailure.UnknownHost, $"'{Shorten(label)}' is not a registered host name or alias; register it with 'gatehouse host create' or connect with its registered name", a);
        }

        // 6. The access token, for this host.
        var token = await directory.ValidateAccessTokenAsync(a.AccessToken, host, now, cancellationToken).ConfigureAwait(false);
        if (!token.Valid)
        {
            return Refuse(AssertionFailure.AccessToken, $"access token refused: {token.FailureReason}", a, host, token);
        }

        // 7. Proof of possession: the key that signed the assertion is the key the token was issued to.
        var thumbprint = a.Thumbprint;
        if (token.CnfKid is not { } kid || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(kid), Encoding.ASCII.GetBytes(thumbprint)))
        {
            return Refuse(AssertionFailure.ProofOfPossession, "the assertion's key is not the key the access token is bound to (cnf.kid); the token was issued to another client", a, host, token);
        }

        // 8. The aad_nonce from the identity provider's srv_challenge.
        if (options.RequireClientNonce)
        {
            if (!a.ClientClaims.TryGetValue("aad_nonce", out var aadNonce) || aadNonce.Length == 0)
            {
                return Refuse(AssertionFailure.ClientNonce, "client_claims carries no aad_nonce", a, host, token);
            }

            if (!await directory.ValidateClientNonceAsync(aadNonce, now, cancellationToken).ConfigureAwait(false))
            {
                return Refuse(AssertionFailure.ClientNonce, "client_claims.aad_nonce is not a valid, fresh nonce from this identity provider", a, host, token);
            }
        }

        return new AssertionVerdict { Failure = AssertionFailure.None, Reason = "assertion accepted", Assertion = a, Host = host, Token = token };
    }

    /// <summary>True for labels that are IP addresses or what FreeRDP makes of one (the first octet: all digits).</summary>
    public static bool LooksLikeAddress(string label)
    {
        ArgumentNullException.ThrowIfNull(label);
        return label.All(char.IsAsciiDigit) || System.Net.IPAddress.TryParse(label.Trim('[', ']'), out _);
    }

    private static bool TryImportKey(RdpAssertion a, out RSA key, out string problem)
    {
        key = null!;
        problem = string.Empty;
        var modulus = Decode(a.Modulus!);
        var exponent = Decode(a.Exponent!);
        var bits = modulus.Length * 8 - (modulus.Length > 0 ? System.Numerics.BitOperations.LeadingZeroCount((uint)modulus[0]) - 24 : 0);
        if (bits is < MinimumKeyBits or > MaximumKeyBits)
        {
            problem = $"the PoP key is RSA-{bits}; {MinimumKeyBits} to {MaximumKeyBits} bits are accepted";
            return false;
        }

        if (exponent.Length is 0 or > 4 || (exponent[^1] & 1) == 0)
        {
            problem = "the PoP key's exponent is not a usable RSA public exponent";
            return false;
        }

        try
        {
            key = RSA.Create(new RSAParameters { Modulus = modulus, Exponent = exponent });
            return true;
        }
        catch (CryptographicException e)
        {
            problem = $"the PoP key cannot be used: {e.Message}";
            return false;
        }
    }

    // The assertion parser admitted only decodable base64url for the key's parts.
    private static byte[] Decode(string base64Url) => System.Buffers.Text.Base64Url.DecodeFromChars(base64Url);

    private static string Shorten(string value) => value.Length <= 80 ? value : value[..80] + "…";

    private static AssertionVerdict Refuse(AssertionFailure failure, string reason, RdpAssertion? assertion = null, RegisteredHost? host = null, AccessTokenCheck? token = null) =>
        new() { Failure = failure, Reason = reason, Assertion = assertion, Host = host, Token = token };
}
