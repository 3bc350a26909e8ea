using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Storage;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The sign-in pages in Debian's Chromium, the way a user meets them after FreeRDP prints "Browse to:": user name,
/// password, one-time code (the user has an authenticator), consent for the host, and the page with the redirect URL
/// to paste back. The code on that page then redeems for a PoP-bound RDP access token.
/// </summary>
public sealed class BrowserSignInTests(ITestOutputHelper output)
{
    private const string RdpClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";

    [Fact]
    public async Task PasswordAndTotp_Consent_CopyPage_AndTheCodeRedeemsForAPopToken()
    {
        if (!Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        Peers.RequireTestHostNames();
        await using var app = await LoopbackGatehouse.StartAsync();
        var publicName = LoopbackGatehouse.PublicName(app);
        var port = LoopbackGatehouse.Port(app);

        // The directory: a host vm1 and alice with a password and a confirmed authenticator.
        byte[] secret;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
            var (alice, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Correct-Horse-9!", temporary: false);
            var enrollment = await directory.BeginTotpEnrollmentAsync(alice);
            secret = Totp.Base32Decode(enrollment.SecretBase32);
            Assert.True(await directory.ConfirmTotpAsync(alice, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        }

        // What FreeRDP 3.10.3 prints after "Browse to:" (design/protocol/freerdp-aad-client.md §3).
        var authorize = $"https://{publicName}/common/oauth2/v2.0/authorize?client_id={RdpClientId}&response_type=code"
            + "&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation"
            + $"&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2f{RdpClientId}";

        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(authorize);
        await page.FillAsync("input[name=username]", "alice@contoso.test");
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=password]", "Correct-Horse-9!");
        await page.ClickAsync("#next");

        // The confirmation used this step's code; a code is good once, so the sign-in uses the next step's.
        await page.WaitForSelectorAsync("input[name=otp]");
        await page.FillAsync("input[name=otp]", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
        await page.ClickAsync("#next");

        await page.WaitForSelectorAsync("button[name=consent][value=allow]");
        Assert.Contains("Allow remote desktop connection to vm1?", await page.InnerTextAsync("h1"), StringComparison.Ordinal);
        await page.ClickAsync("button[name=consent][value=allow]");

        var redirect = await page.InnerTextAsync("#redirect-url");
        var screenshot = Path.Combine(AppContext.BaseDirectory, "screenshots", "copy-redirect-url.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
        output.WriteLine($"Screenshot of the copy page: {screenshot}");
        output.WriteLine($"Redirect URL: {redirect[..Math.Min(redirect.Length, 120)]}…");

        Assert.StartsWith($"ms-appx-web://Microsoft.AAD.BrokerPlugin/{RdpClientId}?code=", redirect, StringComparison.Ordinal);
        var code = redirect.Split('?')[1].Split('&')[0]["code=".Length..];

        // The client's token request: unencoded code, no PKCE, req_cnf with its PoP key (FreeRDP's body).
        using var key = RSA.Create(2048);
        var p = key.ExportParameters(false);
        var thumbprint = JwkThumbprint.ComputeRsa(B64(p.Exponent!), B64(p.Modulus!));
        var reqCnf = B64(System.Text.Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}"));
        using var http = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c is not null },
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(IPAddress.Loopback, port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });
        var body = $"grant_type=authorization_code&code={code}\n&client_id={RdpClientId}"
            + "&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation"
            + $"&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2f{RdpClientId}&req_cnf={reqCnf}";
        var response = await http.PostAsync(new Uri($"https://{publicName}/common/oauth2/v2.0/token"), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        var json = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("pop", doc.RootElement.GetProperty("token_type").GetString());
        var accessToken = doc.RootElement.GetProperty("access_token").GetString()!;

        await using (var scope = app.Services.CreateAsyncScope())
        {
            var tokens = scope.ServiceProvider.GetRequiredService<TokenService>();
            var outcome = await tokens.ValidateRdpAccessTokenAsync(accessToken, "vm1", DateTimeOffset.UtcNow);
            Assert.True(outcome.IsValid, outcome.Error);
            Assert.Equal(thumbprint, outcome.CnfKid);
            Assert.Equal("alice@contoso.test", outcome.Upn);
            Assert.Contains("mfa", outcome.Amr);
        }

        // The same code a second time is refused (single use).
        var again = await http.PostAsync(new Uri($"https://{publicName}/common/oauth2/v2.0/token"), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        await app.StopAsync();
    }


    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
