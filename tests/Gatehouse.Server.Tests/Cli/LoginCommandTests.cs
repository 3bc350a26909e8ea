using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Text.Json;
using Gatehouse.Cli;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Idp;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// <c>gatehouse login</c>, <c>login --status</c> and <c>logout</c> in process against the real host (its HTTPS through
/// <see cref="CliEnvironment.HttpHandler"/>), with the user's browser steps done by the form-walking browser while the
/// command polls; and the renewal in <see cref="CliTokenSource"/>.
/// </summary>
public sealed class LoginCommandTests
{
    [Fact]
    public async Task Login_WhileTheUserSignsIn_SavesTheSignIn_StatusShowsItWithoutTokens_AndTheTokenWorks()
    {
        await using var scenario = await StartAsync();
        await DeviceFlowTests.GrantOwnerAsync(scenario, IdpScenario.Alice);
        using var cli = new CliUnderTest(scenario.Server);

        var run = await cli.LoginWhileUserAnswersAsync("allow");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("To sign in, use a web browser to open the page https://login.gatehouse.test/devicelogin and enter the code", run.Error, StringComparison.Ordinal);
        Assert.Contains($"Signed in to {cli.Server} as {IdpScenario.Alice}", run.Output, StringComparison.Ordinal);
        var file = Path.Combine(cli.ConfigDirectory, "credentials.json");
        Assert.True(File.Exists(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        var status = await cli.RunAsync("login", "--status", "--output", "json");
        Assert.Equal(0, status.ExitCode);
        using (var json = JsonDocument.Parse(status.Output))
        {
            var row = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Equal(cli.Server, row.GetProperty("server").GetString());
            Assert.Equal(IdpScenario.Alice, row.GetProperty("user").GetString());
            Assert.True(row.GetProperty("renewable").GetBoolean());
        }

        var saved = CliCredentialStore.For(cli.Environment).List().Single();
        Assert.DoesNotContain(saved.AccessToken, status.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(saved.RefreshToken!, status.Output, StringComparison.Ordinal);
        var table = await cli.RunAsync("login", "--status");
        Assert.Contains(IdpScenario.Alice, table.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(saved.AccessToken, table.Output, StringComparison.Ordinal);

        using var http = CliHttp.Create(new Uri(cli.Server), null, cli.Environment);
        var token = await CliTokenSource.GetAccessTokenAsync(new Uri(cli.Server), cli.Environment, http, CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, token));
    }

    [Fact]
    public async Task TokenSource_RenewsAnExpiredSignInWithTheRefreshToken_AndSaysToLogInWhenThatFails()
    {
        await using var scenario = await StartAsync();
        await DeviceFlowTests.GrantOwnerAsync(scenario, IdpScenario.Alice);
        using var cli = new CliUnderTest(scenario.Server);
        Assert.Equal(0, (await cli.LoginWhileUserAnswersAsync("allow")).ExitCode);
        var store = CliCredentialStore.For(cli.Environment);
        var before = store.List().Single();
        store.Save(before with { ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(30) });
        var server = new Uri(cli.Server);
        using var http = CliHttp.Create(server, null, cli.Environment);

        var renewed = await CliTokenSource.GetAccessTokenAsync(server, cli.Environment, http, CancellationToken.None);

        Assert.NotEqual(before.AccessToken, renewed);
        var after = store.List().Single();
        Assert.Equal(renewed, after.AccessToken);
        Assert.NotEqual(before.RefreshToken, after.RefreshToken);
        Assert.True(after.ExpiresAt > DateTimeOffset.UtcNow.AddMinutes(30));
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, renewed));

        // A refresh token the server no longer honours: the sentence that says to sign in again.
        store.Save(after with { ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(-1), RefreshToken = "bm90LWEtcmVmcmVzaC10b2tlbg" });
        var e = await Assert.ThrowsAsync<CliException>(() => CliTokenSource.GetAccessTokenAsync(server, cli.Environment, http, CancellationToken.None));
        Assert.Contains("has expired: run 'gatehouse login --server", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logout_RevokesAtTheServer_AndForgetsTheSignIn()
    {
        await using var scenario = await StartAsync();
        await DeviceFlowTests.GrantOwnerAsync(scenario, IdpScenario.Alice);
        using var cli = new CliUnderTest(scenario.Server);
        Assert.Equal(0, (await cli.LoginWhileUserAnswersAsync("allow")).ExitCode);
        var saved = CliCredentialStore.For(cli.Environment).List().Single();
        Assert.Equal(HttpStatusCode.OK, await AdminStatusAsync(scenario, saved.AccessToken));

        var run = await cli.RunAsync("logout", "--server", cli.Server);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("revoked at the server", run.Output, StringComparison.Ordinal);
        Assert.Empty(CliCredentialStore.For(cli.Environment).List());
        Assert.Equal(HttpStatusCode.Unauthorized, await AdminStatusAsync(scenario, saved.AccessToken));
        var again = await cli.RunAsync("logout", "--server", cli.Server);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("There is no saved sign-in to", again.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_CancelledInTheBrowser_FailsWithOneSentence_AndSavesNothing()
    {
        await using var scenario = await StartAsync();
        using var cli = new CliUnderTest(scenario.Server);

        var run = await cli.LoginWhileUserAnswersAsync("deny");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("gatehouse login: The sign-in was cancelled in the browser; run 'gatehouse login' again", run.Error, StringComparison.Ordinal);
        Assert.Empty(CliCredentialStore.For(cli.Environment).List());
    }

    [Fact]
    public async Task Login_WithoutAServer_OrWithHttpToAnotherMachine_SaysWhatToGive()
    {
        using var cli = new CliUnderTest(null);

        var none = await cli.RunAsync("login");
        var http = await cli.RunAsync("login", "--server", "http://gatehouse.example:8443");
        var help = await cli.RunAsync("login", "--help");
        var logoutHelp = await cli.RunAsync("logout", "--help");

        Assert.Equal(1, none.ExitCode);
        Assert.Contains("--server https://host:port (or set GATEHOUSE_SERVER)", none.Error, StringComparison.Ordinal);
        Assert.Equal(1, http.ExitCode);
        Assert.Contains("tokens are only sent over https", http.Error, StringComparison.Ordinal);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--ca-cert", help.Output, StringComparison.Ordinal);
        Assert.Contains("--status", help.Output, StringComparison.Ordinal);
        Assert.Contains("--local", logoutHelp.Output, StringComparison.Ordinal);
    }

    private static Task<IdpScenario> StartAsync() =>
        IdpScenario.StartAsync(new Dictionary<string, string?> { ["Gatehouse:Limits:DeviceCodePollInterval"] = "00:00:01" });

    private static async Task<HttpStatusCode> AdminStatusAsync(IdpScenario scenario, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/users");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await scenario.Server.Client.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>The command tree with its own configuration directory, no process environment, and the server's HTTPS pinned.</summary>
    private sealed class CliUnderTest : IDisposable
    {
        private readonly HttpMessageHandler _handler;
        private readonly TestServer? _server;

        public CliUnderTest(TestServer? server)
        {
            _server = server;
            ConfigDirectory = Path.Combine(TempDirectory.Create(), "config");
            var pinned = server?.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
            _handler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => pinned is not null && c?.GetCertHashString() == pinned },
            };
            Environment = new CliEnvironment
            {
                Input = TextReader.Null,
                OutputIsTerminal = false,
                Variable = _ => null,
                ConfigDirectory = ConfigDirectory,
                HttpHandler = _handler,
            };
            Server = server is null ? string.Empty : CliCredentialStore.Key(server.BaseAddress);
        }

        public string ConfigDirectory { get; }

        public CliEnvironment Environment { get; }

        public string Server { get; }

        public async Task<CliRun> RunAsync(params string[] args)
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var exit = await GatehouseCli.Create(Environment).Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
            return new CliRun(exit, output.ToString(), error.ToString());
        }

        /// <summary>Runs <c>gatehouse login --server …</c>; when it prints the code, a browser enters it, signs in as alice and answers.</summary>
        public async Task<CliRun> LoginWhileUserAnswersAsync(string answer)
        {
            using var output = new StringWriter();
            using var error = new CodeWatchingWriter();
            var login = GatehouseCli.Create(Environment).Parse(["login", "--server", Server]).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
            var finished = await Task.WhenAny(error.UserCode, login);
            Assert.True(finished == error.UserCode, $"login ended before printing a code: {error}");
            using (var browser = new SignInBrowser(_server!))
            {
                await DeviceFlowTests.ApproveAsync(browser, await error.UserCode, answer: answer);
            }

            var exit = await login.WaitAsync(TimeSpan.FromSeconds(60));
            return new CliRun(exit, output.ToString(), error.ToString());
        }

        public void Dispose() => _handler.Dispose();
    }

    /// <summary>Standard error that completes <see cref="UserCode"/> when the device-code message is written.</summary>
    private sealed class CodeWatchingWriter : StringWriter
    {
        private readonly TaskCompletionSource<string> _code = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<string> UserCode => _code.Task;

        public override Task WriteLineAsync(string? value)
        {
            Watch(value);
            return base.WriteLineAsync(value);
        }

        public override void WriteLine(string? value)
        {
            Watch(value);
            base.WriteLine(value);
        }

        private void Watch(string? value)
        {
            const string Marker = "enter the code ";
            var at = value?.IndexOf(Marker, StringComparison.Ordinal) ?? -1;
            if (at >= 0)
            {
                _code.TrySetResult(value![(at + Marker.Length)..].Split(' ')[0]);
            }
        }
    }
}
