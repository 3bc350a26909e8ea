using Gatehouse.Agents;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.Tests;
using Gatehouse.Server.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>The agent's work items on the account manager: logons by role, re-grouping, rotation by deadline, locking.</summary>
public sealed class HostAgentRunnerTests
{
    [Fact]
    public async Task RoleChange_RegroupsAtTheNextLogon_WithTheSameAccount()
    {
        using var fixture = new Fixture();
        var admin = await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "carol@contoso.test", "administrator"), CancellationToken.None);
        Assert.Equal("carol", admin!.AccountName);
        Assert.Equal(["gpasswd -a carol sudo"], fixture.Tools.Calls.Where(c => c.File == "gpasswd").Select(c => c.File + " " + string.Join(' ', c.Arguments)));

        fixture.Tools.Calls.Clear();
        fixture.Tools.Results["id"] = new ProcessResult(0, "carol sudo\n", "");
        var user = await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "carol@contoso.test", "user"), CancellationToken.None);
        Assert.Equal("carol", user!.AccountName);
        Assert.Equal(["gpasswd -d carol sudo"], fixture.Tools.Calls.Where(c => c.File == "gpasswd").Select(c => c.File + " " + string.Join(' ', c.Arguments)));
        Assert.NotEqual(admin.Password, user.Password);
    }

    [Fact]
    public async Task Logon_PasswordIsRotated_AfterSixtySecondsAtTheLatest()
    {
        using var fixture = new Fixture();
        var logon = await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None);
        Assert.True(logon!.Ok);
        var stdin = fixture.Tools.Calls.Single(c => c.File == "chpasswd").Input;
        Assert.Equal($"alice:{logon.Password}\n", stdin);
        Assert.Equal(1, fixture.Runner.PendingRotations);

        fixture.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Single(fixture.Tools.Calls, c => c.File == "chpasswd");
        fixture.Time.Advance(TimeSpan.FromSeconds(1));
        await Until.TrueAsync(() => fixture.Tools.Snapshot().Count(c => c.File == "chpasswd") == 2, "the rotation after 60 s");
        Assert.Equal(0, fixture.Runner.PendingRotations);
        var rotated = fixture.Tools.Snapshot().Last(c => c.File == "chpasswd").Input;
        Assert.NotEqual(stdin, rotated);
        Assert.StartsWith("alice:", rotated, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disable_LocksOnlyAnAccountTheAgentManages()
    {
        using var fixture = new Fixture();
        await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "disable", "nobody@contoso.test"), CancellationToken.None);
        Assert.DoesNotContain(fixture.Tools.Calls, c => c.File == "usermod");

        await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None);
        await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "disable", "Alice@Contoso.test"), CancellationToken.None);
        Assert.Equal(["usermod -L -e 1 -- alice"], fixture.Tools.Calls.Where(c => c.File == "usermod").Select(c => c.File + " " + string.Join(' ', c.Arguments)));
    }

    [Fact]
    public async Task FailedTool_AnswersTheLogonWithTheError_NotAPassword()
    {
        using var fixture = new Fixture();
        fixture.Tools.Results["useradd"] = new ProcessResult(9, "", "useradd: user 'alice' already exists");
        fixture.Tools.Results["getent"] = new ProcessResult(2, "", "");
        var result = await fixture.Runner.HandleAsync(new AgentWorkItem(Guid.NewGuid(), "logon", "alice@contoso.test", "user"), CancellationToken.None);
        Assert.False(result!.Ok);
        Assert.Null(result.Password);
        Assert.Contains("useradd failed", result.Error, StringComparison.Ordinal);
    }

    private sealed class Fixture : IDisposable
    {
        private readonly System.Security.Cryptography.ECDsa _key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        private readonly HttpClient _http = new();

        public Fixture()
        {
            var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
            var config = new AgentConfig { Server = new Uri("https://login.gatehouse.test"), ServerCertificateSha256 = new string('a', 64), AgentId = Guid.NewGuid(), Audience = "aud", AdminGroups = ["sudo"], UserGroups = [] };
            Runner = new HostAgentRunner(state, config, _key, new AgentClient(_http, Time), new LinuxHostAccounts(Tools), new NoProbe(), Time, NullLogger.Instance);

            // Accounts do not exist until created (getent answers 2), then they do.
            Tools.Results["getent"] = new ProcessResult(2, "", "");
            Tools.Results["id"] = new ProcessResult(0, "\n", "");
        }

        public ManualTime Time { get; } = new();

        public LinuxHostAccountsTests.FakeRunner Tools { get; } = new();

        public HostAgentRunner Runner { get; }

        public void Dispose()
        {
            Runner.Dispose();
            _http.Dispose();
            _key.Dispose();
        }
    }

    private sealed class NoProbe : IRdpProbe
    {
        public Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken) => Task.FromResult(new RdpProbeResult(true, null, null));
    }
}
