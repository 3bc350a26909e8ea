namespace Gatehouse.Storage;

/// <summary>A directory tenant (an organisation): the GUID is the Entra-style tenant id (<c>tid</c>).</summary>
public sealed class Tenant
{
    /// <summary>Tenant id.</summary>
    public Guid Id { get; set; }

    /// <summary>Display name.</summary>
    public string DisplayName { get; set; } = "";

    /// <summary>When the tenant was created.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Verified domain names.</summary>
    public List<TenantDomain> Domains { get; set; } = [];
}

/// <summary>A verified domain of a tenant (lower-case, unique across the store).</summary>
public sealed class TenantDomain
{
    /// <summary>Lower-case domain name (primary key).</summary>
    public string Name { get; set; } = "";

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>True for the domain created with the tenant.</summary>
    public bool IsInitial { get; set; }
}

/// <summary>A user; <see cref="Id"/> is the object id (<c>oid</c>).</summary>
public sealed class User
{
    /// <summary>Object id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>User principal name as entered (<c>user@domain</c>).</summary>
    public string UserPrincipalName { get; set; } = "";

    /// <summary>Upper-invariant UPN, unique across the store.</summary>
    public string NormalizedUpn { get; set; } = "";

    /// <summary>Display name.</summary>
    public string DisplayName { get; set; } = "";

    /// <summary>False when the account is disabled.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>PBKDF2 hash string (see <c>PasswordHasher</c>).</summary>
    public string PasswordHash { get; set; } = "";

    /// <summary>The password is temporary and must be changed at the next sign-in.</summary>
    public bool MustChangePassword { get; set; }

    /// <summary>When the password was last set.</summary>
    public DateTimeOffset PasswordChangedAt { get; set; }

    /// <summary>NT hash protected with Data Protection (NLA only; filled by issue 6).</summary>
    public byte[]? NtHashProtected { get; set; }

    /// <summary>TOTP secret protected with Data Protection.</summary>
    public string? TotpSecretProtected { get; set; }

    /// <summary>When the TOTP method was confirmed; null while enrolment is pending or absent.</summary>
    public DateTimeOffset? TotpConfirmedAt { get; set; }

    /// <summary>Last accepted TOTP time step (codes at or before it are refused).</summary>
    public long TotpLastStep { get; set; }

    /// <summary>When the user was created.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"User {Id} {UserPrincipalName}";
}

/// <summary>Smart-lockout counters of a user, one row for familiar and one for unfamiliar addresses.</summary>
public sealed class LockoutState
{
    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>True for the familiar-address counter.</summary>
    public bool Familiar { get; set; }

    /// <summary>Failures since the last success or lockout.</summary>
    public int Failures { get; set; }

    /// <summary>Locked until this instant.</summary>
    public DateTimeOffset? LockedUntil { get; set; }

    /// <summary>Number of lockouts so far (the lock duration doubles with each).</summary>
    public int Lockouts { get; set; }

    /// <summary>
    /// Fingerprints of the last three wrong passwords (space-separated; truncated PBKDF2 outputs under the user's own salt),
    /// so a repeated wrong password is not counted again (Entra smart-lockout behaviour).
    /// </summary>
    public string? RecentFailures { get; set; }
}

/// <summary>A network prefix (IPv4 /24 or IPv6 /64) from which the user signed in successfully.</summary>
public sealed class FamiliarAddress
{
    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>Network prefix, e.g. <c>192.0.2.0/24</c>.</summary>
    public string Network { get; set; } = "";

    /// <summary>Last successful sign-in from this network.</summary>
    public DateTimeOffset LastSuccessAt { get; set; }
}

/// <summary>A security group (name unique per tenant).</summary>
public sealed class Group
{
    /// <summary>Group id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Group name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Lower-invariant name (unique per tenant).</summary>
    public string NormalizedName { get; set; } = "";
}

