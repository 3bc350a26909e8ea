using System.Text.Json;
using Gatehouse.Agents;
using Gatehouse.Cli;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.Tests;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// <c>gatehouse audit</c> on the store (<c>--data</c>), with the fake clock: a fixture with every finding present, a
/// clean one, the JSON shape, <c>--fail-on</c>'s exit code, hostile names and a silent agent.
/// </summary>
public sealed class AuditCommandTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 7, 6, 0, 0, TimeSpan.Zero);

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private const string MfaPolicy = """
        {
          "displayName": "Require MFA",
          "state": "enabled",
          "conditions": { "users": { "includeUsers": ["All"] } },
          "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
        }
        """;

    [Fact]
    public async Task Audit_FixtureWithEveryFinding_ListsEachWithItsFix_AndFailOnHighExits3()
    {
        // Arrange
        await using var cli = await CliHarness.CreateAsync();
        var clock = new ManualTime(Start);
        await AddHostAsync(cli, "vm-bare", "10.0.0.1", stored: true, agent: null);
        await AddHostAsync(cli, "vm-stored", "10.0.0.2", stored: true, agent: Healthy(["10.0.0.2", "127.0.0.1"]));
        await AddHostAsync(cli, "vm-silent", "10.0.0.3", stored: false, agent: Healthy(["10.0.0.3"]) with { LastSeenAt = Start.AddMinutes(-10) });
        await AddHostAsync(cli, "vm-down", "10.0.0.4", stored: false, agent: Healthy(["10.0.0.4"]) with { Listening = false });
        await AddHostAsync(cli, "vm-open", "10.0.0.5", stored: false, agent: Healthy(["0.0.0.0", "::"]));
        await AddHostAsync(cli, "vm-side", "10.0.0.6", stored: false, agent: Healthy(["10.0.0.6", "192.168.7.6"]));
        await AddHostAsync(cli, "vm-old", "10.0.0.7", stored: false, agent: Healthy(null));
        await cli.OkWithInputAsync("Carol-Pw-12345\n", "user", "create", "--upn", "carol@contoso.test", "--password-stdin");
        await cli.OkWithInputAsync("Dave-Pw-123456\n", "user", "create", "--upn", "dave@contoso.test", "--password-stdin");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine Administrator Login", "--assignee", "carol@contoso.test", "--scope", "/");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "dave@contoso.test", "--scope", "/hosts/vm-down");
        await cli.OkAsync("user", "disable", "dave@contoso.test");
        await cli.OkAsync("group", "create", "Ops");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine Administrator Login", "--assignee", "Ops", "--scope", "/");
        var file = Path.Combine(cli.DataDirectory, "mfa.json");
        await File.WriteAllTextAsync(file, MfaPolicy.Replace("\"enabled\"", "\"enabledForReportingButNotEnforced\"", StringComparison.Ordinal));
        await cli.OkAsync("policy", "create", "--file", file);

        // Act
        var table = await AuditAsync(cli, clock, "--fail-on", "high");
        var json = await AuditAsync(cli, clock, "--output", "json");
        var lenient = await AuditAsync(cli, clock);

        // Assert: every kind, on its subject, with its fix; the exit codes.
        Assert.True(table.ExitCode == ExitCodes.FindingsAtOrAbove, table.ToString());
        Assert.True(lenient.ExitCode == 0, lenient.ToString());
        var findings = Findings(json.Output);
        Assert.Contains(("host-not-enrolled", "medium", "vm-bare"), Keys(findings));
        Assert.Equal("gatehouse host enroll vm-bare, then run the command it prints on the host", Fix(findings, "host-not-enrolled", "vm-bare"));
        Assert.Contains(("host-stored-passwords", "high", "vm-stored"), Keys(findings));
        Assert.Equal("gatehouse host update vm-stored --admin-account '' --user-account ''", Fix(findings, "host-stored-passwords", "vm-stored"));
        Assert.Contains("stores the passwords of Administrator and rdpuser", findings.Single(f => f.Id == "host-stored-passwords").Message, StringComparison.Ordinal);
        Assert.Contains(("agent-silent", "high", "vm-silent"), Keys(findings));
        Assert.Contains("systemctl status gatehouse-agent", Fix(findings, "agent-silent", "vm-silent"), StringComparison.Ordinal);
        Assert.Contains(("agent-unhealthy", "high", "vm-down"), Keys(findings));
        Assert.Contains("systemctl status xrdp", Fix(findings, "agent-unhealthy", "vm-down"), StringComparison.Ordinal);
        Assert.Contains(("host-reachable-around-gateway", "high", "vm-open"), Keys(findings));
        Assert.Contains(("host-reachable-around-gateway", "high", "vm-side"), Keys(findings));
        Assert.Contains("port=tcp://10.0.0.6:3389", Fix(findings, "host-reachable-around-gateway", "vm-side"), StringComparison.Ordinal);
        Assert.Contains("192.168.7.6", findings.Single(f => f.Subject == "vm-side").Message, StringComparison.Ordinal);
        Assert.Contains(("host-listening-unknown", "info", "vm-old"), Keys(findings));
        Assert.Contains(("admin-login-at-root", "high", "carol@contoso.test"), Keys(findings));
        Assert.Contains(("admin-login-at-root", "critical", "ops"), Keys(findings).Select(k => k with { Item3 = k.Item3.ToLowerInvariant() }));
        Assert.Contains(("assignment-disabled-user", "low"), findings.Select(f => (f.Id, f.Severity)));
        Assert.StartsWith("gatehouse role assignment delete ", Fix(findings, "assignment-disabled-user", null), StringComparison.Ordinal);
        Assert.Contains(("policy-report-only", "medium", "Require MFA"), Keys(findings));
        Assert.Equal("gatehouse policy enable 'Require MFA'", Fix(findings, "policy-report-only", "Require MFA"));
        Assert.Contains(("tenant-no-mfa-policy", "medium", "/"), Keys(findings));

        // Only the hosts named above have findings: a healthy enrolled host listening only where the gateway connects has none.
        Assert.DoesNotContain(findings, f => f.Subject == "vm-stored" && f.Id != "host-stored-passwords");

        // Most severe first; counts per severity.
        var ranks = findings.Select(f => Array.IndexOf(["info", "low", "medium", "high", "critical"], f.Severity)).ToList();
        Assert.Equal(ranks.OrderByDescending(r => r).ToList(), ranks);
        Assert.Contains("critical", table.Output.Split('\n').First(l => l.Contains("admin-login-at-root", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains($"{findings.Count} findings: 1 critical, {findings.Count(f => f.Severity == "high")} high,", table.Output, StringComparison.Ordinal);
        foreach (var f in findings)
        {
            Assert.Contains(f.Id, table.Output, StringComparison.Ordinal);
        }

        // The fix for stored passwords is a real command: run it and the finding is gone. A host without an agent keeps one.
        await cli.OkAsync("host", "update", "vm-stored", "--admin-account", "", "--user-account", "");
        var bare = await cli.RunAsync("host", "update", "vm-bare", "--admin-account", "", "--user-account", "");
        Assert.Equal(ExitCodes.Failed, bare.ExitCode);
        Assert.Contains("enrol the host first (gatehouse host enroll vm-bare)", bare.Error, StringComparison.Ordinal);
        var after = Findings((await AuditAsync(cli, clock, "--output", "json")).Output);
        Assert.DoesNotContain(after, f => f.Id == "host-stored-passwords");
    }

    [Fact]
    public async Task Audit_CleanFixture_SaysNoFindings_AndExits0EvenWithFailOnInfo()
    {
        await using var cli = await CliHarness.CreateAsync();
        var clock = new ManualTime(Start);
        await AddHostAsync(cli, "vm1", "10.0.0.1", stored: false, agent: Healthy(["10.0.0.1", "127.0.0.1", "::1"]));
        var file = Path.Combine(cli.DataDirectory, "mfa.json");
        await File.WriteAllTextAsync(file, MfaPolicy);
        await cli.OkAsync("policy", "create", "--file", file);
        await cli.OkWithInputAsync("Carol-Pw-12345\n", "user", "create", "--upn", "carol@contoso.test", "--password-stdin");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine Administrator Login", "--assignee", "carol@contoso.test", "--scope", "/hosts/vm1");

        var run = await AuditAsync(cli, clock, "--fail-on", "info");
        var json = await AuditAsync(cli, clock, "--output", "json");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("No findings.", run.Output, StringComparison.Ordinal);
        Assert.Empty(Findings(json.Output));
    }

    [Fact]
    public async Task Audit_Json_HasTheDocumentedShape()
    {
        await using var cli = await CliHarness.CreateAsync();
        await AddHostAsync(cli, "vm1", "10.0.0.1", stored: true, agent: null);

        var run = await AuditAsync(cli, new ManualTime(Start), "--output", "json");

        Assert.True(run.ExitCode == 0, run.ToString());
        var root = JsonDocument.Parse(run.Output).RootElement;
        Assert.Equal("contoso.test", root.GetProperty("tenant").GetString());
        Assert.Equal(Start, root.GetProperty("time").GetDateTimeOffset());
        var finding = root.GetProperty("findings").EnumerateArray().First(f => f.GetProperty("id").GetString() == "host-not-enrolled");
        Assert.Equal(
            ["id", "severity", "subjectKind", "subject", "message", "fix"],
            finding.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal("host", finding.GetProperty("subjectKind").GetString());
        var counts = root.GetProperty("counts");
        Assert.Equal(["critical", "high", "medium", "low", "info"], counts.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal(2, counts.GetProperty("medium").GetInt32());
    }

    [Fact]
    public async Task Audit_HostileNames_AreEscapedInTheTable()
    {
        await using var cli = await CliHarness.CreateAsync();

        // Names the API refuses, written straight into the store (what an older version or a hand edit can leave).
        await AddHostAsync(cli, "vm\u202Egpj.exe\u001B[31m", "10.0.0.1", stored: false, agent: null);

        var run = await AuditAsync(cli, new ManualTime(Start));

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.DoesNotContain('\u202E', run.Output);
        Assert.DoesNotContain('\u001B', run.Output);
        Assert.Contains("vm\\u202egpj.exe\\x1b[31m", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_AgentSilentForMoreThanThreeIntervals_OnTheFakeClock()
    {
        await using var cli = await CliHarness.CreateAsync();
        var clock = new ManualTime(Start);
        await AddHostAsync(cli, "vm1", "10.0.0.1", stored: false, agent: Healthy(["10.0.0.1"]));

        // Three intervals of 30 s: still within.
        clock.Advance(TimeSpan.FromSeconds(90));
        var within = Findings((await AuditAsync(cli, clock, "--output", "json")).Output);
        clock.Advance(TimeSpan.FromSeconds(1));
        var silent = Findings((await AuditAsync(cli, clock, "--output", "json")).Output);

        Assert.DoesNotContain(within, f => f.Id == "agent-silent");
        Assert.Contains(silent, f => f.Id == "agent-silent" && f.Subject == "vm1" && f.Severity == "high");
    }

    [Fact]
    public async Task Audit_GatewayAddressesFromTheConfiguration_AreAllowed()
    {
        await using var cli = await CliHarness.CreateAsync();
        await AddHostAsync(cli, "vm1", "vm1.internal.test", stored: false, agent: Healthy(["10.9.9.9"]));
        var config = Path.Combine(cli.DataDirectory, "appsettings.json");
        await File.WriteAllTextAsync(config, """{ "Gatehouse": { "GatewayAddresses": "10.9.9.9, fd00::9" } }""");

        var without = Findings((await AuditAsync(cli, new ManualTime(Start), "--output", "json")).Output);
        var with = Findings((await AuditAsync(cli, new ManualTime(Start), "--output", "json", "--config", config)).Output);

        Assert.Contains(without, f => f.Id == "host-reachable-around-gateway" && f.Fix.Contains("ADDRESS-THE-GATEWAY-USES", StringComparison.Ordinal));
        Assert.DoesNotContain(with, f => f.Id == "host-reachable-around-gateway");
    }

    [Fact]
    public async Task Audit_AnotherTenant_IsRefused()
    {
        await using var cli = await CliHarness.CreateAsync();

        var mine = await AuditAsync(cli, new ManualTime(Start), "--tenant", "CONTOSO.test");
        var other = await AuditAsync(cli, new ManualTime(Start), "--tenant", "fabrikam.test");

        Assert.True(mine.ExitCode == 0, mine.ToString());
        Assert.Equal(ExitCodes.Failed, other.ExitCode);
        Assert.Contains("not 'fabrikam.test'", other.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Audit_Help_NamesTheOptionsAndExitCodes()
    {
        var run = await CliHarness.RunRawAsync(null, "audit", "--help");

        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--fail-on", run.Output, StringComparison.Ordinal);
        Assert.Contains("--tenant", run.Output, StringComparison.Ordinal);
        Assert.Contains("3 a finding at or above --fail-on", run.Output, StringComparison.Ordinal);
    }

    internal sealed record AgentSpec(IReadOnlyList<string>? Addresses, bool Listening, DateTimeOffset LastSeenAt);

    internal sealed record FindingRow(string Id, string Severity, string SubjectKind, string Subject, string Message, string Fix);

    private static AgentSpec Healthy(IReadOnlyList<string>? addresses) => new(addresses, true, Start);

    private static Task<CliRun> AuditAsync(CliHarness cli, ManualTime clock, params string[] args) =>
        CliHarness.RunInAsync(new CliEnvironment { Time = clock }, null, ["audit", .. args, "--data", cli.DataDirectory]);

    private static List<FindingRow> Findings(string json) =>
        JsonSerializer.Deserialize<JsonElement>(json).GetProperty("findings").Deserialize<List<FindingRow>>(Web)!;

    private static IEnumerable<(string, string, string)> Keys(List<FindingRow> findings) => findings.Select(f => (f.Id, f.Severity, f.Subject));

    private static string Fix(List<FindingRow> findings, string id, string? subject) =>
        findings.Single(f => f.Id == id && (subject is null || f.Subject == subject)).Fix;

    /// <summary>A host (and its agent with one stored health report), written straight into the store.</summary>
    internal static async Task AddHostAsync(CliHarness cli, string name, string backend, bool stored, AgentSpec? agent)
    {
        await using var store = await cli.OpenStoreAsync();
        var db = store.Get<GatehouseDbContext>();
        var directory = store.Get<DirectoryService>();
        var host = new Host
        {
            Id = Guid.NewGuid(),
            TenantId = store.TenantOrThrow.Id,
            Name = name,
            BackendHost = backend,
            BackendPort = 3389,
            AdminAccountName = stored ? "Administrator" : null,
            AdminSecretProtected = stored ? directory.ProtectHostSecret("Admin-Secret-1") : null,
            UserAccountName = stored ? "rdpuser" : null,
            UserSecretProtected = stored ? directory.ProtectHostSecret("User-Secret-1") : null,
            CreatedAt = Start.AddDays(-1),
        };
        db.Hosts.Add(host);
        if (agent is not null)
        {
            db.HostAgents.Add(new HostAgent
            {
                Id = Guid.NewGuid(),
                TenantId = host.TenantId,
                HostId = host.Id,
                PublicKey = "AA==",
                JoinedAt = Start.AddHours(-1),
                LastSeenAt = agent.LastSeenAt,
                AgentVersion = "1.0",
                RdpPort = 3389,
                RdpListening = agent.Listening,
                HealthIntervalSeconds = 30,
                HealthAt = agent.LastSeenAt,
                HealthJson = JsonSerializer.Serialize(
                    new StoredHealth(agent.Listening, null, 0, "1.0", 0, agent.Listening ? null : "connection refused", agent.Addresses),
                    AgentJson.Options),
            });
        }

        await db.SaveChangesAsync();
    }
}
