using System.Security.Cryptography;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>Result of <see cref="DirectoryService.BootstrapAsync"/>.</summary>
public sealed record BootstrapResult(Tenant Tenant, string AdminUpn, string? TemporaryPassword)
{
    /// <inheritdoc/>
    public override string ToString() => $"BootstrapResult {Tenant.Id} {AdminUpn}";
}

/// <summary>Result of <see cref="DirectoryService.BeginTotpEnrollmentAsync"/>.</summary>
public sealed record TotpEnrollment(string SecretBase32, string OtpAuthUri)
{
    /// <inheritdoc/>
    public override string ToString() => "TotpEnrollment";
}

/// <summary>Tenants, users, groups and hosts.</summary>
public sealed class DirectoryService
{
    /// <summary>Data Protection purpose of TOTP secrets.</summary>
    public const string TotpPurpose = "Gatehouse.Identity.Totp.v1";

    /// <summary>Data Protection purpose of mapped host account secrets.</summary>
    public const string HostSecretPurpose = "Gatehouse.Identity.HostSecret.v1";

    /// <summary>Data Protection purpose of users' NT hashes (kept for NLA's NTLMv2 verification only).</summary>
    public const string NtHashPurpose = "Gatehouse.Identity.NtHash.v1";

    /// <summary>The tenant segment that means "the default tenant".</summary>
    public const string CommonTenant = "common";

    /// <summary>
    /// Entra's segment for "any work or school account" (<c>/organizations</c>): every Gatehouse account is one, so it
    /// resolves as <see cref="CommonTenant"/> does.
    /// </summary>
    public const string OrganizationsTenant = "organizations";

    /// <summary>Length of a TOTP secret: 160 bits.</summary>
    public const int TotpSecretBytes = 20;

    private const string TemporaryPasswordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    private readonly GatehouseDbContext db;
    private readonly PasswordHasher hasher;
    private readonly IDataProtector totpProtector;
    private readonly IDataProtector hostSecretProtector;
    private readonly IDataProtector ntHashProtector;
    private readonly TimeProvider time;

    /// <summary>Creates the service.</summary>
    public DirectoryService(GatehouseDbContext db, PasswordHasher hasher, IDataProtectionProvider dataProtection, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(hasher);
        ArgumentNullException.ThrowIfNull(dataProtection);
        ArgumentNullException.ThrowIfNull(time);
        this.db = db;
        this.hasher = hasher;
        totpProtector = dataProtection.CreateProtector(TotpPurpose);
        hostSecretProtector = dataProtection.CreateProtector(HostSecretPurpose);
        ntHashProtector = dataProtection.CreateProtector(NtHashPurpose);
        this.time = time;
    }

    private byte[] ProtectNtHash(string password)
    {
        var ntHash = Gatehouse.Protocol.Ntlm.NtlmV2.NtHash(password);
        try
        {
            return ntHashProtector.Protect(ntHash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(ntHash);
        }
    }

    /// <summary>Lower-cases a domain or host name.</summary>
    public static string NormalizeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
#pragma warning disable CA1308 // DNS names are lower-case by convention; the stored key is lower-case by design.
        return name.Trim().ToLowerInvariant();
#pragma warning restore CA1308
    }

    /// <summary>Upper-invariant UPN (the unique key).</summary>
    public static string NormalizeUpn(string upn)
    {
        ArgumentNullException.ThrowIfNull(upn);
        return upn.Trim().ToUpperInvariant();
    }

    /// <summary>Creates a tenant with its initial verified domain.</summary>
    public async Task<Tenant> CreateTenantAsync(string displayName, string domain, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(displayName);
        ArgumentException.ThrowIfNullOrWhiteSpace(domain);
        var tenant = new Tenant { Id = Guid.NewGuid(), DisplayName = displayName, CreatedAt = time.GetUtcNow() };
        tenant.Domains.Add(new TenantDomain { Name = NormalizeName(domain), TenantId = tenant.Id, IsInitial = true });
        db.Tenants.Add(tenant);
        await SaveAsync(cancellationToken).ConfigureAwait(false);
        return tenant;
    }

