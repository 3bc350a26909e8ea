using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The token endpoint's code redemption for the RDP client: on PostgreSQL one statement on a pooled connection
/// (<see cref="CodeRedemption"/>), PKCE included, with no DbContext; on SQLite the general path. Both answer the same.
/// </summary>
public sealed class CodeRedemptionTests
{
    private const string Verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-a-verifier-of-the-test";

    [PostgresFact]
    public async Task Redeem_PkceCodeOnPostgres_ConsumesOnceAndRecordsTheTokens()
    {
        // Arrange
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var scenario = await IdpScenario.StartAsync(Postgres(database));
        var code = await MintAsync(scenario, Challenge(Verifier));

        // Act
        var (status, body) = await RedeemAsync(scenario, code, Verifier);
        var (againStatus, again) = await RedeemAsync(scenario, code, Verifier);

        // Assert: tokens once; the access token's jti and the refresh token are recorded; a second use is refused and
        // revokes the grant (the general path), which lists the first access token as revoked.
        Assert.True(status == HttpStatusCode.OK, body);
        using var json = JsonDocument.Parse(body);
        var jti = Claims(json.RootElement.GetProperty("access_token").GetString()!).GetProperty("jti").GetString()!;
        var refresh = json.RootElement.GetProperty("refresh_token").GetString()!;
        Assert.Equal(HttpStatusCode.BadRequest, againStatus);
        Assert.Contains("AADSTS54005", again, StringComparison.Ordinal);
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var issued = await db.IssuedTokens.AsNoTracking().SingleAsync(t => t.Jti == jti);
        var row = await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.TokenHash == AuthorizationCodeService.HashSecret(refresh));
        Assert.Equal(issued.GrantId, row.GrantId);
        Assert.True(row.ExpiresAt > issued.ExpiresAt);
        Assert.NotNull((await db.Grants.AsNoTracking().SingleAsync(g => g.Id == row.GrantId)).RevokedAt);
        Assert.True(await db.RevokedTokens.AsNoTracking().AnyAsync(r => r.Jti == jti));
        Assert.NotNull((await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.TokenHash == row.TokenHash)).RevokedAt);
    }

    [PostgresFact]
    public async Task Redeem_WrongVerifier_AnswersAsTheGeneralPathOnSqlite_AndKeepsTheCode()
    {
        // Arrange: the same request on both stores.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var answers = new List<string>();
        foreach (var overrides in new[] { Postgres(database), null })
        {
            await using var scenario = await IdpScenario.StartAsync(overrides);
            var code = await MintAsync(scenario, Challenge(Verifier));

            // Act
            var (status, body) = await RedeemAsync(scenario, code, Verifier.Replace('a', 'b'));
            var (missingStatus, missing) = await RedeemAsync(scenario, code, verifier: null);
            var (rightStatus, right) = await RedeemAsync(scenario, code, Verifier);

            // Assert: refused with the PKCE error, nothing consumed: the right verifier still redeems the code.
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal(HttpStatusCode.BadRequest, missingStatus);
            Assert.True(rightStatus == HttpStatusCode.OK, right);
            answers.Add(Describe(body) + "|" + Describe(missing));
        }

        Assert.Equal(answers[1], answers[0]);
        Assert.Contains("AADSTS501481", answers[0], StringComparison.Ordinal);
    }

    [PostgresFact]
    public async Task Redeem_OnPostgres_CreatesNoDbContextForTheRequest()
    {
        // Arrange: count the store contexts created while a token request is being served (the HTTP context is an
        // async local: the node's background services do not count).
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var counter = new ContextCounter();
        await using var scenario = await IdpScenario.StartAsync(Postgres(database), services =>
        {
            services.AddHttpContextAccessor();
            services.AddSingleton(counter);
            services.RemoveAll<PostgresGatehouseDbContext>();
            services.AddScoped(sp =>
            {
                if (sp.GetRequiredService<Microsoft.AspNetCore.Http.IHttpContextAccessor>().HttpContext?.Request.Path.Value?.EndsWith("/token", StringComparison.Ordinal) == true)
                {
                    Interlocked.Increment(ref counter.Count);
                }

                return new PostgresGatehouseDbContext(sp.GetRequiredService<DbContextOptions<PostgresGatehouseDbContext>>());
            });
        });
        var first = await MintAsync(scenario, challenge: null);
        var codes = new[] { await MintAsync(scenario, Challenge(Verifier)), await MintAsync(scenario, Challenge(Verifier)), await MintAsync(scenario, Challenge(Verifier)) };
        Assert.Equal(HttpStatusCode.OK, (await RedeemAsync(scenario, first, verifier: null)).Status); // Reads the signing key.

        // Act
        var fast = new List<int>();
        foreach (var code in codes)
        {
            Interlocked.Exchange(ref counter.Count, 0);
            var (status, body) = await RedeemAsync(scenario, code, Verifier);
            Assert.True(status == HttpStatusCode.OK, body);
            fast.Add(Interlocked.Exchange(ref counter.Count, 0));
        }

        var (reusedStatus, _) = await RedeemAsync(scenario, codes[0], Verifier);
        var general = Interlocked.Exchange(ref counter.Count, 0);

        // Assert: a redemption creates none. (One may still read the signing key again through a context: the key is
        // kept 10 s, and a key created by another test of this process moves the version every node of it checks.)
        // The general path (a reused code) creates one, so the count sees them.
        Assert.Contains(0, fast);
        Assert.Equal(HttpStatusCode.BadRequest, reusedStatus);
        Assert.True(general > 0);
    }

    private sealed class ContextCounter
    {
        public int Count;
    }

    private static Dictionary<string, string?> Postgres(TestDatabase database) => new() { ["Gatehouse:Store"] = database.ConnectionString() };

    private static string Challenge(string verifier) => System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    private static string Describe(string body)
    {
        using var json = JsonDocument.Parse(body);
        // The description's first line (the lines after it name this request: trace id, time).
        var description = json.RootElement.GetProperty("error_description").GetString()!.Split("\r\n")[0];
        return $"{json.RootElement.GetProperty("error").GetString()} {description}";
    }

    private static JsonElement Claims(string jwt)
    {
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1]));
        return claims.RootElement.Clone();
    }

    private static async Task<string> MintAsync(IdpScenario scenario, string? challenge)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var user = await db.Users.AsNoTracking().SingleAsync(u => u.UserPrincipalName == IdpScenario.Alice);
        var host = await db.Hosts.AsNoTracking().SingleAsync(h => h.Name == "vm1");
        return await scope.ServiceProvider.GetRequiredService<AuthorizationCodeService>().IssueAsync(new AuthorizationCodeRequest
        {
            ClientId = RdpClient.ClientId,
            RedirectUri = RdpClient.BrokerRedirectUri,
            UserId = user.Id,
            Scope = $"{RdpScope.ResourcePrefix}vm1/{RdpScope.ScopeValue}",
            HostId = host.Id,
            CodeChallenge = challenge,
            CodeChallengeMethod = challenge is null ? null : "S256",
            Amr = ["pwd"],
            AuthTime = DateTimeOffset.UtcNow,
        });
    }

    private static async Task<(HttpStatusCode Status, string Body)> RedeemAsync(IdpScenario scenario, string code, string? verifier)
    {
        var thumbprint = System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData("pop-key"u8));
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "authorization_code"),
            new("code", code),
            new("client_id", RdpClient.ClientId),
            new("redirect_uri", RdpClient.BrokerRedirectUri),
            new("req_cnf", System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}"))),
        };
        if (verifier is not null)
        {
            form.Add(new("code_verifier", verifier));
        }

        using var response = await scenario.Server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new FormUrlEncodedContent(form));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}