/// <summary>A member of a group: a user or a nested group.</summary>
public sealed class GroupMember
{
    /// <summary>Row id.</summary>
    public Guid Id { get; set; }

    /// <summary>The group.</summary>
    public Guid GroupId { get; set; }

    /// <summary>Member user, or null.</summary>
    public Guid? UserId { get; set; }

    /// <summary>Member group, or null.</summary>
    public Guid? MemberGroupId { get; set; }
}

/// <summary>A group of hosts (a scope level for role assignments).</summary>
public sealed class HostGroup
{
    /// <summary>Host group id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Lower-case name, unique per tenant.</summary>
    public string Name { get; set; } = "";
}

/// <summary>How the gateway secures the connection to the backend.</summary>
public enum BackendSecurity
{
    /// <summary>TLS with credentials in the Client Info PDU (xrdp).</summary>
    Tls = 0,

    /// <summary>NLA / CredSSP (Windows).</summary>
    Nla = 1,
}

/// <summary>An RDP host: the name is the "device name" clients type.</summary>
public sealed class Host
{
    /// <summary>Host id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Lower-case host name, unique.</summary>
    public string Name { get; set; } = "";

    /// <summary>Host group, if any.</summary>
    public Guid? HostGroupId { get; set; }

    /// <summary>Backend host name or address.</summary>
    public string BackendHost { get; set; } = "";

    /// <summary>Backend TCP port.</summary>
    public int BackendPort { get; set; } = 3389;

    /// <summary>Backend security.</summary>
    public BackendSecurity BackendSecurity { get; set; }

    /// <summary>Account used for Administrator Login.</summary>
    public string? AdminAccountName { get; set; }

    /// <summary>Its secret, protected with Data Protection.</summary>
    public string? AdminSecretProtected { get; set; }

    /// <summary>Account used for User Login.</summary>
    public string? UserAccountName { get; set; }

    /// <summary>Its secret, protected with Data Protection.</summary>
    public string? UserSecretProtected { get; set; }

    /// <summary>
    /// The host's trusted TLS key: <c>SHA256:</c> and the unpadded base64 of the SHA-256 of its certificate's
    /// SubjectPublicKeyInfo; null until the key is first recorded (trust on first use).
    /// </summary>
    public string? CertificatePin { get; set; }

    /// <summary>When <see cref="CertificatePin"/> was recorded.</summary>
    public DateTimeOffset? CertificatePinnedAt { get; set; }

    /// <summary>What recorded it: host create, host update, host test, host trust or connection (the first host leg).</summary>
    public string? CertificatePinnedBy { get; set; }

    /// <summary>When the host was registered.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Aliases.</summary>
    public List<HostAlias> Aliases { get; set; } = [];

    /// <inheritdoc/>
    public override string ToString() => $"Host {Id} {Name}";
}

/// <summary>Another name of a host (lower-case, unique).</summary>
public sealed class HostAlias
{
    /// <summary>Lower-case alias (primary key).</summary>
    public string Name { get; set; } = "";

    /// <summary>The host.</summary>
    public Guid HostId { get; set; }
}

/// <summary>A user's consent to connect to a host.</summary>
public sealed class Consent
{
    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>Host.</summary>
    public Guid HostId { get; set; }

    /// <summary>When consent was given.</summary>
    public DateTimeOffset GrantedAt { get; set; }
}

/// <summary>A token signing key.</summary>
public sealed class SigningKey
{
    /// <summary>Key id: base64url SHA-256 JWK thumbprint.</summary>
    public string Kid { get; set; } = "";

    /// <summary>When it was created.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When it became the active key.</summary>
    public DateTimeOffset ActivatedAt { get; set; }

    /// <summary>When it stopped signing, or null while active.</summary>
    public DateTimeOffset? RetiredAt { get; set; }

    /// <summary>PKCS#8 PEM protected with Data Protection.</summary>
    public string PrivateKeyProtected { get; set; } = "";

