using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;

namespace Gatehouse.Gateway.Sessions;

/// <summary>What an allowed sign-in grants: who, which host, by which role, and the account the gateway logs on with.</summary>
public sealed record SessionGrant
{
    /// <summary>Tenant.</summary>
    public required Guid TenantId { get; init; }

    /// <summary>
    /// Called once the host accepted the injected logon (NLA: CredSSP succeeded), so that a just-in-time password
    /// from the host's agent is changed at once; null for mapped accounts.
    /// </summary>
    public Action? HostLogonAccepted { get; init; }

    /// <summary>User.</summary>
    public required Guid UserId { get; init; }

    /// <summary>User name.</summary>
    public required string UserPrincipalName { get; init; }

    /// <summary>Host.</summary>
    public required Guid HostId { get; init; }

    /// <summary>Host name.</summary>
    public required string HostName { get; init; }

    /// <summary>The role that allowed it.</summary>
    public required string RoleName { get; init; }

    /// <summary>The assignment that allowed it.</summary>
    public Guid? RoleAssignmentId { get; init; }

    /// <summary>How to reach the host.</summary>
    public required BackendTarget Backend { get; init; }

    /// <summary>The injected account (never shown to the client or logged with its password).</summary>
    public required InjectedCredentials Credentials { get; init; }

    /// <summary>The policies' maximum session duration, if any.</summary>
    public TimeSpan? MaxDuration { get; init; }

    /// <summary>Authentication methods of the sign-in.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>When the user authenticated (sign-in frequency is checked against it while the session lives).</summary>
    public DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>Each policy's outcome (JSON), for the sign-in log.</summary>
    public string? PoliciesJson { get; init; }

    /// <summary>Why it was allowed, in words.</summary>
    public string Reason { get; init; } = string.Empty;
}
