using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// A connection feature that hands the client leg's TLS a <see cref="Stream"/> whose writes go straight to the socket,
/// instead of a stream over the connection's pipes: the session driver reads the X.224 exchange from the pipes, then
/// asks for the stream once.
/// </summary>
public interface IClientLegStreamFeature
{
    /// <summary>
    /// Ends the connection's output pipe and returns the stream the rest of the connection runs on: its reads take what
    /// the connection has received and the driver has not consumed (a TLS ClientHello sent behind the Connection
    /// Request comes first), its writes go to the socket. Call it once, when nothing else reads or writes the pipes.
    /// </summary>
    Stream TakeStream();
}

/// <summary>
/// One client connection accepted by <see cref="RdpSocketListener"/>, as the <see cref="ConnectionContext"/> the session
/// driver (<see cref="RdpConnectionHandler"/>) runs on.
/// </summary>
/// <remarks>
/// <para>Receiving works as Kestrel's socket transport does: a loop receives whatever arrives into the input pipe, so the
/// end of the client's stream (or a reset) is seen at once, whatever phase the driver is in, and
/// <see cref="ConnectionClosed"/> fires then (a client that leaves while its sign-in is decided is noticed). It waits
/// for data with a zero-byte receive, so an idle connection holds no receive buffer.</para>
/// <para>Sending does not: before TLS the X.224 answer goes through a small pipe writer on the socket's stream, and from
/// TLS on every record the TLS stream writes goes straight to the socket (<see cref="IClientLegStreamFeature"/>), with
/// no pipe flush and no wake-up of a sending loop per record, which is what the Kestrel endpoint cost.</para>
/// </remarks>
internal sealed class SocketClientConnection : ConnectionContext, IClientLegStreamFeature, IDuplexPipe
{
    /// <summary>The most bytes received ahead of the driver before the receive loop waits for it (as Kestrel's 1 MiB default is for HTTP; the driver reads TLS records of at most 16 KiB).</summary>
    private const int MaxReceivedAhead = 64 * 1024;

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    // The reader's continuation runs inline on the receive loop (readerScheduler Inline, as Kestrel's
    // UnsafePreferInlineScheduling): what the client sent is decrypted and relayed on the thread that received it,
    // instead of one more thread-pool work item per message. The loop waits for it (its flush returns when the reader
    // has taken the data or parked in its next read), which only delays this connection's next receive.
    private readonly Pipe _received = new(new PipeOptions(readerScheduler: PipeScheduler.Inline, pauseWriterThreshold: MaxReceivedAhead, resumeWriterThreshold: MaxReceivedAhead / 2, minimumSegmentSize: 4096, useSynchronizationContext: false));
    private readonly PipeWriter _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly FeatureCollection _features = new();
    private Task _receiving = Task.CompletedTask;
    private int _taken;
    private int _disposed;
    private int _closedFired;

    public SocketClientConnection(Socket socket, string connectionId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        ConnectionId = connectionId;
        RemoteEndPoint = socket.RemoteEndPoint;
        LocalEndPoint = socket.LocalEndPoint;
        _stream = new NetworkStream(socket, ownsSocket: true);
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

    PipeReader IDuplexPipe.Input => _received.Reader;

    PipeWriter IDuplexPipe.Output => _output;

    /// <summary>Starts the receive loop (the listener does, before the driver runs).</summary>
    public void Start() => _receiving = ReceiveAsync();

    public Stream TakeStream()
    {
        if (Interlocked.Exchange(ref _taken, 1) != 0)
        {
            throw new InvalidOperationException("the client leg's stream was already taken");
        }

        _output.Complete();
        return new ClientLegStream(_received.Reader, _stream);
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        FireClosed();
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
            try
            {
                await _output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
                // What was not yet sent cannot be: the client is gone.
            }
        }

        // The driver is done: a receive loop waiting for it to read ends, and closing the socket ends a pending receive.
        await _received.Reader.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        await _receiving.ConfigureAwait(false);
        // Fired by now even if the receive loop's (queued) firing has not run yet: the connection is over.
        Interlocked.Exchange(ref _closedFired, 1);
        await _closed.CancelAsync().ConfigureAwait(false);
    }

    /// <summary>Receives into the input pipe until the client's stream ends, fails or the socket is closed.</summary>
    private async Task ReceiveAsync()
    {
        var writer = _received.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // Wait for data without holding a buffer, then take what has arrived (at once: it is there).
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None).ConfigureAwait(false);
                var buffer = writer.GetMemory(Math.Clamp(_socket.Available, 2048, MaxReceivedAhead));
                var received = await _socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
                if (received == 0)
                {
                    // The client closed its side.
                    break;
                }

                writer.Advance(received);
                var flushed = await writer.FlushAsync().ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    // The driver is done reading.
                    break;
                }
            }
        }
        catch (SocketException e)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (ObjectDisposedException)
        {
            // The gateway closed the connection.
        }

        await writer.CompleteAsync(error).ConfigureAwait(false);
        FireClosed();
    }

    private void FireClosed()
    {
        if (Interlocked.Exchange(ref _closedFired, 1) == 0)
        {
            // Off the receive loop, as Kestrel does: the token's callbacks (a driver's cancellations) run on the pool.
            ThreadPool.UnsafeQueueUserWorkItem(static closed => closed.Cancel(), _closed, preferLocal: false);
        }
    }

    /// <summary>Reads from the input pipe (what the receive loop took from the socket), writes straight to the socket.</summary>
    private sealed class ClientLegStream(PipeReader input, NetworkStream output) : DuplexStreamBase
    {
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var available = read.Buffer;
            if (buffer.IsEmpty || available.IsEmpty)
            {
                // A zero-byte read (waiting without a buffer) or the end of the stream: nothing is taken.
                input.AdvanceTo(available.Start);
                return 0;
            }

            var count = (int)Math.Min(available.Length, buffer.Length);
            available.Slice(0, count).CopyTo(buffer.Span);
            input.AdvanceTo(available.GetPosition(count));
            return count;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);

        public override void Write(ReadOnlySpan<byte> buffer) => output.Write(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            output.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                output.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
