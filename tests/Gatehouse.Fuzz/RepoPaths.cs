namespace Gatehouse.Fuzz;

/// <summary>Finds the repository's <c>testdata</c> folder from wherever the fuzzer or the tests run.</summary>
public static class RepoPaths
{
    public static string? FindRoot()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Gatehouse.slnx")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    /// <summary><c>testdata/fuzz-regressions</c>: inputs that once broke an oracle, replayed by the tests.</summary>
    public static string RegressionsDirectory =>
        Path.Combine(FindRoot() ?? throw new InvalidOperationException("Gatehouse.slnx not found above the working directory."), "testdata", "fuzz-regressions");

    /// <summary><c>testdata/fuzz-corpus</c>: extra seeds (captured PDUs) per target.</summary>
    public static string CorpusDirectory =>
        Path.Combine(FindRoot() ?? throw new InvalidOperationException("Gatehouse.slnx not found above the working directory."), "testdata", "fuzz-corpus");

    /// <summary>The files of one target's folder under <paramref name="root"/>, sorted, or none.</summary>
    public static IReadOnlyList<string> FilesOf(string root, string target)
    {
        var dir = Path.Combine(root, target);
        return Directory.Exists(dir) ? [.. Directory.GetFiles(dir).Order(StringComparer.Ordinal)] : [];
    }
}
