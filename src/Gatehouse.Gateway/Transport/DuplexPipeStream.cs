using System.Buffers;
using System.IO.Pipelines;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// A <see cref="Stream"/> over a connection's <see cref="IDuplexPipe"/>, so <see cref="System.Net.Security.SslStream"/>
/// can run on a Kestrel connection after the plaintext X.224 exchange has been read from the pipe.
/// </summary>
/// <remarks>
/// A write is flushed to the connection at once, unless <see cref="FlushOnWrite"/> is off: the relay turns it off so
/// that the TLS records of one batch (SslStream writes each record on its own) leave in one flush, which it makes itself.
/// </remarks>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : DuplexStreamBase
{
    private readonly PipeWriter _writer = pipe.Output;

    private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
    private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

    /// <summary>True (the default): every write is flushed. False: writes wait in the pipe for <see cref="FlushAsync(CancellationToken)"/>.</summary>
    public bool FlushOnWrite { get; set; } = true;

    public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _input.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _input.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (FlushOnWrite)
        {
            return _output.WriteAsync(buffer, cancellationToken);
        }

        _writer.Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => _output.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _input.Dispose();
            _output.Dispose();
        }

        base.Dispose(disposing);
    }
}
