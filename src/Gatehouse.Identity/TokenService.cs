using System.Security.Cryptography;
using System.Text.Json;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Identity;

/// <summary>What an RDP access token is issued for.</summary>
public sealed record RdpTokenRequest
{
    /// <summary>Tenant.</summary>
    public required Tenant Tenant { get; init; }

    /// <summary>User.</summary>
    public required User User { get; init; }

    /// <summary>The host the token is for (its name is the audience).</summary>
    public required Host Host { get; init; }

    /// <summary>Authentication methods (<c>pwd</c>, plus <c>mfa</c>/<c>otp</c>).</summary>
    public required IReadOnlyList<string> Amr { get; init; }

    /// <summary>When the user authenticated.</summary>
    public required DateTimeOffset AuthTime { get; init; }

    /// <summary>Client id (<c>appid</c>).</summary>
    public required string ClientId { get; init; }

    /// <summary>PoP key thumbprint from <c>req_cnf</c> (<c>cnf.kid</c>).</summary>
    public required string CnfKid { get; init; }

    /// <summary>Issuer; null means <see cref="GatehouseIdentityOptions.IssuerFor"/>.</summary>
    public string? Issuer { get; init; }

    /// <summary>The grant the token belongs to (a code reuse revokes it).</summary>
    public required Guid GrantId { get; init; }

    /// <summary>Lifetime (at most 1 h); null means the configured lifetime.</summary>
    public TimeSpan? Lifetime { get; init; }

    /// <summary>
    /// True when the caller saves the issued-token record itself, with the next save of the same store context (the
    /// refresh token's: <see cref="RefreshTokenService.IssueAsync(Guid, Guid, string, string, DateTimeOffset?, CancellationToken)"/>),
    /// so both rows cost one round trip; false (the default) saves it before returning.
    /// </summary>
    public bool DeferSave { get; init; }
}

/// <summary>Result of <see cref="TokenService.ValidateRdpAccessTokenAsync"/>.</summary>
public sealed record TokenValidationOutcome
{
    /// <summary>True when the token is valid.</summary>
    public bool IsValid { get; init; }

    /// <summary>Why it is not valid (for the sign-in log).</summary>
    public string? Error { get; init; }

    /// <summary>Tenant id (<c>tid</c>).</summary>
    public Guid TenantId { get; init; }

    /// <summary>Object id (<c>oid</c>).</summary>
    public Guid ObjectId { get; init; }

    /// <summary>UPN.</summary>
    public string? Upn { get; init; }

    /// <summary>PoP key thumbprint (<c>cnf.kid</c>).</summary>
    public string? CnfKid { get; init; }

    /// <summary>Authentication methods.</summary>
    public IReadOnlyList<string> Amr { get; init; } = [];

    /// <summary>Token id.</summary>
    public string? Jti { get; init; }

    /// <summary>Expiry.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>When the user authenticated (<c>auth_time</c>, else <c>iat</c>).</summary>
    public DateTimeOffset AuthenticatedAt { get; init; }

    internal static TokenValidationOutcome Fail(string error) => new() { Error = error };
}

/// <summary>Issues and validates RS256 RDP access tokens.</summary>
public sealed class TokenService
{
    /// <summary>The JWT <c>typ</c> header of access tokens (RFC 9068).</summary>
    public const string AccessTokenType = "at+jwt";

