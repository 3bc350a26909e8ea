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

    private readonly ConcurrentDictionary<string, Document> _discovery = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _knownTenants = new(StringComparer.Ordinal);
    private Document? _jwks;

    /// <summary>Null as a nullable memory (a bare <c>null</c> would convert to an empty memory through its array conversion).</summary>
    private static ReadOnlyMemory<byte>? NotKept => null;

    /// <summary>The discovery document of <paramref name="tenant"/>, or null when it must be built.</summary>
    public ReadOnlyMemory<byte>? Discovery(string tenant) =>
        _discovery.TryGetValue(tenant, out var document) && document.Expires > time.GetUtcNow() ? document.Body : NotKept;

    /// <summary>Keeps the discovery document of <paramref name="tenant"/> (a tenant that exists).</summary>
    public void KeepDiscovery(string tenant, ReadOnlyMemory<byte> body)
    {
        if (_discovery.Count >= MaxTenants)
        {
            _discovery.Clear();
        }

        _discovery[tenant] = new Document(body, time.GetUtcNow() + Lifetime, 0);
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

    /// <summary>The JWKS document, or null when it must be built (expired, or the keys changed in this process).</summary>
    public ReadOnlyMemory<byte>? Jwks()
    {
        var document = Volatile.Read(ref _jwks);
        return document is not null && document.Expires > time.GetUtcNow() && document.KeyVersion == Gatehouse.Identity.SigningKeyService.Version
            ? document.Body
            : NotKept;
    }

    /// <summary>Keeps the JWKS document built from the keys at <paramref name="keyVersion"/> (read before they were).</summary>
    public void KeepJwks(ReadOnlyMemory<byte> body, long keyVersion) =>
        Volatile.Write(ref _jwks, new Document(body, time.GetUtcNow() + Lifetime, keyVersion));

    private sealed record Document(ReadOnlyMemory<byte> Body, DateTimeOffset Expires, long KeyVersion);
}
