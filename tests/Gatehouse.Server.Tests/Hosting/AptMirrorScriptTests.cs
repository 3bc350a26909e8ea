using System.Diagnostics;
using System.Text.RegularExpressions;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Hosting;

/// <summary>
/// Issue 15, item 9: scripts/test.sh adds bookworm-backports from the mirror the machine's apt already uses
/// (scripts/apt-mirror.sh reads it from the machine's sources), and names no package host itself.
/// </summary>
public sealed partial class AptMirrorScriptTests
{
    [Theory]
    [InlineData("debian.sources", "Types: deb\nURIs: http://mirror.example.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example.test/debian-security\nSuites: bookworm-security\nComponents: main\n", "http://mirror.example.test/debian /usr/share/keyrings/debian-archive-keyring.gpg")]
    [InlineData("sources.list", "# deb http://old.example.test/debian bookworm main\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/local.gpg] https://apt.example.test/debian bookworm main contrib\n", "https://apt.example.test/debian /etc/apt/keyrings/local.gpg")]
    [InlineData("mixed.sources", "Types: deb\nURIs: http://disabled.example.test/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n# a comment\nTypes: deb-src deb\nURIs: http://second.example.test/debian http://third.example.test/debian\nSuites: bookworm\nComponents: contrib main\n", "http://second.example.test/debian /usr/share/keyrings/debian-archive-keyring.gpg")]
    public async Task AptMirror_PrintsTheMachinesMirrorForBookwormMain(string name, string content, string expected)
    {
        var file = Path.Combine(TempDirectory.Create(), name);
        await File.WriteAllTextAsync(file, content);
        var (exit, output) = await RunScriptAsync(file);
        Assert.True(exit == 0, output);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public async Task AptMirror_NoSourceForBookwormMain_FailsAndPrintsNothing()
    {
        var file = Path.Combine(TempDirectory.Create(), "other.list");
        await File.WriteAllTextAsync(file, "deb http://security.example.test/debian-security bookworm-security main\ndeb http://x.example.test/debian bookworm contrib\n");
        var (exit, output) = await RunScriptAsync(file);
        Assert.Equal(1, exit);
        Assert.Equal("", output.Trim());
    }

    [Fact]
    public async Task TestScript_NamesNoPackageHost()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), "scripts", "test.sh"));
        Assert.DoesNotMatch(HardCodedSource(), script);
        Assert.Contains("apt-mirror.sh", script, StringComparison.Ordinal);
    }

    /// <summary>An apt source with a literal address: "URIs: http…" (deb822) or "deb http…" (one-line).</summary>
    [GeneratedRegex(@"(?m)^\s*(URIs:\s*|deb\s+(\[[^\]]*\]\s*)?)https?://")]
    private static partial Regex HardCodedSource();

    private static async Task<(int Exit, string Output)> RunScriptAsync(string sourceFile)
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot(), "scripts", "apt-mirror.sh"));
        start.ArgumentList.Add(sourceFile);
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Gatehouse.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Gatehouse.slnx not found above the test's folder.");
    }
}
