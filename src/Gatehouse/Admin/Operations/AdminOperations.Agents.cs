using System.Text.Json;
using Gatehouse.Access;
using Gatehouse.Agents;
using Gatehouse.Gateway.Agents;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>A one-time enrolment token, shown once, with the command to run on the host.</summary>
internal sealed record HostEnrollmentView(string Host, string Token, DateTimeOffset ExpiresAt, string Server, string Command);

/// <summary>What <c>host enroll</c> sends: the token's lifetime in seconds (at most 3600; default 3600).</summary>
internal sealed record HostEnrollRequest(int? LifetimeSeconds);

/// <summary>One health check of a host's agent, with a message and a fix.</summary>
internal sealed record HostHealthCheck(string Check, string Status, string Message, string? Fix);

/// <summary>A host's agent and its health (<c>gatehouse host status</c>).</summary>
internal sealed record HostStatusView(
    string Host,
    bool Enrolled,
    Guid? AgentId,
    DateTimeOffset? JoinedAt,
    DateTimeOffset? LastSeenAt,
    string? OperatingSystem,
    string? AgentVersion,
    int? RdpPort,
    bool? RdpListening,
    string? CertificatePin,
    string? CertificatePinnedBy,
    int? ManagedAccounts,
    double? ClockSkewSeconds,
    string? LastError,
    int? HealthIntervalSeconds,
    string Health,
    IReadOnlyList<HostHealthCheck> Checks);

/// <summary>Host agents: enrolment tokens and health.</summary>
internal sealed partial class AdminOperations
{
    public async Task<HostEnrollmentView> EnrollHostAgentAsync(string name, HostEnrollRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var host = await FindHostForAsync(AccessActions.HostsWrite, name, cancellationToken).ConfigureAwait(false);
        var seconds = request.LifetimeSeconds ?? 3600;
        if (seconds is < 60 or > 3600)
        {
            throw AdminProblemException.BadRequest("The enrolment token's lifetime must be between 1 minute and 1 hour (--lifetime 10m, 1h).");
        }

        var info = gateway();
        if (string.IsNullOrEmpty(info.CertificateSha256))
        {
            throw AdminProblemException.BadRequest("The server's TLS certificate is not known here: run 'gatehouse host enroll' against the running server (--server URL), so the token carries the certificate the agent will pin.");
        }

        var registry = new AgentRegistry(Db, Time);
        var issued = await registry.IssueAsync(host, TimeSpan.FromSeconds(seconds), info.CertificateSha256, Caller.Name, cancellationToken).ConfigureAwait(false);
        var server = $"https://{info.PublicName}";
        return new HostEnrollmentView(host.Name, issued.Token, issued.ExpiresAt, server, $"gatehouse agent join --server {server} --token {issued.Token}");
    }

    public async Task<HostStatusView> GetHostStatusAsync(string name, CancellationToken cancellationToken)
    {
        var host = await FindHostForAsync(AccessActions.HostsRead, name, cancellationToken).ConfigureAwait(false);
        var agent = await Db.HostAgents.AsNoTracking().FirstOrDefaultAsync(a => a.HostId == host.Id, cancellationToken).ConfigureAwait(false);
        return HostStatus(host, agent, Now);
    }

    /// <summary>The status of <paramref name="host"/> and its agent at <paramref name="now"/> (<c>host status</c> and the audit).</summary>
    private static HostStatusView HostStatus(Gatehouse.Storage.Host host, Gatehouse.Storage.HostAgent? agent, DateTimeOffset now)
    {
        if (agent is null)
        {
            return new HostStatusView(host.Name, false, null, null, null, null, null, null, null, host.CertificatePin, host.CertificatePinnedBy, null, null, null, null, "not enrolled",
                [new HostHealthCheck("enrolment", "warning", $"{host.Name} has no agent: the gateway logs on with the stored mapped accounts.", $"gatehouse host enroll {host.Name}, then run the command it prints on the host")]);
        }

        var health = ReadHealth(agent);
        var checks = new List<HostHealthCheck>();
        var unhealthy = AgentRegistry.Unhealthy(agent, host.Name, now);
        checks.Add(unhealthy is not null && unhealthy.StartsWith("agent_unavailable", StringComparison.Ordinal)
            ? new HostHealthCheck("agent", "error", unhealthy, $"On {host.Name}: systemctl status gatehouse-agent; journalctl -u gatehouse-agent")
            : new HostHealthCheck("agent", "ok", $"The agent was last seen at {agent.LastSeenAt:u}.", null));
        checks.Add(agent.RdpListening switch
        {
            true => new HostHealthCheck("rdp", "ok", $"The RDP service listens on port {agent.RdpPort} and presents {health?.RdpCertificatePin}.", null),
            false => new HostHealthCheck("rdp", "error", $"The RDP service does not answer on port {agent.RdpPort}: {health?.LastError}", $"On {host.Name}: systemctl status xrdp (or the Remote Desktop service on Windows)"),
            null => new HostHealthCheck("rdp", "unknown", "No health report yet.", "Wait one health interval, or start the agent: systemctl start gatehouse-agent"),
        });
        if (health is { ClockSkewSeconds: var skew } && Math.Abs(skew) > 60)
        {
            checks.Add(new HostHealthCheck("clock", "warning", $"The host's clock is {skew:0} s off the server's; assertions may be refused.", $"On {host.Name}: enable NTP (timedatectl set-ntp true)"));
        }

        if (!string.IsNullOrEmpty(health?.LastError) && agent.RdpListening != false)
        {
            checks.Add(new HostHealthCheck("last_error", "warning", health.LastError, $"On {host.Name}: journalctl -u gatehouse-agent"));
        }

        var overall = checks.Any(c => c.Status == "error") ? "unhealthy" : checks.Any(c => c.Status is "warning" or "unknown") ? "degraded" : "healthy";
        return new HostStatusView(host.Name, true, agent.Id, agent.JoinedAt, agent.LastSeenAt, agent.OperatingSystem, agent.AgentVersion, agent.RdpPort, agent.RdpListening,
            host.CertificatePin, host.CertificatePinnedBy, health?.ManagedAccounts, health?.ClockSkewSeconds, health?.LastError, agent.HealthIntervalSeconds, overall, checks);
    }

    /// <summary>The agent's last health report as stored; null when there is none or it does not read.</summary>
    private static StoredHealth? ReadHealth(Gatehouse.Storage.HostAgent agent)
    {
        try
        {
            return agent.HealthJson is null ? null : JsonSerializer.Deserialize<StoredHealth>(agent.HealthJson, AgentJson.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
