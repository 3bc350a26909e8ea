using System.Buffers;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.Tls;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Gateway.Tests.Tls;

/// <summary>
/// TLS sign-in (the password in the Client Info PDU) through the real connection handler on loopback: a C# client that
/// replays FreeRDP's /sec:tls connection sequence, an xrdp-like stub host, and the NLA directory fake.
/// </summary>
public sealed class TlsSignInTests
{
    private static readonly Guid HostId = Guid.NewGuid();

    [Theory]
    [InlineData("", "alice@contoso.test")]
    [InlineData("AzureAD", "alice@contoso.test")]
    [InlineData(".", "AzureAD\\alice@contoso.test")]
    [InlineData("EntraID", "alice@contoso.test")]
    [InlineData(".", "EntraID\\alice@contoso.test")]
    public async Task RightPassword_EveryNameForm_InjectsTheMappedAccount_AndRelaysTheHost(string domain, string user)
    {
        await using var host = TlsStubHost.Start();
        var directory = Directory(host);
        await using var gateway = await StartAsync(directory);
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { Domain = domain, User = user });

        // The client got what the host answered to the rewritten Client Info PDU (xrdp's license PDU, its Demand Active).
        Assert.Equal(SecurityProtocol.Ssl, outcome.Negotiation!.Value.SelectedProtocol);
        Assert.Equal(TlsTestClient.Capture("s2c-010-license-error.bin"), outcome.Frames[0]);
        Assert.Equal(TlsTestClient.Capture("s2c-011-demand-active.bin"), outcome.Frames[1]);
        var info = Assert.Single(host.ClientInfos);
        Assert.Equal("vmuser", info.Packet.UserName);
        Assert.Equal("VM1", info.Packet.Domain);
        Assert.Equal("host-secret", info.Packet.Password);
        Assert.True(info.Packet.Flags.HasFlag(ClientInfoFlags.AutoLogon));

        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.Equal("tls", entry.Protocol);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(["pwd"], entry.Methods);
        Assert.Equal("VM1\\vmuser", entry.TargetAccount);
        Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);
        Assert.Equal("vm1", directory.AuthorizedHostLabel);
        Assert.Equal(["vm1"], directory.HostLookups);
        Assert.Contains(gateway.Journal.Events, e => e.StartsWith("start ", StringComparison.Ordinal) && e.Contains("alice@contoso.test vm1", StringComparison.Ordinal));
        Assert.Equal(entry.SessionId, Guid.Parse(gateway.Journal.Events[0].Split(' ')[1]));
    }

    [Fact]
    public async Task LiveSession_IsRegisteredWithProtocolTls_WhileTheClientStays()
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host));
        LiveSession? session = null;
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions
        {
            WhileSignedIn = () =>
            {
                session = Assert.Single(gateway.Sessions.List());
                return Task.CompletedTask;
            },
        });
        Assert.False(outcome.Closed);
        Assert.NotNull(session);
        Assert.Equal("tls", session.Protocol);
        Assert.Equal("vmuser", session.Grant.Credentials.UserName);
    }

    [Fact]
    public async Task WrongPassword_IsRefusedWithTheErrorInfo_NothingReachesTheHost_ThenAGoodSignInWorks()
    {
        var entry = await RefusedThenGoodAsync(new TlsClientOptions { Password = "wrong" }, ErrorInfoCode.ServerDeniedConnection);
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("Your credentials didn't work.", entry.UserMessage);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
    }

    [Theory]
    [InlineData("CONTOSO", "alice")]
    [InlineData("", "alice")]
    [InlineData("WORKGROUP", "alice@contoso.test")]
    public async Task DomainBackslashUser_IsRefused_WithTheEntraJoinedSentence(string domain, string user)
    {
        var (entry, directory) = await RefusedThenGoodWithDirectoryAsync(new TlsClientOptions { Domain = domain, User = user }, ErrorInfoCode.ServerDeniedConnection);
        Assert.StartsWith("not_a_work_account:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal(NlaUserName.EntraJoinedMessage, entry.UserMessage);
        Assert.Equal(1, directory.Lookups); // only the good sign-in that follows looked a user up
    }

    [Theory]
    [InlineData(NlaAccountCheck.MustChangePassword, "password_change_required:")]
    [InlineData(NlaAccountCheck.Disabled, "user_disabled:")]
    [InlineData(NlaAccountCheck.LockedOut, "locked_out:")]
    public async Task AccountState_FromThePasswordCheck_IsRefusedWithItsReason(NlaAccountCheck state, string reason)
    {
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory { HostLeg = good.HostLeg, Grant = good.Grant, PasswordOutcome = state });
        var entry = await RefusedAsync(gateway, host, new TlsClientOptions(), ErrorInfoCode.ServerDeniedConnection);
        Assert.StartsWith(reason, entry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownUser_IsRefused_AfterTheSamePasswordHashingWorkAsAKnownUser()
    {
        var (entry, directory) = await RefusedThenGoodWithDirectoryAsync(new TlsClientOptions { User = "mallory@contoso.test" }, ErrorInfoCode.ServerDeniedConnection);
        Assert.StartsWith("unknown_user:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal(1, directory.UnknownUserChecks);
    }

    [Fact]
    public async Task UnauthenticatedHostLegs_AreCappedPerHost_AndReleasedWhenTheAttemptEnds()
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host), o => o.MaxUnauthenticatedHostLegsPerHost = 1);

        // A client that never sends its Client Info holds the host's one unauthenticated leg…
        var stopped = new TaskCompletionSource();
        var silent = TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { StopBeforeClientInfo = true, Stopped = () => stopped.TrySetResult() });
        await stopped.Task.WaitAsync(Until.Backstop);
        Assert.Equal(1, host.Connections);

        // …so the next one is refused before any host leg is opened for it.
        var refused = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions());
        Assert.False(refused.McsConnected);
        var entry = (await gateway.SignInLog.WaitForAsync(1)).Single(e => e.Reason.StartsWith("too_many_unauthenticated:", StringComparison.Ordinal));
        Assert.Contains("MaxUnauthenticatedHostLegsPerHost", entry.Reason, StringComparison.Ordinal);
        Assert.Equal(1, host.Connections);

        // Once the silent client is closed at its deadline, the leg is free again.
        gateway.Time.Advance(ClientInfoTimeout);
        Assert.True((await silent).Closed);
        await GoodAsync(gateway, host);
    }

    [Fact]
    public async Task NoRole_IsRefusedWithInsufficientPrivileges_AndTheLogSaysWhy()
    {
        const string message = "Your account is configured to prevent you from using this device. For more info, contact your system administrator.";
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory
        {
            HostLeg = good.HostLeg,
            Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "no_role: no assignment", message),
        });
        var entry = await RefusedAsync(gateway, host, new TlsClientOptions(), ErrorInfoCode.ServerInsufficientPrivileges);
        Assert.Equal("authorization: no_role: no assignment", entry.Reason);
        Assert.Equal(message, entry.UserMessage);
        Assert.Equal("0x00000009", entry.Code);
    }

    [Fact]
    public async Task MfaPolicy_IsRefusedWithThePolicySentence()
    {
        const string message = "The sign-in method you're trying to use isn't allowed. Try a different sign-in method or contact your system administrator.";
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory
        {
            HostLeg = good.HostLeg,
            Authorization = AccessOutcome.Deny(SignInFailure.AccessDenied, "policy_control_missing: Require MFA requires mfa", message),
        });
        var entry = await RefusedAsync(gateway, host, new TlsClientOptions(), ErrorInfoCode.ServerInsufficientPrivileges);
        Assert.Equal(message, entry.UserMessage);
        Assert.Contains("policy_control_missing", entry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TlsDisabled_TheSslOnlyClientIsRefusedAtNegotiation_WithHowToEnableIt()
    {
        await using var host = TlsStubHost.Start();
        var options = new GatewayOptions { SignInMethods = SignInMethods.WebAccount | SignInMethods.Nla };
        await using var gateway = await GatewayHost.StartAsync(options, services =>
        {
            var fake = Directory(host);
            services.AddSingleton<INlaDirectory>(fake);
            services.AddSingleton<ISignInAuthorizer>(fake);
            services.AddSingleton<ISignInMethod, NlaAuthenticator>();
        });
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions());
        Assert.True(outcome.Negotiation!.Value.IsFailure);
        Assert.Equal(NegotiationFailureCode.HybridRequiredByServer, outcome.Negotiation.Value.FailureCode);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.Contains("/sec:tls", entry.Reason, StringComparison.Ordinal);
        Assert.Contains("/sec:nla", entry.Reason, StringComparison.Ordinal);
        Assert.Contains("Gatehouse:Gateway:SignInMethods", entry.Reason, StringComparison.Ordinal);
        Assert.Equal(0, host.Connections);
    }

    public static TheoryData<string> BadClientInfos() => ["malformed", "oversized", "not info"];

    [Theory]
    [MemberData(nameof(BadClientInfos))]
    public async Task MalformedOrOversizedClientInfo_IsRefused_ThenAGoodSignInWorks(string kind)
    {
        var good = TlsTestClient.ClientInfo(string.Empty, "alice@contoso.test", "Correct-Horse-1");
        var bytes = kind switch
        {
            "malformed" => Truncated(good, 60),
            "oversized" => InfoFrame(new byte[3000]),
            _ => SendData([0x00, 0x00, 0x00, 0x00, 0x01, 0x02]),
        };
        var entry = await RefusedThenGoodAsync(new TlsClientOptions { ClientInfo = bytes }, kind == "not info" ? null : ErrorInfoCode.ServerDeniedConnection, change: o => o.MaxClientInfoBytes = 2048);
        Assert.StartsWith(kind switch { "malformed" => "malformed_client_info:", "oversized" => "client_info_too_large:", _ => "malformed_connection_sequence:" }, entry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SilentClient_IsClosedAtTheClientInfoDeadline_AndTheHostLegToo()
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host));
        var stopped = new TaskCompletionSource();
        var run = TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { StopBeforeClientInfo = true, Stopped = () => stopped.TrySetResult() });

        // The client has joined its channel and says nothing more: the deadline (armed when the MCS phase began) passes.
        await stopped.Task.WaitAsync(Until.Backstop);
        gateway.Time.Advance(ClientInfoTimeout);
        var outcome = await run;
        Assert.True(outcome.Closed);
        Assert.True(outcome.Refusal.Ultimatum);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.StartsWith("client_info_timeout:", entry.Reason, StringComparison.Ordinal);
        Assert.True(await host.WaitClosedWithoutClientInfoAsync(1));
        await GoodAsync(gateway, host);
    }

    [Theory]
    [InlineData("vm9.gatehouse.test", "unknown_host: no host or alias 'vm9'")]
    [InlineData(null, "unknown_host: the client named no host")]
    public async Task UnknownHostOrIpAddress_IsRefusedBeforeAnyHostLeg(string? serverName, string reason)
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host));
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { ServerName = serverName });
        Assert.False(outcome.McsConnected);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith(reason, entry.Reason, StringComparison.Ordinal);
        Assert.Equal(TlsAuthenticator.UseHostNameMessage, entry.UserMessage);
        Assert.Equal(0, host.Connections);
        await GoodAsync(gateway, host);
    }

    [Fact]
    public async Task UnreachableHost_IsRefused_WithTheFix()
    {
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        int closedPort;
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var gateway = await StartAsync(new FakeNlaDirectory
        {
            HostLeg = good.HostLeg! with { Backend = new BackendTarget("127.0.0.1", closedPort, SecurityProtocol.Ssl, "gatehouse") },
            Grant = good.Grant,
        });
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions());
        Assert.False(outcome.McsConnected);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.StartsWith("backend_unreachable:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains("gatehouse host test vm1", entry.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostWithAnotherKey_IsRefusedBeforeTheMcsPhase_NothingReachesIt_AndTheFixNamesBothKeys()
    {
        const string trusted = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory
        {
            HostLeg = good.HostLeg! with { Backend = good.HostLeg.Backend with { CertificatePin = trusted } },
            Grant = good.Grant,
        });
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions());
        Assert.False(outcome.McsConnected);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith("backend_certificate_changed:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains($"gatehouse host trust vm1 --fingerprint {TlsStubHost.HostKey}", entry.Fix, StringComparison.Ordinal);
        Assert.Contains(trusted, entry.Fix, StringComparison.Ordinal);
        Assert.Empty(host.ClientInfos);
        Assert.True(await host.WaitClosedWithoutClientInfoAsync(1), "the host leg is closed");
        Assert.Equal(0, gateway.Sessions.Count);
    }

    [Fact]
    public async Task HostWithTheTrustedKey_SignsIn()
    {
        await using var host = TlsStubHost.Start();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory
        {
            HostLeg = good.HostLeg! with { Backend = good.HostLeg.Backend with { CertificatePin = TlsStubHost.HostKey } },
            Grant = good.Grant,
        });
        await GoodAsync(gateway, host);
    }

    // Every connection that reaches a decision leaves exactly one sign-in log entry, written before the client (or the
    // host, which answers it) hears the answer, whatever the client does next. The holds stand for the identity
    // provider's password hashing at work when the client leaves.

    [Fact]
    public async Task RightPassword_ClientLeavesAsSoonAsItSentItsClientInfo_LeavesOneSuccessEntry_AndNoSession()
    {
        await using var host = TlsStubHost.Start();
        var hold = new Gate();
        var good = Directory(host);
        var directory = new FakeNlaDirectory { HostLeg = good.HostLeg, Grant = good.Grant, HoldPasswordCheck = hold };
        await using var gateway = await StartAsync(directory);
        await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { LeaveAfterClientInfo = true });
        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.True(entry.Succeeded, entry.Reason);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);
        Assert.Equal(0, gateway.SignInLog.Lost);
        await Until.TrueAsync(() => gateway.Journal.Events.Count == 2, "the session's start and end records");
        Assert.StartsWith($"end {entry.SessionId} ", gateway.Journal.Events[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongPassword_ClientLeavesAsSoonAsItSentItsClientInfo_IsLogged_AndNothingReachesTheHost()
    {
        await using var host = TlsStubHost.Start();
        var hold = new Gate();
        var good = Directory(host);
        await using var gateway = await StartAsync(new FakeNlaDirectory { HostLeg = good.HostLeg, Grant = good.Grant, HoldPasswordCheck = hold });
        await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { Password = "wrong", LeaveAfterClientInfo = true });
        await hold.Entered.WaitAsync(Until.Backstop);
        await gateway.WaitClosedAsync(1);
        hold.Open();

        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.False(entry.Succeeded);
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("alice@contoso.test", entry.UserPrincipalName);
        Assert.True(await host.WaitClosedWithoutClientInfoAsync(1));
        Assert.Empty(host.ClientInfos);
    }

    [Fact]
    public async Task RacingClients_EveryConnectionThatReachedADecisionLeavesExactlyOneEntry_50Times()
    {
        const int Iterations = 50;
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host));
        TlsClientOptions[] clients =
        [
            new() { LeaveAfterClientInfo = true },
            new() { Password = "wrong", LeaveAfterClientInfo = true },
            new() { User = "mallory@contoso.test", LeaveAfterClientInfo = true },
            new(),
        ];
        for (var i = 0; i < Iterations; i++)
        {
            foreach (var options in clients)
            {
                await TlsTestClient.RunAsync(gateway.Port, options);
            }

            await gateway.WaitIdleAsync();
            var entries = gateway.SignInLog.Entries;
            Assert.True(entries.Count == (i + 1) * clients.Length, $"iteration {i}: {entries.Count} entries for {(i + 1) * clients.Length} connections: {string.Join(" | ", entries.Skip(i * clients.Length).Select(e => e.Reason))}");
        }

        var all = gateway.SignInLog.Entries;
        Assert.Equal(all.Count, all.Select(e => e.ConnectionId).Distinct().Count());
        Assert.Equal(2 * Iterations, all.Count(e => e.Succeeded));
        Assert.Equal(Iterations, all.Count(e => e.Reason.StartsWith("bad_password:", StringComparison.Ordinal)));
        Assert.Equal(Iterations, all.Count(e => e.Reason.StartsWith("unknown_user:", StringComparison.Ordinal)));
        Assert.Equal(0, gateway.SignInLog.Lost);
    }

    private static async Task<GatewaySignInEvent> RefusedThenGoodAsync(TlsClientOptions options, ErrorInfoCode? expected, Action<GatewayOptions>? change = null) =>
        (await RefusedThenGoodWithDirectoryAsync(options, expected, change)).Entry;

    private static async Task<(GatewaySignInEvent Entry, FakeNlaDirectory Directory)> RefusedThenGoodWithDirectoryAsync(TlsClientOptions options, ErrorInfoCode? expected, Action<GatewayOptions>? change = null)
    {
        await using var host = TlsStubHost.Start();
        var directory = Directory(host);
        await using var gateway = await StartAsync(directory, change);
        var entry = await RefusedAsync(gateway, host, options, expected);
        await GoodAsync(gateway, host);
        return (entry, directory);
    }

    /// <summary>A refusal after the Client Info PDU (<paramref name="expected"/> set) or during the MCS phase (null: the ultimatum only).</summary>
    private static async Task<GatewaySignInEvent> RefusedAsync(GatewayHost gateway, TlsStubHost host, TlsClientOptions options, ErrorInfoCode? expected)
    {
        var outcome = await TlsTestClient.RunAsync(gateway.Port, options);
        Assert.True(outcome.Closed, "the gateway closes the connection after a refusal");
        var (license, errorInfo, ultimatum) = outcome.Refusal;
        Assert.Equal(expected is null ? null : ServerRefusal.StatusValidClient, license);
        Assert.Equal(expected, errorInfo);
        Assert.True(ultimatum);

        // The refusal was logged before the client got it: the entry is there without waiting.
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.False(entry.Succeeded);
        Assert.Equal("tls", entry.Protocol);
        Assert.Equal(expected is { } code ? $"0x{(uint)code:X8}" : null, entry.Code);
        Assert.Equal(0, gateway.Sessions.Count);
        Assert.Empty(host.ClientInfos);
        Assert.True(await host.WaitClosedWithoutClientInfoAsync(1), "the host leg is closed");
        return entry;
    }

    private static async Task GoodAsync(GatewayHost gateway, TlsStubHost host)
    {
        var before = gateway.SignInLog.Entries.Count;
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions());
        Assert.Equal(TlsTestClient.Capture("s2c-010-license-error.bin"), outcome.Frames[0]);

        // Logged before the host got the Client Info PDU it answered: the entry is there without waiting.
        var entries = gateway.SignInLog.Entries;
        Assert.Equal(before + 1, entries.Count);
        Assert.True(entries[^1].Succeeded, entries[^1].Reason);
        Assert.Equal("vmuser", host.ClientInfos[^1].Packet.UserName);
    }

    private static FakeNlaDirectory Directory(TlsStubHost host) => new()
    {
        HostLeg = new PasswordHostLeg(HostId, "vm1", new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "gatehouse")),
        Grant = new SessionGrant
        {
            TenantId = Guid.NewGuid(),
            UserId = Guid.NewGuid(),
            UserPrincipalName = "alice@contoso.test",
            HostId = HostId,
            HostName = "vm1",
            RoleName = "Virtual Machine User Login",
            Backend = new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "vmuser"),
            Credentials = new InjectedCredentials("VM1", "vmuser", "host-secret"),
            Methods = ["pwd"],
        },
    };

    /// <summary>The Client Info deadline of these tests (distinct from the other phases', so a test can move the clock past it alone).</summary>
    private static readonly TimeSpan ClientInfoTimeout = TimeSpan.FromSeconds(30);

    private static Task<GatewayHost> StartAsync(FakeNlaDirectory directory, Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions { SignInMethods = SignInMethods.WebAccount | SignInMethods.Nla | SignInMethods.Tls, ClientInfoTimeout = ClientInfoTimeout };
        change?.Invoke(options);
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<INlaDirectory>(directory);
            services.AddSingleton<ISignInAuthorizer>(directory);
            services.AddSingleton<ISignInMethod, TlsAuthenticator>();
        });
    }

    /// <summary>A Client Info frame cut to <paramref name="length"/> bytes of TS_INFO_PACKET, lengths fixed up.</summary>
    private static byte[] Truncated(byte[] clientInfo, int length)
    {
        Assert.True(X224Data.TryUnwrapFrame(clientInfo, out var mcs, out _));
        Assert.True(McsSendData.TryParseRequest(mcs, out _, out var userData, out _));
        return SendData(userData[..(ClientInfoPdu.SecurityHeaderSize + length)].ToArray());
    }

    /// <summary>A Send Data Request whose user data is SEC_INFO_PKT and then <paramref name="packet"/>.</summary>
    private static byte[] InfoFrame(byte[] packet) => SendData([0x40, 0x00, 0x00, 0x00, .. packet]);

    private static byte[] SendData(byte[] userData)
    {
        var header = McsSendData.Create(DomainMcsPduType.SendDataRequest, 1007, 1003, userData.Length);
        var body = new ArrayBufferWriter<byte>();
        header.Write(body, userData);
        var frame = new byte[X224Data.FrameOverhead + body.WrittenCount];
        X224Data.WriteFrameHeader(frame, frame.Length);
        body.WrittenSpan.CopyTo(frame.AsSpan(X224Data.FrameOverhead));
        return frame;
    }
}
