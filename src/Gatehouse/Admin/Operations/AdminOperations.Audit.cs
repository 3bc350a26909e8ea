using System.Globalization;
using Gatehouse.Access;
using Gatehouse.Gateway.Agents;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Admin.Operations;

/// <summary>
/// One thing out of policy that <c>gatehouse audit</c> found.
/// </summary>
/// <param name="Id">The kind, stable and kebab-case (<c>host-not-enrolled</c>, …; docs/audit.md lists them).</param>
/// <param name="Severity"><c>info</c>, <c>low</c>, <c>medium</c>, <c>high</c> or <c>critical</c>.</param>
/// <param name="SubjectKind"><c>tenant</c>, <c>host</c>, <c>user</c>, <c>group</c>, <c>policy</c> or <c>assignment</c>.</param>
/// <param name="Subject">The host, user, group, policy or assignment, by the name an admin types.</param>
/// <param name="Message">One sentence: what is wrong and why it matters.</param>
/// <param name="Fix">The command that fixes it.</param>
internal sealed record AuditFinding(string Id, string Severity, string SubjectKind, string Subject, string Message, string Fix);

/// <summary>The audit of one tenant: the findings, most severe first, and how many there are of each severity.</summary>
internal sealed record AuditView(string Tenant, DateTimeOffset Time, IReadOnlyList<AuditFinding> Findings, IReadOnlyDictionary<string, int> Counts);

/// <summary>What <c>gatehouse audit</c> asks: optionally the tenant (its id or one of its domains) it expects to audit.</summary>
internal sealed record AuditRequest(string? Tenant);

/// <summary>The audit's severities, least severe first.</summary>
internal static class AuditSeverity
{
    public const string Info = "info";
    public const string Low = "low";
    public const string Medium = "medium";
    public const string High = "high";
    public const string Critical = "critical";

    /// <summary>All five, least severe first.</summary>
    public static IReadOnlyList<string> All { get; } = [Info, Low, Medium, High, Critical];

    /// <summary>0 (info) to 4 (critical); -1 for anything else.</summary>
    public static int Rank(string? severity) => severity is null ? -1 : All.ToList().IndexOf(severity.ToLowerInvariant());
}

/// <summary><c>gatehouse audit</c>: what in the tenant is out of policy, each finding with its fix.</summary>
internal sealed partial class AdminOperations
{
    /// <summary>The Conditional Access grant controls that count as requiring MFA.</summary>
    private static readonly string[] MfaControls = ["mfa", "phishingResistantMfa"];

    public async Task<AuditView> AuditAsync(AuditRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);

        // The audit reads hosts, users, role assignments and policies across the tenant: Reader may run it.
        Caller.Require(AccessActions.HostsRead, Scope.Tenant);
        Caller.Require(UsersRead, Scope.Tenant);
        Caller.Require(RoleAssignmentsRead, Scope.Tenant);
        Caller.Require(PoliciesRead, Scope.Tenant);
        var domains = await Db.TenantDomains.AsNoTracking().Where(d => d.TenantId == Tenant).OrderByDescending(d => d.IsInitial).ThenBy(d => d.Name)
            .Select(d => d.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
        var tenantName = domains.FirstOrDefault() ?? Tenant.ToString();
        if (!string.IsNullOrWhiteSpace(request.Tenant)
            && !domains.Contains(request.Tenant.Trim(), StringComparer.OrdinalIgnoreCase)
            && !(Guid.TryParse(request.Tenant, out var id) && id == Tenant))
        {
            throw AdminProblemException.NotFound($"This audit runs on the tenant {tenantName}, not '{request.Tenant}': leave --tenant out, or sign in to (or point --data at) the tenant you mean.");
        }

        var now = Now;
        var findings = new List<AuditFinding>();
        await AuditHostsAsync(findings, now, cancellationToken).ConfigureAwait(false);
        await AuditAssignmentsAsync(findings, cancellationToken).ConfigureAwait(false);
        await AuditPoliciesAsync(findings, cancellationToken).ConfigureAwait(false);
        var sorted = findings
            .OrderByDescending(f => AuditSeverity.Rank(f.Severity))
            .ThenBy(f => f.Id, StringComparer.Ordinal)
            .ThenBy(f => f.Subject, StringComparer.Ordinal)
            .ToList();
        var counts = AuditSeverity.All.Reverse().ToDictionary(s => s, s => sorted.Count(f => f.Severity == s));
        return new AuditView(tenantName, now, sorted, counts);
    }

