using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// Microsoft's own authentication libraries as clients of the Gatehouse IdP, as an application would use them with the
/// well-known public client "Gatehouse CLI": MSAL for Python (Debian's python3-msal) and MSAL for Node
/// (@azure/msal-node, pinned in Msal/package-lock.json) each run the device code flow against the <c>common</c> and
/// <c>organizations</c> authorities while Debian's Chromium enters the code on /devicelogin and signs in; then the
/// library must find the account in its cache (<c>get_accounts</c>/<c>getAllAccounts</c>, built from the ID token and
/// <c>client_info</c>) and renew the access token silently from the refresh token. The libraries trust the server's
/// generated certificate as a CA file (<c>verify=</c>, <c>NODE_EXTRA_CA_CERTS</c>) and do no instance discovery at
/// Microsoft's cloud (<c>validate_authority=False, instance_discovery=False</c>; <c>knownAuthorities</c>).
/// </summary>
public sealed class MsalClientTests(ITestOutputHelper output)
{
    private const string Upn = "alice@contoso.test";
    private const string Password = "Correct-Horse-9!";
    private const string Scope = "api://gatehouse-admin/admin";

    private static readonly Peer PythonMsal = new("MSAL for Python", "/usr/lib/python3/dist-packages/msal/__init__.py", "python3-msal");
    private static readonly Peer DebianPython = new("Debian's Python 3", "/usr/bin/python3", "python3");
    private static readonly Peer Node = new("Node.js", "/usr/bin/node", "nodejs");

    [Theory]
    [InlineData("common")]
    [InlineData("organizations")]
    public async Task PythonMsal_DeviceCodeSignIn_FindsTheAccount_AndRefreshesSilently(string tenant)
    {
        if (!Peers.Require(output, Peers.Chromium, DebianPython, PythonMsal))
        {
            return;
        }

        // verify= names the CA file, and so must REQUESTS_CA_BUNDLE: when the environment sets it (or CURL_CA_BUNDLE),
        // requests prefers it over the session's verify that MSAL sets.
        await RunAsync(tenant, (authority, caFile) => new ProcessStartInfo(DebianPython.Path)
        {
            ArgumentList = { "-I", Path.Combine(MsalDirectory(), "device_code.py"), authority, caFile, GatehouseCliClient.ClientId, Scope },
            Environment = { ["REQUESTS_CA_BUNDLE"] = caFile, ["CURL_CA_BUNDLE"] = caFile },
        });
    }

    [Theory]
    [InlineData("common")]
    [InlineData("organizations")]
    public async Task NodeMsal_DeviceCodeSignIn_FindsTheAccount_AndRefreshesSilently(string tenant)
    {
        if (!Peers.Require(output, Peers.Chromium, Node) || !RequireMsalNode())
        {
            return;
        }

        await RunAsync(tenant, (authority, caFile) => new ProcessStartInfo(Node.Path)
        {
            ArgumentList = { Path.Combine(MsalDirectory(), "device-code.mjs"), authority, GatehouseCliClient.ClientId, Scope },
            Environment = { ["NODE_EXTRA_CA_CERTS"] = caFile },
        });
    }

