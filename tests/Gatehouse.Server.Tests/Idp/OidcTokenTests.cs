using System.Net;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// What Microsoft's MSAL libraries need from the Gatehouse CLI's token responses to find their account again (issue 15,
/// item 6): with <c>openid</c> an ID token (OpenID Connect Core §2, §3.1.3.3, signed by a published key), with
/// <c>client_info=1</c> Entra's <c>client_info</c>, on the device code grant and on refresh; and the short
/// <c>grant_type=device_code</c> msal-node polls with.
/// </summary>
public sealed class OidcTokenTests
{
    private const string Cli = GatehouseCliClient.ClientId;
    private const string MsalScope = "api://gatehouse-admin/admin openid profile offline_access";

    [Fact]
    public async Task DeviceCode_WithOpenId_AndClientInfo_ReturnsASignedIdToken_AndClientInfo()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var alice = await UserIdAsync(scenario, IdpScenario.Alice);
        var deviceCode = await ApprovedDeviceCodeAsync(scenario, MsalScope);

        var (status, tokens) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", TokenGrant), ("client_id", Cli), ("device_code", deviceCode), ("scope", MsalScope), ("client_info", "1"));

        Assert.True(status == HttpStatusCode.OK, tokens.RootElement.ToString());
        var idToken = tokens.RootElement.GetProperty("id_token").GetString()!;
        var claims = await ValidateIdTokenAsync(scenario, idToken);
        Assert.Equal($"https://login.gatehouse.test/{scenario.TenantId:D}/v2.0", claims.Issuer);
        Assert.Equal([Cli], claims.Audiences);
        Assert.Equal("JWT", claims.Typ);
        Assert.Equal(scenario.TenantId.ToString("D"), claims.GetClaim("tid").Value);
        Assert.Equal(alice.ToString("D"), claims.GetClaim("oid").Value);
        Assert.Equal(IdpScenario.Alice, claims.GetClaim("preferred_username").Value);
        Assert.Equal("Alice", claims.GetClaim("name").Value);
        Assert.Equal("2.0", claims.GetClaim("ver").Value);
        Assert.False(claims.TryGetClaim("nonce", out _));
        Assert.Equal(TimeSpan.FromHours(1), claims.ValidTo - claims.IssuedAt);
        Assert.True(claims.IssuedAt <= DateTime.UtcNow.AddMinutes(1) && claims.ValidTo > DateTime.UtcNow);

        // sub: the same pairwise subject as the access token's, not the object id.
        var access = IdpConformanceTests.Claims(tokens.RootElement.GetProperty("access_token").GetString()!);
        Assert.Equal(access.GetProperty("sub").GetString(), claims.Subject);
        Assert.NotEqual(alice.ToString("D"), claims.Subject);

