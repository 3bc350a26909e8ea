using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>The sign-in pages' refusals, walked with a cookie-keeping client (the Chromium test covers the happy path).</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class SignInFlowTests
{
    private const string RdpClient = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Scope = "ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation";
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Authorize = $"/common/oauth2/v2.0/authorize?client_id={RdpClient}&response_type=code&scope={Scope}&redirect_uri={Broker}";
    private const string Password = "Correct-Horse-9!";

    [Fact]
    public async Task WrongPassword_AndUnknownUser_SayTheSameThing()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "alice@contoso.test", "wrong");
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        var wrong = browser.Error;
        Assert.Contains("AADSTS50126", wrong, StringComparison.Ordinal);

        using var other = new SignInBrowser(server);
        await SignInAsync(other, "nobody@contoso.test", "whatever");
        Assert.Equal(wrong, other.Error);
        Assert.True(other.Shows("password"));
    }

    [Fact]
    public async Task DisabledAccount_IsAadsts50057()
    {
        await using var server = await StartAsync(async d => await d.DisableAsync((await d.FindUserByUpnAsync("alice@contoso.test"))!));
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "alice@contoso.test", Password);
        Assert.Contains("AADSTS50057", browser.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TenFailures_LockTheAccount_EvenForTheRightPassword()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "alice@contoso.test", "wrong-0");
        for (var i = 1; i < SignInService.LockoutThreshold; i++)
        {
            await browser.SubmitAsync(("password", $"wrong-{i}"));
        }

        await browser.SubmitAsync(("password", Password));
        Assert.Contains("AADSTS50053", browser.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PasswordAttempts_PerAccount_AreThrottledAcrossBrowsers()
    {
        await using var server = await StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "3" });
        for (var i = 0; i < 3; i++)
        {
            using var attacker = new SignInBrowser(server);
            await SignInAsync(attacker, "ALICE@contoso.test", $"guess-{i}");
            Assert.Contains("AADSTS50126", attacker.Error, StringComparison.Ordinal);
        }

        using var fourth = new SignInBrowser(server);
        await SignInAsync(fourth, "alice@contoso.test", Password);
        Assert.Equal((HttpStatusCode)429, fourth.Status);
        Assert.Contains("Too many requests", fourth.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TemporaryPassword_MustBeChanged_AndWeakOrSamePasswordsAreRefused()
    {
        string? temporary = null;
        await using var server = await StartAsync(async d =>
        {
            var tenant = (await d.FindTenantAsync("contoso.test"))!;
            (_, temporary) = await d.CreateUserAsync(tenant.Id, "bob@contoso.test", "Bob", null, temporary: true);
        });
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "bob@contoso.test", temporary!);
        Assert.True(browser.Shows("new_password"));

        await browser.SubmitAsync(("new_password", "short"));
        Assert.Contains("at least 12 characters", browser.Error, StringComparison.Ordinal);
        await browser.SubmitAsync(("new_password", temporary!));
        Assert.NotNull(browser.Error);
        await browser.SubmitAsync(("new_password", "A-Much-Better-Passphrase-42"));
        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.True(browser.Shows("consent"));
    }

    [Fact]
    public async Task WrongOneTimeCode_IsRefused_AndARightOneIsAccepted()
    {
        byte[] secret = [];
        var confirmation = "";
        await using var server = await StartAsync(async d =>
        {
            var alice = (await d.FindUserByUpnAsync("alice@contoso.test"))!;
            var enrollment = await d.BeginTotpEnrollmentAsync(alice);
            secret = Totp.Base32Decode(enrollment.SecretBase32);

            // The previous step's code: whether or not the wall clock crosses a step before it is replayed below,
            // it is refused (used, or out of the window), and the current and next steps' codes stay usable.
            confirmation = Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) - 1);
            Assert.True(await d.ConfirmTotpAsync(alice, confirmation));
        });
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "alice@contoso.test", Password);
        Assert.True(browser.Shows("otp"));
        await browser.SubmitAsync(("otp", SignInEngineTests.WrongCode(secret)));
        Assert.Contains("one-time code is not valid", browser.Error, StringComparison.Ordinal);

        // The code used to confirm the enrollment cannot be used again.
        await browser.SubmitAsync(("otp", confirmation));
        Assert.True(browser.Shows("otp"));
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.True(browser.Shows("consent"));
    }

    [Fact]
    public async Task ConsentDenied_IsAadsts65004_AndNoAnswerAsksAgain()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser, "alice@contoso.test", Password);
        await browser.SubmitAsync(("consent", "maybe"));
        Assert.Contains("Choose Yes or No", browser.Error, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", "deny"));
        Assert.Equal(HttpStatusCode.Forbidden, browser.Status);
        Assert.Contains("AADSTS65004", browser.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConsentIsRemembered_TheSecondSignInGoesStraightToTheCode()
    {
        await using var server = await StartAsync();
        using var first = new SignInBrowser(server);
        await SignInAsync(first, "alice@contoso.test", Password);
        await first.SubmitAsync(("consent", "allow"));
        Assert.Contains("id=\"redirect-url\"", first.Html, StringComparison.Ordinal);

        using var second = new SignInBrowser(server);
        await SignInAsync(second, "alice@contoso.test", Password);
        Assert.Contains("id=\"redirect-url\"", second.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transaction_FromAnotherBrowser_OrTampered_OrWithoutAntiforgery_IsRefused()
    {
        await using var server = await StartAsync();
        using var alice = new SignInBrowser(server);
        await alice.OpenAsync(Authorize);
        var stolen = alice.Hidden("tx");

        using var mallory = new SignInBrowser(server);
        await mallory.OpenAsync(Authorize);
        await mallory.SubmitAsync(("tx", stolen), ("username", "alice@contoso.test"));
        Assert.Contains("AADSTS50058", mallory.Error, StringComparison.Ordinal);

        await alice.SubmitAsync(("tx", stolen[..^4] + "AAAA"), ("username", "alice@contoso.test"));
        Assert.Contains("AADSTS50058", alice.Error, StringComparison.Ordinal);

        await alice.OpenAsync(Authorize);
        await alice.SubmitAsync(("__RequestVerificationToken", null), ("username", "alice@contoso.test"));
        Assert.Contains("AADSTS50058", alice.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EmptyUserName_IsAskedAgain()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await browser.OpenAsync(Authorize);
        await browser.SubmitAsync(("username", "  "));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.True(browser.Shows("username"));
    }

    [Fact]
    public async Task PlainPkce_IsRefused()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await browser.OpenAsync($"{Authorize}&code_challenge=abc&code_challenge_method=plain");
        Assert.Contains("S256", browser.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpsRedirect_IsA302WithTheCodeFirstAndTheIssuer()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        var native = Uri.EscapeDataString("https://login.gatehouse.test/common/oauth2/nativeclient");
        await browser.OpenAsync($"/common/oauth2/v2.0/authorize?client_id={RdpClient}&response_type=code&scope={Scope}&redirect_uri={native}&state=xyz");
        await browser.SubmitAsync(("username", "alice@contoso.test"));
        await browser.SubmitAsync(("password", Password));
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Equal(HttpStatusCode.Found, browser.Status);
        var location = browser.Location!.ToString();
        Assert.StartsWith("https://login.gatehouse.test/common/oauth2/nativeclient?code=", location, StringComparison.Ordinal);
        Assert.Contains("&state=xyz&iss=", location, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CodeReuse_IsRefused_AndRevokesTheRefreshTokenIssuedFromIt()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        var code = await GetCodeAsync(browser);
        var first = await RedeemAsync(server, code);
        Assert.Equal(HttpStatusCode.OK, first.Status);
        var refresh = first.Json!.RootElement.GetProperty("refresh_token").GetString()!;

        var second = await RedeemAsync(server, code);
        Assert.Equal(HttpStatusCode.BadRequest, second.Status);
        Assert.Equal("invalid_grant", second.Json!.RootElement.GetProperty("error").GetString());

        var refreshed = await TokenAsync(server, $"grant_type=refresh_token&refresh_token={refresh}&client_id={RdpClient}&req_cnf={ReqCnf()}");
        Assert.Equal(HttpStatusCode.BadRequest, refreshed.Status);
    }

    [Fact]
    public async Task RefreshToken_Rotates_AndTheOldOneIsRefused()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        var first = await RedeemAsync(server, await GetCodeAsync(browser));
        var refresh = first.Json!.RootElement.GetProperty("refresh_token").GetString()!;
        var rotated = await TokenAsync(server, $"grant_type=refresh_token&refresh_token={refresh}&client_id={RdpClient}&req_cnf={ReqCnf()}");
        Assert.Equal(HttpStatusCode.OK, rotated.Status);
        Assert.NotEqual(refresh, rotated.Json!.RootElement.GetProperty("refresh_token").GetString());
        var reused = await TokenAsync(server, $"grant_type=refresh_token&refresh_token={refresh}&client_id={RdpClient}&req_cnf={ReqCnf()}");
        Assert.Equal(HttpStatusCode.BadRequest, reused.Status);
    }

    [Theory]
    [InlineData("redirect_uri", "https%3a%2f%2fevil.test%2fcb")]
    [InlineData("client_id", "00000000-0000-0000-0000-000000000000")]
    [InlineData("req_cnf", "eyJraWQiOiJzaG9ydCJ9")]
    [InlineData("req_cnf", "not-base64-json")]
    public async Task Redeem_WithAWrongParameter_IsRefused(string name, string value)
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        var code = await GetCodeAsync(browser);
        var fields = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code,
            ["client_id"] = RdpClient,
            ["redirect_uri"] = Broker,
            ["req_cnf"] = ReqCnf(),
        };
        fields[name] = value;
        var response = await TokenAsync(server, string.Join("&", fields.Select(f => $"{f.Key}={f.Value}")));
        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
    }

    [Fact]
    public async Task NativeClientPage_WithoutACode_IsAnError()
    {
        await using var server = await StartAsync();
        var response = await server.Client.GetAsync(new Uri("/common/oauth2/nativeclient", UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    private static async Task<TestServer> StartAsync(Func<DirectoryService, Task>? arrange = null, IDictionary<string, string?>? overrides = null)
    {
        var server = await TestServer.StartAsync(overrides: overrides);
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
        await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", Password, temporary: false);
        if (arrange is not null)
        {
            await arrange(directory);
        }

        return server;
    }

    private static async Task SignInAsync(SignInBrowser browser, string user, string password)
    {
        await browser.OpenAsync(Authorize);
        await browser.SubmitAsync(("username", user));
        await browser.SubmitAsync(("password", password));
    }

    private static async Task<string> GetCodeAsync(SignInBrowser browser)
    {
        await SignInAsync(browser, "alice@contoso.test", Password);
        await browser.SubmitAsync(("consent", "allow"));
        var url = WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Match(browser.Html, "id=\"redirect-url\">([^<]+)<").Groups[1].Value);
        return url.Split('?')[1].Split('&')[0]["code=".Length..];
    }

    private static Task<(HttpStatusCode Status, JsonDocument? Json)> RedeemAsync(TestServer server, string code) =>
        TokenAsync(server, $"grant_type=authorization_code&code={code}&client_id={RdpClient}&redirect_uri={Broker}&req_cnf={ReqCnf()}");

    private static async Task<(HttpStatusCode Status, JsonDocument? Json)> TokenAsync(TestServer server, string body)
    {
        var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text) : null);
    }

    private static string ReqCnf()
    {
        var thumbprint = Convert.ToBase64String(SHA256.HashData("pop-key"u8)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
