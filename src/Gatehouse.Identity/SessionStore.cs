using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>
/// The durable side of relayed sessions: a start record written before the first byte is relayed, an end record with
/// the reason and byte counts, and kill requests that the node holding a session picks up.
/// </summary>
public sealed class SessionStore(GatehouseDbContext db, TimeProvider time)
{
    /// <summary>Writes the start record (throws when the store cannot take it; the caller then refuses the session).</summary>
    public async Task StartAsync(SessionRecord record, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        db.Sessions.Add(record);
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        db.Entry(record).State = EntityState.Detached;
    }

    /// <summary>Completes the record of <paramref name="id"/> with its end, reason and byte counts.</summary>
    public async Task EndAsync(Guid id, string reason, long bytesFromClient, long bytesFromBackend, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reason);
        var now = time.GetUtcNow();
        var clipped = reason.Length <= 1024 ? reason : reason[..1024];
        await db.Sessions.Where(s => s.Id == id).ExecuteUpdateAsync(
            u => u.SetProperty(s => s.EndedAt, now)
                .SetProperty(s => s.EndReason, clipped)
                .SetProperty(s => s.BytesFromClient, bytesFromClient)
                .SetProperty(s => s.BytesFromBackend, bytesFromBackend),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks whichever node holds <paramref name="id"/> to end it; false when no live session has that id.</summary>
    public async Task<bool> RequestKillAsync(Guid id, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var updated = await db.Sessions.Where(s => s.Id == id && s.EndedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.KillRequestedAt, now), cancellationToken).ConfigureAwait(false);
        return updated == 1;
    }

    /// <summary>The ids of live sessions on <paramref name="node"/> whose kill was requested.</summary>
    public Task<List<Guid>> KillRequestsAsync(string node, CancellationToken cancellationToken = default) =>
        db.Sessions.AsNoTracking().Where(s => s.Node == node && s.EndedAt == null && s.KillRequestedAt != null)
            .Select(s => s.Id).ToListAsync(cancellationToken);

    /// <summary>Sessions that have not ended (on every node), newest first.</summary>
    public Task<List<SessionRecord>> ListLiveAsync(CancellationToken cancellationToken = default) =>
        db.Sessions.AsNoTracking().Where(s => s.EndedAt == null).OrderByDescending(s => s.StartedAt).ToListAsync(cancellationToken);

    /// <summary>Marks every session of <paramref name="node"/> still open as ended (after a crash or restart of that node).</summary>
    public Task<int> EndOrphansAsync(string node, string reason, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        return db.Sessions.Where(s => s.Node == node && s.EndedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.EndedAt, now).SetProperty(s => s.EndReason, reason), cancellationToken);
    }
}
