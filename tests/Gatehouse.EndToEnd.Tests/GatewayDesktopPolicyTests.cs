using System.CommandLine;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Cli;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// Conditional Access and the password refusals with the real client: a policy created with <c>gatehouse policy
/// create</c> on the running server's store makes the web-account sign-in ask for the one-time code (in Chromium) and
/// refuses the password-only NLA sign-in; a maximum-session-duration policy ends a live session; the stock client's
/// temporary-password and locked-account sign-ins are refused with their NTSTATUS; and <c>gatehouse signins verify</c>
/// on the server's store passes, then fails once a row is altered.
/// </summary>
public sealed partial class GatewayDesktopTests
{
    [Fact]
    public async Task MfaPolicy_WebAccountSignIn_AsksForTheOneTimeCodeInChromium_AndTheSessionCarriesMfa()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        const string upn = "gina@contoso.test";
        var secret = await CreateUserWithAuthenticatorAsync(upn);
        await CreatePolicyAsync("Require MFA for gina", $$"""
            {
              "displayName": "Require MFA for gina",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["{{upn}}"] }, "applications": { "includeApplications": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
            }
            """);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartClient(display);
        var browse = await client.WaitForLineAsync(BrowseTo(), Wait.Generous, "the 'Browse to:' line");

        // The user's browser: name, password, then the one-time-code page the policy asks for, then consent.
        await using (var chromium = await Chromium.LaunchAsync())
        {
            await using var context = await chromium.NewContextAsync();
            var page = await context.NewPageAsync();
            await page.GotoAsync(browse.Groups[1].Value);
            await page.FillAsync("input[name=username]", upn);
            await page.ClickAsync("#next");
            await page.FillAsync("input[name=password]", Password);
            await page.ClickAsync("#next");
            await page.WaitForSelectorAsync("input[name=otp]");
            await page.ScreenshotAsync(new() { Path = ScreenshotPath("mfa-one-time-code-page.png"), FullPage = true });
            await page.FillAsync("input[name=otp]", Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
            await page.ClickAsync("#next");
            await page.WaitForSelectorAsync("button[name=consent][value=allow]");
            await page.ClickAsync("button[name=consent][value=allow]");
            await client.WriteLineAsync(await page.InnerTextAsync("#redirect-url"));
        }

        var session = await WaitForLiveSessionAsync(upn, client);
        Assert.Contains("mfa", session.Grant.Methods);
        Assert.Equal(gateway.Xrdp!.UserAccount, session.Grant.Credentials.UserName);
        var entry = await WaitForSignInAsync(upn, "success");
        Assert.Contains("mfa", (entry.Methods ?? string.Empty).Split(' '));
        Assert.Equal(session.Id, entry.SessionId);
        using (var policies = JsonDocument.Parse(entry.PoliciesJson ?? "[]"))
        {
            Assert.Contains(policies.RootElement.EnumerateArray(), p => p.GetRawText().Contains("Require MFA for gina", StringComparison.Ordinal) && p.GetRawText().Contains("success", StringComparison.OrdinalIgnoreCase));
        }

        // The IdP's own row for the browser sign-in says the one-time code was used.
        var browser = await WaitForSignInAsync(upn, "success", "browser");
        Assert.Contains("otp", (browser.Methods ?? string.Empty).Split(' '));
        output.WriteLine($"Sign-in log: web_account {entry.Methods}; browser {browser.Methods}; policies {entry.PoliciesJson}");
    }

