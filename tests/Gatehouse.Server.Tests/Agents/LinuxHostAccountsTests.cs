using Gatehouse.Agents;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>The Linux account manager runs exactly these tools with these argument lists (no shell, nothing interpolated).</summary>
public sealed class LinuxHostAccountsTests
{
    [Fact]
    public async Task Ensure_MissingAccount_RunsUseraddWithAHomeAndBash()
    {
        var runner = new FakeRunner { Results = { ["getent"] = new ProcessResult(2, "", "") } };
        await new LinuxHostAccounts(runner).EnsureAsync("alice", "Gatehouse alice@contoso.com", CancellationToken.None);
        Assert.Equal(
            ["getent passwd alice", "useradd -m -s /bin/bash -c Gatehouse alice@contoso.com -- alice"],
            runner.Calls.Select(c => c.File + " " + string.Join(' ', c.Arguments)));
        Assert.Equal("Gatehouse alice@contoso.com", runner.Calls[1].Arguments[4]);
        Assert.All(runner.Calls, c => Assert.Null(c.Input));
    }

    [Fact]
    public async Task Ensure_ExistingAccount_CreatesNothing()
    {
        var runner = new FakeRunner();
        await new LinuxHostAccounts(runner).EnsureAsync("alice", "x", CancellationToken.None);
        Assert.Equal(["getent"], runner.Calls.Select(c => c.File));
    }

    [Fact]
    public async Task Password_GoesOnStandardInput_NeverOnTheCommandLine()
    {
        var runner = new FakeRunner();
        await new LinuxHostAccounts(runner).SetPasswordAsync("alice", "Gh1-secret", enable: true, CancellationToken.None);
        Assert.Equal(("chpasswd", "", "alice:Gh1-secret\n"), Flatten((runner.Calls[0].File, runner.Calls[0].Arguments, runner.Calls[0].Input)));
        Assert.Equal(("chage", "-E -1 alice", null), Flatten((runner.Calls[1].File, runner.Calls[1].Arguments, runner.Calls[1].Input)));
        Assert.DoesNotContain(runner.Calls, c => c.Arguments.Any(a => a.Contains("Gh1-secret", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Rotation_DoesNotLiftALock()
    {
        var runner = new FakeRunner();
        await new LinuxHostAccounts(runner).SetPasswordAsync("alice", "Gh1-other", enable: false, CancellationToken.None);
        Assert.Equal(["chpasswd"], runner.Calls.Select(c => c.File));
    }

    [Fact]
    public async Task Groups_AddsWanted_RemovesOnlyManagedOnesTheRoleNoLongerGives()
    {
        var runner = new FakeRunner { Results = { ["id"] = new ProcessResult(0, "alice sudo audio\n", "") } };
        await new LinuxHostAccounts(runner).SetGroupsAsync("alice", ["video"], ["sudo", "video"], CancellationToken.None);
        Assert.Equal(
            ["id -nG -- alice", "gpasswd -a alice video", "gpasswd -d alice sudo"],
            runner.Calls.Select(c => c.File + " " + string.Join(' ', c.Arguments)));
    }

    [Fact]
    public async Task Lock_LocksAndExpires()
    {
        var runner = new FakeRunner();
        await new LinuxHostAccounts(runner).LockAsync("alice", CancellationToken.None);
        Assert.Equal(["usermod -L -e 1 -- alice"], runner.Calls.Select(c => c.File + " " + string.Join(' ', c.Arguments)));
    }

    [Theory]
    [InlineData("-o")]
    [InlineData("root:x")]
    [InlineData("a b")]
    [InlineData("")]
    [InlineData("Alice")]
    public async Task HostileNames_AreRefusedBeforeAnyToolRuns(string name)
    {
        var runner = new FakeRunner();
        var accounts = new LinuxHostAccounts(runner);
        await Assert.ThrowsAsync<ArgumentException>(() => accounts.EnsureAsync(name, "x", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => accounts.SetPasswordAsync(name, "p", true, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => accounts.LockAsync(name, CancellationToken.None));
        Assert.Empty(runner.Calls);
    }

    [Fact]
    public async Task HostileGroup_IsRefused()
    {
        var runner = new FakeRunner { Results = { ["id"] = new ProcessResult(0, "alice\n", "") } };
        await Assert.ThrowsAsync<ArgumentException>(() => new LinuxHostAccounts(runner).SetGroupsAsync("alice", ["-r"], [], CancellationToken.None));
        Assert.DoesNotContain(runner.Calls, c => c.File == "gpasswd");
    }

    [Fact]
    public async Task FailedTool_IsATypedError_WithItsMessage()
    {
        var runner = new FakeRunner { Results = { ["usermod"] = new ProcessResult(6, "", "usermod: user 'alice' does not exist") } };
        var e = await Assert.ThrowsAsync<HostAccountException>(() => new LinuxHostAccounts(runner).LockAsync("alice", CancellationToken.None));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Windows_UsesNetUserAndLocalgroup_ToTheSameInterface()
    {
        var runner = new FakeRunner { Results = { ["net"] = new ProcessResult(0, "", "") } };
        var accounts = new WindowsHostAccounts(runner);
        await accounts.SetGroupsAsync("alice", ["Administrators"], ["Administrators", "Remote Desktop Users"], CancellationToken.None);
        await accounts.SetPasswordAsync("alice", "Gh1-x", enable: true, CancellationToken.None);
        Assert.Equal(
            ["net localgroup Administrators alice /add", "net localgroup Remote Desktop Users alice /delete", "net user alice Gh1-x /active:yes"],
            runner.Calls.Select(c => c.File + " " + string.Join(' ', c.Arguments)));
        Assert.Equal("Remote Desktop Users", runner.Calls[1].Arguments[1]);
    }

    private static (string, string, string?) Flatten((string File, IReadOnlyList<string> Arguments, string? Input) call) =>
        (call.File, string.Join(' ', call.Arguments), call.Input);

    /// <summary>Records each run; answers exit code 0 unless told otherwise per tool.</summary>
    internal sealed class FakeRunner : IProcessRunner
    {
        public List<(string File, List<string> Arguments, string? Input)> Calls { get; } = [];

        public Dictionary<string, ProcessResult> Results { get; } = [];

        /// <summary>A copy of the calls so far (a background rotation may be adding one).</summary>
        public List<(string File, List<string> Arguments, string? Input)> Snapshot()
        {
            lock (Calls)
            {
                return [.. Calls];
            }
        }

        public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
        {
            lock (Calls)
            {
                Calls.Add((fileName, [.. arguments], standardInput));
            }

            return Task.FromResult(Results.TryGetValue(fileName, out var result) ? result : new ProcessResult(0, string.Empty, string.Empty));
        }
    }
}
