using System.Diagnostics;
using Gatehouse.Admin.Operations;
using Gatehouse.Agents;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// The host agent with the real peers: vm3 (the same xrdp) is enrolled with <c>host enroll</c>, an agent joins it
/// (pinning the server from the token, registering xrdp's key as the host's pin) and runs with the real Linux account
/// tools. Ines (User Login) and Jana (Administrator Login) sign in with the stock client (NLA) and land on the xrdp
/// desktop each as her own account: Jana's in <c>sudo</c>, Ines's not; the injected password stops working once the
/// agent rotates it; removing Jana's role ends her live session at re-evaluation and locks her account, and her next
/// logon under User Login drops <c>sudo</c>; disabling Ines locks her host account. Needs root (the agent creates accounts), as CI runs.
/// </summary>
public sealed partial class GatewayDesktopTests
{
    [Fact]
    public async Task AgentEnrolledHost_EachUserLandsAsHerOwnAccount_WithTheRolesGroups_AndAPasswordForOneLogon()
    {
        if (!await gateway.ReadyAsync(output))
        {
            return;
        }

        if (Environment.UserName != "root")
        {
            Assert.True(Peers.AllowMissing, "The host agent test creates local accounts and must run as root (./scripts/test.sh in CI runs as root).");
            output.WriteLine("Not run: the host agent test needs root.");
            return;
        }

        var app = gateway.App!;
        Guid tenantId;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var access = scope.ServiceProvider.GetRequiredService<AccessService>();
            tenantId = (await directory.FindTenantAsync("contoso.test"))!.Id;

            // vm3 stores no host account at all: the agent gives each user her own.
            await directory.CreateHostAsync(tenantId, "vm3", "127.0.0.1", gateway.Xrdp!.Port, BackendSecurity.Tls);
            foreach (var name in new[] { "ines", "jana" })
            {
                await directory.CreateUserAsync(tenantId, $"{name}@contoso.test", name, Password, temporary: false);
            }

            await access.AssignRoleAsync(tenantId, "Virtual Machine User Login", "ines@contoso.test", "/hosts/vm3");
            await access.AssignRoleAsync(tenantId, "Virtual Machine Administrator Login", "jana@contoso.test", "/hosts/vm3");
        }

        string token;
        await using (var scope = app.Services.CreateAsyncScope())
        {
            token = (await Operations(scope, tenantId).EnrollHostAgentAsync("vm3", new HostEnrollRequest(600), CancellationToken.None)).Token;
        }