    /// <summary>
    /// Step-up MFA on the hold screen with the stock client: NLA proves the password, the policy requires MFA, the gateway
    /// paints its code prompt inside the FreeRDP window, the test types the authenticator app's code into that window
    /// (xdotool), the gateway hands the client over with a Server Redirection and a one-time routing token, FreeRDP
    /// reconnects and signs in again, and the desktop of the role's account appears on xrdp.
    /// </summary>
    [Fact]
    public async Task MfaPolicy_NlaPasswordSignIn_AsksForTheCodeInTheRdpWindow_ThenLandsOnTheDesktop()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.XDoTool, Peers.Import))
        {
            return;
        }

        const string upn = "hugo@contoso.test";
        var secret = await CreateUserUnderMfaPolicyAsync(upn);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var client = StartNlaClient(display, upn, Password);
        await WaitForHoldScreenAsync(display, client, "mfa-prompt");
        var toPrompt = clock.Elapsed;
        await TypeAsync(display, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
        var typed = clock.Elapsed;

        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
            Wait.Generous,
            $"a live session of {upn} after the handover",
            () => client.Transcript);
        var toSession = clock.Elapsed - typed;
        Assert.Contains("mfa", session!.Grant.Methods);
        await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp!.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);
        var toDesktop = clock.Elapsed - typed;

        // Figures for the record (not asserted: the machine is shared): the hold against a direct NLA sign-in in this run.
        output.WriteLine($"Hold: client start to prompt {toPrompt.TotalSeconds:0.0} s; code typed to session {toSession.TotalSeconds:0.0} s, to a process of the account on the host {toDesktop.TotalSeconds:0.0} s (screenshot polling adds up to 0.5 s).");

        var rows = await SignInRowsAsync(upn, r => r.SessionId == session.Id);
        var handedOver = Assert.Single(rows, r => r.Reason.StartsWith("handed_over:", StringComparison.Ordinal));
        Assert.Equal("success", handedOver.Result);
        Assert.Null(handedOver.SessionId);
        Assert.Contains("mfa", handedOver.Methods, StringComparison.Ordinal);
        var signedIn = Assert.Single(rows, r => r.SessionId == session.Id);
        Assert.Equal("success", signedIn.Result);
        Assert.Contains("mfa", signedIn.Methods, StringComparison.Ordinal);
        output.WriteLine($"Sign-in log: {handedOver.Reason} | {signedIn.Reason} ({signedIn.Methods})");
    }

    /// <summary>
    /// The QR sign-in with the stock client and no password: FreeRDP connects with TLS security and an empty password,
    /// the gateway paints a QR code and a short code in its window, the test reads the QR code off a screenshot (zbarimg,
    /// as a phone's camera would), opens it in Chromium, signs in there (user name, password, "Are you trying to sign in
    /// to vm1?"), and the client is handed over and lands on the role's account's desktop on xrdp. The sign-in log has
    /// the hold's row (methods of the phone's sign-in) and the session's.
    /// </summary>
    [Fact]
    public async Task QrSignIn_TlsClientWithNoPassword_SignsInOnAPhone_AndLandsOnTheDesktop()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Import, Peers.ZbarImg, Peers.Chromium))
        {
            return;
        }

        const string upn = "quinn@contoso.test";
        await CreateUserWithRoleOnVm1Async(upn);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // No password: FreeRDP does not prompt when a user name and an empty password are given.
        await using var client = FreeRdpClient.Start(
            display.Display,
            [$"/v:vm1.gatehouse.test:{gateway.RdpPort}", "/sec:tls", "/u:phone", "/p:", "/cert:ignore", "/size:1024x768", "-clipboard"]);
        output.WriteLine(client.CommandLine);
        await WaitForHoldScreenAsync(display, client, "qr-sign-in");
        var toScreen = clock.Elapsed;

        // The phone's camera: the QR code holds the device-code page with the code filled in.
        var url = await ReadQrCodeAsync(display, client, "hold-qr-sign-in-read");
        output.WriteLine($"QR code: {url}");
        Assert.Matches($"^https://{Regex.Escape(gateway.PublicName!)}/devicelogin\\?otc=[BCDFGHJKLMNPQRSTVWXZ]{{8}}$", url);

        await using (var chromium = await Chromium.LaunchAsync())
        {
            await using var context = await chromium.NewContextAsync();
            var page = await context.NewPageAsync();
            await page.GotoAsync(url);
            await page.ClickAsync("#next");
            await page.FillAsync("input[name=username]", upn);
            await page.ClickAsync("#next");
            await page.FillAsync("input[name=password]", Password);
            await page.ClickAsync("#next");
            await page.WaitForSelectorAsync("button[name=consent][value=allow]");
            var question = await page.InnerTextAsync("h1");
            output.WriteLine($"The page asks: {question}");
            Assert.Contains("vm1", question, StringComparison.Ordinal);
            await page.ScreenshotAsync(new() { Path = ScreenshotPath("qr-sign-in-question.png"), FullPage = true });
            await page.ClickAsync("button[name=consent][value=allow]");
            await page.WaitForSelectorAsync("#done");
        }

        var approved = clock.Elapsed;
        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
            Wait.Generous,
            $"a live session of {upn} after the QR sign-in",
            () => client.Transcript);
        var toSession = clock.Elapsed - approved;
        Assert.Equal("tls", session!.Protocol);
        Assert.Equal(gateway.Xrdp!.UserAccount, session.Grant.Credentials.UserName);
        await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);
        output.WriteLine($"QR sign-in: client start to QR screen {toScreen.TotalSeconds:0.0} s; phone approved to session {toSession.TotalSeconds:0.0} s (the poll interval is 5 s).");

        var rows = await SignInRowsAsync(upn, r => r.SessionId == session.Id);
        var handedOver = Assert.Single(rows, r => r.Protocol == "tls" && r.Reason.StartsWith("handed_over:", StringComparison.Ordinal));
        Assert.Equal("success", handedOver.Result);
        Assert.Contains("pwd", handedOver.Methods, StringComparison.Ordinal);
        var signedIn = Assert.Single(rows, r => r.SessionId == session.Id);
        Assert.Equal("tls", signedIn.Protocol);
        Assert.Single(rows, r => r.Protocol == "browser" && r.Result == "success");
        output.WriteLine($"Sign-in log: {handedOver.Reason} | {signedIn.Reason} ({signedIn.Methods})");
    }

    /// <summary>
    /// The QR sign-in to no particular host, then the host picker: FreeRDP connects to the gateway's own name with TLS and
    /// an empty password, the QR code (read with zbarimg) opens the device-code page in the test's form client (a
    /// cookie-keeping HTTP client that posts the pages' forms), which signs in and answers "Are you trying to sign in to
    /// Remote Desktop?"; the hold screen then lists the user's hosts (compared pixel by pixel with the painter's
    /// rendering), Enter picks vm1, and the client lands on its desktop.
    /// </summary>
    [Fact]
    public async Task QrSignIn_ToTheGatewaysOwnName_FormClientSignsIn_ThenThePickerLeadsToTheDesktop()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Import, Peers.ZbarImg, Peers.XDoTool))
        {
            return;
        }

        const string upn = "rosa@contoso.test";
        await CreateUserWithRoleOnVm1Async(upn);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = FreeRdpClient.Start(
            display.Display,
            [$"/v:login.gatehouse.test:{gateway.RdpPort}", "/sec:tls", "/u:qr", "/p:", "/cert:ignore", "/size:1024x768", "-clipboard"]);
        output.WriteLine(client.CommandLine);
        await WaitForHoldScreenAsync(display, client, "qr-sign-in-any-host");
        var url = new Uri(await ReadQrCodeAsync(display, client, "hold-qr-any-host-read"));
        var code = url.Query["?otc=".Length..];

        // The phone: the test's form client on the page the QR code names.
        using (var phone = new Gatehouse.Server.Tests.Support.SignInBrowser(gateway.BaseAddress, gateway.CertificateThumbprint))
        {
            await phone.OpenAsync(url.PathAndQuery);
            Assert.Contains($"{code[..4]}-{code[4..]}", phone.Html, StringComparison.Ordinal); // The page shows the code filled in.
            await phone.SubmitAsync(("otc", code));
            await phone.SubmitAsync(("username", upn));
            await phone.SubmitAsync(("password", Password));
            Assert.True(phone.Shows("consent"), $"the question after the password; got: {phone.Error ?? phone.Html[..Math.Min(400, phone.Html.Length)]}");
            Assert.Contains("Are you trying to sign in to Remote Desktop?", WebUtility.HtmlDecode(phone.Html), StringComparison.Ordinal);
            await phone.SubmitAsync(("consent", "allow"));
            Assert.Contains("id=\"done\"", phone.Html, StringComparison.Ordinal);
        }

        // The picker: the user's one host, as the painter draws it.
        var expected = Framebuffer.Create(1024, 768);
        new HoldScreenPainter(new HoldScreenAppearance()).Paint(expected, new HostPickerView(["vm1"], 0, "Choose a computer with the arrow keys, then press Enter."));
        var pickerShot = Path.Combine(AppContext.BaseDirectory, "screenshots", "hold-qr-then-picker.png");
        var differing = int.MaxValue;
        await Wait.UntilAsync(
            async () => (differing = await Screenshot.DifferingPixelsAsync(await Screenshot.TakeAsync(display.Display, pickerShot), expected.Width, expected.Height, expected.Pixels.ToArray())) < 64,
            Wait.Generous,
            "the host picker after the QR sign-in",
            () => $"{differing} pixels differ; {client.Transcript}");
        await KeysAsync(display, "Return");

        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
            Wait.Generous,
            $"a live session of {upn} after the picker",
            () => client.Transcript);
        Assert.Equal("vm1", session!.Grant.HostName);
        await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp!.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);
        var rows = await SignInRowsAsync(upn);
        var handedOver = Assert.Single(rows, r => r.Protocol == "tls" && r.Reason.StartsWith("handed_over:", StringComparison.Ordinal));
        Assert.Contains("chose vm1 on the host picker", handedOver.Reason, StringComparison.Ordinal);
        output.WriteLine($"Sign-in log: {handedOver.Reason}");
    }

    /// <summary>
    /// The host picker with the stock client: FreeRDP connects to a name that is no registered host, NLA proves the
    /// password, the gateway lists the user's two hosts in the window, the test picks the second with the arrow keys
    /// (xdotool), and the client is handed over and lands on that host's desktop.
    /// </summary>
    [Fact]
    public async Task HostPicker_TwoHosts_TheSecondIsChosenInTheRdpWindow_AndReached()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.XDoTool, Peers.Import))
        {
            return;
        }

        const string upn = "jules@contoso.test";
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            var xrdp = gateway.Xrdp!;
            await directory.CreateHostAsync(tenant.Id, "vm2", "127.0.0.1", xrdp.Port, BackendSecurity.Tls, xrdp.AdminAccount, xrdp.AdminPassword, xrdp.UserAccount, xrdp.UserPassword);
            await directory.CreateUserAsync(tenant.Id, upn, "jules", Password, temporary: false);
            var access = scope.ServiceProvider.GetRequiredService<AccessService>();
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");
            await access.AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm2");
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, upn, Password, target: "login.gatehouse.test");
        await WaitForHoldScreenAsync(display, client, "host-picker");
        await KeysAsync(display, "Down", "Return");

        LiveSession? session = null;
        await Wait.UntilAsync(
            () => (session = gateway.Sessions.List().FirstOrDefault(s => s.Grant.UserPrincipalName == upn)) is not null,
            Wait.Generous,
            $"a live session of {upn} after the host picker",
            () => client.Transcript);
        Assert.Equal("vm2", session!.Grant.HostName);
        await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp!.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);

        var rows = await SignInRowsAsync(upn, r => r.SessionId == session.Id);
        Assert.Single(rows, r => r.Reason.StartsWith("handed_over: jules@contoso.test chose vm2 on the host picker", StringComparison.Ordinal));
        var signedIn = Assert.Single(rows, r => r.SessionId == session.Id);
        Assert.Equal("vm2", signedIn.HostName);
        output.WriteLine($"Sign-in log: {string.Join(" | ", rows.Select(r => $"{r.Result} {r.HostName} {r.Reason}"))}");
    }

    /// <summary>Three wrong codes on the hold screen disconnect the client and leave one sign-in log row with the reason.</summary>
    [Fact]
    public async Task MfaPolicy_ThreeWrongCodesOnTheHoldScreen_Disconnect_AndLeaveOneRow()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.XDoTool, Peers.Import))
        {
            return;
        }

        const string upn = "hilda@contoso.test";
        var secret = await CreateUserUnderMfaPolicyAsync(upn);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, upn, Password);
        await WaitForHoldScreenAsync(display, client, "mfa-wrong");
        var wrong = WrongCode(secret);
        for (var i = 0; i < 3; i++)
        {
            await TypeAsync(display, wrong);
        }

        var entry = await WaitForSignInAsync(upn, "failure", "nla");
        Assert.StartsWith("wrong_one_time_code: 3 wrong one-time codes", entry.Reason, StringComparison.Ordinal);
        Assert.Null(entry.SessionId);
        await Wait.UntilAsync(() => client.HasExited, Wait.Generous, "the refused client to exit", () => client.Transcript);
        Assert.Single(await SignInRowsAsync(upn));
        Assert.DoesNotContain(gateway.Sessions.List(), s => s.Grant.UserPrincipalName == upn);
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason}");
    }

    /// <summary>A code that is none of the authenticator app's codes around now.</summary>
    private static string WrongCode(byte[] secret)
    {
        var step = Totp.StepAt(DateTimeOffset.UtcNow);
        var near = Enumerable.Range(-3, 8).Select(d => Totp.Compute(secret, step + d)).ToHashSet(StringComparer.Ordinal);
        return Enumerable.Range(0, 1000).Select(n => (123457 + (n * 7919)).ToString("D6", System.Globalization.CultureInfo.InvariantCulture)).First(c => !near.Contains(c));
    }

    /// <summary>A user with the User Login role on vm1 (the QR sign-in's tests).</summary>
    private async Task CreateUserWithRoleOnVm1Async(string upn)
    {
        await using var scope = gateway.App!.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateUserAsync(tenant.Id, upn, upn.Split('@')[0], Password, temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");
    }

    /// <summary>What the one QR code in the client's window says, read with zbarimg off a screenshot (as a phone's camera would).</summary>
    private static async Task<string> ReadQrCodeAsync(XvfbDisplay display, FreeRdpClient client, string name)
    {
        var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", $"{name}.png");
        IReadOnlyList<string> codes = [];
        await Wait.UntilAsync(
            async () => (codes = await Screenshot.QrCodesAsync(await Screenshot.TakeAsync(display.Display, shot))).Count > 0,
            Wait.Generous,
            "a QR code that zbarimg can read in the client's window",
            () => client.Transcript);
        return Assert.Single(codes);
    }

    /// <summary>Waits until the gateway's hold screen is painted in the client's window (the screens' background colour).</summary>
    private static async Task WaitForHoldScreenAsync(XvfbDisplay display, FreeRdpClient client, string name)
    {
        var shot = Path.Combine(AppContext.BaseDirectory, "screenshots", $"hold-{name}.png");
        await Wait.UntilAsync(
            async () =>
            {
                Assert.False(client.HasExited, $"the client exited before the hold screen appeared: {client.Transcript}");
                await Screenshot.TakeAsync(display.Display, shot);
                return await Screenshot.PixelAsync(shot, 4, 4) == "srgb(30,41,59)";
            },
            Wait.Generous,
            "the gateway's hold screen in the client's window",
            () => client.Transcript);
    }

    /// <summary>Types digits into the FreeRDP window as key presses (XTEST, like a user at the keyboard).</summary>
    private static Task TypeAsync(XvfbDisplay display, string digits) => XdoToolAsync(display, "type", "--delay", "120", digits);

    /// <summary>Presses keys (xdotool key names) in the FreeRDP window.</summary>
    private static Task KeysAsync(XvfbDisplay display, params string[] keys) => XdoToolAsync(display, ["key", "--delay", "300", .. keys]);

    /// <summary>Presses a key that ends the session: the client may close its window before the key's release is sent.</summary>
    private static Task LastKeyAsync(XvfbDisplay display, string key) => XdoToolAsync(display, windowMayClose: true, "key", key);

    /// <summary>Focuses the FreeRDP window and runs one xdotool command in it.</summary>
    private static Task XdoToolAsync(XvfbDisplay display, params string[] command) => XdoToolAsync(display, windowMayClose: false, command);

    /// <summary>
    /// As <see cref="XdoToolAsync(XvfbDisplay, string[])"/>; with <paramref name="windowMayClose"/>, a key that ends the
    /// session may close the window before xdotool sends the key's release (BadWindow), which is then no failure.
    /// </summary>
    private static async Task XdoToolAsync(XvfbDisplay display, bool windowMayClose, params string[] command)
    {
        var info = new System.Diagnostics.ProcessStartInfo("/usr/bin/xdotool") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "search", "--sync", "--onlyvisible", "--name", "FreeRDP", "windowfocus", "--sync", "%1" }.Concat(command))
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DISPLAY"] = display.Display;
        using var process = System.Diagnostics.Process.Start(info)!;
        using var deadline = new CancellationTokenSource(Wait.Generous);
        await process.WaitForExitAsync(deadline.Token);
        var error = await process.StandardError.ReadToEndAsync();
        Assert.True(process.ExitCode == 0 || (windowMayClose && error.Contains("BadWindow", StringComparison.Ordinal)), $"xdotool failed: {error}");
    }

    /// <summary>A user with a confirmed authenticator app and the User Login role on vm1, under an enabled policy that requires MFA.</summary>
    private async Task<byte[]> CreateUserUnderMfaPolicyAsync(string upn)
    {
        var secret = await CreateUserWithAuthenticatorAsync(upn);
        var name = upn.Split('@')[0];
        await CreatePolicyAsync($"Require MFA for {name}", $$"""
            {
              "displayName": "Require MFA for {{name}}",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["{{upn}}"] }, "applications": { "includeApplications": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
            }
            """);
        return secret;
    }

    /// <summary>
    /// The user's rows once one matches <paramref name="until"/>: a session is registered before its row is written (the
    /// row goes before the answer, not before the registry), so a test that saw the live session waits for its row.
    /// </summary>
    private async Task<List<SignInRecord>> SignInRowsAsync(string upn, Func<SignInRecord, bool> until)
    {
        List<SignInRecord> rows = [];
        await Wait.UntilAsync(async () => (rows = await SignInRowsAsync(upn)).Any(until), Wait.Generous, $"the sign-in log row of {upn}'s session");
        return rows;
    }

    private async Task<List<SignInRecord>> SignInRowsAsync(string upn)
    {
        await using var scope = gateway.App!.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking().Where(s => s.UserPrincipalName == upn).ToListAsync();
    }

    [Fact]
    public async Task Nla_TemporaryPassword_IsRefusedWithPasswordMustChange()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        const string upn = "ivan@contoso.test";
        string temporary;
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            (_, var generated) = await directory.CreateUserAsync(tenant.Id, upn, "ivan", null, temporary: true);
            temporary = generated!;
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, upn, temporary);
        var entry = await WaitForSignInAsync(upn, "failure", "nla");
        Assert.Equal("0xC0000224", entry.Code, ignoreCase: true);
        Assert.StartsWith("password_change_required", entry.Reason, StringComparison.Ordinal);
        await client.WaitForExitAsync(Wait.Generous, "the refused client to exit");
        Assert.Contains(client.Lines, l => l.Contains("PASSWORD_MUST_CHANGE", StringComparison.OrdinalIgnoreCase));
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason}; client: {LastLines(client)}");
    }

    [Fact]
    public async Task Nla_LockedAccount_IsRefusedWithAccountLockedOut_EvenWithTheRightPassword()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        const string upn = "judy@contoso.test";
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            var (judy, _) = await directory.CreateUserAsync(tenant.Id, upn, "judy", Password, temporary: false);
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");

            // Someone guessed from this machine's address until the account locked.
            var signIn = scope.ServiceProvider.GetRequiredService<SignInService>();
            for (var i = 0; i < SignInService.LockoutThreshold; i++)
            {
                await signIn.CheckPasswordAsync(judy, $"guess-{i}", IPAddress.Loopback, DateTimeOffset.UtcNow);
            }

            Assert.NotNull(await signIn.GetLockedUntilAsync(judy, IPAddress.Loopback, DateTimeOffset.UtcNow));
        }

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, upn, Password);
        var entry = await WaitForSignInAsync(upn, "failure", "nla");
        Assert.Equal("0xC0000234", entry.Code, ignoreCase: true);
        Assert.StartsWith("locked_out", entry.Reason, StringComparison.Ordinal);
        await client.WaitForExitAsync(Wait.Generous, "the refused client to exit");
        Assert.Contains(client.Lines, l => l.Contains("ACCOUNT_LOCKED_OUT", StringComparison.OrdinalIgnoreCase));
        output.WriteLine($"Sign-in log: {entry.Code} {entry.Reason}; client: {LastLines(client)}");
    }

    [Fact]
    public async Task MaxSessionDurationPolicy_EndsTheLiveSession_WhenItRunsOut()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        const string upn = "kate@contoso.test";
        await using (var scope = gateway.App!.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateUserAsync(tenant.Id, upn, "kate", Password, temporary: false);
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");
        }

        await CreatePolicyAsync("One-minute sessions for kate", $$"""
            {
              "displayName": "One-minute sessions for kate",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["{{upn}}"] }, "applications": { "includeApplications": ["All"] } },
              "sessionControls": { "maxSessionMinutes": 1 }
            }
            """);

        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var client = StartNlaClient(display, upn, Password);
        var session = await WaitForLiveSessionAsync(upn, client);
        Assert.Equal(TimeSpan.FromMinutes(1), session.Grant.MaxDuration);
        await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp!.UserAccount).Count > 0, Wait.Generous, "the session on the host", () => client.Transcript);

        var record = await WaitForSessionEndAsync(upn, TimeSpan.FromMinutes(1) + Wait.Generous);
        Assert.Equal(session.Id, record.Id);
        Assert.StartsWith("max_session_duration", record.EndReason, StringComparison.Ordinal);
        var lasted = record.EndedAt!.Value - record.StartedAt;
        Assert.InRange(lasted, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(() => client.HasExited || gateway.Sessions.Find(session.Id) is null, Wait.Generous, "the session to end at the gateway");
        output.WriteLine($"Session lasted {lasted.TotalSeconds:0.0} s: {record.EndReason}");
    }

    [Fact]
    public async Task SignInsVerify_OnTheServersStore_Passes_ThenFailsAfterARowIsAltered()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        // At least one refused and one accepted sign-in in the log (the NLA path needs no browser).
        await using (var display = await XvfbDisplay.StartAsync(Wait.Generous))
        {
            await using (StartNlaClient(display, "frank@contoso.test", "Not-The-Password-2"))
            {
                await WaitForSignInAsync("frank@contoso.test", "failure", "nla");
            }
        }

        var intact = await RunCliAsync("signins", "verify", "--data", gateway.DataDirectory);
        Assert.True(intact.Exit == 0, intact.ToString());
        Assert.Contains("intact", intact.Output, StringComparison.OrdinalIgnoreCase);

        // A copy of the live store (the server keeps running on the original), with one row's reason rewritten.
        var copy = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", "tampered-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(copy);
        CopyDirectory(Path.Combine(gateway.DataDirectory, "keys"), Path.Combine(copy, "keys"));
        File.Copy(Path.Combine(gateway.DataDirectory, "keyring.kek"), Path.Combine(copy, "keyring.kek"));
        await using (var source = new SqliteConnection($"Data Source={Path.Combine(gateway.DataDirectory, "gatehouse.db")};Mode=ReadOnly"))
        await using (var target = new SqliteConnection($"Data Source={Path.Combine(copy, "gatehouse.db")};Pooling=False"))
        {
            await source.OpenAsync();
            await target.OpenAsync();
            source.BackupDatabase(target);
            await using var edit = target.CreateCommand();
            edit.CommandText = "UPDATE SignIns SET Reason = 'success' WHERE Sequence = (SELECT MIN(Sequence) FROM SignIns WHERE Result = 'failure')";
            Assert.Equal(1, await edit.ExecuteNonQueryAsync());
        }

        var tampered = await RunCliAsync("signins", "verify", "--data", copy);
        Assert.True(tampered.Exit == ExitCodes.Tampered, tampered.ToString());
        output.WriteLine(tampered.Output + tampered.Error);
    }

    private async Task<byte[]> CreateUserWithAuthenticatorAsync(string upn)
    {
        await using var scope = gateway.App!.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        var (user, _) = await directory.CreateUserAsync(tenant.Id, upn, upn.Split('@')[0], Password, temporary: false);
        var enrollment = await directory.BeginTotpEnrollmentAsync(user);
        var secret = Totp.Base32Decode(enrollment.SecretBase32);
        Assert.True(await directory.ConfirmTotpAsync(user, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", upn, "/hosts/vm1");
        return secret;
    }

    /// <summary>Creates a policy the way an administrator does on the server's machine: <c>gatehouse policy create --file</c>.</summary>
    private async Task CreatePolicyAsync(string name, string json)
    {
        var file = Path.Combine(gateway.DataDirectory, $"policy-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, json);
        var run = await RunCliAsync("policy", "create", "--file", file, "--data", gateway.DataDirectory);
        Assert.True(run.Exit == 0, run.ToString());
        Assert.Contains(name, run.Output, StringComparison.Ordinal);
    }

    private static async Task<CliResult> RunCliAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var root = GatehouseCli.Create(new CliEnvironment { Input = new StringReader(string.Empty), OutputIsTerminal = false });
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr });
        return new CliResult(exit, stdout.ToString(), stderr.ToString());
    }

    private async Task<SessionRecord> WaitForSessionEndAsync(string upn, TimeSpan timeout)
    {
        SessionRecord? found = null;
        var deadline = DateTime.UtcNow + timeout;
        while (found is null)
        {
            await using (var scope = gateway.App!.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                found = await db.Sessions.AsNoTracking().Where(s => s.UserPrincipalName == upn && s.EndedAt != null).OrderByDescending(s => s.StartedAt).FirstOrDefaultAsync();
            }

            if (found is null)
            {
                Assert.True(DateTime.UtcNow < deadline, $"Timed out after {timeout.TotalSeconds:0} s waiting for the end record of {upn}'s session.");
                await Task.Delay(250);
            }
        }

        return found;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }

    private static string ScreenshotPath(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "screenshots", name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    private static string LastLines(FreeRdpClient client) => string.Join(" | ", client.Lines.TakeLast(4));

    private sealed record CliResult(int Exit, string Output, string Error)
    {
        public override string ToString() => $"exit {Exit}\n--- stdout\n{Output}\n--- stderr\n{Error}";
    }
}
