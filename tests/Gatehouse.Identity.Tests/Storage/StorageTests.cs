using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>The same tests on SQLite (temp file) and PostgreSQL (a database per class).</summary>
public sealed class StorageTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private const string CnfKid = "ZxQjD40lq2A7VJ8nWbYkT3uR1sXcE5fGh6iJ9kLmN0o";

    private static async Task<(Tenant Tenant, string Domain)> NewTenantAsync(TestEnv env)
    {
        var domain = $"t{Guid.NewGuid():N}.test";
        return (await env.Get<DirectoryService>().CreateTenantAsync("Contoso", domain), domain);
    }

    private static async Task<User> NewUserAsync(TestEnv env, Tenant tenant, string domain, string password = "Correct-Horse-1")
    {
        var (user, _) = await env.Get<DirectoryService>().CreateUserAsync(tenant.Id, $"u{Guid.NewGuid():N}@{domain}", "User", password, temporary: false);
        return user;
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Migrations_ApplyOnEmptyDatabase(StoreProvider provider)
    {
        var options = await fixture.GetAsync(provider);
        await using var db = options.CreateContext();
        var all = db.Database.GetMigrations().ToList();
        Assert.NotEmpty(all);
        Assert.Equal(all, await db.Database.GetAppliedMigrationsAsync());
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        Assert.False(db.Database.HasPendingModelChanges());
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task FindUserAndHost_OneQuery_EitherMayBeMissing(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var host = await directory.CreateHostAsync(tenant.Id, $"vm{Guid.NewGuid():N}"[..12], "10.0.0.7", 3389, BackendSecurity.Tls);

        var both = await directory.FindUserAndHostAsync(user.Id, host.Id);
        var noHost = await directory.FindUserAndHostAsync(user.Id, Guid.NewGuid());
        var noUser = await directory.FindUserAndHostAsync(Guid.NewGuid(), host.Id);

        Assert.Equal((user.Id, host.Id), (both.User?.Id, both.Host?.Id));
        Assert.Equal(user.UserPrincipalName, both.User!.UserPrincipalName);
        Assert.Equal(host.Name, both.Host!.Name);
        Assert.Equal(user.Id, noHost.User?.Id);
        Assert.Null(noHost.Host);
        Assert.Null(noUser.User);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Upn_Unique_CaseInsensitive(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        await directory.CreateUserAsync(tenant.Id, "bob@" + domain, "Bob", "Pw-123456789", false);
        await Assert.ThrowsAsync<DbUpdateException>(() => directory.CreateUserAsync(tenant.Id, "BOB@" + domain.ToUpperInvariant(), "Bob 2", "Pw-123456789", false));
        var found = await directory.FindUserByUpnAsync("Bob@" + domain);
        Assert.NotNull(found);
        Assert.Equal("bob@" + domain, found.UserPrincipalName);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Domain_UniqueAcrossTenants(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (_, domain) = await NewTenantAsync(env);
        await Assert.ThrowsAsync<DbUpdateException>(() => env.Get<DirectoryService>().CreateTenantAsync("Other", domain.ToUpperInvariant()));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task FindTenant_GuidDomainAndCommon(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        Assert.Equal(tenant.Id, (await directory.FindTenantAsync(tenant.Id.ToString()))?.Id);
        Assert.Equal(tenant.Id, (await directory.FindTenantAsync(domain.ToUpperInvariant()))?.Id);
        Assert.NotNull(await directory.FindTenantAsync("common"));
        Assert.Null(await directory.FindTenantAsync("nosuch.test"));
        Assert.Null(await directory.FindTenantAsync(Guid.NewGuid().ToString()));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Groups_UniqueNamePerTenant_Membership(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var (other, _) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var group = await directory.CreateGroupAsync(tenant.Id, "RDP Users");
        await directory.CreateGroupAsync(other.Id, "rdp users");
        await Assert.ThrowsAsync<DbUpdateException>(() => directory.CreateGroupAsync(tenant.Id, "rdp USERS"));
        await directory.AddGroupMemberAsync(group.Id, user.Id);
        await directory.AddGroupMemberAsync(group.Id, user.Id);
        Assert.Equal([group.Id], await directory.GetUserGroupIdsAsync(user.Id));
        await directory.RemoveGroupMemberAsync(group.Id, user.Id);
        Assert.Empty(await directory.GetUserGroupIdsAsync(user.Id));
        var hostGroup = await directory.CreateHostGroupAsync(tenant.Id, "Servers");
        Assert.Equal("servers", hostGroup.Name);
        await Assert.ThrowsAsync<DbUpdateException>(() => directory.CreateHostGroupAsync(tenant.Id, "SERVERS"));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Domains_AddedDomainAcceptsUsers_UnverifiedRefused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, _) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        var extra = $"x{Guid.NewGuid():N}.test";
        await Assert.ThrowsAsync<ArgumentException>(() => directory.CreateUserAsync(tenant.Id, "carol@" + extra, "Carol", "Pw-0123456789", false));
        await directory.AddDomainAsync(tenant.Id, extra.ToUpperInvariant());
        var (carol, temporary) = await directory.CreateUserAsync(tenant.Id, "carol@" + extra, "Carol", null, false);
        Assert.NotNull(temporary);
        Assert.Equal(16, temporary.Length);
        Assert.True(carol.MustChangePassword);
        Assert.Equal(tenant.Id, (await directory.FindTenantAsync(extra))?.Id);
        await Assert.ThrowsAsync<ArgumentException>(() => directory.CreateUserAsync(tenant.Id, "no-at-sign", "X", "Pw-0123456789", false));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Bootstrap_Idempotent_PasswordOnlyOnce(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var domain = $"b{Guid.NewGuid():N}.test";
        var directory = env.Get<DirectoryService>();
        var first = await directory.BootstrapAsync(domain);
        Assert.NotNull(first.TemporaryPassword);
        Assert.DoesNotContain(first.TemporaryPassword, first.ToString(), StringComparison.Ordinal);
        var second = await directory.BootstrapAsync(domain.ToUpperInvariant());
        Assert.Null(second.TemporaryPassword);
        Assert.Equal(first.Tenant.Id, second.Tenant.Id);
        var admin = await directory.FindUserByUpnAsync(first.AdminUpn);
        Assert.NotNull(admin);
        Assert.True(admin.MustChangePassword);
        var check = await env.Get<SignInService>().CheckPasswordAsync(admin, first.TemporaryPassword, IPAddress.Loopback, env.Time.GetUtcNow());
        Assert.Equal(PasswordCheckResult.MustChangePassword, check.Result);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Host_FindByNameOrAlias_SecretsEncrypted(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, _) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        var name = "ws" + Guid.NewGuid().ToString("N")[..8];
        var alias = "al" + Guid.NewGuid().ToString("N")[..8];
        var host = await directory.CreateHostAsync(tenant.Id, name.ToUpperInvariant(), "10.1.2.3", 3389, BackendSecurity.Nla, "admin", "S3cret-admin", "rdpuser", "S3cret-user", [alias]);
        Assert.Equal(name, host.Name);
        Assert.Equal(host.Id, (await directory.FindHostByLabelAsync(tenant.Id, name.ToUpperInvariant()))?.Id);
        Assert.Equal(host.Id, (await directory.FindHostByLabelAsync(tenant.Id, alias))?.Id);
        Assert.Null(await directory.FindHostByLabelAsync(Guid.NewGuid(), name));
        Assert.Null(await directory.FindHostByLabelAsync(tenant.Id, "127"));
        var stored = await env.Get<GatehouseDbContext>().Hosts.AsNoTracking().SingleAsync(h => h.Id == host.Id);
        Assert.DoesNotContain("S3cret", stored.AdminSecretProtected!, StringComparison.Ordinal);
        Assert.Equal("S3cret-admin", directory.UnprotectHostSecret(stored.AdminSecretProtected!));
        Assert.Equal(BackendSecurity.Nla, stored.BackendSecurity);
        await Assert.ThrowsAsync<ArgumentException>(() => directory.CreateHostAsync(tenant.Id, "127", "10.1.2.3", 3389, BackendSecurity.Tls));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task HostCertificatePin_FirstKeyRecordedOnce_OnlyForTheBackendItWasReadFrom_ThenReplaced(StoreProvider provider)
    {
        const string first = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        const string second = "SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA";
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, _) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        var host = await directory.CreateHostAsync(tenant.Id, "p" + Guid.NewGuid().ToString("N")[..10], "192.0.2.10", 3389, BackendSecurity.Tls);
        Assert.Null(host.CertificatePin);

        // Another backend (the host was moved meanwhile) records nothing.
        Assert.Null(await directory.RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.11", 3389, BackendSecurity.Tls, first, "connection"));
        Assert.Null(await directory.RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.10", 3390, BackendSecurity.Tls, first, "connection"));
        Assert.Null(await directory.RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.10", 3389, BackendSecurity.Nla, first, "connection"));
        Assert.Null((await directory.FindHostAsync(host.Id))!.CertificatePin);

        // The first key wins; a second first use gets it back rather than recording its own.
        env.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(first, await directory.RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.10", 3389, BackendSecurity.Tls, first, "host create"));
        Assert.Equal(first, await directory.RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.10", 3389, BackendSecurity.Tls, second, "connection"));
        var stored = (await directory.FindHostAsync(host.Id))!;
        Assert.Equal((first, "host create", env.Time.GetUtcNow()), (stored.CertificatePin, stored.CertificatePinnedBy, stored.CertificatePinnedAt));

        // Replacing it (host trust) holds only for the same backend too.
        Assert.False(await directory.SetHostCertificatePinAsync(host.Id, "192.0.2.11", 3389, BackendSecurity.Tls, second, "host trust"));
        Assert.Equal(first, (await directory.FindHostAsync(host.Id))!.CertificatePin);
        env.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(await directory.SetHostCertificatePinAsync(host.Id, "192.0.2.10", 3389, BackendSecurity.Tls, second, "host trust"));
        stored = (await directory.FindHostAsync(host.Id))!;
        Assert.Equal((second, "host trust", env.Time.GetUtcNow()), (stored.CertificatePin, stored.CertificatePinnedBy, stored.CertificatePinnedAt));
        Assert.False(await directory.SetHostCertificatePinAsync(Guid.NewGuid(), "192.0.2.10", 3389, BackendSecurity.Tls, second, "host trust"));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task HostCertificatePin_ConcurrentFirstUses_RecordExactlyOneKey(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, _) = await NewTenantAsync(env);
        var host = await env.Get<DirectoryService>().CreateHostAsync(tenant.Id, "r" + Guid.NewGuid().ToString("N")[..10], "192.0.2.20", 3389, BackendSecurity.Tls);
        var keys = Enumerable.Range(0, 8).Select(i => "SHA256:" + Convert.ToBase64String(SHA256.HashData([(byte)i])).TrimEnd('=')).ToList();

        // Each "connection" in its own scope (its own DbContext), as the gateway's legs are.
        var results = await Task.WhenAll(keys.Select(async key =>
        {
            await using var scope = env.NewScope();
            return await scope.ServiceProvider.GetRequiredService<DirectoryService>().RecordHostCertificateOnFirstUseAsync(host.Id, "192.0.2.20", 3389, BackendSecurity.Tls, key, "connection");
        }));

        var stored = (await env.Get<DirectoryService>().FindHostAsync(host.Id))!.CertificatePin;
        Assert.Contains(stored, keys);
        Assert.All(results, r => Assert.Equal(stored, r));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task DateTimeOffset_NonUtcOffset_StoredAsSameInstant(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var host = await env.Get<DirectoryService>().CreateHostAsync(tenant.Id, "o" + Guid.NewGuid().ToString("N")[..10], "10.0.0.1", 3389, BackendSecurity.Tls);
        var granted = new DateTimeOffset(2026, 11, 23, 10, 0, 0, TimeSpan.FromHours(2));
        await env.Get<ConsentService>().GrantAsync(user.Id, host.Id, granted);
        var stored = await env.Get<GatehouseDbContext>().Consents.AsNoTracking().SingleAsync(c => c.UserId == user.Id);
        Assert.Equal(granted.UtcDateTime, stored.GrantedAt.UtcDateTime);
        Assert.True(await env.Get<ConsentService>().HasConsentAsync(user.Id, host.Id, granted.AddDays(29).ToOffset(TimeSpan.FromHours(-5))));
    }

    private static AuthorizationCodeRequest CodeRequest(User user, string clientId = RdpClient.ClientId, string? challenge = null) => new()
    {
        ClientId = clientId,
        RedirectUri = RdpClient.BrokerRedirectUri,
        UserId = user.Id,
        Scope = RdpScope.For("wkstn1"),
        Amr = ["pwd"],
        AuthTime = DateTimeOffset.UnixEpoch,
        CodeChallenge = challenge,
        CodeChallengeMethod = challenge is null ? null : "S256",
    };

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_RedeemOnce_ReuseRevokesGrantAndTokens(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var host = await env.Get<DirectoryService>().CreateHostAsync(tenant.Id, "c" + Guid.NewGuid().ToString("N")[..10], "10.0.0.1", 3389, BackendSecurity.Tls);
        var codes = env.Get<AuthorizationCodeService>();
        var code = await codes.IssueAsync(CodeRequest(user));
        Assert.Equal(43, code.Length);
        Assert.True(Base64Url.IsAlphabet(code));
        var stored = await env.Get<GatehouseDbContext>().AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(code));
        Assert.Equal(TimeSpan.FromSeconds(60), stored.ExpiresAt - stored.CreatedAt);

        var now = env.Time.GetUtcNow();
        var first = await codes.RedeemAsync(code[..20] + "\r\n" + code[20..], RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now);
        Assert.True(first.Success, first.ErrorDescription);
        var grantId = first.Code!.GrantId;
        var refresh = await env.Get<RefreshTokenService>().IssueAsync(grantId, user.Id, RdpClient.ClientId, first.Code.Scope);
        var token = await env.Get<TokenService>().IssueRdpAccessTokenAsync(new RdpTokenRequest
        {
            Tenant = tenant,
            User = user,
            Host = host,
            Amr = ["pwd"],
            AuthTime = now,
            ClientId = RdpClient.ClientId,
            CnfKid = CnfKid,
            GrantId = grantId,
        });
        Assert.True((await env.Get<TokenService>().ValidateRdpAccessTokenAsync(token, host.Name, now)).IsValid);

        var second = await codes.RedeemAsync(code, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now);
        Assert.False(second.Success);
        Assert.Equal("invalid_grant", second.Error);
        Assert.StartsWith("AADSTS54005", second.ErrorDescription, StringComparison.Ordinal);

        var db = env.Get<GatehouseDbContext>();
        Assert.NotNull((await db.Grants.AsNoTracking().SingleAsync(g => g.Id == grantId)).RevokedAt);
        Assert.True(await db.RevokedTokens.AnyAsync(r => r.Jti == new JsonWebToken(token).Id));
        Assert.False((await env.Get<TokenService>().ValidateRdpAccessTokenAsync(token, host.Name, now)).IsValid);
        Assert.False((await env.Get<RefreshTokenService>().RotateAsync(refresh, RdpClient.ClientId, now)).Success);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_ConcurrentRedeem_ExactlyOneWins(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        for (var trial = 0; trial < 10; trial++)
        {
            var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user));
            var now = env.Time.GetUtcNow();
            async Task<RedeemResult> RedeemAsync()
            {
                await using var scope = env.NewScope();
                await Task.Yield();
                return await scope.ServiceProvider.GetRequiredService<AuthorizationCodeService>()
                    .RedeemAsync(code, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now);
            }

            var results = await Task.WhenAll(RedeemAsync(), RedeemAsync());
            Assert.Single(results, r => r.Success);
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_Redeem_ReturnsTheCodeWithItsHostAndAmr_AndConsumesIt(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var host = await directory.CreateHostAsync(tenant.Id, "d" + Guid.NewGuid().ToString("N")[..10], "10.0.0.2", 3390, BackendSecurity.Nla);
        var codes = env.Get<AuthorizationCodeService>();
        var code = await codes.IssueAsync(CodeRequest(user) with { HostId = host.Id, Amr = ["pwd", "mfa"] });

        var redeemed = await codes.RedeemAsync(code, RdpClient.ClientId.ToUpperInvariant(), RdpClient.BrokerRedirectUri, null, env.Time.GetUtcNow());

        Assert.True(redeemed.Success, redeemed.ErrorDescription);
        Assert.Equal("pwd mfa", redeemed.Code!.Amr);
        Assert.Equal(host.Id, redeemed.Code.HostId);
        var stored = await env.Get<GatehouseDbContext>().AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(code));
        Assert.NotNull(stored.RedeemedAt);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_GrantRevoked_RefusedAndNotConsumed(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var codes = env.Get<AuthorizationCodeService>();
        var code = await codes.IssueAsync(CodeRequest(user));
        var db = env.Get<GatehouseDbContext>();
        var hash = AuthorizationCodeService.HashSecret(code);
        var grantId = (await db.AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == hash)).GrantId;
        await env.Get<RefreshTokenService>().RevokeGrantAsync(grantId, "test", env.Time.GetUtcNow());

        var redeemed = await codes.RedeemAsync(code, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, env.Time.GetUtcNow());

        Assert.False(redeemed.Success);
        Assert.Equal("AADSTS70000: The grant has been revoked.", redeemed.ErrorDescription);
        Assert.Null((await db.AuthorizationCodes.AsNoTracking().SingleAsync(c => c.CodeHash == hash)).RedeemedAt);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_ExpiredClientRedirectChecks_Refused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var codes = env.Get<AuthorizationCodeService>();
        var now = env.Time.GetUtcNow();

        var expired = await codes.IssueAsync(CodeRequest(user));
        Assert.StartsWith("AADSTS70008", (await codes.RedeemAsync(expired, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now.AddSeconds(60))).ErrorDescription, StringComparison.Ordinal);

        var wrongRedirect = await codes.IssueAsync(CodeRequest(user));
        Assert.False((await codes.RedeemAsync(wrongRedirect, RdpClient.ClientId, RdpClient.BrokerRedirectUri + "/", null, now)).Success);
        Assert.False((await codes.RedeemAsync(wrongRedirect, "other-client", RdpClient.BrokerRedirectUri, null, now)).Success);
        Assert.False((await codes.RedeemAsync(wrongRedirect, RdpClient.ClientId, RdpClient.BrokerRedirectUri, new string('a', 43), now)).Success); // verifier without challenge
        Assert.True((await codes.RedeemAsync(wrongRedirect, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now)).Success);

        Assert.False((await codes.RedeemAsync("unknown-code", RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now)).Success);
        Assert.False((await codes.RedeemAsync("bad code!", RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now)).Success);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Code_Pkce_S256RequiredForOtherClients(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var codes = env.Get<AuthorizationCodeService>();
        var now = env.Time.GetUtcNow();
        await Assert.ThrowsAsync<ArgumentException>(() => codes.IssueAsync(CodeRequest(user, "web-app")));

        var verifier = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var code = await codes.IssueAsync(CodeRequest(user, "web-app", challenge));
        Assert.False((await codes.RedeemAsync(code, "web-app", RdpClient.BrokerRedirectUri, null, now)).Success);
        Assert.False((await codes.RedeemAsync(code, "web-app", RdpClient.BrokerRedirectUri, verifier[..^1] + (verifier[^1] == 'A' ? "B" : "A"), now)).Success);
        Assert.True((await codes.RedeemAsync(code, "web-app", RdpClient.BrokerRedirectUri, verifier, now)).Success);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Purge_RemovesOnlyExpiredRows(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var codes = env.Get<AuthorizationCodeService>();
        var db = env.Get<GatehouseDbContext>();
        var t0 = env.Time.GetUtcNow();
        await codes.PurgeExpiredAsync(t0.AddYears(1)); // a clean slate for this class's database
        var early = await codes.IssueAsync(CodeRequest(user));
        env.Time.Advance(TimeSpan.FromSeconds(30));
        var late = await codes.IssueAsync(CodeRequest(user));
        Assert.Equal(1, await codes.PurgeExpiredAsync(t0.AddSeconds(60)));
        Assert.False(await db.AuthorizationCodes.AnyAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(early)));
        Assert.True(await db.AuthorizationCodes.AnyAsync(c => c.CodeHash == AuthorizationCodeService.HashSecret(late)));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task SignIn_UnknownUser_InvalidPassword(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        Assert.Equal(PasswordCheckResult.InvalidPassword, env.Get<SignInService>().CheckUnknownUser("whatever").Result);
        Assert.Null(await env.Get<DirectoryService>().FindUserByUpnAsync("nobody@nowhere.test"));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task RefreshToken_Rotation_ReuseRevokesGrant(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var code = await env.Get<AuthorizationCodeService>().IssueAsync(CodeRequest(user));
        var now = env.Time.GetUtcNow();
        var redeemed = await env.Get<AuthorizationCodeService>().RedeemAsync(code, RdpClient.ClientId, RdpClient.BrokerRedirectUri, null, now);
        var service = env.Get<RefreshTokenService>();
        var t1 = await service.IssueAsync(redeemed.Code!.GrantId, user.Id, RdpClient.ClientId, redeemed.Code.Scope);
        var r1 = await service.RotateAsync(t1, RdpClient.ClientId, now);
        Assert.True(r1.Success);
        Assert.NotEqual(t1, r1.NewToken);
        Assert.False((await service.RotateAsync(r1.NewToken!, "other-client", now)).Success);
        Assert.False((await service.RotateAsync(t1, RdpClient.ClientId, now)).Success); // reuse
        Assert.False((await service.RotateAsync(r1.NewToken!, RdpClient.ClientId, now)).Success); // grant revoked
        var grant = await env.Get<GatehouseDbContext>().Grants.AsNoTracking().SingleAsync(g => g.Id == redeemed.Code.GrantId);
        Assert.Equal("refresh token reused", grant.RevokedReason);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task RefreshToken_Expired_Refused(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var service = env.Get<RefreshTokenService>();
        var token = await service.IssueAsync(Guid.NewGuid(), user.Id, RdpClient.ClientId, "s");
        Assert.False((await service.RotateAsync(token, RdpClient.ClientId, env.Time.GetUtcNow() + env.Options.RefreshTokenLifetime)).Success);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task OldPbkdf2Hash_SignIn_RehashedToArgon2idExactlyOnce(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var old = Unit.PasswordHasherTests.Pbkdf2Hash("Correct-Horse-1");
        await env.Get<GatehouseDbContext>().Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.PasswordHash, old));
        var address = IPAddress.Parse("203.0.113.7");
        async Task<string> StoredAsync()
        {
            await using var scope = env.NewScope();
            return (await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == user.Id)).PasswordHash;
        }

        // A wrong password never rehashes.
        Assert.Equal(PasswordCheckResult.InvalidPassword, (await env.Get<SignInService>().CheckPasswordAsync(user, "Correct-Horse-2", address, env.Time.GetUtcNow())).Result);
        Assert.Equal(old, await StoredAsync());

        // Two sign-ins at once, each in its own scope (as two requests, or two nodes): both succeed, one new hash is kept.
        async Task<PasswordCheckResult> SignInAsync()
        {
            await using var scope = env.NewScope();
            return (await scope.ServiceProvider.GetRequiredService<SignInService>().CheckPasswordAsync(user, "Correct-Horse-1", address, env.Time.GetUtcNow())).Result;
        }

        var results = await Task.WhenAll(SignInAsync(), SignInAsync());
        Assert.All(results, r => Assert.Equal(PasswordCheckResult.Success, r));
        var rehashed = await StoredAsync();
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", rehashed, StringComparison.Ordinal);
        var hasher = env.Get<PasswordHasher>();
        Assert.Equal(PasswordVerification.Success, hasher.Verify(rehashed, "Correct-Horse-1"));

        // The next sign-in finds nothing to upgrade: the stored string does not change again.
        Assert.Equal(PasswordCheckResult.Success, await SignInAsync());
        Assert.Equal(rehashed, await StoredAsync());

        // A weaker Argon2id row (below the configured cost) is upgraded the same way.
        var weak = PasswordHasher.HashUngated("Correct-Horse-1", 8192, 2);
        await env.Get<GatehouseDbContext>().Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.PasswordHash, weak));
        Assert.Equal(PasswordCheckResult.Success, await SignInAsync());
        Assert.StartsWith("$argon2id$v=19$m=19456,t=2,p=1$", await StoredAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Lockout_TenFailures_LocksSixtySecondsThenDoubles(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var signIn = env.Get<SignInService>();
        var address = IPAddress.Parse("203.0.113.9");
        var now = env.Time.GetUtcNow();
        for (var i = 0; i < 9; i++)
        {
            Assert.Equal(PasswordCheckResult.InvalidPassword, (await signIn.CheckPasswordAsync(user, "wrong" + i, address, now)).Result);
        }

        var locked = await signIn.CheckPasswordAsync(user, "wrong-last", address, now);
        Assert.Equal(PasswordCheckResult.Locked, locked.Result);
        Assert.Equal(now.AddSeconds(60), locked.LockedUntil);
        Assert.Equal(PasswordCheckResult.Locked, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", address, now.AddSeconds(59))).Result);

        now = now.AddSeconds(61);
        for (var i = 0; i < 10; i++)
        {
            await signIn.CheckPasswordAsync(user, "again" + i, address, now);
        }

        var state = await env.Get<GatehouseDbContext>().LockoutStates.AsNoTracking().SingleAsync(s => s.UserId == user.Id && !s.Familiar);
        Assert.Equal(2, state.Lockouts);
        Assert.Equal(now.AddSeconds(120), state.LockedUntil);
        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", address, now.AddSeconds(121))).Result);
        Assert.Equal(0, (await env.Get<GatehouseDbContext>().LockoutStates.AsNoTracking().SingleAsync(s => s.UserId == user.Id && !s.Familiar)).Failures);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Lockout_SameWrongPasswordRepeated_CountedOnce(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var signIn = env.Get<SignInService>();
        var address = IPAddress.Parse("203.0.113.50");
        var now = env.Time.GetUtcNow();
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(PasswordCheckResult.InvalidPassword, (await signIn.CheckPasswordAsync(user, i % 2 == 0 ? "old-saved-1" : "old-saved-2", address, now)).Result);
        }

        var state = await env.Get<GatehouseDbContext>().LockoutStates.AsNoTracking().SingleAsync(s => s.UserId == user.Id);
        Assert.Equal(2, state.Failures);
        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", address, now)).Result);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Lockout_UnfamiliarSpray_DoesNotLockFamiliarNetwork(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var signIn = env.Get<SignInService>();
        var now = env.Time.GetUtcNow();
        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Parse("192.0.2.10"), now)).Result);
        Assert.Equal("192.0.2.0/24", SignInService.NetworkOf(IPAddress.Parse("192.0.2.10")));
        Assert.Equal("2001:db8:1:2::/64", SignInService.NetworkOf(IPAddress.Parse("2001:db8:1:2:3:4:5:6")));

        var attacker = IPAddress.Parse("198.51.100.7");
        for (var i = 0; i < 10; i++)
        {
            await signIn.CheckPasswordAsync(user, "guess" + i, attacker, now);
        }

        Assert.Equal(PasswordCheckResult.Locked, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", attacker, now)).Result);
        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Parse("192.0.2.77"), now)).Result);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task NtHash_MissingFromAnOlderPassword_IsFilledInByTheFirstSuccessfulSignIn_NotByAWrongOne(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain, "Correct-Horse-1");
        var db = env.Get<GatehouseDbContext>();
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.NtHashProtected, (byte[]?)null));
        async Task<User> ReloadAsync() => await env.Get<GatehouseDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == user.Id);
        var signIn = env.Get<SignInService>();
        var directory = env.Get<DirectoryService>();
        var now = DateTimeOffset.UtcNow;

        Assert.Equal(PasswordCheckResult.InvalidPassword, (await signIn.CheckPasswordAsync(user, "Wrong-Horse-1", IPAddress.Loopback, now)).Result);
        Assert.Null((await ReloadAsync()).NtHashProtected);

        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Loopback, now)).Result);
        var filled = await ReloadAsync();
        Assert.Equal(Gatehouse.Protocol.Ntlm.NtlmV2.NtHash("Correct-Horse-1"), directory.RevealNtHash(filled));
        Assert.True(filled.NtHashProtected!.AsSpan().IndexOf(Gatehouse.Protocol.Ntlm.NtlmV2.NtHash("Correct-Horse-1")) < 0, "the NT hash is not stored in the clear");

        // A present hash is left alone by later sign-ins.
        Assert.Equal(PasswordCheckResult.Success, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Loopback, now)).Result);
        Assert.Equal(filled.NtHashProtected, (await ReloadAsync()).NtHashProtected);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task NtHash_IsKeptEncrypted_ForEveryPasswordSet(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var directory = env.Get<DirectoryService>();
        async Task<User> ReloadAsync(Guid id) => await env.Get<GatehouseDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == id);

        // Created with a chosen password.
        var user = await NewUserAsync(env, tenant, domain, "Correct-Horse-1");
        var stored = await ReloadAsync(user.Id);
        Assert.NotNull(stored.NtHashProtected);
        var expected = Gatehouse.Protocol.Ntlm.NtlmV2.NtHash("Correct-Horse-1");
        Assert.True(stored.NtHashProtected.AsSpan().IndexOf(expected) < 0, "the NT hash is not stored in the clear");
        Assert.Equal(expected, directory.RevealNtHash(stored));

        // Created with a generated temporary password.
        var (temp, generated) = await directory.CreateUserAsync(tenant.Id, $"t{Guid.NewGuid():N}@{domain}", "Temp", null, false);
        Assert.Equal(Gatehouse.Protocol.Ntlm.NtlmV2.NtHash(generated!), directory.RevealNtHash(await ReloadAsync(temp.Id)));

        // Reset by an administrator (temporary), then the forced change.
        await directory.SetPasswordAsync(user, "Reset-Pass-123", mustChange: true);
        Assert.Equal(Gatehouse.Protocol.Ntlm.NtlmV2.NtHash("Reset-Pass-123"), directory.RevealNtHash(await ReloadAsync(user.Id)));
        await directory.SetPasswordAsync(user, "Changed-Pass-456", mustChange: false);
        var changed = await ReloadAsync(user.Id);
        Assert.Equal(Gatehouse.Protocol.Ntlm.NtlmV2.NtHash("Changed-Pass-456"), directory.RevealNtHash(changed));
        Assert.Equal(changed.NtHashProtected, user.NtHashProtected);

        // Another purpose's protector cannot read it, and a missing or damaged value reveals nothing.
        Assert.ThrowsAny<CryptographicException>(() => fixture.DataProtection.CreateProtector(DirectoryService.TotpPurpose).Unprotect(changed.NtHashProtected!));
        Assert.Null(directory.RevealNtHash(new User { NtHashProtected = null }));
        Assert.Null(directory.RevealNtHash(new User { NtHashProtected = [1, 2, 3, 4] }));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task SignIn_DisabledAndMustChange(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var signIn = env.Get<SignInService>();
        var now = env.Time.GetUtcNow();
        await directory.DisableAsync(user);
        Assert.Equal(PasswordCheckResult.Disabled, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Loopback, now)).Result);
        await directory.EnableAsync(user);
        await directory.SetPasswordAsync(user, "Temp-Pass-123", mustChange: true);
        Assert.Equal(PasswordCheckResult.MustChangePassword, (await signIn.CheckPasswordAsync(user, "Temp-Pass-123", IPAddress.Loopback, now)).Result);
        Assert.Equal(PasswordCheckResult.InvalidPassword, (await signIn.CheckPasswordAsync(user, "Correct-Horse-1", IPAddress.Loopback, now)).Result);
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Totp_EnrollConfirmVerify_ReuseRefusedEvenConcurrently(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var enrollment = await directory.BeginTotpEnrollmentAsync(user);
        Assert.StartsWith("otpauth://totp/Gatehouse:", enrollment.OtpAuthUri, StringComparison.Ordinal);
        var secret = Totp.Base32Decode(enrollment.SecretBase32);
        var stored = await env.Get<GatehouseDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == user.Id);
        Assert.DoesNotContain(enrollment.SecretBase32, stored.TotpSecretProtected!, StringComparison.Ordinal);
        // An enrolment the administrator started is finished at the next sign-in.
        Assert.Equal(MfaRequirement.Enroll, env.Get<SignInService>().GetMfaRequirement(stored, null));
        Assert.Equal(secret, directory.PendingTotpSecret(stored));

        var step = Totp.StepAt(env.Time.GetUtcNow());
        Assert.True(await directory.ConfirmTotpAsync(user, Totp.Compute(secret, step)));
        Assert.Equal(MfaRequirement.Verify, env.Get<SignInService>().GetMfaRequirement(user, null));
        Assert.Null(directory.PendingTotpSecret(user));
        Assert.False(await env.Get<SignInService>().VerifyTotpAsync(user, Totp.Compute(secret, step), env.Time.GetUtcNow()));

        env.Time.Advance(TimeSpan.FromSeconds(30));
        var code = Totp.Compute(secret, step + 1);
        async Task<bool> VerifyAsync()
        {
            await using var scope = env.NewScope();
            await Task.Yield();
            return await scope.ServiceProvider.GetRequiredService<SignInService>().VerifyTotpAsync(user, code, env.Time.GetUtcNow());
        }

        var results = await Task.WhenAll(VerifyAsync(), VerifyAsync());
        Assert.Single(results, r => r);
        await directory.ResetTotpAsync(user);
        Assert.False(await env.Get<SignInService>().VerifyTotpAsync(user, Totp.Compute(secret, step + 2), env.Time.GetUtcNow().AddSeconds(30)));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Totp_ConfirmOfAHeldSecret_StoresItOnce_AndNeverReplacesAConfirmedMethod(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        Assert.Equal(MfaRequirement.None, env.Get<SignInService>().GetMfaRequirement(user, null));
        env.Options.RequireMfaEnrollment = true;
        Assert.Equal(MfaRequirement.Enroll, env.Get<SignInService>().GetMfaRequirement(user, null));

        var secret = DirectoryService.NewTotpSecret();
        var step = Totp.StepAt(env.Time.GetUtcNow());
        Assert.False(await directory.ConfirmTotpAsync(user, secret, Totp.Compute(secret, step + 3)));
        Assert.Null((await directory.FindUserAsync(user.Id))!.TotpSecretProtected);

        Assert.True(await directory.ConfirmTotpAsync(user, secret, Totp.Compute(secret, step)));
        var stored = (await directory.FindUserAsync(user.Id))!;
        Assert.NotNull(stored.TotpConfirmedAt);
        Assert.Equal(step, stored.TotpLastStep);
        Assert.Equal(MfaRequirement.Verify, env.Get<SignInService>().GetMfaRequirement(stored, null));

        // A second enrolment (a replayed form, or another browser's) cannot replace the method, even with a valid code.
        var other = DirectoryService.NewTotpSecret();
        env.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.False(await directory.ConfirmTotpAsync(user, other, Totp.Compute(other, step + 1)));
        Assert.Equal(stored.TotpSecretProtected, (await directory.FindUserAsync(user.Id))!.TotpSecretProtected);
        Assert.True(await env.Get<SignInService>().VerifyTotpAsync(stored, Totp.Compute(secret, step + 1), env.Time.GetUtcNow()));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Totp_Replace_NeedsAConfirmedMethod_StoresTheNewSecretOnce_OldCodesStopWorking(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var step = Totp.StepAt(env.Time.GetUtcNow());
        var replacement = DirectoryService.NewTotpSecret();

        // Nothing to replace yet: enrolment is ConfirmTotpAsync's.
        Assert.False(await directory.ReplaceTotpAsync(user, replacement, Totp.Compute(replacement, step)));
        Assert.Null((await directory.FindUserAsync(user.Id))!.TotpSecretProtected);

        var old = DirectoryService.NewTotpSecret();
        Assert.True(await directory.ConfirmTotpAsync(user, old, Totp.Compute(old, step)));

        // A wrong code of the new secret changes nothing; a right one in the same step as the old code's replaces it.
        Assert.False(await directory.ReplaceTotpAsync(user, replacement, Totp.Compute(replacement, step + 3)));
        Assert.True(await directory.ReplaceTotpAsync(user, replacement, Totp.Compute(replacement, step)));
        var stored = (await directory.FindUserAsync(user.Id))!;
        Assert.Equal(step, stored.TotpLastStep);

        // The same form replayed (same secret, same code) is refused; the old app's codes no longer sign in.
        Assert.False(await directory.ReplaceTotpAsync(user, replacement, Totp.Compute(replacement, step)));
        Assert.Equal(stored.TotpSecretProtected, (await directory.FindUserAsync(user.Id))!.TotpSecretProtected);
        Assert.False(await env.Get<SignInService>().VerifyTotpAsync(stored, Totp.Compute(old, step + 1), env.Time.GetUtcNow()));
        Assert.True(await env.Get<SignInService>().VerifyTotpAsync(stored, Totp.Compute(replacement, step + 1), env.Time.GetUtcNow()));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Consent_ThirtyDays_CapFifteenOldestDropped(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var (tenant, domain) = await NewTenantAsync(env);
        var user = await NewUserAsync(env, tenant, domain);
        var directory = env.Get<DirectoryService>();
        var consents = env.Get<ConsentService>();
        var start = env.Time.GetUtcNow();
        var hosts = new List<Guid>();
        for (var i = 0; i < 16; i++)
        {
            var host = await directory.CreateHostAsync(tenant.Id, $"k{i}x" + Guid.NewGuid().ToString("N")[..8], "10.0.0.1", 3389, BackendSecurity.Tls);
            hosts.Add(host.Id);
            await consents.GrantAsync(user.Id, host.Id, start.AddMinutes(i));
        }

        var now = start.AddMinutes(20);
        Assert.Equal(15, (await consents.ListAsync(user.Id)).Count);
        Assert.False(await consents.HasConsentAsync(user.Id, hosts[0], now));
        Assert.True(await consents.HasConsentAsync(user.Id, hosts[1], now));
        Assert.True(await consents.HasConsentAsync(user.Id, hosts[15], now));

        // Refreshing the oldest keeps it; 30 days after a grant it has lapsed (a time comparison in SQL).
        await consents.GrantAsync(user.Id, hosts[1], start.AddDays(1));
        Assert.True(await consents.HasConsentAsync(user.Id, hosts[1], start.AddDays(30)));
        Assert.False(await consents.HasConsentAsync(user.Id, hosts[2], start.AddMinutes(2).AddDays(30)));
        Assert.True(await consents.HasConsentAsync(user.Id, hosts[2], start.AddMinutes(2).AddDays(30).AddSeconds(-1)));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task DataProtectionKeys_RoundTripAcrossNodes(StoreProvider provider)
    {
        var options = await fixture.GetAsync(provider);
        ServiceProvider Node()
        {
            var services = new ServiceCollection();
            services.AddGatehouseStore(options);
            services.AddDataProtection().SetApplicationName("gatehouse-tests").PersistKeysToGatehouseStore();
            return services.BuildServiceProvider();
        }

        await using var a = Node();
        var marker = new XElement("marker", Guid.NewGuid().ToString());
        var repository = new DbXmlRepository(a.GetRequiredService<IServiceScopeFactory>());
        repository.StoreElement(marker, "marker");
        Assert.Contains(repository.GetAllElements(), e => XNode.DeepEquals(e, marker));

        var secret = a.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("hello");
        await using var b = Node();
        Assert.Equal("hello", b.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(secret));
    }
}
