using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace Gatehouse.Identity.Tests.Unit;

/// <summary>Token issuance and validation (on the SQLite store; the storage suite repeats the essentials on PostgreSQL).</summary>
public sealed class TokenServiceTests(StoreFixture fixture, ITestOutputHelper output) : IClassFixture<StoreFixture>
{
    private const string CnfKid = "ZxQjD40lq2A7VJ8nWbYkT3uR1sXcE5fGh6iJ9kLmN0o";

    private sealed record Setup(TestEnv Env, Tenant Tenant, User User, Gatehouse.Storage.Host Host, string Token, Guid GrantId);

    private async Task<Setup> CreateAsync()
    {
        var env = await fixture.CreateEnvAsync(StoreProvider.Sqlite);
        var directory = env.Get<DirectoryService>();
        var domain = $"t{Guid.NewGuid():N}.test";
        var tenant = await directory.CreateTenantAsync("Contoso", domain);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "alice@" + domain, "Alice Liddell", "Pa55word!long", temporary: false);
        var host = await directory.CreateHostAsync(tenant.Id, "h" + Guid.NewGuid().ToString("N")[..10], "10.0.0.5", 3389, BackendSecurity.Tls);
        var grantId = Guid.NewGuid();
        var token = await env.Get<TokenService>().IssueRdpAccessTokenAsync(new RdpTokenRequest
        {
            Tenant = tenant,
            User = user,
            Host = host,
            Amr = ["pwd", "mfa"],
            AuthTime = env.Time.GetUtcNow(),
            ClientId = RdpClient.ClientId,
            CnfKid = CnfKid,
            GrantId = grantId,
        });
        return new Setup(env, tenant, user, host, token, grantId);
    }

    [Fact]
    public async Task Issue_Claims_AsSpecified()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var jwt = new JsonWebToken(s.Token);
        Assert.Equal("RS256", jwt.Alg);
        Assert.Equal("at+jwt", jwt.Typ);
        Assert.Equal(43, jwt.Kid.Length);
        Assert.Equal($"https://login.test/{s.Tenant.Id}/v2.0", jwt.Issuer);
        Assert.Equal(["ms-device-service://termsrv.wvd.microsoft.com/name/" + s.Host.Name], jwt.Audiences);
        Assert.Equal(s.Tenant.Id.ToString(), jwt.GetPayloadValue<string>("tid"));
        Assert.Equal(s.User.Id.ToString(), jwt.GetPayloadValue<string>("oid"));
        Assert.Equal(s.User.UserPrincipalName, jwt.GetPayloadValue<string>("upn"));
        Assert.Equal("Alice Liddell", jwt.GetPayloadValue<string>("name"));
        Assert.Equal("user_impersonation", jwt.GetPayloadValue<string>("scp"));
        Assert.Equal(RdpClient.ClientId, jwt.GetPayloadValue<string>("appid"));
        Assert.Equal(["pwd", "mfa"], jwt.Claims.Where(c => c.Type == "amr").Select(c => c.Value));
        Assert.Equal(CnfKid, jwt.GetPayloadValue<JsonElement>("cnf").GetProperty("kid").GetString());
        Assert.False(string.IsNullOrEmpty(jwt.Id));
        var iat = jwt.GetPayloadValue<long>("iat");
        Assert.Equal(env.Time.GetUtcNow().ToUnixTimeSeconds(), iat);
        Assert.Equal(iat, jwt.GetPayloadValue<long>("nbf"));
        Assert.Equal(iat + 3600, jwt.GetPayloadValue<long>("exp"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("n-0S6_WzA2Mj")]
    public async Task IdToken_IsSignedByAPublishedKey_WithTheOidcClaims_AndTheNonceOnlyWhenAsked(string? nonce)
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        const string Client = "9f96595f-4eb5-4226-bc18-5d7de55f5d00";

        var idToken = await env.Get<TokenService>().IssueIdTokenAsync(new IdTokenRequest { User = s.User, ClientId = Client, Nonce = nonce });

        var keys = await env.Get<SigningKeyService>().GetPublishedKeysAsync();
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            IssuerSigningKeys = keys.Keys,
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidIssuer = $"https://login.test/{s.Tenant.Id}/v2.0",
            ValidAudience = Client,
            RequireSignedTokens = true,
            LifetimeValidator = (notBefore, expires, _, _) => notBefore <= env.Time.GetUtcNow().UtcDateTime && env.Time.GetUtcNow().UtcDateTime < expires,
        });
        Assert.True(result.IsValid, result.Exception?.ToString());
        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal("JWT", jwt.Typ);
        Assert.Equal(s.Tenant.Id.ToString(), jwt.GetPayloadValue<string>("tid"));
        Assert.Equal(s.User.Id.ToString(), jwt.GetPayloadValue<string>("oid"));
        Assert.Equal(s.User.UserPrincipalName, jwt.GetPayloadValue<string>("preferred_username"));
        Assert.Equal("Alice Liddell", jwt.GetPayloadValue<string>("name"));
        var iat = jwt.GetPayloadValue<long>("iat");
        Assert.Equal(env.Time.GetUtcNow().ToUnixTimeSeconds(), iat);
        Assert.Equal(iat + 3600, jwt.GetPayloadValue<long>("exp"));
        Assert.Equal(nonce, jwt.TryGetPayloadValue<string>("nonce", out var echoed) ? echoed : null);

        // sub: pairwise: stable for one user and client (the RDP access token has the RDP client's), different across clients.
        Assert.Matches("^[A-Za-z0-9_-]{43}$", jwt.Subject);
        Assert.NotEqual(s.User.Id.ToString(), jwt.Subject);
        Assert.NotEqual(new JsonWebToken(s.Token).Subject, jwt.Subject);
        Assert.Equal(jwt.Subject, new JsonWebToken(await env.Get<TokenService>().IssueIdTokenAsync(new IdTokenRequest { User = s.User, ClientId = Client })).Subject);
        Assert.Equal(new JsonWebToken(s.Token).Subject, new JsonWebToken(await env.Get<TokenService>().IssueIdTokenAsync(new IdTokenRequest { User = s.User, ClientId = RdpClient.ClientId })).Subject);
    }

    [Fact]
    public async Task IssueIdToken_WithAmrAndAuthTime_WritesThem_WithoutThemWritesNeither()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var authTime = env.Time.GetUtcNow().AddMinutes(-3);

        var withMethods = new JsonWebToken(await env.Get<TokenService>().IssueIdTokenAsync(new IdTokenRequest
        {
            User = s.User,
            ClientId = RdpClient.ClientId,
            Amr = [AuthenticationMethods.Password, AuthenticationMethods.Mfa, AuthenticationMethods.Otp],
            AuthTime = authTime,
        }));
        Assert.Equal(["pwd", "mfa", "otp"], withMethods.Claims.Where(c => c.Type == "amr").Select(c => c.Value));
        Assert.Equal(authTime.ToUnixTimeSeconds(), withMethods.GetPayloadValue<long>("auth_time"));

        var plain = new JsonWebToken(await env.Get<TokenService>().IssueIdTokenAsync(new IdTokenRequest { User = s.User, ClientId = RdpClient.ClientId }));
        Assert.DoesNotContain(plain.Claims, c => c.Type is "amr" or "auth_time");
    }

    [Theory]
    [InlineData("pwd mfa otp", 0, true)]
    [InlineData("pwd mfa otp", 10, true)]
    [InlineData("pwd mfa otp", 11, false)]
    [InlineData("tap", 5, true)]
    [InlineData("pwd", 0, false)]
    [InlineData("pwd otp", 0, false)]
    public void IsRecentStrongSignIn_MfaOrPassWithinTheWindow(string amr, int minutesAgo, bool expected)
    {
        var now = new DateTimeOffset(2026, 12, 7, 6, 0, 0, TimeSpan.Zero);
        Assert.Equal(expected, AuthenticationMethods.IsRecentStrongSignIn(amr.Split(' '), now.AddMinutes(-minutesAgo), now, TimeSpan.FromMinutes(10)));
        Assert.False(AuthenticationMethods.IsRecentStrongSignIn(amr.Split(' '), null, now, TimeSpan.FromMinutes(10)));
    }

    [Fact]
    public async Task Issue_KidIsPublishedInJwks()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var jwks = await env.Get<SigningKeyService>().GetPublishedKeysAsync();
        var key = Assert.Single(jwks.Keys, k => k.Kid == new JsonWebToken(s.Token).Kid);
        Assert.Equal("RSA", key.Kty);
        Assert.Equal("sig", key.Use);
        Assert.Equal(2048, Base64UrlEncoder.DecodeBytes(key.N).Length * 8);
        Assert.Null(key.D);
        Assert.Equal(key.Kid, SigningKeyService.Thumbprint(new RSAParameters { Modulus = Base64UrlEncoder.DecodeBytes(key.N), Exponent = Base64UrlEncoder.DecodeBytes(key.E) }));
    }

    [Fact]
    public async Task Issue_LifetimeOverOneHour_Throws()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var request = new RdpTokenRequest
        {
            Tenant = s.Tenant,
            User = s.User,
            Host = s.Host,
            Amr = ["pwd"],
            AuthTime = env.Time.GetUtcNow(),
            ClientId = RdpClient.ClientId,
            CnfKid = CnfKid,
            GrantId = Guid.NewGuid(),
            Lifetime = TimeSpan.FromMinutes(61),
        };
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => env.Get<TokenService>().IssueRdpAccessTokenAsync(request));
    }

    [Fact]
    public async Task Validate_FreshToken_Valid()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var outcome = await env.Get<TokenService>().ValidateRdpAccessTokenAsync(s.Token, s.Host.Name.ToUpperInvariant(), env.Time.GetUtcNow());
        Assert.True(outcome.IsValid, outcome.Error);
        Assert.Equal(s.Tenant.Id, outcome.TenantId);
        Assert.Equal(s.User.Id, outcome.ObjectId);
        Assert.Equal(CnfKid, outcome.CnfKid);
        Assert.Equal(["pwd", "mfa"], outcome.Amr);
    }

    [Fact]
    public async Task Validate_ResignedUnchanged_Valid()
    {
        // The forging helper itself produces acceptable tokens, so every negative case below fails for its own reason.
        var s = await CreateAsync();
        await using var env = s.Env;
        var forged = await ForgeAsync(s, (_, _) => { });
        var outcome = await env.Get<TokenService>().ValidateRdpAccessTokenAsync(forged, s.Host.Name, env.Time.GetUtcNow());
        Assert.True(outcome.IsValid, outcome.Error);
    }

    public static TheoryData<string, string> NegativeCases() => new()
    {
        { "wrong-signature", "signature" },
        { "alg-none", "signature" },
        { "alg-none-capitalised", "signature" },
        { "alg-none-no-dot", "malformed" },
        { "alg-hs256-public-key", "signature" },
        { "alg-rs512", "signature" },
        { "unknown-kid", "signing key" },
        { "missing-kid", "signing key" },
        { "foreign-key-same-kid", "signature" },
        { "expired", "lifetime" },
        { "nbf-future", "lifetime" },
        { "no-exp", "lifetime" },
        { "no-nbf", "lifetime" },
        { "wrong-aud", "audience" },
        { "other-host-aud", "audience" },
        { "wrong-iss", "issuer" },
        { "iss-v1-form", "issuer" },
        { "unknown-tid", "tenant does not exist" },
        { "tid-not-guid", "tid" },
        { "other-tenant-tid", "issuer" },
        { "no-typ", "type" },
        { "typ-jwt", "type" },
        { "no-scp", "scp" },
        { "scp-other", "scp" },
        { "no-cnf", "cnf" },
        { "cnf-kid-short", "cnf" },
        { "cnf-kid-bad-chars", "cnf" },
        { "cnf-jwk-instead", "cnf" },
        { "no-jti", "jti" },
        { "no-oid", "oid" },
        { "payload-altered", "signature" },
        { "empty", "missing" },
        { "garbage", "malformed" },
        { "two-parts", "malformed" },
        { "oversized", "too large" },
        { "jwe-shaped", "invalid" },
        { "jku-header-foreign-key", "signature" },
    };

    [Theory]
    [MemberData(nameof(NegativeCases))]
    public async Task Validate_Negative_Refused(string name, string expectedReason)
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var now = env.Time.GetUtcNow();
        var host = s.Host.Name;
        string token;
        switch (name)
        {
            case "wrong-signature":
                token = s.Token[..^4] + (s.Token[^4] == 'A' ? "BBBB" : "AAAA");
                break;
            case "alg-none":
                token = Unsigned(s, "none") + ".";
                break;
            case "alg-none-capitalised":
                token = Unsigned(s, "None") + ".";
                break;
            case "alg-none-no-dot":
                token = Unsigned(s, "none");
                break;
            case "alg-hs256-public-key":
                {
                    var jwks = await env.Get<SigningKeyService>().GetPublishedKeysAsync();
                    var pub = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(jwks.Keys[0]));
                    token = Sign(Header(s, "HS256"), Payload(s), data => HMACSHA256.HashData(pub, data));
                    break;
                }

            case "alg-rs512":
                token = await ForgeAsync(s, (h, _) => h["alg"] = "RS512", HashAlgorithmName.SHA512);
                break;
            case "unknown-kid":
                token = await ForgeAsync(s, (h, _) => h["kid"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
                break;
            case "missing-kid":
                token = await ForgeAsync(s, (h, _) => h.Remove("kid"));
                break;
            case "foreign-key-same-kid":
                {
                    using var rsa = RSA.Create(2048);
                    token = Sign(Header(s, "RS256"), Payload(s), data => rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
                    break;
                }

            case "jku-header-foreign-key":
                {
                    using var rsa = RSA.Create(2048);
                    var header = Header(s, "RS256");
                    header["jku"] = "https://attacker.example/keys";
                    var p = rsa.ExportParameters(false);
                    header["jwk"] = new JsonObject { ["kty"] = "RSA", ["n"] = Base64Url.Encode(p.Modulus), ["e"] = Base64Url.Encode(p.Exponent) };
                    token = Sign(header, Payload(s), data => rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
                    break;
                }

            case "expired":
                token = s.Token;
                now += TimeSpan.FromHours(1) + TimeSpan.FromMinutes(6);
                break;
            case "nbf-future":
                token = await ForgeAsync(s, (_, p) => p["nbf"] = now.AddMinutes(10).ToUnixTimeSeconds());
                break;
            case "no-exp":
                token = await ForgeAsync(s, (_, p) => p.Remove("exp"));
                break;
            case "no-nbf":
                token = await ForgeAsync(s, (_, p) => p.Remove("nbf"));
                break;
            case "wrong-aud":
                token = await ForgeAsync(s, (_, p) => p["aud"] = "https://graph.microsoft.com");
                break;
            case "other-host-aud":
                token = s.Token;
                host = "otherhost";
                break;
            case "wrong-iss":
                token = await ForgeAsync(s, (_, p) => p["iss"] = $"https://evil.test/{s.Tenant.Id}/v2.0");
                break;
            case "iss-v1-form":
                token = await ForgeAsync(s, (_, p) => p["iss"] = $"https://sts.windows.net/{s.Tenant.Id}/");
                break;
            case "unknown-tid":
                {
                    var tid = Guid.NewGuid();
                    token = await ForgeAsync(s, (_, p) =>
                    {
                        p["tid"] = tid.ToString();
                        p["iss"] = $"https://login.test/{tid}/v2.0";
                    });
                    break;
                }

            case "tid-not-guid":
                token = await ForgeAsync(s, (_, p) => p["tid"] = "common");
                break;
            case "other-tenant-tid":
                {
                    var other = await env.Get<DirectoryService>().CreateTenantAsync("Fabrikam", $"f{Guid.NewGuid():N}.test");
                    token = await ForgeAsync(s, (_, p) => p["tid"] = other.Id.ToString());
                    break;
                }

            case "no-typ":
                token = await ForgeAsync(s, (h, _) => h.Remove("typ"));
                break;
            case "typ-jwt":
                token = await ForgeAsync(s, (h, _) => h["typ"] = "JWT");
                break;
            case "no-scp":
                token = await ForgeAsync(s, (_, p) => p.Remove("scp"));
                break;
            case "scp-other":
                token = await ForgeAsync(s, (_, p) => p["scp"] = "user_impersonation admin");
                break;
            case "no-cnf":
                token = await ForgeAsync(s, (_, p) => p.Remove("cnf"));
                break;
            case "cnf-kid-short":
                token = await ForgeAsync(s, (_, p) => p["cnf"] = new JsonObject { ["kid"] = CnfKid[..20] });
                break;
            case "cnf-kid-bad-chars":
                token = await ForgeAsync(s, (_, p) => p["cnf"] = new JsonObject { ["kid"] = CnfKid[..42] + "+" });
                break;
            case "cnf-jwk-instead":
                token = await ForgeAsync(s, (_, p) => p["cnf"] = new JsonObject { ["jwk"] = new JsonObject { ["kty"] = "RSA" } });
                break;
            case "no-jti":
                token = await ForgeAsync(s, (_, p) => p.Remove("jti"));
                break;
            case "no-oid":
                token = await ForgeAsync(s, (_, p) => p.Remove("oid"));
                break;
            case "payload-altered":
                {
                    var parts = s.Token.Split('.');
                    var payload = Payload(s);
                    payload["upn"] = "mallory@" + s.User.UserPrincipalName.Split('@')[1];
                    token = parts[0] + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payload.ToJsonString())) + "." + parts[2];
                    break;
                }

            case "empty":
                token = "";
                break;
            case "garbage":
                token = "this is not a token";
                break;
            case "two-parts":
                token = string.Join('.', s.Token.Split('.')[..2]);
                break;
            case "oversized":
                token = await ForgeAsync(s, (_, p) => p["pad"] = new string('x', 20_000));
                break;
            case "jwe-shaped":
                token = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00iLCJ6aXAiOiJERUYifQ.AAAA.AAAA.AAAA.AAAA";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(name));
        }

        var outcome = await env.Get<TokenService>().ValidateRdpAccessTokenAsync(token, host, now);
        output.WriteLine($"{name}: {outcome.Error}");
        Assert.False(outcome.IsValid, name);
        Assert.Contains(expectedReason, outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_RevokedJti_Refused()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var db = env.Get<GatehouseDbContext>();
        db.RevokedTokens.Add(new RevokedToken { Jti = new JsonWebToken(s.Token).Id, ExpiresAt = env.Time.GetUtcNow().AddHours(1) });
        await db.SaveChangesAsync();
        var outcome = await env.Get<TokenService>().ValidateRdpAccessTokenAsync(s.Token, s.Host.Name, env.Time.GetUtcNow());
        Assert.False(outcome.IsValid);
        Assert.Equal("token has been revoked", outcome.Error);
    }

    [Fact]
    public async Task Validate_WithinSkew_Valid()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var service = env.Get<TokenService>();
        Assert.True((await service.ValidateRdpAccessTokenAsync(s.Token, s.Host.Name, env.Time.GetUtcNow().AddMinutes(-4))).IsValid);
        Assert.True((await service.ValidateRdpAccessTokenAsync(s.Token, s.Host.Name, env.Time.GetUtcNow().AddMinutes(64))).IsValid);
        Assert.False((await service.ValidateRdpAccessTokenAsync(s.Token, s.Host.Name, env.Time.GetUtcNow().AddMinutes(66))).IsValid);
    }

    [Fact]
    public async Task ServerChallenge_IssueValidate_FreshOnly()
    {
        var s = await CreateAsync();
        await using var env = s.Env;
        var service = env.Get<ServerChallengeService>();
        var now = env.Time.GetUtcNow();
        var nonce = await service.IssueAsync(now);
        Assert.All(nonce, c => Assert.True(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'));
        Assert.True(await service.ValidateAsync(nonce, now.AddMinutes(4)));
        Assert.False(await service.ValidateAsync(nonce, now.AddMinutes(5)));
        Assert.False(await service.ValidateAsync(nonce, now.AddMinutes(-2)));
        Assert.False(await service.ValidateAsync(nonce[..^3] + "AAA", now));
        Assert.False(await service.ValidateAsync(s.Token, now)); // an access token is not a challenge
        Assert.False(await service.ValidateAsync("", now));
    }

    private static JsonObject Header(Setup s, string alg)
    {
        var header = JsonNode.Parse(Base64UrlEncoder.Decode(s.Token.Split('.')[0]))!.AsObject();
        header["alg"] = alg;
        return header;
    }

    private static JsonObject Payload(Setup s) => JsonNode.Parse(Base64UrlEncoder.Decode(s.Token.Split('.')[1]))!.AsObject();

    private static string Unsigned(Setup s, string alg)
    {
        var header = Header(s, alg);
        header.Remove("kid");
        return Base64Url.Encode(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(Payload(s).ToJsonString()));
    }

    private static string Sign(JsonObject header, JsonObject payload, Func<byte[], byte[]> sign)
    {
        var input = Base64Url.Encode(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payload.ToJsonString()));
        return input + "." + Base64Url.Encode(sign(Encoding.ASCII.GetBytes(input)));
    }

    private static async Task<string> ForgeAsync(Setup s, Action<JsonObject, JsonObject> mutate, HashAlgorithmName? hash = null)
    {
        var credentials = await s.Env.Get<SigningKeyService>().GetActiveAsync();
        var rsa = ((RsaSecurityKey)credentials.Key).Rsa;
        var header = Header(s, "RS256");
        var payload = Payload(s);
        mutate(header, payload);
        return Sign(header, payload, data => rsa.SignData(data, hash ?? HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }
}
