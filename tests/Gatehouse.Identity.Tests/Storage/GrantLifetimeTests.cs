using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// How long a sign-in (a grant) lives and what ends it: rotation never extends it past the maximum lifetime; a password
/// set, an MFA reset or disabling the account revokes it; an admin API token whose grant is revoked is refused even when
/// its <c>jti</c> was recorded after the revocation. On SQLite and PostgreSQL.
/// </summary>
public sealed class GrantLifetimeTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private const string Cli = "9f96595f-4eb5-4226-bc18-5d7de55f5d00";

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Rotation_NeverExtendsTheGrantPastItsMaximumLifetime(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var user = await NewUserAsync(env);
        var service = env.Get<RefreshTokenService>();
        var signedIn = env.Time.GetUtcNow();
        var grantId = await service.CreateGrantAsync(user.Id);
        var token = await service.IssueAsync(grantId, user.Id, Cli, AdminTokenService.Scope);

        // Rotated every 10 days, each new token would live 14 more days; the grant's limit is 14 days from the sign-in.
        env.Time.Advance(TimeSpan.FromDays(10));
        var rotated = await service.RotateAsync(token, Cli, env.Time.GetUtcNow());
        Assert.True(rotated.Success, rotated.ToString());
        AssertClose(signedIn, rotated.SignedInAt);
        var stored = await env.Get<GatehouseDbContext>().RefreshTokens.AsNoTracking().SingleAsync(r => r.GrantId == grantId && r.ConsumedAt == null);
        AssertClose(signedIn + env.Options.RefreshTokenMaxLifetime, stored.ExpiresAt);

        env.Time.Set(signedIn + env.Options.RefreshTokenMaxLifetime + TimeSpan.FromSeconds(1));
        var late = await service.RotateAsync(rotated.NewToken!, Cli, env.Time.GetUtcNow());
        Assert.False(late.Success);
        Assert.Equal("invalid_grant", late.Error);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task LoweredMaximumLifetime_AppliesToTokensAlreadyOut(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var user = await NewUserAsync(env);
        var service = env.Get<RefreshTokenService>();
        var grantId = await service.CreateGrantAsync(user.Id);
        var token = await service.IssueAsync(grantId, user.Id, Cli, AdminTokenService.Scope);

        env.Options.RefreshTokenMaxLifetime = TimeSpan.FromHours(8);
        env.Time.Advance(TimeSpan.FromHours(9));

        Assert.False((await service.RotateAsync(token, Cli, env.Time.GetUtcNow())).Success);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task PasswordSet_MfaReset_AndDisable_RevokeEveryGrantOfTheUser_AndItsAdminTokens(StoreProvider provider)
    {
        foreach (var change in new[] { "password set", "MFA reset", "disabled" })
        {
            await using var env = await fixture.CreateEnvAsync(provider);
            var user = await NewUserAsync(env);
            var other = await NewUserAsync(env);
            var service = env.Get<RefreshTokenService>();
            var admin = env.Get<AdminTokenService>();
            var grants = new[] { await service.CreateGrantAsync(user.Id), await service.CreateGrantAsync(user.Id) };
            var refresh = new List<string>();
            var access = new List<string>();
            foreach (var grantId in grants)
            {
                refresh.Add(await service.IssueAsync(grantId, user.Id, Cli, AdminTokenService.Scope));
                access.Add(await admin.IssueForGrantAsync(user, ["pwd"], Cli, grantId));
            }

            var otherGrant = await service.CreateGrantAsync(other.Id);
            var otherRefresh = await service.IssueAsync(otherGrant, other.Id, Cli, AdminTokenService.Scope);
            var otherAccess = await admin.IssueForGrantAsync(other, ["pwd"], Cli, otherGrant);

            var directory = env.Get<DirectoryService>();
            var revokedBefore = await env.Get<GatehouseDbContext>().RevokedTokens.CountAsync();
            switch (change)
            {
                case "password set":
                    await directory.SetPasswordAsync(user, "Another-Horse-22", mustChange: false);
                    break;
                case "MFA reset":
                    await directory.ResetTotpAsync(user);
                    break;
                default:
                    await directory.DisableAsync(user);
                    break;
            }

            foreach (var token in refresh)
            {
                Assert.False((await service.RotateAsync(token, Cli, env.Time.GetUtcNow())).Success, change);
            }

            // Listed as revoked by jti (the user is re-enabled so that only revocation can refuse them).
            await directory.EnableAsync(user);
            foreach (var token in access)
            {
                var validation = await admin.ValidateAsync(token);
                Assert.False(validation.IsValid, change);
                Assert.StartsWith("token has been revoked", validation.Error, StringComparison.Ordinal);
            }

            Assert.Equal(revokedBefore + 2, await env.Get<GatehouseDbContext>().RevokedTokens.CountAsync());
            Assert.True((await admin.ValidateAsync(otherAccess)).IsValid, change);
            Assert.True((await service.RotateAsync(otherRefresh, Cli, env.Time.GetUtcNow())).Success, change);
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task AdminToken_RecordedAfterItsGrantWasRevoked_IsRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var user = await NewUserAsync(env);
        var service = env.Get<RefreshTokenService>();
        var admin = env.Get<AdminTokenService>();
        var grantId = await service.CreateGrantAsync(user.Id);
        var refresh = await service.IssueAsync(grantId, user.Id, Cli, AdminTokenService.Scope);

        // The race: a refresh in flight has passed its checks; sign-out revokes the grant (listing the jtis recorded so
        // far); then the refresh records its token's jti and hands it out.
        Assert.True(await service.RevokeAsync(refresh, Cli, env.Time.GetUtcNow()));
        var late = await admin.IssueForGrantAsync(user, ["pwd"], Cli, grantId);

        var validation = await admin.ValidateAsync(late);
        Assert.False(validation.IsValid);
        Assert.StartsWith("token has been revoked", validation.Error, StringComparison.Ordinal);

        // A token of a live grant is still accepted.
        var live = await service.CreateGrantAsync(user.Id);
        Assert.True((await admin.ValidateAsync(await admin.IssueForGrantAsync(user, ["pwd"], Cli, live))).IsValid);
    }

    /// <summary>The same instant as stored: PostgreSQL keeps microseconds, so ticks below one are dropped on both sides.</summary>
    private static void AssertClose(DateTimeOffset expected, DateTimeOffset actual) =>
        Assert.True(expected.UtcTicks / TicksPerMicrosecond == actual.UtcTicks / TicksPerMicrosecond, $"expected {expected:O}, got {actual:O}");

    private const long TicksPerMicrosecond = 10;

    private static async Task<User> NewUserAsync(TestEnv env)
    {
        var domain = $"t{Guid.NewGuid():N}.test";
        var directory = env.Get<DirectoryService>();
        var tenant = await directory.CreateTenantAsync("Contoso", domain);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, $"u{Guid.NewGuid():N}@{domain}", "User", "Correct-Horse-1", temporary: false);
        return user;
    }
}