    /// <inheritdoc/>
    public override string ToString() => $"SigningKey {Kid}";
}

/// <summary>An authorization code, stored hashed.</summary>
public sealed class AuthorizationCode
{
    /// <summary>SHA-256 hex of the code.</summary>
    public string CodeHash { get; set; } = "";

    /// <summary>Client id.</summary>
    public string ClientId { get; set; } = "";

    /// <summary>Redirect URI the code was issued for.</summary>
    public string RedirectUri { get; set; } = "";

    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>Granted scope.</summary>
    public string Scope { get; set; } = "";

    /// <summary>Host the scope names, if any.</summary>
    public Guid? HostId { get; set; }

    /// <summary>PKCE challenge.</summary>
    public string? CodeChallenge { get; set; }

    /// <summary>PKCE method (S256).</summary>
    public string? CodeChallengeMethod { get; set; }

    /// <summary>Authentication methods, space-separated.</summary>
    public string Amr { get; set; } = "";

    /// <summary>When the user authenticated.</summary>
    public DateTimeOffset AuthTime { get; set; }

    /// <summary>Issued at.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Expires at (≤ 60 s after creation).</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When it was redeemed, or null.</summary>
    public DateTimeOffset? RedeemedAt { get; set; }

    /// <summary>The grant every token minted from this code belongs to.</summary>
    public Guid GrantId { get; set; }

    /// <summary>
    /// The W3C <c>traceparent</c> of the sign-in span that issued the code (null when nothing was traced): the token
    /// endpoint continues the sign-in's trace from it, on whichever node redeems the code. Ids only, not a secret.
    /// </summary>
    public string? TraceParent { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"AuthorizationCode grant {GrantId}";
}

/// <summary>A refresh token, stored hashed.</summary>
public sealed class RefreshToken
{
    /// <summary>SHA-256 hex of the token.</summary>
    public string TokenHash { get; set; } = "";

    /// <summary>Grant.</summary>
    public Guid GrantId { get; set; }

    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>Client id.</summary>
    public string ClientId { get; set; } = "";

    /// <summary>Scope.</summary>
    public string Scope { get; set; } = "";

    /// <summary>Issued at.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Expires at.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When it was exchanged (rotated), or null.</summary>
    public DateTimeOffset? ConsumedAt { get; set; }

    /// <summary>When it was revoked, or null.</summary>
    public DateTimeOffset? RevokedAt { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"RefreshToken grant {GrantId}";
}

/// <summary>The grant that links every token minted from one authorization code.</summary>
public sealed class Grant
{
    /// <summary>Grant id.</summary>
    public Guid Id { get; set; }

    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>Created at.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When it was revoked, or null.</summary>
    public DateTimeOffset? RevokedAt { get; set; }

    /// <summary>Why it was revoked.</summary>
    public string? RevokedReason { get; set; }
}

/// <summary>
/// A device authorization (RFC 8628) of <c>gatehouse login</c>: the device code and the user code are stored as SHA-256
/// only; the row moves pending → approved or denied (by the user on <c>/devicelogin</c>) → redeemed (once, by the
/// polling client), and is deleted after it expires.
/// </summary>
public sealed class DeviceCode
{
    /// <summary>SHA-256 hex of the device code (what the client polls with).</summary>
    public string DeviceCodeHash { get; set; } = "";

    /// <summary>SHA-256 hex of the normalised user code (what the user types; unique among stored rows).</summary>
    public string UserCodeHash { get; set; } = "";

    /// <summary>The tenant the client asked in.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Client id.</summary>
    public string ClientId { get; set; } = "";

    /// <summary>Requested scope.</summary>
    public string Scope { get; set; } = "";

    /// <summary>The address that asked for the code (the per-address cap of pending codes).</summary>
    public string ClientAddress { get; set; } = "";

