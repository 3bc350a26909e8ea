using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// <see cref="CodeRedemption"/>: the token endpoint's one statement on PostgreSQL that consumes a code and records the
/// tokens issued for it.
/// </summary>
public sealed class CodeRedemptionTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    [Theory]
    [PostgresStore]
    public async Task TryRedeem_RecordsTheTokens_WithTheRefreshTokenCappedAtTheGrantsMaximumLifetime(StoreProvider provider)
    {
        // Arrange: a maximum lifetime shorter than a refresh token's own.
        await using var env = await fixture.CreateEnvAsync(provider);
        env.Options.RefreshTokenMaxLifetime = TimeSpan.FromHours(1);
        var (user, host) = await NewUserAndHostAsync(env);
        var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user, host));
        var grantCreated = env.Time.GetUtcNow();
        env.Time.Advance(TimeSpan.FromSeconds(5));

        // Act
        var request = Request(code, env.Time.GetUtcNow());
        var result = await env.Get<CodeRedemption>().TryRedeemAsync(request);

        // Assert
        Assert.NotNull(result);
        Assert.True(result.TokensRecorded);
        Assert.Equal(user.Id, result.User!.Id);
        Assert.Equal(host.Id, result.Host!.Id);
        var db = env.Get<GatehouseDbContext>();
        var issued = await db.IssuedTokens.AsNoTracking().SingleAsync(t => t.Jti == request.Jti);
        Assert.Equal(result.Code.GrantId, issued.GrantId);
        AssertSameInstant(request.AccessTokenExpiresAt, issued.ExpiresAt);
        var refresh = await db.RefreshTokens.AsNoTracking().SingleAsync(r => r.TokenHash == AuthorizationCodeService.HashSecret(request.RefreshToken));
        AssertSameInstant(grantCreated + TimeSpan.FromHours(1), refresh.ExpiresAt);
        Assert.Equal((result.Code.GrantId, user.Id, RdpClient.ClientId, result.Code.Scope), (refresh.GrantId, refresh.UserId, refresh.ClientId, refresh.Scope));
        Assert.Null(await env.Get<CodeRedemption>().TryRedeemAsync(Request(code, env.Time.GetUtcNow())));
    }

    [Theory]
    [PostgresStore]
    public async Task TryRedeem_ReadsTheCodesUserAndHost_FieldByField_AsTheDirectoryReadsThem(StoreProvider provider)
    {
        // Arrange: a code with the amr and host the access token carries.
        await using var env = await fixture.CreateEnvAsync(provider);
        var (user, host) = await NewUserAndHostAsync(env);
        var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user, host) with { Amr = ["pwd", "mfa"] });

        // Act
        var result = await env.Get<CodeRedemption>().TryRedeemAsync(Request(code, env.Time.GetUtcNow()) with { ClientId = RdpClient.ClientId.ToUpperInvariant() });

        // Assert: field by field what the general path reads (the host's aliases are not read: nothing on this path uses them).
        Assert.NotNull(result);
        Assert.Equal("pwd mfa", result.Code.Amr);
        Assert.Equal(host.Id, result.Code.HostId);
        var (expectedUser, expectedHost) = await env.Get<DirectoryService>().FindUserAndHostAsync(user.Id, host.Id);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(expectedUser), System.Text.Json.JsonSerializer.Serialize(result.User));
        expectedHost!.Aliases = [];
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(expectedHost), System.Text.Json.JsonSerializer.Serialize(result.Host));
        Assert.Equal(BackendSecurity.Nla, result.Host!.BackendSecurity);
    }

    [Theory]
    [PostgresStore]
    public async Task TryRedeem_DisabledUser_SpendsTheCodeAndRecordsNoToken(StoreProvider provider)
    {
        // Arrange
        await using var env = await fixture.CreateEnvAsync(provider);
        var (user, host) = await NewUserAndHostAsync(env);
        var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user, host));

        // Only the account's flag: DirectoryService.DisableAsync also revokes the user's grants, which the statement
        // checks first (it would consume nothing). This is the case where the grant is still live.
        await env.Get<GatehouseDbContext>().Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.Enabled, false));

        // Act
        var request = Request(code, env.Time.GetUtcNow());
        var result = await env.Get<CodeRedemption>().TryRedeemAsync(request);

        // Assert: the general path's order (the code is spent, then the account is refused), and nothing issued.
        Assert.NotNull(result);
        Assert.False(result.TokensRecorded);
        Assert.False(result.User!.Enabled);
        var db = env.Get<GatehouseDbContext>();
        Assert.False(await db.IssuedTokens.AsNoTracking().AnyAsync(t => t.Jti == request.Jti));
        Assert.False(await db.RefreshTokens.AsNoTracking().AnyAsync(r => r.TokenHash == AuthorizationCodeService.HashSecret(request.RefreshToken)));
        Assert.NotNull((await db.AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(code))).RedeemedAt);
    }

    [Theory]
    [PostgresStore]
    public async Task TryRedeem_Racers_OneWinsAndOnlyItsTokensAreRecorded(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (user, host) = await NewUserAndHostAsync(env);
        var redemption = env.Get<CodeRedemption>();
        var db = env.Get<GatehouseDbContext>();
        for (var trial = 0; trial < 10; trial++)
        {
            // Arrange
            var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user, host));
            var requests = Enumerable.Range(0, 4).Select(_ => Request(code, env.Time.GetUtcNow())).ToArray();

            // Act
            var results = await Task.WhenAll(requests.Select(async r =>
            {
                await Task.Yield();
                return await redemption.TryRedeemAsync(r);
            }));

            // Assert
            var winner = Assert.Single(results.Select((r, i) => (Result: r, Request: requests[i])), x => x.Result is not null);
            var jtis = requests.Select(r => r.Jti).ToList();
            var recorded = await db.IssuedTokens.AsNoTracking().Where(t => jtis.Contains(t.Jti)).Select(t => t.Jti).ToListAsync();
            Assert.Equal(new[] { winner.Request.Jti }, recorded);
            var hashes = requests.Select(r => AuthorizationCodeService.HashSecret(r.RefreshToken)).ToList();
            Assert.Single(await db.RefreshTokens.AsNoTracking().Where(r => hashes.Contains(r.TokenHash)).ToListAsync());
        }
    }

    [Theory]
    [PostgresStore]
    public async Task TryRedeem_MalformedVerifier_LeavesItToTheGeneralPath(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (user, host) = await NewUserAndHostAsync(env);
        var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user, host));

        var result = await env.Get<CodeRedemption>().TryRedeemAsync(Request(code, env.Time.GetUtcNow()) with { CodeVerifier = "short" });

        Assert.Null(result);
        Assert.Null((await env.Get<GatehouseDbContext>().AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(code))).RedeemedAt);
    }

    /// <summary>Equal to PostgreSQL's precision (a microsecond).</summary>
    private static void AssertSameInstant(DateTimeOffset expected, DateTimeOffset actual) =>
        Assert.True(Math.Abs((expected - actual).Ticks) < 10, $"expected {expected:O}, got {actual:O}");

    private static CodeRedemptionRequest Request(string code, DateTimeOffset now) => new()
    {
        Code = code,
        ClientId = RdpClient.ClientId,
        RedirectUri = RdpClient.BrokerRedirectUri,
        Now = now,
        Jti = TokenService.NewJti(),
        AccessTokenExpiresAt = now + TimeSpan.FromHours(1),
        RefreshToken = Base64Url.Encode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
    };

    private static AuthorizationCodeRequest CodeRequest(User user, Host host) => new()
    {
        ClientId = RdpClient.ClientId,
        RedirectUri = RdpClient.BrokerRedirectUri,
        UserId = user.Id,
        Scope = RdpScope.For(host.Name),
        HostId = host.Id,
        Amr = ["pwd"],
        AuthTime = DateTimeOffset.UnixEpoch,
    };

    private static async Task<(User User, Host Host)> NewUserAndHostAsync(TestEnv env)
    {
        var directory = env.Get<DirectoryService>();
        var domain = $"t{Guid.NewGuid():N}.test";
        var tenant = await directory.CreateTenantAsync("Contoso", domain);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, $"u{Guid.NewGuid():N}@{domain}", "User", "Correct-Horse-1", temporary: false);
        var host = await directory.CreateHostAsync(tenant.Id, "h" + Guid.NewGuid().ToString("N")[..10], "10.0.0.2", 3390, BackendSecurity.Nla);
        return (user, host);
    }
}
