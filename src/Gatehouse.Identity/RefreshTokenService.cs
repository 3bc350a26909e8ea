using System.Security.Cryptography;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Gatehouse.Identity;

/// <summary>Outcome of <see cref="RefreshTokenService.RotateAsync"/>.</summary>
public sealed record RefreshResult
{
    /// <summary>True when rotated.</summary>
    public bool Success { get; init; }

    /// <summary>OAuth error code.</summary>
    public string? Error { get; init; }

    /// <summary>Entra-style description.</summary>
    public string? ErrorDescription { get; init; }

    /// <summary>The new refresh token.</summary>
    public string? NewToken { get; init; }

    /// <summary>The consumed token's record (grant, user, client, scope).</summary>
    public RefreshToken? Previous { get; init; }

    /// <summary>When the grant was created: the interactive sign-in the refresh token descends from.</summary>
    public DateTimeOffset SignedInAt { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Success ? "RefreshResult success" : $"RefreshResult {Error}: {ErrorDescription}";

    internal static RefreshResult Fail(string description) => new() { Error = "invalid_grant", ErrorDescription = description };
}

/// <summary>Refresh tokens: stored hashed, rotated on every use; presenting a rotated token again revokes the grant.</summary>
public sealed class RefreshTokenService
{
    private readonly GatehouseDbContext db;
    private readonly TimeProvider time;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public RefreshTokenService(GatehouseDbContext db, TimeProvider time, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        this.time = time;
        this.options = options;
    }

    /// <summary>
    /// Issues a refresh token for a grant. It expires after <see cref="GatehouseIdentityOptions.RefreshTokenLifetime"/>,
    /// but never later than the grant's creation plus <see cref="GatehouseIdentityOptions.RefreshTokenMaxLifetime"/>
    /// (rotation does not extend a sign-in forever); for a grant that does not exist, it is born expired.
    /// </summary>
    public Task<string> IssueAsync(Guid grantId, Guid userId, string clientId, string scope, CancellationToken cancellationToken = default) =>
        IssueAsync(grantId, userId, clientId, scope, grantCreatedAt: null, cancellationToken);

    /// <summary>
    /// As <see cref="IssueAsync(Guid, Guid, string, string, CancellationToken)"/>, with the grant's creation time already
    /// known (read with the code: <see cref="RedeemResult.GrantCreatedAt"/>), which saves reading the grant again.
    /// </summary>
    public async Task<string> IssueAsync(Guid grantId, Guid userId, string clientId, string scope, DateTimeOffset? grantCreatedAt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentNullException.ThrowIfNull(scope);
        var now = time.GetUtcNow();
        grantCreatedAt ??= await db.Grants.AsNoTracking().Where(g => g.Id == grantId).Select(g => (DateTimeOffset?)g.CreatedAt)
            .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        var expiresAt = now + options.RefreshTokenLifetime;
        var cap = grantCreatedAt is { } created ? created + options.RefreshTokenMaxLifetime : now;
        var token = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var row = new RefreshToken
        {
            TokenHash = AuthorizationCodeService.HashSecret(token),
            GrantId = grantId,
            UserId = userId,
            ClientId = clientId,
            Scope = scope,
            CreatedAt = now,
            ExpiresAt = expiresAt < cap ? expiresAt : cap,
        };
        if (AuthorizationCodeService.IsPostgres(db) && PendingIssuedTokensOnly() is { } issued)
        {
            await InsertAsync(issued, row, cancellationToken).ConfigureAwait(false);
            db.ChangeTracker.Clear();
            return token;
        }

        db.RefreshTokens.Add(row);

        // With a deferred issued-token record (RdpTokenRequest.DeferSave) this save holds two inserts. On PostgreSQL they
        // go as one batch without a transaction of EF's own: one round trip (PostgreSQL runs a batch, up to its Sync, as
        // one implicit transaction, so both rows commit or neither). SQLite keeps EF's transaction.
        var autoTransactions = db.Database.AutoTransactionBehavior;
        if (string.Equals(db.Database.ProviderName, "Npgsql.EntityFrameworkCore.PostgreSQL", StringComparison.Ordinal))
        {
            db.Database.AutoTransactionBehavior = AutoTransactionBehavior.Never;
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            db.Database.AutoTransactionBehavior = autoTransactions;
        }

        db.ChangeTracker.Clear();
        return token;
    }

