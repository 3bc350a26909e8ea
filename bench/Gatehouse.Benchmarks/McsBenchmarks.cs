using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Benchmarks;

/// <summary>
/// The MCS Connect Initial/Response work of one gateway connection, on FreeRDP's and xrdp's captured PDUs: the full
/// parse into the object model, the object-model rewrite, and the in-place patch the relay uses.
/// </summary>
[MemoryDiagnoser]
public class McsBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(1024);
    private byte[] _initial = [];
    private byte[] _response = [];
    private byte[] _scratch = [];

    [GlobalSetup]
    public void Setup()
    {
        _initial = Captures.Load("c2s-001-mcs-connect-initial.bin")[7..];
        _response = Captures.Load("s2c-001-mcs-connect-response.bin")[7..];
        _scratch = new byte[_initial.Length];
    }

    [Benchmark]
    public int ParseConnectInitial() =>
        McsConnectInitial.TryParse(_initial, out var pdu, out _) ? pdu.Blocks.Count : throw new InvalidOperationException("no longer parses");

    [Benchmark]
    public int ParseAndRewriteConnectInitial()
    {
        if (!McsConnectInitial.TryParse(_initial, out var pdu, out _) || !pdu.TryWithServerSelectedProtocol(SecurityProtocol.Ssl, out var rewritten, out _))
        {
            throw new InvalidOperationException("no longer parses");
        }

        _output.ResetWrittenCount();
        rewritten.Write(_output);
        return _output.WrittenCount;
    }

    /// <summary>Copy into the relay buffer, validate the structure and patch in place: what the gateway does per connection.</summary>
    [Benchmark(Baseline = true)]
    public bool PatchConnectInitialInPlace()
    {
        _initial.CopyTo(_scratch, 0);
        return McsConnectPatch.TrySetServerSelectedProtocol(_scratch, SecurityProtocol.Ssl, out _);
    }

    [Benchmark]
    public bool PatchConnectResponseInPlace() =>
        McsConnectPatch.TrySetClientRequestedProtocols(_response, SecurityProtocol.RdsAad, out _);
}
