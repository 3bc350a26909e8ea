using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Gatehouse.Cli;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// A running server whose store holds hostile names: sign-in rows with the names clients typed (ESC and OSC sequences,
/// BEL, NUL, U+202E, a CR LF that would draw a fake table row) and, as a store written before names were checked could,
/// a user, a group and a policy with such names.
/// </summary>
public sealed class HostileTextFixture : IAsyncLifetime
{
    /// <summary>The sign-in page's example: red text and a window title change.</summary>
    public const string EscUser = "x\u001b[31mevil\u001b]0;owned\u0007@contoso.test";

    /// <summary>A name whose CR LF would start a new table row.</summary>
    public const string FakeRowUser = "mallory@contoso.test\r\nFAKE ROW success@contoso.test";

    /// <summary>NUL and a right-to-left override (the name would read backwards).</summary>
    public const string NulRloUser = "nul\0x\u202etset.osotnoc@eve";

    public const string LegacyUpn = "eve\u001b[2J\u202e@contoso.test";
    public const string LegacyDisplayName = "Eve\r\nFAKE ROW\u001b]0;owned\u0007\0";
    public const string LegacyGroup = "ops\u001b[8m\u202e\0";
    public const string LegacyPolicy = "MFA\u001b[31m\u202e\r\nFAKE";

    internal TestServer Server { get; private set; } = null!;

    internal string OwnerToken { get; private set; } = null!;

    internal Dictionary<string, long> Sequences { get; } = [];

