using System.Text.Json.Nodes;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Identity.Tests.Passkeys;

/// <summary>
/// Mutated browser responses (fixed seed): <see cref="PasskeyService"/> must answer every one with an outcome, never an
/// exception, and never accept one whose signed bytes were changed. (A Gatehouse.Fuzz target is still to come: that
/// project does not reference the identity services yet.)
/// </summary>
public sealed class PasskeyHostileInputTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    [Theory]
    [SqliteStore]
    public async Task MutatedAssertionsAndAttestations_AreRefused_NeverThrown(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var db = env.Get<GatehouseDbContext>();
        var tenant = new Tenant { Id = Guid.NewGuid(), DisplayName = "Contoso", CreatedAt = env.Time.GetUtcNow() };
        var user = new User { Id = Guid.NewGuid(), TenantId = tenant.Id, UserPrincipalName = "fuzz@contoso.test", NormalizedUpn = $"FUZZ-{Guid.NewGuid():N}@CONTOSO.TEST", CreatedAt = env.Time.GetUtcNow() };
        db.Tenants.Add(tenant);
        db.Users.Add(user);
        await db.SaveChangesAsync();
        var service = env.Get<PasskeyService>();
        using var authenticator = new SoftwareAuthenticator();
        var registration = (await service.BeginRegistrationAsync(user.Id))!;
        var attestation = authenticator.Create(registration.OptionsJson);
        var random = new Random(1234);

        for (var i = 0; i < 150; i++)
        {
            var mutated = MutateField(attestation, "attestationObject", random);
            var outcome = await service.CompleteRegistrationAsync(user.Id, registration, mutated, $"Key {i}");

            // Attestation "none" signs nothing, so a flip inside the public key or AAGUID can still register; what matters
            // is an outcome (never an exception) and that a refusal names its reason.
            Assert.True(outcome.Succeeded || outcome.Reason.Length > 0);
        }

        await using (var clean = env.NewScope())
        {
            var rows = clean.ServiceProvider.GetService(typeof(GatehouseDbContext)) as GatehouseDbContext;
            rows!.Passkeys.RemoveRange(rows.Passkeys.Where(p => p.UserId == user.Id));
            await rows.SaveChangesAsync();
        }

        registration = (await service.BeginRegistrationAsync(user.Id))!;
        Assert.True((await service.CompleteRegistrationAsync(user.Id, registration, authenticator.Create(registration.OptionsJson), "Genuine")).Succeeded);

        var ceremony = service.BeginAssertion();
        var assertion = authenticator.Get(ceremony.OptionsJson);
        for (var i = 0; i < 300; i++)
        {
            var field = (i % 3) switch { 0 => "authenticatorData", 1 => "signature", _ => "clientDataJSON" };
            var mutated = MutateField(assertion, field, random);
            if (mutated == assertion)
            {
                continue;
            }

            var outcome = await service.CompleteAssertionAsync(ceremony, mutated);
            Assert.False(outcome.Succeeded, $"mutation {i} of {field} was accepted");
        }

        for (var i = 0; i < 300; i++)
        {
            var chars = assertion.ToCharArray();
            chars[random.Next(chars.Length)] = (char)random.Next(0x20, 0x7f);
            var outcome = await service.CompleteAssertionAsync(ceremony, new string(chars));
            Assert.NotNull(outcome.Reason);
        }
    }

    /// <summary>Decodes one base64url field of the response, flips, inserts or deletes a byte, and encodes it again.</summary>
    private static string MutateField(string responseJson, string field, Random random)
    {
        var node = JsonNode.Parse(responseJson)!;
        var value = node["response"]![field]!.GetValue<string>();
        var padded = value.Replace('-', '+').Replace('_', '/');
        var bytes = new List<byte>(Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '=')));
        var at = random.Next(bytes.Count);
        switch (random.Next(3))
        {
            case 0:
                bytes[at] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                bytes.Insert(at, (byte)random.Next(256));
                break;
            default:
                bytes.RemoveAt(at);
                break;
        }

        node["response"]![field] = Convert.ToBase64String([.. bytes]).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return node.ToJsonString();
    }
}
