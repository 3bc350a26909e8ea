using Gatehouse.Fuzz;

namespace Gatehouse.Protocol.Tests.Fuzzing;

/// <summary>
/// Replays every input in testdata/fuzz-regressions/&lt;target&gt;/ and testdata/fuzz-corpus/&lt;target&gt;/, plus each target's
/// built-in seeds, through the target's oracle: once found, a bug stays fixed.
/// </summary>
public sealed class FuzzRegressionTests
{
    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FuzzTargets.All)
        {
            for (var i = 0; i < target.Seeds.Count; i++)
            {
                data.Add(target.Name, $"seed:{i}");
            }

            foreach (var file in RepoPaths.FilesOf(RepoPaths.RegressionsDirectory, target.Name)
                         .Concat(RepoPaths.FilesOf(RepoPaths.CorpusDirectory, target.Name)))
            {
                data.Add(target.Name, Path.GetRelativePath(RepoPaths.FindRoot()!, file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Replay_Input_PassesTheOracle(string targetName, string input)
    {
        var target = FuzzTargets.Find(targetName)!;
        var bytes = input.StartsWith("seed:", StringComparison.Ordinal)
            ? target.Seeds[int.Parse(input[5..], System.Globalization.CultureInfo.InvariantCulture)]
            : File.ReadAllBytes(Path.Combine(RepoPaths.FindRoot()!, input));
        var failure = FuzzEngine.RunOne(target, bytes);
        Assert.True(failure is null, $"{targetName} {input}: {failure?.Exception}");
    }

    [Fact]
    public void RegressionFolders_NameExistingTargets()
    {
        // A folder for a renamed or deleted target would silently stop being replayed.
        foreach (var root in new[] { RepoPaths.RegressionsDirectory, RepoPaths.CorpusDirectory })
        {
            if (!Directory.Exists(root))
            {
                continue;
            }

            foreach (var dir in Directory.GetDirectories(root))
            {
                Assert.True(FuzzTargets.Find(Path.GetFileName(dir)) is not null, $"{dir} names no fuzz target");
            }
        }
    }
}
