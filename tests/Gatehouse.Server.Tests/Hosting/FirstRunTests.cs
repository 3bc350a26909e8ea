using System.Diagnostics;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Hosting;

/// <summary>
/// Issue 15, item 9: the README's first command, <c>dotnet run --project src/Gatehouse -- serve</c> from the repository
/// root, keeps its data in <c>./data</c> there, and no data directory is ever committed.
/// </summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class FirstRunTests
{
    [Fact]
    public async Task DotnetRun_StartsGatehouseInTheCallersWorkingDirectory()
    {
        // The Web SDK sets RunWorkingDirectory to the project folder, which made ./data src/Gatehouse/data. Empty means
        // `dotnet run` starts the program where the caller is.
        var project = Path.Combine(RepositoryRoot(), "src", "Gatehouse", "Gatehouse.csproj");
        var (exit, output) = await RunAsync(DotnetHost(), RepositoryRoot(), "msbuild", project, "-getProperty:RunWorkingDirectory", "-nologo");
        Assert.True(exit == 0, output);
        Assert.Equal("", output.Trim());
    }

    [Fact]
    public async Task Serve_DefaultDataDirectory_IsDataInTheWorkingDirectory()
    {
        var workingDirectory = TempDirectory.Create();
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = workingDirectory;
        try
        {
            await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:DataDirectory"] = null });
            var options = server.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Gatehouse.Hosting.GatehouseOptions>>().Value;
            Assert.Equal(Path.Combine(workingDirectory, "data"), options.DataDirectory);
            Assert.True(File.Exists(Path.Combine(workingDirectory, "data", "gatehouse.db")));
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
    }

    [Theory]
    [InlineData("data/gatehouse.db")]
    [InlineData("src/Gatehouse/data/gatehouse.db")]
    [InlineData("src/Gatehouse/data/keys/key-1.xml")]
    [InlineData("src/Gatehouse/data/keyring.kek")]
    [InlineData("tests/Gatehouse.Server.Tests/data/tls/gatehouse.key")]
    [InlineData("deploy/keyring.kek")]
    public async Task GitIgnore_CoversEveryDataDirectory(string path)
    {
        var root = RepositoryRoot();
        if (!Directory.Exists(Path.Combine(root, ".git")) && !File.Exists(Path.Combine(root, ".git")))
        {
            return; // Not a git checkout (a source archive): nothing can be committed from here.
        }

        var (exit, output) = await RunAsync("git", root, "check-ignore", "--no-index", "-v", path);
        Assert.True(exit == 0, $"{path} is not ignored by git: {output}");
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

    /// <summary>The dotnet executable running the tests (the SDK sets DOTNET_HOST_PATH for them).</summary>
    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    private static async Task<(int Exit, string Output)> RunAsync(string program, string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }
}
