using System.Diagnostics;
using System.Globalization;

namespace Gatehouse.Fuzz;

/// <summary>
/// The long-run fuzzer: <c>dotnet run -c Release --project tests/Gatehouse.Fuzz -- --minutes 10</c>.
/// Findings are written to testdata/fuzz-regressions/&lt;target&gt;/ so the tests replay them from then on.
/// </summary>
internal static class Program
{
    private const string Usage = """
        Usage: gatehouse-fuzz [options]

        Runs the in-repo mutation fuzzer over every Gatehouse.Protocol parser and the gateway's PNG logo decoder
        (or the ones named with --target).
        Any exception other than the parser's own PduError, a broken round trip, or an allocation beyond the
        input-length bound is a finding; findings are saved under testdata/fuzz-regressions/<target>/ and the
        test suite replays them.

        Options:
          --minutes N        run for N minutes in total (default 1), shared equally by the targets
          --seconds N        run for N seconds in total
          --executions N     stop each target after N executions
          --target NAME      fuzz only this target (repeatable); see --list
          --seed N           random seed (default: the current time)
          --no-save          do not write findings to testdata/fuzz-regressions
          --replay           only replay the regression folder and the corpus, then exit
          --list             list the targets and exit
          -h, --help         show this help
        Exit code: 0 when nothing was found, 1 when there are findings, 2 on bad usage.
        """;

    private static int Main(string[] args)
    {
        var duration = TimeSpan.FromMinutes(1);
        var executions = long.MaxValue;
        var targets = new List<string>();
        var seed = Environment.TickCount;
        var save = true;
        var replay = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--minutes":
                        duration = TimeSpan.FromMinutes(double.Parse(Next(), CultureInfo.InvariantCulture));
                        break;
                    case "--seconds":
                        duration = TimeSpan.FromSeconds(double.Parse(Next(), CultureInfo.InvariantCulture));
                        break;
                    case "--executions":
                        executions = long.Parse(Next(), CultureInfo.InvariantCulture);
                        break;
                    case "--target":
                        targets.Add(Next());
                        break;
                    case "--seed":
                        seed = int.Parse(Next(), CultureInfo.InvariantCulture);
                        break;
                    case "--no-save":
                        save = false;
                        break;
                    case "--replay":
                        replay = true;
                        break;
                    case "--list":
                        foreach (var t in FuzzTargets.All)
                        {
                            Console.WriteLine($"{t.Name,-32} {t.Seeds.Count} seeds");
                        }

                        return 0;
                    case "-h" or "--help":
                        Console.WriteLine(Usage);
                        return 0;
                    default:
                        throw new ArgumentException($"unknown option {args[i]}");
                }
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine($"gatehouse-fuzz: {ex.Message}. Run with --help to see the options.");
                return 2;
            }
        }

        var selected = new List<FuzzTarget>();
        foreach (var name in targets)
        {
            if (FuzzTargets.Find(name) is not { } target)
            {
                Console.Error.WriteLine($"gatehouse-fuzz: no target named '{name}'. Run with --list to see them.");
                return 2;
            }

            selected.Add(target);
        }

        if (selected.Count == 0)
        {
            selected.AddRange(FuzzTargets.All);
        }

        return replay ? Replay(selected) : Fuzz(selected, duration, executions, seed, save);
    }

    private static int Replay(List<FuzzTarget> targets)
    {
        var failures = 0;
        var count = 0;
        foreach (var target in targets)
        {
            foreach (var file in RepoPaths.FilesOf(RepoPaths.RegressionsDirectory, target.Name).Concat(RepoPaths.FilesOf(RepoPaths.CorpusDirectory, target.Name)))
            {
                count++;
                if (FuzzEngine.RunOne(target, File.ReadAllBytes(file)) is { } failure)
                {
                    failures++;
                    Console.WriteLine($"FAIL {target.Name} {Path.GetFileName(file)}: {failure.Exception.Message}");
                }
            }
        }

        Console.WriteLine($"replayed {count} inputs, {failures} failed");
        return failures == 0 ? 0 : 1;
    }

    private static int Fuzz(List<FuzzTarget> targets, TimeSpan duration, long executions, int seed, bool save)
    {
        var perTarget = duration == TimeSpan.MaxValue ? duration : duration / targets.Count;
        Console.WriteLine($"Fuzzing {targets.Count} targets, {perTarget.TotalSeconds:0.#} s each, seed {seed}, on {Environment.ProcessorCount} cores");
        var reports = new System.Collections.Concurrent.ConcurrentBag<FuzzReport>();
        var clock = Stopwatch.StartNew();
        Parallel.ForEach(
            targets,
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            target =>
            {
                var extra = RepoPaths.FilesOf(RepoPaths.CorpusDirectory, target.Name)
                    .Concat(RepoPaths.FilesOf(RepoPaths.RegressionsDirectory, target.Name))
                    .Select(File.ReadAllBytes)
                    .ToList();
                var options = new FuzzOptions { Duration = perTarget, MaxExecutions = executions, Seed = seed ^ target.Name.GetHashCode(StringComparison.Ordinal) };
                var report = FuzzEngine.Run(target, options, extra);
                reports.Add(report);
                Console.WriteLine($"  {report.Target,-32} {report.Executions,12:N0} execs {report.ExecutionsPerSecond,10:N0}/s {report.Failures.Count} findings");
            });

        var total = reports.Sum(r => r.Executions);
        var findings = reports.SelectMany(r => r.Failures).ToList();
        foreach (var failure in findings)
        {
            Console.WriteLine($"FINDING {failure.Target}: {failure.Signature}");
            Console.WriteLine($"  input {Hex.Format(failure.Input.AsSpan(0, Math.Min(failure.Input.Length, 64)))}{(failure.Input.Length > 64 ? "…" : "")}");
            Console.WriteLine($"  {failure.Exception.GetType().Name}: {failure.Exception.Message}");
            if (save)
            {
                var dir = Path.Combine(RepoPaths.RegressionsDirectory, failure.Target);
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, failure.FileName);
                File.WriteAllBytes(path, failure.Input);
                Console.WriteLine($"  saved {Path.GetRelativePath(RepoPaths.FindRoot()!, path)}");
            }
        }

        Console.WriteLine($"Total: {total:N0} executions in {clock.Elapsed.TotalSeconds:0.0} s ({total / clock.Elapsed.TotalSeconds:N0}/s), {findings.Count} findings");
        return findings.Count == 0 ? 0 : 1;
    }
}
