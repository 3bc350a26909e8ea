using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// "More information required": a sign-in that needs MFA from a user without a confirmed authenticator app sets one
/// up (QR code and key on the page, the first code confirms it and counts as the second factor).
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed partial class MfaEnrollmentTests
{
    private const string RdpClient = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Scope = "ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation";
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Authorize = $"/common/oauth2/v2.0/authorize?client_id={RdpClient}&response_type=code&scope={Scope}&redirect_uri={Broker}";
    private const string Password = "Correct-Horse-9!";
    private const string Alice = "alice@contoso.test";

    private static readonly Dictionary<string, string?> RequireMfa = new() { ["Gatehouse:Identity:RequireMfaEnrollment"] = "true" };

    [Fact]
    public async Task EnrollmentPage_ShowsAQrCodeOfTheOtpAuthUri_AndItsKey()
    {
        await using var server = await StartAsync(RequireMfa);
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.True(browser.Shows("otp"));
        var page = EnrollmentPage.Parse(browser.Html);

        // The image is a PNG, and exactly the QR code of the URI on the page.
        var png = Convert.FromBase64String(page.QrPngBase64);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal(SignInPages.QrCodePngBase64(page.OtpAuthUri), page.QrPngBase64);

        // The URI names the account and carries the key shown for typing: 160 bits.
        var uri = new Uri(page.OtpAuthUri);
        Assert.Equal("otpauth", uri.Scheme);
        Assert.Equal("totp", uri.Host);
        Assert.Contains(Alice, Uri.UnescapeDataString(uri.AbsolutePath), StringComparison.Ordinal);
        Assert.Equal(page.SecretBase32, QueryValue(uri, "secret"));
        Assert.Equal(DirectoryService.TotpSecretBytes, Totp.Base32Decode(page.SecretBase32).Length);

        // Nothing is stored for the user until a code confirms the method, and the key is not in the sealed field.
        var user = await FindAliceAsync(server);
        Assert.Null(user.TotpSecretProtected);
        Assert.Null(user.TotpConfirmedAt);
        Assert.DoesNotContain(page.SecretBase32, browser.Hidden("tx"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CorrectCode_ConfirmsTheMethod_AndTheTokenCarriesMfa()
    {
        await using var server = await StartAsync(RequireMfa);
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        var secret = Totp.Base32Decode(EnrollmentPage.Parse(browser.Html).SecretBase32);

        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
        await browser.SubmitAsync(("consent", "allow"));

        var token = await RedeemAsync(server, CodeFromCopyPage(browser.Html));
        var amr = Claims(token).GetProperty("amr").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("pwd", amr);
        Assert.Contains("mfa", amr);
        Assert.Contains("otp", amr);

        var user = await FindAliceAsync(server);
        Assert.NotNull(user.TotpConfirmedAt);

        // The next sign-in asks for a code from the method just set up, not for a new enrolment.
        using var next = new SignInBrowser(server);
        await SignInAsync(next);
        Assert.True(next.Shows("otp"));
        Assert.DoesNotContain("totp-qr", next.Html, StringComparison.Ordinal);
        await next.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.Contains("id=\"redirect-url\"", next.Html, StringComparison.Ordinal); // Consent is remembered: straight to the code.
    }

    [Fact]
    public async Task WrongCode_IsRefused_AndTheKeyStaysTheSame()
    {
        await using var server = await StartAsync(RequireMfa);
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        var first = EnrollmentPage.Parse(browser.Html).SecretBase32;
        var secret = Totp.Base32Decode(first);

        await browser.SubmitAsync(("otp", WrongCode(secret)));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Equal(AadError.InvalidEnrollmentOtp.Describe(), browser.Error);
        Assert.Equal(first, EnrollmentPage.Parse(browser.Html).SecretBase32);
        Assert.Null((await FindAliceAsync(server)).TotpConfirmedAt);

        await browser.SubmitAsync(("otp", "12ab56"));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Equal(first, EnrollmentPage.Parse(browser.Html).SecretBase32);

        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
    }

    [Fact]
    public async Task ReplayedCode_IsRefused_OnTheEnrollmentFormAndAtTheNextSignIn()
    {
        await using var server = await StartAsync(RequireMfa);
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        var enrollmentPage = browser.Html;
        var secret = Totp.Base32Decode(EnrollmentPage.Parse(enrollmentPage).SecretBase32);
        var code = Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow));
        await browser.SubmitAsync(("otp", code));
        Assert.True(browser.Shows("consent"), browser.Error);
        var confirmed = await FindAliceAsync(server);

        // Back to the enrolment page: neither the same code nor a fresh one enrols again or replaces the method.
        browser.Back(enrollmentPage);
        await browser.SubmitAsync(("otp", code));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Equal(AadError.InvalidEnrollmentOtp.Describe(), browser.Error);
        browser.Back(enrollmentPage);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        var after = await FindAliceAsync(server);
        Assert.Equal(confirmed.TotpSecretProtected, after.TotpSecretProtected);
        Assert.Equal(confirmed.TotpConfirmedAt, after.TotpConfirmedAt);

        // The code that confirmed the method is not accepted as a sign-in code either.
        using var next = new SignInBrowser(server);
        await SignInAsync(next);
        await next.SubmitAsync(("otp", code));
        Assert.Equal(HttpStatusCode.BadRequest, next.Status);
        Assert.True(next.Shows("otp"));
    }

    [Fact]
    public async Task Enrollment_WithoutThePasswordStep_IsRefused()
    {
        await using var server = await StartAsync(RequireMfa);

        // A wrong password never leads to the enrolment page, and a code posted instead of the password does nothing.
        using var stranger = new SignInBrowser(server);
        await SignInAsync(stranger, "Wrong-Password-1!");
        Assert.True(stranger.Shows("password"));
        Assert.DoesNotContain("totp-qr", stranger.Html, StringComparison.Ordinal);
        await stranger.SubmitAsync(("password", null), ("otp", "123456"));
        Assert.True(stranger.Shows("password"));
        Assert.DoesNotContain("totp-qr", stranger.Html, StringComparison.Ordinal);

        // The enrolment form of a browser that passed the password step is useless in another browser, even with the
        // right code.
        using var alice = new SignInBrowser(server);
        await SignInAsync(alice);
        var secret = Totp.Base32Decode(EnrollmentPage.Parse(alice.Html).SecretBase32);
        stranger.Back(alice.Html);
        await stranger.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.Equal(HttpStatusCode.BadRequest, stranger.Status);
        Assert.Equal(AadError.SessionExpired.Describe(), stranger.Error);

        var user = await FindAliceAsync(server);
        Assert.Null(user.TotpSecretProtected);
        Assert.Null(user.TotpConfirmedAt);
    }

    [Fact]
    public async Task TemporaryPassword_IsChangedFirst_ThenTheAppIsSetUp()
    {
        await using var server = await StartAsync(RequireMfa, temporaryPassword: true);
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        Assert.True(browser.Shows("new_password"));
        Assert.DoesNotContain("totp-qr", browser.Html, StringComparison.Ordinal);

        await browser.SubmitAsync(("new_password", "Another-Horse-42!"));
        var secret = Totp.Base32Decode(EnrollmentPage.Parse(browser.Html).SecretBase32);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
    }

    [Fact]
    public async Task EnrollmentStartedByTheAdministrator_IsFinishedAtSignIn_WithTheSameKey()
    {
        // No tenant-wide switch: only the user whose enrolment was started is asked.
        TotpEnrollment? started = null;
        await using var server = await StartAsync(arrange: async d =>
        {
            await d.CreateUserAsync((await d.FindTenantAsync("contoso.test"))!.Id, "bob@contoso.test", "Bob", Password, temporary: false);
            started = await d.BeginTotpEnrollmentAsync((await d.FindUserByUpnAsync(Alice))!);
        });

        using var bob = new SignInBrowser(server);
        await SignInAsync(bob, user: "bob@contoso.test");
        Assert.True(bob.Shows("consent"));

        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        var page = EnrollmentPage.Parse(browser.Html);
        Assert.Equal(started!.SecretBase32, page.SecretBase32);
        var secret = Totp.Base32Decode(page.SecretBase32);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        Assert.True(browser.Shows("consent"), browser.Error);
        Assert.NotNull((await FindAliceAsync(server)).TotpConfirmedAt);
    }

    [Fact]
    public async Task WithoutTheSwitch_AUserWithoutAMethod_IsNotAskedToEnrol()
    {
        await using var server = await StartAsync();
        using var browser = new SignInBrowser(server);
        await SignInAsync(browser);
        Assert.True(browser.Shows("consent"));
        Assert.DoesNotContain("totp-qr", browser.Html, StringComparison.Ordinal);
    }

    /// <summary>The parts of the enrolment page a user reads: the QR image, the key and the otpauth link.</summary>
    private sealed partial record EnrollmentPage(string QrPngBase64, string SecretBase32, string OtpAuthUri)
    {
        public static EnrollmentPage Parse(string html)
        {
            var qr = QrImage().Match(html);
            var secret = SecretText().Match(html);
            var uri = OtpAuthLink().Match(html);
            Assert.True(qr.Success && secret.Success && uri.Success, "not the enrolment page: " + html);
            return new EnrollmentPage(
                qr.Groups[1].Value,
                WebUtility.HtmlDecode(secret.Groups[1].Value).Replace(" ", string.Empty, StringComparison.Ordinal),
                WebUtility.HtmlDecode(uri.Groups[1].Value));
        }

        [GeneratedRegex("""<img id="totp-qr"[^>]* src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*>""")]
        private static partial Regex QrImage();

        [GeneratedRegex("""id="totp-secret">([^<]+)<""")]
        private static partial Regex SecretText();

        [GeneratedRegex("""id="totp-uri" href="([^"]+)">""")]
        private static partial Regex OtpAuthLink();
    }

    private static string? QueryValue(Uri uri, string name) =>
        uri.Query.TrimStart('?').Split('&').Select(p => p.Split('=', 2)).Where(p => p[0] == name).Select(p => Uri.UnescapeDataString(p[1])).SingleOrDefault();

    /// <summary>A well-formed code that is none of the codes the server could accept now (±2 steps, to be safe).</summary>
    private static string WrongCode(byte[] secret)
    {
        var now = Totp.StepAt(DateTimeOffset.UtcNow);
        var valid = Enumerable.Range(-2, 5).Select(d => Totp.Compute(secret, now + d)).ToHashSet();
        return Enumerable.Range(0, 10).Select(i => new string((char)('0' + i), 6)).First(c => !valid.Contains(c));
    }

    private static async Task<TestServer> StartAsync(IDictionary<string, string?>? overrides = null, bool temporaryPassword = false, Func<DirectoryService, Task>? arrange = null)
    {
        var server = await TestServer.StartAsync(overrides: overrides);
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
        await directory.CreateUserAsync(tenant.Id, Alice, "Alice", Password, temporary: temporaryPassword);
        if (arrange is not null)
        {
            await arrange(directory);
        }

        return server;
    }

    private static async Task<User> FindAliceAsync(TestServer server)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(Alice))!;
    }

    private static async Task SignInAsync(SignInBrowser browser, string password = Password, string user = Alice)
    {
        await browser.OpenAsync(Authorize);
        await browser.SubmitAsync(("username", user));
        await browser.SubmitAsync(("password", password));
    }

    private static string CodeFromCopyPage(string html)
    {
        var url = WebUtility.HtmlDecode(Regex.Match(html, "id=\"redirect-url\">([^<]+)<").Groups[1].Value);
        return url.Split('?')[1].Split('&')[0]["code=".Length..];
    }

    private static async Task<string> RedeemAsync(TestServer server, string code)
    {
        var thumbprint = Base64Url(SHA256.HashData("pop-key"u8));
        var reqCnf = Base64Url(System.Text.Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}"));
        var body = $"grant_type=authorization_code&code={code}&client_id={RdpClient}&redirect_uri={Broker}&req_cnf={reqCnf}";
        using var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("access_token").GetString()!;
    }

    private static JsonElement Claims(string jwt) =>
        JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement;

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
