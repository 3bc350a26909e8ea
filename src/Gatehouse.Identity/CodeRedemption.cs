using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Storage;
using Npgsql;

namespace Gatehouse.Identity;

/// <summary>What the token endpoint's one-statement redemption (<see cref="CodeRedemption.TryRedeemAsync"/>) is asked to do.</summary>
public sealed record CodeRedemptionRequest
{
    /// <summary>The code as the client sent it (CR and LF already removed).</summary>
    public required string Code { get; init; }

    /// <summary>The client id of the request.</summary>
    public required string ClientId { get; init; }

    /// <summary>The redirect URI of the request (matched exactly).</summary>
    public required string RedirectUri { get; init; }

    /// <summary>The PKCE <c>code_verifier</c> of the request, or null when it sent none.</summary>
    public string? CodeVerifier { get; init; }

    /// <summary>The time of the redemption (the code's <c>RedeemedAt</c>, the tokens' issue time).</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>The <c>jti</c> of the access token that will be signed when the statement returns.</summary>
    public required string Jti { get; init; }

    /// <summary>The access token's expiry (its issued-token record's).</summary>
    public required DateTimeOffset AccessTokenExpiresAt { get; init; }

    /// <summary>The new refresh token (only its hash is stored).</summary>
    public required string RefreshToken { get; init; }
}

/// <summary>What <see cref="CodeRedemption.TryRedeemAsync"/> consumed and read.</summary>
public sealed record CodeRedemptionResult
{
    /// <summary>The consumed code's record.</summary>
    public required AuthorizationCode Code { get; init; }

    /// <summary>When the code's grant was created.</summary>
    public DateTimeOffset? GrantCreatedAt { get; init; }

    /// <summary>The code's user (null when it is gone).</summary>
    public User? User { get; init; }

    /// <summary>The code's host (null when it is gone or the code names none).</summary>
    public Host? Host { get; init; }

    /// <summary>
    /// True when the same statement inserted the access token's issued-token record and the refresh token: the user is
    /// enabled and the host exists in the user's tenant. When false, nothing but the code's consumption was written.
    /// </summary>
    public bool TokensRecorded { get; init; }
}

/// <summary>
/// The RDP client's code redemption on PostgreSQL in one round trip, on a connection of the store's pooled
/// <see cref="NpgsqlDataSource"/> (<see cref="StoreDataSource"/>), with no <see cref="GatehouseDbContext"/>: one
/// statement consumes the code only when every check of <see cref="AuthorizationCodeService.RedeemAsync"/> passes (not
/// redeemed, not expired, this client, this redirect URI, the PKCE challenge computed from the verifier or no challenge,
/// grant not revoked), inserts the access token's issued-token record and the refresh token (data-modifying CTEs fed by
/// the consuming <c>UPDATE … RETURNING</c>: the <c>jti</c> and the refresh token are random values chosen before it
/// runs), and returns the code with its grant's creation time, its user and its host, whose claims the access token
/// carries (signed after the statement returns). Null when it consumed nothing: the caller then takes the general path,
/// which reads the code and says why (a reused code still revokes its grant there). The single use rests on the
/// conditional <c>UPDATE</c> (<c>"RedeemedAt" IS NULL</c>) as before: of two racers, one updates the row and inserts its
/// tokens, the other updates nothing and inserts nothing.
/// </summary>
public sealed class CodeRedemption
{
    private readonly StoreDataSource store;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service (a singleton).</summary>
    public CodeRedemption(StoreDataSource store, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        this.store = store;
        this.options = options;
    }

    /// <summary>True when the store is PostgreSQL (the only store this path runs on).</summary>
    public bool IsAvailable => store.DataSource is not null;

    /// <summary>The store's connection string as its contexts know it (the signing key cache's key), or null.</summary>
    public string? StoreKey => store.ConnectionString;

