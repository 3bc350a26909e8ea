using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The whole product with real peers: the stock FreeRDP 3 client (<c>xfreerdp3 /sec:aad</c> under Xvfb) prints the
/// IdP's sign-in URL, the test signs in on the IdP's pages and pastes the redirect URL back, the client signs in to
/// the gateway with its PoP-bound token, and the gateway logs on to the real xrdp with the account the user's role
/// maps to. The desktop must appear (a screenshot of the client's display that is not blank) and belong to that
/// account (its processes run on the host); a user without a role sees the gateway's refusal screen with the
/// sign-in log's reason and reference id.
/// </summary>
[Collection(RdpDesktopCollection.Name)]
public sealed partial class GatewayDesktopTests(ITestOutputHelper output, GatewayDesktopTests.Gateway gateway) : IClassFixture<GatewayDesktopTests.Gateway>
{
    private const string Password = "Correct-Horse-9!";

    [Fact]
    public async Task UserLogin_LandsOnTheXrdpDesktop_AsTheHostsUserAccount()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await ReachDesktopAsync("alice@contoso.test", gateway.Xrdp!.UserAccount, "Virtual Machine User Login");
    }

    [Fact]
    public async Task AdministratorLogin_LandsOnTheXrdpDesktop_AsTheHostsAdminAccount()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await ReachDesktopAsync("bob@contoso.test", gateway.Xrdp!.AdminAccount, "Virtual Machine Administrator Login");
    }

    /// <summary>
    /// A right web-account sign-in without a role: the gateway answers the RDS AAD request with success and paints its
    /// refusal screen in the client's window: the seeds' words, what to do, and the sign-in log's reference id. The
    /// screenshot is compared pixel by pixel with the painter's own rendering of that row (so the words, the fix and the
    /// reference id on the screen are the row's); a key ends it with Set Error Info, which FreeRDP reports.
    /// </summary>
    [Fact]
    public async Task NoRole_ShowsTheRefusalScreen_WithTheSeedsWords_AndTheRowsReferenceId()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Import, Peers.XDoTool))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartClient(display);
        await SignInAndPasteAsync(client, "carol@contoso.test");

        await WaitForHoldScreenAsync(display, client, "refusal");
        var entry = await WaitForSignInAsync("carol@contoso.test", "failure");
        Assert.StartsWith("no_role_assignment:", entry.Reason, StringComparison.Ordinal);
        Assert.Contains("Your account is configured to prevent you from using this device", entry.UserMessage, StringComparison.Ordinal);
        Assert.Contains("Virtual Machine User Login", entry.Fix, StringComparison.Ordinal);
        Assert.Equal($"0x{(uint)Gatehouse.Protocol.Rdp.ErrorInfoCode.ServerInsufficientPrivileges:X8}", entry.Code);
        Assert.Null(entry.SessionId);

        // What the painter draws for this row, against what the client shows.
        var expected = Framebuffer.Create(1024, 768);
        new HoldScreenPainter(new HoldScreenAppearance()).Paint(expected, new RefusalView(entry.UserMessage!, entry.Fix!, entry.CorrelationId));
        var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", "hold-refusal-compared.png");
        var differing = int.MaxValue;
        await Wait.UntilAsync(
            async () => (differing = await Screenshot.DifferingPixelsAsync(await Screenshot.TakeAsync(display.Display, shot), expected.Width, expected.Height, expected.Pixels.ToArray())) < 64,
            Wait.Generous,
            "the refusal screen of this row in the client's window",
            () => $"{differing} pixels differ; {client.Transcript}");
        output.WriteLine($"Refusal screen: {differing} of {1024 * 768} pixels differ from the painter's rendering; reference id {entry.CorrelationId}.");

        await LastKeyAsync(display, "Return");
        await client.WaitForLineAsync(InsufficientPrivilegesLine(), Wait.Generous, "the client to report the Set Error Info PDU");
        output.WriteLine($"Sign-in log: {entry.Result} {entry.Code} {entry.Reason}");
    }

    [Fact]
    public async Task RoleRemovedDuringTheSession_TheNextReevaluationEndsIt()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartClient(display);
        await SignInAndPasteAsync(client, "dave@contoso.test");
        var session = await WaitForLiveSessionAsync("dave@contoso.test", client);

        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var dave = await db.Users.SingleAsync(u => u.UserPrincipalName == "dave@contoso.test");
            Assert.Equal(1, await db.RoleAssignments.Where(a => a.PrincipalId == dave.Id).ExecuteDeleteAsync());
        }

        var ended = await gateway.App!.Services.GetRequiredService<Gatehouse.Gateway.LiveSessionReevaluator>().ReevaluateAllAsync(CancellationToken.None);
        Assert.Equal(1, ended);
        var record = await WaitForSessionEndAsync("dave@contoso.test");
        Assert.Equal(session.Id, record.Id);
        Assert.StartsWith("access_revoked: no_role_assignment:", record.EndReason, StringComparison.Ordinal);
        await Wait.UntilAsync(() => client.HasExited || gateway.Sessions.Find(session.Id) is null, Wait.Generous, "the session to end at the gateway");
    }

    [Fact]
    public async Task SessionsKill_FromTheStore_EndsTheSessionOnThisNode_AtTheWatchersNextPoll()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartClient(display);
        await SignInAndPasteAsync(client, "erin@contoso.test");
        var session = await WaitForLiveSessionAsync("erin@contoso.test", client);

        // The registry holds the session a moment before its start record is written; a kill names a stored session
        // (as `sessions list` shows them), so wait for the record first.
        await WaitAsync(
            async () =>
            {
                await using var scope = gateway.App!.Services.CreateAsyncScope();
                return (await scope.ServiceProvider.GetRequiredService<SessionStore>().ListLiveAsync()).Any(s => s.Id == session.Id);
            },
            "the session's start record in the store");

        var requested = DateTime.UtcNow;
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            Assert.True(await scope.ServiceProvider.GetRequiredService<SessionStore>().RequestKillAsync(session.Id));
        }

        await Wait.UntilAsync(() => gateway.Sessions.Find(session.Id) is null, Wait.Generous, "the killed session to leave the registry");
        var took = DateTime.UtcNow - requested;
        output.WriteLine($"Killed after {took.TotalMilliseconds:0} ms");

        // The kill watcher polls every 0.5 s; the only other thing that could end the session, reevaluation, runs every
        // 60 s. A bound far from both says the kill came through the watcher, whatever the machine's load.
        Assert.True(took < Gatehouse.Gateway.SessionKillWatcher.Interval * 40, $"a kill takes effect at the watcher's next poll, long before a reevaluation (took {took.TotalSeconds:0.0} s)");
        var record = await WaitForSessionEndAsync("erin@contoso.test");
        Assert.StartsWith("killed:", record.EndReason, StringComparison.Ordinal);
    }

    /// <summary>
    /// The password path: the stock client with NLA (<c>/sec:nla</c>, MD4/RC4 from OpenSSL's legacy provider) and each
    /// accepted user-name form reaches the desktop as the role's account.
    /// </summary>
    [Theory]
    [InlineData("frank@contoso.test")]
    [InlineData("AzureAD\\frank@contoso.test")]
    [InlineData(".\\EntraID\\frank@contoso.test")]
    public async Task Nla_PasswordSignIn_LandsOnTheXrdpDesktop_AsTheRolesAccount(string userName)
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var client = StartNlaClient(display, userName, Password);
        try
        {
            var session = await WaitForLiveSessionAsync("frank@contoso.test", client);
            var toSession = clock.Elapsed;
            Assert.Equal(gateway.Xrdp!.AdminAccount, session.Grant.Credentials.UserName);
            Assert.Equal("nla", session.Protocol);
            var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", $"nla-desktop-{gateway.Xrdp.AdminAccount}.png");
            await WaitAsync(
                async () => await Screenshot.DistinctColoursAsync(await Screenshot.TakeAsync(display.Display, shot)) >= 2,
                "the xrdp desktop on the NLA client's display",
                () => client.Transcript);
            await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp.AdminAccount).Count > 0, Wait.Generous, "a process of the admin account on the host");

            // Figures for the record, beside the hold screen's (GatewayDesktopPolicyTests): a direct NLA sign-in in this run.
            output.WriteLine($"Direct NLA: client start to session {toSession.TotalSeconds:0.0} s, to a process of the account on the host {clock.Elapsed.TotalSeconds:0.0} s.");
        }
        finally
        {
            await client.DisposeAsync();
        }

        await WaitForSessionEndAsync("frank@contoso.test");
    }

    [Fact]
    public async Task Nla_WrongPassword_IsRefusedWithLogonFailure_AndLogged()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, "frank@contoso.test", "Not-The-Password-1");
        var entry = await WaitForSignInAsync("frank@contoso.test", "failure", "nla");
        Assert.Equal("0xC000006D", entry.Code, ignoreCase: true);
        Assert.Null(entry.SessionId);
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason}");
    }

    [Fact]
    public async Task Nla_DomainBackslashUser_IsRefused_WithTheEntraJoinedSentence()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, "CONTOSO\\frank", Password);
        SignInRecord? found = null;
        await WaitAsync(
            async () =>
            {
                await using var scope = gateway.App!.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                found = await db.SignIns.AsNoTracking().Where(s => s.Protocol == "nla" && s.Result == "failure" && s.Reason.Contains("Microsoft Entra joined"))
                    .OrderByDescending(s => s.Sequence).FirstOrDefaultAsync();
                return found is not null;
            },
            "the sign-in log entry refusing CONTOSO\\frank",
            () => client.Transcript);
        Assert.Contains("try using your work email address", found!.Reason + " " + found.UserMessage, StringComparison.Ordinal);
    }

    /// <summary>
    /// TLS sign-in with the real FreeRDP client (/sec:tls, the password in the Client Info PDU) through the gateway to
    /// the real xrdp: the desktop appears, logged on as the role's account.
    /// </summary>
    [Fact]
    public async Task Tls_PasswordSignIn_LandsOnTheXrdpDesktop_AsTheRolesAccount()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var client = StartTlsClient(display, "frank@contoso.test", Password);
        try
        {
            var session = await WaitForLiveSessionAsync("frank@contoso.test", client);
            Assert.Equal(gateway.Xrdp!.AdminAccount, session.Grant.Credentials.UserName);
            Assert.Equal("tls", session.Protocol);
            var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", $"tls-desktop-{gateway.Xrdp.AdminAccount}.png");
            await WaitAsync(
                async () => await Screenshot.DistinctColoursAsync(await Screenshot.TakeAsync(display.Display, shot)) >= 2,
                "the xrdp desktop on the TLS client's display",
                () => client.Transcript);
            await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp.AdminAccount).Count > 0, Wait.Generous, "a process of the admin account on the host");
            var entry = await WaitForSignInAsync("frank@contoso.test", "success", "tls");
            Assert.Equal(session.Id, entry.SessionId);

            // The hold screen took the sign-in on its own front and handed the client over (a Server Redirection with a
            // one-time secret that FreeRDP sent back in its Client Info PDU): the host saw only the signed-in client.
            await using var scope = gateway.App!.Services.CreateAsyncScope();
            var rows = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking()
                .Where(s => s.UserPrincipalName == "frank@contoso.test" && s.Protocol == "tls" && s.Sequence < entry.Sequence).OrderByDescending(s => s.Sequence).ToListAsync();
            Assert.StartsWith("handed_over: frank@contoso.test signed in with pwd", rows[0].Reason, StringComparison.Ordinal);
            output.WriteLine($"Sign-in log: {rows[0].Reason} | {entry.Reason}");
        }
        finally
        {
            await client.DisposeAsync();
        }

        await WaitForSessionEndAsync("frank@contoso.test");
    }

    [Fact]
    public async Task Tls_WrongPassword_IsRefusedWithTheErrorInfo_AndLogged()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartTlsClient(display, "frank@contoso.test", "Not-The-Password-1");
        var entry = await WaitForSignInAsync("frank@contoso.test", "failure", "tls");
        Assert.StartsWith("bad_password:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("0x00000007", entry.Code);
        Assert.Null(entry.SessionId);
        await Wait.UntilAsync(() => client.Transcript.Contains("ERRINFO_SERVER_DENIED_CONNECTION", StringComparison.Ordinal), Wait.Generous, "FreeRDP reporting the Set Error Info PDU", () => client.Transcript);
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason}");
    }

    private FreeRdpClient StartTlsClient(XvfbDisplay display, string userName, string password)
    {
        var client = FreeRdpClient.Start(
            display.Display,
            [$"/v:vm1.gatehouse.test:{gateway.RdpPort}", "/sec:tls", $"/u:{userName}", $"/p:{password}", "/cert:ignore", "/size:1024x768", "-clipboard"]);
        output.WriteLine(client.CommandLine.Replace(password, "***", StringComparison.Ordinal));
        return client;
    }

    private FreeRdpClient StartNlaClient(XvfbDisplay display, string userName, string password, string target = "vm1.gatehouse.test")
    {
        var config = Path.Combine(Path.GetTempPath(), "gatehouse-e2e-openssl-legacy.cnf");
        File.WriteAllText(config, "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\ndefault = default_sect\nlegacy = legacy_sect\n[default_sect]\nactivate = 1\n[legacy_sect]\nactivate = 1\n");
        var client = FreeRdpClient.Start(
            display.Display,
            [$"/v:{target}:{gateway.RdpPort}", "/sec:nla", $"/u:{userName}", $"/p:{password}", "/cert:ignore", "/size:1024x768", "-clipboard"],
            new Dictionary<string, string> { ["OPENSSL_CONF"] = config });
        output.WriteLine(client.CommandLine.Replace(password, "***", StringComparison.Ordinal));
        return client;
    }

    private async Task<LiveSession> WaitForLiveSessionAsync(string upn, FreeRdpClient client)
    {
        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
            Wait.Generous,
            $"a live session of {upn} at the gateway",
            () => client.Transcript);
        return session!;
    }

    private async Task ReachDesktopAsync(string upn, string account, string role)
    {
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var blank = await Screenshot.DistinctColoursAsync(await Screenshot.TakeAsync(display.Display, Path.Combine(AppContext.BaseDirectory, "screenshots", $"blank-{account}.png")));
        Assert.Equal(1, blank);
        var client = StartClient(display);
        try
        {
            await SignInAndPasteAsync(client, upn);

            // The gateway holds a live session for the user with the mapped account…
            LiveSession? session = null;
            await Wait.UntilAsync(
                () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
                Wait.Generous,
                $"a live session of {upn} at the gateway",
                () => client.Transcript);
            Assert.Equal(account, session!.Grant.Credentials.UserName);
            Assert.Equal(role, session.Grant.RoleName);

            // …xrdp logs that account on (its session's processes run as it)…
            await Wait.UntilAsync(
                () => XrdpHost.ProcessesOf(account).Count > 0,
                Wait.Generous,
                $"a process of {account} on the xrdp host",
                () => client.Transcript);
            output.WriteLine($"Processes of {account}: {string.Join(", ", XrdpHost.ProcessesOf(account).Distinct())}");

            // …and the desktop shows in the client's window: the display, one colour while blank, now shows more (the
            // session's terminal prompt on the black X root).
            var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", $"desktop-{account}.png");
            var colours = 0;
            await WaitAsync(
                async () =>
                {
                    await Screenshot.TakeAsync(display.Display, shot);
                    colours = await Screenshot.DistinctColoursAsync(shot);
                    return colours >= 2;
                },
                "the xrdp desktop on the client's display (the screenshot stays one colour)",
                () => client.Transcript);
            output.WriteLine($"Screenshot: {shot} ({colours} colours; {session.Counters.FromClient} bytes from the client, {session.Counters.FromBackend} from the host)");

            var entry = await WaitForSignInAsync(upn, "success");
            Assert.Equal(session.Id, entry.SessionId);
            Assert.Equal(account, entry.TargetAccount);
            Assert.Equal(role, entry.RoleName);
            Assert.Equal("web_account", entry.Protocol);
        }
        finally
        {
            await client.DisposeAsync();
        }

        // Closing the client ends the session, and the end record says so.
        var ended = await WaitForSessionEndAsync(upn);
        Assert.True(ended.BytesFromBackend > 1000 && ended.BytesFromClient > 1000, $"{ended.BytesFromClient} bytes from the client, {ended.BytesFromBackend} from the host");
        Assert.StartsWith("client_closed", ended.EndReason, StringComparison.Ordinal);
    }

    private FreeRdpClient StartClient(XvfbDisplay display)
    {
        var client = FreeRdpClient.Start(display.Display, [
            $"/v:vm1.gatehouse.test:{gateway.RdpPort}",
            "/sec:aad",
            $"/azure:ad:{gateway.PublicName}",
            "/cert:ignore",
            "/size:1024x768",
            "/bpp:24",
            "-clipboard",
            "+auto-reconnect",
        ]);
        output.WriteLine(client.CommandLine);
        return client;
    }

    private Task SignInAndPasteAsync(FreeRdpClient client, string upn) => SignInAndPasteAsync(gateway, client, upn, Password);

    /// <summary>
    /// The web-account sign-in FreeRDP asks for: opens the address it prints, signs in as <paramref name="upn"/>, allows
    /// the consent and pastes the redirect URL back into the client.
    /// </summary>
    /// <param name="gateway">The fixture's server.</param>
    /// <param name="client">The client waiting for the redirect URL.</param>
    /// <param name="upn">Who signs in.</param>
    /// <param name="password">Their password.</param>
    /// <param name="consented">True when the user has consented before (in an earlier test of the same fixture): no consent page then.</param>
    internal static async Task SignInAndPasteAsync(Gateway gateway, FreeRdpClient client, string upn, string password, bool consented = false)
    {
        var browse = await client.WaitForLineAsync(BrowseTo(), Wait.Generous, "the 'Browse to:' line");
        var authorize = new Uri(browse.Groups[1].Value);
        using var browser = new SignInBrowser(gateway.BaseAddress, gateway.CertificateThumbprint);
        await browser.OpenAsync(authorize.PathAndQuery);
        await browser.SubmitAsync(("username", upn));
        await browser.SubmitAsync(("password", password));
        if (!consented)
        {
            Assert.True(browser.Shows("consent"), $"the consent page after the password; got: {browser.Error ?? browser.Html[..Math.Min(400, browser.Html.Length)]}");
            await browser.SubmitAsync(("consent", "allow"));
        }

        var redirect = WebUtility.HtmlDecode(RedirectUrl().Match(browser.Html).Groups[1].Value);
        Assert.StartsWith("ms-appx-web://Microsoft.AAD.BrokerPlugin/", redirect, StringComparison.Ordinal);
        await client.WriteLineAsync(redirect);
    }

    private async Task<SignInRecord> WaitForSignInAsync(string upn, string result, string protocol = "web_account")
    {
        SignInRecord? found = null;
        await WaitAsync(
            async () =>
            {
                await using var scope = gateway.App!.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                found = await db.SignIns.AsNoTracking().Where(s => s.UserPrincipalName == upn && s.Result == result && s.Protocol == protocol)
                    .OrderByDescending(s => s.Sequence).FirstOrDefaultAsync();
                return found is not null;
            },
            $"a {result} {protocol} sign-in log entry of {upn}");
        return found!;
    }

    private async Task<SessionRecord> WaitForSessionEndAsync(string upn)
    {
        SessionRecord? found = null;
        await WaitAsync(
            async () =>
            {
                await using var scope = gateway.App!.Services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                found = await db.Sessions.AsNoTracking().Where(s => s.UserPrincipalName == upn && s.EndedAt != null).OrderByDescending(s => s.StartedAt).FirstOrDefaultAsync();
                return found is not null;
            },
            $"the end record of {upn}'s session");
        return found!;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what, Func<string>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + Wait.Generous;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {Wait.Generous.TotalSeconds:0} s waiting for {what}.{(diagnostics is null ? string.Empty : Environment.NewLine + diagnostics())}");
            }

            await Task.Delay(250);
        }
    }

    [GeneratedRegex(@"Browse to: (https://\S+)")]
    private static partial Regex BrowseTo();

    [GeneratedRegex("id=\"redirect-url\">([^<]+)<")]
    private static partial Regex RedirectUrl();

    [GeneratedRegex("ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES|0x00000009", RegexOptions.IgnoreCase)]
    private static partial Regex InsufficientPrivilegesLine();

    /// <summary>
    /// One <c>gatehouse serve</c> host for the class: the IdP on HTTPS and the gateway's RDP listener, with vm1 → the
    /// real xrdp, alice (User Login on vm1), bob (Administrator Login on /) and carol (no role).
    /// </summary>
    public sealed class Gateway : IAsyncLifetime
    {
        private string? _missing;

        public WebApplication? App { get; private set; }

        public XrdpHost? Xrdp { get; private set; }

        public int RdpPort { get; private set; }

        public string PublicName { get; private set; } = string.Empty;

        public Uri BaseAddress { get; private set; } = new("https://localhost/");

        public string CertificateThumbprint { get; private set; } = string.Empty;

        /// <summary>The server certificate's SHA-256 (hex), as host enrolment tokens carry it.</summary>
        public string CertificateSha256 { get; private set; } = string.Empty;

        /// <summary>The server's data directory (its SQLite store and Data Protection keys), for the admin commands.</summary>
        public string DataDirectory { get; private set; } = string.Empty;

        public SessionRegistry Sessions => App!.Services.GetRequiredService<SessionRegistry>();

        public async Task InitializeAsync()
        {
            var missing = new[] { Peers.XFreeRdp, Peers.Xvfb, Peers.Stdbuf, Peers.Xrdp, Peers.Import }.Where(p => !File.Exists(p.Path)).ToList();
            if (missing.Count > 0)
            {
                _missing = string.Join("; ", missing.Select(p => $"{p.Name} is not installed ({p.Path}; Debian package {p.Package}): ./scripts/test.sh installs it"));
                return;
            }

            Peers.RequireTestHostNames();
            Xrdp = XrdpHost.FromEnvironment();
            if (!await Xrdp.IsListeningAsync())
            {
                _missing = $"xrdp is not listening on 127.0.0.1:{Xrdp.Port}: ./scripts/test.sh starts it";
                return;
            }

            var port = LoopbackPorts.Next();
            PublicName = $"login.gatehouse.test:{port}";
            DataDirectory = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N"));
            App = GatehouseHost.Build(new HostSettings
            {
                Overrides = new Dictionary<string, string?>
                {
                    ["Gatehouse:DataDirectory"] = DataDirectory,
                    ["Gatehouse:Urls"] = $"https://127.0.0.1:{port}",
                    ["Gatehouse:RdpPort"] = "0",
                    ["Gatehouse:PublicName"] = PublicName,
                    ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla, Tls, QrSignIn",
                },
                Console = new StringWriter(),
            });
            await App.StartAsync();
            RdpPort = GatehouseHost.RdpEndPoint(App).Port;
            BaseAddress = GatehouseHost.BoundAddresses(App)[0];
            CertificateThumbprint = App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
            CertificateSha256 = App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);

            await using var scope = App.Services.CreateAsyncScope();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var access = scope.ServiceProvider.GetRequiredService<AccessService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", Xrdp.Port, BackendSecurity.Tls, Xrdp.AdminAccount, Xrdp.AdminPassword, Xrdp.UserAccount, Xrdp.UserPassword);
            foreach (var name in new[] { "alice", "bob", "carol", "dave", "erin", "frank" })
            {
                await directory.CreateUserAsync(tenant.Id, $"{name}@contoso.test", name, Password, temporary: false);
            }

            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine Administrator Login", "bob@contoso.test", "/");
            await access.AssignRoleAsync(tenant.Id, "Owner", "carol@contoso.test", "/");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "dave@contoso.test", "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "erin@contoso.test", "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine Administrator Login", "frank@contoso.test", "/hosts/vm1");
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

        public async Task DisposeAsync()
        {
            if (App is not null)
            {
                await App.StopAsync();
                await App.DisposeAsync();
            }
        }
    }
}

/// <summary>The desktop tests share one xrdp and one set of X displays: run them one after another.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RdpDesktopCollection
{
    public const string Name = "RDP desktop";
}