    /// <summary>
    /// Starts the server, runs the library's script, signs in with Chromium on the page and code it prints, and checks
    /// what the script reports: tokens from the device code flow, exactly one account (alice, home account id
    /// <c>oid.tid</c>), and a new access token from the silent refresh; each access token works on the admin API.
    /// </summary>
    private async Task RunAsync(string tenant, Func<string, string, ProcessStartInfo> client)
    {
        Peers.RequireTestHostNames();
        var data = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N"), "data");
        await using var app = await LoopbackGatehouse.StartAsync(data, ("Gatehouse:Limits:DeviceCodePollInterval", "00:00:01"));
        var publicName = LoopbackGatehouse.PublicName(app);
        Guid aliceId, tenantId;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            tenantId = (await directory.FindTenantAsync("contoso.test"))!.Id;
            aliceId = (await directory.CreateUserAsync(tenantId, Upn, "Alice", Password, temporary: false)).User.Id;
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenantId, "Owner", Upn, "/");
        }

        var authority = $"https://{publicName}/{tenant}";
        var caFile = Path.Combine(data, "tls", "gatehouse.crt");
        var start = client(authority, caFile);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        foreach (var proxy in new[] { "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy" })
        {
            start.Environment.Remove(proxy);
        }

        var lines = new ConcurrentQueue<string>();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue(e.Data); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lines.Enqueue("stderr: " + e.Data); } };
        Assert.True(process.Start(), $"{start.FileName} did not start");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            string Printed() => string.Join('\n', lines);
            const string Opening = "To sign in, use a web browser to open the page ";
            await Wait.UntilAsync(() => lines.Any(l => l.StartsWith(Opening, StringComparison.Ordinal)) || process.HasExited, Wait.Generous, "the MSAL client to print the device-code message", Printed);
            Assert.False(process.HasExited, $"the MSAL client ended early:\n{Printed()}");
            var message = lines.First(l => l.StartsWith(Opening, StringComparison.Ordinal));
            output.WriteLine(message);
            var words = message.Split(' ');
            var page = words[Array.IndexOf(words, "page") + 1];
            var userCode = words[Array.IndexOf(words, "code") + 1];
            Assert.Equal($"https://{publicName}/devicelogin", page);

            await SignInWithChromiumAsync(page, userCode);

            await Wait.ForAsync(WaitForExitAsync(process), Wait.Generous, "the MSAL client to get its tokens, find the account and refresh", Printed);
            output.WriteLine(Printed());
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{Printed()}");
            var result = lines.LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal)) ?? throw new InvalidOperationException("no RESULT line:\n" + Printed());
            using var report = JsonDocument.Parse(result["RESULT ".Length..]);
            var root = report.RootElement;

            var device = root.GetProperty("device_code");
            Assert.True(device.TryGetProperty("access_token_sha256", out var first) && first.GetString() is { Length: 64 }, device.ToString());
            Assert.Equal(200, device.GetProperty("admin_api_status").GetInt32());
            var claims = device.GetProperty("id_token_claims");
            Assert.Equal(Upn, claims.GetProperty("preferred_username").GetString());
            Assert.Equal(aliceId.ToString("D"), claims.GetProperty("oid").GetString());
            Assert.Equal(tenantId.ToString("D"), claims.GetProperty("tid").GetString());
            Assert.Equal($"https://{publicName}/{tenantId:D}/v2.0", claims.GetProperty("iss").GetString());

            var account = Assert.Single(root.GetProperty("accounts").EnumerateArray());
            Assert.Equal(Upn, account.GetProperty("username").GetString());
            Assert.Equal($"{aliceId:D}.{tenantId:D}", account.GetProperty("home_account_id").GetString());
            Assert.Equal(aliceId.ToString("D"), account.GetProperty("local_account_id").GetString());
            Assert.StartsWith("login.gatehouse.test", account.GetProperty("environment").GetString(), StringComparison.Ordinal);

            var silent = root.GetProperty("silent");
            Assert.True(silent.TryGetProperty("access_token_sha256", out var renewed) && renewed.GetString() is { Length: 64 }, silent.ToString());
            Assert.NotEqual(first.GetString(), renewed.GetString());
            Assert.Equal(200, silent.GetProperty("admin_api_status").GetInt32());
            Assert.Equal(Upn, silent.GetProperty("id_token_claims").GetProperty("preferred_username").GetString());
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await app.StopAsync();
        }
    }

    /// <summary>What the user does on /devicelogin: the code, user name, password, and Continue.</summary>
    private static async Task SignInWithChromiumAsync(string page, string userCode)
    {
        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var browser = await context.NewPageAsync();
        await browser.GotoAsync(page);
        await browser.FillAsync("input[name=otc]", userCode);
        await browser.ClickAsync("#next");
        await browser.FillAsync("input[name=username]", Upn);
        await browser.ClickAsync("#next");
        await browser.FillAsync("input[name=password]", Password);
        await browser.ClickAsync("#next");
        await browser.WaitForSelectorAsync("button[name=consent][value=allow]");
        Assert.Equal("Are you trying to sign in to Gatehouse CLI?", await browser.InnerTextAsync("h1"));
        await browser.ClickAsync("button[name=consent][value=allow]");
        Assert.Equal("You have signed in to the Gatehouse CLI application on your device. You may now close this window.", await browser.InnerTextAsync("#done"));
    }

    /// <summary>The scripts' folder in the repository (tests/Gatehouse.EndToEnd.Tests/Msal), where npm ci puts node_modules.</summary>
    private static string MsalDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Gatehouse.slnx")))
            {
                return Path.Combine(dir.FullName, "tests", "Gatehouse.EndToEnd.Tests", "Msal");
            }
        }

        throw new InvalidOperationException("Gatehouse.slnx was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Fails (or, with the opt-out, skips) unless <c>npm ci</c> installed @azure/msal-node next to the script.</summary>
    private bool RequireMsalNode()
    {
        var package = Path.Combine(MsalDirectory(), "node_modules", "@azure", "msal-node", "package.json");
        if (File.Exists(package))
        {
            return true;
        }

        var message = $"@azure/msal-node is not installed ({package} is missing): run 'npm ci' in {MsalDirectory()} (./scripts/test.sh does it)";
        if (Peers.AllowMissing)
        {
            output.WriteLine($"Not run: {message} ({Peers.AllowMissingVariable}=1).");
            return false;
        }

        Assert.Fail(message + $". Set {Peers.AllowMissingVariable}=1 to skip instead.");
        return false;
    }

    /// <summary>The exit code, once the process has ended and its output has been read to the end.</summary>
    private static async Task<int> WaitForExitAsync(Process process)
    {
        await process.WaitForExitAsync();
        return process.ExitCode;
    }

}
