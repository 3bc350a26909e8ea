using System.Security.Cryptography;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>What a device authorization request asks for, and the limits it is issued under.</summary>
public sealed record DeviceCodeRequest
{
    /// <summary>The tenant.</summary>
    public required Guid TenantId { get; init; }

    /// <summary>Client id.</summary>
    public required string ClientId { get; init; }

    /// <summary>Scope as requested.</summary>
    public required string Scope { get; init; }

    /// <summary>The requesting client's address.</summary>
    public required string ClientAddress { get; init; }

    /// <summary>How long the codes live (RFC 8628 <c>expires_in</c>).</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The polling interval (RFC 8628 <c>interval</c>).</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>At most this many unexpired, unredeemed codes per address.</summary>
    public int MaxPendingPerAddress { get; init; } = 10;
}

/// <summary>An issued device authorization: the secrets go to the client once and are stored only hashed.</summary>
public sealed record IssuedDeviceCode(string DeviceCode, string UserCode, TimeSpan ExpiresIn, TimeSpan Interval)
{
    /// <inheritdoc/>
    public override string ToString() => $"IssuedDeviceCode expires in {ExpiresIn}";
}

/// <summary>The answer to one poll of the token endpoint with a device code (RFC 8628 §3.5).</summary>
public enum DevicePollStatus
{
    /// <summary>Approved and now redeemed: issue the tokens (<see cref="DevicePollResult.Code"/>).</summary>
    Approved,

    /// <summary><c>authorization_pending</c>: the user has not finished.</summary>
    Pending,

    /// <summary><c>slow_down</c>: polled sooner than the interval; the interval grew by 5 s.</summary>
    SlowDown,

    /// <summary><c>access_denied</c>: the user refused.</summary>
    Denied,

    /// <summary><c>expired_token</c>.</summary>
    Expired,

    /// <summary><c>bad_verification_code</c>: unknown, malformed, for another client, or already redeemed.</summary>
    BadCode,
}

/// <summary>Outcome of <see cref="DeviceCodeService.PollAsync"/>.</summary>
public sealed record DevicePollResult(DevicePollStatus Status, DeviceCode? Code = null);

/// <summary>
/// Device authorization grant (RFC 8628) state: issues device and user codes (≥ 256 bits; 8 letters of a 20-letter
/// alphabet without vowels, shown as <c>BCDF-GHJK</c>), finds a pending code from what the user typed, records the
/// user's answer, and answers the client's polls (pending, slow_down, denied, expired, once approved).
/// </summary>
public sealed class DeviceCodeService
{
    /// <summary>The user-code alphabet: consonants only (no words, no 0/O or 1/I confusion).</summary>
    public const string UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";

    /// <summary>Letters in a user code (34.6 bits; guessing is also throttled on the page).</summary>
    public const int UserCodeLength = 8;

    /// <summary>Status values stored in <see cref="DeviceCode.Status"/>.</summary>
    public const string Pending = "pending";

    /// <summary>Approved by the user.</summary>
    public const string ApprovedStatus = "approved";

    /// <summary>Denied by the user.</summary>
    public const string DeniedStatus = "denied";

    /// <summary>Redeemed by the client.</summary>
    public const string Redeemed = "redeemed";

    private readonly GatehouseDbContext db;
    private readonly TimeProvider time;

    /// <summary>Creates the service.</summary>
    public DeviceCodeService(GatehouseDbContext db, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        this.db = db;
        this.time = time;
    }

    /// <summary>The form a user code is shown in: <c>BCDF-GHJK</c>.</summary>
    public static string Display(string userCode)
    {
        ArgumentNullException.ThrowIfNull(userCode);
        return userCode.Length == UserCodeLength ? $"{userCode[..4]}-{userCode[4..]}" : userCode;
    }

    /// <summary>What the user typed, normalised (upper case, without spaces and dashes), or null when it cannot be a user code.</summary>
    public static string? Normalize(string? typed)
    {
        if (string.IsNullOrWhiteSpace(typed) || typed.Length > 32)
        {
            return null;
        }

        var letters = new string([.. typed.Where(c => c is not (' ' or '-' or '\t')).Select(char.ToUpperInvariant)]);
        return letters.Length == UserCodeLength && letters.All(c => UserCodeAlphabet.Contains(c, StringComparison.Ordinal)) ? letters : null;
    }

