using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using Gatehouse.Cli;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// <c>gatehouse login</c> the way an administrator uses it from another machine: the command (trusting the server's
/// generated certificate with <c>--ca-cert</c>, no test handler) prints the Entra-style message and polls, while Debian's
/// Chromium opens the page it names, enters the code, signs in and answers Continue; the command then saves the sign-in,
/// and its token works on the admin API.
/// </summary>
public sealed class DeviceLoginBrowserTests(ITestOutputHelper output)
{
    [Fact]
    public async Task GatehouseLogin_PollsWhileChromiumSignsIn_ThenTheSavedTokenWorksOnTheAdminApi()
    {
        if (!Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        Peers.RequireTestHostNames();
        var root = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N"));
        var data = Path.Combine(root, "data");
        await using var app = await LoopbackGatehouse.StartAsync(data, ("Gatehouse:Limits:DeviceCodePollInterval", "00:00:01"));
        var publicName = LoopbackGatehouse.PublicName(app);
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Correct-Horse-9!", temporary: false);
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Owner", "alice@contoso.test", "/");
        }

        // gatehouse login --server https://login.gatehouse.test:PORT --ca-cert data/tls/gatehouse.crt
        var server = $"https://{publicName}";
        var caCert = Path.Combine(data, "tls", "gatehouse.crt");
        var environment = new CliEnvironment
        {
            Input = TextReader.Null,
            OutputIsTerminal = false,
            Variable = _ => null,
            ConfigDirectory = Path.Combine(root, "config"),
        };
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var login = GatehouseCli.Create(environment).Parse(["login", "--server", server, "--ca-cert", caCert])
            .InvokeAsync(new InvocationConfiguration { Output = stdout, Error = new SynchronizedWriter(stderr) });

        const string Opening = "To sign in, use a web browser to open the page ";
        string Printed()
        {
            lock (stderr)
            {
                return stderr.ToString();
            }
        }

        await Wait.UntilAsync(() => Printed().Contains("to authenticate.", StringComparison.Ordinal) || login.IsCompleted, Wait.Generous, "gatehouse login to print the device-code message", Printed);
        Assert.False(login.IsCompleted, $"gatehouse login ended early: {Printed()}");
        var message = Printed().Split('\n').First(l => l.StartsWith(Opening, StringComparison.Ordinal));
        var words = message.Split(' ');
        var page = words[Array.IndexOf(words, "page") + 1];
        var userCode = words[Array.IndexOf(words, "code") + 1];
        output.WriteLine(message);
        Assert.Equal($"https://{publicName}/devicelogin", page);

        await using var chromium = await Chromium.LaunchAsync();
        await using var context = await chromium.NewContextAsync();
        var browser = await context.NewPageAsync();
        await browser.GotoAsync(page);
        await browser.FillAsync("input[name=otc]", userCode);
        await browser.ClickAsync("#next");
        await browser.FillAsync("input[name=username]", "alice@contoso.test");
        await browser.ClickAsync("#next");
        await browser.FillAsync("input[name=password]", "Correct-Horse-9!");
        await browser.ClickAsync("#next");
        await browser.WaitForSelectorAsync("button[name=consent][value=allow]");
        Assert.Equal("Are you trying to sign in to Gatehouse CLI?", await browser.InnerTextAsync("h1"));
        await browser.ClickAsync("button[name=consent][value=allow]");
        var done = await browser.InnerTextAsync("#done");
        Assert.Equal("You have signed in to the Gatehouse CLI application on your device. You may now close this window.", done);

        var exit = await Wait.ForAsync(login, Wait.Generous, "gatehouse login to finish polling", Printed);
        Assert.True(exit == 0, $"exit {exit}\n{stdout}\n{Printed()}");
        Assert.Contains($"Signed in to {server} as alice@contoso.test", stdout.ToString(), StringComparison.Ordinal);

        // The saved sign-in, through the CLI's own HTTPS client (trusting --ca-cert), on the admin API.
        var saved = CliCredentialStore.For(environment).Find(new Uri(server))!;
        Assert.Equal(caCert, saved.CaCertificatePath);
        using var http = CliHttp.Create(new Uri(server), saved.CaCertificatePath, environment);
        var token = await CliTokenSource.GetAccessTokenAsync(new Uri(server), environment, http, CancellationToken.None);
        using var request = new HttpRequestMessage(HttpMethod.Get, "admin/v1/users");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Contains("alice@contoso.test", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await app.StopAsync();
    }


    /// <summary>Standard error written by the command while the test reads it.</summary>
    private sealed class SynchronizedWriter(StringWriter inner) : TextWriter
    {
        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            lock (inner)
            {
                inner.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (inner)
            {
                inner.Write(value);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (inner)
            {
                inner.WriteLine(value);
            }
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override Task WriteAsync(string? value)
        {
            Write(value);
            return Task.CompletedTask;
        }
    }
}
