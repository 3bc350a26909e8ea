using System.Security.Cryptography;
using System.Text;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Identity;

/// <summary>
/// The IdP's RS256 signing keys: RSA 2048, private keys protected with Data Protection, <c>kid</c> = base64url SHA-256
/// JWK thumbprint (RFC 7638). Retired keys stay published until every token they signed has expired (lifetime + skew).
/// </summary>
public sealed class SigningKeyService
{
    private const string Purpose = "Gatehouse.Identity.SigningKey.v1";
    private const int MaxCachedPublicKeys = 1024;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, JsonWebKey> PublicKeys = new(StringComparer.Ordinal);

    /// <summary>
    /// The decrypted private keys, by kid: a kid names one key for good, so each is decrypted and imported once per
    /// process (key version), not on every token. Bounded like <see cref="PublicKeys"/>.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, RsaSecurityKey> PrivateKeys = new(StringComparer.Ordinal);

    private static long version;
    private readonly GatehouseDbContext db;
    private readonly IDataProtector protector;
    private readonly TimeProvider time;
    private readonly GatehouseIdentityOptions options;
    private readonly RemoteJwks? remote;

    /// <summary>
    /// Creates the service; with <paramref name="remote"/>, tokens are verified with the keys published at that JWKS URL
    /// (a gateway running apart from its identity provider) instead of this store's keys.
    /// </summary>
    public SigningKeyService(GatehouseDbContext db, IDataProtectionProvider dataProtection, TimeProvider time, GatehouseIdentityOptions options, RemoteJwks? remote = null)
    {
        this.remote = remote;
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(dataProtection);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        protector = dataProtection.CreateProtector(Purpose);
        this.time = time;
        this.options = options;
    }

    /// <summary>How long a retired key stays published: the longest token or challenge lifetime plus skew.</summary>
    public TimeSpan RetentionWindow =>
        (options.AccessTokenLifetime > options.ServerChallengeLifetime ? options.AccessTokenLifetime : options.ServerChallengeLifetime) + options.ClockSkew;

    /// <summary>
    /// How long this process signs with the active key it last read before reading it again. A rotation made by this
    /// process takes effect at once (<see cref="Version"/>); one made on another node within this time, while the key
    /// signed with stays published (a retired key is published for <see cref="RetentionWindow"/>).
    /// </summary>
    public static readonly TimeSpan ActiveKeyLifetime = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The active key last read, per store (connection string), so that a token costs no query for it; bounded like
    /// <see cref="PublicKeys"/>.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ActiveKey> ActiveKeys = new(StringComparer.Ordinal);

    /// <summary>The active key's signing credentials (RS256); creates the first key when there is none.</summary>
    public async Task<SigningCredentials> GetActiveAsync(CancellationToken cancellationToken = default)
    {
        var store = db.Database.GetConnectionString() ?? string.Empty;
        var now = time.GetUtcNow();
        if (ActiveKeys.TryGetValue(store, out var active) && active.Version == Version && active.Expires > now && active.Read <= now)
        {
            return new SigningCredentials(active.Key, SecurityAlgorithms.RsaSha256);
        }

        var versionBefore = Version;
        var key = await db.SigningKeys.AsNoTracking().Where(k => k.RetiredAt == null)
            .OrderByDescending(k => k.ActivatedAt).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        var created = key is null;
        key ??= await CreateAsync(time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (!PrivateKeys.TryGetValue(key.Kid, out var securityKey))
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(protector.Unprotect(key.PrivateKeyProtected));
            securityKey = new RsaSecurityKey(rsa) { KeyId = key.Kid };
            if (PrivateKeys.Count >= MaxCachedPublicKeys)
            {
                PrivateKeys.Clear();
            }

            // A racing request may have imported the same key: keep one (the other is collected).
            securityKey = PrivateKeys.GetOrAdd(key.Kid, securityKey);
        }

        if (ActiveKeys.Count >= MaxCachedPublicKeys)
        {
            ActiveKeys.Clear();
        }

        // Kept under the version read before the key was (a change meanwhile makes the next call read again); a key
        // this call created moved the version itself.
        ActiveKeys[store] = new ActiveKey(securityKey, created ? Version : versionBefore, now, now + ActiveKeyLifetime);
        return new SigningCredentials(securityKey, SecurityAlgorithms.RsaSha256);
    }

    /// <summary>
    /// The active key's signing credentials as <see cref="GetActiveAsync"/> last kept them for the store whose contexts
    /// have connection string <paramref name="store"/>, when they are still fresh at <paramref name="now"/>; else null
    /// (the caller then asks <see cref="GetActiveAsync"/>, which reads the key). Needs no context: the token endpoint's
    /// redemption signs with it.
    /// </summary>
    public static SigningCredentials? TryGetKeptActive(string store, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(store);
        return ActiveKeys.TryGetValue(store, out var active) && active.Version == Version && active.Expires > now && active.Read <= now
            ? new SigningCredentials(active.Key, SecurityAlgorithms.RsaSha256)
            : null;
    }

