using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The target leg with NLA: the gateway logs on to a real NLA host (FreeRDP's shadow server with a SAM file) by CredSSP
/// with the account the user's role maps to. The stock client signs in to the gateway with NLA (<c>xfreerdp3 /sec:nla</c>);
/// the session must reach the shadow server's capability exchange (its log shows the client's Confirm Active PDU, which
/// only happens after the shadow server accepted the gateway's CredSSP logon). A mapped account whose stored password
/// is wrong ends in the sign-in log with the reason and the fix.
/// </summary>
[Collection(RdpDesktopCollection.Name)]
public sealed class NlaHostTests(ITestOutputHelper output, NlaHostTests.Gateway gateway) : IClassFixture<NlaHostTests.Gateway>
{
    private const string Password = "Correct-Horse-9!";

    [Fact]
    public async Task AdministratorLogin_ToAnNlaHost_LogsOnWithCredSsp_AndReachesTheSession()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        var shadow = gateway.Shadow!;
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var client = StartNlaClient(display, "frank@contoso.test");
        try
        {
            LiveSession? session = null;
            await Wait.UntilAsync(
                () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == "frank@contoso.test")) is not null,
                Wait.Generous,
                "a live session of frank at the gateway",
                () => client.Transcript + Environment.NewLine + shadow.Log);
            Assert.Equal(Gateway.AdminAccount, session!.Grant.Credentials.UserName);

            // The client's session with the shadow server became active: past the gateway's CredSSP logon, MCS, Client
            // Info, licensing, the capability exchange and finalization, all relayed.
            await Wait.UntilAsync(
                () => client.Lines.Any(l => l.Contains("--> CONNECTION_STATE_ACTIVE", StringComparison.Ordinal)),
                Wait.Generous,
                "the client to reach CONNECTION_STATE_ACTIVE with the shadow server",
                () => client.Transcript + Environment.NewLine + shadow.Log);
            Assert.True(session.Counters.FromBackend > 0, "bytes came from the shadow server");
            var entry = await gateway.WaitForSignInAsync("frank@contoso.test", "success");
            Assert.Equal(session.Id, entry.SessionId);
            Assert.Equal(Gateway.AdminAccount, entry.TargetAccount);
            output.WriteLine($"Sign-in log: {entry.Result} {entry.Reason}; {session.Counters.FromBackend} bytes from the shadow server");
        }
        finally
        {
            await client.DisposeAsync();
        }
    }

    [Fact]
    public async Task UserLogin_ToAnNlaHost_WithAWrongStoredPassword_IsRefused_AndTheLogSaysHowToFixIt()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        var shadow = gateway.Shadow!;
        var refusedBefore = shadow.RefusedLogons;
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, "grace@contoso.test");

        var entry = await gateway.WaitForSignInAsync("grace@contoso.test", "failure");

        Assert.StartsWith("backend_logon_failed:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains(Gateway.UserAccount, entry.Reason, StringComparison.Ordinal);
        Assert.Contains("gatehouse host test vm1", entry.Fix, StringComparison.Ordinal);
        Assert.Contains("password", entry.Fix, StringComparison.Ordinal);
        Assert.Null(entry.SessionId);
        Assert.DoesNotContain(gateway.Sessions.List(), s => s.Grant.UserPrincipalName == "grace@contoso.test");
        await Wait.UntilAsync(() => shadow.RefusedLogons > refusedBefore, Wait.Generous, "the shadow server to log the refused logon", () => shadow.Log);
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason} | fix: {entry.Fix}");
    }

    private FreeRdpClient StartNlaClient(XvfbDisplay display, string userName)
    {
        var client = FreeRdpClient.Start(
            display.Display,
            [$"/v:vm1.gatehouse.test:{gateway.RdpPort}", "/sec:nla", $"/u:{userName}", $"/p:{Password}", "/cert:ignore", "/size:1024x768", "-clipboard"],
            new Dictionary<string, string>
            {
                ["OPENSSL_CONF"] = Gateway.OpenSslConfig(),

                // The connection state machine at DEBUG: the client logs "--> CONNECTION_STATE_ACTIVE" when the session is up.
                ["WLOG_FILTER"] = "com.freerdp.core.rdp:DEBUG",
            });
        output.WriteLine(client.CommandLine.Replace(Password, "***", StringComparison.Ordinal));
        return client;
    }

    /// <summary>
    /// One <c>gatehouse serve</c> host (web account and NLA on the client leg) with vm1 → a shadow server that requires
    /// NLA; frank (Administrator Login → the admin account, right password) and grace (User Login → the user account,
    /// whose password at the gateway is not the one in the shadow server's SAM file).
    /// </summary>
    public sealed class Gateway : IAsyncLifetime
    {
        public const string AdminAccount = "shadowadmin";
        public const string UserAccount = "shadowuser";
        private const string AdminPassword = "Shadow-Admin-1";
        private const string UserPassword = "Shadow-User-1";
        private string? _missing;
        private int _httpsPort;

        public WebApplication? App { get; private set; }

        internal ShadowHost? Shadow { get; private set; }

        public int RdpPort { get; private set; }

        public SessionRegistry Sessions => App!.Services.GetRequiredService<SessionRegistry>();

        /// <summary>An OpenSSL configuration activating the legacy provider (MD4 and RC4 for FreeRDP's NTLM).</summary>
        public static string OpenSslConfig()
        {
            var config = Path.Combine(Path.GetTempPath(), "gatehouse-e2e-openssl-legacy.cnf");
            File.WriteAllText(config, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n[default_sect]\nactivate = 1\n[legacy_sect]\nactivate = 1\n");
            return config;
        }

        public async Task InitializeAsync()
        {
            var missing = new[] { Peers.XFreeRdp, Peers.Xvfb, Peers.Stdbuf, Peers.ShadowServer }.Where(p => !File.Exists(p.Path)).ToList();
            if (missing.Count > 0)
            {
                _missing = string.Join("; ", missing.Select(p => $"{p.Name} is not installed ({p.Path}; Debian package {p.Package}): ./scripts/test.sh installs it"));
                return;
            }

            Peers.RequireTestHostNames();
            Shadow = await ShadowHost.StartAsync([(AdminAccount, AdminPassword), (UserAccount, UserPassword)], OpenSslConfig(), Wait.Generous);
            using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
            {
                probe.Start();
                _httpsPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            }

            App = GatehouseHost.Build(new HostSettings
            {
                Overrides = new Dictionary<string, string?>
                {
                    ["Gatehouse:DataDirectory"] = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N")),
                    ["Gatehouse:Urls"] = $"https://127.0.0.1:{_httpsPort}",
                    ["Gatehouse:RdpPort"] = "0",
                    ["Gatehouse:PublicName"] = $"login.gatehouse.test:{_httpsPort}",
                    ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla",
                },
                Console = new StringWriter(),
            });
            await App.StartAsync();
            RdpPort = GatehouseHost.RdpEndPoint(App).Port;

            await using var scope = App.Services.CreateAsyncScope();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var access = scope.ServiceProvider.GetRequiredService<AccessService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", Shadow.Port, BackendSecurity.Nla, AdminAccount, AdminPassword, UserAccount, "Not-" + UserPassword);
            foreach (var name in new[] { "frank", "grace" })
            {
                await directory.CreateUserAsync(tenant.Id, $"{name}@contoso.test", name, Password, temporary: false);
            }

            await access.AssignRoleAsync(tenant.Id, "Virtual Machine Administrator Login", "frank@contoso.test", "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "grace@contoso.test", "/hosts/vm1");
        }

        /// <summary>True when the peers are there; otherwise fails the test, or skips it when missing peers are allowed.</summary>
        public Task<bool> ReadyAsync(ITestOutputHelper output)
        {
            ArgumentNullException.ThrowIfNull(output);
            if (_missing is null)
            {
                return Task.FromResult(true);
            }

            if (Peers.AllowMissing)
            {
                output.WriteLine($"Not run: {_missing}.");
                return Task.FromResult(false);
            }

            Assert.Fail(_missing + $". Set {Peers.AllowMissingVariable}=1 to skip instead.");
            return Task.FromResult(false);
        }

        public async Task<SignInRecord> WaitForSignInAsync(string upn, string result)
        {
            SignInRecord? found = null;
            var deadline = DateTime.UtcNow + Wait.Generous;
            while (true)
            {
                await using (var scope = App!.Services.CreateAsyncScope())
                {
                    var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                    found = await db.SignIns.AsNoTracking().Where(s => s.UserPrincipalName == upn && s.Result == result && s.Protocol == "nla")
                        .OrderByDescending(s => s.Sequence).FirstOrDefaultAsync();
                }

                if (found is not null)
                {
                    return found;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"Timed out after {Wait.Generous.TotalSeconds:0} s waiting for a {result} nla sign-in of {upn}.{Environment.NewLine}{Shadow?.Log}");
                }

                await Task.Delay(250);
            }
        }

        public async Task DisposeAsync()
        {
            if (App is not null)
            {
                await App.StopAsync();
                await App.DisposeAsync();
            }

            if (Shadow is not null)
            {
                await Shadow.DisposeAsync();
            }
        }
    }
}