    /// <summary><c>pending</c>, <c>approved</c>, <c>denied</c> or <c>redeemed</c>.</summary>
    public string Status { get; set; } = "pending";

    /// <summary>Issued at.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Expires at.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>The polling interval the client must keep, in seconds (grows by 5 with each <c>slow_down</c>).</summary>
    public int IntervalSeconds { get; set; }

    /// <summary>The last poll, or null.</summary>
    public DateTimeOffset? LastPolledAt { get; set; }

    /// <summary>The user who approved or denied it.</summary>
    public Guid? UserId { get; set; }

    /// <summary>Authentication methods of the approving sign-in, space-separated.</summary>
    public string? Amr { get; set; }

    /// <summary>When the approving user authenticated.</summary>
    public DateTimeOffset? AuthTime { get; set; }

    /// <summary>When it was approved or denied.</summary>
    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>When the client redeemed it, or null.</summary>
    public DateTimeOffset? RedeemedAt { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"DeviceCode {Status} for {ClientId}";
}

/// <summary>An access token that must be refused before it expires.</summary>
public sealed class RevokedToken
{
    /// <summary>The token's <c>jti</c>.</summary>
    public string Jti { get; set; } = "";

    /// <summary>The token's expiry (the row can be deleted afterwards).</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>An access token issued under a grant (so a grant revocation can list its <c>jti</c>s).</summary>
public sealed class IssuedToken
{
    /// <summary>The token's <c>jti</c>.</summary>
    public string Jti { get; set; } = "";

    /// <summary>Grant.</summary>
    public Guid GrantId { get; set; }

    /// <summary>Expiry.</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>An ASP.NET Data Protection key ring element shared by every node.</summary>
public sealed class DataProtectionKey
{
    /// <summary>Row id.</summary>
    public int Id { get; set; }

    /// <summary>Friendly name given by Data Protection.</summary>
    public string? FriendlyName { get; set; }

    /// <summary>The key XML.</summary>
    public string Xml { get; set; } = "";
}

/// <summary>A custom role definition (the built-in roles live in code, not in the store).</summary>
public sealed class RoleDefinitionRecord
{
    /// <summary>Role id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Name as given.</summary>
    public string Name { get; set; } = "";

    /// <summary>Name upper-cased for lookups.</summary>
    public string NormalizedName { get; set; } = "";

    /// <summary>Description.</summary>
    public string Description { get; set; } = "";

    /// <summary>Control-plane actions (JSON array).</summary>
    public string ActionsJson { get; set; } = "[]";

    /// <summary>Excluded actions (JSON array).</summary>
    public string NotActionsJson { get; set; } = "[]";

    /// <summary>Data actions such as sign-in (JSON array).</summary>
    public string DataActionsJson { get; set; } = "[]";

    /// <summary>Role ids this role may assign (JSON array), or null for any.</summary>
    public string? AssignableRoleIdsJson { get; set; }

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A role assignment: a principal (user or group) holds a role at a scope.</summary>
public sealed class RoleAssignmentRecord
{
    /// <summary>Assignment id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>The user's or group's id.</summary>
    public Guid PrincipalId { get; set; }

    /// <summary><c>User</c> or <c>Group</c>.</summary>
    public string PrincipalKind { get; set; } = "User";

    /// <summary>The role (built-in or custom).</summary>
    public Guid RoleDefinitionId { get; set; }

    /// <summary><c>/</c>, <c>/hostGroups/{name}</c> or <c>/hosts/{name}</c>.</summary>
    public string Scope { get; set; } = "/";

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Who created it (UPN), for the audit trail.</summary>
    public string? CreatedBy { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"RoleAssignment {Id} {PrincipalKind} {PrincipalId} {RoleDefinitionId} {Scope}";
}

/// <summary>A Conditional Access policy in its Entra-shaped JSON.</summary>
public sealed class PolicyRecord
{
    /// <summary>Policy id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Display name.</summary>
    public string DisplayName { get; set; } = "";

