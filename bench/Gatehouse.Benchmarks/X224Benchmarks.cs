using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Benchmarks;

/// <summary>Negotiation: what the gateway does once per connection before TLS.</summary>
[MemoryDiagnoser]
public class X224Benchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(256);
    private byte[] _request = [];
    private ConnectionConfirm _confirm = null!;

    [GlobalSetup]
    public void Setup()
    {
        _request = Captures.Load("c2s-000-x224-connection-request.bin");
        _confirm = new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.RdsAad, NegotiationResponseFlags.ExtendedClientDataSupported));
    }

    [Benchmark]
    public SecurityProtocol ParseConnectionRequest()
    {
        return ConnectionRequest.TryParse(_request, out var request, out _)
            ? request.RequestedProtocols
            : throw new InvalidOperationException("the captured request no longer parses");
    }

    [Benchmark]
    public int WriteConnectionConfirm()
    {
        _output.ResetWrittenCount();
        _confirm.Write(_output);
        return _output.WrittenCount;
    }
}
