using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Gateway.Tests;
using Gatehouse.Identity;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// Temporary Access Passes: typed in the password field of the security-info sign-in they open the page (amr
/// <c>tap</c>) so the user can add a first passkey; a single-use pass is spent exactly once, even under races; expiry
/// follows the clock; anywhere else (a host) a pass is refused, logged, and not spent.
/// </summary>
public sealed partial class TemporaryAccessPassTests
{
    private const string PublicName = "login.gatehouse.test";

    [Fact]
    public async Task APass_OpensSecurityInfo_AddsTheFirstPasskey_AndIsSpent()
    {
        await using var s = await IdpScenario.StartAsync();
        var pass = await CreateAsync(s, IdpScenario.Alice, multiUse: false);
        using var browser = new SignInBrowser(s.Server);
        await SignInToSecurityInfoAsync(browser, pass);
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);
        var rows = await s.SignInsAsync();
        Assert.Contains(rows, r => r.Reason.StartsWith("tap_used:", StringComparison.Ordinal) && r.Methods == "tap" && r.Result == "success");

        using var key = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName };
        await browser.SubmitAsync(("credential", key.Create(RegistrationOptions(browser))), ("new_passkey_name", "First"));
        Assert.True(browser.Status == HttpStatusCode.OK, browser.Error);
        Assert.Contains("<td class=\"passkey-name\">First</td>", browser.Html, StringComparison.Ordinal);

        // Single use: the same pass again is refused and logged.
        using var again = new SignInBrowser(s.Server);
        await SignInToSecurityInfoAsync(again, pass);
        Assert.Contains("expired or was already used", again.Error, StringComparison.Ordinal);
        Assert.StartsWith("tap_expired_or_used:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APass_AllowsAddingOnlyWithinTheRecentWindow_NotForAsLongAsThePageStaysOpen()
    {
        await using var s = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Identity:Passkeys:RecentMfaWindow"] = "00:00:00" });
        var pass = await CreateAsync(s, IdpScenario.Alice, multiUse: false);
        using var browser = new SignInBrowser(s.Server);
        await SignInToSecurityInfoAsync(browser, pass);
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);
        Assert.Contains("id=\"add-needs-mfa\"", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APass_ForAHost_IsRefusedLoggedAndNotSpent()
    {
        await using var s = await IdpScenario.StartAsync();
        var pass = await CreateAsync(s, IdpScenario.Alice, multiUse: false);
        var before = await s.AuthorizationCodeCountAsync();
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser, password: pass);
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("can't sign you in here", browser.Error, StringComparison.Ordinal);
        Assert.True(browser.Shows("password"));
        var row = (await s.SignInsAsync()).Last();
        Assert.StartsWith("tap_not_allowed:", row.Reason, StringComparison.Ordinal);
        Assert.Equal(before, await s.AuthorizationCodeCountAsync());

        // Not spent: it still opens the security-info page.
        using var info = new SignInBrowser(s.Server);
        await SignInToSecurityInfoAsync(info, pass);
        Assert.Contains("<h1>Security info</h1>", info.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASinglePass_RedeemedByManyAtOnce_IsAcceptedExactlyOnce()
    {
        await using var s = await IdpScenario.StartAsync();
        var pass = await CreateAsync(s, IdpScenario.Alice, multiUse: false);
        var alice = await UserIdAsync(s, IdpScenario.Alice);
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
        {
            await using var scope = s.Server.App.Services.CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<TemporaryAccessPassService>().RedeemAsync(alice, pass);
        }));
        Assert.Equal(1, outcomes.Count(o => o == TapRedemption.Accepted));
        Assert.All(outcomes.Where(o => o != TapRedemption.Accepted), o => Assert.Equal(TapRedemption.AlreadyUsed, o));
    }

    [Fact]
    public async Task Expiry_FollowsTheClock_AndAMultiUsePassWorksUntilThen()
    {
        await using var s = await IdpScenario.StartAsync();
        var alice = await UserIdAsync(s, IdpScenario.Alice);
        var clock = new ManualTime();
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        var taps = new TemporaryAccessPassService(scope.ServiceProvider.GetRequiredService<GatehouseDbContext>(), clock);
        var (pass, record) = await taps.CreateAsync(alice, TimeSpan.FromMinutes(10), multiUse: true);
        Assert.Equal(record.CreatedAt + TimeSpan.FromMinutes(10), record.ExpiresAt);
        Assert.Equal(TapRedemption.Accepted, await taps.RedeemAsync(alice, pass));
        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(TapRedemption.Accepted, await taps.RedeemAsync(alice, pass));
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(TapRedemption.Expired, await taps.RedeemAsync(alice, pass));
        Assert.Equal(TapRedemption.NoMatch, await taps.RedeemAsync(await UserIdAsync(s, IdpScenario.Bob), pass));
        Assert.Equal(TapRedemption.NoMatch, await taps.RedeemAsync(alice, "not a pass"));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => taps.CreateAsync(alice, TimeSpan.FromMinutes(9), multiUse: false));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => taps.CreateAsync(alice, TimeSpan.FromHours(8) + TimeSpan.FromMinutes(1), multiUse: false));

        // Only the hash is stored.
        var stored = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().TemporaryAccessPasses.FindAsync(record.Id);
        Assert.Equal(32, stored!.PassHash.Length);
        Assert.DoesNotContain(pass, Convert.ToHexString(stored.PassHash), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_CreatePrintsThePassOnce_ListShowsNoPass_AndLifetimeIsCapped()
    {
        await using var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("Alice-Pw-12345\n", "user", "create", "--upn", "alice@contoso.test", "--display-name", "Alice", "--password-stdin");

        var made = await cli.OkAsync("user", "tap", "create", "alice@contoso.test", "--lifetime", "30m", "--output", "json");
        using var json = JsonDocument.Parse(made.Output);
        var pass = json.RootElement.GetProperty("pass").GetString()!;
        Assert.Equal(TemporaryAccessPassService.PassLength, pass.Length);
        Assert.False(json.RootElement.GetProperty("multiUse").GetBoolean());

        var text = await cli.OkAsync("user", "tap", "create", "alice@contoso.test", "--multi-use");
        Assert.Matches(PassLine(), text.Output);

        var list = await cli.OkAsync("user", "tap", "list", "alice@contoso.test");
        Assert.DoesNotContain(pass, list.Output, StringComparison.Ordinal);
        Assert.Contains("single", list.Output, StringComparison.Ordinal);
        Assert.Contains("multi", list.Output, StringComparison.Ordinal);

        Assert.NotEqual(0, (await cli.RunAsync("user", "tap", "create", "alice@contoso.test", "--lifetime", "9m")).ExitCode);
        Assert.NotEqual(0, (await cli.RunAsync("user", "tap", "create", "alice@contoso.test", "--lifetime", "9h")).ExitCode);

        await cli.OkAsync("user", "tap", "remove", "alice@contoso.test");
        Assert.DoesNotContain("single", (await cli.OkAsync("user", "tap", "list", "alice@contoso.test")).Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("10m", 10)]
    [InlineData("1h", 60)]
    [InlineData("8h", 480)]
    [InlineData("90M", 90)]
    [InlineData("9m", null)]
    [InlineData("481m", null)]
    [InlineData("-1h", null)]
    [InlineData("1d", null)]
    [InlineData("", null)]
    [InlineData("99999999999h", null)]
    public void Lifetime_ParsesWithinTheCaps(string text, int? minutes) =>
        Assert.Equal(minutes, Gatehouse.Cli.UserCommands.ParseLifetime(text));

    private static async Task SignInToSecurityInfoAsync(SignInBrowser browser, string pass)
    {
        await browser.OpenAsync("/common/mysignins/security-info");
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", pass));
    }

    private static async Task<string> CreateAsync(IdpScenario s, string upn, bool multiUse)
    {
        var id = await UserIdAsync(s, upn);
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<TemporaryAccessPassService>().CreateAsync(id, TimeSpan.FromHours(1), multiUse)).Pass;
    }

    private static async Task<Guid> UserIdAsync(IdpScenario s, string upn)
    {
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!.Id;
    }

    private static string RegistrationOptions(SignInBrowser browser)
    {
        var match = RegistrationAttribute().Match(browser.Html);
        Assert.True(match.Success && match.Groups[1].Value.Length > 0, "the page offers no registration");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    [GeneratedRegex("data-registration-options=\"([^\"]*)\"")]
    private static partial Regex RegistrationAttribute();

    [GeneratedRegex("Temporary Access Pass for alice@contoso.test: [A-Za-z0-9]{16}")]
    private static partial Regex PassLine();
}
