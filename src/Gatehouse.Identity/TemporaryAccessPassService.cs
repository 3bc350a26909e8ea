using System.Security.Cryptography;
using System.Text;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>What using a Temporary Access Pass gave (<see cref="TemporaryAccessPassService.RedeemAsync"/>).</summary>
public enum TapRedemption
{
    /// <summary>The pass is the user's, unexpired, and (single use) not used before: it is now used.</summary>
    Accepted,

    /// <summary>No pass of the user has this value.</summary>
    NoMatch,

    /// <summary>The user's pass, but expired.</summary>
    Expired,

    /// <summary>The user's single-use pass, already used.</summary>
    AlreadyUsed,
}

/// <summary>
/// Temporary Access Passes: an administrator issues one so a user can sign in to the security-info page and register
/// a first passkey. Only the SHA-256 of the pass is stored. A single-use pass is spent by one conditional update, so
/// of any number of racing redemptions exactly one succeeds. Expiry follows the injected clock.
/// </summary>
public sealed class TemporaryAccessPassService(GatehouseDbContext db, TimeProvider time)
{
    /// <summary>Shortest lifetime an administrator may give.</summary>
    public static readonly TimeSpan MinimumLifetime = TimeSpan.FromMinutes(10);

    /// <summary>Longest lifetime an administrator may give.</summary>
    public static readonly TimeSpan MaximumLifetime = TimeSpan.FromHours(8);

    /// <summary>The lifetime when none is given.</summary>
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(1);

    /// <summary>Characters of a pass (no look-alikes: no 0/O, 1/l/I).</summary>
    private const string Alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

    /// <summary>Length of a pass (about 93 bits).</summary>
    public const int PassLength = 16;

    /// <summary>Makes a pass for <paramref name="userId"/>; the returned text is the only copy of the pass.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The lifetime is outside <see cref="MinimumLifetime"/>..<see cref="MaximumLifetime"/>.</exception>
    public async Task<(string Pass, TemporaryAccessPass Record)> CreateAsync(Guid userId, TimeSpan lifetime, bool multiUse, CancellationToken cancellationToken = default)
    {
        if (lifetime < MinimumLifetime || lifetime > MaximumLifetime)
        {
            throw new ArgumentOutOfRangeException(nameof(lifetime), lifetime, "A Temporary Access Pass lives 10 minutes to 8 hours.");
        }

        var pass = RandomNumberGenerator.GetString(Alphabet, PassLength);
        var now = time.GetUtcNow();
        var record = new TemporaryAccessPass
        {
            Id = Guid.NewGuid(),
            UserId = userId,
            PassHash = Hash(pass),
            CreatedAt = now,
            ExpiresAt = now + lifetime,
            MultiUse = multiUse,
        };
        db.TemporaryAccessPasses.Add(record);
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return (pass, record);
    }

    /// <summary>True when <paramref name="typed"/> is one of the user's passes (used or not, expired or not); nothing is spent.</summary>
    public async Task<bool> IsPassOfAsync(Guid userId, string? typed, CancellationToken cancellationToken = default)
    {
        if (!Plausible(typed))
        {
            return false;
        }

        var hash = Hash(typed!);
        return await db.TemporaryAccessPasses.AnyAsync(t => t.UserId == userId && t.PassHash == hash, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Uses <paramref name="typed"/> as a pass of <paramref name="userId"/>: a single-use one is spent exactly once.</summary>
    public async Task<TapRedemption> RedeemAsync(Guid userId, string? typed, CancellationToken cancellationToken = default)
    {
        if (!Plausible(typed))
        {
            return TapRedemption.NoMatch;
        }

        var hash = Hash(typed!);
        var now = time.GetUtcNow();
        var spent = await db.TemporaryAccessPasses
            .Where(t => t.UserId == userId && t.PassHash == hash && t.ExpiresAt > now && (t.MultiUse || t.UsedAt == null))
            .ExecuteUpdateAsync(u => u.SetProperty(t => t.UsedAt, now), cancellationToken).ConfigureAwait(false);
        if (spent == 1)
        {
            return TapRedemption.Accepted;
        }

        var found = await db.TemporaryAccessPasses.AsNoTracking().FirstOrDefaultAsync(t => t.UserId == userId && t.PassHash == hash, cancellationToken).ConfigureAwait(false);
        return found is null ? TapRedemption.NoMatch : found.ExpiresAt <= now ? TapRedemption.Expired : TapRedemption.AlreadyUsed;
    }

    /// <summary>The user's passes, newest first (hashes only).</summary>
    public async Task<IReadOnlyList<TemporaryAccessPass>> ListAsync(Guid userId, CancellationToken cancellationToken = default) =>
        await db.TemporaryAccessPasses.AsNoTracking().Where(t => t.UserId == userId).OrderByDescending(t => t.CreatedAt)
            .ToListAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Removes every pass of the user; how many there were.</summary>
    public Task<int> RemoveAllAsync(Guid userId, CancellationToken cancellationToken = default) =>
        db.TemporaryAccessPasses.Where(t => t.UserId == userId).ExecuteDeleteAsync(cancellationToken);

    private static bool Plausible(string? typed) => typed is { Length: PassLength } && typed.All(c => Alphabet.Contains(c, StringComparison.Ordinal));

    private static byte[] Hash(string pass) => SHA256.HashData(Encoding.UTF8.GetBytes(pass));
}
