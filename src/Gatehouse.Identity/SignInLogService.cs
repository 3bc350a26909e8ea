using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Protocol;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>One sign-in attempt, as a writer hands it to <see cref="SignInLogService.AppendAsync"/>.</summary>
public sealed record SignInEntry
{
    /// <summary>
    /// Tenant; <see cref="Guid.Empty"/> when the writer could not tell (an unknown user, a refusal before any name), and
    /// <see cref="SignInLogService.AppendAsync"/> attributes the row (<see cref="SignInLogService.AttributeTenantAsync"/>).
    /// </summary>
    public required Guid TenantId { get; init; }

    /// <summary>Correlation id (RDP connection id, HTTP trace id).</summary>
    public required string CorrelationId { get; init; }

    /// <summary><c>web_account</c>, <c>nla</c>, <c>tls</c> or <c>browser</c>.</summary>
    public required string Protocol { get; init; }

    /// <summary>True for a successful sign-in.</summary>
    public required bool Succeeded { get; init; }

    /// <summary>The precise reason (a machine-readable prefix such as <c>no_role_assignment:</c>, then words).</summary>
    public required string Reason { get; init; }

    /// <summary>The user, when known.</summary>
    public Guid? UserId { get; init; }

    /// <summary>The user name.</summary>
    public string? UserPrincipalName { get; init; }

    /// <summary>The application.</summary>
    public string? Application { get; init; }

    /// <summary>The host.</summary>
    public string? HostName { get; init; }

    /// <summary>The client's address.</summary>
    public string? ClientAddress { get; init; }

    /// <summary>Authentication methods.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>The code the client got.</summary>
    public string? Code { get; init; }

    /// <summary>The message the user sees.</summary>
    public string? UserMessage { get; init; }

    /// <summary>What to change.</summary>
    public string? Fix { get; init; }

    /// <summary>Each policy's outcome (JSON).</summary>
    public string? PoliciesJson { get; init; }

    /// <summary>The assignment that allowed it.</summary>
    public Guid? RoleAssignmentId { get; init; }

    /// <summary>Its role's name.</summary>
    public string? RoleName { get; init; }

    /// <summary>The injected account.</summary>
    public string? TargetAccount { get; init; }

    /// <summary>The session, when one started.</summary>
    public Guid? SessionId { get; init; }
}

/// <summary>A finding of <see cref="SignInLogService.VerifyAsync"/>.</summary>
public sealed record ChainProblem(long Sequence, string Problem);

/// <summary>The result of verifying the sign-in log's hash chain.</summary>
public sealed record ChainVerification(long Rows, IReadOnlyList<ChainProblem> Problems)
{
    /// <summary>True when every row is intact and none is missing.</summary>
    public bool Intact => Problems.Count == 0;
}

/// <summary>
/// The sign-in log: append-only and hash-chained. Every row carries the SHA-256 of the row before it and a hash over
/// its own fields; the chain head (last sequence and hash) is kept sealed with Data Protection, so
/// <see cref="VerifyAsync"/> detects an edited, deleted, reordered or inserted row and a truncated tail.
/// </summary>
public sealed class SignInLogService
{
    /// <summary>The previous hash of the first row.</summary>
    public const string GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

    internal const string HeadPurpose = "Gatehouse.Identity.SignInLogHead.v1";
    private const int ReasonLength = 4096;

    /// <summary>The PostgreSQL advisory lock a batch's transaction holds (the writers of every node take turns on it).</summary>
    private const long AdvisoryLock = 7166031001;
    private static readonly SemaphoreSlim AppendLock = new(1, 1);

    private readonly GatehouseDbContext _db;
    private readonly IDataProtector _head;
    private readonly TimeProvider _time;
    private readonly ISignInLogHeadStore _headStore;
    private readonly SignInLogWriter? _writer;

    /// <summary>Creates the service; with <paramref name="writer"/>, appends go through its group commits.</summary>
    public SignInLogService(GatehouseDbContext db, IDataProtectionProvider dataProtection, TimeProvider time, ISignInLogHeadStore headStore, SignInLogWriter? writer = null)
    {
        ArgumentNullException.ThrowIfNull(dataProtection);
        _db = db;
        _head = dataProtection.CreateProtector(HeadPurpose);
        _time = time;
        _headStore = headStore;
        _writer = writer;
    }

