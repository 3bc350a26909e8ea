using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Gatehouse.Cli;
using Gatehouse.Identity;
using Gatehouse.Protocol.X224;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// A running server with data written through the CLI over its admin API (<c>--server</c>, the token in
/// <c>GATEHOUSE_TOKEN</c>, the in-process server's handler): the fixture's writes are the remote write commands.
/// </summary>
public sealed class RemoteCliFixture : IAsyncLifetime
{
    public const string HostPassword = "Us3r-Secret-Giraffe";

    internal TestServer Server { get; private set; } = null!;

    internal string OwnerToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync();
        OwnerToken = await TokenForAsync(Server, "owner@contoso.test", "Owner");
        var policy = Path.Combine(Server.DataDirectory, "mfa.json");
        await File.WriteAllTextAsync(policy, """
            { "displayName": "Require MFA for RDP", "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }
            """);
        var role = Path.Combine(Server.DataDirectory, "role.json");
        await File.WriteAllTextAsync(role, """{ "name": "Helpdesk Login", "description": "Sign in to hosts, nothing else", "dataActions": ["Gatehouse/hosts/login/action"] }""");

        await OkAsync("Alice-Passphrase-1\n", "user", "create", "--upn", "alice@contoso.test", "--display-name", "Alice", "--password-stdin");
        await OkAsync(null, "group", "create", "ops");
        await OkAsync(null, "group", "add-member", "ops", "alice@contoso.test");
        await OkAsync(null, "hostgroup", "create", "prod");
        await OkAsync(HostPassword + "\n", "host", "create", "--name", "vm1", "--backend", "127.0.0.1:1", "--backend-security", "tls", "--host-group", "prod",
            "--alias", "vm1-alt", "--user-account", @"WORK\rdpuser", "--user-password-stdin");
        await OkAsync(HostPassword + "\n", "host", "create", "--name", "vm2", "--backend", "127.0.0.9:1", "--backend-security", "tls",
            "--admin-account", "Administrator", "--admin-password-stdin");
        await OkAsync(null, "role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "ops", "--scope", "/hosts/vm1");
        await OkAsync(null, "location", "create", "--name", "Office", "--cidr", "10.0.0.0/8", "--trusted");
        await OkAsync(null, "policy", "create", "--file", policy);
        await OkAsync(null, "role", "definition", "create", "--file", role);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>An environment whose <c>--server</c> calls reach the in-process server with <paramref name="token"/> (none: not signed in).</summary>
    internal CliEnvironment Environment(string? token) => new()
    {
        HttpHandler = Server.CreateHandler(),
        ConfigDirectory = TempDirectory.Create(),
        Variable = name => name == "GATEHOUSE_TOKEN" ? token : null,
    };

    internal string ServerAddress => Server.BaseAddress.GetLeftPart(UriPartial.Authority);

    /// <summary>Runs <c>gatehouse ARGS --server URL</c> with <paramref name="token"/>.</summary>
    internal Task<CliRun> RemoteAsync(string? token, string? stdin, params string[] args) =>
        CliHarness.RunInAsync(Environment(token), stdin, [.. args, "--server", ServerAddress]);

    /// <summary>Runs <c>gatehouse ARGS --data DIR</c> on the running server's store (the operator, on its machine).</summary>
    internal Task<CliRun> LocalAsync(string? stdin, params string[] args) => CliHarness.RunRawAsync(stdin, [.. args, "--data", Server.DataDirectory]);

    internal async Task<CliRun> OkAsync(string? stdin, params string[] args)
    {
        var run = await RemoteAsync(OwnerToken, stdin, args);
        Assert.True(run.ExitCode == 0, $"gatehouse {string.Join(' ', args)} --server failed: {run}");
        return run;
    }

    /// <summary>Creates a user holding <paramref name="role"/> at <paramref name="scope"/> (or none) and returns an admin API token for them.</summary>
    internal static async Task<string> TokenForAsync(TestServer server, string upn, string? role, string scope = "/")
    {
        ArgumentNullException.ThrowIfNull(server);
        await using var services = server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var user = await directory.FindUserByUpnAsync(upn) ?? (await directory.CreateUserAsync(tenant.Id, upn, upn, "Pw-" + Guid.NewGuid().ToString("N"), temporary: false)).User;
        if (role is not null)
        {
            await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, role, upn, scope);
        }

        return await services.ServiceProvider.GetRequiredService<AdminTokenService>().IssueAsync(user, ["pwd"], "gatehouse-cli");
    }
}

