using System.Buffers;
using Gatehouse.Fuzz;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Fuzzing;

/// <summary>The fuzzer must be able to fail: planted bugs are found.</summary>
public sealed class FuzzEngineTests
{
    [Fact]
    public void Run_ParserThatReadsPastTheEnd_IsFound()
    {
        // A "parser" that trusts a length byte: reads input[1 + input[0]] without a bounds check.
        var target = new FuzzTarget("planted-oob", [[3, 1, 2, 3, 4]], input => _ = input[1 + input[0]]);
        var report = FuzzEngine.Run(target, new FuzzOptions { MaxExecutions = 20_000, Seed = 1, MaxFailures = 1 });
        Assert.Contains(report.Failures, f => f.Exception is IndexOutOfRangeException);
    }

    [Fact]
    public void Run_ParserThatAllocatesFromALengthField_IsFound()
    {
        // CVE-2020-11018 in C#: allocate what a 32-bit length field says before checking the input holds it.
        var target = new FuzzTarget("planted-alloc", [[0, 0, 0, 4, 1, 2, 3, 4]], input =>
        {
            if (input.Length >= 4)
            {
                var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(input) & 0x00FFFFFF;
                GC.KeepAlive(new byte[length]);
            }
        });
        var report = FuzzEngine.Run(target, new FuzzOptions { MaxExecutions = 50_000, Seed = 1, MaxFailures = 1 });
        Assert.Contains(report.Failures, f => f.Exception is OracleViolationException && f.Exception.Message.Contains("allocated", StringComparison.Ordinal));
    }

    [Fact]
    public void Run_Executed_SeesEveryInputThatRan()
    {
        // The afl++ comparison (tests/Gatehouse.AflFuzz mutate) keeps inputs through this hook: it must see each one.
        var ran = new List<byte[]>();
        var target = new FuzzTarget("observed", [[1, 2, 3]], input => ran.Add(input.ToArray()));
        var seen = new List<byte[]>();
        var report = FuzzEngine.Run(target, new FuzzOptions { MaxExecutions = 500, Seed = 1 }, executed: seen.Add);
        Assert.Equal(report.Executions, seen.Count);
        Assert.Equal(ran.Select(Convert.ToHexString), seen.Select(Convert.ToHexString));
    }

    [Fact]
    public void ParseWriteParse_RefusalWithoutError_IsAViolation()
    {
        SpanParser<int> silent = (ReadOnlySpan<byte> _, out int v, out PduError? e) =>
        {
            v = 0;
            e = null;
            return false;
        };
        var oracle = Oracles.ParseWriteParse(silent, (_, _) => { });
        Assert.Throws<OracleViolationException>(() => oracle([1]));
    }

    [Fact]
    public void ParseWriteParse_WriterThatBreaksTheFormat_IsAViolation()
    {
        var oracle = Oracles.ParseWriteParse<ConnectionConfirm>(ConnectionConfirm.TryParse, (_, o) => o.Write<byte>([0xFF]));
        Assert.Throws<OracleViolationException>(() => oracle(Gatehouse.Fuzz.Corpus.X224Corpus.ConfirmHybrid));
    }

    [Fact]
    public void ParseOnly_AcceptsRefusalsWithErrors()
    {
        var oracle = Oracles.ParseOnly<ConnectionConfirm>(ConnectionConfirm.TryParse);
        oracle([0x03]);
        oracle(Gatehouse.Fuzz.Corpus.X224Corpus.ConfirmHybrid);
    }

    [Fact]
    public void Mutator_IsDeterministicAndBounded()
    {
        var seed = Gatehouse.Fuzz.Corpus.X224Corpus.SpecConnectionRequest;
        var a = new Mutator(new Random(7), maxLength: 64);
        var b = new Mutator(new Random(7), maxLength: 64);
        for (var i = 0; i < 1000; i++)
        {
            var x = a.Mutate(seed, [seed]);
            Assert.Equal(x, b.Mutate(seed, [seed]));
            Assert.True(x.Length <= 64);
        }
    }

    [Fact]
    public void Failure_FileNameAndSignature_AreStable()
    {
        var failure = new FuzzFailure("t", [1, 2, 3], new InvalidOperationException("x"));
        Assert.Equal("crash-039058c6f2c0cb49.bin", failure.FileName);
        Assert.StartsWith("InvalidOperationException", failure.Signature, StringComparison.Ordinal);
        var report = new FuzzReport("t", 10, TimeSpan.FromSeconds(2), []);
        Assert.Equal(5, report.ExecutionsPerSecond);
        Assert.NotNull(new ArrayBufferWriter<byte>());
    }
}
