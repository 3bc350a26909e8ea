using System.Collections.Concurrent;

namespace Gatehouse.Idp;

/// <summary>
/// OpenID discovery documents (per tenant segment) and the JWKS document, kept serialised in memory so that a request
/// costs no database query, key decryption or JSON writing. The JWKS is rebuilt at once when this process changes the
/// signing keys (<see cref="Gatehouse.Identity.SigningKeyService.Version"/>); every document is also rebuilt after
/// <see cref="Lifetime"/>, which bounds how long a key rotated on another node, a retired key that stopped being
/// published, or a renamed or deleted tenant stays unseen here. Only tenants that exist are kept, at most
/// <see cref="MaxTenants"/> of them.
/// </summary>
internal sealed class IdpDocumentCache(TimeProvider time)
{
    /// <summary>The longest a document is served before it is rebuilt.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(10);

    /// <summary>The most tenant segments kept (a hostile client cannot grow the cache beyond it: unknown tenants are never kept).</summary>
    public const int MaxTenants = 1024;

    private readonly ConcurrentDictionary<string, KeptDocument> _discovery = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _knownTenants = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, KeptTenant> _tenants = new(StringComparer.Ordinal);
    private KeptDocument? _jwks;

    /// <summary>Null as a nullable memory (a bare <c>null</c> would convert to an empty memory through its array conversion).</summary>
    private static ReadOnlyMemory<byte>? NotKept => null;

    /// <summary>The discovery document of <paramref name="tenant"/>, or null when it must be built.</summary>
    public ReadOnlyMemory<byte>? Discovery(string tenant) => DiscoveryDocument(tenant)?.Body ?? NotKept;

    /// <summary>The kept discovery document of <paramref name="tenant"/> with its ETag, or null when it must be built.</summary>
    public KeptDocument? DiscoveryDocument(string tenant) =>
        _discovery.TryGetValue(tenant, out var document) && document.Expires > time.GetUtcNow() ? document : null;

    /// <summary>Keeps the discovery document of <paramref name="tenant"/> (a tenant that exists).</summary>
    public KeptDocument KeepDiscovery(string tenant, ReadOnlyMemory<byte> body)
    {
        if (_discovery.Count >= MaxTenants)
        {
            _discovery.Clear();
        }

        return _discovery[tenant] = new KeptDocument(body, time.GetUtcNow() + Lifetime, 0);
    }

    /// <summary>True when <paramref name="tenant"/> was found to exist within <see cref="Lifetime"/>.</summary>
    public bool TenantKnown(string tenant) => _knownTenants.TryGetValue(tenant, out var expires) && expires > time.GetUtcNow();

    /// <summary>Remembers that <paramref name="tenant"/> exists.</summary>
    public void KeepTenant(string tenant)
    {
        if (_knownTenants.Count >= MaxTenants)
        {
            _knownTenants.Clear();
        }

        _knownTenants[tenant] = time.GetUtcNow() + Lifetime;
    }

    /// <summary>
    /// The tenant <paramref name="segment"/> named when the token endpoint last read it within <see cref="Lifetime"/>,
    /// or null (read it: <see cref="KeepTenantRecord"/>). A renamed or deleted tenant stays seen for at most that long,
    /// as in the documents; its users, hosts and codes are read afresh, so nothing is issued for what is gone.
    /// </summary>
    public Gatehouse.Storage.Tenant? TenantRecord(string segment) =>
        _tenants.TryGetValue(segment, out var kept) && kept.Expires > time.GetUtcNow() ? kept.Tenant : null;

    /// <summary>Keeps the tenant <paramref name="segment"/> names (one that exists).</summary>
    public void KeepTenantRecord(string segment, Gatehouse.Storage.Tenant tenant)
    {
        if (_tenants.Count >= MaxTenants)
        {
            _tenants.Clear();
        }

        _tenants[segment] = new KeptTenant(tenant, time.GetUtcNow() + Lifetime);
    }

    /// <summary>The JWKS document, or null when it must be built (expired, or the keys changed in this process).</summary>
    public ReadOnlyMemory<byte>? Jwks() => JwksDocument()?.Body ?? NotKept;

    /// <summary>The kept JWKS document with its ETag, or null when it must be built.</summary>
    public KeptDocument? JwksDocument()
    {
        var document = Volatile.Read(ref _jwks);
        return document is not null && document.Expires > time.GetUtcNow() && document.KeyVersion == Gatehouse.Identity.SigningKeyService.Version
            ? document
            : null;
    }

    /// <summary>Keeps the JWKS document built from the keys at <paramref name="keyVersion"/> (read before they were).</summary>
    public KeptDocument KeepJwks(ReadOnlyMemory<byte> body, long keyVersion)
    {
        var document = new KeptDocument(body, time.GetUtcNow() + Lifetime, keyVersion);
        Volatile.Write(ref _jwks, document);
        return document;
    }

    private sealed record KeptTenant(Gatehouse.Storage.Tenant Tenant, DateTimeOffset Expires);

}

/// <summary>
/// A document kept serialised, with what a response needs precomputed: its length and its strong ETag (the first 16
/// bytes of the body's SHA-256, hex), so sending it costs no serialisation, hashing or allocation.
/// </summary>
internal sealed class KeptDocument(ReadOnlyMemory<byte> body, DateTimeOffset expires, long keyVersion)
{
    /// <summary>The serialised document (UTF-8 JSON).</summary>
    public ReadOnlyMemory<byte> Body { get; } = body;

    /// <summary>When it must be rebuilt.</summary>
    public DateTimeOffset Expires { get; } = expires;

    /// <summary>The signing keys' version it was built from (JWKS only).</summary>
    public long KeyVersion { get; } = keyVersion;

    /// <summary>The strong entity tag, quoted.</summary>
    public string ETag { get; } = "\"" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(body.Span)[..16]) + "\"";

    /// <summary>The <c>ETag</c> header value, made once.</summary>
    public Microsoft.Extensions.Primitives.StringValues ETagHeader => _etagHeader ??= new Microsoft.Extensions.Primitives.StringValues(ETag);

    private Microsoft.Extensions.Primitives.StringValues? _etagHeader;
}
