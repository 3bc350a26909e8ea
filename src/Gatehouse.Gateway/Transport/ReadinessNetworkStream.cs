using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// A <see cref="NetworkStream"/> whose zero-byte reads wait on a <see cref="RelayEventLoop"/> instead of .NET's socket
/// engine. A relay waits for data with zero-byte reads of its <see cref="System.Net.Security.SslStream"/>, which passes
/// them to this stream when it has nothing decrypted in hand; the relay's next step then runs on the loop's thread
/// (no thread-pool work item per message). From the first zero-byte read on (the relay's), a read with a buffer that
/// would wait (the rest of a TLS record) waits on the loop as well; before it, reads are the <see cref="NetworkStream"/>'s
/// own, so no sign-in work ever runs on the loop. Writes are always its own. With no loop it is a plain
/// <see cref="NetworkStream"/>.
/// </summary>
public sealed class ReadinessNetworkStream : NetworkStream
{
    private readonly RelayEventLoop? _loop;
    private SocketReadiness? _readiness;
    private int _disposed;

    /// <summary>Creates the stream; it owns <paramref name="socket"/>.</summary>
    /// <param name="socket">A connected stream socket.</param>
    /// <param name="loop">The loop zero-byte reads wait on (null: .NET's own zero-byte receive).</param>
    public ReadinessNetworkStream(Socket socket, RelayEventLoop? loop)
        : base(socket, ownsSocket: true)
    {
        _loop = loop;
    }

    /// <summary>The socket's registration with the loop, made at the first zero-byte read (null until then).</summary>
    public SocketReadiness? Readiness => Volatile.Read(ref _readiness);

    /// <inheritdoc />
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_loop is null)
        {
            return base.ReadAsync(buffer, cancellationToken);
        }

        if (buffer.IsEmpty)
        {
            // A zero-byte read: the relay's way to wait (nothing else reads the host leg so). From the first one on,
            // every read of this stream waits on the loop.
            return Registration() is { } readiness
                ? readiness.WaitAsZeroByteReadAsync(cancellationToken)
                : ValueTask.FromException<int>(new ObjectDisposedException(nameof(ReadinessNetworkStream)));
        }

        if (Volatile.Read(ref _readiness) is not { } relaying)
        {
            // Before the relay (the X.224 and TLS handshakes, CredSSP): .NET's own waits, so none of the sign-in's
            // work runs on the loop.
            return base.ReadAsync(buffer, cancellationToken);
        }

        // In the relay a read that finds too little (the rest of a TLS record SslStream has begun) waits on the loop
        // too, then reads what is there at once.
        var wait = relaying.WaitAsync(cancellationToken);
        return wait.IsCompletedSuccessfully ? base.ReadAsync(buffer, cancellationToken) : ReadWhenReadyAsync(wait, buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadWhenReadyAsync(ValueTask wait, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await wait.ConfigureAwait(false);
        return await base.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The socket's registration with the loop, made at the first zero-byte read; null once disposed.</summary>
    private SocketReadiness? Registration()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return null;
        }

        var readiness = Volatile.Read(ref _readiness);
        if (readiness is null)
        {
            readiness = _loop!.Register(Socket);
            if (Interlocked.CompareExchange(ref _readiness, readiness, null) is { } raced)
            {
                readiness.Dispose();
                readiness = raced;
            }
            else if (Volatile.Read(ref _disposed) != 0)
            {
                // Disposed while registering: Dispose may not have seen the registration, so it goes here.
                readiness.Dispose();
            }
        }

        return readiness;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Out of the loop before the descriptor closes (a pending wait ends with ObjectDisposedException).
            Volatile.Read(ref _readiness)?.Dispose();
        }

        base.Dispose(disposing);
    }
}