    /// <summary>Issues a code pair, or returns null when <see cref="DeviceCodeRequest.ClientAddress"/> already holds the maximum of pending codes.</summary>
    public async Task<IssuedDeviceCode?> IssueAsync(DeviceCodeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = time.GetUtcNow();
        var pending = await db.DeviceCodes.CountAsync(d => d.ClientAddress == request.ClientAddress && d.ExpiresAt > now && d.RedeemedAt == null, cancellationToken).ConfigureAwait(false);
        if (pending >= request.MaxPendingPerAddress)
        {
            return null;
        }

        for (var attempt = 0; ; attempt++)
        {
            var deviceCode = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
            var userCode = RandomNumberGenerator.GetString(UserCodeAlphabet, UserCodeLength);
            db.DeviceCodes.Add(new DeviceCode
            {
                DeviceCodeHash = AuthorizationCodeService.HashSecret(deviceCode),
                UserCodeHash = AuthorizationCodeService.HashSecret(userCode),
                TenantId = request.TenantId,
                ClientId = request.ClientId,
                Scope = request.Scope,
                ClientAddress = request.ClientAddress,
                Status = Pending,
                CreatedAt = now,
                ExpiresAt = now + request.Lifetime,
                IntervalSeconds = (int)Math.Ceiling(request.Interval.TotalSeconds),
            });
            try
            {
                await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
                return new IssuedDeviceCode(deviceCode, userCode, request.Lifetime, request.Interval);
            }
            catch (DbUpdateException) when (attempt < 2)
            {
                // A user code that collides with a stored one (1 in 2.5e10 per stored row): draw again.
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
    }

    /// <summary>The pending, unexpired authorization for what the user typed, or null.</summary>
    public async Task<DeviceCode?> FindPendingAsync(string typedUserCode, CancellationToken cancellationToken = default)
    {
        var normalized = Normalize(typedUserCode);
        if (normalized is null)
        {
            return null;
        }

        var hash = AuthorizationCodeService.HashSecret(normalized);
        var now = time.GetUtcNow();
        return await db.DeviceCodes.AsNoTracking()
            .FirstOrDefaultAsync(d => d.UserCodeHash == hash && d.Status == Pending && d.ExpiresAt > now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The authorization by its device-code hash (as a sign-in transaction holds it), or null.</summary>
    public Task<DeviceCode?> FindAsync(string deviceCodeHash, CancellationToken cancellationToken = default) =>
        db.DeviceCodes.AsNoTracking().FirstOrDefaultAsync(d => d.DeviceCodeHash == deviceCodeHash, cancellationToken);

    /// <summary>Records the user's approval; false when the code is no longer pending (answered, expired or gone).</summary>
    public async Task<bool> ApproveAsync(string deviceCodeHash, Guid userId, IReadOnlyList<string> amr, DateTimeOffset authTime, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(amr);
        var now = time.GetUtcNow();
        var joined = string.Join(' ', amr);
        return await db.DeviceCodes.Where(d => d.DeviceCodeHash == deviceCodeHash && d.Status == Pending && d.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, ApprovedStatus).SetProperty(d => d.UserId, userId).SetProperty(d => d.Amr, joined)
                .SetProperty(d => d.AuthTime, authTime).SetProperty(d => d.CompletedAt, now), cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>Records the user's refusal (the client gets <c>access_denied</c>); false when the code is no longer pending.</summary>
    public async Task<bool> DenyAsync(string deviceCodeHash, Guid? userId, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        return await db.DeviceCodes.Where(d => d.DeviceCodeHash == deviceCodeHash && d.Status == Pending && d.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, DeniedStatus).SetProperty(d => d.UserId, userId).SetProperty(d => d.CompletedAt, now), cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// One poll by the client: an unknown, malformed, foreign or already redeemed code is <see cref="DevicePollStatus.BadCode"/>;
    /// an expired one <see cref="DevicePollStatus.Expired"/>; a poll sooner than the interval after the previous one
    /// <see cref="DevicePollStatus.SlowDown"/> (and the interval grows by 5 s); an approved code is redeemed exactly once
    /// (a conditional update, so two racing polls cannot both get tokens).
    /// </summary>
    public async Task<DevicePollResult> PollAsync(string deviceCode, string clientId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        if (string.IsNullOrEmpty(deviceCode) || deviceCode.Length > 128 || !Base64Url.IsAlphabet(deviceCode))
        {
            return new DevicePollResult(DevicePollStatus.BadCode);
        }

        var hash = AuthorizationCodeService.HashSecret(deviceCode);
        var record = await FindAsync(hash, cancellationToken).ConfigureAwait(false);
        if (record is null || !string.Equals(record.ClientId, clientId, StringComparison.OrdinalIgnoreCase) || record.Status == Redeemed)
        {
            return new DevicePollResult(DevicePollStatus.BadCode);
        }

        var now = time.GetUtcNow();
        if (record.ExpiresAt <= now)
        {
            return new DevicePollResult(DevicePollStatus.Expired);
        }

        var previous = record.LastPolledAt;
        if (previous is { } last && now - last < TimeSpan.FromSeconds(record.IntervalSeconds))
        {
            // RFC 8628 §3.5: the interval grows by 5 seconds for this and every later request.
            await db.DeviceCodes.Where(d => d.DeviceCodeHash == hash)
                .ExecuteUpdateAsync(s => s.SetProperty(d => d.IntervalSeconds, d => d.IntervalSeconds + 5).SetProperty(d => d.LastPolledAt, now), cancellationToken).ConfigureAwait(false);
            return new DevicePollResult(DevicePollStatus.SlowDown);
        }

        // Only the poll that moves LastPolledAt on from the value it read counts: two racing polls get one answer each.
        var counted = await db.DeviceCodes.Where(d => d.DeviceCodeHash == hash && d.LastPolledAt == previous)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.LastPolledAt, now), cancellationToken).ConfigureAwait(false);
        if (counted != 1)
        {
            return new DevicePollResult(DevicePollStatus.SlowDown);
        }

        switch (record.Status)
        {
            case DeniedStatus:
                return new DevicePollResult(DevicePollStatus.Denied);
            case ApprovedStatus:
                var redeemed = await db.DeviceCodes.Where(d => d.DeviceCodeHash == hash && d.Status == ApprovedStatus)
                    .ExecuteUpdateAsync(s => s.SetProperty(d => d.Status, Redeemed).SetProperty(d => d.RedeemedAt, now), cancellationToken).ConfigureAwait(false);
                return redeemed == 1
                    ? new DevicePollResult(DevicePollStatus.Approved, record)
                    : new DevicePollResult(DevicePollStatus.BadCode);
            default:
                return new DevicePollResult(DevicePollStatus.Pending);
        }
    }

    /// <summary>Deletes device authorizations that expired more than a minute ago; returns how many.</summary>
    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var cutoff = now - TimeSpan.FromMinutes(1);
        return db.DeviceCodes.Where(d => d.ExpiresAt <= cutoff).ExecuteDeleteAsync(cancellationToken);
    }
}
