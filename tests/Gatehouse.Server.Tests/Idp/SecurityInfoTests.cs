using System.Net;
using System.Text.RegularExpressions;
using Gatehouse.Identity;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The security-info page (<c>/{tenant}/mysignins/security-info</c>): reached by a sign-in of its own, it lists the
/// user's passkeys, adds one only after a recent sign-in with MFA, renames and removes, escaping every name.
/// </summary>
public sealed partial class SecurityInfoTests
{
    private const string Page = "/common/mysignins/security-info";
    private const string PublicName = "login.gatehouse.test";

    [Fact]
    public async Task AfterPasswordAndCode_AUserAddsAPasskey_AndSignsInWithIt()
    {
        await using var s = await IdpScenario.StartAsync();
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await SignInWithCodeAsync(browser, secret);
        Assert.Contains("You have no passkeys yet.", browser.Html, StringComparison.Ordinal);
        Assert.DoesNotContain("add-needs-mfa", browser.Html, StringComparison.Ordinal);

        using var key = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName };
        await browser.SubmitAsync(("credential", key.Create(RegistrationOptions(browser))), ("new_passkey_name", "Work laptop"));
        Assert.True(browser.Status == HttpStatusCode.OK, browser.Error);
        Assert.Contains("Passkey &#x27;Work laptop&#x27; added.", browser.Html, StringComparison.Ordinal);
        Assert.Contains("<td class=\"passkey-name\">Work laptop</td>", browser.Html, StringComparison.Ordinal);
        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("success", row.Result);
        Assert.StartsWith("passkey_registered:", row.Reason, StringComparison.Ordinal);

