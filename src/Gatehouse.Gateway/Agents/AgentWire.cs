using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gatehouse.Gateway.Agents;

/// <summary>
/// The one-time enrolment token <c>gatehouse host enroll</c> prints: <c>ghjoin1.SECRET.FINGERPRINT</c>, where SECRET is
/// 32 random bytes (unpadded base64url) and FINGERPRINT the lower-case hex SHA-256 of the server's TLS certificate, so
/// the agent pins the server without a CA (as <c>kubeadm join --discovery-token-ca-cert-hash</c>). The server keeps only
/// the SHA-256 of SECRET.
/// </summary>
public sealed record EnrollmentToken(string Secret, string ServerCertificateSha256)
{
    /// <summary>The prefix (and version) of every token.</summary>
    public const string Prefix = "ghjoin1";

    /// <summary>Longest token text accepted.</summary>
    public const int MaxLength = 160;

    /// <summary>A new token for a server whose certificate hashes to <paramref name="certificateSha256"/> (hex).</summary>
    public static EnrollmentToken Create(string certificateSha256)
    {
        ArgumentNullException.ThrowIfNull(certificateSha256);
        return new EnrollmentToken(Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32)), certificateSha256.ToLowerInvariant());
    }

    /// <summary>The token's text.</summary>
    public override string ToString() => $"{Prefix}.{Secret}.{ServerCertificateSha256}";

    /// <summary>The hash the server stores (lower-case hex SHA-256 of the secret).</summary>
    public string SecretHash => HashSecret(Secret);

    /// <summary>The lower-case hex SHA-256 of a token secret.</summary>
    public static string HashSecret(string secret) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(secret ?? string.Empty)));

    /// <summary>Reads a token; false with the reason when it is not one.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out EnrollmentToken? token, [NotNullWhen(false)] out string? error)
    {
        token = null;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            error = "the enrolment token is empty or too long";
            return false;
        }

        var parts = text.Split('.');
        if (parts.Length != 3 || parts[0] != Prefix)
        {
            error = $"the enrolment token does not start with {Prefix}. or does not have three parts";
            return false;
        }

        if (parts[1].Length != 43 || !Base64Url.IsValid(parts[1], out var decoded) || decoded != 32)
        {
            error = "the enrolment token's secret is not 32 bytes of base64url";
            return false;
        }

        if (parts[2].Length != 64 || !parts[2].All(char.IsAsciiHexDigit))
        {
            error = "the enrolment token's server fingerprint is not a hex SHA-256";
            return false;
        }

        token = new EnrollmentToken(parts[1], parts[2].ToLowerInvariant());
        error = null;
        return true;
    }
}

/// <summary>
/// The agent's proof of possession of its key for each request: a compact JWS (ES256) with <c>iss</c> = <c>sub</c> =
/// the agent id, <c>aud</c> = the server's agent endpoint, <c>exp</c> at most five minutes after <c>iat</c>, and a
/// single-use <c>jti</c> (the <c>private_key_jwt</c> client assertion of RFC 7523, with the agent's own key).
/// </summary>
public static class AgentAssertion
{
    /// <summary>Longest assertion accepted.</summary>
    public const int MaxLength = 2048;

    /// <summary>Longest lifetime accepted (<c>exp</c> − <c>iat</c>).</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(5);

    /// <summary>Clock skew tolerated on <c>iat</c> and <c>exp</c>.</summary>
    public static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    /// <summary>The lifetime of the assertions the agent makes.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(2);

    private static readonly byte[] Header = Encoding.UTF8.GetBytes("""{"alg":"ES256","typ":"JWT"}""");

    /// <summary>Signs a new assertion for <paramref name="agentId"/> towards <paramref name="audience"/>.</summary>
    public static string Create(ECDsa key, Guid agentId, string audience, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(key);
        var claims = new AssertionClaims
        {
            Issuer = agentId.ToString(),
            Subject = agentId.ToString(),
            Audience = audience,
            IssuedAt = now.ToUnixTimeSeconds(),
            Expires = (now + Lifetime).ToUnixTimeSeconds(),
            Id = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(18)),
        };
        var signingInput = Base64Url.EncodeToString(Header) + "." + Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(claims, AgentJson.Options));
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    /// <summary>
    /// Reads an assertion without checking its signature: the agent id it claims (<c>iss</c>, equal to <c>sub</c>) and
    /// its claims. False with the reason for anything malformed (never throws on input).
    /// </summary>
    public static bool TryRead(string? text, [NotNullWhen(true)] out AssertionClaims? claims, [NotNullWhen(false)] out string? error)
    {
        claims = null;
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            error = "the assertion is empty or longer than 2048 characters";
            return false;
        }

        var parts = text.Split('.');
        if (parts.Length != 3)
        {
            error = "the assertion is not a compact JWS (three parts)";
            return false;
        }

        try
        {
            var header = Base64Url.DecodeFromChars(parts[0]);
            using (var document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 4 }))
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object
                    || !document.RootElement.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || alg.GetString() != "ES256")
                {
                    error = "the assertion's alg is not ES256";
                    return false;
                }
            }

            claims = JsonSerializer.Deserialize<AssertionClaims>(Base64Url.DecodeFromChars(parts[1]), AgentJson.Options);
        }
        catch (Exception e) when (e is FormatException or JsonException or ArgumentException or InvalidOperationException)
        {
            error = "the assertion's header or claims are not base64url JSON";
            return false;
        }

        if (claims is null || claims.Issuer is null || claims.Issuer != claims.Subject || !Guid.TryParseExact(claims.Issuer, "D", out _))
        {
            claims = null;
            error = "the assertion's iss and sub are not the same agent id";
            return false;
        }

        if (claims.Id is not { Length: >= 16 and <= 64 } || claims.Audience is null)
        {
            claims = null;
            error = "the assertion has no jti (16 to 64 characters) or no aud";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>
    /// Checks an assertion read by <see cref="TryRead"/> against the agent's key, the audience and the time (the
    /// <c>jti</c>'s single use is the caller's, in the store). Null when valid, else the reason.
    /// </summary>
    public static string? Verify(string text, AssertionClaims claims, ReadOnlySpan<byte> subjectPublicKeyInfo, string audience, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(claims);
        var lastDot = text.LastIndexOf('.');
        byte[] signature;
        try
        {
            signature = Base64Url.DecodeFromChars(text.AsSpan(lastDot + 1));
        }
        catch (FormatException)
        {
            return "the assertion's signature is not base64url";
        }

        using var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        }
        catch (CryptographicException)
        {
            return "the agent's registered key cannot be read";
        }

        if (signature.Length != 64
            || !key.VerifyData(Encoding.ASCII.GetBytes(text[..lastDot]), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
        {
            return "the assertion's signature is not the agent's key";
        }

        if (!string.Equals(claims.Audience, audience, StringComparison.Ordinal))
        {
            return $"the assertion's aud '{claims.Audience}' is not {audience}";
        }

        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(claims.IssuedAt, 0, 253402300799));
        var expires = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(claims.Expires, 0, 253402300799));
        if (expires <= now - Skew)
        {
            return string.Create(CultureInfo.InvariantCulture, $"the assertion expired at {expires:u}");
        }

        if (issuedAt > now + Skew || expires - issuedAt > MaxLifetime || expires > now + MaxLifetime + Skew)
        {
            return "the assertion's lifetime is longer than five minutes or it was issued in the future";
        }

        return null;
    }
}

