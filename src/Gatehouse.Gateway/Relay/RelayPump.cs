using System.Buffers;

namespace Gatehouse.Gateway.Relay;

/// <summary>
/// The byte pump of a relayed direction once its connection sequence is over. An idle direction holds no buffer: it
/// parks in a zero-byte read (<c>ReadAsync(Memory&lt;byte&gt;.Empty)</c>, which <see cref="System.Net.Security.SslStream"/>
/// and sockets complete when data arrives without taking a buffer), and only then rents one
/// <see cref="BufferBytes"/> buffer from <see cref="ArrayPool{T}.Shared"/>, reads whatever is available in one go and
/// writes it on. A read of a TLS stream gives one record (16 KiB at most), so after it the pump takes what else has
/// already arrived (zero-byte reads that complete at once) up to the buffer's size, and writes and flushes that once:
/// one flush and one wake-up of the sending side per 64 KiB instead of per record. While data keeps coming the buffer
/// is kept; it goes back to the pool as soon as a zero-byte read has to wait, and when the pump ends however it ends.
/// One batch is written before the next read, so a slow reader slows its sender.
/// </summary>
// CA2012: each zero-byte read's ValueTask is held in 'park' and awaited exactly once (or observed once on failure);
// looking at IsCompleted first is how the pump knows it may keep its buffer.
#pragma warning disable CA2012
public static class RelayPump
{
    /// <summary>The read buffer while data flows (64 KiB: four TLS records).</summary>
    public const int BufferBytes = 64 * 1024;

    /// <summary>Copies until <paramref name="source"/> ends (a read of 0 bytes after a zero-byte read said data or end is there).</summary>
    /// <param name="source">Where the bytes come from.</param>
    /// <param name="destination">Where they go.</param>
    /// <param name="relayed">Called with each read's byte count after it was written.</param>
    /// <param name="cancellationToken">Ends the pump.</param>
    /// <param name="pool">The pool to rent from (tests pass their own to see every buffer returned).</param>
    /// <returns>The bytes copied.</returns>
    public static async Task<long> CopyAsync(Stream source, Stream destination, Action<int>? relayed, CancellationToken cancellationToken, ArrayPool<byte>? pool = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        pool ??= ArrayPool<byte>.Shared;
        byte[]? buffer = null;
        long total = 0;
        // A zero-byte read not awaited yet (a ValueTask must not be looked at once it has been awaited).
        var park = source.ReadAsync(Memory<byte>.Empty, cancellationToken);
        var pending = true;
        try
        {
            while (true)
            {
                if (!park.IsCompleted && buffer is not null)
                {
                    // Nothing to read now: give the buffer back while we wait.
                    pool.Return(buffer);
                    buffer = null;
                }

                pending = false;
                await park.ConfigureAwait(false);
                buffer ??= pool.Rent(BufferBytes);
                var filled = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (filled == 0)
                {
                    return total;
                }

                // Take what else is there already (one read of a TLS stream gives one record) without waiting: a
                // zero-byte read that completes at once says so; one that must wait is the next park.
                var ended = false;
                while (filled < buffer.Length)
                {
                    park = source.ReadAsync(Memory<byte>.Empty, cancellationToken);
                    pending = true;
                    if (!park.IsCompleted)
                    {
                        break;
                    }

                    pending = false;
                    await park.ConfigureAwait(false);
                    var more = await source.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                    if (more == 0)
                    {
                        ended = true;
                        break;
                    }

                    filled += more;
                }

                await destination.WriteAsync(buffer.AsMemory(0, filled), cancellationToken).ConfigureAwait(false);
                await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
                total += filled;
                relayed?.Invoke(filled);
                if (ended)
                {
                    return total;
                }

                if (!pending)
                {
                    park = source.ReadAsync(Memory<byte>.Empty, cancellationToken);
                    pending = true;
                }
            }
        }
        catch when (pending)
        {
            // A failed write leaves a zero-byte read pending: observe it, so its failure is not unobserved.
            _ = park.AsTask().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
        finally
        {
            if (buffer is not null)
            {
                pool.Return(buffer);
            }
        }
    }
}
#pragma warning restore CA2012
