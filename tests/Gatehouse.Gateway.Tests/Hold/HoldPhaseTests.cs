using System.Net.Security;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Tests.Hold;

/// <summary>
/// The hold phase of the session driver, in process, with the CredSSP test client and a client of the hold front of our
/// own: a policy that needs MFA gets the code prompt inside the RDP session, a right code hands the client over with a
/// routing token that the reconnect redeems, wrong codes end with one row, and a refusal after a right password gets its
/// screen and its row.
/// </summary>
public sealed class HoldPhaseTests
{
    internal const string RightCode = "123456";

    [Fact]
    public async Task StepUp_RightCode_HandsOver_AndTheReconnectSignsInWithMfa()
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var authorizer = new StepUpAuthorizer(NlaSignInTests.Grant(host.Port));
        var codes = new FakeHoldDirectory();
        await using var gateway = await StartAsync(authorizer, codes);

        var token = await HoldAsync(gateway, async client =>
        {
            await client.TypeAsync(RightCode);
            return await client.ReadRedirectionAsync();
        });
        Assert.Matches("^[A-Z2-7]{32}$", token);
        Assert.Equal([RightCode], codes.Checked);
        var handedOver = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.True(handedOver.Succeeded, handedOver.Reason);
        Assert.StartsWith("handed_over: alice@contoso.test proved a second factor", handedOver.Reason, StringComparison.Ordinal);
        Assert.Equal(["pwd", "mfa", "otp"], handedOver.Methods);
        Assert.Null(handedOver.SessionId);

