using System.Net;
using System.Text.Json;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Idp;

[Collection(ProcessEnvironmentCollection.Name)]
public sealed class IdpEndpointTests
{
    private const string Authorize = "/common/oauth2/v2.0/authorize";
    private const string RdpClient = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";

    [Fact]
    public async Task FirstRun_PrintsTheAdministratorOnce()
    {
        var data = TempDirectory.Create();
        await using (var first = await TestServer.StartAsync(data))
        {
            Assert.Contains("Administrator:      admin@contoso.test", first.Console.ToString(), StringComparison.Ordinal);
            Assert.Contains("Temporary password: ", first.Console.ToString(), StringComparison.Ordinal);
        }

        await using var second = await TestServer.StartAsync(data);
        Assert.DoesNotContain("Temporary password", second.Console.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("common", "{tenantid}")]
    [InlineData("contoso.test", "/v2.0")]
    public async Task Discovery_ForCommonAndTheDomain_NamesTheEndpoints(string tenant, string issuerPart)
    {
        await using var server = await TestServer.StartAsync();
        using var doc = JsonDocument.Parse(await server.Client.GetStringAsync(new Uri($"/{tenant}/v2.0/.well-known/openid-configuration", UriKind.Relative)));
        Assert.Equal($"https://login.gatehouse.test/{tenant}/oauth2/v2.0/authorize", doc.RootElement.GetProperty("authorization_endpoint").GetString());
        Assert.Equal($"https://login.gatehouse.test/{tenant}/oauth2/v2.0/token", doc.RootElement.GetProperty("token_endpoint").GetString());
        Assert.Contains(issuerPart, doc.RootElement.GetProperty("issuer").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Discovery_UnknownTenant_IsAadsts90002()
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Client.GetAsync(new Uri("/fabrikam.test/v2.0/.well-known/openid-configuration", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("AADSTS90002", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jwks_ListsTheSigningKeyFromTheFirstFetch()
    {
        await using var server = await TestServer.StartAsync();
        using var doc = JsonDocument.Parse(await server.Client.GetStringAsync(new Uri("/common/discovery/v2.0/keys", UriKind.Relative)));
        var key = Assert.Single(doc.RootElement.GetProperty("keys").EnumerateArray());
        Assert.Equal("RSA", key.GetProperty("kty").GetString());
        Assert.Equal("RS256", key.GetProperty("alg").GetString());
        Assert.False(string.IsNullOrEmpty(key.GetProperty("kid").GetString()));
    }

    [Fact]
    public async Task Jwks_RebuiltAtOnceWhenTheKeysChangeInThisProcess()
    {
        await using var server = await TestServer.StartAsync();
        var keysUri = new Uri("/common/discovery/v2.0/keys", UriKind.Relative);
        using (var first = JsonDocument.Parse(await server.Client.GetStringAsync(keysUri)))
        {
            Assert.Single(first.RootElement.GetProperty("keys").EnumerateArray());
        }

        // (Whether it is kept is not asserted here: other tests in this process create keys, which makes it stale.)

        // A rotation in this process: the next JWKS already lists the new key next to the retired one.
        string newKid;
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            newKid = await scope.ServiceProvider.GetRequiredService<Gatehouse.Identity.SigningKeyService>().RotateAsync(DateTimeOffset.UtcNow);
        }

        using var doc = JsonDocument.Parse(await server.Client.GetStringAsync(keysUri));
        var kids = doc.RootElement.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Contains(newKid, kids);
        Assert.Equal(2, kids.Count);
    }

    [Theory]
    [InlineData("/common/v2.0/.well-known/openid-configuration")]
    [InlineData("/common/discovery/v2.0/keys")]
    public async Task KeptDocuments_CarryAStrongETagAndLength_IfNoneMatchIs304WithoutABody(string path)
    {
        await using var server = await TestServer.StartAsync();
        var uri = new Uri(path, UriKind.Relative);
        using var first = await server.Client.GetAsync(uri);
        using var second = await server.Client.GetAsync(uri);
        var body = await second.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var etag = second.Headers.ETag;
        Assert.NotNull(etag);
        Assert.False(etag.IsWeak);
        Assert.Equal(body.Length, second.Content.Headers.ContentLength);
        Assert.Equal("nosniff", Assert.Single(second.Headers.GetValues("X-Content-Type-Options")));
        using (var json = JsonDocument.Parse(body))
        {
            Assert.Equal(JsonValueKind.Object, json.RootElement.ValueKind);
        }

        using var conditional = new HttpRequestMessage(HttpMethod.Get, uri);
        conditional.Headers.TryAddWithoutValidation("If-None-Match", $"\"other\", W/{etag.Tag}");
        using var notModified = await server.Client.SendAsync(conditional);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
        Assert.Equal(etag, notModified.Headers.ETag);

        using var otherTag = new HttpRequestMessage(HttpMethod.Get, uri);
        otherTag.Headers.TryAddWithoutValidation("If-None-Match", "\"0000\"");
        using var changed = await server.Client.SendAsync(otherTag);
        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.Equal(body, await changed.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public void IfNoneMatch_HostileValues_NeverMatchOrThrow_ListsAndStarDo()
    {
        const string ETag = "\"0123abcd\"";
        Assert.True(Gatehouse.Idp.Responses.NotModified(new Microsoft.Extensions.Primitives.StringValues(["\"x\"", " \"y\" , \"0123abcd\" "]), ETag));
        Assert.True(Gatehouse.Idp.Responses.NotModified("*", ETag));
        Assert.True(Gatehouse.Idp.Responses.NotModified("W/\"0123abcd\"", ETag));
        Assert.False(Gatehouse.Idp.Responses.NotModified(Microsoft.Extensions.Primitives.StringValues.Empty, ETag));
        Assert.False(Gatehouse.Idp.Responses.NotModified(new Microsoft.Extensions.Primitives.StringValues([null, "", ",,,", "W/", "0123abcd"]), ETag));
        Assert.False(Gatehouse.Idp.Responses.NotModified(new string(',', 100_000) + ETag, ETag));
        Assert.False(Gatehouse.Idp.Responses.NotModified("\"0123ABCD\"", ETag));
    }

    [Fact]
    public async Task Discovery_KeptForAKnownTenant_NeverForAnUnknownOne()
    {
        await using var server = await TestServer.StartAsync();
        var cache = server.App.Services.GetRequiredService<Gatehouse.Idp.IdpDocumentCache>();
        var known = await server.Client.GetStringAsync(new Uri("/common/v2.0/.well-known/openid-configuration", UriKind.Relative));
        Assert.Equal(known, System.Text.Encoding.UTF8.GetString(cache.Discovery("common")!.Value.Span));
        Assert.Equal(known, await server.Client.GetStringAsync(new Uri("/common/v2.0/.well-known/openid-configuration", UriKind.Relative)));

        for (var i = 0; i < 2; i++)
        {
            var unknown = await server.Client.GetAsync(new Uri("/fabrikam.test/v2.0/.well-known/openid-configuration", UriKind.Relative));
            Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
            var keys = await server.Client.GetAsync(new Uri("/fabrikam.test/discovery/v2.0/keys", UriKind.Relative));
            Assert.Equal(HttpStatusCode.BadRequest, keys.StatusCode);
        }

        Assert.Null(cache.Discovery("fabrikam.test"));
        Assert.False(cache.TenantKnown("fabrikam.test"));
    }

    [Fact]
    public async Task SrvChallenge_AnswersNonceWithACapitalN()
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent("grant_type=srv_challenge", System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotNull(response.Content.Headers.ContentLength);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Matches("^[A-Za-z0-9_.-]+$", doc.RootElement.GetProperty("Nonce").GetString()!);
    }

    [Theory]
    [InlineData("", "900144")]
    [InlineData("grant_type=password&username=a&password=b", "70003")]
    [InlineData("grant_type=authorization_code&client_id=x&redirect_uri=y", "900144")]
    [InlineData("grant_type=authorization_code&code=abc&client_id=a85cf173-4192-42f8-81fa-777a763e6e2c&redirect_uri=y", "900144")]
    [InlineData("grant_type=authorization_code&code=abc&client_id=a85cf173-4192-42f8-81fa-777a763e6e2c&redirect_uri=y&req_cnf=bm90LWpzb24", "50148")]
    [InlineData("grant_type=refresh_token&client_id=a85cf173-4192-42f8-81fa-777a763e6e2c", "900144")]
    public async Task Token_BadRequests_AreEntraShapedErrors(string body, string code)
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Contains($"AADSTS{code}", doc.RootElement.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.Equal(int.Parse(code, System.Globalization.CultureInfo.InvariantCulture), doc.RootElement.GetProperty("error_codes")[0].GetInt32());
    }

    [Fact]
    public async Task Token_UnknownCode_IsInvalidGrant()
    {
        await using var server = await TestServer.StartAsync();
        var reqCnf = Convert.ToBase64String("{\"kid\":\"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs\"}"u8.ToArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(
            $"grant_type=authorization_code&code=nope&client_id={RdpClient}&redirect_uri={Broker}&req_cnf={reqCnf}", System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("invalid_grant", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("client_id=wrong&response_type=code&scope=x&redirect_uri=" + Broker, "AADSTS700016")]
    [InlineData("client_id=" + RdpClient + "&response_type=code&scope=x&redirect_uri=https%3a%2f%2fevil.test%2fcb", "AADSTS50011")]
    [InlineData("client_id=" + RdpClient + "&response_type=token&scope=x&redirect_uri=" + Broker, "AADSTS70005")]
    [InlineData("client_id=" + RdpClient + "&response_type=code&redirect_uri=" + Broker, "AADSTS900144")]
    [InlineData("client_id=" + RdpClient + "&response_type=code&scope=openid&redirect_uri=" + Broker, "AADSTS70011")]
    [InlineData("client_id=" + RdpClient + "&response_type=code&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2F127%2Fuser_impersonation&redirect_uri=" + Broker, "IP address can&#x27;t be used")]
    [InlineData("client_id=" + RdpClient + "&response_type=code&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm9%2Fuser_impersonation&redirect_uri=" + Broker, "AADSTS500011")]
    [InlineData("response_type=code&scope=x&redirect_uri=" + Broker, "AADSTS900144")]
    public async Task Authorize_BadRequests_ShowAnErrorPageAndNeverRedirect(string query, string expected)
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Client.GetAsync(new Uri($"{Authorize}?{query}", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
    }

    [Fact]
    public async Task AuthorizePost_WithoutAValidTransaction_SaysTheSignInExpired()
    {
        await using var server = await TestServer.StartAsync();
        var response = await server.Client.PostAsync(new Uri(Authorize, UriKind.Relative), new FormUrlEncodedContent([new("tx", "forged"), new("username", "a@b")]));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("AADSTS50058", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
