using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Gatehouse.Identity;

/// <summary>What an authorization code is issued for.</summary>
public sealed record AuthorizationCodeRequest
{
    /// <summary>Client id.</summary>
    public required string ClientId { get; init; }

    /// <summary>Redirect URI (matched exactly at redemption).</summary>
    public required string RedirectUri { get; init; }

    /// <summary>User.</summary>
    public required Guid UserId { get; init; }

    /// <summary>Scope.</summary>
    public required string Scope { get; init; }

    /// <summary>Host named by the scope.</summary>
    public Guid? HostId { get; init; }

    /// <summary>PKCE challenge (required except for <see cref="RdpClient.ClientId"/>).</summary>
    public string? CodeChallenge { get; init; }

    /// <summary>PKCE method: only <c>S256</c>.</summary>
    public string? CodeChallengeMethod { get; init; }

    /// <summary>Authentication methods.</summary>
    public required IReadOnlyList<string> Amr { get; init; }

    /// <summary>When the user authenticated.</summary>
    public required DateTimeOffset AuthTime { get; init; }
}

/// <summary>Outcome of a redemption (<c>Error</c> is an OAuth error code, <c>ErrorDescription</c> starts with the AADSTS code).</summary>
public sealed record RedeemResult
{
    /// <summary>True when the code was redeemed.</summary>
    public bool Success { get; init; }

    /// <summary>OAuth error code (<c>invalid_grant</c>, <c>invalid_request</c>).</summary>
    public string? Error { get; init; }

    /// <summary>Entra-style description, e.g. <c>AADSTS54005: …</c>.</summary>
    public string? ErrorDescription { get; init; }

    /// <summary>The AADSTS number.</summary>
    public int ErrorCode { get; init; }

    /// <summary>The redeemed code's record (grant, user, scope, host, amr, auth time).</summary>
    public AuthorizationCode? Code { get; init; }

    /// <summary>When the code's grant was created (what caps its refresh tokens' lifetime), read with the code.</summary>
    public DateTimeOffset? GrantCreatedAt { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Success ? $"RedeemResult success grant {Code?.GrantId}" : $"RedeemResult {Error}: {ErrorDescription}";

    internal static RedeemResult Fail(string error, int code, string description) =>
        new() { Error = error, ErrorCode = code, ErrorDescription = string.Create(CultureInfo.InvariantCulture, $"AADSTS{code}: {description}") };
}

/// <summary>Authorization codes: ≥ 128 bits, stored as SHA-256, ≤ 60 s, single use; reuse revokes the grant.</summary>
public sealed class AuthorizationCodeService
{
    private readonly GatehouseDbContext db;
    private readonly TimeProvider time;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public AuthorizationCodeService(GatehouseDbContext db, TimeProvider time, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        this.time = time;
        this.options = options;
    }

    /// <summary>True when <paramref name="clientId"/> must use PKCE (every client except the pre-registered RDP client).</summary>
    public static bool RequiresPkce(string clientId) => !string.Equals(clientId, RdpClient.ClientId, StringComparison.OrdinalIgnoreCase);

    /// <summary>SHA-256 hex (lower-case) of a code or token.</summary>
    public static string HashSecret(string secret)
    {
        ArgumentNullException.ThrowIfNull(secret);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
    }

    /// <summary>Creates a grant and a code for it; returns the code (43 characters of <c>[A-Za-z0-9_-]</c>).</summary>
    public async Task<string> IssueAsync(AuthorizationCodeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.CodeChallenge is not null)
        {
            if (!string.Equals(request.CodeChallengeMethod, "S256", StringComparison.Ordinal))
            {
                throw new ArgumentException("only the S256 code challenge method is supported", nameof(request));
            }

            if (request.CodeChallenge.Length != 43 || !Base64Url.IsAlphabet(request.CodeChallenge))
            {
                throw new ArgumentException("code_challenge must be a base64url SHA-256 value", nameof(request));
            }
        }
        else if (RequiresPkce(request.ClientId))
        {
            throw new ArgumentException("PKCE (S256) is required for this client", nameof(request));
        }

