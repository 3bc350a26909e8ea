using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Gatehouse.Storage;

/// <summary>The directory store. Resolve this type; it is one of the provider subclasses.</summary>
public abstract class GatehouseDbContext : DbContext
{
    /// <summary>Longest name (UPN, host, group, domain) accepted.</summary>
    public const int NameLength = 256;

    /// <summary>Creates the context.</summary>
    protected GatehouseDbContext(DbContextOptions options)
        : base(options)
    {
    }

    /// <summary>Tenants.</summary>
    public DbSet<Tenant> Tenants => Set<Tenant>();

    /// <summary>Device authorizations of <c>gatehouse login</c> (RFC 8628).</summary>
    public DbSet<DeviceCode> DeviceCodes => Set<DeviceCode>();

    /// <summary>Verified domains.</summary>
    public DbSet<TenantDomain> TenantDomains => Set<TenantDomain>();

    /// <summary>Users.</summary>
    public DbSet<User> Users => Set<User>();

    /// <summary>Lockout counters.</summary>
    public DbSet<LockoutState> LockoutStates => Set<LockoutState>();

    /// <summary>Familiar networks.</summary>
    public DbSet<FamiliarAddress> FamiliarAddresses => Set<FamiliarAddress>();

    /// <summary>Groups.</summary>
    public DbSet<Group> Groups => Set<Group>();

    /// <summary>Group members.</summary>
    public DbSet<GroupMember> GroupMembers => Set<GroupMember>();

    /// <summary>Host groups.</summary>
    public DbSet<HostGroup> HostGroups => Set<HostGroup>();

    /// <summary>Hosts.</summary>
    public DbSet<Host> Hosts => Set<Host>();

    /// <summary>Host aliases.</summary>
    public DbSet<HostAlias> HostAliases => Set<HostAlias>();

    /// <summary>Consents.</summary>
    public DbSet<Consent> Consents => Set<Consent>();

    /// <summary>Signing keys.</summary>
    public DbSet<SigningKey> SigningKeys => Set<SigningKey>();

    /// <summary>Authorization codes.</summary>
    public DbSet<AuthorizationCode> AuthorizationCodes => Set<AuthorizationCode>();

    /// <summary>Refresh tokens.</summary>
    public DbSet<RefreshToken> RefreshTokens => Set<RefreshToken>();

    /// <summary>Grants.</summary>
    public DbSet<Grant> Grants => Set<Grant>();

    /// <summary>Access tokens issued per grant.</summary>
    public DbSet<IssuedToken> IssuedTokens => Set<IssuedToken>();

    /// <summary>Revoked access tokens.</summary>
    public DbSet<RevokedToken> RevokedTokens => Set<RevokedToken>();

    /// <summary>Data Protection key ring.</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    /// <summary>Custom role definitions.</summary>
    public DbSet<RoleDefinitionRecord> RoleDefinitions => Set<RoleDefinitionRecord>();

    /// <summary>Role assignments.</summary>
    public DbSet<RoleAssignmentRecord> RoleAssignments => Set<RoleAssignmentRecord>();

    /// <summary>Conditional Access policies.</summary>
    public DbSet<PolicyRecord> Policies => Set<PolicyRecord>();

    /// <summary>Named locations.</summary>
    public DbSet<NamedLocationRecord> NamedLocations => Set<NamedLocationRecord>();

    /// <summary>Custom authentication strengths.</summary>
    public DbSet<AuthenticationStrengthRecord> AuthenticationStrengths => Set<AuthenticationStrengthRecord>();

    /// <summary>The sign-in log.</summary>
    public DbSet<SignInRecord> SignIns => Set<SignInRecord>();

    /// <summary>Relayed sessions.</summary>
    public DbSet<SessionRecord> Sessions => Set<SessionRecord>();

    /// <summary>Named values shared by every node.</summary>
    public DbSet<StoreSetting> Settings => Set<StoreSetting>();

    /// <summary>Attempt counters shared by every node (per-account sign-in throttles), one row per key and window.</summary>
    public DbSet<AttemptCounter> AttemptCounters => Set<AttemptCounter>();

    /// <summary>Each node's last heartbeat (dead nodes' session records are closed from these).</summary>
    public DbSet<NodeHeartbeat> NodeHeartbeats => Set<NodeHeartbeat>();

