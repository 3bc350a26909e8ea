using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using Gatehouse.Fuzz;
using SharpFuzz;

namespace Gatehouse.AflFuzz;

/// <summary>
/// The afl++ harness over the targets of tests/Gatehouse.Fuzz (one registry, two engines). scripts/fuzz.sh publishes it,
/// instruments Gatehouse.Protocol.dll in the publish folder with <c>dotnet sharpfuzz</c> and runs
/// <c>afl-fuzz ... -- dotnet Gatehouse.AflFuzz.dll run TARGET</c>. The other commands prepare seeds and measure edges.
/// </summary>
internal static class Program
{
    /// <summary>afl++'s map size for SharpFuzz (MAP_SIZE, 64 KiB): one byte per edge tuple.</summary>
    private const int MapSize = 1 << 16;

    /// <summary>Inputs longer than this are cut (afl++ itself caps files at 1 MiB).</summary>
    private const int MaxInput = 1 << 20;

    private const string Usage = """
        Usage: Gatehouse.AflFuzz COMMAND [arguments]

        Commands:
          run TARGET                   the afl++ fork-server harness (run under afl-fuzz); a finding is an exception;
                                       each input runs in a child process, so a stack overflow is a finding too
          run-in-process TARGET        the same, every input in one process (faster; a stack overflow ends the run)
          list                         the target names
          seeds TARGET DIR             write the target's built-in seeds and its testdata/fuzz-corpus and
                                       testdata/fuzz-regressions files into DIR (afl-fuzz -i)
          replay TARGET FILE...        run files through the target's oracle; exit 1 if any fails (finding triage)
          edges TARGET DIR...          the edges of Gatehouse.Protocol (instrumented) that the files in DIR reach
          mutate TARGET SECONDS OUTDIR run the in-repo mutation fuzzer for SECONDS on the instrumented library and keep
                                       the inputs that reached new edges in OUTDIR (for afl-showmap); prints the edges
        """;

    /// <summary>
    /// Where the instrumented library counts edges outside a measurement: the target registry runs instrumented code
    /// to build its seeds, before afl-fuzz's shared memory (or a measurement's map) is attached.
    /// </summary>
    private static readonly byte[] Scratch = GC.AllocateArray<byte>(MapSize, pinned: true);

