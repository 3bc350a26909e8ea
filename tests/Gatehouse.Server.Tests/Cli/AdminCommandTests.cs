using System.Text.Json;
using Gatehouse.Identity;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>The admin commands run in process on a temp data directory, as an administrator runs them on the server's machine.</summary>
public sealed class AdminCommandTests
{
    private const string AdminPassword = "Adm1n-Secret-Zebra";
    private const string UserPassword = "Us3r-Secret-Giraffe";

    private static async Task<CliHarness> WithUserAndHostAsync()
    {
        var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("Alice-Pw-12345\n", "user", "create", "--upn", "alice@contoso.test", "--display-name", "Alice", "--password-stdin");
        await cli.OkAsync("hostgroup", "create", "prod");
        await cli.OkWithInputAsync(
            $"{AdminPassword}\n{UserPassword}\n",
            "host", "create", "--name", "vm1", "--backend", "127.0.0.1:3389", "--backend-security", "tls", "--host-group", "prod", "--alias", "vm1-alt",
            "--admin-account", "Administrator", "--admin-password-stdin", "--user-account", @"WORK\rdpuser", "--user-password-stdin");
        return cli;
    }

    [Fact]
    public async Task Diagnose_UserLoginAssignment_AllowedAsUserAccount()
    {
        await using var cli = await WithUserAndHostAsync();
        var before = await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1");
        Assert.Contains("No.", before.Output, StringComparison.Ordinal);
        Assert.Contains("no role assignment", before.Output, StringComparison.Ordinal);

        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/hosts/vm1");
        var run = await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1");

        Assert.Contains(@"Yes: allowed as WORK\rdpuser (regular user, by 'Virtual Machine User Login' at /hosts/vm1)", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(UserPassword, run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminPassword, run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Diagnose_AdministratorLoginAtTenant_AllowedAsAdminAccount_PasswordsDecryptable()
    {
        await using var cli = await WithUserAndHostAsync();
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/hostGroups/prod");
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine Administrator Login", "--assignee", "alice@contoso.test", "--scope", "/");

        var run = await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1-alt", "--output", "json");

        using var json = JsonDocument.Parse(run.Output);
        Assert.True(json.RootElement.GetProperty("allowedWithPassword").GetBoolean());
        Assert.Equal("Administrator", json.RootElement.GetProperty("account").GetString());
        Assert.Equal("Virtual Machine Administrator Login", json.RootElement.GetProperty("role").GetString());

        // The passwords the CLI stored are the ones the access call hands to the gateway (stdin order: admin, then user).
        await using var store = await cli.OpenStoreAsync();
        var user = await store.Get<DirectoryService>().FindUserByUpnAsync("alice@contoso.test");
        var host = await store.Get<DirectoryService>().FindHostByLabelAsync(store.TenantOrThrow.Id, "vm1");
        var decision = await store.Get<AccessService>().AuthorizeSignInAsync(new AccessRequest
        {
            UserId = user!.Id,
            HostId = host!.Id,
            AuthenticationMethods = ["pwd"],
            AuthenticatedAt = DateTimeOffset.UtcNow,
        });
        Assert.Equal(AdminPassword, decision.Account?.Password);
        Assert.Equal(UserPassword, store.Get<DirectoryService>().UnprotectHostSecret(host.UserSecretProtected!));
    }

    [Theory]
    [InlineData("Virtual Machine Usr Login", "alice@contoso.test", "/hosts/vm1", "There is no role named 'Virtual Machine Usr Login'. 'gatehouse role definition list' shows the roles.")]
    [InlineData("Virtual Machine User Login", "alice@contoso.test", "/machines/vm1", "'/machines/vm1' is not a scope; use /, /hostGroups/NAME or /hosts/NAME.")]
    [InlineData("Virtual Machine User Login", "alice@contoso.test", "/hosts/vm9", "There is no host 'vm9'. Create it first with 'gatehouse host create'.")]
    [InlineData("Virtual Machine User Login", "alice@contoso.test", "/hostGroups/test", "There is no host group 'test'. Create it first with 'gatehouse hostgroup create'.")]
    [InlineData("Virtual Machine User Login", "mallory@contoso.test", "/hosts/vm1", "There is no user 'mallory@contoso.test'. 'gatehouse user list' shows the users.")]
    [InlineData("Virtual Machine User Login", "nosuchgroup", "/hosts/vm1", "There is no group 'nosuchgroup'")]
    public async Task RoleAssignmentCreate_UnknownRoleScopeOrAssignee_FailsWithSentence(string role, string assignee, string scope, string sentence)
    {
        await using var cli = await WithUserAndHostAsync();

        var run = await cli.RunAsync("role", "assignment", "create", "--role", role, "--assignee", assignee, "--scope", scope);

        Assert.NotEqual(0, run.ExitCode);
        Assert.StartsWith("gatehouse role assignment create: ", run.Error, StringComparison.Ordinal);
        Assert.Contains(sentence, run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, run.Output);
        var list = await cli.OkAsync("role", "assignment", "list", "--output", "json");
        Assert.Equal(0, JsonDocument.Parse(list.Output).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task SigninsVerify_IntactThenEditedRow_Detected()
    {
        await using var cli = await CliHarness.CreateAsync();
        await AppendSignInsAsync(cli, 3);
        var intact = await cli.RunAsync("signins", "verify");
        Assert.Equal(0, intact.ExitCode);
        Assert.Contains("intact: 3 rows", intact.Output, StringComparison.Ordinal);

        Assert.Equal(1, await cli.ExecuteSqlAsync("UPDATE SignIns SET Reason = 'nothing to see here' WHERE Sequence = 2"));
        var run = await cli.RunAsync("signins", "verify");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("row 2: the row's content does not match its hash (the row was edited)", run.Output, StringComparison.Ordinal);
        Assert.Contains("tampered", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SigninsVerify_LastRowDeleted_Detected()
    {
        await using var cli = await CliHarness.CreateAsync();
        await AppendSignInsAsync(cli, 3);
        Assert.Equal(1, await cli.ExecuteSqlAsync("DELETE FROM SignIns WHERE Sequence = 3"));

        var run = await cli.RunAsync("signins", "verify");

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("the log ends at row 2 but row 3 was written (the tail was truncated)", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SigninsListAndShow_FilterAndJson()
    {
        await using var cli = await CliHarness.CreateAsync();
        await AppendSignInsAsync(cli, 3);

        var failures = await cli.OkAsync("signins", "list", "--result", "failure", "--since", "1h", "--output", "json");
        var rows = JsonDocument.Parse(failures.Output).RootElement;
        Assert.Equal(2, rows.GetArrayLength());
        Assert.All(rows.EnumerateArray(), r => Assert.Equal("failure", r.GetProperty("result").GetString()));
        var show = await cli.OkAsync("signins", "show", "2");
        Assert.Contains("attempt 2", show.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostShowAndList_NeverPrintPasswords()
    {
        await using var cli = await WithUserAndHostAsync();

        var runs = new[]
        {
            await cli.OkAsync("host", "show", "vm1"),
            await cli.OkAsync("host", "show", "vm1-alt", "--output", "json"),
            await cli.OkAsync("host", "list"),
            await cli.OkAsync("host", "list", "--output", "json"),
        };

        Assert.Contains(@"WORK\rdpuser (password set)", runs[0].Output, StringComparison.Ordinal);
        foreach (var run in runs)
        {
            Assert.DoesNotContain(AdminPassword, run.Output + run.Error, StringComparison.Ordinal);
            Assert.DoesNotContain(UserPassword, run.Output + run.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task OutputJson_ListsParse()
    {
        await using var cli = await WithUserAndHostAsync();
        await cli.OkAsync("group", "create", "Admins");
        await cli.OkAsync("group", "add-member", "Admins", "alice@contoso.test");

        var users = JsonDocument.Parse((await cli.OkAsync("user", "list", "--output", "json")).Output).RootElement;
        var roles = JsonDocument.Parse((await cli.OkAsync("role", "definition", "list", "-o", "json")).Output).RootElement;
        var groups = JsonDocument.Parse((await cli.OkAsync("group", "list", "--output", "json")).Output).RootElement;
        var hosts = JsonDocument.Parse((await cli.OkAsync("host", "list", "--output", "json")).Output).RootElement;

        Assert.Equal(["admin@contoso.test", "alice@contoso.test"], users.EnumerateArray().Select(u => u.GetProperty("userPrincipalName").GetString()));
        Assert.Equal(
            ["Virtual Machine Administrator Login", "Virtual Machine User Login", "Virtual Machine Data Access Administrator", "Owner", "Contributor", "Reader"],
            roles.EnumerateArray().Select(r => r.GetProperty("name").GetString()));
        Assert.Equal("administrator", roles[0].GetProperty("signIn").GetString());
        Assert.Equal("none", roles[3].GetProperty("signIn").GetString());
        Assert.Equal("alice@contoso.test", groups[0].GetProperty("members")[0].GetString());
        Assert.Equal("prod", hosts[0].GetProperty("hostGroup").GetString());
    }

    [Fact]
    public async Task PolicyWhatIf_RequireMfa_SaysMfaIsNeeded()
    {
        await using var cli = await WithUserAndHostAsync();
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/");
        var file = Path.Combine(cli.DataDirectory, "mfa.json");
        await File.WriteAllTextAsync(file, """
            {
              "displayName": "Require MFA for RDP",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": ["mfa"] }
            }
            """);
        await cli.OkAsync("policy", "create", "--file", file);

        var withoutMfa = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1");
        var withMfa = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--mfa");
        var json = JsonDocument.Parse((await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--output", "json")).Output).RootElement;

        Assert.Contains("Require MFA for RDP", withoutMfa.Output, StringComparison.Ordinal);
        Assert.Contains("Verdict: refused: policy_control_missing:", withoutMfa.Output, StringComparison.Ordinal);
        Assert.Contains("MFA is required", withoutMfa.Output, StringComparison.Ordinal);
        Assert.Contains("The sign-in method you're trying to use isn't allowed.", withoutMfa.Output, StringComparison.Ordinal);
        Assert.Contains(@"Verdict: allowed as WORK\rdpuser", withMfa.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("MFA is required", withMfa.Output, StringComparison.Ordinal);
        Assert.True(json.GetProperty("mfaRequired").GetBoolean());
        Assert.Equal("PolicyControlMissing", json.GetProperty("refusal").GetString());
        Assert.Equal("failure", json.GetProperty("policies")[0].GetProperty("result").GetString());
    }

    [Fact]
    public async Task NamedLocation_BlockOutsideTheTrustedOffice_AppliesByClientAddress()
    {
        await using var cli = await WithUserAndHostAsync();
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/");
        await cli.OkAsync("location", "create", "--name", "Office", "--cidr", "10.20.0.0/16", "2001:db8::/32", "--trusted");
        var bad = await cli.RunAsync("location", "create", "--name", "Broken", "--cidr", "10.0.0.300/8");
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("is not a CIDR range", bad.Error, StringComparison.Ordinal);
        var listed = JsonDocument.Parse((await cli.OkAsync("location", "list", "--output", "json")).Output).RootElement;
        Assert.Equal("Office", Assert.Single(listed.EnumerateArray()).GetProperty("name").GetString());

        var file = Path.Combine(cli.DataDirectory, "block.json");
        await File.WriteAllTextAsync(file, """
            {
              "displayName": "Block outside trusted locations",
              "state": "enabled",
              "conditions": {
                "users": { "includeUsers": ["All"] },
                "locations": { "includeLocations": ["All"], "excludeLocations": ["AllTrusted"] }
              },
              "grantControls": { "operator": "OR", "builtInControls": ["block"] }
            }
            """);
        await cli.OkAsync("policy", "create", "--file", file);

        var inside = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--ip", "10.20.3.4");
        var outside = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--ip", "198.51.100.7");
        Assert.Contains("Verdict: allowed", inside.Output, StringComparison.Ordinal);
        Assert.Contains("Verdict: refused: policy_blocked:", outside.Output, StringComparison.Ordinal);

        await cli.OkAsync("location", "delete", "Office");
        var afterDelete = await cli.OkAsync("policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--ip", "10.20.3.4");
        Assert.Contains("Verdict: refused: policy_blocked:", afterDelete.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CustomRole_WithTheLoginDataAction_LetsItsAssigneeSignIn_AndCannotBeDeletedWhileUsed()
    {
        await using var cli = await WithUserAndHostAsync();
        var file = Path.Combine(cli.DataDirectory, "role.json");
        await File.WriteAllTextAsync(file, """
            { "name": "Helpdesk Login", "description": "Sign in to hosts, nothing else", "dataActions": ["Gatehouse/hosts/login/action"] }
            """);
        var created = await cli.OkAsync("role", "definition", "create", "--file", file);
        Assert.Contains("it allows signing in to hosts", created.Output, StringComparison.Ordinal);
        await cli.OkAsync("role", "assignment", "create", "--role", "Helpdesk Login", "--assignee", "alice@contoso.test", "--scope", "/hosts/vm1");

        var diagnose = await cli.OkAsync("diagnose", "--user", "alice@contoso.test", "--host", "vm1");
        Assert.Contains("'Helpdesk Login'", diagnose.Output, StringComparison.Ordinal);
        Assert.Contains("regular user", diagnose.Output, StringComparison.Ordinal);

        var inUse = await cli.RunAsync("role", "definition", "delete", "Helpdesk Login");
        Assert.NotEqual(0, inUse.ExitCode);
        Assert.Contains("is used by 1 assignment", inUse.Error, StringComparison.Ordinal);

        await File.WriteAllTextAsync(file, """{ "name": "Owner", "actions": ["*"] }""");
        Assert.Contains("is a built-in role", (await cli.RunAsync("role", "definition", "create", "--file", file)).Error, StringComparison.Ordinal);
        await File.WriteAllTextAsync(file, """{ "name": "Odd", "dataActions": ["hosts/login"] }""");
        Assert.Contains("is not an action", (await cli.RunAsync("role", "definition", "create", "--file", file)).Error, StringComparison.Ordinal);
        await File.WriteAllTextAsync(file, """{ "name": "Typo", "dataAction": ["Gatehouse/hosts/login/action"] }""");
        Assert.NotEqual(0, (await cli.RunAsync("role", "definition", "create", "--file", file)).ExitCode);
    }

    [Fact]
    public async Task Diagnose_TypedNameForms_AzureAdAccepted_DomainBackslashUserExplained()
    {
        await using var cli = await WithUserAndHostAsync();
        await cli.OkAsync("role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/");

        var prefixed = await cli.OkAsync("diagnose", "--user", ".\\AzureAD\\alice@contoso.test", "--host", "vm1");
        var domain = await cli.RunAsync("diagnose", "--user", "CONTOSO\\alice", "--host", "vm1");

        Assert.Contains("Can alice@contoso.test sign in to vm1", prefixed.Output, StringComparison.Ordinal);
        Assert.Contains("Yes: allowed", prefixed.Output, StringComparison.Ordinal);
        Assert.NotEqual(0, domain.ExitCode);
        Assert.Contains("Remote machine is Microsoft Entra joined. If you are signing in to your work account, try using your work email address.", domain.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PolicyCreate_InvalidJson_FailsWithWhatToFix()
    {
        await using var cli = await CliHarness.CreateAsync();
        var file = Path.Combine(cli.DataDirectory, "bad.json");
        await File.WriteAllTextAsync(file, """{ "displayName": "x", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "builtInControls": ["sms"] } }""");

        var run = await cli.RunAsync("policy", "create", "--file", file);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("\"sms\" is not supported", run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, (await cli.OkAsync("policy", "list", "--output", "json")).Output.Trim().Trim('[', ']').Trim());
    }

    [Fact]
    public async Task UserCreate_Temporary_PrintsPasswordOnceThatSignsIn()
    {
        await using var cli = await CliHarness.CreateAsync();

        var run = await cli.OkAsync("user", "create", "--upn", "bob@contoso.test", "--temporary-password");

        var line = run.Output.Split('\n').Single(l => l.StartsWith("Temporary password: ", StringComparison.Ordinal));
        var password = line["Temporary password: ".Length..].Trim();
        await using var store = await cli.OpenStoreAsync();
        var bob = await store.Get<DirectoryService>().FindUserByUpnAsync("bob@contoso.test");
        Assert.True(bob!.MustChangePassword);
        Assert.Equal(PasswordVerification.Success, store.Get<PasswordHasher>().Verify(bob.PasswordHash, password));
        var show = await cli.OkAsync("user", "show", "bob@contoso.test");
        Assert.DoesNotContain(password, show.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_TogetherWithData_IsRefusedWithSentence()
    {
        await using var cli = await CliHarness.CreateAsync();

        var run = await cli.RunAsync("user", "list", "--server", "https://login.contoso.test:8443");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--server cannot be combined with --data or --store", run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public async Task EmptyStore_NoTenant_SaysRunServeFirst()
    {
        await using var cli = await CliHarness.CreateAsync(withTenant: false);
        var missing = await CliHarness.RunRawAsync(null, "user", "list", "--data", Path.Combine(cli.DataDirectory, "nothing-here"));
        await (await cli.OpenStoreAsync()).DisposeAsync();

        var run = await cli.RunAsync("user", "list");

        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("There is no Gatehouse store at", missing.Error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(cli.DataDirectory, "nothing-here")));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("run 'gatehouse serve' once first", run.Error, StringComparison.Ordinal);
    }

    private static async Task AppendSignInsAsync(CliHarness cli, int count)
    {
        await using var store = await cli.OpenStoreAsync();
        var log = store.Get<SignInLogService>();
        for (var i = 1; i <= count; i++)
        {
            await log.AppendAsync(new SignInEntry
            {
                TenantId = store.TenantOrThrow.Id,
                CorrelationId = $"conn-{i}",
                Protocol = "web_account",
                Succeeded = i % 2 == 0,
                Reason = $"attempt {i}",
                UserPrincipalName = "alice@contoso.test",
                HostName = "vm1",
            });
        }
    }
}