    /// <summary>Display name upper-cased for lookups.</summary>
    public string NormalizedName { get; set; } = "";

    /// <summary><c>enabled</c>, <c>disabled</c> or <c>enabledForReportingButNotEnforced</c>.</summary>
    public string State { get; set; } = "enabled";

    /// <summary>The whole policy as JSON.</summary>
    public string Json { get; set; } = "{}";

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Last change.</summary>
    public DateTimeOffset ModifiedAt { get; set; }
}

/// <summary>A custom authentication strength (allowed method combinations) that policies refer to by id or name.</summary>
public sealed class AuthenticationStrengthRecord
{
    /// <summary>Strength id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Display name.</summary>
    public string DisplayName { get; set; } = "";

    /// <summary>Display name upper-cased for lookups.</summary>
    public string NormalizedName { get; set; } = "";

    /// <summary>Description, if any.</summary>
    public string? Description { get; set; }

    /// <summary>The allowed combinations (JSON array of strings such as <c>"password,softwareOath"</c>).</summary>
    public string CombinationsJson { get; set; } = "[]";

    /// <summary>Creation time.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Last change.</summary>
    public DateTimeOffset ModifiedAt { get; set; }
}

/// <summary>A named location (IP ranges) that policies refer to.</summary>
public sealed class NamedLocationRecord
{
    /// <summary>Location id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>Display name.</summary>
    public string DisplayName { get; set; } = "";

    /// <summary>CIDR ranges (JSON array).</summary>
    public string IpRangesJson { get; set; } = "[]";

    /// <summary>Marked as trusted.</summary>
    public bool IsTrusted { get; set; }
}

/// <summary>
/// One row of the sign-in log: append-only and hash-chained (each row carries the hash of the row before it, so an
/// edited, deleted, reordered or truncated row is detected by <c>gatehouse signins verify</c>).
/// </summary>
public sealed class SignInRecord
{
    /// <summary>Position in the chain, from 1 without gaps.</summary>
    public long Sequence { get; set; }

    /// <summary>Row id (shown to users).</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>When.</summary>
    public DateTimeOffset Time { get; set; }

    /// <summary>Correlation id (the RDP connection id or the HTTP trace id).</summary>
    public string CorrelationId { get; set; } = "";

    /// <summary>The user, when known.</summary>
    public Guid? UserId { get; set; }

    /// <summary>The user name as typed or as in the token.</summary>
    public string? UserPrincipalName { get; set; }

    /// <summary>The application (client id or the RDP sign-in app).</summary>
    public string? Application { get; set; }

    /// <summary>The host name, when known.</summary>
    public string? HostName { get; set; }

    /// <summary>The client's address.</summary>
    public string? ClientAddress { get; set; }

    /// <summary><c>web_account</c>, <c>nla</c>, <c>tls</c> or <c>browser</c>.</summary>
    public string Protocol { get; set; } = "";

    /// <summary>Authentication methods (space-separated amr values).</summary>
    public string? Methods { get; set; }

    /// <summary><c>success</c> or <c>failure</c>.</summary>
    public string Result { get; set; } = "";

    /// <summary>The code the client got (hex result code, NTSTATUS or AADSTS).</summary>
    public string? Code { get; set; }

    /// <summary>The message the user sees.</summary>
    public string? UserMessage { get; set; }

    /// <summary>The precise reason (machine-readable prefix, then words).</summary>
    public string Reason { get; set; } = "";

    /// <summary>What to change to make it work.</summary>
    public string? Fix { get; set; }

    /// <summary>Each policy's outcome (JSON array).</summary>
    public string? PoliciesJson { get; set; }

    /// <summary>The role assignment that allowed the sign-in.</summary>
    public Guid? RoleAssignmentId { get; set; }

    /// <summary>That assignment's role name.</summary>
    public string? RoleName { get; set; }

