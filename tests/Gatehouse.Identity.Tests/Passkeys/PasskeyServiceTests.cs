using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Passkeys;

/// <summary>
/// <see cref="PasskeyService"/> against a software authenticator whose attestation and assertions are built by hand and
/// verified by the FIDO2 library: registration then username-less sign-in, and each refusal the sign-in log names.
/// </summary>
public sealed class PasskeyServiceTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private static async Task<User> AddUserAsync(TestEnv env)
    {
        var db = env.Get<GatehouseDbContext>();
        var tenant = new Tenant { Id = Guid.NewGuid(), DisplayName = "Contoso", CreatedAt = env.Time.GetUtcNow() };
        var upn = $"{Guid.NewGuid():N}@contoso.test";
        var user = new User
        {
            Id = Guid.NewGuid(),
            TenantId = tenant.Id,
            UserPrincipalName = upn,
            NormalizedUpn = upn.ToUpperInvariant(),
            DisplayName = "Ada",
            CreatedAt = env.Time.GetUtcNow(),
        };
        db.Tenants.Add(tenant);
        db.Users.Add(user);
        await db.SaveChangesAsync();
        return user;
    }

    private static async Task<(User User, PasskeyService Service)> RegisterAsync(TestEnv env, SoftwareAuthenticator authenticator, string name = "Laptop")
    {
        var user = await AddUserAsync(env);
        var service = env.Get<PasskeyService>();
        var ceremony = (await service.BeginRegistrationAsync(user.Id))!;
        var outcome = await service.CompleteRegistrationAsync(user.Id, ceremony, authenticator.Create(ceremony.OptionsJson), name);
        Assert.True(outcome.Succeeded, outcome.Reason);
        return (user, service);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Registration_ThenUsernamelessAssertion_Succeeds_AndRecordsCounterAndUse(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (user, service) = await RegisterAsync(env, authenticator, "  Laptop  ");

        var stored = Assert.Single(await service.ListAsync(user.Id));
        Assert.Equal("Laptop", stored.Name);
        Assert.Equal(authenticator.CredentialId, stored.CredentialId);
        Assert.Equal(authenticator.Aaguid, stored.Aaguid);
        Assert.Equal(1, stored.SignCount);
        Assert.True(stored.BackupEligible);
        Assert.True(stored.BackedUp);
        Assert.Null(stored.LastUsedAt);

        env.Time.Advance(TimeSpan.FromMinutes(1));
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));

        Assert.True(outcome.Succeeded, outcome.Reason);
        Assert.Equal(user.Id, outcome.UserId);
        await using var scope = env.NewScope();
        var after = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Passkeys.SingleAsync(p => p.UserId == user.Id);
        Assert.Equal(2, after.SignCount);
        Assert.Equal(env.Time.GetUtcNow(), after.LastUsedAt);
    }

    [Theory]
    [SqliteStore]
    public async Task CounterGoingBackwards_IsRefusedAsCloned(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (_, service) = await RegisterAsync(env, authenticator);
        var first = service.BeginAssertion();
        Assert.True((await service.CompleteAssertionAsync(first, authenticator.Get(first.OptionsJson))).Succeeded);

        // A copy of the key that has not seen the last use reports an older counter.
        authenticator.Counter = 2;
        var second = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(second, authenticator.Get(second.OptionsJson));

        Assert.Equal(PasskeyRefusal.CounterRegression, outcome.Refusal);
        Assert.Contains("counter", outcome.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task SameAssertionPresentedTwice_IsRefusedAsReplay_EvenWhenTheAuthenticatorDoesNotCount(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator { Counts = false };
        var (user, service) = await RegisterAsync(env, authenticator);
        var ceremony = service.BeginAssertion();
        var response = authenticator.Get(ceremony.OptionsJson);
        Assert.True((await service.CompleteAssertionAsync(ceremony, response)).Succeeded);

        // Within the ceremony's lifetime, with a counter that stays 0, only the spent challenge tells the replay apart.
        env.Time.Advance(TimeSpan.FromMinutes(1));
        await using (var scope = env.NewScope())
        {
            var replay = await scope.ServiceProvider.GetRequiredService<PasskeyService>().CompleteAssertionAsync(ceremony, response);
            Assert.Equal(PasskeyRefusal.ChallengeReplayed, replay.Refusal);
            Assert.Equal(user.Id, replay.UserId);
        }

        // A fresh challenge still works, and spent challenges are dropped once their ceremonies have expired.
        env.Time.Advance(PasskeyService.CeremonyLifetime);
        var next = service.BeginAssertion();
        Assert.True((await service.CompleteAssertionAsync(next, authenticator.Get(next.OptionsJson))).Succeeded);
        await using var check = env.NewScope();
        var spent = await check.ServiceProvider.GetRequiredService<GatehouseDbContext>().PasskeyChallengeUses.AsNoTracking().Select(u => u.ChallengeHash).ToListAsync();
        Assert.DoesNotContain(HashOf(ceremony), spent);
        Assert.Contains(HashOf(next), spent);
    }

    private static string HashOf(PasskeyCeremony ceremony) =>
        PasskeyService.ChallengeHash(Convert.FromBase64String(ToBase64(System.Text.Json.Nodes.JsonNode.Parse(ceremony.OptionsJson)!["challenge"]!.GetValue<string>())));

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task OneAssertionRacedEightTimes_SignsInExactlyOnce(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator { Counts = false };
        var (_, service) = await RegisterAsync(env, authenticator);
        var ceremony = service.BeginAssertion();
        var response = authenticator.Get(ceremony.OptionsJson);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            await using var scope = env.NewScope();
            return await scope.ServiceProvider.GetRequiredService<PasskeyService>().CompleteAssertionAsync(ceremony, response);
        }));

        Assert.Single(outcomes, o => o.Succeeded);
        Assert.All(outcomes.Where(o => !o.Succeeded), o => Assert.Equal(PasskeyRefusal.ChallengeReplayed, o.Refusal));
    }

    private static string ToBase64(string base64Url)
    {
        var s = base64Url.Replace('-', '+').Replace('_', '/');
        return s + new string('=', (4 - (s.Length % 4)) % 4);
    }

    [Theory]
    [SqliteStore]
    public async Task WrongOrigin_IsRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (_, service) = await RegisterAsync(env, authenticator);

        // A look-alike page relays the challenge: the browser writes its own origin into the client data.
        authenticator.Origin = "https://login.test.evil.example";
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));

        Assert.Equal(PasskeyRefusal.WrongOrigin, outcome.Refusal);
        Assert.StartsWith(PasskeyService.ReasonFor(PasskeyRefusal.WrongOrigin), outcome.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [SqliteStore]
    public async Task WrongRpIdHash_IsRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (_, service) = await RegisterAsync(env, authenticator);

        authenticator.RpId = "evil.example";
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));

        Assert.Equal(PasskeyRefusal.WrongRpId, outcome.Refusal);
    }

    [Theory]
    [SqliteStore]
    public async Task UnknownCredential_IsRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var registered = new SoftwareAuthenticator();
        var (user, service) = await RegisterAsync(env, registered);
        using var stranger = new SoftwareAuthenticator { UserHandle = PasskeyService.UserHandleOf(user.Id) };

        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, stranger.Get(ceremony.OptionsJson));

        Assert.Equal(PasskeyRefusal.UnknownCredential, outcome.Refusal);
        Assert.Null(outcome.UserId);
    }

    [Theory]
    [SqliteStore]
    public async Task RemovedPasskey_IsUnknown(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (user, service) = await RegisterAsync(env, authenticator);

        Assert.False(await service.RemoveAsync(user.Id, "Phone"));
        Assert.True(await service.RemoveAsync(user.Id, "Laptop"));
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));

        Assert.Equal(PasskeyRefusal.UnknownCredential, outcome.Refusal);
    }

    [Theory]
    [SqliteStore]
    public async Task UserVerificationMissing_IsRefused_AtSignInAndRegistration(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (user, service) = await RegisterAsync(env, authenticator);

        authenticator.VerifiesUser = false;
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));
        Assert.Equal(PasskeyRefusal.UserVerificationMissing, outcome.Refusal);

        using var second = new SoftwareAuthenticator { VerifiesUser = false };
        var registration = (await service.BeginRegistrationAsync(user.Id))!;
        var refused = await service.CompleteRegistrationAsync(user.Id, registration, second.Create(registration.OptionsJson), "Key");
        Assert.Equal(PasskeyRefusal.UserVerificationMissing, refused.Refusal);
    }

    [Theory]
    [SqliteStore]
    public async Task UserHandleOfAnotherUser_IsRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (_, service) = await RegisterAsync(env, authenticator);

        authenticator.UserHandle = Guid.NewGuid().ToByteArray();
        var ceremony = service.BeginAssertion();
        var outcome = await service.CompleteAssertionAsync(ceremony, authenticator.Get(ceremony.OptionsJson));

        Assert.Equal(PasskeyRefusal.UserHandleMismatch, outcome.Refusal);
    }

    [Theory]
    [SqliteStore]
    public async Task ExpiredCeremony_AndMalformedResponses_AreRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (_, service) = await RegisterAsync(env, authenticator);

        var ceremony = service.BeginAssertion();
        var response = authenticator.Get(ceremony.OptionsJson);
        Assert.Equal(PasskeyRefusal.Malformed, (await service.CompleteAssertionAsync(ceremony, "{")).Refusal);
        Assert.Equal(PasskeyRefusal.Malformed, (await service.CompleteAssertionAsync(ceremony, new string(' ', PasskeyService.MaxResponseLength + 1))).Refusal);
        Assert.Equal(PasskeyRefusal.Malformed, (await service.CompleteAssertionAsync(ceremony, response.Replace("\"signature\"", "\"sig\"", StringComparison.Ordinal))).Refusal);

        env.Time.Advance(PasskeyService.CeremonyLifetime + TimeSpan.FromSeconds(1));
        Assert.Equal(PasskeyRefusal.Expired, (await service.CompleteAssertionAsync(ceremony, response)).Refusal);
    }

    [Theory]
    [SqliteStore]
    public async Task Names_AreCheckedAndUniquePerUser_AndCredentialIdsUnique(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        using var authenticator = new SoftwareAuthenticator();
        var (user, service) = await RegisterAsync(env, authenticator);

        using var other = new SoftwareAuthenticator();
        var ceremony = (await service.BeginRegistrationAsync(user.Id))!;
        var response = other.Create(ceremony.OptionsJson);
        Assert.Equal(PasskeyRefusal.InvalidName, (await service.CompleteRegistrationAsync(user.Id, ceremony, response, "Laptop")).Refusal);
        Assert.Equal(PasskeyRefusal.InvalidName, (await service.CompleteRegistrationAsync(user.Id, ceremony, response, new string('x', 65))).Refusal);
        Assert.Equal(PasskeyRefusal.InvalidName, (await service.CompleteRegistrationAsync(user.Id, ceremony, response, "a\nb")).Refusal);
        Assert.True((await service.CompleteRegistrationAsync(user.Id, ceremony, response, new string('x', 64))).Succeeded);

        // The same authenticator again (for another user): its credential id is already stored.
        var second = await AddUserAsync(env);
        var again = (await service.BeginRegistrationAsync(second.Id))!;
        authenticator.UserHandle = null;
        var refused = await service.CompleteRegistrationAsync(second.Id, again, authenticator.Create(again.OptionsJson), "Laptop");
        Assert.Equal(PasskeyRefusal.CredentialAlreadyRegistered, refused.Refusal);
    }

    [Theory]
    [InlineData("login.test", "login.test", "https://login.test")]
    [InlineData("login.example.org:8443", "login.example.org", "https://login.example.org:8443")]
    public void RpIdAndOrigin_ComeFromThePublicName(string publicName, string rpId, string origin)
    {
        using var db = new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = "Data Source=:memory:" }.CreateContext();
        var service = new PasskeyService(db, TimeProvider.System, new GatehouseIdentityOptions { PublicName = publicName });
        Assert.Equal(rpId, service.RpId);
        Assert.Equal(origin, service.Origin);
    }
}
