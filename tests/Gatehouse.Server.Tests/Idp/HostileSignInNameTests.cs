using System.Net;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// Issue 15 item 3 on the sign-in pages: a user name with control or bidirectional characters is not a user name (the
/// page refuses it, as it refuses an empty or overlong one, without telling whether an account exists), and text from
/// the request shown on a page has those characters written out, not just HTML-encoded.
/// </summary>
public sealed class HostileSignInNameTests(HostileSignInNameTests.Server fixture) : IClassFixture<HostileSignInNameTests.Server>
{
    private const string Authorize = "/common/oauth2/v2.0/authorize?client_id=a85cf173-4192-42f8-81fa-777a763e6e2c&response_type=code"
        + "&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation"
        + "&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";

    public static TheoryData<string> HostileNames() =>
    [
        "x\u001b[31mevil\u001b]0;owned\u0007@contoso.test",
        "mallory@contoso.test\r\nFAKE ROW success@contoso.test",
        "eve\u202etset.osotnoc@contoso.test",
        "zero\u200bwidth@contoso.test",
        new string('a', 60_000) + "@contoso.test",
    ];

    [Theory]
    [MemberData(nameof(HostileNames))]
    public async Task UsernameStep_ControlBidiOrOverlongName_RefusedAndNotLogged(string name)
    {
        var server = fixture.Instance;
        using var browser = new SignInBrowser(server);
        await browser.OpenAsync(Authorize);

        await browser.SubmitAsync(("username", name));

        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Equal("Enter a valid email address or user name.", browser.Error);
        Assert.True(browser.Shows("username"));
        Assert.False(browser.Shows("password"));
        await using var scope = server.App.Services.CreateAsyncScope();
        Assert.Equal(0, await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.CountAsync());
    }

    [Fact]
    public async Task UsernameStep_EncodedNul_400NotAServerError()
    {
        using var browser = new SignInBrowser(fixture.Instance);
        await browser.OpenAsync(Authorize);

        await browser.SubmitAsync(("username", "nul\0@contoso.test"));

        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("AADSTS900144", browser.Error, StringComparison.Ordinal);
        Assert.False(browser.Shows("password"));
    }

    [Fact]
    public async Task TokenEndpoint_EncodedNul_400OAuthError()
    {
        using var content = new StringContent("grant_type=password&username=nul%00@contoso.test&password=x", System.Text.Encoding.ASCII, "application/x-www-form-urlencoded");

        using var response = await fixture.Instance.Client.PostAsync("/common/oauth2/v2.0/token", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("invalid_request", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoginHint_BidiAndControlCharacters_WrittenOutOnThePage()
    {
        using var browser = new SignInBrowser(fixture.Instance);

        await browser.OpenAsync(Authorize + "&login_hint=" + Uri.EscapeDataString("eve\u202e\u001b[31m@contoso.test"));

        Assert.Equal(HttpStatusCode.OK, browser.Status);
        Assert.Contains(@"value=""eve\u202e\x1b[31m@contoso.test""", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("&#x202E;", browser.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\u202e', browser.Html);
        Assert.DoesNotContain('\u001b', browser.Html);
    }

    /// <summary>One server for the class (nothing here signs in, so nothing is logged).</summary>
    public sealed class Server : IAsyncLifetime
    {
        internal TestServer Instance { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Instance = await TestServer.StartAsync();
            await using var scope = Instance.App.Services.CreateAsyncScope();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
        }

        public async Task DisposeAsync() => await Instance.DisposeAsync();
    }
}
