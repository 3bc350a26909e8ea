using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>"Allow remote desktop connection to &lt;host&gt;?": remembered 30 days, at most 15 hosts per user (oldest dropped).</summary>
public sealed class ConsentService
{
    /// <summary>How long a consent lasts.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(30);

    /// <summary>Most consents kept per user.</summary>
    public const int MaxPerUser = 15;

    private readonly GatehouseDbContext db;

    /// <summary>Creates the service.</summary>
    public ConsentService(GatehouseDbContext db)
    {
        ArgumentNullException.ThrowIfNull(db);
        this.db = db;
    }

    /// <summary>True when the user consented to the host within the last 30 days.</summary>
    public Task<bool> HasConsentAsync(Guid userId, Guid hostId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var since = now - Lifetime;
        return db.Consents.AnyAsync(c => c.UserId == userId && c.HostId == hostId && c.GrantedAt > since, cancellationToken);
    }

    /// <summary>Records (or refreshes) consent and keeps only the 15 most recent, unexpired consents of the user.</summary>
    public async Task GrantAsync(Guid userId, Guid hostId, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var updated = await db.Consents.Where(c => c.UserId == userId && c.HostId == hostId)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.GrantedAt, now), cancellationToken).ConfigureAwait(false);
        if (updated == 0)
        {
            db.Consents.Add(new Consent { UserId = userId, HostId = hostId, GrantedAt = now });
            try
            {
                await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbUpdateException)
            {
                db.ChangeTracker.Clear();
                await db.Consents.Where(c => c.UserId == userId && c.HostId == hostId)
                    .ExecuteUpdateAsync(s => s.SetProperty(c => c.GrantedAt, now), cancellationToken).ConfigureAwait(false);
            }

            db.ChangeTracker.Clear();
        }

        var since = now - Lifetime;
        await db.Consents.Where(c => c.UserId == userId && c.GrantedAt <= since).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        var keep = await db.Consents.AsNoTracking().Where(c => c.UserId == userId)
            .OrderByDescending(c => c.GrantedAt).ThenBy(c => c.HostId).Take(MaxPerUser).Select(c => c.HostId)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        await db.Consents.Where(c => c.UserId == userId && !keep.Contains(c.HostId)).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The user's consents, newest first.</summary>
    public Task<List<Consent>> ListAsync(Guid userId, CancellationToken cancellationToken = default) =>
        db.Consents.AsNoTracking().Where(c => c.UserId == userId).OrderByDescending(c => c.GrantedAt).ToListAsync(cancellationToken);
}
