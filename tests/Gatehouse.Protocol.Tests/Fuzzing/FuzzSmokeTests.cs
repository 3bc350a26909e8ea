using Gatehouse.Fuzz;

namespace Gatehouse.Protocol.Tests.Fuzzing;

/// <summary>
/// A short, deterministic fuzz run of every target inside the test suite (fixed seed, fixed count), so a parser
/// change that breaks an invariant fails CI. The long run is the Gatehouse.Fuzz command.
/// </summary>
public sealed class FuzzSmokeTests
{
    /// <summary>Mutations per target; GATEHOUSE_FUZZ_EXECUTIONS raises it for a deeper local run.</summary>
    private static long Executions =>
        long.TryParse(Environment.GetEnvironmentVariable("GATEHOUSE_FUZZ_EXECUTIONS"), out var n) && n > 0 ? n : 50_000;

    public static TheoryData<string> Targets() => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Fuzz_FixedSeed_FindsNothing(string targetName)
    {
        var target = FuzzTargets.Find(targetName)!;
        var report = FuzzEngine.Run(target, new FuzzOptions { MaxExecutions = Executions, Seed = 1234 });
        Assert.True(report.Executions >= Executions, $"ran only {report.Executions}");
        Assert.True(
            report.Failures.Count == 0,
            string.Join(Environment.NewLine, report.Failures.Select(f => $"{f.Signature} on {Hex.Format(f.Input)}: {f.Exception}")));
    }

    [Fact]
    public void TargetNames_AreUniqueAndHaveSeeds()
    {
        Assert.Equal(FuzzTargets.All.Count, FuzzTargets.All.Select(t => t.Name).Distinct(StringComparer.OrdinalIgnoreCase).Count());
        Assert.All(FuzzTargets.All, t => Assert.NotEmpty(t.Seeds));
    }
}
