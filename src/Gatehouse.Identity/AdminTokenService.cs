using System.Security.Cryptography;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Identity;

/// <summary>The result of <see cref="AdminTokenService.ValidateAsync"/>: the signed-in administrator, or why not.</summary>
public sealed record AdminTokenValidation(bool IsValid, string? Error, User? User)
{
    internal static AdminTokenValidation Fail(string error) => new(false, error, null);
}

/// <summary>
/// Access tokens for the admin REST API (audience <see cref="Audience"/>, scope <see cref="ScopeValue"/>): bearer tokens
/// signed with the IdP's own RS256 keys (<see cref="SigningKeyService"/>), the same issuer and the same validation rules
/// as RDP access tokens, without a PoP binding. What the caller may do is decided by RBAC, not by the token.
/// </summary>
public sealed class AdminTokenService
{
    /// <summary>The admin API's resource (the token's <c>aud</c>).</summary>
    public const string Audience = "api://gatehouse-admin";

    /// <summary>The delegated scope in <c>scp</c>.</summary>
    public const string ScopeValue = "admin";

    /// <summary>The scope a client asks for: <c>api://gatehouse-admin/admin</c>.</summary>
    public const string Scope = Audience + "/" + ScopeValue;

    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false, MaximumTokenSizeInBytes = TokenService.MaxTokenLength };
    private readonly GatehouseDbContext db;
    private readonly SigningKeyService keys;
    private readonly TimeProvider time;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public AdminTokenService(GatehouseDbContext db, SigningKeyService keys, TimeProvider time, GatehouseIdentityOptions options)
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

    /// <summary>How long an admin API token lives (the access-token lifetime, at most 1 h).</summary>
    public TimeSpan Lifetime => options.AccessTokenLifetime > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : options.AccessTokenLifetime;

    /// <summary>Issues an admin API token for <paramref name="user"/> (lifetime: <see cref="Lifetime"/>).</summary>
    public Task<string> IssueAsync(User user, IReadOnlyList<string> amr, string clientId, CancellationToken cancellationToken = default) =>
        IssueCoreAsync(user, amr, clientId, null, cancellationToken);

    /// <summary>
    /// Issues an admin API token under a grant (the device-code sign-in of <c>gatehouse login</c> and its refreshes): its
    /// <c>jti</c> is recorded with the grant, so revoking the grant (logout, a reused refresh token) revokes the token too.
    /// </summary>
    public Task<string> IssueForGrantAsync(User user, IReadOnlyList<string> amr, string clientId, Guid grantId, CancellationToken cancellationToken = default) =>
        IssueCoreAsync(user, amr, clientId, grantId, cancellationToken);

    /// <summary>
    /// Revokes one admin API token (RFC 7009): when it is a token this IdP signed for the admin API and has not expired,
    /// its <c>jti</c> is listed until it expires, and <see cref="ValidateAsync"/> refuses it from then on. Returns false
    /// when there was nothing to revoke (not ours, malformed, or expired).
    /// </summary>
    public async Task<bool> RevokeAsync(string? jwt, CancellationToken cancellationToken = default)
    {
        var (token, _) = await ReadAsync(jwt, cancellationToken).ConfigureAwait(false);
        if (token is null || string.IsNullOrEmpty(token.Id) || token.Id.Length > 64)
        {
            return false;
        }

        var jti = token.Id;
        if (await db.RevokedTokens.AnyAsync(r => r.Jti == jti, cancellationToken).ConfigureAwait(false))
        {
            return true;
        }

        db.RevokedTokens.Add(new RevokedToken { Jti = jti, ExpiresAt = new DateTimeOffset(token.ValidTo, TimeSpan.Zero) + options.ClockSkew });
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            // Revoked concurrently: the row exists, which is what matters.
        }
        finally
        {
            db.ChangeTracker.Clear();
        }

        return true;
    }

    private async Task<string> IssueCoreAsync(User user, IReadOnlyList<string> amr, string clientId, Guid? grantId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(amr);
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        var now = time.GetUtcNow();
        var jti = Base64Url.Encode(RandomNumberGenerator.GetBytes(16));
        var credentials = await keys.GetActiveAsync(cancellationToken).ConfigureAwait(false);
        var descriptor = new SecurityTokenDescriptor
        {
            TokenType = TokenService.AccessTokenType,
            Issuer = options.IssuerFor(user.TenantId),
            Audience = Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + Lifetime).UtcDateTime,
            SigningCredentials = credentials,
            Claims = new Dictionary<string, object>
            {
                ["sub"] = OidcClaims.PairwiseSubject(user.TenantId, user.Id, clientId),
                ["tid"] = user.TenantId.ToString("D"),
                ["oid"] = user.Id.ToString("D"),
                ["upn"] = user.UserPrincipalName,
                ["scp"] = ScopeValue,
                ["amr"] = amr.ToArray(),
                ["appid"] = clientId,
                ["jti"] = jti,
                ["ver"] = "2.0",
            },
        };
        if (grantId is { } grant)
        {
            db.IssuedTokens.Add(new IssuedToken { Jti = jti, GrantId = grant, ExpiresAt = now + Lifetime + options.ClockSkew });
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            db.ChangeTracker.Clear();
        }

        return Handler.CreateToken(descriptor);
    }

    /// <summary>
    /// Validates a bearer token: RS256 by a published key, <c>typ</c> at+jwt, issuer pinned to the token's tenant,
    /// audience <see cref="Audience"/>, lifetime with skew, <c>scp</c>, not revoked (neither its <c>jti</c> nor the grant it
    /// was issued under); the user exists, belongs to that
    /// tenant and is enabled.
    /// </summary>
    public async Task<AdminTokenValidation> ValidateAsync(string? jwt, CancellationToken cancellationToken = default)
    {
        var (token, error) = await ReadAsync(jwt, cancellationToken).ConfigureAwait(false);
        if (token is null)
        {
            return AdminTokenValidation.Fail(error!);
        }

        if (!token.TryGetPayloadValue<string>("tid", out var tidText) || !Guid.TryParseExact(tidText, "D", out var tid)
            || !string.Equals(token.Issuer, options.IssuerFor(tid), StringComparison.Ordinal))
        {
            return AdminTokenValidation.Fail("issuer does not match the tenant");
        }

        if (!token.TryGetPayloadValue<string>("scp", out var scp) || !scp.Split(' ').Contains(ScopeValue, StringComparer.Ordinal))
        {
            return AdminTokenValidation.Fail($"scp does not include {ScopeValue}");
        }

        if (!token.TryGetPayloadValue<string>("oid", out var oidText) || !Guid.TryParseExact(oidText, "D", out var oid))
        {
            return AdminTokenValidation.Fail("oid is missing or not a GUID");
        }

        var jti = token.Id;
        if (string.IsNullOrEmpty(jti) || await db.RevokedTokens.AnyAsync(r => r.Jti == jti, cancellationToken).ConfigureAwait(false))
        {
            return AdminTokenValidation.Fail("token has been revoked");
        }

        // The grant as well as the jti: a token whose jti was recorded just after its grant was revoked (a refresh racing
        // a sign-out or a password reset) is not in the revoked list, but its grant is.
        if (await db.IssuedTokens.AnyAsync(t => t.Jti == jti && db.Grants.Any(g => g.Id == t.GrantId && g.RevokedAt != null), cancellationToken).ConfigureAwait(false))
        {
            return AdminTokenValidation.Fail("token has been revoked (its sign-in was revoked)");
        }

        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == oid && u.TenantId == tid, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return AdminTokenValidation.Fail("the user no longer exists");
        }

        return user.Enabled ? new AdminTokenValidation(true, null, user) : AdminTokenValidation.Fail("the user is disabled");
    }

    /// <summary>The token when its signature, type, audience and lifetime are valid; otherwise why not.</summary>
    private async Task<(JsonWebToken? Token, string? Error)> ReadAsync(string? jwt, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(jwt))
        {
            return (null, "token is missing");
        }

        if (jwt.Length > TokenService.MaxTokenLength)
        {
            return (null, "token is too large");
        }

        var now = time.GetUtcNow();
        var parameters = TokenService.AccessTokenParameters(
            await keys.GetPublishedKeysAsync(now, cancellationToken).ConfigureAwait(false), Audience, now, options.ClockSkew);

        TokenValidationResult result;
        try
        {
            result = await Handler.ValidateTokenAsync(jwt, parameters).ConfigureAwait(false);
        }
        catch (ArgumentException)
        {
            return (null, "token is malformed");
        }

        if (!result.IsValid || result.SecurityToken is not JsonWebToken token)
        {
            return (null, result.Exception switch
            {
                SecurityTokenExpiredException => "token has expired",
                SecurityTokenInvalidAudienceException => $"token is not for {Audience}",
                SecurityTokenInvalidSignatureException or SecurityTokenSignatureKeyNotFoundException => "signature is invalid or by an unknown key",
                _ => "token is invalid",
            });
        }

        return (token, null);
    }
}