    /// <summary>The account the gateway logged on with.</summary>
    public string? TargetAccount { get; set; }

    /// <summary>The relayed session, when one started.</summary>
    public Guid? SessionId { get; set; }

    /// <summary>Hash of the row before (64 hex zeros for the first).</summary>
    public string PreviousHash { get; set; } = "";

    /// <summary>SHA-256 over this row's fields and <see cref="PreviousHash"/>.</summary>
    public string Hash { get; set; } = "";
}

/// <summary>A relayed RDP session: written before the first byte is relayed, completed when it ends.</summary>
public sealed class SessionRecord
{
    /// <summary>Session id.</summary>
    public Guid Id { get; set; }

    /// <summary>Tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>User.</summary>
    public Guid UserId { get; set; }

    /// <summary>User name.</summary>
    public string UserPrincipalName { get; set; } = "";

    /// <summary>Host.</summary>
    public Guid HostId { get; set; }

    /// <summary>Host name.</summary>
    public string HostName { get; set; } = "";

    /// <summary>The role that allowed it.</summary>
    public string Role { get; set; } = "";

    /// <summary>The injected account.</summary>
    public string Account { get; set; } = "";

    /// <summary>Client address.</summary>
    public string ClientAddress { get; set; } = "";

    /// <summary>Sign-in protocol.</summary>
    public string Protocol { get; set; } = "";

    /// <summary>The node that holds the connection.</summary>
    public string Node { get; set; } = "";

    /// <summary>Start.</summary>
    public DateTimeOffset StartedAt { get; set; }

    /// <summary>End, once ended.</summary>
    public DateTimeOffset? EndedAt { get; set; }

    /// <summary>Why it ended.</summary>
    public string? EndReason { get; set; }

    /// <summary>Bytes from the client.</summary>
    public long BytesFromClient { get; set; }

    /// <summary>Bytes from the host.</summary>
    public long BytesFromBackend { get; set; }

    /// <summary>Set by <c>gatehouse sessions kill</c>; the node holding the session ends it.</summary>
    public DateTimeOffset? KillRequestedAt { get; set; }

    /// <inheritdoc/>
    public override string ToString() => $"Session {Id} {UserPrincipalName} {HostName}";
}

/// <summary>A named value of the store shared by every node (e.g. the sign-in log's sealed chain head).</summary>
public sealed class StoreSetting
{
    /// <summary>Key.</summary>
    public string Key { get; set; } = "";

    /// <summary>Value.</summary>
    public string Value { get; set; } = "";
}

/// <summary>
/// A fixed-window attempt counter shared by every node: <see cref="Count"/> attempts for <see cref="Key"/> in the window
/// that started at <see cref="Window"/>. Incremented with one atomic upsert (<c>StoreStartup.CountAttempt</c>), so
/// concurrent attempts on several nodes are all counted.
/// </summary>
public sealed class AttemptCounter
{
    /// <summary>Longest key stored (a kind prefix and a user principal name).</summary>
    public const int KeyLength = 320;

    /// <summary>What is counted, e.g. <c>account:ADMIN@CONTOSO.TEST</c>.</summary>
    public string Key { get; set; } = "";

    /// <summary>When the current window started (the first attempt in it), Unix milliseconds.</summary>
    public long Window { get; set; }

    /// <summary>Attempts in <see cref="Window"/>.</summary>
    public int Count { get; set; }
}

/// <summary>
/// A node's heartbeat: every node of a cluster rewrites its row every few seconds; a node whose row grows older than
/// the grace period is taken for dead, and another node closes its open session records (<c>node_lost</c>).
/// </summary>
public sealed class NodeHeartbeat
{
    /// <summary>The node's name, as in <see cref="SessionRecord.Node"/>.</summary>
    public string Node { get; set; } = "";