        // The new passkey signs in to a host with no password.
        using var other = new SignInBrowser(s.Server);
        await other.OpenAsync(IdpScenario.Authorize());
        await other.SubmitAsync(("passkey", key.Get(PasskeySignInTests.Options(other))));
        Assert.True(other.Shows("consent"), other.Html);
    }

    [Fact]
    public async Task WithoutMfa_ThePageOnlyLooks_AndAPostedRegistrationIsRefusedAndLogged()
    {
        await using var s = await IdpScenario.StartAsync();
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(Page);
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);
        Assert.Contains("id=\"add-needs-mfa\"", browser.Html, StringComparison.Ordinal);
        Assert.Contains("data-registration-options=\"\"", browser.Html, StringComparison.Ordinal);

        using var key = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName };
        var forged = await RegistrationOptionsFromServiceAsync(s, IdpScenario.Alice);
        await browser.SubmitAsync(("credential", key.Create(forged)), ("new_passkey_name", "Sneaky"));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("multi-factor authentication", browser.Error, StringComparison.Ordinal);
        Assert.StartsWith("passkey_registration_refused:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        var alice = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(IdpScenario.Alice))!;
        Assert.Empty(await scope.ServiceProvider.GetRequiredService<PasskeyService>().ListAsync(alice.Id));
    }

    [Fact]
    public async Task MfaOlderThanTheWindow_DoesNotAllowAdding()
    {
        // A zero window: by the time the page is shown the MFA sign-in is already older than allowed.
        await using var s = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Identity:Passkeys:RecentMfaWindow"] = "00:00:00" });
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await SignInWithCodeAsync(browser, secret);
        Assert.Contains("id=\"add-needs-mfa\"", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAuthenticatorOutsideTheAllowedAaguids_IsRefused()
    {
        await using var s = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Identity:Passkeys:AllowedAaguids:0"] = "cb69481e-8ff7-4039-93ec-0a2729a154a8" });
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await SignInWithCodeAsync(browser, secret);
        using var key = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName };
        await browser.SubmitAsync(("credential", key.Create(RegistrationOptions(browser))), ("new_passkey_name", "Laptop"));
        Assert.Contains("doesn't allow passkeys from this kind of authenticator", browser.Error, StringComparison.Ordinal);
        var row = (await s.SignInsAsync()).Last();
        Assert.StartsWith("passkey_registration_authenticator_not_allowed:", row.Reason, StringComparison.Ordinal);
        Assert.Contains(key.Aaguid.ToString("D"), row.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RenameAndRemove_EscapeTheNames_AndARemovedPasskeyNoLongerSignsIn()
    {
        await using var s = await IdpScenario.StartAsync();
        using var key = await PasskeySignInTests.RegisterAsync(s, IdpScenario.Alice, "Laptop");
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(Page);
        await browser.SubmitAsync(("passkey", key.Get(PasskeySignInTests.Options(browser))));
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);

        await browser.SubmitAsync(("passkey_name", "Laptop"), ("new_name", "<b>Mine</b> & \"yours\""));
        Assert.True(browser.Status == HttpStatusCode.OK, browser.Error);
        Assert.DoesNotContain("<b>Mine</b>", browser.Html, StringComparison.Ordinal);
        Assert.Contains("&lt;b&gt;Mine&lt;/b&gt; &amp; &quot;yours&quot;", browser.Html, StringComparison.Ordinal);

        await browser.SubmitAsync(("passkey_name", "<b>Mine</b> & \"yours\""), ("new_name", new string('x', 65)));
        Assert.Contains("1 to 64 characters", browser.Error, StringComparison.Ordinal);

        await browser.SubmitAsync(("remove", "<b>Mine</b> & \"yours\""));
        Assert.Contains("You have no passkeys yet.", browser.Html, StringComparison.Ordinal);
        Assert.StartsWith("passkey_removed:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);

        using var again = new SignInBrowser(s.Server);
        await again.OpenAsync(IdpScenario.Authorize());
        await again.SubmitAsync(("passkey", key.Get(PasskeySignInTests.Options(again))));
        Assert.StartsWith("passkey_unknown_credential:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AUserWithAPasskey_IsAskedForItAfterThePassword_AndAnOldSignInCannotRemoveOrRename()
    {
        // A zero window: the passkey sign-in opens the page but is no longer recent enough to change anything.
        await using var s = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Identity:Passkeys:RecentMfaWindow"] = "00:00:00" });
        using var key = await PasskeySignInTests.RegisterAsync(s, IdpScenario.Alice, "Laptop");

        // A password alone does not open the page of a user who has a passkey (and no authenticator app).
        using var phished = new SignInBrowser(s.Server);
        await phished.OpenAsync(Page);
        await phished.SubmitAsync(("username", IdpScenario.Alice));
        await phished.SubmitAsync(("password", IdpScenario.Password));
        Assert.DoesNotContain("<h1>Security info</h1>", phished.Html, StringComparison.Ordinal);
        Assert.Contains("Use your passkey", phished.Html, StringComparison.Ordinal);

        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(Page);
        await browser.SubmitAsync(("passkey", key.Get(PasskeySignInTests.Options(browser))));
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("remove", "Laptop"));
        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.Contains("To change your passkeys", browser.Error, StringComparison.Ordinal);
        Assert.StartsWith("passkey_change_refused:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
        await browser.SubmitAsync(("passkey_name", "Laptop"), ("new_name", "Stolen"));
        Assert.Contains("To change your passkeys", browser.Error, StringComparison.Ordinal);

        await using var scope = s.Server.App.Services.CreateAsyncScope();
        var alice = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(IdpScenario.Alice))!;
        Assert.Equal("Laptop", Assert.Single(await scope.ServiceProvider.GetRequiredService<PasskeyService>().ListAsync(alice.Id)).Name);
    }

    [Fact]
    public async Task ASecurityInfoTransaction_CannotBePostedToAuthorize()
    {
        await using var s = await IdpScenario.StartAsync();
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(Page);
        var tx = browser.Hidden("tx");
        await browser.OpenAsync(IdpScenario.Authorize());
        browser.Back(browser.Html.Replace(browser.Hidden("tx"), tx, StringComparison.Ordinal));
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        Assert.Contains("AADSTS50058", browser.Html, StringComparison.Ordinal);
    }

    private static async Task SignInWithCodeAsync(SignInBrowser browser, byte[] secret)
    {
        await browser.OpenAsync(Page);
        await browser.SubmitAsync(("username", IdpScenario.Alice));
        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.True(browser.Shows("otp"), browser.Html);
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.Contains("<h1>Security info</h1>", browser.Html, StringComparison.Ordinal);
    }

    private static async Task<string> RegistrationOptionsFromServiceAsync(IdpScenario s, string upn)
    {
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        var user = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
        return (await scope.ServiceProvider.GetRequiredService<PasskeyService>().BeginRegistrationAsync(user.Id))!.OptionsJson;
    }

    private static string RegistrationOptions(SignInBrowser browser)
    {
        var match = RegistrationAttribute().Match(browser.Html);
        Assert.True(match.Success && match.Groups[1].Value.Length > 0, "the page offers no registration");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    [GeneratedRegex("data-registration-options=\"([^\"]*)\"")]
    private static partial Regex RegistrationAttribute();
}
