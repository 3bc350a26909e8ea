using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Gatehouse.Access;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>Result kinds of a password check.</summary>
public enum PasswordCheckResult
{
    /// <summary>Correct password; sign-in may continue (MFA, consent).</summary>
    Success = 0,

    /// <summary>AADSTS50126.</summary>
    InvalidPassword = 1,

    /// <summary>AADSTS50053 (see <see cref="PasswordCheck.LockedUntil"/>).</summary>
    Locked = 2,

    /// <summary>AADSTS50057.</summary>
    Disabled = 3,

    /// <summary>Correct temporary password: the user must set a new one (AADSTS50055 flow).</summary>
    MustChangePassword = 4,
}

/// <summary>What a sign-in still needs as a second factor (<see cref="SignInService.GetMfaRequirement"/>).</summary>
public enum MfaRequirement
{
    /// <summary>No second factor.</summary>
    None = 0,

    /// <summary>A code from the user's confirmed authenticator app.</summary>
    Verify = 1,

    /// <summary>MFA is required but the user has no confirmed method: set one up now (its first code is the proof).</summary>
    Enroll = 2,
}

/// <summary>Outcome of <see cref="SignInService.CheckPasswordAsync"/>.</summary>
public sealed record PasswordCheck(PasswordCheckResult Result, DateTimeOffset? LockedUntil = null);

/// <summary>Password and one-time-code checks with smart lockout (separate counters for familiar and unfamiliar networks).</summary>
public sealed class SignInService
{
    /// <summary>Failures that lock a counter.</summary>
    public const int LockoutThreshold = 10;

    /// <summary>First lock duration; it doubles with each repeated lockout.</summary>
    public static readonly TimeSpan FirstLockout = TimeSpan.FromSeconds(60);

    /// <summary>Longest lock.</summary>
    public static readonly TimeSpan MaxLockout = TimeSpan.FromHours(1);

    private readonly GatehouseDbContext db;
    private readonly PasswordHasher hasher;
    private readonly IDataProtector totpProtector;
    private readonly IDataProtector ntHashProtector;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public SignInService(GatehouseDbContext db, PasswordHasher hasher, IDataProtectionProvider dataProtection, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(hasher);
        ArgumentNullException.ThrowIfNull(dataProtection);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        this.hasher = hasher;
        totpProtector = dataProtection.CreateProtector(DirectoryService.TotpPurpose);
        ntHashProtector = dataProtection.CreateProtector(DirectoryService.NtHashPurpose);
        this.options = options;
    }

    /// <summary>The familiar-network key of an address: IPv4 /24 or IPv6 /64.</summary>
    public static string NetworkOf(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            bytes[3] = 0;
            return new IPAddress(bytes) + "/24";
        }

        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    /// <summary>Checks the password, applying smart lockout; success resets the counter and records the network as familiar.</summary>
    public async Task<PasswordCheck> CheckPasswordAsync(User user, string password, IPAddress client, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(client);
        var current = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == user.Id, cancellationToken).ConfigureAwait(false);
        if (current is null)
        {
            return new PasswordCheck(PasswordCheckResult.InvalidPassword);
        }

        if (!current.Enabled)
        {
            return new PasswordCheck(PasswordCheckResult.Disabled);
        }

        var network = NetworkOf(client);
        var familiar = await db.FamiliarAddresses.AnyAsync(f => f.UserId == user.Id && f.Network == network, cancellationToken).ConfigureAwait(false);
        var state = await EnsureStateAsync(user.Id, familiar, cancellationToken).ConfigureAwait(false);
        if (state.LockedUntil is { } until && until > now)
        {
            return new PasswordCheck(PasswordCheckResult.Locked, until);
        }

        var (verification, fingerprint) = await hasher.VerifyWithFingerprintAsync(current.PasswordHash, password, cancellationToken).ConfigureAwait(false);
        if (verification == PasswordVerification.Failed)
        {
            return await CountFailureAsync(user.Id, familiar, state, fingerprint, now, cancellationToken).ConfigureAwait(false);
        }

