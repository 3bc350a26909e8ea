using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>Every attempt on the sign-in pages that ends or fails a step is a row of the hash-chained sign-in log (protocol browser).</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class IdpSignInLogTests
{
    [Fact]
    public async Task WrongPassword_UnknownUser_AndSuccess_AreLogged_WithTheReasonThatTellsThemApart()
    {
        await using var s = await IdpScenario.StartAsync();
        using var alice = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(alice, password: "Wrong-Password-1");
        await alice.SubmitAsync(("password", IdpScenario.Password));
        await alice.SubmitAsync(("consent", "allow"));
        Assert.NotNull(IdpScenario.CodeFromCopyPage(alice.Html));
        using var stranger = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(stranger, "nobody@contoso.test", "Whatever-Password-2");

        var rows = await s.SignInsAsync();
        Assert.Equal(3, rows.Count);
        var (wrong, success, unknown) = (rows[0], rows[1], rows[2]);
        Assert.All(rows, r => Assert.Equal("browser", r.Protocol));
        Assert.All(rows, r => Assert.Equal(s.TenantId, r.TenantId));
        Assert.All(rows, r => Assert.Equal("vm1", r.HostName));
        Assert.All(rows, r => Assert.Equal(IdpScenario.RdpClient, r.Application));
        Assert.All(rows, r => Assert.Equal("127.0.0.1", r.ClientAddress));

        Assert.Equal(("failure", "AADSTS50126", IdpScenario.Alice), (wrong.Result, wrong.Code, wrong.UserPrincipalName));
        Assert.StartsWith("wrong_password:", wrong.Reason, StringComparison.Ordinal);
        Assert.Equal(("failure", "AADSTS50126", "nobody@contoso.test"), (unknown.Result, unknown.Code, unknown.UserPrincipalName));
        Assert.StartsWith("unknown_user:", unknown.Reason, StringComparison.Ordinal);
        Assert.Null(unknown.UserId);

        // The user is told the same thing both times; only the log says which.
        Assert.Equal(wrong.UserMessage, unknown.UserMessage);
        Assert.Contains("AADSTS50126", wrong.UserMessage, StringComparison.Ordinal);

        Assert.Equal(("success", "pwd"), (success.Result, success.Methods));
        Assert.Null(success.Code);
        Assert.StartsWith("signed_in:", success.Reason, StringComparison.Ordinal);
        Assert.NotNull(success.UserId);
        Assert.NotNull(success.PoliciesJson);

        // One sign-in, one correlation id across its steps; another browser, another id.
        Assert.Equal(wrong.CorrelationId, success.CorrelationId);
        Assert.NotEqual(wrong.CorrelationId, unknown.CorrelationId);

        Assert.True((await s.VerifyLogAsync()).Intact);
        AssertNoSecrets(rows, IdpScenario.Password, "Wrong-Password-1", "Whatever-Password-2");
    }

    [Fact]
    public async Task Lockout_IsLoggedAsAadsts50053()
    {
        await using var s = await IdpScenario.StartAsync();
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser, password: "wrong-0");
        for (var i = 1; i < SignInService.LockoutThreshold; i++)
        {
            await browser.SubmitAsync(("password", $"wrong-{i}"));
        }

        await browser.SubmitAsync(("password", IdpScenario.Password));
        Assert.Contains("AADSTS50053", browser.Error, StringComparison.Ordinal);

        var rows = await s.SignInsAsync();
        Assert.Equal(SignInService.LockoutThreshold + 1, rows.Count);
        Assert.All(rows, r => Assert.Equal(("failure", IdpScenario.Alice), (r.Result, r.UserPrincipalName)));
        Assert.Equal(SignInService.LockoutThreshold - 1, rows.Count(r => r.Code == "AADSTS50126"));
        var locked = rows.Where(r => r.Code == "AADSTS50053").ToList();
        Assert.Equal(2, locked.Count); // The tenth wrong password locks; the right one after it is refused unchecked.
        Assert.All(locked, r => Assert.StartsWith("account_locked:", r.Reason, StringComparison.Ordinal));
        Assert.True((await s.VerifyLogAsync()).Intact);
        AssertNoSecrets(rows, IdpScenario.Password, "wrong-1");
    }

    [Fact]
    public async Task BlockedByPolicy_IsLoggedAsAadsts53003_WithEveryPolicysOutcome()
    {
        await using var s = await IdpScenario.StartAsync();
        await s.AddPolicyAsync(IdpScenario.Policy("Block vm1", "block"));
        await s.AddPolicyAsync(IdpScenario.Policy("Require MFA on vm2", "mfa", host: "vm2"));
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);

        var row = Assert.Single(await s.SignInsAsync());
        Assert.Equal(("failure", "AADSTS53003", IdpScenario.Alice, "browser", "pwd"), (row.Result, row.Code, row.UserPrincipalName, row.Protocol, row.Methods));
        Assert.StartsWith("policy_blocked:", row.Reason, StringComparison.Ordinal);
        Assert.Contains("Block vm1", row.Reason, StringComparison.Ordinal);
        Assert.NotNull(row.Fix);
        Assert.Contains("\"policy\":\"Block vm1\",\"result\":\"failure\"", row.PoliciesJson, StringComparison.Ordinal);
        Assert.Contains("\"policy\":\"Require MFA on vm2\",\"result\":\"notApplied\"", row.PoliciesJson, StringComparison.Ordinal);
        Assert.Contains(row.CorrelationId, browser.Html, StringComparison.Ordinal); // The page shows the id the log has.
        Assert.True((await s.VerifyLogAsync()).Intact);
    }

    [Fact]
    public async Task WrongOneTimeCode_DisabledAccount_AndConsentDenied_AreLogged()
    {
        await using var s = await IdpScenario.StartAsync();
        var secret = await s.EnrollTotpAsync(IdpScenario.Alice);
        using var alice = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(alice);
        var wrong = Enumerable.Range(0, 10).Select(i => new string((char)('0' + i), 6))
            .First(c => !Enumerable.Range(-2, 5).Any(d => Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + d) == c));
        await alice.SubmitAsync(("otp", wrong));
        await alice.SubmitAsync(("otp", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        await alice.SubmitAsync(("consent", "deny"));

        await using (var scope = s.Server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            await directory.DisableAsync((await directory.FindUserByUpnAsync(IdpScenario.Bob))!);
        }

        using var bob = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(bob, IdpScenario.Bob);

        var rows = await s.SignInsAsync();
        Assert.Equal(3, rows.Count);
        Assert.Equal(("AADSTS500121", "pwd"), (rows[0].Code, rows[0].Methods));
        Assert.StartsWith("wrong_one_time_code:", rows[0].Reason, StringComparison.Ordinal);
        Assert.Equal(("AADSTS65004", "pwd mfa otp"), (rows[1].Code, rows[1].Methods));
        Assert.StartsWith("consent_denied:", rows[1].Reason, StringComparison.Ordinal);
        Assert.Equal(rows[0].CorrelationId, rows[1].CorrelationId);
        Assert.Equal(("AADSTS50057", IdpScenario.Bob), (rows[2].Code, rows[2].UserPrincipalName));
        Assert.StartsWith("user_disabled:", rows[2].Reason, StringComparison.Ordinal);
        Assert.All(rows, r => Assert.Equal("failure", r.Result));
        Assert.True((await s.VerifyLogAsync()).Intact);
        AssertNoSecrets(rows, IdpScenario.Password, wrong);
    }

    /// <summary>No column of any row holds a password or code that was typed.</summary>
    private static void AssertNoSecrets(List<SignInRecord> rows, params string[] secrets)
    {
        var texts = rows.SelectMany(r => new[] { r.CorrelationId, r.UserPrincipalName, r.Application, r.HostName, r.ClientAddress, r.Methods, r.Code, r.UserMessage, r.Reason, r.Fix, r.PoliciesJson });
        foreach (var text in texts.Where(t => t is not null))
        {
            foreach (var secret in secrets)
            {
                Assert.DoesNotContain(secret, text!, StringComparison.Ordinal);
            }
        }
    }
}
