using System.Collections.Concurrent;
using System.Net;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Gateway.Tests.Nla;

/// <summary>NLA (CredSSP server) through the real connection handler on loopback, driven by a C# CredSSP client.</summary>
public sealed class NlaSignInTests
{
    [Theory]
    [InlineData(6, true, "", "alice@contoso.test")]
    [InlineData(5, false, "", "alice@contoso.test")]
    [InlineData(4, true, "AzureAD", "alice@contoso.test")]
    [InlineData(3, false, ".", "AzureAD\\alice@contoso.test")]
    [InlineData(2, true, "EntraID", "alice@contoso.test")]
    [InlineData(6, false, ".", "EntraID\\alice@contoso.test")]
    public async Task RightPassword_EveryVersionAndNameForm_OpensTheSession(int version, bool spnego, string domain, string user)
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var directory = new FakeNlaDirectory { Grant = Grant(host.Port) };
        await using var gateway = await StartAsync(directory);
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Version = version, Spnego = spnego, Domain = domain, User = user });
        using (tcp)
        await using (tls)
        {
            Assert.Null(outcome.ErrorCode);
            Assert.True(outcome.ServerBindingOk, "the server's pubKeyAuth is bound to its TLS key");
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
            var session = Assert.Single(gateway.Sessions.List());
            Assert.Equal("vmuser", session.Grant.Credentials.UserName);
            var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
            Assert.True(entry.Succeeded, entry.Reason);
            Assert.Equal("nla", entry.Protocol);
            Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
            Assert.Equal(["pwd"], entry.Methods);
            Assert.Equal(session.Id, entry.SessionId);
            Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);
            Assert.Equal("vm1", directory.AuthorizedHostLabel);
        }
    }

    [Fact]
    public async Task Hybrid_WithoutEx_Succeeds_WithNoEarlyResult()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Requested = SecurityProtocol.Hybrid | SecurityProtocol.Ssl, Decided = gateway.SignInLog.Next() });
        using (tcp)
        await using (tls)
        {
            Assert.Null(outcome.ErrorCode);
            Assert.Null(outcome.EarlyResult);
            Assert.True(Assert.Single(await gateway.SignInLog.WaitForAsync(1)).Succeeded);
        }
    }

    [Fact]
    public async Task WrongPassword_GetsLogonFailure_IsCountedAndLogged()
    {
        var directory = new FakeNlaDirectory();
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { Password = "wrong" }, NtStatus.LogonFailure);
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(1, directory.WrongProofs);
        Assert.Empty(directory.PasswordChecks);
    }

    [Fact]
    public async Task WrongPassword_ThatLocksTheAccount_GetsLockedOut()
    {
        var directory = new FakeNlaDirectory { LockOnWrongProof = true };
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { Password = "wrong" }, NtStatus.AccountLockedOut);
        Assert.StartsWith("locked_out:", entry.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CONTOSO", "alice")]
    [InlineData("", "alice")]
    [InlineData(".", "alice")]
    [InlineData("WORKGROUP", "alice@contoso.test")]
    public async Task DomainBackslashUser_IsRefused_WithTheEntraJoinedSentence(string domain, string user)
    {
        var directory = new FakeNlaDirectory();
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { Domain = domain, User = user }, NtStatus.LogonFailure);
        Assert.StartsWith("not_a_work_account:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains(NlaUserName.EntraJoinedMessage, entry.Reason, StringComparison.Ordinal);
        Assert.Equal(NlaUserName.EntraJoinedMessage, entry.UserMessage);
        Assert.Equal(0, directory.Lookups);
    }

    [Fact]
    public async Task UnknownUser_GetsLogonFailure()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { User = "mallory@contoso.test" }, NtStatus.LogonFailure);
        Assert.StartsWith("unknown_user:", entry.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NlaAccountCheck.MustChangePassword, NtStatus.PasswordMustChange, "password_change_required:")]
    [InlineData(NlaAccountCheck.Disabled, NtStatus.AccountDisabled, "user_disabled:")]
    [InlineData(NlaAccountCheck.LockedOut, NtStatus.AccountLockedOut, "locked_out:")]
    public async Task AccountState_IsAnsweredAfterTheProof_WithItsStatus(NlaAccountCheck state, uint status, string reason)
    {
        var directory = new FakeNlaDirectory { State = state };
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions(), status);
        Assert.StartsWith(reason, entry.Reason, StringComparison.Ordinal);
        Assert.Empty(directory.PasswordChecks);
    }

    [Fact]
    public async Task NoRole_OnHybridEx_GetsAccessDeniedEarlyResult_AndTheLogSaysWhy()
    {
        var directory = new FakeNlaDirectory { Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "no_role: no assignment") };
        await using var gateway = await StartAsync(directory);
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (tcp)
        await using (tls)
        {
            Assert.Equal(NtStatus.AuthzAccessDenied, outcome.EarlyResult);
            var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
            Assert.False(entry.Succeeded);
            Assert.Equal("0xC0000022", entry.Code);
            Assert.Equal("authorization: no_role: no assignment", entry.Reason);
            Assert.Equal(0, gateway.Sessions.Count);
        }
    }

    [Fact]
    public async Task MfaPolicy_OnHybrid_GetsAccessDeniedErrorCode_WithThePolicySentence()
    {
        const string message = "The sign-in method you're trying to use isn't allowed. Try a different sign-in method or contact your system administrator.";
        var directory = new FakeNlaDirectory { Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "policy_control_missing: mfa", message) };
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { Requested = SecurityProtocol.Hybrid }, NtStatus.AccessDenied);
        Assert.Equal(message, entry.UserMessage);
    }

    [Fact]
    public async Task CredentialsOfAnotherUser_AfterAliceProvedHerPassword_AreRefused()
    {
        var directory = new FakeNlaDirectory();
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, new CredSspClientOptions { Requested = SecurityProtocol.Hybrid, Credentials = new TsCredentials("", "bob@contoso.test", "Correct-Horse-1") }, NtStatus.LogonFailure);
        Assert.StartsWith("credentials_mismatch:", entry.Reason, StringComparison.Ordinal);
    }

    private static readonly Dictionary<string, (Func<CredSspClientOptions, CredSspClientOptions> Tamper, uint Expected)> MalformedCases = BuildMalformed();

    public static TheoryData<string> Malformed() => [.. MalformedCases.Keys];

    private static Dictionary<string, (Func<CredSspClientOptions, CredSspClientOptions> Tamper, uint Expected)> BuildMalformed()
    {
        var data = new Dictionary<string, (Func<CredSspClientOptions, CredSspClientOptions> Tamper, uint Expected)>();
        void First(string name, string hex) => data.Add(name, (o => o with { TamperNegotiate = _ => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal)) }, NtStatus.InvalidToken));
        First("not a sequence", "31 03 a0 01 06");
        First("version 0", "30 05 a0 03 02 01 00");
        First("no negoTokens", "30 05 a0 03 02 01 06");
        First("unknown field", "30 0a a0 03 02 01 06 a6 03 02 01 00");
        First("empty negoToken", "30 0d a0 03 02 01 06 a1 06 30 04 30 02 a0 00");
        First("garbage token", "30 11 a0 03 02 01 06 a1 0a 30 08 30 06 a0 04 04 02 01 02");
        First("NTLMSSP truncated", "30 17 a0 03 02 01 06 a1 10 30 0e 30 0c a0 0a 04 08 4e544c4d53535000");
        First("NTLM type 3 first", "30 1b a0 03 02 01 06 a1 14 30 12 30 10 a0 0e 04 0c 4e544c4d5353500003000000");
        First("SPNEGO NegTokenResp first", "30 13 a0 03 02 01 06 a1 0c 30 0a 30 08 a0 06 04 04 a1 02 30 00");
        First("SPNEGO Kerberos only", "30 2a a0 03 02 01 06 a1 23 30 21 30 1f a0 1d 04 1b 60 19 06 06 2b 06 01 05 05 02 a0 0f 30 0d a0 0b 30 09 06 07 2a 86 48 86 f7 12 01");
        First("indefinite length", "30 80 a0 03 02 01 06 00 00");
        First("length over the cap", "30 83 7f ff ff");
        First("nonce of 31 bytes", "3028a003020106a521041f00000000000000000000000000000000000000000000000000000000000000");
        First("errorCode from the client", "30 0a a0 03 02 01 06 a4 03 02 01 05");
        data.Add("NEGOTIATE without sealing", (o => o with { TamperNegotiate = b => ClearNegotiateFlag(b, NtlmNegotiateFlags.Seal) }, NtStatus.UnsupportedFunction));
        data.Add("NEGOTIATE without extended session security", (o => o with { TamperNegotiate = b => ClearNegotiateFlag(b, NtlmNegotiateFlags.ExtendedSessionSecurity) }, NtStatus.UnsupportedFunction));
        data.Add("third: version changed", (o => o with { TamperThird = b => Patch(b, 6, 5) }, NtStatus.InvalidToken));
        data.Add("third: raw NTLM after SPNEGO", (o => o with { TamperThird = _ => new TsRequest(6, [NtlmStub(3)], pubKeyAuth: new byte[32]).Encode() }, NtStatus.InvalidToken));
        data.Add("third: two negoTokens", (o => o with { TamperThird = _ => new TsRequest(6, [NtlmStub(3), NtlmStub(3)], pubKeyAuth: new byte[32]).Encode() }, NtStatus.InvalidToken));
        data.Add("third: garbage DER", (o => o with { TamperThird = _ => [0x30, 0x03, 0x02, 0x01, 0x06] }, NtStatus.InvalidToken));
        data.Add("third: not DER at all", (o => o with { TamperThird = _ => [0x04, 0x00] }, NtStatus.InvalidToken));
        data.Add("authenticate: truncated to the header", (o => o with { TamperAuthenticate = b => b[..40] }, NtStatus.InvalidToken));
        data.Add("authenticate: bad signature", (o => o with { TamperAuthenticate = b => Patch(b, 0, (byte)'X') }, NtStatus.InvalidToken));
        data.Add("authenticate: type 1", (o => o with { TamperAuthenticate = b => Patch(b, 8, 1) }, NtStatus.InvalidToken));
        data.Add("authenticate: NT response offset past the end", (o => o with { TamperAuthenticate = b => Patch(b, 24, 0xFF, 0xFF) }, NtStatus.InvalidToken));
        data.Add("authenticate: MIC flipped", (o => o with { TamperAuthenticate = b => Patch(b, NtlmAuthenticateMessage.MicOffset, (byte)(b[NtlmAuthenticateMessage.MicOffset] ^ 1)) }, NtStatus.MessageAltered));
        data.Add("authenticate: NTProofStr flipped", (o => o with { TamperAuthenticate = b => FlipNtProof(b) }, NtStatus.LogonFailure));
        data.Add("pubKeyAuth bound to another key", (o => o with { TamperBinding = b => Patch(b, 0, (byte)(b[0] ^ 0xFF)) }, NtStatus.MessageAltered));
        data.Add("pubKeyAuth empty", (o => o with { TamperBinding = _ => [] }, NtStatus.MessageAltered));
        data.Add("third: nonce changed", (o => o with { TamperThird = b => ChangeNonce(b) }, NtStatus.InvalidToken));
        data.Add("third: no pubKeyAuth", (o => o with { TamperThird = b => DropPubKeyAuth(b) }, NtStatus.InvalidToken));
        return data;
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task MalformedInput_IsRefusedWithTheTypedError_AndAnotherConnectionStillSignsIn(string name)
    {
        var (tamper, expected) = MalformedCases[name];
        var directory = new FakeNlaDirectory();
        await using var gateway = await StartAsync(directory);
        var entry = await RefusedAsync(gateway, tamper(new CredSspClientOptions()), expected);
        Assert.False(string.IsNullOrWhiteSpace(entry.Reason), name);
        Assert.Equal(0, gateway.Sessions.Count);

        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (tcp)
        await using (tls)
        {
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
        }
    }

    [Fact]
    public async Task SilentClient_IsClosedAtTheCredSspDeadline_AndLogged()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());
        var run = CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { TamperNegotiate = _ => [0x30] });

        // The gateway waits for the rest of the first TSRequest until its clock passes the CredSSP deadline.
        await gateway.Time.AdvanceWhenArmedAsync(CredSspTimeout);
        var (outcome, tls, tcp) = await run;
        using (tcp)
        await using (tls)
        {
            Assert.Null(outcome.ErrorCode);
            var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
            Assert.StartsWith("credssp_timeout:", entry.Reason, StringComparison.Ordinal);
            Assert.Contains("within 20 s", entry.Reason, StringComparison.Ordinal);
        }
    }

    // Every connection that reaches a decision leaves exactly one sign-in log entry, written before the client is
    // answered, whatever the client does next; a client that named a user and leaves before the decision leaves one too.
    // The holds stand for a directory at work (hashing, the store) when the client leaves: the gateway must have seen
    // the client go (its ConnectionClosed fired) before the directory answers.

    [Fact]
    public async Task RightPassword_ClientLeavesAsSoonAsItSentItsCredentials_LeavesOneSuccessEntry_AndNoSession()
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var hold = new Gate();
        var directory = new FakeNlaDirectory { Grant = Grant(host.Port), HoldPasswordCheck = hold };
        await using var gateway = await StartAsync(directory);

        // impacket's rdp_check.py: the server's pubKeyAuth proves the password ("Access Granted"), then it sends its
        // credentials and closes at once.
        // (It closes: a reset could throw away its last bytes before the gateway reads them.)
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Leave = CredSspLeave.AfterCredentials });
        Assert.True(outcome.ServerBindingOk);
        await tls.DisposeAsync();
        tcp.Dispose();
        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);
        Assert.NotNull(entry.SessionId);
        Assert.Equal(0, gateway.SignInLog.Lost);

        // The session opened for it is closed again with its end record, and its host leg with it.
        Assert.Equal(2, gateway.Journal.Events.Count);
        Assert.Equal($"start {entry.SessionId} alice@contoso.test vm1", gateway.Journal.Events[0]);
        Assert.StartsWith($"end {entry.SessionId} client_closed", gateway.Journal.Events[1], StringComparison.Ordinal);
        Assert.True(await host.ClosedAsync());
    }

    [Fact]
    public async Task WrongPassword_ClientLeavesAsSoonAsItSentAuthenticate_IsCountedAndLogged()
    {
        var hold = new Gate();
        var directory = new FakeNlaDirectory { HoldWrongProof = hold };
        await using var gateway = await StartAsync(directory);
        var (_, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Password = "wrong", Leave = CredSspLeave.AfterAuthenticate });
        await tls.DisposeAsync();
        tcp.Dispose();
        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.False(entry.Succeeded);
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("0xC000006D", entry.Code);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(1, directory.WrongProofs);
    }

    [Fact]
    public async Task ClientLeavesWhileItsAccountIsChecked_AfterNamingItself_LeavesAClientDisconnectedEntry()
    {
        var hold = new Gate();
        await using var gateway = await StartAsync(new FakeNlaDirectory { HoldState = hold });
        var run = CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Leave = CredSspLeave.AfterAuthenticate });
        var (_, tls, tcp) = await run;
        await tls.DisposeAsync();
        tcp.Dispose();
        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.False(entry.Succeeded);
        Assert.StartsWith("client_disconnected:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal("nla", entry.Protocol);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClientLeavesBeforeItsCredentials_AfterNamingItself_LeavesAClientDisconnectedEntry(bool abort)
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Leave = CredSspLeave.BeforeCredentials, Abort = abort });
        Assert.True(outcome.ServerBindingOk);
        await tls.DisposeAsync();
        tcp.Dispose();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith("client_disconnected:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(["pwd"], entry.Methods);
    }

    [Fact]
    public async Task ClientLeavesBeforeNamingAnyone_LeavesNoEntry()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());
        var (_, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { TamperNegotiate = b => b[..^3], HalfCloseAfterPartialFrame = true });
        await tls.DisposeAsync();
        tcp.Dispose();
        await gateway.WaitIdleAsync();
        await gateway.WaitClosedAsync(1);
        Assert.Empty(gateway.SignInLog.Entries);
    }

    [Fact]
    public async Task Refusal_IsLoggedBeforeTheClientHearsIt_AndTheEntryStaysWhenTheClientLeavesMeanwhile()
    {
        var directory = new FakeNlaDirectory { Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "no_role: no assignment") };
        await using var gateway = await StartAsync(directory);
        var hold = new Gate();
        gateway.SignInLog.Hold = hold;
        System.Net.Sockets.TcpClient? connection = null;
        var run = CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { Connected = c => connection = c, Abort = true });

        // The gateway is writing the entry: the client has not had its answer (the Early User Authorization Result).
        await hold.Entered.WaitAsync(Until.Backstop);
        Assert.False(run.IsCompleted, "the client heard the refusal before it was logged");

        // It leaves now; the entry is still written, and only then would the answer go out.
        connection!.Dispose();
        await gateway.WaitClosedAsync(1);
        hold.Open();
        await Assert.ThrowsAnyAsync<Exception>(() => run);
        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.Equal("authorization: no_role: no assignment", entry.Reason);
        Assert.Equal("0xC0000022", entry.Code);
        Assert.Equal(0, gateway.SignInLog.Lost);
    }

    [Fact]
    public async Task DirectoryThatDoesNotAnswer_IsRefusedAtTheDecisionDeadline_AndLogged()
    {
        var hold = new Gate();
        await using var gateway = await StartAsync(new FakeNlaDirectory { HoldPasswordCheck = hold });
        var run = CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        await hold.Entered.WaitAsync(Until.Backstop);
        gateway.Time.Advance(new GatewayOptions().SignInDecisionTimeout);

        var (outcome, tls, tcp) = await run;
        using (tcp)
        await using (tls)
        {
            Assert.Equal(NtStatus.AuthzAccessDenied, outcome.EarlyResult);
            var entry = Assert.Single(gateway.SignInLog.Entries);
            Assert.False(entry.Succeeded);
            Assert.StartsWith("decision_timeout: the sign-in decision took longer than 60 s", entry.Reason, StringComparison.Ordinal);
            Assert.Equal("0xC000005E", entry.Code);
            Assert.Equal(0, gateway.Sessions.Count);
        }
    }

    [Fact]
    public async Task RacingClients_EveryConnectionThatNamedAUserLeavesExactlyOneEntry_50Times()
    {
        const int Iterations = 50;
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.StartForMany();
        var directory = new FakeNlaDirectory { Grant = Grant(host.Port) };
        await using var gateway = await StartAsync(directory);
        CredSspClientOptions[] clients =
        [
            new() { Leave = CredSspLeave.AfterCredentials },
            new() { Password = "wrong", Leave = CredSspLeave.AfterAuthenticate },
            new() { Leave = CredSspLeave.BeforeCredentials, Abort = true },
            new() { Requested = SecurityProtocol.Hybrid, Leave = CredSspLeave.AfterCredentials },
            new() { Requested = SecurityProtocol.Hybrid, Leave = CredSspLeave.BeforeCredentials },
        ];
        for (var i = 0; i < Iterations; i++)
        {
            foreach (var options in clients)
            {
                var (_, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, options);
                await tls.DisposeAsync();
                tcp.Dispose();
            }

            await gateway.WaitIdleAsync();
            var entries = gateway.SignInLog.Entries;
            Assert.True(entries.Count == (i + 1) * clients.Length, $"iteration {i}: {entries.Count} entries for {(i + 1) * clients.Length} connections: {string.Join(" | ", entries.Skip(i * clients.Length).Select(e => e.Reason))}");
        }

        var all = gateway.SignInLog.Entries;
        Assert.Equal(all.Count, all.Select(e => e.ConnectionId).Distinct().Count());
        Assert.Equal(2 * Iterations, all.Count(e => e.Succeeded));
        Assert.Equal(Iterations, all.Count(e => e.Reason.StartsWith("bad_password:", StringComparison.Ordinal)));
        Assert.Equal(2 * Iterations, all.Count(e => e.Reason.StartsWith("client_disconnected:", StringComparison.Ordinal)));
        Assert.Equal(0, gateway.SignInLog.Lost);
        Assert.Equal(Iterations, directory.WrongProofs);
    }

    // The gateway's own CredSSP client (the target leg's NLA logon, BackendConnector) against its CredSSP server.

    [Fact]
    public async Task BackendConnector_NlaTarget_LogsOnToTheGatewaysCredSspServer_AndConsumesTheEarlyResult()
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var directory = new FakeNlaDirectory { Grant = Grant(host.Port) };
        await using var gateway = await StartAsync(directory);

        var result = await BackendConnector.ConnectAsync(NlaTarget(gateway.Port), new InjectedCredentials(string.Empty, "alice@contoso.test", "Correct-Horse-1"), TimeSpan.FromSeconds(10), CancellationToken.None);

        await using var connection = result.Connection;
        Assert.True(result.Connected, result.Reason);
        Assert.Equal(SecurityProtocol.HybridEx, connection!.Selected);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);
        Assert.Equal(1, gateway.Sessions.Count);
    }

    [Fact]
    public async Task BackendConnector_NlaTarget_WrongStoredPassword_IsALogonFailure()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory());

        var result = await BackendConnector.ConnectAsync(NlaTarget(gateway.Port), new InjectedCredentials(string.Empty, "alice@contoso.test", "stale-password"), TimeSpan.FromSeconds(10), CancellationToken.None);

        Assert.False(result.Connected);
        Assert.Equal(BackendFailure.Logon, result.Failure);
        Assert.StartsWith("backend_logon_failed:", result.Reason, StringComparison.Ordinal);
        Assert.Contains("STATUS_LOGON_FAILURE", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("stale-password", result.Reason, StringComparison.Ordinal);
        Assert.StartsWith("bad_password:", Assert.Single(await gateway.SignInLog.WaitForAsync(1)).Reason, StringComparison.Ordinal);
        Assert.Contains("gatehouse host test vm1", BackendAdvice.Fix(result.Failure, "vm1", NlaTarget(gateway.Port)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendConnector_NlaTarget_EarlyAuthorizationDenied_IsALogonFailure()
    {
        var directory = new FakeNlaDirectory { Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "no_role: no assignment") };
        await using var gateway = await StartAsync(directory);

        var result = await BackendConnector.ConnectAsync(NlaTarget(gateway.Port), new InjectedCredentials(string.Empty, "alice@contoso.test", "Correct-Horse-1"), TimeSpan.FromSeconds(10), CancellationToken.None);

        Assert.Equal(BackendFailure.Logon, result.Failure);
        Assert.Contains("AUTHZ_ACCESS_DENIED", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendConnector_NlaTarget_HostWithoutNla_SaysToRegisterItWithTls()
    {
        await using var gateway = await StartAsync(new FakeNlaDirectory(), o => o.SignInMethods = SignInMethods.Tls);

        var result = await BackendConnector.ConnectAsync(NlaTarget(gateway.Port), new InjectedCredentials(string.Empty, "alice@contoso.test", "Correct-Horse-1"), TimeSpan.FromSeconds(10), CancellationToken.None);

        Assert.Equal(BackendFailure.NlaNotOffered, result.Failure);
        Assert.Contains("--backend-security tls", result.Reason, StringComparison.Ordinal);
    }

    private static BackendTarget NlaTarget(int port) => new("127.0.0.1", port, BackendTarget.NlaProtocols, "alice");

    private static async Task<GatewaySignInEvent> RefusedAsync(GatewayHost gateway, CredSspClientOptions options, uint expected)
    {
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, options with { Decided = gateway.SignInLog.Next() });
        using (tcp)
        await using (tls)
        {
            var got = outcome.ErrorCode ?? (outcome.EarlyResult == NtStatus.AuthzAccessDenied ? NtStatus.AccessDenied : null);
            Assert.True(got == expected, $"expected 0x{expected:X8}, got {(got is { } g ? $"0x{g:X8}" : "nothing")} at {outcome.Stage}");
            // The refusal was logged before the client got it: the entry is there without waiting.
            var entry = Assert.Single(gateway.SignInLog.Entries);
            Assert.False(entry.Succeeded);
            Assert.Equal("nla", entry.Protocol);
            Assert.Equal($"0x{expected:X8}", entry.Code);
            Assert.Equal(0, gateway.Sessions.Count);
            return entry;
        }
    }

    private static byte[] Patch(byte[] bytes, int offset, params byte[] values)
    {
        var copy = (byte[])bytes.Clone();
        values.CopyTo(copy, offset);
        return copy;
    }

    private static byte[] NtlmStub(byte type) => [.. NtlmMessage.Signature, type, 0, 0, 0];

    private static byte[] ClearNegotiateFlag(byte[] tsRequest, NtlmNegotiateFlags flag)
    {
        Assert.True(TsRequest.TryParse(tsRequest, out var request, out _));
        var token = request.NegoTokens[0];
        Assert.True(Gatehouse.Protocol.Spnego.SpnegoToken.TryParse(token, out var spnego, out _));
        var ntlm = spnego.MechToken.ToArray();
        var flags = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(ntlm.AsSpan(12)) & ~(uint)flag;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(ntlm.AsSpan(12), flags);
        return new TsRequest(request.Version, [Gatehouse.Protocol.Spnego.SpnegoToken.Init([Gatehouse.Protocol.Spnego.SpnegoToken.NtlmOid], ntlm).Encode()], clientNonce: request.ClientNonce.ToArray()).Encode();
    }

    private static byte[] FlipNtProof(byte[] authenticate)
    {
        var offset = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(authenticate.AsSpan(24));
        return Patch(authenticate, offset, (byte)(authenticate[offset] ^ 1));
    }

    private static byte[] ChangeNonce(byte[] tsRequest)
    {
        Assert.True(TsRequest.TryParse(tsRequest, out var request, out _));
        return new TsRequest(request.Version, request.NegoTokens, pubKeyAuth: request.PubKeyAuth.ToArray(), clientNonce: new byte[32]).Encode();
    }

    private static byte[] DropPubKeyAuth(byte[] tsRequest)
    {
        Assert.True(TsRequest.TryParse(tsRequest, out var request, out _));
        return new TsRequest(request.Version, request.NegoTokens, clientNonce: request.ClientNonce.ToArray()).Encode();
    }

    internal static SessionGrant Grant(int backendPort) => new()
    {
        TenantId = Guid.NewGuid(),
        UserId = Guid.NewGuid(),
        UserPrincipalName = "alice@contoso.test",
        HostId = Guid.NewGuid(),
        HostName = "vm1",
        RoleName = "Virtual Machine User Login",
        Backend = new BackendTarget("127.0.0.1", backendPort, SecurityProtocol.Ssl, "vmuser"),
        Credentials = new InjectedCredentials(string.Empty, "vmuser", "host-secret"),
        Methods = ["pwd"],
    };

    /// <summary>The CredSSP deadline of these tests (distinct from the other phases', so a test can move the clock past it alone).</summary>
    internal static readonly TimeSpan CredSspTimeout = TimeSpan.FromSeconds(20);

    internal static Task<GatewayHost> StartAsync(FakeNlaDirectory directory, Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions { SignInMethods = SignInMethods.Nla | SignInMethods.WebAccount, CredSspTimeout = CredSspTimeout };
        change?.Invoke(options);
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<INlaDirectory>(directory);
            services.AddSingleton<ISignInAuthorizer>(directory);
            services.AddSingleton<ISignInMethod, NlaAuthenticator>();
        });
    }
}
