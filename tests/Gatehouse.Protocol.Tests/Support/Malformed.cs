using System.Buffers;
using Gatehouse.Fuzz;

namespace Gatehouse.Protocol.Tests.Support;

/// <summary>
/// Shared assertions for malformed input: the parser refuses with a <see cref="PduError"/> (of the expected kind, when
/// given), throws nothing, and allocates no more than the input length implies.
/// </summary>
internal static class Malformed
{
    /// <summary>Allowed allocation: a small constant (the error record and its strings) plus a multiple of the input.</summary>
    public const long ConstantAllowance = 4096;

    public static PduError Rejects<T>(SpanParser<T> parse, byte[] input, PduErrorKind? kind = null)
    {
        // Warm up once so JIT and static initialisation do not count as allocation of the parse itself.
        _ = parse(input, out _, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var accepted = parse(input, out _, out var error);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(accepted, $"accepted malformed input {Hex.String(input)}");
        Assert.NotNull(error);
        if (kind is { } expected)
        {
            Assert.True(error.Kind == expected, $"expected {expected}, got {error.Kind}: {error}");
        }

        var limit = ConstantAllowance + (4L * input.Length);
        Assert.True(allocated <= limit, $"allocated {allocated} bytes for a {input.Length}-byte input (limit {limit}): {error}");
        return error;
    }

    /// <summary>Every strict prefix of a valid PDU is refused (truncation at every offset).</summary>
    public static int RejectsEveryTruncation<T>(SpanParser<T> parse, byte[] valid)
    {
        for (var length = 0; length < valid.Length; length++)
        {
            Rejects(parse, valid[..length]);
        }

        return valid.Length;
    }

    /// <summary>A two-segment sequence split at <paramref name="split"/>, to test parsers over pipes.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, int split)
    {
        var first = new Segment(bytes.AsMemory(0, split));
        var last = first.Append(bytes.AsMemory(split));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
