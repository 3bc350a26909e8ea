using System.Net;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// The sign-in engine driven step by step with no HTTP (the services of a real host, but no page and no form): every
/// next-step decision and every refusal it returns, what it writes to the sign-in log, and the one-time code check the
/// hold screen shares with the pages.
/// </summary>
public sealed class SignInEngineTests
{
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.7");

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("alice\u202E@contoso.test")]
    public void Username_Implausible_IsShownAgainAsInvalid(string typed)
    {
        var result = Assert.IsType<SignInNext>(SignInEngine.Username(Transaction(Guid.NewGuid(), "vm1"), typed));

        Assert.Equal(SignInStep.Username, result.Transaction.Step);
        Assert.Equal(SignInInputProblem.Invalid, result.Problem);
        Assert.Equal("Enter a valid email address or user name.", result.Error);
    }

    [Fact]
    public void Username_AnyPlausibleName_GoesOnToThePassword_KnownOrNot()
    {
        var result = Assert.IsType<SignInNext>(SignInEngine.Username(Transaction(Guid.NewGuid(), "vm1"), "  nobody@contoso.test "));

        Assert.Equal(SignInStep.Password, result.Transaction.Step);
        Assert.Equal("nobody@contoso.test", result.Transaction.Username);
        Assert.Equal(SignInInputProblem.None, result.Problem);
    }

    [Fact]
    public async Task Password_WrongEmptyOrUnknown_IsShownAgain_AndTheLogSaysWhich()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var tx = await AtPasswordAsync(scenario);

        var empty = Assert.IsType<SignInNext>(await StepAsync(scenario, tx, new SignInInput { Password = string.Empty }));
        var wrong = Assert.IsType<SignInNext>(await StepAsync(scenario, tx, new SignInInput { Password = "Wrong-Password-1" }));
        var unknown = Assert.IsType<SignInNext>(await StepAsync(scenario, tx with { Username = "nobody@contoso.test" }, new SignInInput { Password = "Wrong-Password-1" }));

        Assert.Equal((SignInStep.Password, SignInInputProblem.Invalid, "Please enter your password."), (empty.Transaction.Step, empty.Problem, empty.Error));
        Assert.Equal((SignInStep.Password, SignInInputProblem.Invalid), (wrong.Transaction.Step, wrong.Problem));
        Assert.Equal(wrong.Error, unknown.Error);
        Assert.StartsWith("Your account or password is incorrect.", wrong.Error, StringComparison.Ordinal);
        var log = await scenario.SignInsAsync();
        Assert.Equal(["wrong_password", "unknown_user"], log.Select(r => r.Reason.Split(':')[0]));
        Assert.All(log, r => Assert.Equal("AADSTS50126", r.Code));
        Assert.All(log, r => Assert.Equal(tx.Id, r.CorrelationId));
        Assert.All(log, r => Assert.Equal(Client.ToString(), r.ClientAddress));
    }

    [Fact]
    public async Task Password_OverThePerAccountLimit_IsThrottled_WithoutCheckingIt()
    {
        await using var scenario = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "2" });
        var tx = await AtPasswordAsync(scenario);

        await StepAsync(scenario, tx, new SignInInput { Password = "Wrong-Password-1" });
        await StepAsync(scenario, tx, new SignInInput { Password = "Wrong-Password-1" });
        var third = Assert.IsType<SignInNext>(await StepAsync(scenario, tx, new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal(SignInInputProblem.Throttled, third.Problem);
        Assert.Equal(SignInStep.Password, third.Transaction.Step);
        Assert.StartsWith("throttled:", (await scenario.SignInsAsync())[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Password_Right_NoPolicyNoConsentYet_AsksForConsent_ThenAllowIssuesTheCode_AndTheNextSignInSkipsConsent()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var tx = await AtPasswordAsync(scenario);

        var consent = Assert.IsType<SignInNext>(await StepAsync(scenario, tx, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.Consent, consent.Transaction.Step);
        Assert.Equal(["pwd"], consent.Transaction.Amr);
        Assert.NotNull(consent.Transaction.UserId);

        var unclear = Assert.IsType<SignInNext>(await StepAsync(scenario, consent.Transaction, new SignInInput { Consent = "maybe" }));
        Assert.Equal((SignInStep.Consent, SignInInputProblem.Invalid, "Choose Yes or No."), (unclear.Transaction.Step, unclear.Problem, unclear.Error));

        var issued = Assert.IsType<SignInCodeIssued>(await StepAsync(scenario, consent.Transaction, new SignInInput { Consent = "allow" }));
        Assert.False(string.IsNullOrEmpty(issued.Code));
        var success = Assert.Single(await scenario.SignInsAsync());
        Assert.Equal("success", success.Result);
        Assert.Equal("vm1", success.HostName);
        Assert.Contains("consent given now", success.Reason, StringComparison.Ordinal);

        // The consent is remembered per host: the password alone completes the next sign-in.
        Assert.IsType<SignInCodeIssued>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));
    }

    [Fact]
    public async Task Consent_No_IsRefusedForbidden_AndLogged()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var consent = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, consent.Transaction, new SignInInput { Consent = "deny" }));

        Assert.Equal(AadError.ConsentDenied, refused.Error);
        Assert.True(refused.Forbidden);
        Assert.Equal(consent.Transaction.Id, refused.CorrelationId);
        Assert.StartsWith("consent_denied:", refused.Reason, StringComparison.Ordinal);
        Assert.Equal(refused.Reason, Assert.Single(await scenario.SignInsAsync()).Reason);
        Assert.Equal(0, await scenario.AuthorizationCodeCountAsync());
    }

    [Fact]
    public async Task TemporaryPassword_AsksForANewOne_WeakOrSameIsRefused_AGoodOneGoesOn()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await using (var scope = scenario.Server.App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<DirectoryService>().CreateUserAsync(scenario.TenantId, "carol@contoso.test", "Carol", IdpScenario.Password, temporary: true);
        }

        var change = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario, "carol@contoso.test"), new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.ChangePassword, change.Transaction.Step);

        var weak = Assert.IsType<SignInNext>(await StepAsync(scenario, change.Transaction, new SignInInput { NewPassword = "short" }));
        var same = Assert.IsType<SignInNext>(await StepAsync(scenario, change.Transaction, new SignInInput { NewPassword = IdpScenario.Password }));
        var good = Assert.IsType<SignInNext>(await StepAsync(scenario, change.Transaction, new SignInInput { NewPassword = "A-New-Long-Password-2" }));

        Assert.Equal((SignInStep.ChangePassword, SignInInputProblem.Invalid, AadError.WeakPassword.Describe()), (weak.Transaction.Step, weak.Problem, weak.Error));
        Assert.Equal((SignInStep.ChangePassword, SignInInputProblem.Invalid), (same.Transaction.Step, same.Problem));
        Assert.Equal(SignInStep.Consent, good.Transaction.Step);
    }

    [Fact]
    public async Task MfaPolicy_AsksForTheCode_WrongIsLogged_RightAddsMfa_AndTheSameCodeIsNotAcceptedTwice()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);
        await scenario.AddPolicyAsync(IdpScenario.Policy("MFA for vm1", "mfa"));

        var otp = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.Otp, otp.Transaction.Step);

        var wrong = Assert.IsType<SignInNext>(await StepAsync(scenario, otp.Transaction, new SignInInput { Code = WrongCode(secret) }));
        Assert.Equal((SignInStep.Otp, SignInInputProblem.Invalid, AadError.InvalidOtp.Describe()), (wrong.Transaction.Step, wrong.Problem, wrong.Error));
        var logged = Assert.Single(await scenario.SignInsAsync());
        Assert.StartsWith("wrong_one_time_code:", logged.Reason, StringComparison.Ordinal);
        Assert.Equal("AADSTS500121", logged.Code);

        var code = Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow));
        var consent = Assert.IsType<SignInNext>(await StepAsync(scenario, otp.Transaction, new SignInInput { Code = code }));
        Assert.Equal(SignInStep.Consent, consent.Transaction.Step);
        Assert.Equal(["pwd", "mfa", "otp"], consent.Transaction.Amr);

        // The code step the hold screen uses: the code just used is refused (replay), counted like the pages' codes.
        Assert.Equal(OneTimeCodeOutcome.Wrong, await CheckCodeAsync(scenario, IdpScenario.Alice, code));
    }

    [Fact]
    public async Task CheckOneTimeCode_SharesThePerAccountLimitWithThePasswordStep_AndWritesNoLogRow()
    {
        await using var scenario = await IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "2" });
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);

        await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = "Wrong-Password-1" });
        Assert.Equal(OneTimeCodeOutcome.Wrong, await CheckCodeAsync(scenario, IdpScenario.Alice, WrongCode(secret)));
        Assert.Equal(OneTimeCodeOutcome.Throttled, await CheckCodeAsync(scenario, IdpScenario.Alice, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));

        // Only the page's wrong password is in the log: the hold screen's session writes its own row.
        Assert.StartsWith("wrong_password", Assert.Single(await scenario.SignInsAsync()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckOneTimeCode_RightCode_IsAccepted()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var secret = await scenario.EnrollTotpAsync(IdpScenario.Alice);

        Assert.Equal(OneTimeCodeOutcome.Accepted, await CheckCodeAsync(scenario, IdpScenario.Alice, " " + Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow)) + " "));
    }

    [Fact]
    public async Task MfaPolicy_UserWithoutAnApp_SetsOneUp_AWrongFirstCodeStoresNothing_ARightOneAddsMfa()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await scenario.AddPolicyAsync(IdpScenario.Policy("MFA for vm1", "mfa"));

        var enroll = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.EnrollTotp, enroll.Transaction.Step);
        var secret = enroll.Transaction.TotpEnrollmentSecret!;

        var wrong = Assert.IsType<SignInNext>(await StepAsync(scenario, enroll.Transaction, new SignInInput { Code = WrongCode(secret) }));
        Assert.Equal((SignInStep.EnrollTotp, SignInInputProblem.Invalid), (wrong.Transaction.Step, wrong.Problem));
        Assert.StartsWith("wrong_enrollment_code:", Assert.Single(await scenario.SignInsAsync()).Reason, StringComparison.Ordinal);

        var consent = Assert.IsType<SignInNext>(await StepAsync(scenario, enroll.Transaction, new SignInInput { Code = Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow)) }));
        Assert.Equal(SignInStep.Consent, consent.Transaction.Step);
        Assert.Contains("mfa", consent.Transaction.Amr);
        Assert.Null(consent.Transaction.TotpEnrollmentSecret);
    }

    [Fact]
    public async Task Enrollment_PostedByATransactionThatSkippedThePassword_IsSessionExpired()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var tx = Transaction(scenario.TenantId, "vm1") with { Step = SignInStep.EnrollTotp, Username = IdpScenario.Alice, TotpEnrollmentSecret = new byte[20] };

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, tx, new SignInInput { Code = "123456" }));

        Assert.Equal(AadError.SessionExpired, refused.Error);
        Assert.Empty(await scenario.SignInsAsync());
    }

    [Fact]
    public async Task BlockPolicy_IsRefusedForbidden_WithThePoliciesInTheLog()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await scenario.AddPolicyAsync(IdpScenario.Policy("Block vm1", "block"));

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal(AadError.BlockedByConditionalAccess, refused.Error);
        Assert.True(refused.Forbidden);
        Assert.Contains("Block vm1", refused.PoliciesJson, StringComparison.Ordinal);
        var row = Assert.Single(await scenario.SignInsAsync());
        Assert.Equal("AADSTS53003", row.Code);
        Assert.Equal(refused.PoliciesJson, row.PoliciesJson);
    }

    [Fact]
    public async Task PolicyWantingAControlThePagesCannotDo_IsRefusedWithTheControlNamed()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await scenario.AddPolicyAsync(IdpScenario.Policy("Passkeys on vm1", "phishingResistantMfa"));

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal(53003, refused.Error.Code);
        Assert.Contains("which this sign-in page can't offer", refused.Error.Message, StringComparison.Ordinal);
        Assert.True(refused.Forbidden);
        Assert.Contains("Passkeys on vm1", refused.PoliciesJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Password_DisabledAccount_IsShownAgain_AndLogged()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await using (var scope = scenario.Server.App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Users.Where(u => u.UserPrincipalName == IdpScenario.Alice).ExecuteUpdateAsync(s => s.SetProperty(u => u.Enabled, false));
        }

        var again = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal((SignInStep.Password, SignInInputProblem.Invalid, AadError.AccountDisabled.Describe()), (again.Transaction.Step, again.Problem, again.Error));
        Assert.Equal("AADSTS50057", Assert.Single(await scenario.SignInsAsync()).Code);
    }

    [Fact]
    public async Task Password_AfterTheLockoutThreshold_IsLockedWithoutBeingChecked()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var tx = await AtPasswordAsync(scenario);
        for (var i = 0; i < SignInService.LockoutThreshold; i++)
        {
            await StepAsync(scenario, tx, new SignInInput { Password = $"Wrong-Password-{i}" });
        }

        var locked = Assert.IsType<SignInNext>(await StepAsync(scenario, tx, new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal((SignInInputProblem.Invalid, AadError.AccountLocked.Describe()), (locked.Problem, locked.Error));
        Assert.StartsWith("account_locked:", (await scenario.SignInsAsync())[^1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeviceCode_ExpiredBeforeTheLastAnswer_IsRefused_AndNothingIsApproved()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm1");
        var (deviceCode, record) = await IssueRdpDeviceCodeAsync(scenario, RdpScope.For("vm1"));
        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, record));
        var atPassword = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Alice)).Transaction;
        var question = Assert.IsType<SignInNext>(await StepAsync(scenario, atPassword, new SignInInput { Password = IdpScenario.Password }));
        await using (var scope = scenario.Server.App.Services.CreateAsyncScope())
        {
            var past = DateTimeOffset.UtcNow.AddMinutes(-1);
            await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().DeviceCodes.ExecuteUpdateAsync(s => s.SetProperty(d => d.ExpiresAt, past));
        }

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, question.Transaction, new SignInInput { Consent = "allow" }));

        Assert.Equal(AadError.DeviceCodeExpired, refused.Error);
        Assert.False(refused.Forbidden);
        Assert.Equal("Connect again and finish the sign-in within 15 minutes.", refused.Fix);
        Assert.DoesNotContain(await scenario.SignInsAsync(), r => r.Result == "success");
    }

    [Fact]
    public async Task CliDeviceCode_Cancel_DeniesIt_AndTheLogNamesTheCli()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var deviceCodes = services.ServiceProvider.GetRequiredService<DeviceCodeService>();
        var issued = (await deviceCodes.IssueAsync(new DeviceCodeRequest { TenantId = scenario.TenantId, ClientId = GatehouseCliClient.ClientId, Scope = "api://gatehouse-admin/admin", ClientAddress = "198.51.100.4" }))!;
        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, (await deviceCodes.FindPendingAsync(issued.UserCode))!));
        var atPassword = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Alice)).Transaction;
        var question = Assert.IsType<SignInNext>(await StepAsync(scenario, atPassword, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.Consent, question.Transaction.Step);

        var unclear = Assert.IsType<SignInNext>(await StepAsync(scenario, question.Transaction, new SignInInput { Consent = "yes" }));
        var denied = Assert.IsType<SignInDeviceDenied>(await StepAsync(scenario, question.Transaction, new SignInInput { Consent = "deny" }));

        Assert.Equal("Choose Continue or Cancel.", unclear.Error);
        Assert.Equal(IdpScenario.Alice, denied.UserPrincipalName);
        var row = Assert.Single(await scenario.SignInsAsync());
        Assert.Contains("'Are you trying to sign in to Gatehouse CLI?'", row.Reason, StringComparison.Ordinal);
        Assert.Equal(GatehouseCliClient.ClientId, row.Application);
        Assert.Equal(DevicePollStatus.Denied, (await deviceCodes.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);
    }

    [Fact]
    public async Task UserDisabledDuringTheSignIn_IsRefusedAtTheNextStep()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var consent = Assert.IsType<SignInNext>(await StepAsync(scenario, await AtPasswordAsync(scenario), new SignInInput { Password = IdpScenario.Password }));
        await using (var scope = scenario.Server.App.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().Users.Where(u => u.Id == consent.Transaction.UserId).ExecuteUpdateAsync(s => s.SetProperty(u => u.Enabled, false));
        }

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, consent.Transaction, new SignInInput { Consent = "allow" }));

        Assert.Equal(AadError.AccountDisabled, refused.Error);
        Assert.False(refused.Forbidden);
        Assert.StartsWith("user_disabled:", refused.Reason, StringComparison.Ordinal);
        Assert.Equal(0, await scenario.AuthorizationCodeCountAsync());
    }

    [Fact]
    public async Task RdpDeviceCode_ForAnUnknownHost_IsRefusedBeforeTheUserName_AndDenied()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (deviceCode, record) = await IssueRdpDeviceCodeAsync(scenario, RdpScope.For("vm9"));

        var refused = Assert.IsType<SignInRefused>(await BeginAsync(scenario, record));

        Assert.Equal(AadError.UnknownHost, refused.Error);
        Assert.StartsWith("unknown_host:", Assert.Single(await scenario.SignInsAsync()).Reason, StringComparison.Ordinal);
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        Assert.Equal(DevicePollStatus.Denied, (await scope.ServiceProvider.GetRequiredService<DeviceCodeService>().PollAsync(deviceCode, RdpClient.ClientId)).Status);
    }

    [Fact]
    public async Task RdpDeviceCode_UserWithoutARole_IsRefusedNoRole_WithTheReasonInTheLog()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var (_, record) = await IssueRdpDeviceCodeAsync(scenario, RdpScope.For("vm1"));
        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, record));
        Assert.Equal("vm1", begun.Transaction.HostName);
        var atPassword = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Alice)).Transaction;

        var refused = Assert.IsType<SignInRefused>(await StepAsync(scenario, atPassword, new SignInInput { Password = IdpScenario.Password }));

        Assert.Equal(AadError.NoRole, refused.Error);
        Assert.StartsWith("no_role_assignment: alice@contoso.test on vm1", refused.Reason, StringComparison.Ordinal);
        var row = Assert.Single(await scenario.SignInsAsync());
        Assert.Equal(refused.Reason, row.Reason);
        Assert.Equal(RdpClient.ClientId, row.Application);
        Assert.Equal("vm1", row.HostName);
    }

    [Fact]
    public async Task RdpDeviceCode_WithARole_AsksTheQuestionEveryTime_ThenApprovesTheCode()
    {
        await using var scenario = await IdpScenario.StartAsync();
        await GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm1");
        await using (var scope = scenario.Server.App.Services.CreateAsyncScope())
        {
            // A consent remembered for the host does not skip the device question (device-code phishing).
            var alice = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(IdpScenario.Alice))!;
            var vm1 = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindHostByLabelAsync(scenario.TenantId, "vm1"))!;
            await scope.ServiceProvider.GetRequiredService<ConsentService>().GrantAsync(alice.Id, vm1.Id, DateTimeOffset.UtcNow);
        }

        var (deviceCode, record) = await IssueRdpDeviceCodeAsync(scenario, RdpScope.For("vm1"));
        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, record));
        var atPassword = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Alice)).Transaction;
        var question = Assert.IsType<SignInNext>(await StepAsync(scenario, atPassword, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.Consent, question.Transaction.Step);
        Assert.Equal("vm1 (Remote Desktop)", SignInEngine.DeviceApplicationName(question.Transaction));

        var approved = Assert.IsType<SignInDeviceApproved>(await StepAsync(scenario, question.Transaction, new SignInInput { Consent = "allow" }));

        Assert.Equal(IdpScenario.Alice, approved.UserPrincipalName);
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var poll = await services.ServiceProvider.GetRequiredService<DeviceCodeService>().PollAsync(deviceCode, RdpClient.ClientId);
        Assert.Equal(DevicePollStatus.Approved, poll.Status);
        Assert.Equal("pwd", poll.Code!.Amr);
    }

    [Fact]
    public async Task RdpDeviceCode_AnyHost_KeepsNoHost_NeedsARoleOnSomeHost_AndEvaluatesTheRdpApplication()
    {
        await using var scenario = await IdpScenario.StartAsync();

        // A policy on the RDP application for all hosts applies to the any-host sign-in (with no host).
        await scenario.AddPolicyAsync("""
            { "displayName": "Block Remote Desktop", "state": "enabled",
              "conditions": { "users": { "includeUsers": ["bob@contoso.test"] }, "applications": { "includeApplications": ["372140e0-b3b7-4226-8ef9-d57986796201"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] } }
            """);
        var (_, record) = await IssueRdpDeviceCodeAsync(scenario, RdpScope.AnyHostScope);
        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, record));
        Assert.Equal(Guid.Empty, begun.Transaction.HostId);
        Assert.Equal("Remote Desktop", SignInEngine.DeviceApplicationName(begun.Transaction));

        // No role anywhere: refused.
        var alice = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Alice)).Transaction;
        var noRole = Assert.IsType<SignInRefused>(await StepAsync(scenario, alice, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(AadError.NoRole, noRole.Error);

        // A role on one host: on to the question; the RDP policy blocks bob, who has a role too.
        await GrantUserLoginAsync(scenario, IdpScenario.Alice, "/hosts/vm2");
        await GrantUserLoginAsync(scenario, IdpScenario.Bob, "/hosts/vm2");
        var question = Assert.IsType<SignInNext>(await StepAsync(scenario, alice, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(SignInStep.Consent, question.Transaction.Step);
        var bob = Assert.IsType<SignInNext>(SignInEngine.Username(begun.Transaction, IdpScenario.Bob)).Transaction;
        var blocked = Assert.IsType<SignInRefused>(await StepAsync(scenario, bob, new SignInInput { Password = IdpScenario.Password }));
        Assert.Equal(AadError.BlockedByConditionalAccess, blocked.Error);
        Assert.Null((await scenario.SignInsAsync())[^1].HostName);
    }

    [Fact]
    public async Task CliDeviceCode_StillNamesTheCli_AndIsNotAnRdpSignIn()
    {
        await using var scenario = await IdpScenario.StartAsync();
        var record = new DeviceCode
        {
            DeviceCodeHash = "hash",
            UserCodeHash = "user",
            TenantId = scenario.TenantId,
            ClientId = GatehouseCliClient.ClientId,
            Scope = "api://gatehouse-admin/admin",
            ClientAddress = Client.ToString(),
            Status = DeviceCodeService.Pending,
        };

        var begun = Assert.IsType<SignInNext>(await BeginAsync(scenario, record));

        Assert.False(begun.Transaction.IsRdpDevice);
        Assert.Equal(Guid.Empty, begun.Transaction.HostId);
        Assert.Equal("Gatehouse CLI", SignInEngine.DeviceApplicationName(begun.Transaction));
    }

    // ---- helpers

    /// <summary>A fresh authorize transaction for <paramref name="hostName"/> at the user name step (the page builds the same).</summary>
    private static SignInTransaction Transaction(Guid tenantId, string hostName, Guid? hostId = null) => new()
    {
        TenantSegment = "common",
        TenantId = tenantId,
        ClientId = RdpClient.ClientId,
        RedirectUri = RdpClient.BrokerRedirectUri,
        Scope = RdpScope.For(hostName),
        HostId = hostId ?? Guid.NewGuid(),
        HostName = hostName,
        Step = SignInStep.Username,
        BrowserBinding = "binding",
    };

    private static async Task<SignInTransaction> AtPasswordAsync(IdpScenario scenario, string user = IdpScenario.Alice)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        var vm1 = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindHostByLabelAsync(scenario.TenantId, "vm1"))!;
        return Assert.IsType<SignInNext>(SignInEngine.Username(Transaction(scenario.TenantId, "vm1", vm1.Id), user)).Transaction;
    }

    /// <summary>One step in its own scope, as each page post runs in its own request.</summary>
    private static async Task<SignInResult> StepAsync(IdpScenario scenario, SignInTransaction tx, SignInInput input)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<SignInEngine>().StepAsync(tx, input, Client);
    }

    private static async Task<SignInResult> BeginAsync(IdpScenario scenario, DeviceCode record)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<SignInEngine>().BeginDeviceAsync(record, "binding", Client);
    }

    private static async Task<OneTimeCodeOutcome> CheckCodeAsync(IdpScenario scenario, string upn, string code)
    {
        await using var scope = scenario.Server.App.Services.CreateAsyncScope();
        var user = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
        return await scope.ServiceProvider.GetRequiredService<SignInEngine>().CheckOneTimeCodeAsync(user, code, DateTimeOffset.UtcNow);
    }

    /// <summary>Issues a device code as the gateway does for the hold screen; returns it and its stored row.</summary>
    internal static async Task<(string DeviceCode, DeviceCode Record)> IssueRdpDeviceCodeAsync(IdpScenario scenario, string scope)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        var deviceCodes = services.ServiceProvider.GetRequiredService<DeviceCodeService>();
        var issued = (await deviceCodes.IssueAsync(new DeviceCodeRequest { TenantId = scenario.TenantId, ClientId = RdpClient.ClientId, Scope = scope, ClientAddress = "198.51.100.4" }))!;
        return (issued.DeviceCode, (await deviceCodes.FindPendingAsync(issued.UserCode))!);
    }

    internal static async Task GrantUserLoginAsync(IdpScenario scenario, string upn, string scope)
    {
        await using var services = scenario.Server.App.Services.CreateAsyncScope();
        await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(scenario.TenantId, "Virtual Machine User Login", upn, scope);
    }

    /// <summary>A code that is none of the authenticator app's codes around now.</summary>
    internal static string WrongCode(byte[] secret)
    {
        var step = Totp.StepAt(DateTimeOffset.UtcNow);
        var near = Enumerable.Range(-3, 8).Select(d => Totp.Compute(secret, step + d)).ToHashSet(StringComparer.Ordinal);
        return Enumerable.Range(0, 1_000_000).Select(n => n.ToString("D6", System.Globalization.CultureInfo.InvariantCulture)).First(c => !near.Contains(c));
    }
}
