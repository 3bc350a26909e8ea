using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The IdP under bad input and by the book (issue 15, items 4–6): forms the reader refuses and bodies over the limit are
/// refused requests with Entra-shaped errors (never a 500 or a logged application error), HSTS on every response, the
/// <c>/organizations</c> authority, <c>prompt=none</c>, unknown clients at the token endpoint, and <c>sub</c> in access tokens.
/// </summary>
public sealed class IdpConformanceTests
{
    private const string Cli = GatehouseCliClient.ClientId;
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string RdpScope = "ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation";

    [Theory]
    [InlineData("/common/oauth2/v2.0/token", "grant_type=%00")]
    [InlineData("/common/oauth2/v2.0/token", "grant_type=device_code&client_id=9f96595f-4eb5-4226-bc18-5d7de55f5d00&device_code=a%00b")]
    [InlineData("/common/oauth2/v2.0/devicecode", "client_id=%00&scope=openid")]
    [InlineData("/common/oauth2/v2.0/revoke", "token=abc&client_id=9f96595f-4eb5-4226-bc18-5d7de55f5d00&token_type_hint=%00")]
    public async Task NulInAFormField_OfAnOAuthEndpoint_IsInvalidRequest_WithAnAadstsCode(string path, string body)
    {
        await using var server = await TestServer.StartAsync();
        var logs = CaptureLogs(server);

        using var response = await PostRawAsync(server, path, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request", json.RootElement.GetProperty("error").GetString());
        Assert.StartsWith("AADSTS900144: ", json.RootElement.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        Assert.Equal(900144, json.RootElement.GetProperty("error_codes")[0].GetInt32());
        Assert.DoesNotContain(logs, e => e.Level >= LogLevel.Error || e.Exception is not null);
        Assert.Contains(logs, e => e.Category == "Gatehouse.Idp.Requests" && e.Message.Contains(path, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/common/oauth2/v2.0/authorize", "tx=abc&username=%00")]
    [InlineData("/devicelogin", "otc=%00")]
    public async Task NulInAFormField_OfASignInPage_IsAnErrorPage_WithAnAadstsCode(string path, string body)
    {
        await using var server = await TestServer.StartAsync();
        var logs = CaptureLogs(server);

        using var response = await PostRawAsync(server, path, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("AADSTS900144", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.DoesNotContain(logs, e => e.Level >= LogLevel.Error || e.Exception is not null);
    }

    [Theory]
    [InlineData("/common/oauth2/v2.0/token", true)]
    [InlineData("/common/oauth2/v2.0/devicecode", true)]
    [InlineData("/common/oauth2/v2.0/revoke", true)]
    [InlineData("/common/oauth2/v2.0/authorize", false)]
    [InlineData("/devicelogin", false)]
    public async Task OversizedBody_Is413_LoggedAsARefusedRequest_NotAsAnUnhandledException(string path, bool json)
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Limits:MaxRequestBodyBytes"] = "1024" });
        var logs = CaptureLogs(server);

        using var response = await PostRawAsync(server, path, "client_id=" + new string('a', 4096));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("AADSTS900144", text, StringComparison.Ordinal);
        Assert.Contains("1024 bytes", text, StringComparison.Ordinal);
        Assert.Equal(json ? "application/json" : "text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain(logs, e => e.Level >= LogLevel.Error || e.Exception is not null);
        var refused = Assert.Single(logs, e => e.Category == "Gatehouse.Idp.Requests");
        Assert.Equal(LogLevel.Information, refused.Level);
        Assert.Contains("413", refused.Message, StringComparison.Ordinal);
        Assert.Contains(path, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "max-age=31536000")]
    [InlineData("01:00:00", "max-age=3600")]
    public async Task EveryResponse_CarriesHsts_WithTheConfiguredMaxAge(string? maxAge, string expected)
    {
        var overrides = new Dictionary<string, string?>();
        if (maxAge is not null)
        {
            overrides["Gatehouse:Hsts:MaxAge"] = maxAge;
        }

        await using var scenario = await IdpScenario.StartAsync(overrides);
        var client = scenario.Server.Client;

        using var discovery = await client.GetAsync(new Uri("/common/v2.0/.well-known/openid-configuration", UriKind.Relative));
        using var page = await client.GetAsync(new Uri(IdpScenario.Authorize(), UriKind.Relative));
        using var tokenError = await PostRawAsync(scenario.Server, "/common/oauth2/v2.0/token", "grant_type=nope");
        using var health = await client.GetAsync(new Uri("/healthz", UriKind.Relative));
        using var notFound = await client.GetAsync(new Uri("/no/such/page", UriKind.Relative));

        foreach (var response in new[] { discovery, page, tokenError, health, notFound })
        {
            Assert.True(response.Headers.TryGetValues("Strict-Transport-Security", out var values), $"{response.RequestMessage?.RequestUri} has no Strict-Transport-Security");
            Assert.Equal(expected, Assert.Single(values));
        }
    }

    [Fact]
    public async Task OrganizationsAuthority_IsServedAsEntraDoes()
    {
        await using var scenario = await IdpScenario.StartAsync();

        using var discovery = await scenario.Server.Client.GetAsync(new Uri("/organizations/v2.0/.well-known/openid-configuration", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, discovery.StatusCode);
        using var doc = JsonDocument.Parse(await discovery.Content.ReadAsStringAsync());
        Assert.Equal("https://login.gatehouse.test/{tenantid}/v2.0", doc.RootElement.GetProperty("issuer").GetString());
        Assert.Equal("https://login.gatehouse.test/organizations/oauth2/v2.0/token", doc.RootElement.GetProperty("token_endpoint").GetString());
        Assert.Equal("https://login.gatehouse.test/organizations/oauth2/v2.0/devicecode", doc.RootElement.GetProperty("device_authorization_endpoint").GetString());
        Assert.Equal("https://login.gatehouse.test/organizations/discovery/v2.0/keys", doc.RootElement.GetProperty("jwks_uri").GetString());

        using var keys = await scenario.Server.Client.GetAsync(new Uri("/organizations/discovery/v2.0/keys", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, keys.StatusCode);

        // A whole device sign-in through /organizations.
        var (status, started) = await PostAsync(scenario.Server, "/organizations/oauth2/v2.0/devicecode", ("client_id", Cli), ("scope", "api://gatehouse-admin/admin openid profile offline_access"));
        Assert.Equal(HttpStatusCode.OK, status);
        using (var browser = new SignInBrowser(scenario.Server))
        {
            await DeviceFlowTests.ApproveAsync(browser, started.RootElement.GetProperty("user_code").GetString()!);
        }

        var (pollStatus, tokens) = await PostAsync(scenario.Server, "/organizations/oauth2/v2.0/token", ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", Cli), ("device_code", started.RootElement.GetProperty("device_code").GetString()!));
        Assert.True(pollStatus == HttpStatusCode.OK, tokens.RootElement.ToString());
        Assert.Equal($"https://login.gatehouse.test/{scenario.TenantId:D}/v2.0", Claims(tokens.RootElement.GetProperty("id_token").GetString()!).GetProperty("iss").GetString());
    }

    [Fact]
    public async Task UnknownTenant_IsStillAadsts90002()
    {
        await using var server = await TestServer.StartAsync();
        using var response = await server.Client.GetAsync(new Uri("/consumers/v2.0/.well-known/openid-configuration", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("AADSTS90002", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromptNone_WithAnHttpsRedirect_IsLoginRequired_AtTheRedirectUri()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var redirect = "https://login.gatehouse.test/common/oauth2/nativeclient";

        using var response = await scenario.Server.Client.GetAsync(new Uri(
            $"/common/oauth2/v2.0/authorize?client_id={IdpScenario.RdpClient}&response_type=code&scope={RdpScope}&redirect_uri={Uri.EscapeDataString(redirect)}&prompt=none&state=s-42",
            UriKind.Relative));

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var location = response.Headers.Location!.ToString();
        Assert.StartsWith(redirect + "?", location, StringComparison.Ordinal);
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(location).Query);
        Assert.Equal("login_required", query["error"].ToString());
        Assert.StartsWith("AADSTS50058: ", query["error_description"].ToString(), StringComparison.Ordinal);
        Assert.Equal("s-42", query["state"].ToString());
        Assert.False(query.ContainsKey("code"));
        Assert.Equal(0, await scenario.AuthorizationCodeCountAsync());
    }

    [Fact]
    public async Task PromptNone_WithTheBrokerRedirect_IsAnErrorPage_NotTheSignInPage()
    {
        await using var scenario = await IdpScenario.StartAsync();

        using var response = await scenario.Server.Client.GetAsync(new Uri(IdpScenario.Authorize() + "&prompt=none", UriKind.Relative));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("AADSTS50058", html, StringComparison.Ordinal);
        Assert.DoesNotContain("name=\"username\"", html, StringComparison.Ordinal);

        // Any other prompt still shows the sign-in page.
        using var login = await scenario.Server.Client.GetAsync(new Uri(IdpScenario.Authorize() + "&prompt=login", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("name=\"username\"", await login.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("grant_type=authorization_code&code=abc&client_id=00000000-0000-0000-0000-000000000001&redirect_uri=" + Broker, "unauthorized_client", 700016)]
    [InlineData("grant_type=refresh_token&refresh_token=abc&client_id=00000000-0000-0000-0000-000000000001", "unauthorized_client", 700016)]
    [InlineData("grant_type=authorization_code&code=abc&client_id=9f96595f-4eb5-4226-bc18-5d7de55f5d00&redirect_uri=" + Broker, "unsupported_grant_type", 70003)]
    public async Task Token_UnknownClient_IsAadsts700016_NotAMissingReqCnf(string body, string error, int code)
    {
        await using var server = await TestServer.StartAsync();

        using var response = await PostRawAsync(server, "/common/oauth2/v2.0/token", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(error, json.RootElement.GetProperty("error").GetString());
        Assert.Equal(code, json.RootElement.GetProperty("error_codes")[0].GetInt32());
        Assert.DoesNotContain("req_cnf", json.RootElement.GetProperty("error_description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AccessTokens_CarryAPairwiseSub_StablePerClient_DifferentAcrossClients()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await DeviceFlowTests.GrantOwnerAsync(scenario, IdpScenario.Alice);

        var rdp1 = Claims(await RdpAccessTokenAsync(scenario));
        var rdp2 = Claims(await RdpAccessTokenAsync(scenario));
        var (admin, _) = await DeviceFlowTests.SignInAsync(scenario);
        var cli = Claims(admin);

        var sub = rdp1.GetProperty("sub").GetString()!;
        Assert.Matches("^[A-Za-z0-9_-]{43}$", sub);
        Assert.Equal(sub, rdp2.GetProperty("sub").GetString());
        Assert.NotEqual(rdp1.GetProperty("oid").GetString(), sub);
        Assert.Equal(rdp1.GetProperty("oid").GetString(), cli.GetProperty("oid").GetString());
        Assert.Matches("^[A-Za-z0-9_-]{43}$", cli.GetProperty("sub").GetString()!);
        Assert.NotEqual(sub, cli.GetProperty("sub").GetString());
    }

    // ---- helpers

    /// <summary>A sign-in on the pages, the code redeemed with a PoP key; returns the RDP access token.</summary>
    internal static async Task<string> RdpAccessTokenAsync(IdpScenario scenario)
    {
        using var browser = new SignInBrowser(scenario.Server);
        await IdpScenario.SignInAsync(browser);
        if (browser.Shows("consent"))
        {
            await browser.SubmitAsync(("consent", "allow"));
        }

        var code = IdpScenario.CodeFromCopyPage(browser.Html) ?? throw new InvalidOperationException(browser.Html);
        var thumbprint = System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.SHA256.HashData("pop-key"u8));
        var reqCnf = System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}"));
        using var response = await PostRawAsync(scenario.Server, "/common/oauth2/v2.0/token", $"grant_type=authorization_code&code={code}&client_id={IdpScenario.RdpClient}&redirect_uri={Broker}&req_cnf={reqCnf}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("access_token").GetString()!;
    }

    internal static JsonElement Claims(string jwt)
    {
        using var doc = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1]));
        return doc.RootElement.Clone();
    }

    internal static async Task<HttpResponseMessage> PostRawAsync(TestServer server, string path, string body) =>
        await server.Client.PostAsync(new Uri(path, UriKind.Relative), new StringContent(body, Encoding.ASCII, "application/x-www-form-urlencoded"));

    internal static async Task<(HttpStatusCode Status, JsonDocument Json)> PostAsync(TestServer server, string path, params (string Name, string Value)[] form)
    {
        using var content = new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));
        using var response = await server.Client.PostAsync(new Uri(path, UriKind.Relative), content);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()));
    }

    /// <summary>Every log entry the server writes from now on.</summary>
    private static ConcurrentQueue<LogEntry> CaptureLogs(TestServer server)
    {
        var entries = new ConcurrentQueue<LogEntry>();
        server.App.Services.GetRequiredService<ILoggerFactory>().AddProvider(new CapturingProvider(entries));
        return entries;
    }

    internal sealed record LogEntry(string Category, LogLevel Level, string Message, Exception? Exception);

    private sealed class CapturingProvider(ConcurrentQueue<LogEntry> entries) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName, entries);

        public void Dispose()
        {
        }
    }

    private sealed class CapturingLogger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue(new LogEntry(category, logLevel, formatter(state, exception), exception));
    }
}