        // client_info: base64url of {"uid":<oid>,"utid":<tenant id>}, as MSAL builds home_account_id = uid.utid from it.
        using var clientInfo = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(tokens.RootElement.GetProperty("client_info").GetString()!));
        Assert.Equal(alice.ToString("D"), clientInfo.RootElement.GetProperty("uid").GetString());
        Assert.Equal(scenario.TenantId.ToString("D"), clientInfo.RootElement.GetProperty("utid").GetString());
    }

    [Fact]
    public async Task DeviceCode_WithoutOpenId_OrClientInfo_ReturnsNeither()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var deviceCode = await ApprovedDeviceCodeAsync(scenario, "api://gatehouse-admin/admin offline_access");

        var (status, tokens) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", TokenGrant), ("client_id", Cli), ("device_code", deviceCode));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(tokens.RootElement.TryGetProperty("id_token", out _));
        Assert.False(tokens.RootElement.TryGetProperty("client_info", out _));
        Assert.Equal("api://gatehouse-admin/admin", tokens.RootElement.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task Refresh_WithOpenId_AndClientInfo_ReturnsAFreshIdToken_AndClientInfo_WithoutThemNeither()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var alice = await UserIdAsync(scenario, IdpScenario.Alice);
        var deviceCode = await ApprovedDeviceCodeAsync(scenario, MsalScope);
        var (_, first) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", TokenGrant), ("client_id", Cli), ("device_code", deviceCode), ("client_info", "1"));
        var firstId = await ValidateIdTokenAsync(scenario, first.RootElement.GetProperty("id_token").GetString()!);

        var (status, renewed) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", first.RootElement.GetProperty("refresh_token").GetString()!), ("scope", MsalScope), ("client_info", "1"));

        Assert.True(status == HttpStatusCode.OK, renewed.RootElement.ToString());
        var idToken = await ValidateIdTokenAsync(scenario, renewed.RootElement.GetProperty("id_token").GetString()!);
        Assert.Equal(firstId.Subject, idToken.Subject);
        Assert.Equal(alice.ToString("D"), idToken.GetClaim("oid").Value);
        Assert.Equal(first.RootElement.GetProperty("client_info").GetString(), renewed.RootElement.GetProperty("client_info").GetString());

        var (plainStatus, plain) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", "refresh_token"), ("client_id", Cli), ("refresh_token", renewed.RootElement.GetProperty("refresh_token").GetString()!), ("scope", "api://gatehouse-admin/admin"));
        Assert.Equal(HttpStatusCode.OK, plainStatus);
        Assert.False(plain.RootElement.TryGetProperty("id_token", out _));
        Assert.False(plain.RootElement.TryGetProperty("client_info", out _));
    }

    [Fact]
    public async Task ShortDeviceCodeGrant_AsMsalNodePolls_IsTheDeviceCodeGrant()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (_, started) = await PostAsync(scenario, "/common/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", MsalScope));
        var deviceCode = started.RootElement.GetProperty("device_code").GetString()!;

        var (pendingStatus, pending) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", "device_code"), ("client_id", Cli), ("device_code", deviceCode), ("scope", MsalScope), ("client_info", "1"));
        Assert.Equal(HttpStatusCode.BadRequest, pendingStatus);
        Assert.Equal("authorization_pending", pending.RootElement.GetProperty("error").GetString());

        using (var browser = new SignInBrowser(scenario.Server))
        {
            await DeviceFlowTests.ApproveAsync(browser, started.RootElement.GetProperty("user_code").GetString()!);
        }

        await AllowNextPollAsync(scenario);
        var (status, tokens) = await PostAsync(scenario, "/common/oauth2/v2.0/token", ("grant_type", "device_code"), ("client_id", Cli), ("device_code", deviceCode), ("scope", MsalScope), ("client_info", "1"));
        Assert.True(status == HttpStatusCode.OK, tokens.RootElement.ToString());
        Assert.Equal("Bearer", tokens.RootElement.GetProperty("token_type").GetString());
        await ValidateIdTokenAsync(scenario, tokens.RootElement.GetProperty("id_token").GetString()!);
    }

    // ---- helpers

    private const string TokenGrant = "urn:ietf:params:oauth:grant-type:device_code";

    /// <summary>Validates an ID token as a relying party would: RS256 by a key of the published JWKS, audience, lifetime.</summary>
    private static async Task<JsonWebToken> ValidateIdTokenAsync(IdpScenario scenario, string idToken)
    {
        var jwks = new JsonWebKeySet(await scenario.Server.Client.GetStringAsync(new Uri("/common/discovery/v2.0/keys", UriKind.Relative)));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidAudience = Cli,
            ValidIssuer = $"https://login.gatehouse.test/{scenario.TenantId:D}/v2.0",
            RequireSignedTokens = true,
            RequireExpirationTime = true,
        });
        Assert.True(result.IsValid, result.Exception?.ToString());
        return (JsonWebToken)result.SecurityToken;
    }

    private static async Task<string> ApprovedDeviceCodeAsync(IdpScenario scenario, string scope)
    {
        var (status, started) = await PostAsync(scenario, "/common/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", scope));
        Assert.Equal(HttpStatusCode.OK, status);
        using var browser = new SignInBrowser(scenario.Server);
        await DeviceFlowTests.ApproveAsync(browser, started.RootElement.GetProperty("user_code").GetString()!);
        return started.RootElement.GetProperty("device_code").GetString()!;
    }

    private static async Task<Guid> UserIdAsync(IdpScenario scenario, string upn)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        return (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!.Id;
    }

    /// <summary>Moves the last poll back, as if the client had waited the interval (no sleeping in tests).</summary>
    private static async Task AllowNextPollAsync(IdpScenario scenario)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.ExecuteUpdateAsync(s => s.SetProperty(d => d.LastPolledAt, (DateTimeOffset?)null));
    }

    private static Task<(HttpStatusCode Status, JsonDocument Json)> PostAsync(IdpScenario scenario, string path, params (string Name, string Value)[] form) =>
        IdpConformanceTests.PostAsync(scenario.Server, path, form);
}
