using System.Diagnostics;
using System.Security.Cryptography;

namespace Gatehouse.Fuzz;

/// <summary>One input that broke an oracle.</summary>
public sealed record FuzzFailure(string Target, byte[] Input, Exception Exception)
{
    /// <summary>A stable name for the input: <c>crash-</c> and the first 16 hex digits of its SHA-256.</summary>
    public string FileName => "crash-" + Convert.ToHexStringLower(SHA256.HashData(Input))[..16] + ".bin";

    /// <summary>Exception type and the first frame: failures with the same signature are the same bug.</summary>
    public string Signature
    {
        get
        {
            var frame = Exception.StackTrace?.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "";
            return $"{Exception.GetType().Name} {frame}";
        }
    }
}

/// <summary>What a run did.</summary>
public sealed record FuzzReport(string Target, long Executions, TimeSpan Elapsed, IReadOnlyList<FuzzFailure> Failures)
{
    public double ExecutionsPerSecond => Elapsed.TotalSeconds > 0 ? Executions / Elapsed.TotalSeconds : 0;
}

/// <summary>Run limits: whichever comes first of <see cref="MaxExecutions"/> and <see cref="Duration"/>.</summary>
public sealed record FuzzOptions
{
    public long MaxExecutions { get; init; } = long.MaxValue;

    public TimeSpan Duration { get; init; } = TimeSpan.MaxValue;

    public int Seed { get; init; } = 1234;

    /// <summary>Distinct failure signatures to collect before stopping.</summary>
    public int MaxFailures { get; init; } = 16;

    /// <summary>
    /// Allocation allowed for one execution: a constant plus a multiple of the input length. A parser that allocates
    /// from a declared length (the C# form of CVE-2020-11018) breaks it.
    /// </summary>
    public long AllocationConstant { get; init; } = 1 << 20;

    public long AllocationPerInputByte { get; init; } = 256;
}

/// <summary>
/// The mutation loop: every input runs through the target's oracle on an exact-length copy (so any read past the
/// end is caught), and any exception other than an oracle pass is a failure, as is an allocation beyond the bound.
/// </summary>
public static class FuzzEngine
{
    /// <summary>Runs one input once (used for regression replay).</summary>
    public static FuzzFailure? RunOne(FuzzTarget target, ReadOnlySpan<byte> input, FuzzOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new FuzzOptions();
        var exact = input.ToArray();
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            target.Oracle(exact);
        }
#pragma warning disable CA1031 // Catching everything is the point: any exception is a finding.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return new FuzzFailure(target.Name, exact, ex);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var limit = options.AllocationConstant + (options.AllocationPerInputByte * exact.Length);
        return allocated > limit
            ? new FuzzFailure(target.Name, exact, new OracleViolationException($"allocated {allocated} bytes for a {exact.Length}-byte input (limit {limit})"))
            : null;
    }

    /// <summary>
    /// Mutates the target's seeds until the limits are reached. <paramref name="executed"/>, when given, sees every input
    /// after it ran (the coverage measurement in tests/Gatehouse.AflFuzz keeps the ones that reached new edges).
    /// </summary>
    public static FuzzReport Run(FuzzTarget target, FuzzOptions options, IReadOnlyList<byte[]>? extraSeeds = null, Action<long>? progress = null, Action<byte[]>? executed = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        var seeds = target.Seeds.Concat(extraSeeds ?? []).Where(s => s.Length > 0).ToList();
        if (seeds.Count == 0)
        {
            seeds.Add([0]);
        }

        var random = new Random(options.Seed);
        var mutator = new Mutator(random);
        var failures = new List<FuzzFailure>();
        var signatures = new HashSet<string>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        long executions = 0;

        // The seeds themselves first: they must pass.
        foreach (var seed in seeds)
        {
            executions++;
            if (RunOne(target, seed, options) is { } failure && signatures.Add(failure.Signature))
            {
                failures.Add(failure);
            }

            executed?.Invoke(seed);
        }

        while (executions < options.MaxExecutions && failures.Count < options.MaxFailures)
        {
            if ((executions & 0x3FF) == 0)
            {
                progress?.Invoke(executions);
                if (clock.Elapsed >= options.Duration)
                {
                    break;
                }
            }

            var input = mutator.Mutate(seeds[random.Next(seeds.Count)], seeds);
            executions++;
            if (RunOne(target, input, options) is { } failure && signatures.Add(failure.Signature))
            {
                failures.Add(failure);
            }

            executed?.Invoke(input);
        }

        return new FuzzReport(target.Name, executions, clock.Elapsed, failures);
    }
}