    /// <summary>
    /// The issued-token records the context holds when they are all it would save (<see cref="RdpTokenRequest.DeferSave"/>:
    /// the token endpoint's redemption), else null (anything else pending goes through EF Core's save).
    /// </summary>
    private List<IssuedToken>? PendingIssuedTokensOnly()
    {
        List<IssuedToken> issued = [];
        foreach (var entry in db.ChangeTracker.Entries())
        {
            if (entry.State == EntityState.Unchanged)
            {
                continue;
            }

            if (entry.State != EntityState.Added || entry.Entity is not IssuedToken record)
            {
                return null;
            }

            issued.Add(record);
        }

        return issued;
    }

    /// <summary>
    /// PostgreSQL: the issued-token records and the refresh token as one command of several statements, without EF
    /// Core's save pipeline: one round trip, and PostgreSQL runs the statements of one command (up to its Sync) as one
    /// implicit transaction, so every row commits or none.
    /// </summary>
    private async Task InsertAsync(List<IssuedToken> issued, RefreshToken row, CancellationToken cancellationToken)
    {
        await db.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = db.Database.GetDbConnection().CreateCommand();
            command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
            var text = new System.Text.StringBuilder();
            for (var i = 0; i < issued.Count; i++)
            {
                text.Append(System.Globalization.CultureInfo.InvariantCulture,
                    $"INSERT INTO \"IssuedTokens\" (\"Jti\", \"ExpiresAt\", \"GrantId\") VALUES (@j{i}, @je{i}, @jg{i});");
                AddParameter(command, "j" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), issued[i].Jti);
                AddParameter(command, "je" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), issued[i].ExpiresAt.ToUniversalTime());
                AddParameter(command, "jg" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), issued[i].GrantId);
            }

            text.Append(RefreshInsert);
            command.CommandText = text.ToString();
            AddParameter(command, "hash", row.TokenHash);
            AddParameter(command, "grant", row.GrantId);
            AddParameter(command, "user", row.UserId);
            AddParameter(command, "client", row.ClientId);
            AddParameter(command, "scope", row.Scope);
            AddParameter(command, "created", row.CreatedAt.ToUniversalTime());
            AddParameter(command, "expires", row.ExpiresAt.ToUniversalTime());
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await db.Database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    private const string RefreshInsert = """
        INSERT INTO "RefreshTokens" ("TokenHash", "GrantId", "UserId", "ClientId", "Scope", "CreatedAt", "ExpiresAt", "ConsumedAt", "RevokedAt")
        VALUES (@hash, @grant, @user, @client, @scope, @created, @expires, NULL, NULL)
        """;

    /// <summary>Consumes <paramref name="token"/> once and returns a new one for the same grant.</summary>
    public async Task<RefreshResult> RotateAsync(string token, string clientId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        if (string.IsNullOrEmpty(token) || token.Length > 128 || !Base64Url.IsAlphabet(token))
        {
            return RefreshResult.Fail("AADSTS9002313: Invalid request. The refresh token is malformed.");
        }

        var hash = AuthorizationCodeService.HashSecret(token);
        var record = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(r => r.TokenHash == hash, cancellationToken).ConfigureAwait(false);
        if (record is null)
        {
            return RefreshResult.Fail("AADSTS70000: The provided refresh token is invalid.");
        }

        if (record.ConsumedAt is not null)
        {
            await GrantRevocation.RevokeAsync(db, record.GrantId, "refresh token reused", now, cancellationToken).ConfigureAwait(false);
            return RefreshResult.Fail("AADSTS70000: The refresh token was already used; the grant has been revoked.");
        }

        var grant = await db.Grants.AsNoTracking().FirstOrDefaultAsync(g => g.Id == record.GrantId, cancellationToken).ConfigureAwait(false);
        if (record.RevokedAt is not null || grant is null || grant.RevokedAt is not null)
        {
            return RefreshResult.Fail("AADSTS70000: The refresh token has been revoked.");
        }

        if (record.ExpiresAt <= now)
        {
            return RefreshResult.Fail("AADSTS70008: The refresh token has expired.");
        }

        // Checked here as well as capped at issue: a lowered maximum applies to tokens already out.
        if (grant.CreatedAt + options.RefreshTokenMaxLifetime <= now)
        {
            return RefreshResult.Fail("AADSTS70008: The sign-in of this refresh token is older than the maximum lifetime; sign in again.");
        }

        if (!string.Equals(record.ClientId, clientId, StringComparison.OrdinalIgnoreCase))
        {
            return RefreshResult.Fail("AADSTS70000: The refresh token was issued to another client.");
        }

        var updated = await db.RefreshTokens.Where(r => r.TokenHash == hash && r.ConsumedAt == null && r.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.ConsumedAt, now), cancellationToken).ConfigureAwait(false);
        if (updated != 1)
        {
            await GrantRevocation.RevokeAsync(db, record.GrantId, "refresh token reused", now, cancellationToken).ConfigureAwait(false);
            return RefreshResult.Fail("AADSTS70000: The refresh token was already used; the grant has been revoked.");
        }

        var next = await IssueAsync(record.GrantId, record.UserId, record.ClientId, record.Scope, cancellationToken).ConfigureAwait(false);
        record.ConsumedAt = now;
        return new RefreshResult { Success = true, NewToken = next, Previous = record, SignedInAt = grant.CreatedAt };
    }

    /// <summary>
    /// Revokes <paramref name="token"/> and its whole grant (RFC 7009 §2.1: revoking a refresh token revokes the access
    /// tokens of the same grant), when it was issued to <paramref name="clientId"/>. Returns false when there was nothing
    /// to revoke (unknown, malformed, another client's); the revocation endpoint answers 200 either way.
    /// </summary>
    public async Task<bool> RevokeAsync(string token, string clientId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        if (string.IsNullOrEmpty(token) || token.Length > 128 || !Base64Url.IsAlphabet(token))
        {
            return false;
        }

        var hash = AuthorizationCodeService.HashSecret(token);
        var record = await db.RefreshTokens.AsNoTracking().FirstOrDefaultAsync(r => r.TokenHash == hash, cancellationToken).ConfigureAwait(false);
        if (record is null || !string.Equals(record.ClientId, clientId, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        await GrantRevocation.RevokeAsync(db, record.GrantId, "revoked by the client (sign-out)", now, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Revokes the grant <paramref name="grantId"/>: its refresh tokens and the access tokens recorded under it.</summary>
    public Task RevokeGrantAsync(Guid grantId, string reason, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reason);
        return GrantRevocation.RevokeAsync(db, grantId, reason, now, cancellationToken);
    }

    /// <summary>Creates a grant for <paramref name="userId"/> (every token of one interactive sign-in belongs to it).</summary>
    public async Task<Guid> CreateGrantAsync(Guid userId, CancellationToken cancellationToken = default)
    {
        var grant = new Grant { Id = Guid.NewGuid(), UserId = userId, CreatedAt = time.GetUtcNow() };
        db.Grants.Add(grant);
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        db.ChangeTracker.Clear();
        return grant.Id;
    }

    /// <summary>Adds a named parameter to the raw insert of the issued-token records and the refresh token.</summary>
    private static void AddParameter(System.Data.Common.DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