    /// <summary>Adds a verified domain to a tenant.</summary>
    public async Task AddDomainAsync(Guid tenantId, string domain, CancellationToken cancellationToken = default)
    {
        db.TenantDomains.Add(new TenantDomain { Name = NormalizeName(domain), TenantId = tenantId });
        await SaveAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>True for the segments that name no one tenant: <c>common</c> and <c>organizations</c>.</summary>
    public static bool IsMultiTenantSegment(string? tenantSegment) =>
        string.Equals(tenantSegment, CommonTenant, StringComparison.OrdinalIgnoreCase)
        || string.Equals(tenantSegment, OrganizationsTenant, StringComparison.OrdinalIgnoreCase);

    /// <summary>Resolves a tenant URL segment: <c>common</c> or <c>organizations</c> (the first tenant), a tenant GUID, or a verified domain.</summary>
    public async Task<Tenant?> FindTenantAsync(string tenantSegment, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(tenantSegment) || tenantSegment.Length > 253)
        {
            return null;
        }

        IQueryable<Tenant> tenants = db.Tenants.AsNoTracking().Include(t => t.Domains);
        if (IsMultiTenantSegment(tenantSegment))
        {
            return await tenants.OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        }

        if (Guid.TryParse(tenantSegment, out var id))
        {
            return await tenants.FirstOrDefaultAsync(t => t.Id == id, cancellationToken).ConfigureAwait(false);
        }

        var name = NormalizeName(tenantSegment);
        var domain = await db.TenantDomains.AsNoTracking().FirstOrDefaultAsync(d => d.Name == name, cancellationToken).ConfigureAwait(false);
        return domain is null ? null : await tenants.FirstOrDefaultAsync(t => t.Id == domain.TenantId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates a user. With no <paramref name="password"/> a temporary one is generated and returned (shown once);
    /// <paramref name="temporary"/> makes the user change it at the next sign-in.
    /// </summary>
    public async Task<(User User, string? TemporaryPassword)> CreateUserAsync(Guid tenantId, string upn, string displayName, string? password, bool temporary, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(upn);
        ArgumentNullException.ThrowIfNull(displayName);
        var at = upn.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || at == upn.Length - 1 || upn.Length > GatehouseDbContext.NameLength)
        {
            throw new ArgumentException("UPN must look like user@domain", nameof(upn));
        }

        var domain = NormalizeName(upn[(at + 1)..]);
        if (!await db.TenantDomains.AnyAsync(d => d.Name == domain && d.TenantId == tenantId, cancellationToken).ConfigureAwait(false))
        {
            throw new ArgumentException("the UPN's domain is not a verified domain of the tenant", nameof(upn));
        }

        string? generated = null;
        if (password is null)
        {
            generated = GenerateTemporaryPassword();
            password = generated;
            temporary = true;
        }

        var passwordHash = await hasher.HashAsync(password, cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        var user = new User
        {
            Id = Guid.NewGuid(),
            TenantId = tenantId,
            UserPrincipalName = upn.Trim(),
            NormalizedUpn = NormalizeUpn(upn),
            DisplayName = displayName,
            Enabled = true,
            PasswordHash = passwordHash,
            NtHashProtected = ProtectNtHash(password),
            MustChangePassword = temporary,
            PasswordChangedAt = now,
            CreatedAt = now,
        };
        db.Users.Add(user);
        await SaveAsync(cancellationToken).ConfigureAwait(false);
        return (user, temporary ? password : null);
    }

    /// <summary>Finds a user by UPN (case-insensitive).</summary>
    public Task<User?> FindUserByUpnAsync(string upn, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(upn) || upn.Length > GatehouseDbContext.NameLength)
        {
            return Task.FromResult<User?>(null);
        }

        var normalized = NormalizeUpn(upn);
        return db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.NormalizedUpn == normalized, cancellationToken);
    }

