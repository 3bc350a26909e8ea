using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.Tests.Tls;
using Gatehouse.Gateway.Tls;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Gateway.Tests.Hold;

/// <summary>
/// TLS sign-ins on the hold screen's front, in process: the password proven on the front and handed over with a
/// one-time secret that the reconnect must send back inside TLS; the QR sign-in (a fake device-code directory) approved,
/// denied, or left; a wrong password refused at once with no screen; and a routing token without its secret refused.
/// The reconnects go through the real TLS sign-in to a stub host that records the injected account.
/// </summary>
public sealed class TlsHoldTests
{
    private static readonly Guid HostId = Guid.NewGuid();

    [Fact]
    public async Task Password_OnTheFront_HandsOverWithASecret_AndTheReconnectIsRelayedWithTheMappedAccount()
    {
        await using var host = TlsStubHost.Start();
        var directory = Directory(host);
        await using var gateway = await StartAsync(directory, SignInMethods.Tls);

        var (token, user, secret) = await HoldAsync(gateway, "Correct-Horse-1", client => client.ReadHandoverAsync());
        Assert.Matches("^[A-Z2-7]{32}$", token);
        Assert.Equal("alice@contoso.test", user);
        Assert.Matches("^[A-Z2-7]{32}$", secret);
        Assert.NotEqual(token, secret);
        Assert.Empty(host.ClientInfos); // The host saw nothing of the held sign-in.
        var handedOver = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.True(handedOver.Succeeded, handedOver.Reason);
        Assert.Equal("tls", handedOver.Protocol);
        Assert.StartsWith("handed_over: alice@contoso.test signed in with pwd on the hold screen's TLS sign-in", handedOver.Reason, StringComparison.Ordinal);
        Assert.Equal(["alice@contoso.test Correct-Horse-1"], directory.PasswordChecks);

        // The reconnect (as FreeRDP sends it: the redirection's user name and password) is relayed to the host with the
        // mapped account, whatever name it connects with; the password is not checked again.
        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { RoutingToken = token, User = user!, Password = secret!, ServerName = "gateway.test" });
        Assert.Equal(TlsTestClient.Capture("s2c-011-demand-active.bin"), outcome.Frames[^1]);
        var info = Assert.Single(host.ClientInfos);
        Assert.Equal("vmuser", info.Packet.UserName);
        Assert.Equal("host-secret", info.Packet.Password);
        var signedIn = (await gateway.SignInLog.WaitForAsync(2))[1];
        Assert.True(signedIn.Succeeded, signedIn.Reason);
        Assert.Equal(["pwd"], signedIn.Methods);
        Assert.Equal("vm1", signedIn.HostName);
        Assert.Single(directory.PasswordChecks);
    }

    [Fact]
    public async Task RoutingToken_WithoutItsSecret_IsRefused_AndSpent_AndTheHostGetsNothing()
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host), SignInMethods.Tls);
        var (token, user, _) = await HoldAsync(gateway, "Correct-Horse-1", client => client.ReadHandoverAsync());

        // Someone who saw the routing token before TLS, but not the secret inside it, tries it first.
        var stolen = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { RoutingToken = token, User = user!, Password = "guessed", ServerName = "vm1.gatehouse.test" });
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, stolen.Refusal.ErrorInfo);
        var refused = (await gateway.SignInLog.WaitForAsync(2))[1];
        Assert.False(refused.Succeeded);
        Assert.StartsWith("handover_proof_failed: the reconnect's Client Info PDU does not carry the handover's secret", refused.Reason, StringComparison.Ordinal);
        Assert.Equal(SignInMessages.CredentialsDidNotWork, refused.UserMessage);
        Assert.Empty(host.ClientInfos);

        // The token is spent: the user's own reconnect is an ordinary connection now (held again, nothing handed over).
        Assert.Equal(RoutingTokenRefusal.Unknown, gateway.Services.GetRequiredService<RoutingTokens>().TryRedeem(token, IPAddress.Loopback, out _));
    }

    [Fact]
    public async Task WrongPassword_OnTheFront_IsRefusedAtOnce_WithNoScreen_AndOneRow()
    {
        await using var host = TlsStubHost.Start();
        await using var gateway = await StartAsync(Directory(host), SignInMethods.Tls);
        var (ended, bitmaps) = await HoldAsync(gateway, "wrong", async client => (await client.ReadRefusalAsync(), client.BitmapFrames));
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, ended);
        Assert.Equal(0, bitmaps); // Nothing painted for someone who does not know the password.
        var entry = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("tls", entry.Protocol);
        Assert.Equal(0, host.Connections);
    }

    [Fact]
    public async Task Password_WithAnMfaPolicy_AsksForTheCode_ThenHandsOverWithMfa()
    {
        await using var host = TlsStubHost.Start();
        var directory = Directory(host);
        var codes = new HoldPhaseTests.FakeHoldDirectory();
        await using var gateway = await StartAsync(directory, SignInMethods.Tls, codes, authorizer: new MfaAuthorizer(directory.Grant!));
        var (token, _, secret) = await HoldAsync(gateway, "Correct-Horse-1", async client =>
        {
            await client.TypeAsync(HoldPhaseTests.RightCode);
            return await client.ReadHandoverAsync();
        });
        Assert.NotNull(secret);
        Assert.Equal([HoldPhaseTests.RightCode], codes.Checked);
        var handedOver = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.Equal(["pwd", "mfa", "otp"], handedOver.Methods);

        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { RoutingToken = token, Password = secret!, ServerName = "vm1.gatehouse.test" });
        Assert.Equal(TlsTestClient.Capture("s2c-011-demand-active.bin"), outcome.Frames[^1]);
        var signedIn = (await gateway.SignInLog.WaitForAsync(2))[1];
        Assert.True(signedIn.Succeeded, signedIn.Reason);
        Assert.Contains("mfa", signedIn.Methods);
    }

    [Fact]
    public async Task QrSignIn_ApprovedOnThePhone_HandsOver_WithThePhonesMethods_AndTheReconnectSignsIn()
    {
        await using var host = TlsStubHost.Start();
        var qr = new FakeQrSignIn();
        await using var gateway = await StartAsync(Directory(host), SignInMethods.QrSignIn, qr: qr);

        var (token, user, secret) = await HoldAsync(gateway, string.Empty, async client =>
        {
            Assert.True(await client.ReadBitmapsAsync() > 0); // The QR screen.
            Assert.Equal("vm1", qr.AskedFor);
            await gateway.Time.AdvanceWhenArmedAsync(FakeQrSignIn.Interval); // A poll: still pending.
            await Until.TrueAsync(() => qr.Polls == 1, "the first poll");
            qr.Approve();
            await gateway.Time.AdvanceWhenArmedAsync(FakeQrSignIn.Interval);
            return await client.ReadHandoverAsync();
        });
        Assert.Equal("alice@contoso.test", user);
        var handedOver = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.True(handedOver.Succeeded, handedOver.Reason);
        Assert.Equal(["pwd", "mfa"], handedOver.Methods);
        Assert.StartsWith("handed_over: alice@contoso.test signed in with pwd mfa", handedOver.Reason, StringComparison.Ordinal);

        var outcome = await TlsTestClient.RunAsync(gateway.Port, new TlsClientOptions { RoutingToken = token, User = user!, Password = secret!, ServerName = "vm1.gatehouse.test" });
        Assert.Equal(TlsTestClient.Capture("s2c-011-demand-active.bin"), outcome.Frames[^1]);
        Assert.Equal("vmuser", Assert.Single(host.ClientInfos).Packet.UserName);
        var signedIn = (await gateway.SignInLog.WaitForAsync(2))[1];
        Assert.True(signedIn.Succeeded, signedIn.Reason);
        Assert.Equal(["pwd", "mfa"], signedIn.Methods);
    }

    [Fact]
    public async Task QrSignIn_AnsweredNo_ShowsTheRefusal_AndLeavesTheRowToTheIdentityProvider()
    {
        await using var host = TlsStubHost.Start();
        var qr = new FakeQrSignIn();
        await using var gateway = await StartAsync(Directory(host), SignInMethods.QrSignIn, qr: qr);
        var ended = await HoldAsync(gateway, string.Empty, async client =>
        {
            Assert.True(await client.ReadBitmapsAsync() > 0);
            qr.Deny();
            await gateway.Time.AdvanceWhenArmedAsync(FakeQrSignIn.Interval);

            // The key only once the poll has seen the denial: a key that reaches the QR screen before its timer's
            // continuation runs does nothing there (keys do nothing on that screen), and the refusal would wait for another.
            await Until.TrueAsync(() => qr.Polls == 1, "the gateway to poll the QR sign-in");
            Assert.True(await client.ReadBitmapsAsync() > 0); // The refusal screen (or the QR screen's last frames).
            await client.KeysAsync([0x1C]);
            return await client.ReadRefusalAsync();
        });
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, ended);

        // Nobody was named on this connection: the denial's row is the identity provider's (the user who answered no).
        await Until.TrueAsync(() => gateway.Services.GetRequiredService<HoldPhase>().Held == 0, "the held client to be let go");
        await gateway.WaitIdleAsync();
        Assert.Empty(gateway.SignInLog.Entries);
        Assert.Equal(0, host.Connections);
    }

    [Fact]
    public async Task QrSignIn_ClientLeaves_LeavesNoRow_AndFreesItsPlace()
    {
        await using var host = TlsStubHost.Start();
        var qr = new FakeQrSignIn();
        await using var gateway = await StartAsync(Directory(host), SignInMethods.QrSignIn, qr: qr);
        await HoldAsync(gateway, string.Empty, async client =>
        {
            Assert.True(await client.ReadBitmapsAsync() > 0);
            return 0;
        });
        await Until.TrueAsync(() => gateway.Services.GetRequiredService<HoldPhase>().Held == 0, "the held client to be let go");
        await gateway.WaitIdleAsync();
        Assert.Empty(gateway.SignInLog.Entries);
    }

    private static async Task<T> HoldAsync<T>(GatewayHost gateway, string password, Func<HoldPhaseTests.HoldTestClient, Task<T>> act)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, gateway.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(TlsTestClient.Capture("c2s-000-x224-connection-request.bin"));
        var confirm = await TlsTestClient.ReadFrameAsync(stream);
        Assert.True(ConnectionConfirm.TryParse(confirm, out var parsed, out _));
        Assert.Equal(SecurityProtocol.Ssl, parsed.Result!.Value.SelectedProtocol);
        await using var tls = new SslStream(stream, false, (_, certificate, _, _) => certificate is not null);
        await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
        var client = new HoldPhaseTests.HoldTestClient(tls, password, SecurityProtocol.Ssl);
        await client.ConnectAsync();
        return await act(client);
    }

    private static FakeNlaDirectory Directory(TlsStubHost host) => new()
    {
        HostLeg = new PasswordHostLeg(HostId, "vm1", new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "gatehouse")),
        Grant = new SessionGrant
        {
            TenantId = FakeNlaDirectory.Account.TenantId,
            UserId = FakeNlaDirectory.Account.UserId,
            UserPrincipalName = "alice@contoso.test",
            HostId = HostId,
            HostName = "vm1",
            RoleName = "Virtual Machine User Login",
            Backend = new BackendTarget("127.0.0.1", host.Port, SecurityProtocol.Ssl, "vmuser"),
            Credentials = new InjectedCredentials("VM1", "vmuser", "host-secret"),
            Methods = ["pwd"],
        },
    };

    private static Task<GatewayHost> StartAsync(FakeNlaDirectory directory, SignInMethods methods, HoldPhaseTests.FakeHoldDirectory? codes = null, ISignInAuthorizer? authorizer = null, FakeQrSignIn? qr = null)
    {
        var options = new GatewayOptions { SignInMethods = SignInMethods.WebAccount | methods, ClientInfoTimeout = TimeSpan.FromSeconds(30) };
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<INlaDirectory>(directory);
            services.AddSingleton(authorizer ?? directory);
            services.AddSingleton<ISignInMethod, TlsAuthenticator>();
            services.AddSingleton<IHoldDirectory>(codes ?? new HoldPhaseTests.FakeHoldDirectory());
            if (qr is not null)
            {
                services.AddSingleton<IQrSignInDirectory>(qr);
            }

            services.AddSingleton(new HoldScreenPainter(new HoldScreenAppearance()));
            services.AddSingleton(sp => new RoutingTokens(sp.GetRequiredService<TimeProvider>(), TimeSpan.FromSeconds(30), 100));
            services.AddSingleton<HoldPhase>();
        });
    }

    /// <summary>Allows the grant once <c>mfa</c> is among the methods; before, a policy MFA would satisfy refuses.</summary>
    private sealed class MfaAuthorizer(SessionGrant grant) : ISignInAuthorizer
    {
        public Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken) =>
            Task.FromResult(subject.Methods.Contains("mfa")
                ? AccessOutcome.Allow("allowed with mfa", grant)
                : AccessOutcome.Deny(SignInFailure.AccessDenied, "policy_control_missing: Require MFA requires mfa") with { MfaWouldSatisfy = true, HostId = grant.HostId });
    }

    /// <summary>A device-code directory whose sign-in the test approves or denies.</summary>
    private sealed class FakeQrSignIn : IQrSignInDirectory
    {
        public static readonly TimeSpan Interval = TimeSpan.FromSeconds(7);
        private int _polls;
        private volatile QrSignInState _state = QrSignInState.Pending;

        public string? AskedFor { get; private set; }

        public int Polls => Volatile.Read(ref _polls);

        public void Approve() => _state = QrSignInState.Approved;

        public void Deny() => _state = QrSignInState.Denied;

        public Task<QrSignInStart?> BeginAsync(string? hostLabel, IPAddress client, TimeSpan lifetime, CancellationToken cancellationToken)
        {
            AskedFor = hostLabel;
            return Task.FromResult<QrSignInStart?>(new QrSignInStart("BCDF-GHJK", "https://login.test/devicelogin", "https://login.test/devicelogin?otc=BCDFGHJK", "device-secret", Interval, hostLabel));
        }

        public Task<QrSignInPoll> PollAsync(QrSignInStart started, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _polls);
            var state = _state;
            return Task.FromResult(state == QrSignInState.Approved
                ? new QrSignInPoll(state, new SignInSubject
                {
                    TenantId = FakeNlaDirectory.Account.TenantId,
                    UserId = FakeNlaDirectory.Account.UserId,
                    UserPrincipalName = "alice@contoso.test",
                    Methods = ["pwd", "mfa"],
                    AuthenticatedAt = DateTimeOffset.UnixEpoch,
                })
                : new QrSignInPoll(state));
        }
    }
}
