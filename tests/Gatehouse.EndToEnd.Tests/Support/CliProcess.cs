using System.Collections.Concurrent;
using System.Diagnostics;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// One <c>gatehouse ARGS</c> CLI process (the built <c>gatehouse.dll</c>, as <see cref="GatehouseProcess"/> runs it) with
/// only the environment variables given (on top of the test's own), its output captured line by line while it runs
/// (for a command that prints something to act on before it exits, such as <c>gatehouse login</c>'s code).
/// </summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();
    private readonly TaskCompletionSource outputDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource errorDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string command;

    private CliProcess(Process process, string command)
    {
        this.process = process;
        this.command = command;
    }

    /// <summary>Standard output and error so far, one line per entry, in the order they arrived.</summary>
    public IReadOnlyList<string> Lines => [.. lines];

    public string Text => string.Join(Environment.NewLine, lines);

    /// <summary>Starts <c>gatehouse <paramref name="arguments"/></c> with <paramref name="environment"/> set (a null value removes the variable).</summary>
    public static CliProcess Start(IReadOnlyDictionary<string, string?> environment, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var start = new ProcessStartInfo(GatehouseProcess.DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(GatehouseProcess.GatehouseDll());
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        GatehouseProcess.AddFastStartEnvironment(start);
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var cli = new CliProcess(new Process { StartInfo = start }, "gatehouse " + string.Join(' ', arguments));
        cli.process.OutputDataReceived += (_, e) => cli.Receive(e.Data, cli.outputDone);
        cli.process.ErrorDataReceived += (_, e) => cli.Receive(e.Data, cli.errorDone);
        cli.process.Start();
        cli.process.StandardInput.Close();
        cli.process.BeginOutputReadLine();
        cli.process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Waits for the process to exit and for all its output; returns its exit code (kills it after <paramref name="timeout"/>).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
            await Task.WhenAll(outputDone.Task, errorDone.Task).WaitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} did not exit within {timeout.TotalSeconds:0} s.{Environment.NewLine}{Text}");
        }

        return process.ExitCode;
    }

    public void Dispose()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.Dispose();
    }

    private void Receive(string? line, TaskCompletionSource done)
    {
        if (line is null)
        {
            done.TrySetResult();
            return;
        }

        lines.Enqueue(line);
    }
}