        await db.LockoutStates.Where(s => s.UserId == user.Id && s.Familiar == familiar)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Failures, 0).SetProperty(x => x.RecentFailures, (string?)null), cancellationToken).ConfigureAwait(false);
        await RecordFamiliarAsync(user.Id, network, now, cancellationToken).ConfigureAwait(false);
        if (verification == PasswordVerification.SuccessRehashNeeded)
        {
            var rehashed = await hasher.HashAsync(password, cancellationToken).ConfigureAwait(false);
            await db.Users.Where(u => u.Id == user.Id && u.PasswordHash == current.PasswordHash)
                .ExecuteUpdateAsync(s => s.SetProperty(u => u.PasswordHash, rehashed), cancellationToken).ConfigureAwait(false);
        }

        if (current.NtHashProtected is not { Length: > 0 })
        {
            // A password set before NLA support has no NT hash; the first sign-in that proves it fills it in (only while
            // the password is still the one just checked), so NLA works without forcing a password change.
            var ntHash = NtlmV2.NtHash(password);
            try
            {
                var sealedHash = ntHashProtector.Protect(ntHash);
                await db.Users.Where(u => u.Id == user.Id && u.PasswordHash == current.PasswordHash && u.NtHashProtected == null)
                    .ExecuteUpdateAsync(s => s.SetProperty(u => u.NtHashProtected, sealedHash), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(ntHash);
            }
        }

        return new PasswordCheck(current.MustChangePassword ? PasswordCheckResult.MustChangePassword : PasswordCheckResult.Success);
    }

    /// <summary>
    /// For a user name that does not exist: spends the same password-hashing work as a real check (so response time does not reveal
    /// which accounts exist) and returns <see cref="PasswordCheckResult.InvalidPassword"/>.
    /// </summary>
    public PasswordCheck CheckUnknownUser(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        hasher.Verify(hasher.DummyHash, password);
        return new PasswordCheck(PasswordCheckResult.InvalidPassword);
    }

    /// <summary>Checks a TOTP code of a confirmed method (±1 step); an accepted step is recorded atomically and never accepted again.</summary>
    public async Task<bool> VerifyTotpAsync(User user, string code, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var current = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == user.Id, cancellationToken).ConfigureAwait(false);
        if (current?.TotpSecretProtected is null || current.TotpConfirmedAt is null)
        {
            return false;
        }

        var secret = totpProtector.Unprotect(Convert.FromBase64String(current.TotpSecretProtected));
        if (!Totp.TryVerify(secret, code, now, current.TotpLastStep, out var step))
        {
            return false;
        }

        var updated = await db.Users.Where(u => u.Id == user.Id && u.TotpLastStep < step)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpLastStep, step), cancellationToken).ConfigureAwait(false);
        if (updated == 1)
        {
            user.TotpLastStep = step;
        }

        return updated == 1;
    }

    /// <summary>True when the sign-in needs a second factor (<see cref="GetMfaRequirement"/> is not <see cref="MfaRequirement.None"/>).</summary>
    public bool IsMfaRequired(User user, Host? host, AccessEvaluation? policies = null) => GetMfaRequirement(user, host, policies) != MfaRequirement.None;

    /// <summary>
    /// What the sign-in of <paramref name="user"/> to <paramref name="host"/> still needs: a user with a confirmed
    /// authenticator app always proves it; a user without one sets one up when policy requires MFA
    /// (<see cref="IsMfaRequiredByPolicy"/>), or when an administrator started an enrolment for them
    /// (<see cref="DirectoryService.BeginTotpEnrollmentAsync"/>).
    /// </summary>
    /// <param name="user">The user signing in.</param>
    /// <param name="host">The host signed in to.</param>
    /// <param name="policies">The Conditional Access verdict on the sign-in so far (password only), when evaluated.</param>
    public MfaRequirement GetMfaRequirement(User user, Host? host, AccessEvaluation? policies = null)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.TotpConfirmedAt is not null)
        {
            return MfaRequirement.Verify;
        }

        var enrollmentStarted = user.TotpSecretProtected is not null;
        return enrollmentStarted || IsMfaRequiredByPolicy(user, host, policies) ? MfaRequirement.Enroll : MfaRequirement.None;
    }

    /// <summary>
    /// Whether policy requires a second factor for this sign-in, whatever methods the user has: an enforced Conditional
    /// Access policy refuses the sign-in as it stands but would accept it with MFA
    /// (<see cref="AccessEvaluation.SatisfiableWithMfa"/>; report-only policies never count), or the tenant-wide
    /// <see cref="GatehouseIdentityOptions.RequireMfaEnrollment"/> switch is on.
    /// </summary>
    /// <param name="user">The user signing in.</param>
    /// <param name="host">The host signed in to.</param>
    /// <param name="policies">The Conditional Access verdict on the sign-in so far, when evaluated.</param>
    public bool IsMfaRequiredByPolicy(User user, Host? host, AccessEvaluation? policies = null)
    {
        ArgumentNullException.ThrowIfNull(user);
        return options.RequireMfaEnrollment || policies is { Allowed: false, Blocked: false, SatisfiableWithMfa: true };
    }

    /// <summary>The lock duration after <paramref name="previousLockouts"/> earlier lockouts: 60 s doubling, capped at 1 h.</summary>
    public static TimeSpan LockDuration(int previousLockouts)
    {
        var factor = previousLockouts >= 6 ? 64 : 1 << Math.Max(0, previousLockouts);
        var d = FirstLockout * factor;
        return d > MaxLockout ? MaxLockout : d;
    }

    /// <summary>
    /// For NLA: the account's lockout as seen from <paramref name="client"/>'s network, before any password is known
    /// (the NTLMv2 proof arrives before the password).
    /// </summary>
    public async Task<DateTimeOffset?> GetLockedUntilAsync(User user, IPAddress client, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(client);
        var network = NetworkOf(client);
        var familiar = await db.FamiliarAddresses.AnyAsync(f => f.UserId == user.Id && f.Network == network, cancellationToken).ConfigureAwait(false);
        var state = await EnsureStateAsync(user.Id, familiar, cancellationToken).ConfigureAwait(false);
        return state.LockedUntil is { } until && until > now ? until : null;
    }

    /// <summary>
    /// For NLA: counts a wrong NTLMv2 proof toward smart lockout like a wrong password. The proof does not reveal the
    /// password, so the same wrong password repeated is counted each time (unlike <see cref="CheckPasswordAsync"/>).
    /// </summary>
    public async Task<PasswordCheck> RecordWrongProofAsync(User user, IPAddress client, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(client);
        var network = NetworkOf(client);
        var familiar = await db.FamiliarAddresses.AnyAsync(f => f.UserId == user.Id && f.Network == network, cancellationToken).ConfigureAwait(false);
        var state = await EnsureStateAsync(user.Id, familiar, cancellationToken).ConfigureAwait(false);
        if (state.LockedUntil is { } until && until > now)
        {
            return new PasswordCheck(PasswordCheckResult.Locked, until);
        }

        return await CountFailureAsync(user.Id, familiar, state, string.Empty, now, cancellationToken).ConfigureAwait(false);
    }

    private async Task<PasswordCheck> CountFailureAsync(Guid userId, bool familiar, LockoutState state, string fingerprint, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var recent = (state.RecentFailures ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fingerprint.Length > 0 && recent.Contains(fingerprint, StringComparer.Ordinal))
        {
            // The same wrong password again (a stale saved password): not counted again.
            return new PasswordCheck(PasswordCheckResult.InvalidPassword);
        }

        var remembered = fingerprint.Length == 0 ? state.RecentFailures : string.Join(' ', recent.TakeLast(2).Append(fingerprint));
        await db.LockoutStates.Where(s => s.UserId == userId && s.Familiar == familiar)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.Failures, x => x.Failures + 1).SetProperty(x => x.RecentFailures, remembered), cancellationToken).ConfigureAwait(false);
        var after = await db.LockoutStates.AsNoTracking().FirstAsync(s => s.UserId == userId && s.Familiar == familiar, cancellationToken).ConfigureAwait(false);
        if (after.Failures >= LockoutThreshold)
        {
            var lockFor = LockDuration(after.Lockouts);
            var lockedUntil = now + lockFor;
            var locked = await db.LockoutStates
                .Where(s => s.UserId == userId && s.Familiar == familiar && s.Lockouts == after.Lockouts && s.Failures >= LockoutThreshold)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.Failures, 0).SetProperty(x => x.Lockouts, after.Lockouts + 1).SetProperty(x => x.LockedUntil, lockedUntil), cancellationToken)
                .ConfigureAwait(false);
            if (locked == 1)
            {
                return new PasswordCheck(PasswordCheckResult.Locked, lockedUntil);
            }
        }

        return new PasswordCheck(PasswordCheckResult.InvalidPassword);
    }

    private async Task<LockoutState> EnsureStateAsync(Guid userId, bool familiar, CancellationToken cancellationToken)
    {
        var state = await db.LockoutStates.AsNoTracking().FirstOrDefaultAsync(s => s.UserId == userId && s.Familiar == familiar, cancellationToken).ConfigureAwait(false);
        if (state is not null)
        {
            return state;
        }

        state = new LockoutState { UserId = userId, Familiar = familiar };
        db.LockoutStates.Add(state);
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            // Created concurrently by another request.
        }
        finally
        {
            db.ChangeTracker.Clear();
        }

        return await db.LockoutStates.AsNoTracking().FirstAsync(s => s.UserId == userId && s.Familiar == familiar, cancellationToken).ConfigureAwait(false);
    }

    private async Task RecordFamiliarAsync(Guid userId, string network, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var updated = await db.FamiliarAddresses.Where(f => f.UserId == userId && f.Network == network)
            .ExecuteUpdateAsync(s => s.SetProperty(f => f.LastSuccessAt, now), cancellationToken).ConfigureAwait(false);
        if (updated == 0)
        {
            db.FamiliarAddresses.Add(new FamiliarAddress { UserId = userId, Network = network, LastSuccessAt = now });
            try
            {
                await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbUpdateException)
            {
                // Recorded concurrently.
            }
            finally
            {
                db.ChangeTracker.Clear();
            }
        }
    }
}
