using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Gatehouse.Protocol;

namespace Gatehouse.Fuzz;

/// <summary>The shape shared by the span parsers of Gatehouse.Protocol.</summary>
public delegate bool SpanParser<T>(ReadOnlySpan<byte> input, [MaybeNullWhen(false)] out T value, out PduError? error);

/// <summary>Reusable oracles.</summary>
public static class Oracles
{
    /// <summary>
    /// Parse; a refusal must carry a <see cref="PduError"/>; an acceptance must write bytes that parse again
    /// (IronRDP's round-trip oracle: decoders may normalise, so only "written bytes parse" is asserted).
    /// </summary>
    public static FuzzOracle ParseWriteParse<T>(SpanParser<T> parse, Action<T, IBufferWriter<byte>> write)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(write);
        return input =>
        {
            if (!parse(input, out var value, out var error))
            {
                if (error is null)
                {
                    throw new OracleViolationException("parser refused the input without a PduError");
                }

                return;
            }

            if (error is not null)
            {
                throw new OracleViolationException("parser accepted the input but also returned an error");
            }

            var buffer = new ArrayBufferWriter<byte>();
            write(value, buffer);
            if (!parse(buffer.WrittenSpan, out _, out var again))
            {
                throw new OracleViolationException($"written bytes do not parse again: {again}");
            }
        };
    }

    /// <summary>Parse only: a refusal must carry a <see cref="PduError"/>.</summary>
    public static FuzzOracle ParseOnly<T>(SpanParser<T> parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return input =>
        {
            if (!parse(input, out _, out var error) && error is null)
            {
                throw new OracleViolationException("parser refused the input without a PduError");
            }
        };
    }

    /// <summary>Runs several oracles on the same bytes (IronRDP's pdu_decode feeds every decoder the same input).</summary>
    public static FuzzOracle All(params FuzzOracle[] oracles)
    {
        ArgumentNullException.ThrowIfNull(oracles);
        return input =>
        {
            foreach (var oracle in oracles)
            {
                oracle(input);
            }
        };
    }
}
