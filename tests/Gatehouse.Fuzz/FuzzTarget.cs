namespace Gatehouse.Fuzz;

/// <summary>
/// Runs one parser (or a family of parsers) on one input and checks its invariants. It throws
/// <see cref="OracleViolationException"/> when an invariant fails; any other exception escaping it is a
/// parser bug, because parsers report malformed input only through <c>PduError</c>.
/// </summary>
public delegate void FuzzOracle(ReadOnlySpan<byte> input);

/// <summary>A parser under fuzzing: a name (also the corpus and regression folder name), seeds and an oracle.</summary>
public sealed class FuzzTarget(string name, IReadOnlyList<byte[]> seeds, FuzzOracle oracle)
{
    public string Name { get; } = name;

    public IReadOnlyList<byte[]> Seeds { get; } = seeds;

    public FuzzOracle Oracle { get; } = oracle;

    public override string ToString() => Name;
}

/// <summary>An invariant of a parser failed on some input (not thrown by parsers, only by oracles).</summary>
public sealed class OracleViolationException : Exception
{
    public OracleViolationException()
    {
    }

    public OracleViolationException(string message)
        : base(message)
    {
    }

    public OracleViolationException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