    /// <summary>Finds a user by object id.</summary>
    public Task<User?> FindUserAsync(Guid id, CancellationToken cancellationToken = default) =>
        db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, cancellationToken);

    /// <summary>Sets a new password, and revokes every refresh-token grant of the user (their sign-ins end with the old password).</summary>
    public async Task SetPasswordAsync(User user, string newPassword, bool mustChange, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(newPassword);
        var hash = await hasher.HashAsync(newPassword, cancellationToken).ConfigureAwait(false);
        var ntHash = ProtectNtHash(newPassword);
        var now = time.GetUtcNow();
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(
            s => s.SetProperty(u => u.PasswordHash, hash).SetProperty(u => u.NtHashProtected, ntHash).SetProperty(u => u.MustChangePassword, mustChange).SetProperty(u => u.PasswordChangedAt, now),
            cancellationToken).ConfigureAwait(false);
        user.PasswordHash = hash;
        user.NtHashProtected = ntHash;
        user.MustChangePassword = mustChange;
        user.PasswordChangedAt = now;
        await GrantRevocation.RevokeUserAsync(db, user.Id, "password changed", now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The user's NT hash (MD4 of the UTF-16LE password), for NLA's NTLMv2 verification only; null when none is stored
    /// (a password set before NT hashes were kept) or when it cannot be decrypted (the Data Protection key is gone).
    /// </summary>
    public byte[]? RevealNtHash(User user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.NtHashProtected is not { Length: > 0 } stored)
        {
            return null;
        }

        try
        {
            var hash = ntHashProtector.Unprotect(stored);
            return hash.Length == 16 ? hash : null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    /// <summary>Enables the account.</summary>
    public Task EnableAsync(User user, CancellationToken cancellationToken = default) => SetEnabledAsync(user, true, cancellationToken);

    /// <summary>Disables the account and revokes every refresh-token grant of the user.</summary>
    public Task DisableAsync(User user, CancellationToken cancellationToken = default) => SetEnabledAsync(user, false, cancellationToken);

    /// <summary>Starts TOTP enrolment: stores a new 160-bit secret (encrypted, unconfirmed) and returns it for the QR code.</summary>
    public async Task<TotpEnrollment> BeginTotpEnrollmentAsync(User user, string issuer = "Gatehouse", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var secret = NewTotpSecret();
        var protectedSecret = Convert.ToBase64String(totpProtector.Protect(secret));
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(
            s => s.SetProperty(u => u.TotpSecretProtected, protectedSecret).SetProperty(u => u.TotpConfirmedAt, (DateTimeOffset?)null).SetProperty(u => u.TotpLastStep, 0L),
            cancellationToken).ConfigureAwait(false);
        user.TotpSecretProtected = protectedSecret;
        user.TotpConfirmedAt = null;
        user.TotpLastStep = 0;
        return new TotpEnrollment(Totp.Base32Encode(secret, pad: false), Totp.OtpAuthUri(issuer, user.UserPrincipalName, secret));
    }

    /// <summary>Confirms enrolment with a first code; the step is recorded so that code cannot be used again.</summary>
    public async Task<bool> ConfirmTotpAsync(User user, string code, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var current = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == user.Id, cancellationToken).ConfigureAwait(false);
        if (current?.TotpSecretProtected is null)
        {
            return false;
        }

        var secret = totpProtector.Unprotect(Convert.FromBase64String(current.TotpSecretProtected));
        var now = time.GetUtcNow();
        if (!Totp.TryVerify(secret, code, now, current.TotpLastStep, out var step))
        {
            return false;
        }

        var updated = await db.Users.Where(u => u.Id == user.Id && u.TotpLastStep < step && u.TotpSecretProtected == current.TotpSecretProtected)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpLastStep, step).SetProperty(u => u.TotpConfirmedAt, now), cancellationToken).ConfigureAwait(false);
        if (updated == 1)
        {
            user.TotpLastStep = step;
            user.TotpConfirmedAt = now;
        }

        return updated == 1;
    }

    /// <summary>A new random TOTP secret (160 bits, as RFC 4226 recommends), not stored anywhere yet.</summary>
    public static byte[] NewTotpSecret() => RandomNumberGenerator.GetBytes(TotpSecretBytes);

    /// <summary>
    /// The secret of an enrolment an administrator started (<see cref="BeginTotpEnrollmentAsync"/>) and the user has
    /// not confirmed yet, or null.
    /// </summary>
    public byte[]? PendingTotpSecret(User user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return user.TotpSecretProtected is null || user.TotpConfirmedAt is not null
            ? null
            : totpProtector.Unprotect(Convert.FromBase64String(user.TotpSecretProtected));
    }

    /// <summary>
    /// Confirms the enrolment of a secret the caller holds (the sign-in page keeps it sealed in its transaction until
    /// now) with a first code (±1 step): the secret is stored encrypted and confirmed, and the code's step recorded
    /// so the code cannot be used again. Refused when the user has a confirmed method already (a replayed or
    /// concurrent enrolment never replaces one); <see cref="ReplaceTotpAsync"/> replaces one.
    /// </summary>
    public async Task<bool> ConfirmTotpAsync(User user, ReadOnlyMemory<byte> secret, string code, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (secret.Length < 16)
        {
            throw new ArgumentException("a TOTP secret has at least 128 bits", nameof(secret));
        }

        var current = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == user.Id, cancellationToken).ConfigureAwait(false);
        if (current is null || current.TotpConfirmedAt is not null)
        {
            return false;
        }

        var now = time.GetUtcNow();
        if (!Totp.TryVerify(secret.Span, code, now, current.TotpLastStep, out var step))
        {
            return false;
        }

        var protectedSecret = Convert.ToBase64String(totpProtector.Protect(secret.ToArray()));
        var updated = await db.Users.Where(u => u.Id == user.Id && u.TotpConfirmedAt == null && u.TotpLastStep < step)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpSecretProtected, protectedSecret).SetProperty(u => u.TotpLastStep, step).SetProperty(u => u.TotpConfirmedAt, now), cancellationToken)
            .ConfigureAwait(false);
        if (updated == 1)
        {
            user.TotpSecretProtected = protectedSecret;
            user.TotpLastStep = step;
            user.TotpConfirmedAt = now;
        }

        return updated == 1;
    }

    /// <summary>
    /// Replaces the user's confirmed authenticator app with <paramref name="secret"/>, confirmed by a first code of the
    /// new secret (±1 step). The caller has already proved the user may change their security info (a recent MFA or a
    /// code of the current app). Refused when the user has no confirmed method (<see cref="ConfirmTotpAsync(User, ReadOnlyMemory{byte}, string, CancellationToken)"/>
    /// enrols a first one), or when the stored method changed since it was read (a concurrent replacement). A code of
    /// the new secret is accepted once: replaying the same form finds the same secret stored and its step used.
    /// </summary>
    public async Task<bool> ReplaceTotpAsync(User user, ReadOnlyMemory<byte> secret, string code, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (secret.Length < 16)
        {
            throw new ArgumentException("a TOTP secret has at least 128 bits", nameof(secret));
        }

        var current = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == user.Id, cancellationToken).ConfigureAwait(false);
        if (current?.TotpSecretProtected is null || current.TotpConfirmedAt is null)
        {
            return false;
        }

        // The used steps belong to the stored secret: a different secret starts afresh (its code may fall in the same
        // 30 s as the current app's code the user just typed); the same secret keeps them (a replayed form).
        var stored = totpProtector.Unprotect(Convert.FromBase64String(current.TotpSecretProtected));
        var lastStep = CryptographicOperations.FixedTimeEquals(stored, secret.Span) ? current.TotpLastStep : 0L;
        var now = time.GetUtcNow();
        if (!Totp.TryVerify(secret.Span, code, now, lastStep, out var step))
        {
            return false;
        }

        var protectedSecret = Convert.ToBase64String(totpProtector.Protect(secret.ToArray()));
        var updated = await db.Users.Where(u => u.Id == user.Id && u.TotpSecretProtected == current.TotpSecretProtected && u.TotpConfirmedAt != null)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpSecretProtected, protectedSecret).SetProperty(u => u.TotpLastStep, step).SetProperty(u => u.TotpConfirmedAt, now), cancellationToken)
            .ConfigureAwait(false);
        if (updated == 1)
        {
            user.TotpSecretProtected = protectedSecret;
            user.TotpLastStep = step;
            user.TotpConfirmedAt = now;
        }

        return updated == 1;
    }

    /// <summary>Removes the TOTP method, and revokes every refresh-token grant of the user (a sign-in may have used it).</summary>
    public async Task ResetTotpAsync(User user, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(
            s => s.SetProperty(u => u.TotpSecretProtected, (string?)null).SetProperty(u => u.TotpConfirmedAt, (DateTimeOffset?)null).SetProperty(u => u.TotpLastStep, 0L),
            cancellationToken).ConfigureAwait(false);
        user.TotpSecretProtected = null;
        user.TotpConfirmedAt = null;
        user.TotpLastStep = 0;
        await GrantRevocation.RevokeUserAsync(db, user.Id, "MFA reset", time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Registers a host (the name must be a valid, non-IP label); account secrets are encrypted with Data Protection.</summary>
    public async Task<Host> CreateHostAsync(Guid tenantId, string name, string backendHost, int backendPort, BackendSecurity security,
        string? adminAccountName = null, string? adminSecret = null, string? userAccountName = null, string? userSecret = null,
        IEnumerable<string>? aliases = null, Guid? hostGroupId = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backendHost);
        ArgumentOutOfRangeException.ThrowIfLessThan(backendPort, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(backendPort, 65535);
        if (!RdpScope.TryValidateLabel(name, out var label, out var error))
        {
            throw new ArgumentException(error, nameof(name));
        }

        var host = new Host
        {
            Id = Guid.NewGuid(),
            TenantId = tenantId,
            Name = label,
            HostGroupId = hostGroupId,
            BackendHost = backendHost,
            BackendPort = backendPort,
            BackendSecurity = security,
            AdminAccountName = adminAccountName,
            AdminSecretProtected = adminSecret is null ? null : hostSecretProtector.Protect(adminSecret),
            UserAccountName = userAccountName,
            UserSecretProtected = userSecret is null ? null : hostSecretProtector.Protect(userSecret),
            CreatedAt = time.GetUtcNow(),
        };
        foreach (var alias in aliases ?? [])
        {
            if (!RdpScope.TryValidateLabel(alias, out var aliasLabel, out var aliasError))
            {
                throw new ArgumentException(aliasError, nameof(aliases));
            }

            host.Aliases.Add(new HostAlias { Name = aliasLabel, HostId = host.Id });
        }

        db.Hosts.Add(host);
        await SaveAsync(cancellationToken).ConfigureAwait(false);
        return host;
    }

    /// <summary>Encrypts a mapped account secret for <see cref="Host.AdminSecretProtected"/> or <see cref="Host.UserSecretProtected"/>.</summary>
    public string ProtectHostSecret(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        return hostSecretProtector.Protect(secret);
    }

    /// <summary>Decrypts a mapped account secret (<see cref="Host.AdminSecretProtected"/> or <see cref="Host.UserSecretProtected"/>).</summary>
    public string UnprotectHostSecret(string protectedSecret)
    {
        ArgumentNullException.ThrowIfNull(protectedSecret);
        return hostSecretProtector.Unprotect(protectedSecret);
    }

    /// <summary>Finds a host by id.</summary>
    public Task<Host?> FindHostAsync(Guid id, CancellationToken cancellationToken = default) =>
        db.Hosts.AsNoTracking().FirstOrDefaultAsync(h => h.Id == id, cancellationToken);

    /// <summary>
    /// The user <paramref name="userId"/> and the host <paramref name="hostId"/> in one round trip (what issuing an RDP
    /// token reads); either is null when it does not exist.
    /// </summary>
    public async Task<(User? User, Host? Host)> FindUserAndHostAsync(Guid userId, Guid hostId, CancellationToken cancellationToken = default)
    {
        // An uncorrelated left join (SQLite has no APPLY for a subquery in the projection).
        var found = await (
                from u in db.Users.AsNoTracking().Where(u => u.Id == userId)
                from h in db.Hosts.AsNoTracking().Where(h => h.Id == hostId).DefaultIfEmpty()
                select new { User = u, Host = h })
            .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        return found is null ? (null, null) : (found.User, found.Host);
    }

    /// <summary>Finds a host of the tenant by name or alias (case-insensitive); IP-looking labels find nothing.</summary>
    public Task<Host?> FindHostByLabelAsync(Guid tenantId, string label, CancellationToken cancellationToken = default) =>
        FindHostByLabelInAsync(tenantId, label, cancellationToken);

    /// <summary>
    /// Finds a host by name or alias in whichever tenant registered it (names and aliases are unique across tenants);
    /// only for lookups made before any tenant is known (the gateway's web-account assertion names its host before
    /// its token is read, the TLS sign-in opens its host leg before the user is known). What follows checks the host
    /// against the tenant with <see cref="FindHostByLabelAsync(Guid, string, CancellationToken)"/>.
    /// </summary>
    public Task<Host?> FindHostByLabelInAnyTenantAsync(string label, CancellationToken cancellationToken = default) =>
        FindHostByLabelInAsync(null, label, cancellationToken);

    /// <summary>The name of a host group, or null when it is gone.</summary>
    public Task<string?> FindHostGroupNameAsync(Guid hostGroupId, CancellationToken cancellationToken = default) =>
        db.HostGroups.AsNoTracking().Where(g => g.Id == hostGroupId).Select(g => g.Name).FirstOrDefaultAsync(cancellationToken);

    /// <summary>The host a label names, in <paramref name="tenantId"/> (or any tenant when null).</summary>
    private async Task<Host?> FindHostByLabelInAsync(Guid? tenantId, string label, CancellationToken cancellationToken)
    {
        if (!RdpScope.TryValidateLabel(label, out var name, out _))
        {
            return null;
        }

        var hosts = db.Hosts.AsNoTracking().Include(h => h.Aliases);
        var inTenant = tenantId is { } id ? hosts.Where(h => h.TenantId == id) : hosts;
        var host = await inTenant.FirstOrDefaultAsync(h => h.Name == name, cancellationToken).ConfigureAwait(false);
        if (host is not null)
        {
            return host;
        }

        var alias = await db.HostAliases.AsNoTracking().FirstOrDefaultAsync(a => a.Name == name, cancellationToken).ConfigureAwait(false);
        return alias is null ? null : await inTenant.FirstOrDefaultAsync(h => h.Id == alias.HostId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Records <paramref name="pin"/> as the host's TLS key when it has none (trust on first use), atomically and only
    /// while the host still points at the backend the key was read from. Returns the key trusted afterwards:
    /// <paramref name="pin"/>, or the one another connection recorded first; null when the host is gone or points
    /// elsewhere now.
    /// </summary>
    public async Task<string?> RecordHostCertificateOnFirstUseAsync(Guid hostId, string backendHost, int backendPort, BackendSecurity security,
        string pin, string pinnedBy, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pin);
        ArgumentException.ThrowIfNullOrWhiteSpace(pinnedBy);
        var now = time.GetUtcNow();
        await db.Hosts
            .Where(h => h.Id == hostId && h.CertificatePin == null && h.BackendHost == backendHost && h.BackendPort == backendPort && h.BackendSecurity == security)
            .ExecuteUpdateAsync(u => u.SetProperty(h => h.CertificatePin, pin).SetProperty(h => h.CertificatePinnedAt, now).SetProperty(h => h.CertificatePinnedBy, pinnedBy), cancellationToken)
            .ConfigureAwait(false);
        return await db.Hosts.AsNoTracking()
            .Where(h => h.Id == hostId && h.BackendHost == backendHost && h.BackendPort == backendPort && h.BackendSecurity == security)
            .Select(h => h.CertificatePin)
            .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Replaces the host's trusted TLS key (an operator checked the new one), only while the host still points at the
    /// backend the key was read from; false when the host is gone or points elsewhere now.
    /// </summary>
    public async Task<bool> SetHostCertificatePinAsync(Guid hostId, string backendHost, int backendPort, BackendSecurity security,
        string pin, string pinnedBy, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pin);
        ArgumentException.ThrowIfNullOrWhiteSpace(pinnedBy);
        var now = time.GetUtcNow();
        var changed = await db.Hosts
            .Where(h => h.Id == hostId && h.BackendHost == backendHost && h.BackendPort == backendPort && h.BackendSecurity == security)
            .ExecuteUpdateAsync(u => u.SetProperty(h => h.CertificatePin, pin).SetProperty(h => h.CertificatePinnedAt, now).SetProperty(h => h.CertificatePinnedBy, pinnedBy), cancellationToken)
            .ConfigureAwait(false);
        return changed == 1;
    }

    /// <summary>Creates a host group.</summary>
    public async Task<HostGroup> CreateHostGroupAsync(Guid tenantId, string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var group = new HostGroup { Id = Guid.NewGuid(), TenantId = tenantId, Name = NormalizeName(name) };
        db.HostGroups.Add(group);
        await SaveAsync(cancellationToken).ConfigureAwait(false);
        return group;
    }

    /// <summary>Creates a group (name unique per tenant, case-insensitive).</summary>
    public async Task<Group> CreateGroupAsync(Guid tenantId, string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var group = new Group { Id = Guid.NewGuid(), TenantId = tenantId, Name = name.Trim(), NormalizedName = NormalizeName(name) };
        db.Groups.Add(group);
        await SaveAsync(cancellationToken).ConfigureAwait(false);
        return group;
    }

    /// <summary>Adds a user to a group (no-op when already a member).</summary>
    public async Task AddGroupMemberAsync(Guid groupId, Guid userId, CancellationToken cancellationToken = default)
    {
        if (await db.GroupMembers.AnyAsync(m => m.GroupId == groupId && m.UserId == userId, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        db.GroupMembers.Add(new GroupMember { Id = Guid.NewGuid(), GroupId = groupId, UserId = userId });
        await SaveAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a user from a group.</summary>
    public Task RemoveGroupMemberAsync(Guid groupId, Guid userId, CancellationToken cancellationToken = default) =>
        db.GroupMembers.Where(m => m.GroupId == groupId && m.UserId == userId).ExecuteDeleteAsync(cancellationToken);

    /// <summary>Ids of the groups the user is a direct member of.</summary>
    public Task<List<Guid>> GetUserGroupIdsAsync(Guid userId, CancellationToken cancellationToken = default) =>
        db.GroupMembers.AsNoTracking().Where(m => m.UserId == userId).Select(m => m.GroupId).ToListAsync(cancellationToken);

    /// <summary>
    /// First-run bootstrap, idempotent: creates the tenant for <paramref name="domain"/> and <c>admin@domain</c> with a
    /// temporary password, returned only on the run that created it.
    /// </summary>
    public async Task<BootstrapResult> BootstrapAsync(string domain, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(domain);
        var name = NormalizeName(domain);
        var adminUpn = "admin@" + name;
        var existing = await FindTenantAsync(name, cancellationToken).ConfigureAwait(false);
        if (existing is not null)
        {
            return new BootstrapResult(existing, adminUpn, null);
        }

        var tenant = await CreateTenantAsync(name, name, cancellationToken).ConfigureAwait(false);
        var (_, temporaryPassword) = await CreateUserAsync(tenant.Id, adminUpn, "Administrator", null, true, cancellationToken).ConfigureAwait(false);
        return new BootstrapResult(tenant, adminUpn, temporaryPassword);
    }

    /// <summary>A 16-character temporary password from an unambiguous alphabet.</summary>
    public static string GenerateTemporaryPassword() => RandomNumberGenerator.GetString(TemporaryPasswordAlphabet, 16);

    private async Task SetEnabledAsync(User user, bool enabled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.Enabled, enabled), cancellationToken).ConfigureAwait(false);
        user.Enabled = enabled;
        if (!enabled)
        {
            await GrantRevocation.RevokeUserAsync(db, user.Id, "account disabled", time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SaveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            db.ChangeTracker.Clear();
        }
    }
}