    /// <summary>
    /// Appends one row; retries when another node appended at the same moment. Returns the stored row once it is
    /// committed. A row without a tenant is attributed first (<see cref="AttributeTenantAsync"/>); a user or host name
    /// longer than the column is kept cut, ending in <c>…</c>, and the reason says how long it was. With a
    /// <see cref="SignInLogWriter"/> (the server registers one) the row joins the writer's next group commit; without
    /// one it is written in a transaction of its own.
    /// </summary>
    public async Task<SignInRecord> AppendAsync(SignInEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var tenantId = entry.TenantId != Guid.Empty ? entry.TenantId : await AttributeTenantAsync(entry, cancellationToken).ConfigureAwait(false);
        var record = Prepare(entry, tenantId);
        if (_writer is not null)
        {
            return await _writer.AppendAsync(record, cancellationToken).ConfigureAwait(false);
        }

        await AppendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await AppendBatchAsync([record], cancellationToken).ConfigureAwait(false);
            return record;
        }
        finally
        {
            AppendLock.Release();
        }
    }

    /// <summary>
    /// Writes <paramref name="rows"/> (prepared, not yet chained) at the end of the chain, in this order, in one
    /// transaction together with the sealed head; retries, after the rows, when another writer took the same sequence
    /// numbers first, and after a failure whose outcome is unknown only when the rows are not in the store (so a batch is
    /// never written twice). Throws when the batch could not be written after <see cref="MaxAttempts"/> attempts; then
    /// none of its rows is in the store.
    /// </summary>
    internal async Task AppendBatchAsync(IReadOnlyList<SignInRecord> rows, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await CommitAsync(rows, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (attempt < MaxAttempts && !cancellationToken.IsCancellationRequested && e is DbUpdateException or System.Data.Common.DbException or InvalidOperationException or TimeoutException)
            {
                // Another node took these sequence numbers first, or the store failed. A failure during the commit leaves
                // its outcome unknown: when the batch's first row is there, the whole batch is (one transaction).
                _db.ChangeTracker.Clear();
                if (await CommittedAsync(rows[0].Id, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
    }

    /// <summary>How many times a batch is tried before its callers are told it failed.</summary>
    internal const int MaxAttempts = 8;

    /// <summary>Prepares a row from <paramref name="entry"/>: every field but its place in the chain.</summary>
    internal SignInRecord Prepare(SignInEntry entry, Guid tenantId) => Prepare(entry, tenantId, _time.GetUtcNow());

    /// <summary>Prepares a row from <paramref name="entry"/>, written at <paramref name="now"/>: every field but its place in the chain.</summary>
    internal static SignInRecord Prepare(SignInEntry entry, Guid tenantId, DateTimeOffset now)
    {
        var notes = string.Concat(LengthNote("user name", entry.UserPrincipalName), LengthNote("host name", entry.HostName));
        return new SignInRecord
        {
            Id = Guid.NewGuid(),
            TenantId = tenantId,
            Time = DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()),
            CorrelationId = Clip(entry.CorrelationId, 128)!,
            UserId = entry.UserId,
            UserPrincipalName = DisplayText.Truncate(entry.UserPrincipalName, GatehouseDbContext.NameLength),
            Application = Clip(entry.Application, 128),
            HostName = DisplayText.Truncate(entry.HostName, GatehouseDbContext.NameLength),
            ClientAddress = Clip(entry.ClientAddress, 64),
            Protocol = entry.Protocol,
            Methods = entry.Methods.Count == 0 ? null : Clip(string.Join(' ', entry.Methods), 128),
            Result = entry.Succeeded ? "success" : "failure",
            Code = Clip(entry.Code, 32),
            UserMessage = Clip(entry.UserMessage, 1024),
            Reason = Clip(entry.Reason, ReasonLength - notes.Length) + notes,
            Fix = Clip(entry.Fix, 2048),
            PoliciesJson = Clip(entry.PoliciesJson, 65536),
            RoleAssignmentId = entry.RoleAssignmentId,
            RoleName = Clip(entry.RoleName, GatehouseDbContext.NameLength),
            TargetAccount = Clip(entry.TargetAccount, GatehouseDbContext.NameLength),
            SessionId = entry.SessionId,
        };
    }

    /// <summary>
    /// One attempt: reads the chain's last row, links <paramref name="rows"/> after it in order, and commits them with
    /// the sealed head in one transaction. On PostgreSQL the transaction first takes an advisory lock, so the writers of
    /// several nodes take turns instead of colliding; elsewhere (SQLite, one node) a collision fails the insert on the
    /// sequence key and the caller retries.
    /// </summary>
    private async Task CommitAsync(IReadOnlyList<SignInRecord> rows, CancellationToken cancellationToken)
    {
        var transaction = await _db.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            var last = await SignInRowWriter.LockAndReadLastAsync(_db, AdvisoryLock, cancellationToken).ConfigureAwait(false);
            var sequence = last?.Sequence ?? 0;
            var previousHash = last?.Hash ?? GenesisHash;
            foreach (var row in rows)
            {
                row.Sequence = ++sequence;
                row.PreviousHash = previousHash;
                row.Hash = ComputeHash(row);
                previousHash = row.Hash;
            }

            // Without change tracking: binary COPY on PostgreSQL, one prepared INSERT per row on SQLite.
            await SignInRowWriter.InsertAsync(_db, rows, cancellationToken).ConfigureAwait(false);

            // The rows and the sealed head commit together, so the head can only move forward with the rows it names.
            await _headStore.WriteAsync(_head.Protect(HeadText(sequence, previousHash)), cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            _db.ChangeTracker.Clear();
        }
    }

    private async Task<bool> CommittedAsync(Guid firstRowId, CancellationToken cancellationToken)
    {
        try
        {
            return await _db.SignIns.AsNoTracking().AnyAsync(s => s.Id == firstRowId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            // The store cannot tell yet: try the batch again (its rows are not there if this attempt finds them missing).
            return false;
        }
    }

    /// <summary>
    /// The tenant of an attempt its writer could not attribute (the gateway before it knows the user: an unknown user
    /// such as a password spray against names that do not exist, a <c>DOMAIN\user</c> name, a CredSSP timeout, a
    /// refused negotiation): the tenant of the host it named (host names and aliases are unique across tenants), else
    /// of the verified domain of the user name it gave, else the default tenant (the one <c>/common</c> and the CLI
    /// on the server's store serve). <see cref="Guid.Empty"/> only when the store has no tenant; such rows, and rows
    /// written before attribution, are shown to readers at <c>/</c> of every tenant, marked "unknown tenant".
    /// </summary>
    public async Task<Guid> AttributeTenantAsync(SignInEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.HostName is { Length: > 0 and <= 253 } hostName)
        {
            var host = DirectoryService.NormalizeName(hostName);
            var byHost = await _db.Hosts.AsNoTracking().Where(h => h.Name == host).Select(h => (Guid?)h.TenantId).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false)
                ?? await _db.HostAliases.AsNoTracking().Where(a => a.Name == host).Join(_db.Hosts, a => a.HostId, h => h.Id, (a, h) => (Guid?)h.TenantId)
                    .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
            if (byHost is { } hostTenant)
            {
                return hostTenant;
            }
        }

        if (entry.UserPrincipalName is { Length: <= GatehouseDbContext.NameLength } upn && upn.LastIndexOf('@') is var at && at >= 0 && at < upn.Length - 1)
        {
            var domain = DirectoryService.NormalizeName(upn[(at + 1)..]);
            var byDomain = await _db.TenantDomains.AsNoTracking().Where(d => d.Name == domain).Select(d => (Guid?)d.TenantId).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
            if (byDomain is { } domainTenant)
            {
                return domainTenant;
            }
        }

        // The default tenant, chosen as DirectoryService.FindTenantAsync("common") chooses it.
        return await _db.Tenants.AsNoTracking().OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).Select(t => t.Id).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Walks the whole chain and reports every broken link, edited row, gap and a truncated tail.</summary>
    public async Task<ChainVerification> VerifyAsync(CancellationToken cancellationToken = default)
    {
        var problems = new List<ChainProblem>();
        var previousHash = GenesisHash;
        long expected = 1;
        long rows = 0;
        await foreach (var row in _db.SignIns.AsNoTracking().OrderBy(s => s.Sequence).AsAsyncEnumerable().WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            rows++;
            if (row.Sequence != expected)
            {
                problems.Add(new ChainProblem(row.Sequence, row.Sequence > expected
                    ? $"rows {expected}..{row.Sequence - 1} are missing (deleted)"
                    : "the sequence goes backwards (rows reordered)"));
            }

            if (!string.Equals(row.PreviousHash, previousHash, StringComparison.Ordinal))
            {
                problems.Add(new ChainProblem(row.Sequence, "the link to the previous row is broken (a row before it was changed, deleted or moved)"));
            }

            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ComputeHash(row)), Encoding.ASCII.GetBytes(row.Hash)))
            {
                problems.Add(new ChainProblem(row.Sequence, "the row's content does not match its hash (the row was edited)"));
            }

            previousHash = row.Hash;
            expected = row.Sequence + 1;
        }

        var sealedHead = await _headStore.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (sealedHead is null)
        {
            if (rows > 0)
            {
                problems.Add(new ChainProblem(0, "the sealed chain head is missing, so a truncated tail cannot be ruled out"));
            }
        }
        else
        {
            string head;
            try
            {
                head = _head.Unprotect(sealedHead);
            }
            catch (CryptographicException)
            {
                problems.Add(new ChainProblem(0, "the sealed chain head does not unseal (it was replaced)"));
                return new ChainVerification(rows, problems);
            }

            var expectedHead = HeadText(expected - 1, previousHash);
            if (!string.Equals(head, expectedHead, StringComparison.Ordinal))
            {
                var headSequence = long.Parse(head.AsSpan(0, head.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
                problems.Add(new ChainProblem(headSequence, headSequence > expected - 1
                    ? $"the log ends at row {expected - 1} but row {headSequence} was written (the tail was truncated)"
                    : "the last row is not the row the log last wrote"));
            }
        }

        return new ChainVerification(rows, problems);
    }

    /// <summary>The row's hash: SHA-256 over a canonical JSON array of every field and the previous hash.</summary>
    public static string ComputeHash(SignInRecord row)
    {
        ArgumentNullException.ThrowIfNull(row);
        string?[] fields =
        [
            row.Sequence.ToString(CultureInfo.InvariantCulture), row.Id.ToString(), row.TenantId.ToString(),
            row.Time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), row.CorrelationId, row.UserId?.ToString(),
            row.UserPrincipalName, row.Application, row.HostName, row.ClientAddress, row.Protocol, row.Methods, row.Result,
            row.Code, row.UserMessage, row.Reason, row.Fix, row.PoliciesJson, row.RoleAssignmentId?.ToString(), row.RoleName,
            row.TargetAccount, row.SessionId?.ToString(), row.PreviousHash,
        ];
        var bytes = JsonSerializer.SerializeToUtf8Bytes(fields);
        return Convert.ToHexStringLower(SHA256.HashData(bytes));
    }

    private static string HeadText(long sequence, string hash) => string.Create(CultureInfo.InvariantCulture, $"{sequence} {hash}");

    private static string? Clip(string? value, int max) => value is null || value.Length <= max ? value : value[..max];

    /// <summary>The note a cut name adds to the reason: "(the user name given was 60000 characters; the log keeps the first 255)".</summary>
    private static string LengthNote(string what, string? value) => value is { Length: > GatehouseDbContext.NameLength }
        ? string.Create(CultureInfo.InvariantCulture, $" (the {what} given was {value.Length} characters; the log keeps the first {GatehouseDbContext.NameLength - 1})")
        : string.Empty;
}

