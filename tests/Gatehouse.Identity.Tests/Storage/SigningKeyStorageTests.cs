using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>Key rotation has a database of its own per provider (it changes the store-wide active key).</summary>
public sealed class SigningKeyStorageTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Rotation_RetiredKeyPublishedUntilWindowEnds(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var directory = env.Get<DirectoryService>();
        var domain = $"k{Guid.NewGuid():N}.test";
        var tenant = await directory.CreateTenantAsync("K", domain);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "a@" + domain, "A", "Pw-0123456789", false);
        var host = await directory.CreateHostAsync(tenant.Id, "rot1", "10.0.0.1", 3389, BackendSecurity.Tls);
        var keys = env.Get<SigningKeyService>();
        var tokens = env.Get<TokenService>();
        var t0 = env.Time.GetUtcNow();
        var oldToken = await tokens.IssueRdpAccessTokenAsync(new RdpTokenRequest
        {
            Tenant = tenant,
            User = user,
            Host = host,
            Amr = ["pwd"],
            AuthTime = t0,
            ClientId = RdpClient.ClientId,
            CnfKid = "ZxQjD40lq2A7VJ8nWbYkT3uR1sXcE5fGh6iJ9kLmN0o",
            GrantId = Guid.NewGuid(),
        });
        var oldKid = new JsonWebToken(oldToken).Kid;

        var rotatedAt = t0.AddMinutes(10);
        env.Time.Set(rotatedAt);
        var newKid = await keys.RotateAsync(rotatedAt);
        Assert.NotEqual(oldKid, newKid);
        Assert.Equal(newKid, (await keys.GetActiveAsync()).Key.KeyId);
        var published = (await keys.GetPublishedKeysAsync()).Keys.Select(k => k.Kid).ToList();
        Assert.Contains(oldKid, published);
        Assert.Contains(newKid, published);
        Assert.True((await tokens.ValidateRdpAccessTokenAsync(oldToken, host.Name, rotatedAt.AddMinutes(1))).IsValid);

        var windowEnd = rotatedAt + keys.RetentionWindow;
        Assert.Contains(oldKid, (await keys.GetPublishedKeysAsync(windowEnd.AddSeconds(-1))).Select(k => k.Kid));
        Assert.DoesNotContain(oldKid, (await keys.GetPublishedKeysAsync(windowEnd)).Select(k => k.Kid));
        Assert.Contains(newKid, (await keys.GetPublishedKeysAsync(windowEnd.AddDays(1))).Select(k => k.Kid));

        // A token signed by the retired key is refused once its key has left the JWKS (here: a forged late 'now').
        var late = await tokens.ValidateRdpAccessTokenAsync(oldToken, host.Name, windowEnd);
        Assert.False(late.IsValid);
        Assert.Equal(0, await keys.PurgeAsync(windowEnd.AddSeconds(-1)));
        Assert.Equal(1, await keys.PurgeAsync(windowEnd));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task ActiveKey_DecryptedOncePerKeyVersion_NotPerToken(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var keys = env.Get<SigningKeyService>();

        // Two calls (as two token issues) get the one imported key; a rotation brings a new one, imported once too.
        var first = (await keys.GetActiveAsync()).Key;
        var again = (await keys.GetActiveAsync()).Key;
        Assert.Same(first, again);
        var version = SigningKeyService.Version;
        var newKid = await keys.RotateAsync(env.Time.GetUtcNow());
        Assert.True(SigningKeyService.Version > version);
        var rotated = (await keys.GetActiveAsync()).Key;
        Assert.Equal(newKid, rotated.KeyId);
        Assert.NotSame(first, rotated);
        Assert.Same(rotated, (await keys.GetActiveAsync()).Key);
    }
}