    /// <summary>
    /// Consumes the code and records the tokens in one statement, or returns null when it consumed nothing (or when the
    /// request cannot be redeemed here: a malformed code or verifier, which the general path reports).
    /// </summary>
    public async Task<CodeRedemptionResult?> TryRedeemAsync(CodeRedemptionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (store.DataSource is not { } dataSource)
        {
            return null;
        }

        // The general path's own checks of the input: anything it would refuse goes to it, so it answers as before.
        var code = request.Code.Trim();
        if (code.Length is 0 or > 128 || !Base64Url.IsAlphabet(code))
        {
            return null;
        }

        string? challenge = null;
        if (request.CodeVerifier is { } verifier)
        {
            if (!IsVerifier(verifier))
            {
                return null;
            }

            // RFC 7636 §4.6 S256, computed here so that the statement compares it with the stored challenge. The verifier
            // and the challenge are no secret once the code is spent; equality in SQL needs no constant time.
            challenge = Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        }

        var now = request.Now.ToUniversalTime();
        var refreshExpiresAt = now + options.RefreshTokenLifetime;
        var started = Stopwatch.GetTimestamp();
        var outcome = "error";
        try
        {
            await using var command = dataSource.CreateCommand(challenge is null ? StatementWithoutChallenge : StatementWithChallenge);
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("now", now));
            command.Parameters.Add(new NpgsqlParameter<string>("hash", AuthorizationCodeService.HashSecret(code)));
            command.Parameters.Add(new NpgsqlParameter<string>("client", request.ClientId.ToLowerInvariant()));
            command.Parameters.Add(new NpgsqlParameter<string>("redirect", request.RedirectUri));
            if (challenge is not null)
            {
                command.Parameters.Add(new NpgsqlParameter<string>("challenge", challenge));
            }

            command.Parameters.Add(new NpgsqlParameter<string>("jti", request.Jti));
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("jexp", request.AccessTokenExpiresAt.ToUniversalTime()));
            command.Parameters.Add(new NpgsqlParameter<string>("rhash", AuthorizationCodeService.HashSecret(request.RefreshToken)));
            command.Parameters.Add(new NpgsqlParameter<DateTimeOffset>("rexp", refreshExpiresAt));
            command.Parameters.Add(new NpgsqlParameter<TimeSpan>("rmax", options.RefreshTokenMaxLifetime));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            outcome = "ok";
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            var (redeemed, grantCreatedAt, user, host) = AuthorizationCodeService.ReadRedeemed(reader, request.Now);
            return new CodeRedemptionResult
            {
                Code = redeemed,
                GrantCreatedAt = grantCreatedAt,
                User = user,
                Host = host,
                TokensRecorded = reader.GetInt64(42) == 1,
            };
        }
        finally
        {
            StoreTelemetry.Duration.Record(
                Stopwatch.GetElapsedTime(started).TotalSeconds,
                new KeyValuePair<string, object?>("db.system", "postgresql"),
                new KeyValuePair<string, object?>("gatehouse.db.command", "reader"),
                new KeyValuePair<string, object?>("gatehouse.db.outcome", outcome));
        }
    }

    /// <summary>RFC 7636 §4.1: 43–128 characters of <c>[A-Za-z0-9-._~]</c> (as <see cref="AuthorizationCodeService.VerifyPkce"/>).</summary>
    private static bool IsVerifier(string verifier)
    {
        if (verifier.Length is < 43 or > 128)
        {
            return false;
        }

        foreach (var c in verifier)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '.' or '_' or '~'))
            {
                return false;
            }
        }

        return true;
    }

    private static readonly string StatementWithoutChallenge = Statement("a.\"CodeChallenge\" IS NULL");

    private static readonly string StatementWithChallenge = Statement("a.\"CodeChallenge\" = @challenge AND a.\"CodeChallengeMethod\" = 'S256'");

    /// <summary>
    /// The statement: the code's conditional <c>UPDATE</c> (the checks of <see cref="AuthorizationCodeService.RedeemAsync"/>)
    /// with the PKCE condition given, two inserts fed by it (only for an enabled user and a host of the user's tenant, the general
    /// path's conditions for issuing; the refresh token's expiry capped at the grant's creation plus the maximum lifetime,
    /// or born expired without a grant, as <see cref="RefreshTokenService.IssueAsync(Guid, Guid, string, string, DateTimeOffset?, CancellationToken)"/>),
    /// and the 42 columns <see cref="AuthorizationCodeService.ReadRedeemed"/> reads plus the number of refresh tokens
    /// inserted (0 or 1). PostgreSQL runs
    /// every data-modifying CTE once whether or not the query reads it, all in the statement's one transaction.
    /// </summary>
    private static string Statement(string pkce) => string.Create(CultureInfo.InvariantCulture, $$"""
        WITH c AS (
            UPDATE "AuthorizationCodes" AS a SET "RedeemedAt" = @now
            WHERE a."CodeHash" = @hash AND a."RedeemedAt" IS NULL AND a."ExpiresAt" > @now
              AND lower(a."ClientId") = @client AND a."RedirectUri" = @redirect AND {{pkce}}
              AND NOT EXISTS (SELECT 1 FROM "Grants" AS r WHERE r."Id" = a."GrantId" AND r."RevokedAt" IS NOT NULL)
            RETURNING a."CodeHash", a."ClientId", a."RedirectUri", a."UserId", a."Scope", a."HostId", a."Amr", a."AuthTime",
                a."CreatedAt", a."ExpiresAt", a."GrantId", a."TraceParent"),
        ok AS (
            SELECT c."GrantId", c."UserId", c."ClientId", c."Scope"
            FROM c
            JOIN "Users" AS u ON u."Id" = c."UserId" AND u."Enabled"
            JOIN "Hosts" AS h ON h."Id" = c."HostId" AND h."TenantId" = u."TenantId"),
        t AS (
            INSERT INTO "IssuedTokens" ("Jti", "ExpiresAt", "GrantId")
            SELECT @jti, @jexp, ok."GrantId" FROM ok
            RETURNING 1),
        f AS (
            INSERT INTO "RefreshTokens" ("TokenHash", "GrantId", "UserId", "ClientId", "Scope", "CreatedAt", "ExpiresAt", "ConsumedAt", "RevokedAt")
            SELECT @rhash, ok."GrantId", ok."UserId", ok."ClientId", ok."Scope", @now,
                LEAST(@rexp, COALESCE((SELECT g."CreatedAt" + @rmax FROM "Grants" AS g WHERE g."Id" = ok."GrantId"), @now)), NULL, NULL
            FROM ok
            RETURNING 1)
        SELECT c."CodeHash", c."ClientId", c."RedirectUri", c."UserId", c."Scope", c."HostId", c."Amr", c."AuthTime",
            c."CreatedAt", c."ExpiresAt", c."GrantId", c."TraceParent", g."CreatedAt",
            u."Id", u."TenantId", u."UserPrincipalName", u."NormalizedUpn", u."DisplayName", u."Enabled", u."PasswordHash",
            u."MustChangePassword", u."PasswordChangedAt", u."NtHashProtected", u."TotpSecretProtected", u."TotpConfirmedAt",
            u."TotpLastStep", u."CreatedAt",
            h."Id", h."TenantId", h."Name", h."HostGroupId", h."BackendHost", h."BackendPort", h."BackendSecurity",
            h."AdminAccountName", h."AdminSecretProtected", h."UserAccountName", h."UserSecretProtected", h."CertificatePin",
            h."CertificatePinnedAt", h."CertificatePinnedBy", h."CreatedAt",
            (SELECT count(*) FROM f)
        FROM c
        LEFT JOIN "Grants" AS g ON g."Id" = c."GrantId"
        LEFT JOIN "Users" AS u ON u."Id" = c."UserId"
        LEFT JOIN "Hosts" AS h ON h."Id" = c."HostId"
        """);
}