/// <summary>Where the sealed chain head lives.</summary>
public interface ISignInLogHeadStore
{
    /// <summary>Reads the sealed head, or null when none was written.</summary>
    Task<string?> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Replaces the sealed head.</summary>
    Task WriteAsync(string sealedHead, CancellationToken cancellationToken);
}

/// <summary>The sealed head as a row of the store's settings table (shared by every node).</summary>
public sealed class StoreSignInLogHeadStore(GatehouseDbContext db) : ISignInLogHeadStore
{
    private const string Key = "signin-log-head";

    /// <inheritdoc/>
    public async Task<string?> ReadAsync(CancellationToken cancellationToken) =>
        await db.Settings.AsNoTracking().Where(s => s.Key == Key).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async Task WriteAsync(string sealedHead, CancellationToken cancellationToken)
    {
        // Plain SQL rather than ExecuteUpdate: it runs once per batch of the sign-in log, and this skips building and
        // looking up a LINQ query each time.
        var updated = await db.Database.ExecuteSqlAsync($"UPDATE \"Settings\" SET \"Value\" = {sealedHead} WHERE \"Key\" = {Key}", cancellationToken).ConfigureAwait(false);
        if (updated == 0)
        {
            db.Settings.Add(new StoreSetting { Key = Key, Value = sealedHead });
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            db.ChangeTracker.Clear();
        }
    }
}
