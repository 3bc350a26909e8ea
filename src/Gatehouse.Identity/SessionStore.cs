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

    /// <summary>
    /// The PostgreSQL <c>NOTIFY</c> channel of kill requests; the payload is the session id (<c>"D"</c> format). Each
    /// node listens on it and ends at once the sessions it holds; polling <see cref="KillRequestsAsync"/> stays as the
    /// fallback (a node that was not listening) and is the only way on SQLite.
    /// </summary>
    public const string KillChannel = "gatehouse_sessions";

    /// <summary>
    /// Asks whichever node holds <paramref name="id"/> to end it; false when no live session has that id. On PostgreSQL
    /// the request and a <c>NOTIFY</c> on <see cref="KillChannel"/> are one transaction: the notification is delivered
    /// when, and only when, the request is committed.
    /// </summary>
    public async Task<bool> RequestKillAsync(Guid id, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        if (!db.Database.IsNpgsql())
        {
            var marked = await db.Sessions.Where(s => s.Id == id && s.EndedAt == null)
                .ExecuteUpdateAsync(u => u.SetProperty(s => s.KillRequestedAt, now), cancellationToken).ConfigureAwait(false);
            return marked == 1;
        }

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var updated = await db.Sessions.Where(s => s.Id == id && s.EndedAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.KillRequestedAt, now), cancellationToken).ConfigureAwait(false);
        if (updated == 1)
        {
            var payload = id.ToString("D");
            await db.Database.ExecuteSqlAsync($"SELECT pg_notify({KillChannel}, {payload})", cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
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

    /// <summary>Writes <paramref name="node"/>'s heartbeat: its row's last-seen time becomes <paramref name="now"/>.</summary>
    public async Task BeatAsync(string node, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(node);
        var updated = await db.NodeHeartbeats.Where(h => h.Node == node)
            .ExecuteUpdateAsync(u => u.SetProperty(h => h.LastSeenAt, now), cancellationToken).ConfigureAwait(false);
        if (updated > 0)
        {
            return;
        }

        var row = new NodeHeartbeat { Node = node, LastSeenAt = now };
        db.NodeHeartbeats.Add(row);
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            db.Entry(row).State = EntityState.Detached;
        }
    }

    /// <summary>
    /// Closes the open session records of every node other than <paramref name="self"/> whose heartbeat is older than
    /// <paramref name="lostAfter"/> at <paramref name="now"/>, with the end reason <c>node_lost: node X stopped sending
    /// heartbeats at T</c>. Each node's records are closed by one conditional UPDATE (still open, and the node's heartbeat
    /// still stale), so when several nodes notice the same dead node at once each record is closed exactly once, and a
    /// node that came back in the meantime keeps its sessions. Returns the nodes whose records this call closed.
    /// </summary>
    public async Task<IReadOnlyList<LostNode>> EndLostNodesAsync(string self, DateTimeOffset now, TimeSpan lostAfter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(self);
        var cutoff = now - lostAfter;
        var stale = await db.NodeHeartbeats.AsNoTracking()
            .Where(h => h.Node != self && h.LastSeenAt < cutoff && db.Sessions.Any(s => s.Node == h.Node && s.EndedAt == null))
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var lost = new List<LostNode>();
        foreach (var heartbeat in stale)
        {
            var name = heartbeat.Node;
            var reason = LostReason(name, heartbeat.LastSeenAt);
            var ended = await db.Sessions
                .Where(s => s.Node == name && s.EndedAt == null && db.NodeHeartbeats.Any(h => h.Node == name && h.LastSeenAt < cutoff))
                .ExecuteUpdateAsync(u => u.SetProperty(s => s.EndedAt, now).SetProperty(s => s.EndReason, reason), cancellationToken).ConfigureAwait(false);
            if (ended > 0)
            {
                lost.Add(new LostNode(name, heartbeat.LastSeenAt, ended));
            }
        }

        return lost;
    }

    /// <summary>The end reason of a lost node's sessions (at most 1,024 characters, the column's length).</summary>
    public static string LostReason(string node, DateTimeOffset lastSeenAt)
    {
        ArgumentNullException.ThrowIfNull(node);
        var reason = $"node_lost: node {node} stopped sending heartbeats at {lastSeenAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)}";
        return reason.Length <= 1024 ? reason : reason[..1024];
    }
}

/// <summary>A node taken for dead: its name, its last heartbeat, and how many open session records were closed.</summary>
public sealed record LostNode(string Node, DateTimeOffset LastSeenAt, int SessionsEnded);