    /// <summary>Passkeys (FIDO2/WebAuthn credentials) of users.</summary>
    public DbSet<Passkey> Passkeys => Set<Passkey>();

    /// <summary>One-time host enrolment tokens (hashes only).</summary>
    public DbSet<AgentEnrollment> AgentEnrollments => Set<AgentEnrollment>();

    /// <summary>The agents enrolled on hosts.</summary>
    public DbSet<HostAgent> HostAgents => Set<HostAgent>();

    /// <summary>Agent assertion ids already used (replay protection).</summary>
    public DbSet<AgentAssertionUse> AgentAssertionUses => Set<AgentAssertionUse>();

    /// <summary>Work for agents that poll another node (claimed by that node; logon answers protected).</summary>
    public DbSet<AgentWorkRequest> AgentWorkRequests => Set<AgentWorkRequest>();

    /// <summary>Temporary Access Passes (hashes only).</summary>
    public DbSet<TemporaryAccessPass> TemporaryAccessPasses => Set<TemporaryAccessPass>();

    /// <summary>Answered passkey sign-in challenges (single use).</summary>
    public DbSet<PasskeyChallengeUse> PasskeyChallengeUses => Set<PasskeyChallengeUse>();

    /// <inheritdoc/>
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);

        modelBuilder.Entity<Tenant>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.DisplayName).HasMaxLength(NameLength);
            e.HasMany(x => x.Domains).WithOne().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<TenantDomain>(e =>
        {
            e.HasKey(x => x.Name);
            e.Property(x => x.Name).HasMaxLength(253);
            e.HasIndex(x => x.TenantId);
        });
        modelBuilder.Entity<User>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.UserPrincipalName).HasMaxLength(NameLength);
            e.Property(x => x.NormalizedUpn).HasMaxLength(NameLength);
            e.HasIndex(x => x.NormalizedUpn).IsUnique();
            e.HasIndex(x => x.TenantId);
            e.Property(x => x.DisplayName).HasMaxLength(NameLength);
            e.Property(x => x.PasswordHash).HasMaxLength(512);
            e.Property(x => x.NtHashProtected).HasMaxLength(1024);
            e.Property(x => x.TotpSecretProtected).HasMaxLength(1024);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<LockoutState>(e =>
        {
            e.HasKey(x => new { x.UserId, x.Familiar });
            e.Property(x => x.RecentFailures).HasMaxLength(64);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<FamiliarAddress>(e =>
        {
            e.HasKey(x => new { x.UserId, x.Network });
            e.Property(x => x.Network).HasMaxLength(64);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Group>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(NameLength);
            e.Property(x => x.NormalizedName).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.NormalizedName }).IsUnique();
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<GroupMember>(e =>
        {
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.GroupId, x.UserId, x.MemberGroupId }).IsUnique();
            e.HasIndex(x => x.UserId);
            e.HasIndex(x => x.MemberGroupId);
            e.HasOne<Group>().WithMany().HasForeignKey(x => x.GroupId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<Group>().WithMany().HasForeignKey(x => x.MemberGroupId).OnDelete(DeleteBehavior.Restrict);
        });
        modelBuilder.Entity<HostGroup>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<Host>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(63);
            e.HasIndex(x => x.Name).IsUnique();
            e.HasIndex(x => x.TenantId);
            e.Property(x => x.BackendHost).HasMaxLength(253);
            e.Property(x => x.BackendSecurity).HasConversion<string>().HasMaxLength(8);
            e.Property(x => x.AdminAccountName).HasMaxLength(NameLength);
            e.Property(x => x.UserAccountName).HasMaxLength(NameLength);
            e.Property(x => x.AdminSecretProtected).HasMaxLength(2048);
            e.Property(x => x.UserSecretProtected).HasMaxLength(2048);
            e.Property(x => x.CertificatePin).HasMaxLength(64);
            e.Property(x => x.CertificatePinnedBy).HasMaxLength(16);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<HostGroup>().WithMany().HasForeignKey(x => x.HostGroupId).OnDelete(DeleteBehavior.SetNull);
            e.HasMany(x => x.Aliases).WithOne().HasForeignKey(x => x.HostId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<HostAlias>(e =>
        {
            e.HasKey(x => x.Name);
            e.Property(x => x.Name).HasMaxLength(63);
            e.HasIndex(x => x.HostId);
        });
        modelBuilder.Entity<Consent>(e =>
        {
            e.HasKey(x => new { x.UserId, x.HostId });
            e.HasIndex(x => x.HostId);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<Host>().WithMany().HasForeignKey(x => x.HostId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<SigningKey>(e =>
        {
            e.HasKey(x => x.Kid);
            e.Property(x => x.Kid).HasMaxLength(64);
            e.Property(x => x.PrivateKeyProtected).HasMaxLength(16384);
        });
        modelBuilder.Entity<AuthorizationCode>(e =>
        {
            e.HasKey(x => x.CodeHash);
            e.Property(x => x.CodeHash).HasMaxLength(64);
            e.Property(x => x.ClientId).HasMaxLength(128);
            e.Property(x => x.RedirectUri).HasMaxLength(2048);
            e.Property(x => x.Scope).HasMaxLength(2048);
            e.Property(x => x.CodeChallenge).HasMaxLength(128);
            e.Property(x => x.CodeChallengeMethod).HasMaxLength(16);
            e.Property(x => x.Amr).HasMaxLength(64);
            e.Property(x => x.TraceParent).HasMaxLength(64);
            e.HasIndex(x => x.ExpiresAt);
            e.HasIndex(x => x.GrantId);
        });
        modelBuilder.Entity<RefreshToken>(e =>
        {
            e.HasKey(x => x.TokenHash);
            e.Property(x => x.TokenHash).HasMaxLength(64);
            e.Property(x => x.ClientId).HasMaxLength(128);
            e.Property(x => x.Scope).HasMaxLength(2048);
            e.HasIndex(x => x.GrantId);
            e.HasIndex(x => x.ExpiresAt);
        });
        modelBuilder.Entity<Grant>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.RevokedReason).HasMaxLength(256);
            e.HasIndex(x => x.UserId);
        });
        modelBuilder.Entity<IssuedToken>(e =>
        {
            e.HasKey(x => x.Jti);
            e.Property(x => x.Jti).HasMaxLength(64);
            e.HasIndex(x => x.GrantId);
        });
        modelBuilder.Entity<DeviceCode>(e =>
        {
            e.HasKey(x => x.DeviceCodeHash);
            e.Property(x => x.DeviceCodeHash).HasMaxLength(64);
            e.Property(x => x.UserCodeHash).HasMaxLength(64);
            e.Property(x => x.ClientId).HasMaxLength(128);
            e.Property(x => x.Scope).HasMaxLength(512);
            e.Property(x => x.ClientAddress).HasMaxLength(64);
            e.Property(x => x.Status).HasMaxLength(16);
            e.Property(x => x.Amr).HasMaxLength(64);
            e.HasIndex(x => x.UserCodeHash).IsUnique();
            e.HasIndex(x => x.ClientAddress);
            e.HasIndex(x => x.ExpiresAt);
        });
        modelBuilder.Entity<AttemptCounter>(e =>
        {
            e.HasKey(x => x.Key);
            e.Property(x => x.Key).HasMaxLength(AttemptCounter.KeyLength);
            e.HasIndex(x => x.Window);
        });
        modelBuilder.Entity<Passkey>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.CredentialId).HasMaxLength(Passkey.CredentialIdLength);
            e.HasIndex(x => x.CredentialId).IsUnique();
            e.Property(x => x.PublicKey).HasMaxLength(Passkey.PublicKeyLength);
            e.Property(x => x.Name).HasMaxLength(Passkey.NameLength);
            e.HasIndex(x => new { x.UserId, x.Name }).IsUnique();
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<TemporaryAccessPass>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.PassHash).HasMaxLength(32);
            e.HasIndex(x => x.PassHash).IsUnique();
            e.HasIndex(x => x.UserId);
            e.HasOne<User>().WithMany().HasForeignKey(x => x.UserId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<RevokedToken>(e =>
        {
            e.HasKey(x => x.Jti);
            e.Property(x => x.Jti).HasMaxLength(64);
            e.HasIndex(x => x.ExpiresAt);
        });
        modelBuilder.Entity<DataProtectionKey>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.FriendlyName).HasMaxLength(NameLength);
        });
        modelBuilder.Entity<RoleDefinitionRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(NameLength);
            e.Property(x => x.NormalizedName).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.NormalizedName }).IsUnique();
            e.Property(x => x.Description).HasMaxLength(1024);
            e.Property(x => x.ActionsJson).HasMaxLength(8192);
            e.Property(x => x.NotActionsJson).HasMaxLength(8192);
            e.Property(x => x.DataActionsJson).HasMaxLength(8192);
            e.Property(x => x.AssignableRoleIdsJson).HasMaxLength(8192);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<RoleAssignmentRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.PrincipalKind).HasMaxLength(8);
            e.Property(x => x.Scope).HasMaxLength(NameLength);
            e.Property(x => x.CreatedBy).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.PrincipalId, x.RoleDefinitionId, x.Scope }).IsUnique();
            e.HasIndex(x => x.TenantId);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<PolicyRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.DisplayName).HasMaxLength(NameLength);
            e.Property(x => x.NormalizedName).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.NormalizedName }).IsUnique();
            e.Property(x => x.State).HasMaxLength(40);
            e.Property(x => x.Json).HasMaxLength(65536);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<AuthenticationStrengthRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.DisplayName).HasMaxLength(NameLength);
            e.Property(x => x.NormalizedName).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.NormalizedName }).IsUnique();
            e.Property(x => x.Description).HasMaxLength(1024);
            e.Property(x => x.CombinationsJson).HasMaxLength(16384);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<NamedLocationRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.DisplayName).HasMaxLength(NameLength);
            e.HasIndex(x => new { x.TenantId, x.DisplayName }).IsUnique();
            e.Property(x => x.IpRangesJson).HasMaxLength(65536);
            e.HasOne<Tenant>().WithMany().HasForeignKey(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<SignInRecord>(e =>
        {
            // The sequence is assigned by the writer (previous + 1), never generated: two nodes appending at once
            // collide on the key and one retries on top of the other, which keeps the chain linear.
            e.HasKey(x => x.Sequence);
            e.Property(x => x.Sequence).ValueGeneratedNever();
            e.HasIndex(x => x.Id).IsUnique();
            e.HasIndex(x => x.Time);
            e.HasIndex(x => x.UserId);
            e.Property(x => x.CorrelationId).HasMaxLength(128);
            e.Property(x => x.UserPrincipalName).HasMaxLength(NameLength);
            e.Property(x => x.Application).HasMaxLength(128);
            e.Property(x => x.HostName).HasMaxLength(NameLength);
            e.Property(x => x.ClientAddress).HasMaxLength(64);
            e.Property(x => x.Protocol).HasMaxLength(16);
            e.Property(x => x.Methods).HasMaxLength(128);
            e.Property(x => x.Result).HasMaxLength(16);
            e.Property(x => x.Code).HasMaxLength(32);
            e.Property(x => x.UserMessage).HasMaxLength(1024);
            e.Property(x => x.Reason).HasMaxLength(4096);
            e.Property(x => x.Fix).HasMaxLength(2048);
            e.Property(x => x.PoliciesJson).HasMaxLength(65536);
            e.Property(x => x.RoleName).HasMaxLength(NameLength);
            e.Property(x => x.TargetAccount).HasMaxLength(NameLength);
            e.Property(x => x.PreviousHash).HasMaxLength(64);
            e.Property(x => x.Hash).HasMaxLength(64);
        });
        modelBuilder.Entity<StoreSetting>(e =>
        {
            e.HasKey(x => x.Key);
            e.Property(x => x.Key).HasMaxLength(128);
            e.Property(x => x.Value).HasMaxLength(8192);
        });
        modelBuilder.Entity<SessionRecord>(e =>
        {
            e.HasKey(x => x.Id);
            e.HasIndex(x => x.StartedAt);
            e.HasIndex(x => x.EndedAt);
            e.Property(x => x.UserPrincipalName).HasMaxLength(NameLength);
            e.Property(x => x.HostName).HasMaxLength(NameLength);
            e.Property(x => x.Role).HasMaxLength(NameLength);
            e.Property(x => x.Account).HasMaxLength(NameLength);
            e.Property(x => x.ClientAddress).HasMaxLength(64);
            e.Property(x => x.Protocol).HasMaxLength(16);
            e.Property(x => x.Node).HasMaxLength(NameLength);
            e.Property(x => x.EndReason).HasMaxLength(1024);
        });
        modelBuilder.Entity<NodeHeartbeat>(e =>
        {
            e.HasKey(x => x.Node);
            e.Property(x => x.Node).HasMaxLength(NameLength);
        });
        modelBuilder.Entity<AgentEnrollment>(e =>
        {
            e.HasKey(x => x.Id);
            e.Property(x => x.SecretHash).HasMaxLength(64);
            e.HasIndex(x => x.SecretHash).IsUnique();
            e.Property(x => x.CreatedBy).HasMaxLength(NameLength);
            e.HasIndex(x => x.HostId);
            e.HasOne<Host>().WithMany().HasForeignKey(x => x.HostId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<HostAgent>(e =>
        {
            e.HasKey(x => x.Id);
            e.HasIndex(x => x.HostId).IsUnique();
            e.Property(x => x.PublicKey).HasMaxLength(HostAgent.PublicKeyLength);
            e.Property(x => x.OperatingSystem).HasMaxLength(NameLength);
            e.Property(x => x.AgentVersion).HasMaxLength(64);
            e.Property(x => x.HealthJson).HasMaxLength(8192);
            e.HasOne<Host>().WithMany().HasForeignKey(x => x.HostId).OnDelete(DeleteBehavior.Cascade);
        });
        modelBuilder.Entity<AgentAssertionUse>(e =>
        {
            e.HasKey(x => x.Jti);
            e.Property(x => x.Jti).HasMaxLength(64);
            e.HasIndex(x => x.ExpiresAt);
        });

        modelBuilder.Entity<PasskeyChallengeUse>(e =>
        {
            e.HasKey(x => x.ChallengeHash);
            e.Property(x => x.ChallengeHash).HasMaxLength(64);
            e.HasIndex(x => x.ExpiresAt);
        });

        modelBuilder.Entity<AgentWorkRequest>(e =>
        {
            e.HasKey(x => x.Id);
            e.HasIndex(x => x.AgentId);
            e.HasIndex(x => x.ExpiresAt);
            e.Property(x => x.Kind).HasMaxLength(16);
            e.Property(x => x.UserPrincipalName).HasMaxLength(NameLength);
            e.Property(x => x.Level).HasMaxLength(16);
            e.Property(x => x.RequestedBy).HasMaxLength(NameLength);
            e.Property(x => x.ClaimedBy).HasMaxLength(NameLength);
            e.Property(x => x.AnswerProtected).HasMaxLength(AgentWorkRequest.AnswerLength);
            e.HasOne<HostAgent>().WithMany().HasForeignKey(x => x.AgentId).OnDelete(DeleteBehavior.Cascade);
        });
    }
}

/// <summary>The store on SQLite. DateTimeOffset values are stored as Unix milliseconds so SQL can compare and order them.</summary>
public sealed class SqliteGatehouseDbContext : GatehouseDbContext
{
    /// <summary>Creates the context.</summary>
    public SqliteGatehouseDbContext(DbContextOptions<SqliteGatehouseDbContext> options)
        : base(options)
    {
    }

    /// <inheritdoc/>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        ArgumentNullException.ThrowIfNull(configurationBuilder);
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UnixMillisecondsConverter>();
    }

    /// <summary>DateTimeOffset (UTC) ↔ Unix milliseconds.</summary>
    private sealed class UnixMillisecondsConverter : ValueConverter<DateTimeOffset, long>
    {
        public UnixMillisecondsConverter()
            : base(v => v.ToUnixTimeMilliseconds(), v => DateTimeOffset.FromUnixTimeMilliseconds(v))
        {
        }
    }
}

/// <summary>The store on PostgreSQL (timestamptz columns; values are converted to UTC, which Npgsql requires).</summary>
public sealed class PostgresGatehouseDbContext : GatehouseDbContext
{
    /// <summary>Creates the context.</summary>
    public PostgresGatehouseDbContext(DbContextOptions<PostgresGatehouseDbContext> options)
        : base(options)
    {
    }

    /// <inheritdoc/>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        ArgumentNullException.ThrowIfNull(configurationBuilder);
        configurationBuilder.Properties<DateTimeOffset>().HaveConversion<UtcConverter>();
    }

    /// <summary>Any offset → UTC (the same instant).</summary>
    private sealed class UtcConverter : ValueConverter<DateTimeOffset, DateTimeOffset>
    {
        public UtcConverter()
            : base(v => v.ToUniversalTime(), v => v)
        {
        }
    }
}