    /// <summary>Longest token accepted for validation.</summary>
    public const int MaxTokenLength = 16 * 1024;

    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false, MaximumTokenSizeInBytes = MaxTokenLength };
    private readonly GatehouseDbContext db;
    private readonly SigningKeyService keys;
    private readonly TimeProvider time;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public TokenService(GatehouseDbContext db, SigningKeyService keys, TimeProvider time, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        this.keys = keys;
        this.time = time;
        this.options = options;
    }

    /// <summary>The JWT <c>typ</c> header of ID tokens (Entra's).</summary>
    public const string IdTokenType = "JWT";

    /// <summary>
    /// Issues an ID token (OpenID Connect Core §2, Entra's v2.0 shape), signed with the active RS256 key: iss, aud (the
    /// client), sub (pairwise, <see cref="OidcClaims.PairwiseSubject"/>), iat, nbf, exp (<see cref="OidcClaims.IdTokenLifetime"/>),
    /// tid, oid, preferred_username (the UPN), name, ver, and nonce, amr and auth_time when the request has them. Nothing is stored: an ID
    /// token authorises nothing.
    /// </summary>
    public async Task<string> IssueIdTokenAsync(IdTokenRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrWhiteSpace(request.ClientId);
        var now = time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            ["sub"] = OidcClaims.PairwiseSubject(request.User.TenantId, request.User.Id, request.ClientId),
            ["tid"] = request.User.TenantId.ToString("D"),
            ["oid"] = request.User.Id.ToString("D"),
            ["preferred_username"] = request.User.UserPrincipalName,
            ["name"] = request.User.DisplayName,
            ["ver"] = "2.0",
        };
        if (request.Nonce is { Length: > 0 } nonce)
        {
            claims["nonce"] = nonce;
        }

        if (request.Amr is { Count: > 0 } amr)
        {
            claims["amr"] = amr.ToArray();
        }

        if (request.AuthTime is { } authTime)
        {
            claims["auth_time"] = authTime.ToUnixTimeSeconds();
        }

        var descriptor = new SecurityTokenDescriptor
        {
            TokenType = IdTokenType,
            Issuer = request.Issuer ?? options.IssuerFor(request.User.TenantId),
            Audience = request.ClientId,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + OidcClaims.IdTokenLifetime).UtcDateTime,
            SigningCredentials = await keys.GetActiveAsync(cancellationToken).ConfigureAwait(false),
            Claims = claims,
        };
        return Handler.CreateToken(descriptor);
    }

    /// <summary>Issues the access token (claims: iss, aud, sub, tid, oid, upn, name, scp, amr, iat, nbf, exp, appid, cnf, jti).</summary>
    public async Task<string> IssueRdpAccessTokenAsync(RdpTokenRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = time.GetUtcNow();
        var lifetime = LifetimeOf(request, options);
        var jti = NewJti();
        var credentials = await keys.GetActiveAsync(cancellationToken).ConfigureAwait(false);
        var token = CreateRdpAccessToken(request, credentials, options, now, jti);
        db.IssuedTokens.Add(new IssuedToken { Jti = jti, GrantId = request.GrantId, ExpiresAt = now + lifetime });
        if (!request.DeferSave)
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }

        return token;
    }

    /// <summary>A new access token id (128 random bits, base64url).</summary>
    public static string NewJti() => Base64Url.Encode(RandomNumberGenerator.GetBytes(16));

    /// <summary>The lifetime of the access token of <paramref name="request"/> (its own, else the configured one).</summary>
    public static TimeSpan LifetimeOf(RdpTokenRequest request, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        return request.Lifetime ?? options.AccessTokenLifetime;
    }

    /// <summary>
    /// Signs the access token of <paramref name="request"/> with <paramref name="credentials"/>, issued at
    /// <paramref name="now"/> with id <paramref name="jti"/>, and records nothing: the caller stores its issued-token
    /// record (<see cref="IssueRdpAccessTokenAsync"/> through the context; the token endpoint's redemption in the statement
    /// that consumed the code, <see cref="CodeRedemption"/>). The same checks and claims as <see cref="IssueRdpAccessTokenAsync"/>.
    /// </summary>
    public static string CreateRdpAccessToken(RdpTokenRequest request, SigningCredentials credentials, GatehouseIdentityOptions options, DateTimeOffset now, string jti)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(jti);
        if (request.Tenant.Id != request.User.TenantId || request.Tenant.Id != request.Host.TenantId)
        {
            throw new ArgumentException("user and host must belong to the tenant", nameof(request));
        }

        if (request.CnfKid.Length != PopKey.ThumbprintLength || !Base64Url.IsAlphabet(request.CnfKid))
        {
            throw new ArgumentException("cnf kid must be a SHA-256 JWK thumbprint", nameof(request));
        }

        var lifetime = LifetimeOf(request, options);
        if (lifetime <= TimeSpan.Zero || lifetime > TimeSpan.FromHours(1))
        {
            throw new ArgumentOutOfRangeException(nameof(request), "access token lifetime must be at most 1 h");
        }

        var expires = now + lifetime;
        var descriptor = new SecurityTokenDescriptor
        {
            TokenType = AccessTokenType,
            Issuer = request.Issuer ?? options.IssuerFor(request.Tenant.Id),
            Audience = RdpScope.Resource(request.Host.Name),
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = expires.UtcDateTime,
            SigningCredentials = credentials,
            Claims = new Dictionary<string, object>
            {
                ["sub"] = OidcClaims.PairwiseSubject(request.Tenant.Id, request.User.Id, request.ClientId),
                ["tid"] = request.Tenant.Id.ToString("D"),
                ["oid"] = request.User.Id.ToString("D"),
                ["upn"] = request.User.UserPrincipalName,
                ["name"] = request.User.DisplayName,
                ["scp"] = RdpScope.ScopeValue,
                ["amr"] = request.Amr.ToArray(),
                ["auth_time"] = request.AuthTime.ToUnixTimeSeconds(),
                ["appid"] = request.ClientId,
                ["cnf"] = new Dictionary<string, object> { ["kid"] = request.CnfKid },
                ["jti"] = jti,
                ["ver"] = "2.0",
            },
        };
        if (Gatehouse.Gateway.Diagnostics.SignInTraces.CurrentTraceParent() is { } traceParent)
        {
            // The sign-in's trace context (ids, no secret) for the gateway's spans: see SignInTraces.TraceClaim.
            descriptor.Claims[Gatehouse.Gateway.Diagnostics.SignInTraces.TraceClaim] = traceParent;
        }

        var token = Handler.CreateToken(descriptor);
        Gatehouse.Gateway.Diagnostics.SignInTraces.TokenIssued(request.GrantId, jti);
        return token;
    }

    /// <summary>
    /// Validates an RDP access token for <paramref name="expectedHostName"/> at <paramref name="now"/>: RS256 signature by a
    /// published key (matched by kid), <c>typ</c>, issuer pinned to the token's tenant, tenant exists, audience = that host,
    /// exp/nbf with skew, <c>scp</c>, <c>cnf.kid</c> shape, and revocation.
    /// </summary>
    public async Task<TokenValidationOutcome> ValidateRdpAccessTokenAsync(string jwt, string expectedHostName, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(expectedHostName);
        if (string.IsNullOrEmpty(jwt))
        {
            return TokenValidationOutcome.Fail("token is missing");
        }

        if (jwt.Length > MaxTokenLength)
        {
            return TokenValidationOutcome.Fail("token is too large");
        }

        var published = await keys.GetVerificationKeysAsync(now, KeyIdOf(jwt), cancellationToken).ConfigureAwait(false);
        var parameters = AccessTokenParameters(published, RdpScope.Resource(expectedHostName), now, options.ClockSkew);

        TokenValidationResult result;
        try
        {
            result = await Handler.ValidateTokenAsync(jwt, parameters).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            return TokenValidationOutcome.Fail("token is malformed: " + ex.GetType().Name);
        }

        if (!result.IsValid || result.SecurityToken is not JsonWebToken token)
        {
            return TokenValidationOutcome.Fail(Describe(result.Exception));
        }

        if (!string.Equals(token.Alg, SecurityAlgorithms.RsaSha256, StringComparison.Ordinal))
        {
            return TokenValidationOutcome.Fail("algorithm is not RS256");
        }

        if (!token.TryGetPayloadValue<string>("tid", out var tidText) || !Guid.TryParseExact(tidText, "D", out var tid))
        {
            return TokenValidationOutcome.Fail("tid is missing or not a GUID");
        }

        if (!string.Equals(token.Issuer, options.IssuerFor(tid), StringComparison.Ordinal))
        {
            return TokenValidationOutcome.Fail("issuer does not match the tenant");
        }

        if (!await db.Tenants.AnyAsync(t => t.Id == tid, cancellationToken).ConfigureAwait(false))
        {
            return TokenValidationOutcome.Fail("tenant does not exist");
        }

        if (!token.TryGetPayloadValue<string>("oid", out var oidText) || !Guid.TryParseExact(oidText, "D", out var oid))
        {
            return TokenValidationOutcome.Fail("oid is missing or not a GUID");
        }

        if (!token.TryGetPayloadValue<string>("scp", out var scp) || !string.Equals(scp, RdpScope.ScopeValue, StringComparison.Ordinal))
        {
            return TokenValidationOutcome.Fail("scp is not user_impersonation");
        }

        var cnfKid = ReadCnfKid(token);
        if (cnfKid is null)
        {
            return TokenValidationOutcome.Fail("cnf.kid is missing or not a thumbprint");
        }

        var jti = token.Id;
        if (string.IsNullOrEmpty(jti) || jti.Length > 64)
        {
            return TokenValidationOutcome.Fail("jti is missing");
        }

        if (await db.RevokedTokens.AnyAsync(r => r.Jti == jti, cancellationToken).ConfigureAwait(false)
            || await db.IssuedTokens.Where(t => t.Jti == jti)
                .Join(db.Grants, t => t.GrantId, g => g.Id, (t, g) => g)
                .AnyAsync(g => g.RevokedAt != null, cancellationToken).ConfigureAwait(false))
        {
            return TokenValidationOutcome.Fail("token has been revoked");
        }

        token.TryGetPayloadValue<string>(Gatehouse.Gateway.Diagnostics.SignInTraces.TraceClaim, out var traceParent);
        Gatehouse.Gateway.Diagnostics.SignInTraces.TokenPresented(jti, traceParent);

        token.TryGetPayloadValue<string>("upn", out var upn);
        var amr = token.Claims.Where(c => c.Type == "amr").Select(c => c.Value).ToArray();
        var authTime = token.TryGetPayloadValue<long>("auth_time", out var authSeconds)
            ? DateTimeOffset.FromUnixTimeSeconds(authSeconds)
            : new DateTimeOffset(token.IssuedAt, TimeSpan.Zero);
        return new TokenValidationOutcome
        {
            IsValid = true,
            TenantId = tid,
            ObjectId = oid,
            Upn = upn,
            CnfKid = cnfKid,
            Amr = amr,
            Jti = jti,
            AuthenticatedAt = authTime,
            ExpiresAt = new DateTimeOffset(token.ValidTo, TimeSpan.Zero),
        };
    }

    /// <summary>
    /// The checks every Gatehouse access token gets from the JWT library (RDP tokens here, admin API tokens in
    /// <see cref="AdminTokenService"/>): RS256 by one of <paramref name="keys"/> matched by kid, <c>typ</c>
    /// <see cref="AccessTokenType"/>, <paramref name="audience"/>, and nbf/exp within <paramref name="skew"/> of
    /// <paramref name="now"/> (the caller's clock, not the machine's). The issuer is pinned by the caller against the
    /// token's own tid.
    /// </summary>
    internal static TokenValidationParameters AccessTokenParameters(IEnumerable<SecurityKey> keys, string audience, DateTimeOffset now, TimeSpan skew) => new()
    {
        ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
        ValidTypes = [AccessTokenType],
        IssuerSigningKeys = keys,
        TryAllIssuerSigningKeys = false,
        RequireSignedTokens = true,
        ValidateIssuerSigningKey = true,
        ValidateIssuer = false,
        ValidAudience = audience,
        ValidateAudience = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ClockSkew = skew,
        LifetimeValidator = (notBefore, expires, _, _) =>
            notBefore is not null && expires is not null
            && new DateTimeOffset(notBefore.Value, TimeSpan.Zero) - skew <= now
            && now < new DateTimeOffset(expires.Value, TimeSpan.Zero) + skew,
        SaveSigninToken = false,
    };

    private static string? ReadCnfKid(JsonWebToken token)
    {
        if (!token.TryGetPayloadValue<JsonElement>("cnf", out var cnf) || cnf.ValueKind != JsonValueKind.Object
            || !cnf.TryGetProperty("kid", out var kid) || kid.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        var value = kid.GetString()!;
        return value.Length == PopKey.ThumbprintLength && Base64Url.IsAlphabet(value) ? value : null;
    }

    private static string Describe(Exception? ex) => ex switch
    {
        SecurityTokenExpiredException => "token has expired",
        SecurityTokenNotYetValidException => "token is not yet valid",
        SecurityTokenInvalidLifetimeException => "token lifetime is outside the allowed window",
        SecurityTokenInvalidAudienceException => "audience is not this host",
        SecurityTokenSignatureKeyNotFoundException => "signing key is unknown or no longer published",
        SecurityTokenInvalidSignatureException => "signature is invalid",
        SecurityTokenInvalidAlgorithmException => "algorithm is not allowed",
        SecurityTokenInvalidTypeException => "token type is not at+jwt",
        SecurityTokenNoExpirationException => "token has no expiry",
        SecurityTokenMalformedException => "token is malformed",
        null => "token is invalid",
        _ => "token is invalid: " + ex.GetType().Name,
    };

    /// <summary>The <c>kid</c> of a compact JWS's header, or null when it does not parse.</summary>
    private static string? KeyIdOf(string compact)
    {
        try
        {
            return new JsonWebToken(compact).Kid;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