    /// <summary>When the node last wrote its heartbeat.</summary>
    public DateTimeOffset LastSeenAt { get; set; }
}

/// <summary>A passkey (FIDO2/WebAuthn discoverable credential) registered by a user.</summary>
public sealed class Passkey
{
    /// <summary>Longest user-chosen name.</summary>
    public const int NameLength = 64;

    /// <summary>Longest credential id accepted (WebAuthn allows up to 1023 bytes).</summary>
    public const int CredentialIdLength = 1023;

    /// <summary>Longest COSE public key stored.</summary>
    public const int PublicKeyLength = 2048;

    /// <summary>Row id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning user (the WebAuthn user handle is this id's 16 bytes).</summary>
    public Guid UserId { get; set; }

    /// <summary>Credential id chosen by the authenticator, unique across the store.</summary>
    public byte[] CredentialId { get; set; } = [];

    /// <summary>Credential public key, COSE-encoded.</summary>
    public byte[] PublicKey { get; set; } = [];

    /// <summary>Last signature counter seen (0 when the authenticator does not count).</summary>
    public long SignCount { get; set; }

    /// <summary>The credential may be backed up (synced passkey), as the authenticator said at registration.</summary>
    public bool BackupEligible { get; set; }

    /// <summary>The credential was backed up at its last use.</summary>
    public bool BackedUp { get; set; }

    /// <summary>Authenticator model (AAGUID); all zero with attestation <c>none</c> on many authenticators.</summary>
    public Guid Aaguid { get; set; }

    /// <summary>Name the user chose (at most <see cref="NameLength"/> characters, unique per user).</summary>
    public string Name { get; set; } = "";

    /// <summary>When the passkey was registered.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the passkey last signed a user in; null if never.</summary>
    public DateTimeOffset? LastUsedAt { get; set; }
}

/// <summary>
/// A one-time host enrolment token (<c>gatehouse host enroll</c>): only the SHA-256 of its secret is stored; it is
/// consumed once, atomically, by the agent that joins with it, and it expires after at most an hour.
/// </summary>
public sealed class AgentEnrollment
{
    /// <summary>Enrolment id.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>The host the token enrols.</summary>
    public Guid HostId { get; set; }

    /// <summary>Lower-case hex SHA-256 of the token's secret (unique).</summary>
    public string SecretHash { get; set; } = "";

    /// <summary>When it was issued.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When it stops working.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>When an agent used it (null while unused).</summary>
    public DateTimeOffset? ConsumedAt { get; set; }

    /// <summary>Who issued it (UPN or "operator").</summary>
    public string? CreatedBy { get; set; }
}

/// <summary>
/// The agent enrolled on a host: its public key (the host's identity; the private key never leaves the host), the
/// facts it registered and its last health report. One agent per host; a new join replaces the old agent.
/// </summary>
public sealed class HostAgent
{
    /// <summary>Longest public key stored (base64 of a SubjectPublicKeyInfo).</summary>
    public const int PublicKeyLength = 1024;

    /// <summary>Agent id: the <c>iss</c> and <c>sub</c> of its assertions.</summary>
    public Guid Id { get; set; }

    /// <summary>Owning tenant.</summary>
    public Guid TenantId { get; set; }

    /// <summary>The host (unique).</summary>
    public Guid HostId { get; set; }

    /// <summary>Base64 SubjectPublicKeyInfo of the agent's ECDSA P-256 key.</summary>
    public string PublicKey { get; set; } = "";

    /// <summary>When it joined.</summary>
    public DateTimeOffset JoinedAt { get; set; }

    /// <summary>When it last reached the server (poll, result or health).</summary>
    public DateTimeOffset? LastSeenAt { get; set; }

    /// <summary>The host's operating system, as the agent reported it.</summary>
    public string? OperatingSystem { get; set; }

    /// <summary>The agent's version.</summary>
    public string? AgentVersion { get; set; }

    /// <summary>The host's RDP port, as the agent reported it.</summary>
    public int RdpPort { get; set; }