/// <summary>Every admin command group over the REST API (<c>--server</c>) against the same commands on the store (<c>--data</c>).</summary>
public sealed class RemoteAdminCommandTests(RemoteCliFixture fixture) : IClassFixture<RemoteCliFixture>
{
    public static TheoryData<int, string[]> ReadCommands() => new()
    {
        { 0, ["user", "list"] },
        { 0, ["user", "list", "--output", "json"] },
        { 0, ["user", "show", "alice@contoso.test"] },
        { 0, ["user", "show", "alice@contoso.test", "--output", "json"] },
        { 0, ["group", "list"] },
        { 0, ["group", "list", "--output", "json"] },
        { 0, ["hostgroup", "list", "--output", "json"] },
        { 0, ["host", "list"] },
        { 0, ["host", "list", "--output", "json"] },
        { 0, ["host", "show", "vm1-alt"] },
        { 0, ["role", "definition", "list"] },
        { 0, ["role", "definition", "list", "--output", "json"] },
        { 0, ["role", "assignment", "list", "--output", "json"] },
        { 0, ["role", "assignment", "list", "--assignee", "ops"] },
        { 0, ["policy", "list", "--output", "json"] },
        { 0, ["policy", "show", "Require MFA for RDP"] },
        { 0, ["policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1"] },
        { 0, ["policy", "what-if", "--user", "alice@contoso.test", "--host", "vm1", "--mfa", "--output", "json"] },
        { 0, ["location", "list", "--output", "json"] },
        { 0, ["diagnose", "--user", "alice@contoso.test", "--host", "vm1"] },
        { 0, ["diagnose", "--user", @"AzureAD\alice@contoso.test", "--host", "vm1", "--output", "json"] },
        { 0, ["signins", "list", "--output", "json"] },
        { 0, ["signins", "verify"] },
        { 0, ["sessions", "list", "--output", "json"] },
        { 1, ["host", "test", "vm1", "--timeout", "5"] },
        { 1, ["host", "trust", "vm1", "--fingerprint", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] },
        { 1, ["host", "trust", "vm1", "--fingerprint", "not-a-fingerprint"] },
        { 1, ["host", "trust", "vm9", "--output", "json"] },
        { 1, ["user", "show", "nobody@contoso.test"] },
        { 0, ["user", "passkey", "list", "alice@contoso.test"] },
        { 0, ["user", "passkey", "list", "alice@contoso.test", "--output", "json"] },
        { 1, ["user", "passkey", "remove", "alice@contoso.test", "--name", "Phone"] },
        { 1, ["user", "passkey", "list", "nobody@contoso.test"] },
        { 1, ["host", "show", "vm9"] },
        { 1, ["role", "assignment", "delete", "3f2b0000-0000-0000-0000-000000000000"] },
        { 1, ["diagnose", "--user", @"CONTOSO\alice", "--host", "vm1"] },
        { 1, ["sessions", "kill", "3f2b0000-0000-0000-0000-000000000001"] },
        { 1, ["signins", "show", "999"] },
        { 1, ["policy", "show", "No Such Policy"] },
        { 1, ["role", "definition", "delete", "Owner"] },
        { 1, ["location", "delete", "Nowhere"] },
        { 1, ["group", "add-member", "ops", "nobody@contoso.test"] },
        { 1, ["hostgroup", "create", "prod"] },
    };

    [Theory]
    [MemberData(nameof(ReadCommands))]
    public async Task Command_OverApi_PrintsWhatItPrintsOnTheStore(int exitCode, string[] args)
    {
        var remote = await fixture.RemoteAsync(fixture.OwnerToken, null, args);
        var local = await fixture.LocalAsync(null, args);

        Assert.True(local.ExitCode == exitCode, local.ToString());
        Assert.True(local.Output.Length + local.Error.Length > 0, local.ToString());
        Assert.Equal(local.ExitCode, remote.ExitCode);
        Assert.Equal(local.Output, remote.Output);
        Assert.Equal(local.Error, remote.Error);
    }

    [Fact]
    public async Task Writes_OverApi_AreWhatTheStoreHolds()
    {
        var users = JsonDocument.Parse((await fixture.LocalAsync(null, "user", "list", "--output", "json")).Output).RootElement;
        var hosts = JsonDocument.Parse((await fixture.LocalAsync(null, "host", "list", "--output", "json")).Output).RootElement;
        var assignments = JsonDocument.Parse((await fixture.LocalAsync(null, "role", "assignment", "list", "--scope", "/hosts/vm1", "--assignee", "ops", "--output", "json")).Output).RootElement;

        Assert.Contains("alice@contoso.test", users.EnumerateArray().Select(u => u.GetProperty("userPrincipalName").GetString()));
        var vm1 = hosts.EnumerateArray().Single(h => h.GetProperty("name").GetString() == "vm1");
        Assert.Equal("prod", vm1.GetProperty("hostGroup").GetString());
        Assert.Equal("vm1-alt", vm1.GetProperty("aliases")[0].GetString());
        var assignment = Assert.Single(assignments.EnumerateArray());
        Assert.Equal("owner@contoso.test", assignment.GetProperty("createdBy").GetString());
        Assert.Equal("ops", assignment.GetProperty("assignee").GetString());
        await using var services = fixture.Server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = (await directory.FindHostByLabelAsync(tenant.Id, "vm1"))!;
        Assert.Equal(RemoteCliFixture.HostPassword, directory.UnprotectHostSecret(host.UserSecretProtected!));
    }