    private static unsafe int Main(string[] args)
    {
        SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref Scratch[0]);
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == "list")
        {
            foreach (var t in FuzzTargets.All)
            {
                Console.WriteLine(t.Name);
            }

            return 0;
        }

        if (args.Length < 2 || Find(args[1]) is not { } target)
        {
            Console.Error.WriteLine(args.Length < 2 ? Usage : $"Gatehouse.AflFuzz: no target named '{args[1]}'; run 'list' to see them.");
            return 2;
        }

        switch (args[0])
        {
            case "run":
                Fuzzer.OutOfProcess.Run(stream => Execute(target, stream));
                return 0;
            case "run-in-process":
                Fuzzer.Run(stream => Execute(target, stream));
                return 0;
            case "seeds" when args.Length == 3:
                return WriteSeeds(target, args[2]);
            case "replay" when args.Length >= 3:
                return Replay(target, args[2..]);
            case "edges" when args.Length >= 3:
                return Edges(target, args[2..]);
            case "mutate" when args.Length == 4:
                return Mutate(target, TimeSpan.FromSeconds(double.Parse(args[2], CultureInfo.InvariantCulture)), args[3]);
            default:
                Console.Error.WriteLine(Usage);
                return 2;
        }
    }

    /// <summary>
    /// A target of the registry, or <c>selftest-crash</c>: a target outside the registry whose oracle fails on any input
    /// that starts with 0xFF (after running the X.224 request parser, so afl++ sees instrumented code), so
    /// scripts/fuzz.sh can show that a finding under afl++ fails the run.
    /// </summary>
    private static FuzzTarget? Find(string name) =>
        name == "selftest-crash"
            ? new FuzzTarget(name, [[0x03, 0x00]], input =>
            {
                FuzzTargets.Find("x224-connection-request")!.Oracle(input);
                if (input.Length > 0 && input[0] == 0xFF)
                {
                    throw new OracleViolationException("selftest-crash: the input starts with 0xFF");
                }
            })
            : FuzzTargets.Find(name);

    /// <summary>One afl++ execution: the oracle's verdict, with any finding rethrown so SharpFuzz reports a crash.</summary>
    private static void Execute(FuzzTarget target, Stream stream)
    {
        var input = ReadCapped(stream);
        if (FuzzEngine.RunOne(target, input) is { } failure)
        {
            throw new FuzzFindingException($"{target.Name}: {failure.Signature}", failure.Exception);
        }
    }

    private static byte[] ReadCapped(Stream stream)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while (memory.Length < MaxInput && (read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, MaxInput - memory.Length))) > 0)
        {
            memory.Write(buffer, 0, read);
        }

        return memory.ToArray();
    }

    private static int WriteSeeds(FuzzTarget target, string dir)
    {
        Directory.CreateDirectory(dir);
        var inputs = target.Seeds
            .Concat(RepoPaths.FilesOf(RepoPaths.CorpusDirectory, target.Name).Select(File.ReadAllBytes))
            .Concat(RepoPaths.FilesOf(RepoPaths.RegressionsDirectory, target.Name).Select(File.ReadAllBytes))
            .Where(b => b.Length is > 0 and <= MaxInput)
            .DistinctBy(Convert.ToHexString)
            .ToList();
        foreach (var input in inputs)
        {
            File.WriteAllBytes(Path.Combine(dir, Name(input)), input);
        }

        Console.WriteLine($"{inputs.Count} seeds for {target.Name} in {dir}");
        return inputs.Count == 0 ? 1 : 0;
    }

    private static int Replay(FuzzTarget target, string[] files)
    {
        var failed = 0;
        foreach (var file in files)
        {
            if (FuzzEngine.RunOne(target, File.ReadAllBytes(file)) is { } failure)
            {
                failed++;
                Console.WriteLine($"FAIL {file}: {failure.Signature}");
                Console.WriteLine($"  {failure.Exception.GetType().Name}: {failure.Exception.Message}");
            }
            else
            {
                Console.WriteLine($"pass {file}");
            }
        }

        return failed == 0 ? 0 : 1;
    }

    private static unsafe int Edges(FuzzTarget target, string[] dirs)
    {
        var map = new byte[MapSize];
        var files = 0;
        fixed (byte* trace = map)
        {
            SharpFuzz.Common.Trace.SharedMem = trace;
            foreach (var file in dirs.SelectMany(d => Directory.Exists(d) ? Directory.GetFiles(d) : [d]))
            {
                files++;
                SharpFuzz.Common.Trace.PrevLocation = 0;
                FuzzEngine.RunOne(target, File.ReadAllBytes(file));
            }

            SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref Scratch[0]);
        }

        Console.WriteLine($"{target.Name}: {CountNonZero(map)} edges from {files} inputs");
        return 0;
    }

    private static unsafe int Mutate(FuzzTarget target, TimeSpan duration, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var map = new byte[MapSize];
        var seen = new byte[MapSize];
        var kept = 0;
        FuzzReport report;
        fixed (byte* trace = map)
        {
            SharpFuzz.Common.Trace.SharedMem = trace;
            var extra = RepoPaths.FilesOf(RepoPaths.CorpusDirectory, target.Name)
                .Concat(RepoPaths.FilesOf(RepoPaths.RegressionsDirectory, target.Name))
                .Select(File.ReadAllBytes)
                .ToList();
            report = FuzzEngine.Run(
                target,
                new FuzzOptions { Duration = duration, Seed = 1234 },
                extra,
                executed: input =>
                {
                    if (MergeNew(map, seen))
                    {
                        kept++;
                        File.WriteAllBytes(Path.Combine(outDir, Name(input)), input);
                    }

                    SharpFuzz.Common.Trace.PrevLocation = 0;
                });
            SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref Scratch[0]);
        }

        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{target.Name}: {CountNonZero(seen)} edges, {report.Executions} execs in {report.Elapsed.TotalSeconds:0.0} s ({report.ExecutionsPerSecond:0}/s), {kept} inputs kept, {report.Failures.Count} findings"));
        foreach (var failure in report.Failures)
        {
            Console.WriteLine($"FINDING {failure.Signature}");
        }

        return report.Failures.Count == 0 ? 0 : 1;
    }

    /// <summary>Marks the map's hit tuples in <paramref name="seen"/> and clears the map; true when a tuple was new.</summary>
    private static bool MergeNew(byte[] map, byte[] seen)
    {
        var fresh = false;
        var width = Vector<byte>.Count;
        for (var i = 0; i < MapSize; i += width)
        {
            var hit = new Vector<byte>(map, i);
            if (hit == Vector<byte>.Zero)
            {
                continue;
            }

            var old = new Vector<byte>(seen, i);
            var now = Vector.BitwiseOr(old, Vector.GreaterThan(hit, Vector<byte>.Zero));
            if (now != old)
            {
                fresh = true;
                now.CopyTo(seen, i);
            }

            Vector<byte>.Zero.CopyTo(map, i);
        }

        return fresh;
    }

    private static int CountNonZero(byte[] map) => map.Count(b => b != 0);

    private static string Name(byte[] input) => "id-" + Convert.ToHexStringLower(SHA256.HashData(input))[..16];
}

/// <summary>An oracle failed under afl++: thrown so SharpFuzz reports the input as a crash.</summary>
internal sealed class FuzzFindingException : Exception
{
    public FuzzFindingException()
    {
    }

    public FuzzFindingException(string message)
        : base(message)
    {
    }

    public FuzzFindingException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
