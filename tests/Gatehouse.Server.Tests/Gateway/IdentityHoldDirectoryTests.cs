using Gatehouse.Gateway.Hold;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Gatehouse.Server.Tests.Idp;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// The hold screen's one-time code, as the running server registers it (<see cref="IHoldDirectory"/>): checked by the
/// sign-in engine's code step, so a code is accepted once and every check counts against the per-account limit the
/// pages' passwords and codes use; the engine writes no sign-in log row for it (the held session writes its own).
/// </summary>
public sealed class IdentityHoldDirectoryTests
{
    [Fact]
    public async Task RightCode_IsOk_Once_AndNothingIsLogged()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);
        var hold = scenario.Server.App.Services.GetRequiredService<IHoldDirectory>();
        var alice = await UserIdAsync(scenario, IdpScenario.Alice);
        var code = Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow));

        Assert.Equal(OneTimeCodeCheck.Ok, await hold.CheckOneTimeCodeAsync(alice, code, CancellationToken.None));
        Assert.Equal(OneTimeCodeCheck.Wrong, await hold.CheckOneTimeCodeAsync(alice, code, CancellationToken.None));
        Assert.Equal(OneTimeCodeCheck.Wrong, await hold.CheckOneTimeCodeAsync(alice, SignInEngineTests.WrongCode(secret), CancellationToken.None));
        Assert.Empty(await scenario.SignInsAsync());
    }

    [Fact]
    public async Task Codes_ShareThePerAccountLimit_WithThePagesPasswords()
    {
        await using var scenario = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "2" });
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);
        var hold = scenario.Server.App.Services.GetRequiredService<IHoldDirectory>();
        var alice = await UserIdAsync(scenario, IdpScenario.Alice);

        // One wrong password on the page and one wrong code on the hold screen use the allowance of two.
        using var browser = new SignInBrowser(scenario.Server);
        await IdpScenario.SignInAsync(browser, password: "Wrong-Password-1");
        Assert.Equal(OneTimeCodeCheck.Wrong, await hold.CheckOneTimeCodeAsync(alice, SignInEngineTests.WrongCode(secret), CancellationToken.None));

        Assert.Equal(OneTimeCodeCheck.Throttled, await hold.CheckOneTimeCodeAsync(alice, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow)), CancellationToken.None));
    }

    [Fact]
    public async Task UserWithoutAnApp_HasNoMethod()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var hold = scenario.Server.App.Services.GetRequiredService<IHoldDirectory>();

        Assert.Equal(OneTimeCodeCheck.NoMethod, await hold.CheckOneTimeCodeAsync(await UserIdAsync(scenario, IdpScenario.Bob), "123456", CancellationToken.None));
    }

    private static async Task<Guid> UserIdAsync(IdpScenario scenario, string upn)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        return (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!.Id;
    }
}
