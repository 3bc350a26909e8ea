using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// A connection feature that hands the client leg's TLS a <see cref="Stream"/> straight on the socket, instead of a
/// stream over the connection's pipes: the session driver reads the X.224 exchange from the pipes, then asks for the
/// stream once.
/// </summary>
public interface IClientLegStreamFeature
{
    /// <summary>
    /// Ends the connection's pipes and returns the stream the rest of the connection runs on: the bytes the pipe had
    /// already read beyond what the driver consumed (a TLS ClientHello sent behind the Connection Request) come first,
    /// then the socket's. Call it once, when nothing else reads or writes the pipes.
    /// </summary>
    Stream TakeStream();
}

/// <summary>
/// One client connection accepted by <see cref="RdpSocketListener"/>, as the <see cref="ConnectionContext"/> the session
/// driver (<see cref="RdpConnectionHandler"/>) runs on. Before TLS its <see cref="Transport"/> is a pair of small pipes
/// over a <see cref="NetworkStream"/> (the X.224 exchange is a few hundred bytes); from TLS on, the driver takes the
/// <see cref="NetworkStream"/> itself (<see cref="IClientLegStreamFeature"/>), so every relayed record goes
/// socket → <see cref="System.Net.Security.SslStream"/> with no pipe and no transport thread between them.
/// </summary>
/// <remarks>
/// <see cref="ConnectionClosed"/> fires when the connection is aborted (the listener stopping, an admission refusal) and
/// when the connection is disposed after the driver returns. A client that leaves is seen by the reads and writes of
/// the phase that runs (end of stream, or an <see cref="IOException"/>), as the relay expects.
/// </remarks>
internal sealed class SocketClientConnection : ConnectionContext, IClientLegStreamFeature, IDuplexPipe
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly FeatureCollection _features = new();
    private int _taken;
    private int _disposed;

    public SocketClientConnection(Socket socket, string connectionId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        ConnectionId = connectionId;
        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
        _stream = new NetworkStream(socket, ownsSocket: true);
        // Small buffers: before TLS the client sends one X.224 Connection Request (at most 1 KiB) and perhaps a
        // preconnection PDU (at most 4 KiB); the buffers are gone once the stream is taken.
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 512, leaveOpen: true));
        _features.Set<IClientLegStreamFeature>(this);
        Transport = this;
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features => _features;

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport { get; set; }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException("the connection's closed token is its own");
    }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override EndPoint? LocalEndPoint { get; set; }

    PipeReader IDuplexPipe.Input => _input;

    PipeWriter IDuplexPipe.Output => _output;

    public Stream TakeStream()
    {
        if (Interlocked.Exchange(ref _taken, 1) != 0)
        {
            throw new InvalidOperationException("the client leg's stream was already taken");
        }

        byte[]? ahead = null;
        if (_input.TryRead(out var read))
        {
            if (!read.Buffer.IsEmpty)
            {
                ahead = read.Buffer.ToArray();
            }

            _input.AdvanceTo(read.Buffer.End);
        }

        _input.Complete();
        _output.Complete();
        return ahead is null ? _stream : new ReadAheadStream(ahead, _stream);
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Cancel();
        try
        {
            // A hard close, as Kestrel's abort: the client sees a reset, pending reads and writes end at once.
            _socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        _socket.Dispose();
    }

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await CloseAsync().ConfigureAwait(false);
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task CloseAsync()
    {
        if (Volatile.Read(ref _taken) == 0)
        {
            await _input.CompleteAsync().ConfigureAwait(false);
            try
            {
                await _output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
                // What was not yet sent cannot be: the client is gone.
            }
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        Cancel();
        _closed.Dispose();
    }

    private void Cancel()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>The bytes read ahead of the driver, then the socket's stream.</summary>
    private sealed class ReadAheadStream(byte[] ahead, NetworkStream inner) : Stream
    {
        private int _offset;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_offset < ahead.Length)
            {
                return TakeAhead(buffer);
            }

            return inner.Read(buffer);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_offset < ahead.Length)
            {
                return ValueTask.FromResult(TakeAhead(buffer.Span));
            }

            return inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        private int TakeAhead(Span<byte> buffer)
        {
            // A zero-byte read (the relay's way of waiting without a buffer) completes at once: there is data.
            var count = Math.Min(buffer.Length, ahead.Length - _offset);
            ahead.AsSpan(_offset, count).CopyTo(buffer);
            _offset += count;
            return count;
        }
    }
}
