using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gatehouse.Protocol.Rdp;

namespace Gatehouse.Benchmarks;

/// <summary>Credential injection into FreeRDP's captured Client Info PDU (TPKT frame): parse, and the zero-allocation rewrite.</summary>
[MemoryDiagnoser]
public class ClientInfoBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(1024);
    private byte[] _frame = [];

    [GlobalSetup]
    public void Setup() => _frame = Captures.Load("c2s-010-client-info.bin");

    [Benchmark]
    public int ParseClientInfo() =>
        ClientInfoPdu.TryParse(_frame, out var pdu, out _) ? pdu.Packet.UserName.Length : throw new InvalidOperationException("no longer parses");

    /// <summary>Validate the whole frame, inject domain, user and password, set AUTOLOGON, drop the cookie, fix every length.</summary>
    [Benchmark(Baseline = true)]
    public int RewriteClientInfo()
    {
        _output.ResetWrittenCount();
        return ClientInfoRewriter.TryRewrite(_frame, new ClientInfoCredentials("VM1", "gh-admin", "Sw0rdfish!2026"), _output, out _)
            ? _output.WrittenCount
            : throw new InvalidOperationException("no longer rewrites");
    }
}