        var now = time.GetUtcNow();
        var lifetime = options.AuthorizationCodeLifetime > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : options.AuthorizationCodeLifetime;
        var code = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var grant = new Grant { Id = Guid.NewGuid(), UserId = request.UserId, CreatedAt = now };
        db.Grants.Add(grant);
        db.AuthorizationCodes.Add(new AuthorizationCode
        {
            CodeHash = HashSecret(code),
            ClientId = request.ClientId,
            RedirectUri = request.RedirectUri,
            UserId = request.UserId,
            Scope = request.Scope,
            HostId = request.HostId,
            CodeChallenge = request.CodeChallenge,
            CodeChallengeMethod = request.CodeChallenge is null ? null : "S256",
            Amr = string.Join(' ', request.Amr),
            AuthTime = request.AuthTime,
            CreatedAt = now,
            ExpiresAt = now + lifetime,
            GrantId = grant.Id,
            TraceParent = Gatehouse.Gateway.Diagnostics.SignInTraces.CurrentTraceParent(),
        });
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        db.ChangeTracker.Clear();
        Gatehouse.Gateway.Diagnostics.SignInTraces.Granted(grant.Id);
        return code;
    }

    /// <summary>
    /// Redeems <paramref name="code"/> once (conditional update), checking expiry, client, exact redirect URI and PKCE.
    /// A second redemption is refused and revokes the grant (its refresh tokens and access tokens).
    /// </summary>
    public async Task<RedeemResult> RedeemAsync(string code, string clientId, string redirectUri, string? codeVerifier, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentNullException.ThrowIfNull(redirectUri);
        var cleaned = (code ?? "").Replace("\r", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal).Trim();
        if (cleaned.Length is 0 or > 128 || !Base64Url.IsAlphabet(cleaned))
        {
            return RedeemResult.Fail("invalid_grant", 9002313, "Invalid request. The authorization code is malformed.");
        }

        // On PostgreSQL the token endpoint tries CodeRedemption's one statement first; this is the general path (and
        // the one that says why a code is refused).
        var hash = HashSecret(cleaned);
        // The code and its grant's state in one round trip.
        var found = await db.AuthorizationCodes.AsNoTracking().Where(c => c.CodeHash == hash)
            .Select(c => new
            {
                Code = c,
                Grant = db.Grants.Where(g => g.Id == c.GrantId).Select(g => new { g.CreatedAt, Revoked = g.RevokedAt != null }).FirstOrDefault(),
            })
            .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        var record = found?.Code;
        if (record is null)
        {
            return RedeemResult.Fail("invalid_grant", 70000, "The provided authorization code is invalid.");
        }

        if (record.RedeemedAt is not null)
        {
            await GrantRevocation.RevokeAsync(db, record.GrantId, "authorization code reused", now, cancellationToken).ConfigureAwait(false);
            return RedeemResult.Fail("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
        }

        if (record.ExpiresAt <= now)
        {
            return RedeemResult.Fail("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.");
        }

        if (!string.Equals(record.ClientId, clientId, StringComparison.OrdinalIgnoreCase))
        {
            return RedeemResult.Fail("invalid_grant", 70000, "The authorization code was issued to another client.");
        }

        if (!string.Equals(record.RedirectUri, redirectUri, StringComparison.Ordinal))
        {
            return RedeemResult.Fail("invalid_grant", 500112, "The reply address does not match the reply address provided when requesting the authorization code.");
        }

        if (record.CodeChallenge is null)
        {
            if (codeVerifier is not null)
            {
                return RedeemResult.Fail("invalid_grant", 501481, "The code_verifier does not match the code_challenge supplied in the authorization request.");
            }

            if (RequiresPkce(record.ClientId))
            {
                return RedeemResult.Fail("invalid_grant", 501491, "The code_challenge is required for this client.");
            }
        }
        else if (codeVerifier is null || !VerifyPkce(record.CodeChallenge, codeVerifier))
        {
            return RedeemResult.Fail("invalid_grant", 501481, "The code_verifier does not match the code_challenge supplied in the authorization request.");
        }

        if (found!.Grant is { Revoked: true })
        {
            return RedeemResult.Fail("invalid_grant", 70000, "The grant has been revoked.");
        }

        var updated = await db.AuthorizationCodes
            .Where(c => c.CodeHash == hash && c.RedeemedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.RedeemedAt, now), cancellationToken).ConfigureAwait(false);
        if (updated != 1)
        {
            await GrantRevocation.RevokeAsync(db, record.GrantId, "authorization code reused", now, cancellationToken).ConfigureAwait(false);
            return RedeemResult.Fail("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
        }

        record.RedeemedAt = now;
        return new RedeemResult { Success = true, Code = record, GrantCreatedAt = found.Grant?.CreatedAt };
    }

    /// <summary>True when the store is PostgreSQL.</summary>
    internal static bool IsPostgres(GatehouseDbContext db) => db is PostgresGatehouseDbContext;

    /// <summary>
    /// Reads the first 42 columns of <see cref="CodeRedemption"/>'s row: the consumed code, its grant's creation time,
    /// its user and its host.
    /// </summary>
    internal static (AuthorizationCode Code, DateTimeOffset? GrantCreatedAt, User? User, Host? Host) ReadRedeemed(System.Data.Common.DbDataReader reader, DateTimeOffset now)
    {
        var code = new AuthorizationCode
        {
            CodeHash = reader.GetString(0),
            ClientId = reader.GetString(1),
            RedirectUri = reader.GetString(2),
            UserId = reader.GetGuid(3),
            Scope = reader.GetString(4),
            HostId = reader.IsDBNull(5) ? null : reader.GetGuid(5),
            Amr = reader.GetString(6),
            AuthTime = reader.GetFieldValue<DateTimeOffset>(7),
            CreatedAt = reader.GetFieldValue<DateTimeOffset>(8),
            ExpiresAt = reader.GetFieldValue<DateTimeOffset>(9),
            GrantId = reader.GetGuid(10),
            TraceParent = reader.IsDBNull(11) ? null : reader.GetString(11),
            RedeemedAt = now,
        };
        DateTimeOffset? grantCreatedAt = reader.IsDBNull(12) ? null : reader.GetFieldValue<DateTimeOffset>(12);
        var user = reader.IsDBNull(13) ? null : new User
        {
            Id = reader.GetGuid(13),
            TenantId = reader.GetGuid(14),
            UserPrincipalName = reader.GetString(15),
            NormalizedUpn = reader.GetString(16),
            DisplayName = reader.GetString(17),
            Enabled = reader.GetBoolean(18),
            PasswordHash = reader.GetString(19),
            MustChangePassword = reader.GetBoolean(20),
            PasswordChangedAt = reader.GetFieldValue<DateTimeOffset>(21),
            NtHashProtected = reader.IsDBNull(22) ? null : reader.GetFieldValue<byte[]>(22),
            TotpSecretProtected = reader.IsDBNull(23) ? null : reader.GetString(23),
            TotpConfirmedAt = reader.IsDBNull(24) ? null : reader.GetFieldValue<DateTimeOffset>(24),
            TotpLastStep = reader.GetInt64(25),
            CreatedAt = reader.GetFieldValue<DateTimeOffset>(26),
        };
        var host = reader.IsDBNull(27) ? null : new Host
        {
            Id = reader.GetGuid(27),
            TenantId = reader.GetGuid(28),
            Name = reader.GetString(29),
            HostGroupId = reader.IsDBNull(30) ? null : reader.GetGuid(30),
            BackendHost = reader.GetString(31),
            BackendPort = reader.GetInt32(32),
            BackendSecurity = Enum.Parse<BackendSecurity>(reader.GetString(33)),
            AdminAccountName = reader.IsDBNull(34) ? null : reader.GetString(34),
            AdminSecretProtected = reader.IsDBNull(35) ? null : reader.GetString(35),
            UserAccountName = reader.IsDBNull(36) ? null : reader.GetString(36),
            UserSecretProtected = reader.IsDBNull(37) ? null : reader.GetString(37),
            CertificatePin = reader.IsDBNull(38) ? null : reader.GetString(38),
            CertificatePinnedAt = reader.IsDBNull(39) ? null : reader.GetFieldValue<DateTimeOffset>(39),
            CertificatePinnedBy = reader.IsDBNull(40) ? null : reader.GetString(40),
            CreatedAt = reader.GetFieldValue<DateTimeOffset>(41),
        };
        return (code, grantCreatedAt, user, host);
    }

    /// <summary>
    /// Deletes codes, issued-token records and revoked-token records whose expiry has passed, and refresh tokens expired
    /// for a day; returns the number of rows removed.
    /// </summary>
    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var removed = await db.AuthorizationCodes.Where(c => c.ExpiresAt <= now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        removed += await db.IssuedTokens.Where(t => t.ExpiresAt <= now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        removed += await db.RevokedTokens.Where(t => t.ExpiresAt <= now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        var refreshCutoff = now - TimeSpan.FromDays(1);
        removed += await db.RefreshTokens.Where(t => t.ExpiresAt <= refreshCutoff).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return removed;
    }

    /// <summary>RFC 7636 S256: base64url(SHA-256(ASCII(verifier))) equals the challenge; the verifier is 43–128 unreserved characters.</summary>
    public static bool VerifyPkce(string challenge, string verifier)
    {
        ArgumentNullException.ThrowIfNull(challenge);
        ArgumentNullException.ThrowIfNull(verifier);
        if (verifier.Length is < 43 or > 128 || !verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~'))
        {
            return false;
        }

        var computed = Encoding.ASCII.GetBytes(Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
        return CryptographicOperations.FixedTimeEquals(computed, Encoding.ASCII.GetBytes(challenge));
    }
}

/// <summary>Revokes a grant: its refresh tokens die and its access tokens are listed as revoked.</summary>
internal static class GrantRevocation
{
    public static async Task RevokeAsync(GatehouseDbContext db, Guid grantId, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await db.Grants.Where(g => g.Id == grantId && g.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(g => g.RevokedAt, now).SetProperty(g => g.RevokedReason, reason), cancellationToken).ConfigureAwait(false);
        await db.RefreshTokens.Where(r => r.GrantId == grantId && r.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.RevokedAt, now), cancellationToken).ConfigureAwait(false);
        await ListIssuedAsync(db, db.IssuedTokens.Where(t => t.GrantId == grantId), now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Revokes every grant of <paramref name="userId"/> (a password set or reset, an MFA reset, a disabled account): their
    /// refresh tokens stop working and the access tokens recorded under them are listed as revoked.
    /// </summary>
    public static async Task RevokeUserAsync(GatehouseDbContext db, Guid userId, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await db.Grants.Where(g => g.UserId == userId && g.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(g => g.RevokedAt, now).SetProperty(g => g.RevokedReason, reason), cancellationToken).ConfigureAwait(false);
        await db.RefreshTokens.Where(r => r.UserId == userId && r.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.RevokedAt, now), cancellationToken).ConfigureAwait(false);
        await ListIssuedAsync(db, db.IssuedTokens.Where(t => db.Grants.Any(g => g.Id == t.GrantId && g.UserId == userId)), now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Lists the unexpired access tokens of <paramref name="issuedTokens"/> as revoked (those not listed yet).</summary>
    private static async Task ListIssuedAsync(GatehouseDbContext db, IQueryable<IssuedToken> issuedTokens, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var issued = await issuedTokens.AsNoTracking().Where(t => t.ExpiresAt > now).ToListAsync(cancellationToken).ConfigureAwait(false);
        if (issued.Count == 0)
        {
            return;
        }

        var jtis = issued.Select(i => i.Jti).ToList();
        var already = await db.RevokedTokens.AsNoTracking().Where(r => jtis.Contains(r.Jti))
            .Select(r => r.Jti).ToListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var token in issued.Where(i => !already.Contains(i.Jti)))
        {
            db.RevokedTokens.Add(new RevokedToken { Jti = token.Jti, ExpiresAt = token.ExpiresAt });
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            // Another node revoked the same tokens concurrently: the rows exist, which is what matters.
        }
        finally
        {
            db.ChangeTracker.Clear();
        }
    }
}
