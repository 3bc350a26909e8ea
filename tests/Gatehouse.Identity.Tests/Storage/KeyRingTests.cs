using System.Security.Cryptography;
using System.Xml.Linq;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// Issue 15, item 8: the key ring in the database (several nodes on PostgreSQL; SQLite runs the same code) is encrypted
/// with a key-encryption key that is not in the database, shared by the nodes, and fails closed without it. The tests
/// of one class share one database, so every node here uses the same <see cref="SharedKey"/> unless it tests another.
/// </summary>
public sealed class KeyRingTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private static readonly string SharedKey = KeyEncryptionKeys.Generate();

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task TwoNodesWithTheSameKey_OpenEachOthersSecrets_AndTheDatabaseHoldsNoKeyInTheClear(StoreProvider provider)
    {
        var store = await fixture.GetAsync(provider);
        await using var a = Node(store, SharedKey);
        a.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: true);
        var secret = a.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Protect("TOTP seed");

        await using var b = Node(store, SharedKey);
        b.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: true);
        Assert.Equal("TOTP seed", b.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Unprotect(secret));

        // What a database dump shows: encrypted secrets only, under the shared key's fingerprint.
        var fingerprint = KeyEncryptionKeys.Parse(SharedKey, "test").PrimaryFingerprint;
        var rows = await RowsAsync(store);
        Assert.Contains(rows, r => r.Contains("<key ", StringComparison.Ordinal));
        Assert.All(rows.Where(r => r.Contains("<key ", StringComparison.Ordinal)), r =>
        {
            Assert.DoesNotContain("<value>", r, StringComparison.Ordinal);
            Assert.Contains($"kek=\"{fingerprint}\"", r, StringComparison.Ordinal);
        });
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task NodeWithAnotherKey_FailsClosed_AndAddsNoKey(StoreProvider provider)
    {
        var store = await fixture.GetAsync(provider);
        await using (var first = Node(store, SharedKey))
        {
            _ = first.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Protect("x");
        }

        var before = (await RowsAsync(store)).Count;
        var other = KeyEncryptionKeys.Generate();
        await using var stranger = Node(store, other);
        var e = Assert.Throws<KeyRingException>(() => stranger.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: true));
        Assert.Contains(KeyEncryptionKeys.Parse(SharedKey, "test").PrimaryFingerprint, e.Message, StringComparison.Ordinal);
        Assert.Contains(KeyEncryptionKeys.Parse(other, "test").PrimaryFingerprint, e.Message, StringComparison.Ordinal);

        // Data Protection itself, asked to seal something, cannot add a key under the wrong key-encryption key either.
        Assert.ThrowsAny<Exception>(() => stranger.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Protect("y"));
        Assert.Equal(before, (await RowsAsync(store)).Count);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task KeysStoredUnencrypted_StillOpen_AndAreEncryptedInPlace(StoreProvider provider)
    {
        var store = await fixture.GetAsync(provider);

        // A node as earlier versions configured it: the key ring in the table, no encryptor. It makes its own key
        // (the shared key's are encrypted) and stores it in the clear.
        string secret;
        await using (var legacy = LegacyNode(store))
        {
            var keyManager = legacy.GetRequiredService<Microsoft.AspNetCore.DataProtection.KeyManagement.IKeyManager>();
            var now = DateTimeOffset.UtcNow;
            keyManager.CreateNewKey(now.AddMinutes(-1), now.AddDays(90));
            secret = legacy.GetRequiredService<IDataProtectionProvider>().CreateProtector("legacy").Protect("host password");
        }

        Assert.Contains(await RowsAsync(store), r => r.Contains("<value>", StringComparison.Ordinal));

        await using var node = Node(store, SharedKey);
        var status = node.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: true);
        Assert.True(status.Reencrypted >= 1);
        Assert.Equal(0, status.Unencrypted);
        Assert.DoesNotContain(await RowsAsync(store), r => r.Contains("<value>", StringComparison.Ordinal));
        Assert.Equal("host password", node.GetRequiredService<IDataProtectionProvider>().CreateProtector("legacy").Unprotect(secret));

        // A second pass has nothing left to do.
        Assert.Equal(0, node.GetRequiredService<KeyRingKeySource>().Prepare(reencrypt: true).Reencrypted);
    }

    [Fact]
    public void Decryptor_AlteredCiphertext_IsRefused()
    {
        var source = new KeyRingKeySource(new KeyRingSettings { Keys = SharedKey, KeyFile = "/nonexistent" }, new MemoryRepository());
        var services = new ServiceCollection().AddSingleton(source).BuildServiceProvider();
        var encrypted = new AesGcmXmlEncryptor(source).Encrypt(new XElement("masterKey", new XElement("value", "c2VjcmV0")));
        Assert.Equal(typeof(AesGcmXmlDecryptor), encrypted.DecryptorType);
        var decryptor = new AesGcmXmlDecryptor(services);
        Assert.Equal("c2VjcmV0", decryptor.Decrypt(encrypted.EncryptedElement).Element("value")!.Value);
        Assert.DoesNotContain("c2VjcmV0", encrypted.EncryptedElement.ToString(), StringComparison.Ordinal);

        var bytes = Convert.FromBase64String(encrypted.EncryptedElement.Value);
        bytes[^1] ^= 1;
        var altered = new XElement(encrypted.EncryptedElement) { Value = Convert.ToBase64String(bytes) };
        var e = Assert.Throws<CryptographicException>(() => decryptor.Decrypt(altered));
        Assert.Contains("altered", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "holds no key-encryption key")]
    [InlineData("# only a comment\n", "holds no key-encryption key")]
    [InlineData("c2hvcnQ=", "not a key-encryption key")]
    [InlineData("not base64 at all", "not a key-encryption key")]
    public void Parse_NotAKey_SaysSoWithoutEchoingIt(string text, string expected)
    {
        var e = Assert.Throws<KeyRingException>(() => KeyEncryptionKeys.Parse(text, "the key file /x"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains("the key file /x", e.Message, StringComparison.Ordinal);
        if (text.Trim().Length > 0 && !text.StartsWith('#'))
        {
            Assert.DoesNotContain(text, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Parse_SeveralKeys_TheFirstEncrypts()
    {
        var (first, second) = (KeyEncryptionKeys.Generate(), KeyEncryptionKeys.Generate());
        var fromFile = KeyEncryptionKeys.Parse($"# comment\n{first}\n\n{second}\n", "file");
        var fromConfiguration = KeyEncryptionKeys.Parse($"{first}, {second}", "configuration");
        Assert.Equal(fromFile.Fingerprints, fromConfiguration.Fingerprints);
        Assert.Equal(2, fromFile.Fingerprints.Count);
        Assert.Equal(KeyEncryptionKeys.Parse(first, "x").PrimaryFingerprint, fromFile.PrimaryFingerprint);
        Assert.Equal(16, fromFile.PrimaryFingerprint.Length);
    }

    private static ServiceProvider Node(StoreOptions store, string key)
    {
        var services = new ServiceCollection();
        services.AddGatehouseStore(store);
        services.AddDataProtection().SetApplicationName("gatehouse-keyring-tests")
            .UseGatehouseKeyRing(new KeyRingSettings { Keys = key, KeyFile = "/nonexistent/keyring.kek" }, keyDirectory: null);
        return services.BuildServiceProvider();
    }

    private static ServiceProvider LegacyNode(StoreOptions store)
    {
        var services = new ServiceCollection();
        services.AddGatehouseStore(store);
        services.AddDataProtection().SetApplicationName("gatehouse-keyring-tests").PersistKeysToGatehouseStore();
        return services.BuildServiceProvider();
    }

    private static async Task<List<string>> RowsAsync(StoreOptions store)
    {
        await using var db = store.CreateContext();
        return await db.DataProtectionKeys.AsNoTracking().Select(k => k.Xml).ToListAsync();
    }

    private sealed class MemoryRepository : IRewritableXmlRepository
    {
        private readonly List<XElement> elements = [];

        public IReadOnlyCollection<XElement> GetAllElements() => [.. elements];

        public void StoreElement(XElement element, string friendlyName) => elements.Add(element);

        public int RewriteElements(Func<XElement, XElement?> rewrite) => 0;
    }
}
