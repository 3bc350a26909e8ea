namespace Gatehouse.Gateway.Tests;

/// <summary>Waiting on a condition, never on the clock: the limit is only a backstop for a test that would hang.</summary>
internal static class Until
{
    /// <summary>The backstop: far beyond anything a loaded machine needs for a step that takes milliseconds.</summary>
    public static readonly TimeSpan Backstop = TimeSpan.FromSeconds(30);

    /// <summary>Polls <paramref name="condition"/> every 10 ms; fails the test with <paramref name="what"/> at the backstop.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what)
    {
        var giveUp = DateTime.UtcNow + Backstop;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, $"timed out waiting for: {what}");
            await Task.Delay(10);
        }
    }
}