    private async Task AuditHostsAsync(List<AuditFinding> findings, DateTimeOffset now, CancellationToken ct)
    {
        var hosts = await Db.Hosts.AsNoTracking().Where(h => h.TenantId == Tenant).OrderBy(h => h.Name).ToListAsync(ct).ConfigureAwait(false);
        var agents = await Db.HostAgents.AsNoTracking().Where(a => a.TenantId == Tenant).ToListAsync(ct).ConfigureAwait(false);
        var byHost = agents.GroupBy(a => a.HostId).ToDictionary(g => g.Key, g => g.OrderByDescending(a => a.JoinedAt).First());
        IReadOnlyList<string>? gatewayAddresses = null;
        foreach (var host in hosts)
        {
            var name = host.Name;
            if (!byHost.TryGetValue(host.Id, out var agent))
            {
                findings.Add(new AuditFinding("host-not-enrolled", AuditSeverity.Medium, "host", name,
                    $"{name} has no agent: the gateway logs on with stored mapped accounts that everyone with the role shares, and nothing reports the host's health.",
                    $"gatehouse host enroll {Arg(name)}, then run the command it prints on the host"));
                continue;
            }

            var stored = new List<(string Option, string? Account)>();
            if (host.AdminSecretProtected is not null)
            {
                stored.Add(("--admin-account ''", host.AdminAccountName));
            }

            if (host.UserSecretProtected is not null)
            {
                stored.Add(("--user-account ''", host.UserAccountName));
            }

            if (stored.Count > 0)
            {
                findings.Add(new AuditFinding("host-stored-passwords", AuditSeverity.High, "host", name,
                    $"{name} is enrolled but the gateway still stores the passwords of {string.Join(" and ", stored.Select(s => s.Account))}: the agent makes them unnecessary, and a leaked one opens the host.",
                    $"gatehouse host update {Arg(name)} {string.Join(' ', stored.Select(s => s.Option))}"));
            }

            var status = HostStatus(host, agent, now);
            if (status.Checks.FirstOrDefault(c => c.Check == "agent" && c.Status == "error") is { } silent)
            {
                findings.Add(new AuditFinding("agent-silent", AuditSeverity.High, "host", name,
                    $"The agent on {name} has not reported for more than three health intervals: logons to the host are refused.",
                    silent.Fix ?? $"On {name}: systemctl status gatehouse-agent"));

                // What a silent agent reported last is stale: nothing more is judged from it.
                continue;
            }

            foreach (var check in status.Checks.Where(c => c.Check != "agent" && c.Status is "error" or "warning"))
            {
                findings.Add(new AuditFinding("agent-unhealthy", check.Status == "error" ? AuditSeverity.High : AuditSeverity.Medium, "host", name,
                    $"The agent on {name} reports a failing {check.Check} check: {check.Message}",
                    check.Fix ?? $"On {name}: journalctl -u gatehouse-agent"));
            }

            var health = ReadHealth(agent);
            if (health is null)
            {
                continue;
            }

            if (health.RdpListenAddresses is not { } listening)
            {
                findings.Add(new AuditFinding("host-listening-unknown", AuditSeverity.Info, "host", name,
                    $"The agent on {name} does not report where its RDP port listens (an older agent, or it could not read /proc/net/tcp), so the audit cannot tell whether the host can be reached around the gateway.",
                    $"On {name}: update the gatehouse package, then systemctl restart gatehouse-agent"));
                continue;
            }

            gatewayAddresses ??= GatewayAddresses();
            var allowed = gatewayAddresses.Append(host.BackendHost.Trim('[', ']'));
            var exposed = ListeningAddresses.Exposed(listening, allowed);
            if (exposed.Count > 0)
            {
                var port = agent.RdpPort.ToString(CultureInfo.InvariantCulture);
                var bind = System.Net.IPAddress.TryParse(host.BackendHost.Trim('[', ']'), out var backend) ? backend.ToString() : "ADDRESS-THE-GATEWAY-USES";
                findings.Add(new AuditFinding("host-reachable-around-gateway", AuditSeverity.High, "host", name,
                    $"The RDP port {port} of {name} listens on {string.Join(", ", exposed)}: the host can be reached around the gateway, without its sign-in, policies or log.",
                    $"On {name}: sed -i 's|^port=.*|port=tcp://{bind}:{port}|' /etc/xrdp/xrdp.ini && systemctl restart xrdp (or firewall port {port} to the gateway and add its address to Gatehouse:GatewayAddresses)"));
            }
        }
    }

    /// <summary>The addresses the gateway connects to hosts from, as configured (<c>Gatehouse:GatewayAddresses</c>).</summary>
    private IReadOnlyList<string> GatewayAddresses() => gateway().GatewayAddresses ?? [];

