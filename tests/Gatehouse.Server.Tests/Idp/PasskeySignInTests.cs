using System.Net;
using System.Text.RegularExpressions;
using Gatehouse.Identity;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// Passkeys on the sign-in pages, driven through the form client with the software authenticator: username-less
/// sign-in (password-free MFA), every refusal logged with its precise reason, and the passkey as the second factor.
/// </summary>
public sealed partial class PasskeySignInTests
{
    private const string PublicName = "login.gatehouse.test";

    [Fact]
    public async Task PasskeySignIn_WithNoPassword_IssuesACodeWithFidoAndMfa()
    {
        await using var s = await IdpScenario.StartAsync();
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(IdpScenario.Authorize());
        Assert.Contains("autocomplete=\"username webauthn\"", browser.Html, StringComparison.Ordinal);
        Assert.Contains("Sign in with a passkey", browser.Html, StringComparison.Ordinal);

        await browser.SubmitAsync(("passkey", key.Get(Options(browser))));
        Assert.True(browser.Shows("consent"), browser.Html);
        Assert.Contains(IdpScenario.Alice, browser.Html, StringComparison.Ordinal);
        await browser.SubmitAsync(("consent", "allow"));
        var code = IdpScenario.CodeFromCopyPage(browser.Html);
        Assert.NotNull(code);
        Assert.Equal(["fido", "mfa"], await s.RedeemAmrAsync(code));

        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("success", row.Result);
        Assert.Equal("fido mfa", row.Methods);
        Assert.Contains("with fido mfa", row.Reason, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "wrong-rp-id", "passkey_wrong_rp_id:" },
        { "wrong-origin", "passkey_wrong_origin:" },
        { "unknown", "passkey_unknown_credential:" },
        { "clone", "passkey_counter_regression:" },
        { "no-uv", "passkey_user_verification_missing:" },
        { "garbage", "passkey_malformed:" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task RefusedPasskey_ShowsAMessage_AndLogsThePreciseReason(string attack, string reasonPrefix)
    {
        await using var s = await IdpScenario.StartAsync();
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        using var stranger = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName, UserHandle = PasskeyService.UserHandleOf(Guid.NewGuid()) };
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(IdpScenario.Authorize());
        if (attack == "clone")
        {
            // One good sign-in moves the stored counter on; a copy of the key that still says 1 is refused.
            await browser.SubmitAsync(("passkey", key.Get(Options(browser))));
            Assert.True(browser.Shows("consent"));
            await browser.OpenAsync(IdpScenario.Authorize());
            key.Counter = 1;
        }

        key.RpId = attack == "wrong-rp-id" ? "evil.test" : PublicName;
        key.Origin = attack == "wrong-origin" ? "https://login.gatehouse.test.evil.test" : $"https://{PublicName}";
        key.VerifiesUser = attack != "no-uv";
        var response = attack switch
        {
            "unknown" => stranger.Get(Options(browser)),
            "garbage" => "{\"id\":\"AA\",\"rawId\":\"AA\",\"type\":\"public-key\",\"response\":{}}",
            _ => key.Get(Options(browser)),
        };
        var before = await s.AuthorizationCodeCountAsync();
        await browser.SubmitAsync(("passkey", response));

        Assert.Equal(HttpStatusCode.BadRequest, browser.Status);
        Assert.True(browser.Shows("username"), "the user-name page is shown again");
        Assert.False(string.IsNullOrEmpty(browser.Error));
        Assert.DoesNotContain("AADSTS", browser.Error, StringComparison.Ordinal);
        Assert.Equal(before, await s.AuthorizationCodeCountAsync());
        var row = (await s.SignInsAsync()).Last();
        Assert.Equal("failure", row.Result);
        Assert.StartsWith(reasonPrefix, row.Reason, StringComparison.Ordinal);
        Assert.Equal(browser.Error, row.UserMessage);
        if (attack is not ("unknown" or "garbage"))
        {
            Assert.Equal(IdpScenario.Alice, row.UserPrincipalName);
        }

        Assert.True((await s.VerifyLogAsync()).Intact);
    }

    [Fact]
    public async Task SamePageReplayedWithTheSameAssertion_IsRefused()
    {
        await using var s = await IdpScenario.StartAsync();
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(IdpScenario.Authorize());
        var page = browser.Html;
        var assertion = key.Get(Options(browser));
        await browser.SubmitAsync(("passkey", assertion));
        Assert.True(browser.Shows("consent"));

        browser.Back(page);
        await browser.SubmitAsync(("passkey", assertion));
        Assert.True(browser.Shows("username"));
        Assert.StartsWith("passkey_counter_regression:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PasswordThenMfa_OffersThePasskeyFirst_AndGivesPwdFidoMfa()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        Assert.Contains("Use your authenticator app instead", browser.Html, StringComparison.Ordinal);
        Assert.Contains("Use your passkey", browser.Html, StringComparison.Ordinal);
        Assert.False(browser.Shows("otp"));
        await browser.SubmitAsync(("passkey", key.Get(Options(browser))));
        Assert.True(browser.Shows("consent"), browser.Html);
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Equal(["pwd", "fido", "mfa"], await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!));
    }

    [Fact]
    public async Task PhishingResistantStrength_UserWithAPasskey_IsAskedForItAfterThePassword_AndSignsIn()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync("""
            { "displayName": "Passkeys on vm1", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["All"] }, "hosts": { "includeHosts": ["vm1"] } },
              "grantControls": { "operator": "OR", "builtInControls": [], "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } } }
            """);
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var key = await RegisterAsync(s, IdpScenario.Alice);

        // The password alone cannot meet the strength: the passkey is asked for (not refused, not the app's code).
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.Contains("Use your passkey", browser.Html, StringComparison.Ordinal);
        Assert.False(browser.Shows("otp"));
        await browser.SubmitAsync(("passkey", key.Get(Options(browser))));
        Assert.True(browser.Shows("consent"), browser.Error ?? browser.Html);
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Equal(["pwd", "fido", "mfa"], await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!));