    /// <summary>Whether the RDP service listened at the last health report.</summary>
    public bool? RdpListening { get; set; }

    /// <summary>How often the agent reports its health, in seconds.</summary>
    public int HealthIntervalSeconds { get; set; }

    /// <summary>When the last health report arrived.</summary>
    public DateTimeOffset? HealthAt { get; set; }

    /// <summary>The last health report (JSON, as the agent sent it, capped).</summary>
    public string? HealthJson { get; set; }
}

/// <summary>An agent assertion's <c>jti</c>, kept until it expires so that the same assertion is refused a second time.</summary>
public sealed class AgentAssertionUse
{
    /// <summary>The assertion's <c>jti</c> (primary key).</summary>
    public string Jti { get; set; } = "";

    /// <summary>The agent that sent it.</summary>
    public Guid AgentId { get; set; }

    /// <summary>When the assertion expires (the row may be deleted after).</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>
/// A passkey sign-in challenge that has been answered, kept until the ceremony would have expired anyway, so that one
/// assertion cannot be presented twice (authenticators that do not count signatures give no other way to tell).
/// </summary>
public sealed class PasskeyChallengeUse
{
    /// <summary>Base64url SHA-256 of the challenge (primary key).</summary>
    public string ChallengeHash { get; set; } = "";

    /// <summary>When the ceremony expires (the row may be deleted after).</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>
/// A Temporary Access Pass an administrator issued to a user: good only for signing in to the security-info page to
/// register a passkey. Only the SHA-256 of the pass is stored; the pass is shown once when it is made.
/// </summary>
public sealed class TemporaryAccessPass
{
    /// <summary>Row id.</summary>
    public Guid Id { get; set; }

    /// <summary>The user it signs in.</summary>
    public Guid UserId { get; set; }

    /// <summary>SHA-256 of the pass (32 bytes), unique across the store.</summary>
    public byte[] PassHash { get; set; } = [];

    /// <summary>When it was made.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When it stops working.</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>True when it may be used more than once until it expires.</summary>
    public bool MultiUse { get; set; }

    /// <summary>When it was (last) used; a single-use pass with a value here is spent.</summary>
    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>
/// Work for a host's agent asked on a node the agent does not poll (a cluster): the node the agent polls claims it
/// (exactly one claim wins), hands it to the agent and, for a logon, writes the agent's answer back here, encrypted with
/// the store's data protection (as stored host passwords are). The asking node reads the answer, deletes the row, and
/// deletes it anyway when it stops waiting; rows past <see cref="ExpiresAt"/> are swept.
/// </summary>
public sealed class AgentWorkRequest
{
    /// <summary>Longest protected answer stored.</summary>
    public const int AnswerLength = 2048;

    /// <summary>The work item's id (a logon's id).</summary>
    public Guid Id { get; set; }

    /// <summary>The agent it is for.</summary>
    public Guid AgentId { get; set; }

    /// <summary><c>logon</c>, <c>accepted</c> or <c>disable</c>.</summary>
    public string Kind { get; set; } = string.Empty;

    /// <summary>The user.</summary>
    public string UserPrincipalName { get; set; } = string.Empty;

    /// <summary>For a logon: <c>user</c> or <c>administrator</c>.</summary>
    public string? Level { get; set; }

    /// <summary>For <c>accepted</c>: the logon the host accepted.</summary>
    public Guid? LogonId { get; set; }

    /// <summary>The node that asked.</summary>
    public string RequestedBy { get; set; } = string.Empty;

    /// <summary>When it was asked.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>When the asking node stops waiting (at most the backend timeout after <see cref="CreatedAt"/>).</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>The node that handed it to the agent (null until claimed).</summary>
    public string? ClaimedBy { get; set; }

    /// <summary>The agent's answer to a logon, protected (null until answered).</summary>
    public string? AnswerProtected { get; set; }
}