    [Fact]
    public async Task UserLifecycle_OverApi_ResetPasswordMfaDisable()
    {
        await fixture.OkAsync("Bob-Passphrase-1\n", "user", "create", "--upn", "bob@contoso.test", "--password-stdin");

        var reset = await fixture.OkAsync(null, "user", "reset-password", "bob@contoso.test");
        var enroll = await fixture.RemoteAsync(fixture.OwnerToken, "000000\n111111\n222222\n", "user", "mfa", "enroll", "bob@contoso.test", "--no-qr");
        var pending = await fixture.OkAsync(null, "user", "show", "bob@contoso.test", "--output", "json");
        await fixture.OkAsync(null, "user", "mfa", "reset", "bob@contoso.test");
        await fixture.OkAsync(null, "user", "disable", "bob@contoso.test");
        var after = JsonDocument.Parse((await fixture.OkAsync(null, "user", "show", "bob@contoso.test", "--output", "json")).Output).RootElement;

        var temporary = reset.Output.Split('\n').Single(l => l.StartsWith("Temporary password: ", StringComparison.Ordinal))["Temporary password: ".Length..].Trim();
        await using var services = fixture.Server.App.Services.CreateAsyncScope();
        var bob = (await services.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync("bob@contoso.test"))!;
        Assert.Equal(PasswordVerification.Success, services.ServiceProvider.GetRequiredService<PasswordHasher>().Verify(bob.PasswordHash, temporary));
        Assert.StartsWith("otpauth://totp/", enroll.Output, StringComparison.Ordinal);
        Assert.Equal(1, enroll.ExitCode);
        Assert.Contains("was not confirmed", enroll.Error, StringComparison.Ordinal);
        Assert.Equal("totp (not confirmed)", JsonDocument.Parse(pending.Output).RootElement.GetProperty("mfa").GetString());
        Assert.Equal("none", after.GetProperty("mfa").GetString());
        Assert.False(after.GetProperty("enabled").GetBoolean());
        Assert.True(after.GetProperty("mustChangePassword").GetBoolean());
    }

    [Fact]
    public async Task PasskeyListAndRemove_OverApi()
    {
        await fixture.OkAsync("Dave-Passphrase-1\n", "user", "create", "--upn", "dave@contoso.test", "--password-stdin");
        await using (var scope = fixture.Server.App.Services.CreateAsyncScope())
        {
            var dave = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync("dave@contoso.test"))!;
            var db = scope.ServiceProvider.GetRequiredService<Gatehouse.Storage.GatehouseDbContext>();
            db.Passkeys.Add(new Gatehouse.Storage.Passkey { Id = Guid.NewGuid(), UserId = dave.Id, CredentialId = [9, 8, 7], PublicKey = [1], Name = "Phone", CreatedAt = DateTimeOffset.UnixEpoch });
            await db.SaveChangesAsync();
        }

        var listed = JsonDocument.Parse((await fixture.OkAsync(null, "user", "passkey", "list", "dave@contoso.test", "--output", "json")).Output).RootElement;
        var removed = await fixture.OkAsync(null, "user", "passkey", "remove", "dave@contoso.test", "--name", "Phone");
        var after = JsonDocument.Parse((await fixture.OkAsync(null, "user", "passkey", "list", "dave@contoso.test", "--output", "json")).Output).RootElement;