/// <summary>The claims of an <see cref="AgentAssertion"/>.</summary>
public sealed record AssertionClaims
{
    /// <summary><c>iss</c>: the agent id.</summary>
    [JsonPropertyName("iss")]
    public string? Issuer { get; init; }

    /// <summary><c>sub</c>: the agent id.</summary>
    [JsonPropertyName("sub")]
    public string? Subject { get; init; }

    /// <summary><c>aud</c>: the server's agent endpoint.</summary>
    [JsonPropertyName("aud")]
    public string? Audience { get; init; }

    /// <summary><c>iat</c> (Unix seconds).</summary>
    [JsonPropertyName("iat")]
    public long IssuedAt { get; init; }

    /// <summary><c>exp</c> (Unix seconds).</summary>
    [JsonPropertyName("exp")]
    public long Expires { get; init; }

    /// <summary><c>jti</c>: single use.</summary>
    [JsonPropertyName("jti")]
    public string? Id { get; init; }

    /// <summary>The agent id (<c>iss</c>, checked by <see cref="AgentAssertion.TryRead"/>).</summary>
    [JsonIgnore]
    public Guid AgentId => Guid.Parse(Issuer!, CultureInfo.InvariantCulture);
}

/// <summary>JSON options of the agent channel.</summary>
public static class AgentJson
{
    /// <summary>Web defaults (camelCase), nulls left out.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 8,
    };
}

/// <summary><c>POST /agent/v1/join</c>: the token, the agent's public key and the host's facts.</summary>
public sealed record AgentJoinRequest(
    string Token,
    string PublicKey,
    string? OperatingSystem,
    string? AgentVersion,
    int RdpPort,
    string? RdpCertificatePin,
    int HealthIntervalSeconds);

/// <summary>The server's answer to a join: the agent id and the audience its assertions name.</summary>
public sealed record AgentJoinResponse(Guid AgentId, string Audience, string HostName);

/// <summary>What the agent is asked to do (an answer to <c>POST /agent/v1/poll</c>).</summary>
/// <param name="Id">The work item's id (the result names it).</param>
/// <param name="Kind"><c>logon</c> (an account and a fresh password), <c>accepted</c> (the host accepted that logon: rotate now) or <c>disable</c>.</param>
/// <param name="UserPrincipalName">The user.</param>
/// <param name="Level"><c>administrator</c> or <c>user</c> (logon only).</param>
/// <param name="LogonId">For <c>accepted</c>: the logon's work item id.</param>
public sealed record AgentWorkItem(Guid Id, string Kind, string UserPrincipalName, string? Level = null, Guid? LogonId = null);

/// <summary>The answer to a poll: the work to do (empty when the long poll ran out).</summary>
public sealed record AgentPollResponse(IReadOnlyList<AgentWorkItem> Work);

/// <summary><c>POST /agent/v1/result</c>: how a work item went. The password is sent only over the pinned TLS channel and is never logged.</summary>
public sealed record AgentWorkResult(Guid Id, bool Ok, string? AccountName, string? Password, string? Error)
{
    /// <inheritdoc/>
    public override string ToString() => $"AgentWorkResult {Id} ok={Ok} account={AccountName} error={Error}";
}

/// <summary>
/// <c>POST /agent/v1/health</c>: the agent's periodic report. <c>RdpListenAddresses</c> are the local addresses the RDP
/// port listens on (<see cref="ListeningAddresses"/>); agents before it was added leave it out (null), and so does an
/// agent that cannot read them.
/// </summary>
public sealed record AgentHealthReport(
    bool RdpListening,
    string? RdpCertificatePin,
    int ManagedAccounts,
    string? AgentVersion,
    DateTimeOffset AgentTime,
    string? LastError,
    int IntervalSeconds,
    IReadOnlyList<string>? RdpListenAddresses = null);