        var state = new AgentState(Path.Combine(Path.GetTempPath(), "gatehouse-e2e-agent", Guid.NewGuid().ToString("N")));
        var config = await HostAgentRunner.JoinAsync(state, gateway.BaseAddress, token, gateway.Xrdp.Port, 30, null, null, null, new LocalRdpProbe(), TimeProvider.System, CancellationToken.None);
        using var key = state.LoadKey();
        using var http = new HttpClient(AgentClient.PinnedHandler(config.ServerCertificateSha256));
        using var agent = new HostAgentRunner(state, config, key, new AgentClient(http, TimeProvider.System), new LinuxHostAccounts(new ProcessRunner()), new LocalRdpProbe(), TimeProvider.System, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var running = agent.RunAsync(stop.Token);
        var created = new List<string>();
        try
        {
            await Wait.UntilAsync(() => agent.HealthReports > 0, Wait.Generous, "the agent's first health report");

            var jana = await SignInAsOwnAccountAsync("jana@contoso.test", created);
            Assert.Contains("sudo", Groups(jana));
            var ines = await SignInAsOwnAccountAsync("ines@contoso.test", created);
            Assert.DoesNotContain("sudo", Groups(ines));
            Assert.NotEqual(jana, ines);

            // Jana loses her role while signed in: the next re-evaluation ends her session and the agent locks her
            // account on vm3. Given User Login instead, her next logon is the same account, unlocked, without sudo.
            await SignInAsOwnAccountAsync("jana@contoso.test", created, whileLive: async session =>
            {
                await using (var scope = app.Services.CreateAsyncScope())
                {
                    var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                    var user = await db.Users.SingleAsync(u => u.UserPrincipalName == "jana@contoso.test");
                    Assert.Equal(1, await db.RoleAssignments.Where(a => a.PrincipalId == user.Id).ExecuteDeleteAsync());
                }

                await app.Services.GetRequiredService<Gatehouse.Gateway.LiveSessionReevaluator>().ReevaluateAllAsync(CancellationToken.None);
                await Wait.UntilAsync(() => gateway.Sessions.Find(session.Id) is null, Wait.Generous, "Jana's session to end at the re-evaluation");
                await Wait.UntilAsync(() => ShadowHash(jana).StartsWith('!'), Wait.Generous, $"{jana} locked (usermod -L) after Jana's role was removed");
            });
            var ended = await WaitForSessionEndAsync("jana@contoso.test");
            Assert.StartsWith("access_revoked: no_role_assignment:", ended.EndReason, StringComparison.Ordinal);
            await using (var scope = app.Services.CreateAsyncScope())
            {
                await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenantId, "Virtual Machine User Login", "jana@contoso.test", "/hosts/vm3");
            }

            Assert.Equal(jana, await SignInAsOwnAccountAsync("jana@contoso.test", created));
            Assert.DoesNotContain("sudo", Groups(jana));
            Assert.False(ShadowHash(jana).StartsWith('!'), $"{jana} is unlocked by the logon the new role allows");

            // Disabling Ines locks the account the agent manages for her.
            await using (var scope = app.Services.CreateAsyncScope())
            {
                await Operations(scope, tenantId).SetUserEnabledAsync("ines@contoso.test", enabled: false, CancellationToken.None);
            }

            await Wait.UntilAsync(() => ShadowHash(ines).StartsWith('!'), Wait.Generous, $"{ines}'s password locked (usermod -L) after Ines was disabled");
        }
        finally
        {
            await stop.CancelAsync();
            await running;
            foreach (var account in created.Concat(state.LoadAccounts().Values).Distinct(StringComparer.Ordinal))
            {
                await RunAsync("pkill", ["-KILL", "-u", account]);
                await RunAsync("userdel", ["-r", account]);
            }
        }
    }

    /// <summary>
    /// One NLA sign-in to vm3: the session's account is the agent's account for the user (not a shared one), xrdp runs
    /// processes as it, and once the agent rotates (at most a minute after the logon) the injected password no longer
    /// matches the account's hash.
    /// </summary>
    private async Task<string> SignInAsOwnAccountAsync(string upn, List<string> created, Func<LiveSession, Task>? whileLive = null)
    {
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var client = StartNlaClient(display, upn, Password, "vm3.gatehouse.test");
        string account;
        try
        {
            var session = await WaitForLiveSessionAsync(upn, client);
            account = session.Grant.Credentials.UserName;
            created.Add(account);
            var injected = session.Grant.Credentials.Password;
            Assert.NotEqual(gateway.Xrdp!.UserAccount, account);
            Assert.NotEqual(gateway.Xrdp.AdminAccount, account);
            Assert.StartsWith(upn.Split('@')[0], account, StringComparison.Ordinal);
            await Wait.UntilAsync(() => XrdpHost.ProcessesOf(account).Count > 0, Wait.Generous, $"a process of {account} on the xrdp host", () => client.Transcript);
            var entry = await WaitForSignInAsync(upn, "success", "nla");
            Assert.Equal(account, entry.TargetAccount);

            // The password lived for this logon only.
            await Wait.UntilAsync(
                () => !PasswordMatches(account, injected),
                HostAgentRunner.RotateAfter + Wait.Generous,
                $"{account}'s password rotated after the logon");
            output.WriteLine($"{upn} landed as {account} (groups: {string.Join(' ', Groups(account))}); its logon password was rotated after the logon.");
            if (whileLive is not null)
            {
                await whileLive(session);
            }
        }
        finally
        {
            await client.DisposeAsync();
        }

        await WaitForSessionEndAsync(upn);
        return account;
    }

    private AdminOperations Operations(AsyncServiceScope scope, Guid tenantId) =>
        new(AdminCaller.Operator(tenantId), scope.ServiceProvider, () => new GatewayInfo(gateway.PublicName, gateway.RdpPort, gateway.CertificateSha256));

    private static string[] Groups(string account) =>
        Run("id", ["-nG", "--", account]).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The account's password field in /etc/shadow.</summary>
    private static string ShadowHash(string account) =>
        File.ReadLines("/etc/shadow").Select(l => l.Split(':')).First(f => f[0] == account)[1];

    /// <summary>Whether <paramref name="password"/> is the account's password: libxcrypt's crypt(3) over the stored hash (through Python).</summary>
    private static bool PasswordMatches(string account, string password)
    {
        var hash = ShadowHash(account);
        var answer = Run("python3", ["-W", "ignore", "-c", "import crypt,sys; p=sys.stdin.readline().rstrip('\\n'); print(crypt.crypt(p, sys.argv[1]) == sys.argv[1])", hash], password + "\n");
        return answer.Trim() switch
        {
            "True" => true,
            "False" => false,
            var other => throw new InvalidOperationException($"crypt check printed '{other}'"),
        };
    }

    private static string Run(string file, IReadOnlyList<string> arguments, string? input = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? output : throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}): {error}");
    }

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
    }
}
