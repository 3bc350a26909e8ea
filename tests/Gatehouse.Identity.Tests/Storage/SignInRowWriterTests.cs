using System.Security.Cryptography;
using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary>
/// The sign-in log's write path without EF Core's change tracking (<see cref="SignInRowWriter"/>: binary COPY on
/// PostgreSQL, a prepared INSERT on SQLite) and the hash's canonical form written with a reused JSON writer: rows read
/// back exactly as written, inside the batch's transaction only, and every hash is the one the original serialisation
/// gives (so chains written before still verify).
/// </summary>
public sealed class SignInRowWriterTests
{
    private static SignInRecord Row(long sequence, bool full) => new()
    {
        Sequence = sequence,
        Id = Guid.NewGuid(),
        TenantId = Guid.NewGuid(),
        Time = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_123 + sequence),
        CorrelationId = $"conn-{sequence}",
        UserId = full ? Guid.NewGuid() : null,
        UserPrincipalName = full ? "zoë.o'brien+<test>@contoso.test" : null,
        Application = full ? "a4a365df-50f1-4397-bc59-1a1564b8bb9c" : null,
        HostName = full ? "vm-日本.contoso.test" : null,
        ClientAddress = full ? "2001:db8::1" : null,
        Protocol = "web_account",
        Methods = full ? "pwd mfa" : null,
        Result = full ? "success" : "failure",
        Code = full ? "0x00000000" : null,
        UserMessage = full ? "Line one\nline \"two\"\t😀" : null,
        Reason = "no_role_assignment: \u0001 & \\ done",
        Fix = full ? "Assign a role." : null,
        PoliciesJson = full ? "[{\"policy\":\"mfa\",\"outcome\":\"ok\"}]" : null,
        RoleAssignmentId = full ? Guid.NewGuid() : null,
        RoleName = full ? "Virtual Machine User Login" : null,
        TargetAccount = full ? @"CONTOSO\alice" : null,
        SessionId = full ? Guid.NewGuid() : null,
        PreviousHash = SignInLogService.GenesisHash,
        Hash = new string('a', 64),
    };

    private static async Task WriteAsync(TestEnv env, IReadOnlyList<SignInRecord> rows)
    {
        await using var db = env.Store.CreateContext();
        await using var transaction = await db.Database.BeginTransactionAsync();
        await SignInRowWriter.InsertAsync(db, rows, CancellationToken.None);
        await transaction.CommitAsync();
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task InsertAsync_EveryField_ReadsBackAsWritten_AndIsFoundById(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            SignInRecord[] rows = [Row(1, full: true), Row(2, full: false), Row(3, full: true)];

            await WriteAsync(env, rows);

            await using var db = env.Store.CreateContext();
            var read = await db.SignIns.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
            Assert.Equal(rows.Length, read.Count);
            for (var i = 0; i < rows.Length; i++)
            {
                foreach (var name in SignInRowWriter.Properties)
                {
                    var property = typeof(SignInRecord).GetProperty(name)!;
                    Assert.Equal(property.GetValue(rows[i]), property.GetValue(read[i]));
                }
            }

            // Queries compare the stored values as EF Core stores them (ids as SQLite text, times as numbers).
            Assert.True(await db.SignIns.AnyAsync(s => s.Id == rows[1].Id));
            Assert.Equal(3, await db.SignIns.CountAsync(s => s.Time >= rows[0].Time));
            Assert.Equal(rows[2].Sequence, await db.SignIns.Where(s => s.SessionId == rows[2].SessionId).Select(s => s.Sequence).SingleAsync());
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task InsertAsync_TransactionRolledBack_NothingWritten(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            await using (var db = env.Store.CreateContext())
            {
                await using var transaction = await db.Database.BeginTransactionAsync();
                await SignInRowWriter.InsertAsync(db, [Row(1, full: true), Row(2, full: true)], CancellationToken.None);
                await transaction.RollbackAsync();
            }

            await using var check = env.Store.CreateContext();
            Assert.Equal(0, await check.SignIns.CountAsync());
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task InsertAsync_SequenceTaken_FailsAndWritesNoneOfTheBatch(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            await WriteAsync(env, [Row(2, full: false)]);

            // Another node took sequence 2 first: the batch 1..3 fails as a whole.
            await Assert.ThrowsAnyAsync<Exception>(() => WriteAsync(env, [Row(1, full: true), Row(2, full: true), Row(3, full: true)]));

            await using var db = env.Store.CreateContext();
            Assert.Equal([2L], await db.SignIns.Select(s => s.Sequence).ToListAsync());
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task LockAndReadLastAsync_EmptyLog_Null_ThenTheLastRow(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            await using (var db = env.Store.CreateContext())
            {
                await using var transaction = await db.Database.BeginTransactionAsync();
                Assert.Null(await SignInRowWriter.LockAndReadLastAsync(db, 42, CancellationToken.None));
            }

            var rows = new[] { Row(1, full: false), Row(2, full: true), Row(3, full: false) };
            rows[2].Hash = new string('c', 64);
            await WriteAsync(env, rows);

            await using (var db = env.Store.CreateContext())
            {
                await using var transaction = await db.Database.BeginTransactionAsync();
                Assert.Equal((3L, new string('c', 64)), await SignInRowWriter.LockAndReadLastAsync(db, 42, CancellationToken.None));
            }
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [PostgresStore]
    public async Task LockAndReadLastAsync_OnPostgres_HoldsTheAdvisoryLockUntilTheTransactionEnds(StoreProvider provider)
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(provider);
        try
        {
            await using var node = env.Store.CreateContext();
            await using var other = env.Store.CreateContext();
            var transaction = await node.Database.BeginTransactionAsync();

            await SignInRowWriter.LockAndReadLastAsync(node, 7166031777, CancellationToken.None);

            Assert.False(await TryLockAsync(other));
            await transaction.RollbackAsync();
            await transaction.DisposeAsync();
            Assert.True(await TryLockAsync(other));
        }
        finally
        {
            await fixture.DisposeAsync();
        }

        static async Task<bool> TryLockAsync(GatehouseDbContext db) =>
            await db.Database.SqlQueryRaw<bool>("SELECT pg_try_advisory_xact_lock(7166031777) AS \"Value\"").SingleAsync();
    }

    [Fact]
    public async Task InsertAsync_WithoutATransaction_IsRefused()
    {
        var fixture = new StoreFixture();
        await using var env = await fixture.CreateEnvAsync(StoreProvider.Sqlite);
        try
        {
            await using var db = env.Store.CreateContext();

            await Assert.ThrowsAsync<InvalidOperationException>(() => SignInRowWriter.InsertAsync(db, [Row(1, full: true)], CancellationToken.None));
        }
        finally
        {
            await fixture.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(StoreProvider.Sqlite)]
    [InlineData(StoreProvider.Postgres)]
    public void Properties_NameEveryMappedPropertyOnce(StoreProvider provider)
    {
        var options = provider == StoreProvider.Postgres
            ? new StoreOptions { Provider = StoreProvider.Postgres, ConnectionString = "Host=127.0.0.1;Database=unused" }
            : new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = "Data Source=:memory:" };
        using var db = options.CreateContext();

        var mapped = db.Model.FindEntityType(typeof(SignInRecord))!.GetProperties().Select(p => p.Name).Order(StringComparer.Ordinal);

        Assert.Equal(mapped, SignInRowWriter.Properties.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ComputeHash_KnownRow_KeepsItsHash()
    {
        // A row hashed by the serialisation the log has always used: a change to the canonical form breaks every chain.
        var row = new SignInRecord
        {
            Sequence = 12,
            Id = Guid.Parse("0b8f9a52-6f3e-4f7e-9a0d-2c1e5b7d9f01"),
            TenantId = Guid.Parse("5f1d2c3b-4a59-4e6f-8071-92a3b4c5d6e7"),
            Time = DateTimeOffset.FromUnixTimeMilliseconds(1_796_000_000_123),
            CorrelationId = "conn-12",
            UserPrincipalName = "zoë@contoso.test",
            Protocol = "nla",
            Result = "failure",
            Reason = "bad_password: <wrong>",
            SessionId = Guid.Parse("00000000-0000-0000-0000-000000000001"),
            PreviousHash = SignInLogService.GenesisHash,
        };

        Assert.Equal(KnownHash, SignInLogService.ComputeHash(row));
    }

    private const string KnownHash = "c44ce453d14f43a74f801fd6e5032313a24d97a818625589e4821805f51015e9";
}
