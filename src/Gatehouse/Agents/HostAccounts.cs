using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Gatehouse.Agents;

/// <summary>The result of a process run: exit code and (capped) output.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError);

/// <summary>Runs a system tool with an argument list (never through a shell).</summary>
public interface IProcessRunner
{
    /// <summary>Runs <paramref name="fileName"/> with <paramref name="arguments"/>, writing <paramref name="standardInput"/> (if any) to its input.</summary>
    Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken);
}

/// <summary>The real runner: <see cref="ProcessStartInfo.ArgumentList"/>, no shell, output capped at 64 KiB, 60 s at most.</summary>
public sealed class ProcessRunner : IProcessRunner
{
    private const int MaxOutput = 64 * 1024;

    /// <inheritdoc/>
    public async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{fileName} did not start");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var output = ReadCappedAsync(process.StandardOutput, timeout.Token);
        var error = ReadCappedAsync(process.StandardError, timeout.Token);
        if (standardInput is not null)
        {
            await process.StandardInput.WriteAsync(standardInput.AsMemory(), timeout.Token).ConfigureAwait(false);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new ProcessResult(process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
    }

    private static async Task<string> ReadCappedAsync(StreamReader reader, CancellationToken cancellationToken)
    {
        var builder = new StringBuilder();
        var buffer = new char[4096];
        int read;
        while ((read = await reader.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (builder.Length < MaxOutput)
            {
                builder.Append(buffer, 0, Math.Min(read, MaxOutput - builder.Length));
            }
        }

        return builder.ToString();
    }
}

/// <summary>A system tool failed: which one and what it said.</summary>
public sealed class HostAccountException(string message) : Exception(message);

/// <summary>
/// The host's local accounts, as the agent manages them: create, set groups, set a password, lock. Names are checked
/// (<see cref="AgentNames.IsValid"/>) before any tool runs, so none can be read as an option.
/// </summary>
public interface IHostAccounts
{
    /// <summary>True when an account named <paramref name="name"/> exists on the host (managed or not).</summary>
    Task<bool> ExistsAsync(string name, CancellationToken cancellationToken);

    /// <summary>Creates the account (with a home directory and a login shell) unless it exists.</summary>
    Task EnsureAsync(string name, string comment, CancellationToken cancellationToken);

    /// <summary>Puts the account in <paramref name="wanted"/> and takes it out of the other groups of <paramref name="managed"/>.</summary>
    Task SetGroupsAsync(string name, IReadOnlyCollection<string> wanted, IReadOnlyCollection<string> managed, CancellationToken cancellationToken);

    /// <summary>Sets the password; with <paramref name="enable"/> also lifts a lock or expiry (the account may log on).</summary>
    Task SetPasswordAsync(string name, string password, bool enable, CancellationToken cancellationToken);

    /// <summary>Locks and expires the account (no logon).</summary>
    Task LockAsync(string name, CancellationToken cancellationToken);
}

/// <summary>Random one-logon passwords: 28 characters with upper and lower case, digits and a symbol (Windows' complexity rule), never ':' or a newline.</summary>
public static class LogonPasswords
{
    /// <summary>A new password.</summary>
    public static string Create() => "Gh1-" + System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(18));
}

/// <summary>
/// Linux accounts through shadow-utils: <c>useradd -m -s /bin/bash</c> (a home and a shell, so PAM and xrdp let it log
/// on), <c>gpasswd -a/-d</c>, <c>chpasswd</c> (the password on standard input, never on a command line),
/// <c>chage -E -1</c>, <c>usermod -L -e 1</c>.
/// </summary>
public sealed partial class LinuxHostAccounts(IProcessRunner runner) : IHostAccounts
{
    /// <inheritdoc/>
    public async Task<bool> ExistsAsync(string name, CancellationToken cancellationToken)
    {
        CheckName(name);
        var result = await runner.RunAsync("getent", ["passwd", name], null, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0;
    }

    /// <inheritdoc/>
    public async Task EnsureAsync(string name, string comment, CancellationToken cancellationToken)
    {
        if (await ExistsAsync(name, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        var cleanComment = new string((comment ?? string.Empty).Where(c => c >= ' ' && c != ':' && c != ',' && c < 127).Take(64).ToArray());
        await RunAsync("useradd", ["-m", "-s", "/bin/bash", "-c", cleanComment, "--", name], null, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task SetGroupsAsync(string name, IReadOnlyCollection<string> wanted, IReadOnlyCollection<string> managed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        ArgumentNullException.ThrowIfNull(managed);
        CheckName(name);
        var result = await RunAsync("id", ["-nG", "--", name], null, cancellationToken).ConfigureAwait(false);
        var current = result.StandardOutput.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var group in wanted.Where(g => !current.Contains(g)))
        {
            CheckGroup(group);
            await RunAsync("gpasswd", ["-a", name, group], null, cancellationToken).ConfigureAwait(false);
        }

        foreach (var group in managed.Where(g => !wanted.Contains(g) && current.Contains(g)))
        {
            CheckGroup(group);
            await RunAsync("gpasswd", ["-d", name, group], null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task SetPasswordAsync(string name, string password, bool enable, CancellationToken cancellationToken)
    {
        CheckName(name);
        if (string.IsNullOrEmpty(password) || password.Contains(':', StringComparison.Ordinal) || password.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException("a password must be non-empty without ':' or a newline", nameof(password));
        }

        await RunAsync("chpasswd", [], $"{name}:{password}\n", cancellationToken).ConfigureAwait(false);
        if (enable)
        {
            // A fresh hash has no lock mark; lift an expiry left by a lock as well.
            await RunAsync("chage", ["-E", "-1", name], null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task LockAsync(string name, CancellationToken cancellationToken)
    {
        CheckName(name);
        await RunAsync("usermod", ["-L", "-e", "1", "--", name], null, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ProcessResult> RunAsync(string tool, IReadOnlyList<string> arguments, string? input, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync(tool, arguments, input, cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0
            ? result
            : throw new HostAccountException($"{tool} failed with exit code {result.ExitCode}: {result.StandardError.Trim()}");
    }

    private static void CheckName(string name)
    {
        if (!AgentNames.IsValid(name))
        {
            throw new ArgumentException($"'{name}' is not an account name the agent manages ([a-z][a-z0-9-]{{0,31}})", nameof(name));
        }
    }

    private static void CheckGroup(string group)
    {
        if (!GroupName().IsMatch(group))
        {
            throw new ArgumentException($"'{group}' is not a group name ([a-z_][a-z0-9_-]{{0,31}})", nameof(group));
        }
    }

    [GeneratedRegex("^[a-z_][a-z0-9_-]{0,31}$")]
    private static partial Regex GroupName();
}

/// <summary>
/// Windows local accounts through <c>net user</c> and <c>net localgroup</c> (System.DirectoryServices.AccountManagement
/// is not in the package mirror). Built to the same interface and unit-tested with a fake runner only: NOT verified on
/// Windows here. <c>net user NAME PASSWORD</c> puts the password on a command line, visible to local administrators
/// while it runs; a P/Invoke of NetUserSetInfo would avoid that.
/// </summary>
public sealed class WindowsHostAccounts(IProcessRunner runner) : IHostAccounts
{
    /// <inheritdoc/>
    public async Task<bool> ExistsAsync(string name, CancellationToken cancellationToken)
    {
        Check(name);
        return (await runner.RunAsync("net", ["user", name], null, cancellationToken).ConfigureAwait(false)).ExitCode == 0;
    }

    /// <inheritdoc/>
    public async Task EnsureAsync(string name, string comment, CancellationToken cancellationToken)
    {
        if (!await ExistsAsync(name, cancellationToken).ConfigureAwait(false))
        {
            await RunAsync(["user", name, LogonPasswords.Create(), "/add", "/active:no", "/passwordchg:no", "/expires:never"], cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task SetGroupsAsync(string name, IReadOnlyCollection<string> wanted, IReadOnlyCollection<string> managed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        ArgumentNullException.ThrowIfNull(managed);
        Check(name);
        foreach (var group in wanted)
        {
            // Exit code 2 with "already a member" (1378) is fine.
            await runner.RunAsync("net", ["localgroup", group, name, "/add"], null, cancellationToken).ConfigureAwait(false);
        }

        foreach (var group in managed.Where(g => !wanted.Contains(g)))
        {
            await runner.RunAsync("net", ["localgroup", group, name, "/delete"], null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task SetPasswordAsync(string name, string password, bool enable, CancellationToken cancellationToken)
    {
        Check(name);
        await RunAsync(enable ? ["user", name, password, "/active:yes"] : ["user", name, password], cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task LockAsync(string name, CancellationToken cancellationToken)
    {
        Check(name);
        await RunAsync(["user", name, LogonPasswords.Create(), "/active:no"], cancellationToken).ConfigureAwait(false);
    }

    private async Task RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var result = await runner.RunAsync("net", arguments, null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new HostAccountException($"net {arguments[0]} failed with exit code {result.ExitCode}: {result.StandardError.Trim()}");
        }
    }

    private static void Check(string name)
    {
        if (!AgentNames.IsValid(name) || name.Length > 20)
        {
            throw new ArgumentException($"'{name}' is not an account name the agent manages on Windows (at most 20 characters of [a-z0-9-])", nameof(name));
        }
    }
}