        // The reconnect carries the token: the same user signs in again and the second factor counts.
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { RoutingToken = token });
        using (tcp)
        await using (tls)
        {
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
            var entries = await gateway.SignInLog.WaitForAsync(2);
            var signedIn = entries[1];
            Assert.True(signedIn.Succeeded, signedIn.Reason);
            Assert.NotNull(signedIn.SessionId);
            Assert.Contains("mfa", authorizer.Seen[^1].Methods);
            Assert.Equal(1, gateway.Sessions.Count);
        }

        // The token is spent: a second reconnect with it is an ordinary connection, refused by the policy again (held).
        Assert.Equal(RoutingTokenRefusal.Unknown, gateway.Services.GetRequiredService<RoutingTokens>().TryRedeem(token, System.Net.IPAddress.Loopback, out _));
    }

    [Fact]
    public async Task StepUp_ThreeWrongCodes_Disconnect_WithOneRow()
    {
        var authorizer = new StepUpAuthorizer(NlaSignInTests.Grant(1));
        var codes = new FakeHoldDirectory();
        await using var gateway = await StartAsync(authorizer, codes);

        var ended = await HoldAsync(gateway, async client =>
        {
            await client.TypeAsync("000000");
            await client.TypeAsync("111111");
            await client.TypeAsync("222222");
            return await client.ReadRefusalAsync();
        });
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, ended);
        Assert.Equal(["000000", "111111", "222222"], codes.Checked);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(entry.Succeeded);
        Assert.StartsWith("wrong_one_time_code: 3 wrong one-time codes", entry.Reason, StringComparison.Ordinal);
        Assert.Equal(SignInMessages.WrongOneTimeCode, entry.UserMessage);
        await gateway.WaitIdleAsync();
        Assert.Single(gateway.SignInLog.Entries);
    }

    [Fact]
    public async Task StepUp_BackspaceAndKeypad_TypeTheCode()
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var codes = new FakeHoldDirectory();
        await using var gateway = await StartAsync(new StepUpAuthorizer(NlaSignInTests.Grant(host.Port)), codes);

        await HoldAsync(gateway, async client =>
        {
            // "12" on the top row, Backspace, then "23456" on the keypad.
            await client.KeysAsync([0x02, 0x03, 0x0E, 0x50, 0x51, 0x4B, 0x4C, 0x4D]);
            return await client.ReadRedirectionAsync();
        });
        Assert.Equal([RightCode], codes.Checked);
    }

    [Fact]
    public async Task NoRole_AfterARightPassword_GetsTheRefusalScreen_AndItsRow()
    {
        var authorizer = new StepUpAuthorizer(NlaSignInTests.Grant(1)) { Refusal = AccessOutcome.Deny(SignInFailure.AccessDenied, "no_role_assignment: no role", "Your account is configured to prevent you from using this device.", "Ask for the Virtual Machine User Login role on vm1.") };
        await using var gateway = await StartAsync(authorizer, new FakeHoldDirectory());

        var ended = await HoldAsync(gateway, async client =>
        {
            var painted = await client.ReadBitmapsAsync();
            Assert.True(painted > 0);

            // Any key ends the screen.
            await client.KeysAsync([0x1C]);
            return await client.ReadRefusalAsync();
        });
        Assert.Equal(ErrorInfoCode.ServerInsufficientPrivileges, ended);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.Equal("authorization: no_role_assignment: no role", entry.Reason);
        Assert.Equal("Ask for the Virtual Machine User Login role on vm1.", entry.Fix);
    }

    [Fact]
    public async Task ClientThatNeverAnswers_TheHoldRunsOut_WithLogonTimeout_AndOneRow_WhileAnotherClientIsHandedOver()
    {
        await using var host = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var codes = new FakeHoldDirectory();
        await using var gateway = await StartAsync(new StepUpAuthorizer(NlaSignInTests.Grant(host.Port)), codes, o => o.HoldScreen.PromptTimeout = TimeSpan.FromMinutes(3));

        // The silent client reaches the prompt and types nothing.
        var (_, silentTls, silentTcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (silentTcp)
        await using (silentTls)
        {
            var silent = new HoldTestClient(silentTls);
            await silent.ConnectAsync();
            Assert.True(await silent.ReadBitmapsAsync() > 0);

            // Another client, meanwhile, types its code and is handed over: one connection's hold does not touch another's.
            var token = await HoldAsync(gateway, async client =>
            {
                await client.TypeAsync(RightCode);
                return await client.ReadRedirectionAsync();
            });
            Assert.Matches("^[A-Z2-7]{32}$", token);

            // Only the gateway's clock runs the silent client's deadline out.
            await gateway.Time.AdvanceWhenArmedAsync(TimeSpan.FromMinutes(3), count: 1);
            Assert.Equal(ErrorInfoCode.LogonTimeout, await silent.ReadRefusalAsync());
        }

        var entries = await gateway.SignInLog.WaitForAsync(2);
        var timedOut = Assert.Single(entries, e => !e.Succeeded);
        Assert.StartsWith("hold_timeout: the hold screen got no answer within 180 s", timedOut.Reason, StringComparison.Ordinal);
        Assert.Equal(SignInMessages.HoldTimeout, timedOut.UserMessage);
        Assert.Single(entries, e => e.Succeeded && e.Reason.StartsWith("handed_over:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HostPicker_ClientNamedNoRegisteredHost_ChoosesTheSecondOfTwo_AndTheReconnectLandsOnIt()
    {
        await using var backend = Gatehouse.Gateway.Tests.WebAccount.WebAccountSignInTests.TlsBackend.Start();
        var grant = NlaSignInTests.Grant(backend.Port);
        var vm1 = new HoldHost(Guid.NewGuid(), "vm1");
        var vm2 = new HoldHost(grant.HostId, "vm2");
        var authorizer = new PickerAuthorizer(grant with { HostName = "vm2" });
        await using var gateway = await StartAsync(authorizer, new FakeHoldDirectory { Hosts = [vm1, vm2] });

        var token = await HoldAsync(gateway, async client =>
        {
            Assert.True(await client.ReadBitmapsAsync() > 0);
            await client.ExtendedKeyAsync(0x50); // down arrow: vm2
            await client.KeysAsync([0x1C]);      // Enter
            return await client.ReadRedirectionAsync();
        });
        var handedOver = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.StartsWith("handed_over: alice@contoso.test chose vm2 on the host picker", handedOver.Reason, StringComparison.Ordinal);
        Assert.Equal(vm2.Id, authorizer.Seen[^1].HostId);

        // The reconnect still names no registered host; the token names the one chosen.
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { RoutingToken = token });
        using (tcp)
        await using (tls)
        {
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
            var signedIn = (await gateway.SignInLog.WaitForAsync(2))[1];
            Assert.True(signedIn.Succeeded, signedIn.Reason);
            Assert.Equal("vm2", signedIn.HostName);
            Assert.Equal(vm2.Id, authorizer.Seen[^1].HostId);
        }
    }

    [Fact]
    public async Task BeyondMaxConcurrentHolds_TheRefusalIsAnsweredInsideCredSsp()
    {
        var authorizer = new StepUpAuthorizer(NlaSignInTests.Grant(1));
        await using var gateway = await StartAsync(authorizer, new FakeHoldDirectory(), o => o.HoldScreen.MaxConcurrentHolds = 1);

        // The first client is held at the prompt (its connection sequence done, nothing typed).
        var (_, heldTls, heldTcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (heldTcp)
        await using (heldTls)
        {
            var held = new HoldTestClient(heldTls);
            await held.ConnectAsync();
            Assert.True(await held.ReadBitmapsAsync() > 0);
            Assert.Equal(1, gateway.Services.GetRequiredService<HoldPhase>().Held);

            // The second gets the policy's refusal as before the hold screen: AUTHZ_ACCESS_DENIED, and its row.
            var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
            using (tcp)
            await using (tls)
            {
                Assert.Equal(NtStatus.AuthzAccessDenied, outcome.EarlyResult);
                var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
                Assert.Equal("authorization: policy_control_missing: Require MFA requires mfa", entry.Reason);
            }
        }

        await Until.TrueAsync(() => gateway.Services.GetRequiredService<HoldPhase>().Held == 0, "the held client to be let go");
    }

    [Fact]
    public async Task DesktopLargerThanTheHoldPaints_IsRefused_WithItsRow()
    {
        await using var gateway = await StartAsync(new StepUpAuthorizer(NlaSignInTests.Grant(1)), new FakeHoldDirectory(), o => o.HoldScreen.MaxDesktopPixels = 640 * 480);
        var ended = await HoldAsync(gateway, async client => await client.ReadRefusalAsync());
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, ended);
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.Contains("larger than the hold screen paints", entry.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RoutingToken_ForAnotherUser_IsIgnored_AndTheSignInIsHeldAgain()
    {
        var authorizer = new StepUpAuthorizer(NlaSignInTests.Grant(1));
        var codes = new FakeHoldDirectory();
        await using var gateway = await StartAsync(authorizer, codes);
        var tokens = gateway.Services.GetRequiredService<RoutingTokens>();
        var foreign = tokens.Mint(new HandoverGrant
        {
            ClientAddress = System.Net.IPAddress.Loopback,
            TenantId = Guid.NewGuid(),
            UserId = Guid.NewGuid(),
            HostId = Guid.NewGuid(),
            Methods = ["pwd", "mfa", "otp"],
            AuthenticatedAt = DateTimeOffset.UnixEpoch,
            ConnectionId = "another",
        })!;

        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions { RoutingToken = foreign });
        using (tcp)
        await using (tls)
        {
            // Held (the policy still wants MFA): the client is told to go on, and the authoriser saw no second factor.
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
            await Until.TrueAsync(() => authorizer.Seen.Count == 1, "the authorisation");
            Assert.DoesNotContain("mfa", authorizer.Seen[0].Methods);
        }
    }

    private static async Task<T> HoldAsync<T>(GatewayHost gateway, Func<HoldTestClient, Task<T>> act)
    {
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (tcp)
        await using (tls)
        {
            Assert.Null(outcome.ErrorCode);
            Assert.Equal(NtStatus.AuthzSuccess, outcome.EarlyResult);
            var client = new HoldTestClient(tls);
            await client.ConnectAsync();
            return await act(client);
        }
    }

    private static Task<GatewayHost> StartAsync(ISignInAuthorizer authorizer, FakeHoldDirectory codes, Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions { SignInMethods = SignInMethods.Nla | SignInMethods.WebAccount, CredSspTimeout = NlaSignInTests.CredSspTimeout };
        change?.Invoke(options);
        var directory = new FakeNlaDirectory();
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<INlaDirectory>(directory);
            services.AddSingleton<ISignInAuthorizer>(authorizer);
            services.AddSingleton<ISignInMethod, NlaAuthenticator>();
            services.AddSingleton<IHoldDirectory>(codes);
            services.AddSingleton(new HoldScreenPainter(new HoldScreenAppearance()));
            services.AddSingleton(sp => new RoutingTokens(sp.GetRequiredService<TimeProvider>(), TimeSpan.FromSeconds(30), 100));
            services.AddSingleton<HoldPhase>();
        });
    }

    /// <summary>Refuses password-only sign-ins with a policy MFA would satisfy; allows with the grant once <c>mfa</c> is among the methods.</summary>
    private sealed class StepUpAuthorizer(SessionGrant grant) : ISignInAuthorizer
    {
        private readonly List<SignInSubject> _seen = [];

        public AccessOutcome? Refusal { get; init; }

        public List<SignInSubject> Seen
        {
            get
            {
                lock (_seen)
                {
                    return [.. _seen];
                }
            }
        }

        public Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
        {
            lock (_seen)
            {
                _seen.Add(subject);
            }

            if (Refusal is { } refusal)
            {
                return Task.FromResult(refusal);
            }

            return Task.FromResult(subject.Methods.Contains("mfa")
                ? AccessOutcome.Allow("allowed with mfa", grant)
                : AccessOutcome.Deny(SignInFailure.AccessDenied, "policy_control_missing: Require MFA requires mfa") with { MfaWouldSatisfy = true, HostId = grant.HostId });
        }
    }

    /// <summary>Refuses a subject with no host as an unknown host; allows the grant's host.</summary>
    private sealed class PickerAuthorizer(SessionGrant grant) : ISignInAuthorizer
    {
        private readonly List<SignInSubject> _seen = [];

        public List<SignInSubject> Seen
        {
            get
            {
                lock (_seen)
                {
                    return [.. _seen];
                }
            }
        }

        public Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
        {
            lock (_seen)
            {
                _seen.Add(subject);
            }

            return Task.FromResult(subject.HostId == grant.HostId
                ? AccessOutcome.Allow("allowed on the chosen host", grant)
                : AccessOutcome.Deny(SignInFailure.AccessNotPossible, "unknown_host: no host or alias 'gatehouse' is registered") with { HostUnknown = true });
        }
    }

    internal sealed class FakeHoldDirectory : IHoldDirectory
    {
        private readonly List<string> _checked = [];

        public string EnrollmentHint => "the sign-in page";

        public IReadOnlyList<HoldHost> Hosts { get; init; } = [];

        public Task<IReadOnlyList<HoldHost>> ListHostsAsync(Guid userId, int max, CancellationToken cancellationToken) => Task.FromResult(Hosts);

        public List<string> Checked
        {
            get
            {
                lock (_checked)
                {
                    return [.. _checked];
                }
            }
        }

        public Task<SecondFactor> GetSecondFactorAsync(Guid userId, Guid? hostId, CancellationToken cancellationToken) => Task.FromResult(SecondFactor.Code);

        public Task<OneTimeCodeCheck> CheckOneTimeCodeAsync(Guid userId, string code, CancellationToken cancellationToken)
        {
            lock (_checked)
            {
                _checked.Add(code);
            }

            return Task.FromResult(code == RightCode ? OneTimeCodeCheck.Ok : OneTimeCodeCheck.Wrong);
        }
    }

    /// <summary>The client side of the hold screen over the TLS stream: the connection sequence, key presses, and the end.</summary>
    internal sealed class HoldTestClient(SslStream tls, string password = "", SecurityProtocol selected = SecurityProtocol.Hybrid)
    {
        private static readonly HoldFrontClientSettings Settings = new() { SkipChannelJoin = true };
        private readonly RdpFrameReader _reader = new(tls, 65535);
        private ushort _user;
        private uint _shareId;

        /// <summary>Fast-path bitmap updates (FASTPATH_UPDATETYPE_BITMAP, the first update of a frame) read so far.</summary>
        public int BitmapFrames { get; private set; }

        public async Task ConnectAsync()
        {
            await SendAsync(HoldFrontClientPdus.ConnectInitial(Settings, selected));
            Assert.True(McsConnectResponse.TryParseFrame(await ReadAsync(), out _, out var error), error?.ToString());
            await SendAsync(HoldFrontClientPdus.ErectDomain());
            await SendAsync(HoldFrontClientPdus.AttachUser());
            Assert.True(X224Data.TryUnwrapFrame(await ReadAsync(), out var payload, out error), error?.ToString());
            Assert.True(AttachUserConfirm.TryParse(payload, out var confirm, out error), error?.ToString());
            _user = confirm.Initiator!.Value;
            await SendAsync(HoldFrontClientPdus.ClientInfo(_user, string.Empty, password.Length == 0 && selected == SecurityProtocol.Ssl ? string.Empty : "alice@contoso.test", password));
            await ReadAsync(); // License Error (valid client)
            var demand = Indication(await ReadAsync());
            _shareId = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(demand.AsSpan(6));
            await SendAsync(HoldFrontClientPdus.ConfirmActive(_user, _shareId, 32, Settings));
            await SendAsync(HoldFrontClientPdus.Synchronize(_user, _shareId));
            await SendAsync(HoldFrontClientPdus.Control(_user, _shareId, 4));
            await SendAsync(HoldFrontClientPdus.Control(_user, _shareId, 1));
            await SendAsync(HoldFrontClientPdus.FontList(_user, _shareId));
        }

        public Task TypeAsync(string digits) => KeysAsync([.. digits.Select(c => c == '0' ? (byte)0x0B : (byte)(c - '0' + 1))]);

        public async Task ExtendedKeyAsync(byte scancode) =>
            await SendAsync(HoldFrontClientPdus.FastPathInput(2, [0x02, scancode, 0x03, scancode]));

        public async Task KeysAsync(byte[] scancodes)
        {
            foreach (var scancode in scancodes)
            {
                // Down, then up (fast-path keyboard events: eventCode 0, KBDFLAGS_RELEASE 0x01 in the low bits).
                await SendAsync(HoldFrontClientPdus.FastPathInput(2, [0x00, scancode, 0x01, scancode]));
            }
        }

        /// <summary>Reads until the first bitmap update after activation; the number of update frames before the next slow-path PDU is not needed.</summary>
        public async Task<int> ReadBitmapsAsync()
        {
            while (true)
            {
                var frame = await ReadAsync();
                if (frame[0] != TpktHeader.Version)
                {
                    return frame.Length;
                }
            }
        }

        public async Task<string> ReadRedirectionAsync() => (await ReadHandoverAsync()).Token;

        /// <summary>The redirection's routing token, and the LB_USERNAME and LB_PASSWORD it carries (null when absent).</summary>
        public async Task<(string Token, string? User, string? Secret)> ReadHandoverAsync()
        {
            while (true)
            {
                var frame = await ReadAsync();
                if (Redirection(frame) is { } token)
                {
                    Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out _));
                    Assert.True(McsSendData.TryParseIndication(payload, out _, out var indication, out _));
                    var data = indication.ToArray();
                    string? Field(ServerRedirectionFlags flag) =>
                        ServerRedirection.TryGetField(data, flag, out var value, out _) ? System.Text.Encoding.Unicode.GetString(value).TrimEnd('\0') : null;
                    return (token, Field(ServerRedirectionFlags.UserName), Field(ServerRedirectionFlags.Password));
                }
            }
        }

        public async Task<ErrorInfoCode> ReadRefusalAsync()
        {
            while (true)
            {
                if (ErrorInfo(await ReadAsync()) is { } code)
                {
                    return code;
                }
            }
        }

        private static string? Redirection(byte[] frame)
        {
            if (frame[0] != TpktHeader.Version || !X224Data.TryUnwrapFrame(frame, out var payload, out _) || !McsSendData.TryParseIndication(payload, out _, out var data, out _)
                || !ServerRedirection.TryGetLoadBalanceInfo(data, out var info, out _))
            {
                return null;
            }

            var text = System.Text.Encoding.ASCII.GetString(info);
            Assert.StartsWith("Cookie: msts=", text, StringComparison.Ordinal);
            return text["Cookie: msts=".Length..].TrimEnd('\r', '\n');
        }

        private static ErrorInfoCode? ErrorInfo(byte[] frame)
        {
            if (frame[0] != TpktHeader.Version || !X224Data.TryUnwrapFrame(frame, out var payload, out _) || !McsSendData.TryParseIndication(payload, out _, out var data, out _)
                || !ShareDataHeader.TryParse(data, out var header, out _) || header.PduType2 != (ShareDataPduType)0x2F)
            {
                return null;
            }

            return (ErrorInfoCode)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data[ShareDataHeader.Size..]);
        }

        private static byte[] Indication(byte[] frame)
        {
            Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out var error), error?.ToString());
            Assert.True(McsSendData.TryParseIndication(payload, out _, out var data, out error), error?.ToString());
            return data.ToArray();
        }

        private async Task<byte[]> ReadAsync()
        {
            using var deadline = new CancellationTokenSource(Until.Backstop);
            var frame = await _reader.ReadAsync(deadline.Token);
            Assert.NotNull(frame);
            var bytes = frame.Value.Bytes;
            if (bytes[0] != TpktHeader.Version)
            {
                // fpOutputHeader, a one- or two-byte length, then the first update's header (updateCode in the low 4 bits).
                var header = (bytes[1] & 0x80) != 0 ? 3 : 2;
                if (bytes.Length > header && (bytes[header] & 0x0F) == 0x1)
                {
                    BitmapFrames++;
                }
            }

            return frame.Value.Bytes;
        }

        private async Task SendAsync(byte[] bytes)
        {
            await tls.WriteAsync(bytes);
            await tls.FlushAsync();
        }
    }
}
