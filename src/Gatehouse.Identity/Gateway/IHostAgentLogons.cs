using Gatehouse.Access;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// Just-in-time host accounts: for a host with an enrolled agent, the gateway asks the agent (through the server) for
/// a logon for the user before the host leg. The agent creates or reuses the user's own local account, sets its groups
/// from the role and a fresh password for this logon only, and changes it again after the logon (or a minute).
/// </summary>
public interface IHostAgentLogons
{
    /// <summary>
    /// Asks the agent <paramref name="agentId"/> of host <paramref name="hostId"/> for a logon for
    /// <paramref name="userPrincipalName"/> at <paramref name="level"/>; fails closed (a reason starting
    /// <c>agent_unavailable:</c> or <c>host_unhealthy:</c>) when the agent is silent, unhealthy or does not answer
    /// within <paramref name="timeout"/>.
    /// </summary>
    Task<AgentLogonOutcome> RequestLogonAsync(Guid agentId, Guid hostId, string userPrincipalName, LoginLevel level, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>The host accepted the logon <paramref name="logonId"/>: the agent rotates the password now.</summary>
    void ReportAccepted(Guid agentId, Guid logonId, string userPrincipalName);

    /// <summary>
    /// The user was disabled or lost the role: agents that manage an account for the user lock it (every agent of the
    /// tenant when <paramref name="agentId"/> is null). Best effort; an agent that is not connected gets it at the next logon.
    /// </summary>
    void RequestDisable(Guid tenantId, Guid? agentId, string userPrincipalName);
}

/// <summary>An agent's answer: the account and its one-logon password, or the refusal's reason, sentence and fix.</summary>
public sealed record AgentLogonOutcome
{
    /// <summary>The account to inject (null when refused).</summary>
    public MappedAccount? Account { get; init; }

    /// <summary>The logon's id (for <see cref="IHostAgentLogons.ReportAccepted"/>).</summary>
    public Guid LogonId { get; init; }

    /// <summary>Why refused (<c>agent_unavailable: …</c>, <c>host_unhealthy: …</c>, <c>agent_logon_failed: …</c>).</summary>
    public string? Reason { get; init; }

    /// <summary>What to change.</summary>
    public string? Fix { get; init; }

    /// <summary>True when the agent gave an account.</summary>
    public bool Succeeded => Account is not null;

    /// <inheritdoc/>
    public override string ToString() => Succeeded ? $"AgentLogonOutcome {LogonId} {Account}" : $"AgentLogonOutcome refused {Reason}";
}