    public async Task InitializeAsync()
    {
        Server = await TestServer.StartAsync();
        OwnerToken = await RemoteCliFixture.TokenForAsync(Server, "owner@contoso.test", "Owner");
        await using var scope = Server.App.Services.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var directory = services.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");

        var log = services.GetRequiredService<SignInLogService>();
        foreach (var user in new[] { EscUser, FakeRowUser, NulRloUser })
        {
            var row = await log.AppendAsync(new SignInEntry
            {
                TenantId = tenant.Id,
                CorrelationId = "conn-" + Sequences.Count.ToString(CultureInfo.InvariantCulture),
                Protocol = "browser",
                Succeeded = false,
                Reason = $"unknown_user: there is no user '{user}' in tenant 'common'",
                UserPrincipalName = user,
                HostName = "vm1",
            });
            Sequences[user] = row.Sequence;
        }

        // Names as a store written before names were checked may hold them (the directory itself does not check).
        var (legacy, _) = await directory.CreateUserAsync(tenant.Id, LegacyUpn, LegacyDisplayName, "Legacy-Passw0rd-1", temporary: false);
        var group = await directory.CreateGroupAsync(tenant.Id, LegacyGroup);
        await directory.AddGroupMemberAsync(group.Id, legacy.Id);
        var db = services.GetRequiredService<GatehouseDbContext>();
        var id = Guid.NewGuid();
        db.Policies.Add(new PolicyRecord
        {
            Id = id,
            TenantId = tenant.Id,
            DisplayName = LegacyPolicy,
            NormalizedName = DirectoryService.NormalizeName(LegacyPolicy),
            State = "enabled",
            Json = JsonSerializer.Serialize(new
            {
                id,
                displayName = LegacyPolicy,
                state = "enabled",
                conditions = new { users = new { includeUsers = new[] { "All" } } },
                grantControls = new { @operator = "OR", builtInControls = new[] { "mfa" } },
            }),
            CreatedAt = DateTimeOffset.UtcNow,
            ModifiedAt = DateTimeOffset.UtcNow,
        });
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();

    internal Task<CliRun> RunAsync(bool remote, string? stdin, params string[] args) => remote
        ? CliHarness.RunInAsync(
            new CliEnvironment
            {
                HttpHandler = Server.CreateHandler(),
                ConfigDirectory = TempDirectory.Create(),
                Variable = name => name == "GATEHOUSE_TOKEN" ? OwnerToken : null,
            },
            stdin,
            [.. args, "--server", Server.BaseAddress.GetLeftPart(UriPartial.Authority)])
        : CliHarness.RunRawAsync(stdin, [.. args, "--data", Server.DataDirectory]);
}

/// <summary>
/// Issue 15 item 3: no hostile name reaches a terminal raw (every table, <c>show</c> and sentence of the CLI, on the store
/// and over the admin API), JSON output stays valid and exact, and names an administrator gives are refused when they
/// hold such characters or are too long, through the CLI (both modes) and the API.
/// </summary>
public sealed class HostileTextTests(HostileTextFixture fixture) : IClassFixture<HostileTextFixture>
{
    public static TheoryData<bool> Modes() => [false, true];

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task SigninsList_HostileUserNames_EscapedAndNoFakeRow(bool remote)
    {
        var run = await OkAsync(remote, "signins", "list");

        AssertNoRawUnsafe(run);
        Assert.Contains(@"x\x1b[31mevil\x1b]0;owned\x07@contoso.test", run.Output, StringComparison.Ordinal);
        Assert.Contains(@"nul\x00x\u202etset.osotnoc@eve", run.Output, StringComparison.Ordinal);

        // The CR LF is written out inside its cell: the line that shows "FAKE ROW" is the row that holds the whole name.
        var lines = run.Output.Split('\n').Where(l => l.Contains("FAKE ROW", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(lines);
        Assert.All(lines, l => Assert.Contains(@"mallory@contoso.test\r\nFAKE ROW", l, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task SigninsShow_HostileUserNames_Escaped(bool remote)
    {
        foreach (var (user, sequence) in fixture.Sequences)
        {
            var run = await OkAsync(remote, "signins", "show", sequence.ToString(CultureInfo.InvariantCulture));

            AssertNoRawUnsafe(run);
            Assert.Contains("User:", run.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("\nFAKE ROW", run.Output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task SigninsListJson_HostileUserNames_ValidJsonWithTheExactNames(bool remote)
    {
        var run = await OkAsync(remote, "signins", "list", "--output", "json");

        AssertNoRawUnsafe(run);
        using var json = JsonDocument.Parse(run.Output);
        var users = json.RootElement.EnumerateArray().Select(r => r.GetProperty("user").GetString()).ToList();
        Assert.Contains(HostileTextFixture.EscUser, users);
        Assert.Contains(HostileTextFixture.FakeRowUser, users);
        Assert.Contains(HostileTextFixture.NulRloUser, users);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task UserListAndShow_HostileLegacyNames_Escaped(bool remote)
    {
        var list = await OkAsync(remote, "user", "list");
        var show = await OkAsync(remote, "user", "show", HostileTextFixture.LegacyUpn);
        var json = await OkAsync(remote, "user", "show", HostileTextFixture.LegacyUpn, "--output", "json");

        foreach (var run in new[] { list, show, json })
        {
            AssertNoRawUnsafe(run);
        }

        Assert.Contains(@"eve\x1b[2J\u202e@contoso.test", list.Output, StringComparison.Ordinal);
        Assert.Contains(@"Eve\r\nFAKE ROW\x1b]0;owned\x07\x00", list.Output, StringComparison.Ordinal);
        Assert.Contains(@"Eve\r\nFAKE ROW\x1b]0;owned\x07\x00", show.Output, StringComparison.Ordinal);
        Assert.Contains(@"ops\x1b[8m\u202e\x00", show.Output, StringComparison.Ordinal);
        using var document = JsonDocument.Parse(json.Output);
        Assert.Equal(HostileTextFixture.LegacyDisplayName, document.RootElement.GetProperty("displayName").GetString());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task GroupList_HostileLegacyName_Escaped(bool remote)
    {
        var run = await OkAsync(remote, "group", "list");

        AssertNoRawUnsafe(run);
        Assert.Contains(@"ops\x1b[8m\u202e\x00", run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task PolicyListAndWhatIf_HostileLegacyNames_Escaped(bool remote)
    {
        var list = await OkAsync(remote, "policy", "list");
        var whatIf = await OkAsync(remote, "policy", "what-if", "--user", HostileTextFixture.LegacyUpn, "--host", "vm1");
        var show = await OkAsync(remote, "policy", "show", HostileTextFixture.LegacyPolicy);

        foreach (var run in new[] { list, whatIf, show })
        {
            AssertNoRawUnsafe(run);
        }

        Assert.Contains(@"MFA\x1b[31m\u202e\r\nFAKE", list.Output, StringComparison.Ordinal);
        Assert.Contains(@"MFA\x1b[31m\u202e\r\nFAKE", whatIf.Output, StringComparison.Ordinal);
        Assert.Contains(@"What if eve\x1b[2J\u202e@contoso.test signs in to vm1", whatIf.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task UnknownHostileName_ErrorSentence_Escaped(bool remote)
    {
        var run = await fixture.RunAsync(remote, null, "user", "show", "nobody\u001b[31m\u202e@contoso.test");

        Assert.Equal(1, run.ExitCode);
        AssertNoRawUnsafe(run);
        Assert.Contains(@"nobody\x1b[31m\u202e@contoso.test", run.Error, StringComparison.Ordinal);
    }

    public static TheoryData<bool, string?, string[], string> RefusedCreates()
    {
        var data = new TheoryData<bool, string?, string[], string>();
        foreach (var remote in new[] { false, true })
        {
            data.Add(remote, "Pw-Zebra-Okapi-1\n", ["user", "create", "--upn", "x\u001b[31mevil@contoso.test", "--password-stdin"], "U+001B");
            data.Add(remote, "Pw-Zebra-Okapi-1\n", ["user", "create", "--upn", "bob\u202e@contoso.test", "--password-stdin"], "U+202E");
            data.Add(remote, "Pw-Zebra-Okapi-1\n", ["user", "create", "--upn", new string('b', 65) + "@contoso.test", "--password-stdin"], "the most is 64");
            data.Add(remote, "Pw-Zebra-Okapi-1\n", ["user", "create", "--upn", "carl@contoso.test", "--display-name", "Carl\r\nFAKE ROW", "--password-stdin"], "U+000D");
            data.Add(remote, "Pw-Zebra-Okapi-1\n", ["user", "create", "--upn", "dave@contoso.test", "--display-name", new string('d', 60_000), "--password-stdin"], "60000 characters long; the most is 256");
            data.Add(remote, null, ["group", "create", new string('g', 10_000)], "10000 characters long; the most is 256");
            data.Add(remote, null, ["group", "create", "ops\u202e"], "U+202E");
            data.Add(remote, null, ["group", "create", "ops\0"], "U+0000");
            data.Add(remote, null, ["location", "create", "--name", "Office\r\nFAKE", "--cidr", "10.0.0.0/8"], "U+000D");
            data.Add(remote, "Host-Pw-1\n", ["host", "create", "--name", "vm7", "--backend", "127.0.0.1:3389", "--backend-security", "tls", "--user-account", "WORK\\rdp\u001buser", "--user-password-stdin"], "U+001B");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(RefusedCreates))]
    public async Task Create_HostileOrOverlongName_RefusedWithSentence(bool remote, string? stdin, string[] args, string sentence)
    {
        var run = await fixture.RunAsync(remote, stdin, args);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Contains(sentence, run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, run.Output);
        AssertNoRawUnsafe(run);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public async Task PolicyAndRoleCreate_HostileOrOverlongText_Refused(bool remote)
    {
        var directory = TempDirectory.Create();
        var cases = new (string Kind, string Json, string Sentence)[]
        {
            ("policy", """{ "displayName": "MFA\u001b[31m", "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }""", "U+001B"),
            ("policy", $$"""{ "displayName": "{{new string('p', 300)}}", "state": "enabled", "conditions": { "users": { "includeUsers": ["All"] } }, "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }""", "300 characters long; the most is 256"),
            ("policy", """{ "displayName": "Spray", "state": "enabled", "conditions": { "users": { "includeUsers": ["eve\u202e@contoso.test"] } }, "grantControls": { "operator": "OR", "builtInControls": ["mfa"] } }""", "U+202E"),
            ("role", """{ "name": "Helpdesk\u0007", "dataActions": ["Gatehouse/hosts/login/action"] }""", "U+0007"),
            ("role", $$"""{ "name": "Helpdesk", "description": "{{new string('r', 5000)}}", "dataActions": ["Gatehouse/hosts/login/action"] }""", "5000 characters long; the most is 1024"),
        };

        foreach (var (kind, json, sentence) in cases)
        {
            var file = Path.Combine(directory, Guid.NewGuid().ToString("N") + ".json");
            await File.WriteAllTextAsync(file, json);
            string[] args = kind == "policy" ? ["policy", "create", "--file", file] : ["role", "definition", "create", "--file", file];

            var run = await fixture.RunAsync(remote, null, args);

            Assert.True(run.ExitCode == 1, $"{json}: {run}");
            Assert.Contains(sentence, run.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AdminApi_CreateWithHostileOrOverlongName_400()
    {
        var bodies = new (string Path, object Body, string Sentence)[]
        {
            ("/users", new { userPrincipalName = "x\u001b[31m@contoso.test", password = "Pw-Zebra-Okapi-1" }, "U+001B"),
            ("/users", new { userPrincipalName = "erin@contoso.test", displayName = new string('e', 60_000), password = "Pw-Zebra-Okapi-1" }, "60000 characters long"),
            ("/groups", new { name = new string('g', 10_000) }, "10000 characters long"),
            ("/groups", new { name = "admins\u202e" }, "U+202E"),
        };

        foreach (var (path, body, sentence) in bodies)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/v1" + path) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.OwnerToken);
            using var response = await fixture.Server.Client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();

            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path}: {response.StatusCode} {text}");
            using var problem = JsonDocument.Parse(text);
            Assert.Contains(sentence, problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        var users = await fixture.RunAsync(false, null, "user", "list", "--output", "json");
        Assert.DoesNotContain("erin@contoso.test", users.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_NamesAtTheCaps_Accepted()
    {
        var upn = new string('u', 64) + "@contoso.test";
        await OkWithInputAsync(false, "Pw-Zebra-Okapi-1\n", "user", "create", "--upn", upn, "--display-name", "Zoë Ångström – 山田 " + new string('z', 200), "--password-stdin");
        await OkWithInputAsync(true, null, "group", "create", new string('G', 256));
    }

    [Fact]
    public async Task LoginStatusAndLogout_SavedUserWithHostileName_Escaped()
    {
        // What a server (or an edited credentials file) could put into the saved sign-in's user name.
        var environment = new CliEnvironment { ConfigDirectory = TempDirectory.Create(), Variable = _ => null };
        CliCredentialStore.For(environment).Save(new CliCredential
        {
            Server = "https://127.0.0.1:1",
            User = "eve\u001b[31m\u202e\r\nFAKE@contoso.test",
            AccessToken = "not-a-token",
            ExpiresAt = DateTimeOffset.UtcNow.AddHours(1),
        });

        var status = await CliHarness.RunInAsync(environment, null, "login", "--status");
        var logout = await CliHarness.RunInAsync(environment, null, "logout", "--server", "https://127.0.0.1:1", "--local");

        Assert.Equal(0, status.ExitCode);
        Assert.Equal(0, logout.ExitCode);
        AssertNoRawUnsafe(status);
        AssertNoRawUnsafe(logout);
        Assert.Contains(@"eve\x1b[31m\u202e\r\nFAKE@contoso.test", status.Output, StringComparison.Ordinal);
        Assert.Contains(@"eve\x1b[31m\u202e\r\nFAKE@contoso.test", logout.Output, StringComparison.Ordinal);
    }

    private async Task<CliRun> OkAsync(bool remote, params string[] args) => await OkWithInputAsync(remote, null, args);

    private async Task<CliRun> OkWithInputAsync(bool remote, string? stdin, params string[] args)
    {
        var run = await fixture.RunAsync(remote, stdin, args);
        Assert.True(run.ExitCode == 0, $"gatehouse {string.Join(' ', args)} ({(remote ? "--server" : "--data")}) failed: {run}");
        return run;
    }

    /// <summary>No control character but the line feed, no format character (bidi, zero-width…), no line or paragraph separator.</summary>
    private static void AssertNoRawUnsafe(CliRun run)
    {
        foreach (var (stream, text) in new[] { ("stdout", run.Output), ("stderr", run.Error) })
        {
            for (var i = 0; i < text.Length; i++)
            {
                var c = text[i];
                var category = char.GetUnicodeCategory(c);
                var bad = (category == UnicodeCategory.Control && c != '\n')
                    || category is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;
                Assert.False(bad, $"{stream} holds U+{(int)c:X4} at {i}: {text}");
            }
        }
    }
}
