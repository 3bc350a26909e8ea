using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Transport;

namespace Gatehouse.Gateway.Tests.Relay;

/// <summary>The relay's byte pump: no buffer while parked, buffers always returned, batches of what has arrived.</summary>
public sealed class RelayPumpTests
{
    [Fact]
    public async Task Copy_MovesEveryByte_AndEndsWhenTheSourceEnds()
    {
        var data = Enumerable.Range(0, 300_000).Select(i => unchecked((byte)(i * 7))).ToArray();
        var pool = new CountingPool();
        var destination = new MemoryStream();
        var counted = 0L;
        var total = await RelayPump.CopyAsync(new ChunkedStream(data, 16 * 1024), destination, n => counted += n, CancellationToken.None, pool);
        Assert.Equal(data.Length, total);
        Assert.Equal(data.Length, counted);
        Assert.Equal(data, destination.ToArray());
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task Copy_TakesWhatHasArrived_InOneWrite()
    {
        // Ten records are there before the pump starts: one read gives one record, but they leave in one write.
        var data = new byte[10 * 1000];
        Random.Shared.NextBytes(data);
        var destination = new RecordingStream();
        await RelayPump.CopyAsync(new ChunkedStream(data, 1000), destination, null, CancellationToken.None, new CountingPool());
        Assert.Equal(data, destination.Written.ToArray());
        Assert.Equal(1, destination.Writes);
        Assert.Equal(1, destination.Flushes);
    }

    [Fact]
    public async Task Parked_HoldsNoBuffer_AndRentsOneWhenDataComes()
    {
        var pipe = new Pipe();
        var pool = new CountingPool();
        var destination = new RecordingStream();
        var pump = RelayPump.CopyAsync(pipe.Reader.AsStream(), destination, null, CancellationToken.None, pool);

        await pipe.Writer.WriteAsync(new byte[5000]);
        await Until.TrueAsync(() => destination.Length == 5000, "the first bytes relayed");
        // Nothing more to read: the pump waits in a zero-byte read and gives its buffer back.
        await Until.TrueAsync(() => pool.Outstanding == 0, "the buffer returned while parked");
        Assert.Equal(1, pool.Rented);

        await pipe.Writer.WriteAsync(new byte[3000]);
        await Until.TrueAsync(() => destination.Length == 8000, "the next bytes relayed");
        Assert.Equal(2, pool.Rented);
        await pipe.Writer.CompleteAsync();
        Assert.Equal(8000, await pump);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task FailedWrite_ReturnsTheBuffer_AndFails()
    {
        var pool = new CountingPool();
        var data = new byte[50_000];
        await Assert.ThrowsAsync<IOException>(() => RelayPump.CopyAsync(new ChunkedStream(data, 16 * 1024), new RecordingStream { FailWrites = true }, null, CancellationToken.None, pool));
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task Cancelled_WhileParked_ReturnsNothingHeld()
    {
        var pipe = new Pipe();
        var pool = new CountingPool();
        using var stop = new CancellationTokenSource();
        var destination = new RecordingStream();
        var pump = RelayPump.CopyAsync(pipe.Reader.AsStream(), destination, null, stop.Token, pool);
        await pipe.Writer.WriteAsync(new byte[100]);
        await Until.TrueAsync(() => destination.Length == 100, "the bytes relayed");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pump);
        Assert.Equal(0, pool.Outstanding);
    }

    [Fact]
    public async Task PipeStream_WithoutFlushOnWrite_SendsOnlyOnFlush()
    {
        var toClient = new Pipe();
        var duplex = new TestDuplexPipe(new Pipe().Reader, toClient.Writer);
        await using var stream = new DuplexPipeStream(duplex) { FlushOnWrite = false };
        await stream.WriteAsync(new byte[] { 1, 2, 3 });
        await stream.WriteAsync(new byte[] { 4 });
        Assert.False(toClient.Reader.TryRead(out _));
        await stream.FlushAsync();
        Assert.True(toClient.Reader.TryRead(out var result));
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, result.Buffer.ToArray());
        toClient.Reader.AdvanceTo(result.Buffer.End);

        stream.FlushOnWrite = true;
        await stream.WriteAsync(new byte[] { 5 });
        Assert.True(toClient.Reader.TryRead(out result));
        Assert.Equal(new byte[] { 5 }, result.Buffer.ToArray());
    }

    private sealed record TestDuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;

    /// <summary>Counts what is rented and returned.</summary>
    private sealed class CountingPool : ArrayPool<byte>
    {
        private int _outstanding;
        private int _rented;

        public int Outstanding => Volatile.Read(ref _outstanding);

        public int Rented => Volatile.Read(ref _rented);

        public override byte[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref _outstanding);
            Interlocked.Increment(ref _rented);
            return new byte[minimumLength];
        }

        public override void Return(byte[] array, bool clearArray = false) => Interlocked.Decrement(ref _outstanding);
    }

    /// <summary>A source that gives at most one record per read (as SslStream does) and has everything already there.</summary>
    private sealed class ChunkedStream(byte[] data, int record) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var take = Math.Min(Math.Min(buffer.Length, record), data.Length - _position);
            data.AsSpan(_position, take).CopyTo(buffer.Span);
            _position += take;
            return ValueTask.FromResult(take);
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Records writes and flushes (or fails every write).</summary>
    private sealed class RecordingStream : Stream
    {
        private readonly Lock _gate = new();
        private readonly MemoryStream _written = new();
        private int _writes;
        private int _flushes;

        public bool FailWrites { get; init; }

        public int Writes => Volatile.Read(ref _writes);

        public int Flushes => Volatile.Read(ref _flushes);

        public MemoryStream Written
        {
            get
            {
                lock (_gate)
                {
                    return new MemoryStream(_written.ToArray());
                }
            }
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length
        {
            get
            {
                lock (_gate)
                {
                    return _written.Length;
                }
            }
        }

        public override long Position { get => Length; set => throw new NotSupportedException(); }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (FailWrites)
            {
                throw new IOException("the destination is gone");
            }

            lock (_gate)
            {
                _written.Write(buffer.Span);
            }

            Interlocked.Increment(ref _writes);
            return ValueTask.CompletedTask;
        }

        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _flushes);
            return Task.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
