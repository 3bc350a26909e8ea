using System.Threading.Channels;
using Gatehouse.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity;

/// <summary>
/// Group commit for the sign-in log. Appends wait in a bounded queue; one loop takes everything waiting (at most
/// <see cref="MaxBatch"/> rows) and writes it in one transaction: the chain's last row is read, the rows are linked
/// after it in the order they were queued, and they commit together with the sealed head
/// (<see cref="SignInLogService.AppendBatchAsync"/>). A caller's task completes only after its row is committed, so an
/// answer that follows an append never gets ahead of the log; when a batch cannot be written after its retries, every
/// caller in it gets the exception and none of its rows is in the store. A full queue (<see cref="Capacity"/>) makes
/// appends wait (back-pressure) rather than grow memory. Several nodes (each with its own writer) share one chain: on
/// PostgreSQL their transactions take turns on an advisory lock; on SQLite a collision on the sequence key is retried.
/// Disposing stops taking new rows and writes what is queued.
/// </summary>
public sealed class SignInLogWriter : IAsyncDisposable, IDisposable
{
    /// <summary>The most rows written in one transaction.</summary>
    public const int MaxBatch = 256;

    /// <summary>The most rows waiting; an append waits for room beyond it.</summary>
    public const int Capacity = 4096;

    private readonly Channel<Pending> _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(Capacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly Task _loop;
    private long _batches;

    // A scope made with the first batch and kept for the batches written while the container disposes this writer (host
    // shutdown): by then the container makes no new scopes, and the rows still queued would be lost.
    private Reserve? _reserve;

    /// <summary>
    /// Creates the writer; its loop starts at once and writes through scopes of <paramref name="scopes"/>. Rows appended
    /// as entries are stamped with <paramref name="time"/> (the system clock when none is given).
    /// </summary>
    public SignInLogWriter(IServiceScopeFactory scopes, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        _scopes = scopes;
        _time = time ?? TimeProvider.System;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>How many batches (transactions that committed) this writer has written.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>
    /// Appends <paramref name="entry"/> as <see cref="SignInLogService.AppendAsync"/> does (the same preparation, the
    /// same group commit), without a scope of the caller's: a singleton can append directly. Only an entry without a
    /// tenant takes a scope, to attribute it (<see cref="SignInLogService.AttributeTenantAsync"/>). Completes with the
    /// row once it is committed.
    /// </summary>
    public async Task<SignInRecord> AppendAsync(SignInEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var tenantId = entry.TenantId;
        if (tenantId == Guid.Empty)
        {
            var scope = _scopes.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                tenantId = await scope.ServiceProvider.GetRequiredService<SignInLogService>().AttributeTenantAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        return await AppendAsync(SignInLogService.Prepare(entry, tenantId, _time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Queues <paramref name="row"/> (prepared by <see cref="SignInLogService"/>) and completes with it once it is
    /// committed, its sequence and hashes set. Cancelling stops only the wait for room in the queue: a queued row is
    /// written.
    /// </summary>
    public async Task<SignInRecord> AppendAsync(SignInRecord row, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(row);
        var pending = new Pending(row, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(SignInLogWriter), "the sign-in log writer has stopped (the server is shutting down)");
        }

        await pending.Committed.Task.ConfigureAwait(false);
        return row;
    }

    /// <summary>Stops taking rows, writes the queued ones and ends the loop.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        if (_reserve is { } reserve)
        {
            await reserve.Scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Stops taking rows and waits (blocking) until the queued ones are written.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _loop.GetAwaiter().GetResult();
        _reserve?.Scope.Dispose();
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>(MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var pending))
            {
                batch.Add(pending);
            }

            await WriteAsync(batch).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(List<Pending> batch)
    {
        try
        {
            _reserve ??= NewReserve();
            AsyncServiceScope? scope = null;
            SignInLogService log;
            try
            {
                scope = _scopes.CreateAsyncScope();
                log = scope.Value.ServiceProvider.GetRequiredService<SignInLogService>();
            }
            catch (ObjectDisposedException)
            {
                // The container is being disposed (host shutdown) with rows still queued: write them through the kept scope.
                _reserve.Db.ChangeTracker.Clear();
                log = _reserve.Log;
            }

            try
            {
                await log.AppendBatchAsync(batch.ConvertAll(p => p.Row), CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                if (scope is { } made)
                {
                    await made.DisposeAsync().ConfigureAwait(false);
                }
            }

            Interlocked.Increment(ref _batches);
        }
        catch (Exception e)
        {
            // Every failure, out of memory included, fails this batch's callers (none waits forever) and the loop goes on.
            foreach (var pending in batch)
            {
                pending.Committed.TrySetException(e);
            }

            return;
        }

        foreach (var pending in batch)
        {
            pending.Committed.TrySetResult();
        }
    }

    private Reserve NewReserve()
    {
        var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        // The context takes some of its services from the container when first used: take them now, while it makes them.
        _ = Microsoft.EntityFrameworkCore.Infrastructure.AccessorExtensions.GetService<Microsoft.Extensions.Logging.ILoggerFactory>(db);
        return new Reserve(scope, scope.ServiceProvider.GetRequiredService<SignInLogService>(), db);
    }

    private sealed record Reserve(AsyncServiceScope Scope, SignInLogService Log, GatehouseDbContext Db);

    private sealed record Pending(SignInRecord Row, TaskCompletionSource Committed);
}