        // Choosing the app instead ends in the strength's refusal with the fix (the code cannot meet it).
        using var other = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(other);
        await other.SubmitAsync(("method", "otp"));
        await other.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.Equal(HttpStatusCode.Forbidden, other.Status);
        Assert.Contains("'Phishing-resistant MFA'", other.Error, StringComparison.Ordinal);
        Assert.StartsWith("authentication_strength_unmet:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PasswordThenMfa_TheAuthenticatorAppStaysAvailable()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        await browser.SubmitAsync(("method", "otp"));
        Assert.True(browser.Shows("otp"));
        await browser.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1)));
        Assert.True(browser.Shows("consent"));
        await browser.SubmitAsync(("consent", "allow"));
        Assert.Equal(["pwd", "mfa", "otp"], await s.RedeemAmrAsync(IdpScenario.CodeFromCopyPage(browser.Html)!));
    }

    [Fact]
    public async Task PasswordThenMfa_WithoutAPasskey_AsksForTheCodeAsBefore()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var key = await RegisterAsync(s, IdpScenario.Bob);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        Assert.True(browser.Shows("otp"));
        Assert.DoesNotContain("Use your passkey", browser.Html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SecondFactor_WithAnotherUsersPasskey_IsRefusedAndLogged()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm1", "mfa"));
        await s.EnrollTotpAsync(IdpScenario.Alice);
        using var alices = await RegisterAsync(s, IdpScenario.Alice);
        using var bobs = await RegisterAsync(s, IdpScenario.Bob);
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        await browser.SubmitAsync(("passkey", bobs.Get(Options(browser))));
        Assert.Contains("another account", browser.Error, StringComparison.Ordinal);
        Assert.False(browser.Shows("consent"));
        var row = (await s.SignInsAsync()).Last();
        Assert.StartsWith("passkey_wrong_user:", row.Reason, StringComparison.Ordinal);
        Assert.Contains(IdpScenario.Bob, row.Reason, StringComparison.Ordinal);

        // The page is offered again with a fresh challenge, and the right passkey works.
        await browser.SubmitAsync(("passkey", alices.Get(Options(browser))));
        Assert.True(browser.Shows("consent"), browser.Html);
    }

    [Fact]
    public async Task PasskeySignIn_DisabledUser_IsRefused()
    {
        await using var s = await IdpScenario.StartAsync();
        using var key = await RegisterAsync(s, IdpScenario.Alice);
        await using (var scope = s.Server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            await directory.DisableAsync((await directory.FindUserByUpnAsync(IdpScenario.Alice))!);
        }

        using var browser = new SignInBrowser(s.Server);
        await browser.OpenAsync(IdpScenario.Authorize());
        await browser.SubmitAsync(("passkey", key.Get(Options(browser))));
        Assert.Contains("AADSTS50057", browser.Error, StringComparison.Ordinal);
        Assert.StartsWith("passkey_user_unavailable:", (await s.SignInsAsync()).Last().Reason, StringComparison.Ordinal);
    }

    /// <summary>Registers a passkey for <paramref name="upn"/> as the security-info page would, with the software authenticator.</summary>
    internal static async Task<SoftwareAuthenticator> RegisterAsync(IdpScenario s, string upn, string name = "Laptop")
    {
        var key = new SoftwareAuthenticator { Origin = $"https://{PublicName}", RpId = PublicName };
        await using var scope = s.Server.App.Services.CreateAsyncScope();
        var user = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
        var passkeys = scope.ServiceProvider.GetRequiredService<PasskeyService>();
        var ceremony = (await passkeys.BeginRegistrationAsync(user.Id))!;
        var outcome = await passkeys.CompleteRegistrationAsync(user.Id, ceremony, key.Create(ceremony.OptionsJson), name);
        Assert.True(outcome.Succeeded, outcome.Reason);
        return key;
    }

    /// <summary>The WebAuthn options the page hands its script.</summary>
    internal static string Options(SignInBrowser browser)
    {
        var match = OptionsAttribute().Match(browser.Html);
        Assert.True(match.Success, "the page offers no passkey");
        return WebUtility.HtmlDecode(match.Groups[1].Value);
    }

    [GeneratedRegex("data-passkey-options=\"([^\"]*)\"")]
    private static partial Regex OptionsAttribute();
}