        Assert.Equal("Phone", Assert.Single(listed.EnumerateArray()).GetProperty("name").GetString());
        Assert.Contains("The passkey 'Phone' of dave@contoso.test was removed.", removed.Output, StringComparison.Ordinal);
        Assert.Equal(0, after.GetArrayLength());
    }

    [Fact]
    public async Task GroupHostPolicyLocationRole_UpdatesAndDeletes_OverApi()
    {
        await fixture.OkAsync(null, "group", "create", "helpdesk");
        await fixture.OkAsync(null, "group", "add-member", "helpdesk", "alice@contoso.test");
        var removed = await fixture.OkAsync(null, "group", "remove-member", "helpdesk", "alice@contoso.test");
        await fixture.OkAsync("Host-Pw-5\n", "host", "create", "--name", "vm5", "--backend", "127.0.0.5:1", "--backend-security", "tls", "--user-account", "u", "--user-password-stdin");
        var updated = await fixture.OkAsync("Host-Pw-6\n", "host", "update", "vm5", "--host-group", "prod", "--alias", "five", "--backend", "127.0.0.6:2", "--user-password-stdin");
        var disabled = await fixture.OkAsync(null, "policy", "disable", "Require MFA for RDP");
        var policies = JsonDocument.Parse((await fixture.LocalAsync(null, "policy", "list", "--output", "json")).Output).RootElement;
        await fixture.OkAsync(null, "policy", "enable", "Require MFA for RDP");
        await fixture.OkAsync(null, "location", "create", "--name", "Lab", "--cidr", "192.168.0.0/16");
        await fixture.OkAsync(null, "location", "delete", "Lab");
        var deleted = await fixture.OkAsync(null, "host", "delete", "vm5");

        Assert.Contains("alice@contoso.test is no longer a member of helpdesk", removed.Output, StringComparison.Ordinal);
        Assert.Contains("Updated host vm5: backend 127.0.0.6:2 over tls, host group prod, aliases five", updated.Output, StringComparison.Ordinal);
        Assert.Contains("is now disabled", disabled.Output, StringComparison.Ordinal);
        Assert.Equal("disabled", policies.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "Require MFA for RDP").GetProperty("state").GetString());
        Assert.Contains("Deleted host vm5", deleted.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Lab", (await fixture.LocalAsync(null, "location", "list")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostTrust_OverApi_RunsOnTheServer_WithTheRightsOfHostUpdate()
    {
        await using var fake = HostTestCommandTests.FakeRdpHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        var created = await fixture.OkAsync(RemoteCliFixture.HostPassword + "\n", "host", "create", "--name", "fake2", "--backend", $"127.0.0.1:{fake.Port}", "--backend-security", "tls",
            "--user-account", "rdpuser", "--user-password-stdin");
        var old = fake.HostKey;
        fake.ChangeKey();
        var reader = await RemoteCliFixture.TokenForAsync(fixture.Server, "reader-trust@contoso.test", "Reader");
        var contributor = await RemoteCliFixture.TokenForAsync(fixture.Server, "contrib-trust@contoso.test", "Contributor");

        var refused = await fixture.RemoteAsync(reader, null, "host", "trust", "fake2", "--fingerprint", fake.HostKey);
        var test = await fixture.RemoteAsync(contributor, null, "host", "test", "fake2");
        var trusted = await fixture.RemoteAsync(contributor, null, "host", "trust", "fake2", "--fingerprint", fake.HostKey);
        var show = JsonDocument.Parse((await fixture.RemoteAsync(reader, null, "host", "show", "fake2", "--output", "json")).Output).RootElement;

        Assert.Contains($"Host key: trusted on first use: {old}", created.Output, StringComparison.Ordinal);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("reader-trust@contoso.test may not do this: No role assignment grants Gatehouse/hosts/write", refused.Error, StringComparison.Ordinal);
        Assert.Equal(1, test.ExitCode);
        Assert.Contains($"backend_certificate_changed: 127.0.0.1:{fake.Port} presented the TLS key {fake.HostKey}, not the trusted {old}", test.Output, StringComparison.Ordinal);
        Assert.True(trusted.ExitCode == 0, trusted.ToString());
        Assert.Contains($"trusted the TLS key {fake.HostKey} in place of {old}", trusted.Output, StringComparison.Ordinal);
        Assert.Equal(fake.HostKey, show.GetProperty("certificatePin").GetString());
        Assert.Equal("host trust", show.GetProperty("certificatePinnedBy").GetString());

        using var openApi = JsonDocument.Parse(await fixture.Server.Client.GetStringAsync("/admin/v1/openapi.json"));
        var operation = openApi.RootElement.GetProperty("paths").GetProperty("/admin/v1/hosts/{name}/trust").GetProperty("post");
        Assert.Equal("Gatehouse/hosts/write", operation.GetProperty("x-gatehouse-action").GetString());
        Assert.True(openApi.RootElement.GetProperty("components").GetProperty("schemas").TryGetProperty("HostTrustRequest", out _));
        await fixture.OkAsync(null, "host", "delete", "fake2");
    }

    [Fact]
    public async Task HostTest_OverApi_RunsOnTheServer()
    {
        await using var fake = HostTestCommandTests.FakeRdpHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        await fixture.OkAsync(RemoteCliFixture.HostPassword + "\n", "host", "create", "--name", "fake1", "--backend", $"127.0.0.1:{fake.Port}", "--backend-security", "tls",
            "--user-account", "rdpuser", "--user-password-stdin");

        var run = await fixture.RemoteAsync(fixture.OwnerToken, null, "host", "test", "fake1");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"host key {fake.HostKey}", run.Output, StringComparison.Ordinal);
        Assert.Contains("user account rdpuser: the stored password decrypts", run.Output, StringComparison.Ordinal);
        Assert.Equal("rdpuser", await fake.Cookie.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await fixture.OkAsync(null, "host", "delete", "fake1");
    }

    [Fact]
    public async Task ConnectCommandAndRdpFile_OverApi_UseTheServersPublicNameAndCertificate()
    {
        var config = Path.Combine(fixture.Server.DataDirectory, "same-as-server.json");
        await File.WriteAllTextAsync(config, """{ "Gatehouse": { "PublicName": "login.gatehouse.test", "RdpPort": 0 } }""");
        string[] connect = ["connect-command", "--host", "VM1-ALT", "--rdp-port", "3390"];
        string[] rdp = ["rdp-file", "--host", "vm1", "--user", "ALICE@contoso.test", "--rdp-port", "3390"];

        var remote = await fixture.RemoteAsync(fixture.OwnerToken, null, connect);
        var local = await fixture.LocalAsync(null, [.. connect, "--config", config]);
        var remoteFile = await fixture.RemoteAsync(fixture.OwnerToken, null, rdp);
        var localFile = await fixture.LocalAsync(null, [.. rdp, "--config", config]);
        var withConfig = await fixture.RemoteAsync(fixture.OwnerToken, null, [.. connect, "--config", config]);

        Assert.Equal("xfreerdp3 /v:vm1-alt.login.gatehouse.test:3390 /sec:aad /azure:ad:login.gatehouse.test\n", remote.Output.ReplaceLineEndings("\n"));
        Assert.Equal(local.Output, remote.Output);
        Assert.Equal(localFile.Output, remoteFile.Output);
        Assert.Contains("username:s:alice@contoso.test", remoteFile.Output, StringComparison.Ordinal);
        var hash = Convert.ToHexString(fixture.Server.App.Services.GetRequiredService<Gatehouse.Hosting.ServerCertificate>().Certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
        Assert.Contains(hash, remote.Error, StringComparison.Ordinal);
        Assert.Equal(1, withConfig.ExitCode);
        Assert.Contains("leave --config out", withConfig.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RealTls_TrustsTheServersCertificate_FromCaCertOrTheSavedLogin()
    {
        var certificate = Path.Combine(fixture.Server.DataDirectory, "tls", "gatehouse.crt");
        var configDirectory = TempDirectory.Create();
        var withToken = new CliEnvironment { ConfigDirectory = configDirectory, Variable = name => name == "GATEHOUSE_TOKEN" ? fixture.OwnerToken : null };

        var untrusted = await CliHarness.RunInAsync(withToken, null, "user", "list", "--server", fixture.ServerAddress);
        var flag = await CliHarness.RunInAsync(withToken, null, "user", "list", "--server", fixture.ServerAddress, "--ca-cert", certificate);
        new CliCredentialStore(configDirectory).Save(new CliCredential
        {
            Server = fixture.ServerAddress,
            User = "owner@contoso.test",
            AccessToken = fixture.OwnerToken,
            ExpiresAt = DateTimeOffset.UtcNow.AddMinutes(30),
            CaCertificatePath = certificate,
        });
        var saved = await CliHarness.RunInAsync(withToken with { Variable = _ => null }, null, "user", "list", "--server", fixture.ServerAddress);

        Assert.Equal(1, untrusted.ExitCode);
        Assert.Contains("--ca-cert FILE", untrusted.Error, StringComparison.Ordinal);
        Assert.True(flag.ExitCode == 0, flag.ToString());
        Assert.Contains("alice@contoso.test", flag.Output, StringComparison.Ordinal);
        Assert.True(saved.ExitCode == 0, saved.ToString());
        Assert.Equal(flag.Output, saved.Output);
    }

    [Fact]
    public async Task GatehouseServerVariable_SelectsTheApi_ExplicitDataWins()
    {
        var environment = fixture.Environment(fixture.OwnerToken) with
        {
            Variable = name => name switch
            {
                "GATEHOUSE_TOKEN" => fixture.OwnerToken,
                "GATEHOUSE_SERVER" => fixture.ServerAddress,
                _ => null,
            },
        };

        var remote = await CliHarness.RunInAsync(environment, null, "host", "test", "nowhere");
        var local = await CliHarness.RunInAsync(environment, null, "host", "test", "nowhere", "--data", fixture.Server.DataDirectory);
        var noTokenRemote = await CliHarness.RunInAsync(environment with { Variable = name => name == "GATEHOUSE_SERVER" ? fixture.ServerAddress : null }, null, "host", "list");

        Assert.Equal(1, remote.ExitCode);
        Assert.Equal(local.Error, remote.Error);
        Assert.Contains("There is no host 'nowhere'", remote.Error, StringComparison.Ordinal);
        Assert.Contains("Not signed in to", noTokenRemote.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoToken_SaysSignIn()
    {
        var run = await fixture.RemoteAsync(null, null, "user", "list");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"Not signed in to {fixture.ServerAddress}: run 'gatehouse login --server {fixture.ServerAddress}'", run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public async Task BadToken_RefusedWithLoginAdvice()
    {
        var parts = fixture.OwnerToken.Split('.');
        var forged = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";

        var run = await fixture.RemoteAsync(forged, null, "host", "list");

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith($"gatehouse host list: Not signed in / token refused by {fixture.ServerAddress}", run.Error, StringComparison.Ordinal);
        Assert.Contains($"run 'gatehouse login --server {fixture.ServerAddress}'", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reader_CanList_CannotCreate_OverCli()
    {
        var reader = await RemoteCliFixture.TokenForAsync(fixture.Server, "reader@contoso.test", "Reader");

        var list = await fixture.RemoteAsync(reader, null, "host", "list", "--output", "json");
        var create = await fixture.RemoteAsync(reader, "pw\n", "host", "create", "--name", "vm7", "--backend", "127.0.0.7:1", "--backend-security", "tls", "--user-account", "u", "--user-password-stdin");
        var group = await fixture.RemoteAsync(reader, null, "group", "create", "readers-group");

        Assert.Equal(0, list.ExitCode);
        Assert.Equal(1, create.ExitCode);
        Assert.Equal("gatehouse host create: reader@contoso.test may not do this: No role assignment grants Gatehouse/hosts/write at /. Ask an Owner to assign a role that includes it. Built-in roles that include it: 'Owner', 'Contributor'.\n",
            create.Error.ReplaceLineEndings("\n"));
        Assert.Contains("Gatehouse/groups/write at /", group.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("vm7", (await fixture.LocalAsync(null, "host", "list")).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DataAccessAdministrator_AssignsUserLogin_NotOwner_OverCli()
    {
        var daa = await RemoteCliFixture.TokenForAsync(fixture.Server, "daa@contoso.test", "Virtual Machine Data Access Administrator");

        var login = await fixture.RemoteAsync(daa, null, "role", "assignment", "create", "--role", "Virtual Machine User Login", "--assignee", "alice@contoso.test", "--scope", "/hosts/vm2");
        var owner = await fixture.RemoteAsync(daa, null, "role", "assignment", "create", "--role", "Owner", "--assignee", "alice@contoso.test", "--scope", "/");

        Assert.True(login.ExitCode == 0, login.ToString());
        Assert.Contains("'Virtual Machine User Login' for alice@contoso.test at /hosts/vm2", login.Output, StringComparison.Ordinal);
        Assert.Equal(1, owner.ExitCode);
        Assert.Contains("daa@contoso.test may not do this: Cannot assign 'Owner'", owner.Error, StringComparison.Ordinal);
        Assert.Contains("may only assign 'Virtual Machine Administrator Login' and 'Virtual Machine User Login'", owner.Error, StringComparison.Ordinal);
        var ownerAssignments = JsonDocument.Parse((await fixture.LocalAsync(null, "role", "assignment", "list", "--assignee", "alice@contoso.test", "--output", "json")).Output).RootElement;
        Assert.DoesNotContain(ownerAssignments.EnumerateArray(), a => a.GetProperty("role").GetString() == "Owner");
        await fixture.OkAsync(null, "role", "assignment", "delete", login.Output.Split(' ')[1].TrimEnd(':'));
    }

    [Fact]
    public async Task Contributor_OverCli_CannotTakeOverRoleHolders_OperatorCan()
    {
        var contributor = await RemoteCliFixture.TokenForAsync(fixture.Server, "contrib-cli@contoso.test", "Contributor");
        await fixture.OkAsync("Carol-Passphrase-1\n", "user", "create", "--upn", "carol@contoso.test", "--password-stdin");
        await fixture.OkAsync(null, "group", "create", "owners-cli");
        await fixture.OkAsync(null, "role", "assignment", "create", "--role", "Owner", "--assignee", "owners-cli", "--scope", "/");

        var password = await fixture.RemoteAsync(contributor, null, "user", "reset-password", "owner@contoso.test");
        var mfa = await fixture.RemoteAsync(contributor, null, "user", "mfa", "reset", "owner@contoso.test");
        var enroll = await fixture.RemoteAsync(contributor, "000000\n", "user", "mfa", "enroll", "owner@contoso.test", "--no-qr");
        var join = await fixture.RemoteAsync(contributor, null, "group", "add-member", "owners-cli", "contrib-cli@contoso.test");
        var loginGroup = await fixture.RemoteAsync(contributor, null, "group", "add-member", "ops", "contrib-cli@contoso.test");
        var alice = await fixture.RemoteAsync(contributor, null, "user", "reset-password", "alice@contoso.test");
        var carol = await fixture.RemoteAsync(contributor, null, "user", "reset-password", "carol@contoso.test");
        var operatorMfa = await fixture.LocalAsync(null, "user", "mfa", "reset", "owner@contoso.test");
        var operatorJoin = await fixture.LocalAsync(null, "group", "add-member", "owners-cli", "carol@contoso.test");
        var operatorLeave = await fixture.LocalAsync(null, "group", "remove-member", "owners-cli", "carol@contoso.test");

        Assert.Equal(1, password.ExitCode);
        Assert.Equal(
            "gatehouse user reset-password: contrib-cli@contoso.test may not reset the password of owner@contoso.test: owner@contoso.test holds 'Owner' at /, and whoever sets its password or MFA method can sign in as it, "
            + "so this needs the right to assign 'Owner' at /. Cannot assign 'Owner' at /: no role assignment grants Gatehouse/roleAssignments/write there. Ask someone who holds 'Owner' at / or a scope above it.\n",
            password.Error.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("Temporary password", password.Output, StringComparison.Ordinal);
        Assert.Equal(1, mfa.ExitCode);
        Assert.Contains("may not reset the MFA of owner@contoso.test: owner@contoso.test holds 'Owner' at /", mfa.Error, StringComparison.Ordinal);
        Assert.Equal(1, enroll.ExitCode);
        Assert.DoesNotContain("otpauth://", enroll.Output, StringComparison.Ordinal);
        Assert.Equal(1, join.ExitCode);
        Assert.Contains("may not add members to owners-cli: owners-cli holds 'Owner' at /", join.Error, StringComparison.Ordinal);
        Assert.Equal(1, loginGroup.ExitCode);
        Assert.Contains("ops holds 'Virtual Machine User Login' at /hosts/vm1", loginGroup.Error, StringComparison.Ordinal);
        Assert.Equal(1, alice.ExitCode);
        Assert.Contains("alice@contoso.test holds 'Virtual Machine User Login' at /hosts/vm1 (through group 'ops')", alice.Error, StringComparison.Ordinal);
        Assert.True(carol.ExitCode == 0, carol.ToString());
        Assert.Contains("Temporary password: ", carol.Output, StringComparison.Ordinal);
        Assert.True(operatorMfa.ExitCode == 0, operatorMfa.ToString());
        Assert.True(operatorJoin.ExitCode == 0, operatorJoin.ToString());
        Assert.True(operatorLeave.ExitCode == 0, operatorLeave.ToString());
        var groups = JsonDocument.Parse((await fixture.LocalAsync(null, "group", "list", "--output", "json")).Output).RootElement;
        var owners = groups.EnumerateArray().Single(g => g.GetProperty("name").GetString() == "owners-cli");
        Assert.Empty(owners.GetProperty("members").EnumerateArray());
    }

    [Fact]
    public async Task HostUpdate_NewBackend_OverCliAndOnTheStore_NeedsBothPasswordsAgain()
    {
        var contributor = await RemoteCliFixture.TokenForAsync(fixture.Server, "contrib-hosts@contoso.test", "Contributor");
        await fixture.OkAsync("Old-Admin-Pw\nOld-User-Pw\n", "host", "create", "--name", "vm6", "--backend", "127.0.0.60:1", "--backend-security", "tls",
            "--admin-account", "Administrator", "--admin-password-stdin", "--user-account", "rdpuser", "--user-password-stdin");

        var remote = await fixture.RemoteAsync(contributor, null, "host", "update", "vm6", "--backend", "203.0.113.66:3389");
        var onlyUser = await fixture.RemoteAsync(contributor, "Guess\n", "host", "update", "vm6", "--backend-security", "nla", "--user-password-stdin");
        var local = await fixture.LocalAsync(null, "host", "update", "vm6", "--backend", "203.0.113.66:3389");
        var aliasOnly = await fixture.RemoteAsync(contributor, null, "host", "update", "vm6", "--alias", "six");
        var file = Path.Combine(fixture.Server.DataDirectory, "vm6-user.txt");
        await File.WriteAllTextAsync(file, "New-User-Pw\n");
        var accepted = await fixture.RemoteAsync(contributor, "New-Admin-Pw\n", "host", "update", "vm6", "--backend", "127.0.0.61:2", "--admin-password-stdin", "--user-password-file", file);

        Assert.Equal(1, remote.ExitCode);
        Assert.Contains("Changing the backend address, port or security of vm6 sends the stored account passwords to the new backend", remote.Error, StringComparison.Ordinal);
        Assert.Contains("--admin-password-stdin or --admin-password-file FILE", remote.Error, StringComparison.Ordinal);
        Assert.Contains("--user-password-stdin or --user-password-file FILE", remote.Error, StringComparison.Ordinal);
        Assert.Equal(1, onlyUser.ExitCode);
        Assert.Contains("re-enter the admin account Administrator's", onlyUser.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("rdpuser", onlyUser.Error, StringComparison.Ordinal);
        Assert.Equal(1, local.ExitCode);
        Assert.Equal(remote.Error, local.Error);
        Assert.True(aliasOnly.ExitCode == 0, aliasOnly.ToString());
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Contains("Updated host vm6: backend 127.0.0.61:2 over tls", accepted.Output, StringComparison.Ordinal);
        await using var services = fixture.Server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = (await directory.FindHostByLabelAsync(tenant.Id, "vm6"))!;
        Assert.Equal("New-Admin-Pw", directory.UnprotectHostSecret(host.AdminSecretProtected!));
        Assert.Equal("New-User-Pw", directory.UnprotectHostSecret(host.UserSecretProtected!));
        await fixture.OkAsync(null, "host", "delete", "vm6");
    }

    [Theory]
    [InlineData("GET", "/hosts/{0}")]
    [InlineData("DELETE", "/hosts/{0}")]
    [InlineData("GET", "/hosts/{0}/connection")]
    public async Task HostScopedCaller_SameAnswer_ForHiddenAndAbsentHosts(string method, string path)
    {
        var scoped = await RemoteCliFixture.TokenForAsync(fixture.Server, "vm1user@contoso.test", "Virtual Machine User Login", "/hosts/vm1");

        var hidden = await SendAsync(scoped, method, string.Format(System.Globalization.CultureInfo.InvariantCulture, path, "vm2"));
        var absent = await SendAsync(scoped, method, string.Format(System.Globalization.CultureInfo.InvariantCulture, path, "vm3"));
        var ownerAbsent = await SendAsync(fixture.OwnerToken, "GET", "/hosts/vm3");
        var own = await SendAsync(scoped, "GET", "/hosts/vm1");

        Assert.Equal(HttpStatusCode.Forbidden, hidden.Status);
        Assert.Equal(hidden.Status, absent.Status);
        Assert.Equal(hidden.Detail!.Replace("vm2", "NAME", StringComparison.Ordinal), absent.Detail!.Replace("vm3", "NAME", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, ownerAbsent.Status);
        Assert.Equal(HttpStatusCode.OK, own.Status);
    }

    [Fact]
    public async Task HostScopedCaller_OverCli_SameSentenceForHiddenAndAbsentHosts()
    {
        var scoped = await RemoteCliFixture.TokenForAsync(fixture.Server, "vm1user@contoso.test", "Virtual Machine User Login", "/hosts/vm1");

        var hidden = await fixture.RemoteAsync(scoped, null, "host", "show", "vm2");
        var absent = await fixture.RemoteAsync(scoped, null, "host", "show", "vm3");

        Assert.Equal(1, hidden.ExitCode);
        Assert.Contains("No role assignment grants Gatehouse/hosts/read at /hosts/vm2", hidden.Error, StringComparison.Ordinal);
        Assert.Equal(hidden.Error.Replace("vm2", "vm3", StringComparison.Ordinal), absent.Error);
    }

    [Fact]
    public async Task CallerWithoutUserRead_SameAnswer_ForKnownAndUnknownAssignee()
    {
        var scoped = await RemoteCliFixture.TokenForAsync(fixture.Server, "vm1user@contoso.test", "Virtual Machine User Login", "/hosts/vm1");

        var known = await fixture.RemoteAsync(scoped, null, "role", "assignment", "list", "--assignee", "alice@contoso.test");
        var unknown = await fixture.RemoteAsync(scoped, null, "role", "assignment", "list", "--assignee", "nobody@contoso.test");
        var owner = await fixture.RemoteAsync(fixture.OwnerToken, null, "role", "assignment", "list", "--assignee", "nobody@contoso.test");

        Assert.Equal(1, known.ExitCode);
        Assert.Contains("No role assignment grants Gatehouse/roleAssignments/read at /", known.Error, StringComparison.Ordinal);
        Assert.Equal(known.Error, unknown.Error);
        Assert.Contains("There is no user 'nobody@contoso.test'", owner.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenApi_ListsEveryOperationTheCliUses()
    {
        using var response = await fixture.Server.Client.GetAsync("/admin/v1/openapi.json");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = json.RootElement.GetProperty("paths");
        var expected = new (string Path, string Method)[]
        {
            ("/admin/v1/users/{upn}", "get"), ("/admin/v1/users/{upn}/resetPassword", "post"), ("/admin/v1/users/{upn}/mfa/enroll", "post"),
            ("/admin/v1/users/{upn}/mfa/confirm", "post"), ("/admin/v1/users/{upn}/mfa", "delete"),
            ("/admin/v1/groups", "get"), ("/admin/v1/groups", "post"), ("/admin/v1/groups/{name}/members", "post"), ("/admin/v1/groups/{name}/members/{member}", "delete"),
            ("/admin/v1/hosts/{name}", "patch"), ("/admin/v1/hosts/{name}/test", "post"), ("/admin/v1/hosts/{name}/connection", "get"),
            ("/admin/v1/roleDefinitions", "post"), ("/admin/v1/roleDefinitions/{name}", "delete"),
            ("/admin/v1/policies/{name}", "put"), ("/admin/v1/policies/{name}/state", "post"), ("/admin/v1/policies/{name}", "get"),
            ("/admin/v1/namedLocations", "get"), ("/admin/v1/namedLocations", "post"), ("/admin/v1/namedLocations/{name}", "delete"),
            ("/admin/v1/diagnose", "post"),
        };
        foreach (var (path, method) in expected)
        {
            Assert.True(paths.TryGetProperty(path, out var item) && item.TryGetProperty(method, out _), $"{method} {path} missing");
        }

        Assert.Contains("403 with the same detail whether the resource exists or not", json.RootElement.GetProperty("info").GetProperty("description").GetString(), StringComparison.Ordinal);
        Assert.Equal("Gatehouse/hosts/test/action", paths.GetProperty("/admin/v1/hosts/{name}/test").GetProperty("post").GetProperty("x-gatehouse-action").GetString());
    }

    private async Task<(HttpStatusCode Status, string? Detail)> SendAsync(string token, string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), "/admin/v1" + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await fixture.Server.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var json = text.Length == 0 ? null : JsonDocument.Parse(text);
        return (response.StatusCode, json is not null && json.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() : null);
    }
}
