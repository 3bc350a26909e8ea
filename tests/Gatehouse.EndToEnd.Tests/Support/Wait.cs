using System.Diagnostics;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>Waits on conditions with a deadline (never a fixed sleep: the poll interval only bounds the latency).</summary>
internal static class Wait
{
    /// <summary>Generous default for anything a peer does on its own (start, connect, answer).</summary>
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                var extra = diagnostics is null ? string.Empty : Environment.NewLine + diagnostics();
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for {what}.{extra}");
            }

            await Task.Delay(25);
        }
    }

    /// <summary>Polls an asynchronous condition (a screenshot, a query) until it holds or the deadline passes.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                var extra = diagnostics is null ? string.Empty : Environment.NewLine + diagnostics();
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for {what}.{extra}");
            }

            await Task.Delay(250);
        }
    }

    /// <summary>Awaits a task, failing with a message naming what was awaited when the deadline passes first.</summary>
    public static async Task<T> ForAsync<T>(Task<T> task, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        ArgumentNullException.ThrowIfNull(task);
        try
        {
            return await task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            var extra = diagnostics is null ? string.Empty : Environment.NewLine + diagnostics();
            throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for {what}.{extra}");
        }
    }
}