    private async Task AuditAssignmentsAsync(List<AuditFinding> findings, CancellationToken ct)
    {
        var assignments = await Db.RoleAssignments.AsNoTracking().Where(a => a.TenantId == Tenant).OrderBy(a => a.CreatedAt).ToListAsync(ct).ConfigureAwait(false);
        if (assignments.Count == 0)
        {
            return;
        }

        var users = await Db.Users.AsNoTracking().Where(u => u.TenantId == Tenant).ToDictionaryAsync(u => u.Id, ct).ConfigureAwait(false);
        var groups = await Db.Groups.AsNoTracking().Where(g => g.TenantId == Tenant).ToDictionaryAsync(g => g.Id, ct).ConfigureAwait(false);
        var groupIds = groups.Keys.ToList();
        var members = await Db.GroupMembers.AsNoTracking().Where(m => groupIds.Contains(m.GroupId)).ToListAsync(ct).ConfigureAwait(false);
        var roles = await Db.RoleDefinitions.AsNoTracking().Where(r => r.TenantId == Tenant).ToDictionaryAsync(r => r.Id, r => r.Name, ct).ConfigureAwait(false);
        foreach (var role in BuiltInRoles.All)
        {
            roles.TryAdd(role.Id, role.Name);
        }

        var admin = BuiltInRoles.VirtualMachineAdministratorLogin;
        foreach (var a in assignments)
        {
            var isGroup = string.Equals(a.PrincipalKind, "Group", StringComparison.OrdinalIgnoreCase);
            var user = isGroup ? null : users.GetValueOrDefault(a.PrincipalId);
            var group = isGroup ? groups.GetValueOrDefault(a.PrincipalId) : null;
            var principal = user?.UserPrincipalName ?? group?.Name ?? a.PrincipalId.ToString();
            var role = roles.GetValueOrDefault(a.RoleDefinitionId) ?? a.RoleDefinitionId.ToString();
            var id = a.Id.ToString();
            if (a.RoleDefinitionId == admin.Id && a.Scope == "/")
            {
                findings.Add(isGroup
                    ? new AuditFinding("admin-login-at-root", AuditSeverity.Critical, "group", principal,
                        $"Every member of the group {principal}, now and later, holds {admin.Name} at / (administrator on every host, including hosts added later).",
                        $"gatehouse role assignment create --role \"{admin.Name}\" --assignee {Arg(principal)} --scope /hostGroups/GROUP && gatehouse role assignment delete {id}")
                    : new AuditFinding("admin-login-at-root", AuditSeverity.High, "user", principal,
                        $"{principal} holds {admin.Name} at / (administrator on every host, including hosts added later).",
                        $"gatehouse role assignment create --role \"{admin.Name}\" --assignee {Arg(principal)} --scope /hostGroups/GROUP && gatehouse role assignment delete {id}"));
            }

            if (user is { Enabled: false })
            {
                findings.Add(new AuditFinding("assignment-disabled-user", AuditSeverity.Low, "assignment", id,
                    $"The disabled user {principal} still holds {role} at {a.Scope}: enabling the account again would restore the access at once.",
                    $"gatehouse role assignment delete {id}"));
            }

            if (group is not null)
            {
                var direct = members.Where(m => m.GroupId == group.Id).ToList();
                if (direct.Count > 0 && direct.All(m => m.UserId is { } u && users.TryGetValue(u, out var member) && !member.Enabled))
                {
                    findings.Add(new AuditFinding("assignment-disabled-group", AuditSeverity.Low, "assignment", id,
                        $"Every member of the group {principal} is disabled, but it still holds {role} at {a.Scope}.",
                        $"gatehouse role assignment delete {id}"));
                }
            }
        }
    }

    private async Task AuditPoliciesAsync(List<AuditFinding> findings, CancellationToken ct)
    {
        var policies = await Db.Policies.AsNoTracking().Where(p => p.TenantId == Tenant).OrderBy(p => p.NormalizedName).ToListAsync(ct).ConfigureAwait(false);
        var mfa = false;
        foreach (var p in policies)
        {
            var name = p.DisplayName;
            switch (p.State)
            {
                case "enabledForReportingButNotEnforced":
                    findings.Add(new AuditFinding("policy-report-only", AuditSeverity.Medium, "policy", name,
                        $"The Conditional Access policy {name} is report-only: it is evaluated and logged, but never enforced.",
                        $"gatehouse policy enable {Arg(name)}"));
                    break;
                case "disabled":
                    findings.Add(new AuditFinding("policy-disabled", AuditSeverity.Low, "policy", name,
                        $"The Conditional Access policy {name} is disabled: it is not evaluated at all.",
                        $"gatehouse policy enable {Arg(name)} (or gatehouse policy delete {Arg(name)} when it is no longer wanted)"));
                    break;
                case "enabled" when PolicyJson.TryParse(p.Json, out var policy, out _):
                    var controls = policy.GrantControls;
                    mfa |= controls is not null && (controls.AuthenticationStrength is not null
                        || controls.BuiltInControls.Any(c => MfaControls.Contains(c, StringComparer.OrdinalIgnoreCase)));
                    break;
            }
        }

        if (!mfa)
        {
            findings.Add(new AuditFinding("tenant-no-mfa-policy", AuditSeverity.Medium, "tenant", "/",
                "No enabled Conditional Access policy requires multifactor authentication: a stolen password is enough to sign in.",
                "gatehouse policy create --file require-mfa.json (docs/audit.md has the file)"));
        }
    }

    /// <summary>A name as a shell word: as it is when it is plain, otherwise in single quotes.</summary>
    private static string Arg(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@' or '/' or ':')
            ? value
            : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
