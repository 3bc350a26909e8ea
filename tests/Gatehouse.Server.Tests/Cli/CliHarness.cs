using System.CommandLine;
using Gatehouse.Cli;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Microsoft.Data.Sqlite;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>What one in-process run of the command tree printed and returned.</summary>
internal sealed record CliRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>
/// A throwaway data directory with a tenant (created the way <c>gatehouse serve</c>'s first run does) and the real
/// <c>gatehouse</c> command tree run in process against it, with captured standard output, error and input.
/// </summary>
internal sealed class CliHarness : IAsyncDisposable
{
    private CliHarness(string dataDirectory) => DataDirectory = dataDirectory;

    public string DataDirectory { get; }

    public string DatabasePath => Path.Combine(DataDirectory, "gatehouse.db");

    public static async Task<CliHarness> CreateAsync(bool withTenant = true)
    {
        var harness = new CliHarness(TempDirectory.Create());
        if (withTenant)
        {
            await using var store = await harness.OpenStoreAsync();
            await store.Get<DirectoryService>().BootstrapAsync("contoso.test");
        }

        return harness;
    }

    /// <summary>The store as the commands open it (same database, same Data Protection keys).</summary>
    public Task<AdminStore> OpenStoreAsync() =>
        AdminStore.OpenAsync(new AdminStoreLocation(DataDirectory, null), TimeProvider.System, create: true, CancellationToken.None);

    /// <summary>Runs <c>gatehouse ARGS --data DIR</c> with <paramref name="stdin"/> as standard input.</summary>
    public Task<CliRun> RunWithInputAsync(string? stdin, params string[] args) => RunRawAsync(stdin, [.. args, "--data", DataDirectory]);

    public Task<CliRun> RunAsync(params string[] args) => RunWithInputAsync(null, args);

    public static Task<CliRun> RunRawAsync(string? stdin, params string[] args) => RunInAsync(new CliEnvironment(), stdin, args);

    /// <summary>Runs the command tree with <paramref name="environment"/> (its input and terminal flag replaced).</summary>
    public static async Task<CliRun> RunInAsync(CliEnvironment environment, string? stdin, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(environment);
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var input = new StringReader(stdin ?? string.Empty);
        var root = GatehouseCli.Create(environment with { Input = input, OutputIsTerminal = false });
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return new CliRun(exit, output.ToString(), error.ToString());
    }

    /// <summary>Runs a command that must succeed.</summary>
    public async Task<CliRun> OkWithInputAsync(string? stdin, params string[] args)
    {
        var run = await RunWithInputAsync(stdin, args);
        Assert.True(run.ExitCode == 0, $"gatehouse {string.Join(' ', args)} failed: {run}");
        return run;
    }

    public Task<CliRun> OkAsync(params string[] args) => OkWithInputAsync(null, args);

    /// <summary>Executes SQL directly on the SQLite database (what an attacker with file access can do).</summary>
    public async Task<int> ExecuteSqlAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync();
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temp directory left behind is harmless.
        }

        return ValueTask.CompletedTask;
    }
}