    private sealed record ActiveKey(RsaSecurityKey Key, long Version, DateTimeOffset Read, DateTimeOffset Expires);

    /// <summary>
    /// Counts the changes to the signing keys made by this process (a key created, rotated or purged): what is built from
    /// the published keys (the JWKS document) is rebuilt when it moves.
    /// </summary>
    public static long Version => Interlocked.Read(ref version);

    /// <summary>How many private keys this process has decrypted and keeps (for tests: once per key version).</summary>
    public static int DecryptedKeys => PrivateKeys.Count;

    /// <summary>The JWKS: the active key(s) and retired keys whose tokens may still be valid at the current time.</summary>
    public async Task<JsonWebKeySet> GetPublishedKeysAsync(CancellationToken cancellationToken = default)
    {
        var set = new JsonWebKeySet();
        foreach (var key in await GetPublishedKeysAsync(time.GetUtcNow(), cancellationToken).ConfigureAwait(false))
        {
            set.Keys.Add(key);
        }

        return set;
    }

    /// <summary>
    /// The keys that verify tokens and challenges at <paramref name="now"/>: this store's published keys, or the remote
    /// identity provider's (refreshed once when <paramref name="kid"/> is not among them).
    /// </summary>
    public Task<IReadOnlyList<JsonWebKey>> GetVerificationKeysAsync(DateTimeOffset now, string? kid, CancellationToken cancellationToken = default) =>
        remote is null ? GetPublishedKeysAsync(now, cancellationToken) : remote.GetKeysAsync(kid, cancellationToken);

    /// <summary>Public keys that verify tokens at <paramref name="now"/>.</summary>
    public async Task<IReadOnlyList<JsonWebKey>> GetPublishedKeysAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var cutoff = now - RetentionWindow;
        var keys = await db.SigningKeys.AsNoTracking()
            .Where(k => k.RetiredAt == null || k.RetiredAt > cutoff)
            .OrderByDescending(k => k.ActivatedAt)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<JsonWebKey>(keys.Count);
        foreach (var key in keys)
        {
            // The kid is the RFC 7638 thumbprint of the public key, so a kid names one public key for good: decrypt the
            // private key once per process to derive it, not on every validation and JWKS request.
            if (!PublicKeys.TryGetValue(key.Kid, out var jwk))
            {
                using var rsa = RSA.Create();
                rsa.ImportFromPem(protector.Unprotect(key.PrivateKeyProtected));
                var p = rsa.ExportParameters(false);
                if (!string.Equals(Thumbprint(p), key.Kid, StringComparison.Ordinal))
                {
                    throw new CryptographicException($"signing key {key.Kid}: the kid is not the thumbprint of its public key");
                }

                jwk = new JsonWebKey
                {
                    Kty = "RSA",
                    Use = "sig",
                    Alg = SecurityAlgorithms.RsaSha256,
                    Kid = key.Kid,
                    N = Base64Url.Encode(p.Modulus),
                    E = Base64Url.Encode(p.Exponent),
                };
                if (PublicKeys.Count >= MaxCachedPublicKeys)
                {
                    PublicKeys.Clear();
                }

                PublicKeys[key.Kid] = jwk;
            }

            result.Add(jwk);
        }

        return result;
    }

    /// <summary>Creates a new active key and retires the previous one(s) as of <paramref name="now"/>; returns the new kid.</summary>
    public async Task<string> RotateAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var key = await CreateAsync(now, cancellationToken).ConfigureAwait(false);
        await db.SigningKeys.Where(k => k.RetiredAt == null && k.Kid != key.Kid)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RetiredAt, now), cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref version);
        return key.Kid;
    }

    /// <summary>Removes retired keys that no token can need any more; returns how many were removed.</summary>
    public async Task<int> PurgeAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var cutoff = now - RetentionWindow;
        var purged = await db.SigningKeys.Where(k => k.RetiredAt != null && k.RetiredAt <= cutoff).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        if (purged > 0)
        {
            Interlocked.Increment(ref version);
        }

        return purged;
    }

    /// <summary>RFC 7638 SHA-256 thumbprint (base64url) of an RSA public key.</summary>
    public static string Thumbprint(RSAParameters publicKey)
    {
        var json = $"{{\"e\":\"{Base64Url.Encode(publicKey.Exponent)}\",\"kty\":\"RSA\",\"n\":\"{Base64Url.Encode(publicKey.Modulus)}\"}}";
        return Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(json)));
    }

    private async Task<SigningKey> CreateAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        using var rsa = RSA.Create(2048);
        var entity = new SigningKey
        {
            Kid = Thumbprint(rsa.ExportParameters(false)),
            CreatedAt = now,
            ActivatedAt = now,
            PrivateKeyProtected = protector.Protect(rsa.ExportPkcs8PrivateKeyPem()),
        };
        db.SigningKeys.Add(entity);
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        db.Entry(entity).State = EntityState.Detached;
        Interlocked.Increment(ref version);
        return entity;
    }
}
