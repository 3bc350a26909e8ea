using Gatehouse.Agents;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// The real tools on this machine (CI and the development machine run as root): a throwaway account is created,
/// re-grouped, given a password, locked and deleted, checked with <c>id</c> and <c>/etc/shadow</c>; cleaned up always.
/// </summary>
public sealed class LinuxAccountsRootTests
{
    [Fact]
    public async Task ThrowawayAccount_CreatedRegroupedPasswordedLocked_AsTheToolsSee()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            // Only root may run useradd; CI runs as root, so this runs there.
            return;
        }

        var suffix = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        var name = $"gh-test-{suffix}";
        var group = $"gh-grp-{suffix}";
        var runner = new ProcessRunner();
        var accounts = new LinuxHostAccounts(runner);
        try
        {
            Assert.Equal(0, (await runner.RunAsync("groupadd", [group], null, CancellationToken.None)).ExitCode);
            Assert.False(await accounts.ExistsAsync(name, CancellationToken.None));

            await accounts.EnsureAsync(name, "Gatehouse test", CancellationToken.None);
            Assert.True(await accounts.ExistsAsync(name, CancellationToken.None));
            var passwd = (await runner.RunAsync("getent", ["passwd", name], null, CancellationToken.None)).StandardOutput.Trim().Split(':');
            Assert.Equal("/bin/bash", passwd[6]);
            Assert.True(Directory.Exists(passwd[5]), $"home {passwd[5]} was not created");

            await accounts.SetGroupsAsync(name, [group], [group, "sudo"], CancellationToken.None);
            Assert.Contains(group, await GroupsAsync(runner, name));
            await accounts.SetGroupsAsync(name, [], [group], CancellationToken.None);
            Assert.DoesNotContain(group, await GroupsAsync(runner, name));

            await accounts.SetPasswordAsync(name, LogonPasswords.Create(), enable: true, CancellationToken.None);
            var (hash, expire) = Shadow(name);
            Assert.StartsWith("$", hash, StringComparison.Ordinal);
            Assert.Equal(string.Empty, expire);

            await accounts.LockAsync(name, CancellationToken.None);
            (var locked, expire) = Shadow(name);
            Assert.StartsWith("!", locked, StringComparison.Ordinal);
            Assert.Equal("1", expire);

            // A rotation after the lock changes the password but leaves the account expired.
            await accounts.SetPasswordAsync(name, LogonPasswords.Create(), enable: false, CancellationToken.None);
            (var rotated, expire) = Shadow(name);
            Assert.NotEqual(hash, rotated);
            Assert.Equal("1", expire);
        }
        finally
        {
            await runner.RunAsync("userdel", ["-r", name], null, CancellationToken.None);
            await runner.RunAsync("groupdel", [group], null, CancellationToken.None);
        }

        Assert.False(await accounts.ExistsAsync(name, CancellationToken.None));
    }

    private static async Task<string[]> GroupsAsync(ProcessRunner runner, string name) =>
        (await runner.RunAsync("id", ["-nG", name], null, CancellationToken.None)).StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static (string Hash, string Expire) Shadow(string name)
    {
        var line = File.ReadAllLines("/etc/shadow").Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(':');
        return (line[1], line[7]);
    }
}
