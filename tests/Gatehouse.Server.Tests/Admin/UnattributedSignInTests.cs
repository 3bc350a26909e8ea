using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Admin;

/// <summary>
/// A running server whose store already held sign-in rows without a tenant (written before the server's first run, as
/// rows were before every attempt was attributed), then gateway attempts the gateway cannot attribute itself: an unknown
/// user of contoso.test, a <c>CONTOSO\alice</c> name at host vm1, a refused negotiation with no name, and an unknown
/// user of a second tenant's domain (fabrikam.test).
/// </summary>
public sealed class UnattributedSignInFixture : IAsyncLifetime
{
    private CliHarness? harness;

    internal TestServer Server { get; private set; } = null!;

    /// <summary>Reader at / of contoso.test (the default tenant).</summary>
    internal string ReaderToken { get; private set; } = null!;

    /// <summary>Reader at /hosts/vm1 only.</summary>
    internal string HostReaderToken { get; private set; } = null!;

    /// <summary>Reader at / of fabrikam.test.</summary>
    internal string FabrikamReaderToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // Rows written while the store had no tenant: they carry the empty tenant, like the rows of earlier versions.
        var cli = await CliHarness.CreateAsync(withTenant: false);
        harness = cli;
        await using (var store = await cli.OpenStoreAsync())
        {
            await store.Get<SignInLogService>().AppendAsync(new SignInEntry
            {
                TenantId = Guid.Empty,
                CorrelationId = "legacy-1",
                Protocol = "nla",
                Succeeded = false,
                Reason = "unknown_user: no user legacy-spray@contoso.test",
                UserPrincipalName = "legacy-spray@contoso.test",
            });
        }

        Server = await TestServer.StartAsync(cli.DataDirectory);
        await using (var scope = Server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var contoso = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
            await directory.CreateHostAsync(contoso.Id, "vm1", "127.0.0.1", 1, Gatehouse.Storage.BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
            await directory.CreateTenantAsync("Fabrikam", "fabrikam.test");
        }

        ReaderToken = await TokenForAsync(Server, "reader@contoso.test", "Reader", "/");
        HostReaderToken = await TokenForAsync(Server, "hostreader@contoso.test", "Reader", "/hosts/vm1");
        FabrikamReaderToken = await TokenForAsync(Server, "reader@fabrikam.test", "Reader", "/");

        var log = Server.App.Services.GetRequiredService<IGatewaySignInLog>();
        await log.WriteAsync(Event("conn-mallory", "unknown_user: no user mallory@contoso.test", "mallory@contoso.test", null, "nla"), CancellationToken.None);
        await log.WriteAsync(Event("conn-domain", @"not_a_work_account: 'CONTOSO\alice' is not a work account name", @"CONTOSO\alice", "vm1", "nla"), CancellationToken.None);
        await log.WriteAsync(Event("conn-nego", "negotiation_refused: the client offers only standard RDP security", null, null, "rdp"), CancellationToken.None);
        await log.WriteAsync(Event("conn-fabrikam", "unknown_user: no user mallory@fabrikam.test", "mallory@fabrikam.test", null, "nla"), CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await harness!.DisposeAsync();
    }

    internal Task<CliRun> RemoteAsync(string token, params string[] args) => CliHarness.RunInAsync(
        new Gatehouse.Cli.CliEnvironment
        {
            HttpHandler = Server.CreateHandler(),
            ConfigDirectory = TempDirectory.Create(),
            Variable = name => name == "GATEHOUSE_TOKEN" ? token : null,
        },
        null,
        [.. args, "--server", Server.BaseAddress.GetLeftPart(UriPartial.Authority)]);

    internal Task<CliRun> LocalAsync(params string[] args) => CliHarness.RunRawAsync(null, [.. args, "--data", Server.DataDirectory]);

    /// <summary>Runs the command on the store (the operator) or over the API with <paramref name="token"/>.</summary>
    internal async Task<CliRun> OkAsync(string? token, params string[] args)
    {
        var run = token is null ? await LocalAsync(args) : await RemoteAsync(token, args);
        Assert.True(run.ExitCode == 0, $"gatehouse {string.Join(' ', args)} failed: {run}");
        return run;
    }

    private static GatewaySignInEvent Event(string connection, string reason, string? user, string? host, string protocol) => new()
    {
        ConnectionId = connection,
        ClientAddress = IPAddress.Parse("192.0.2.7"),
        Protocol = protocol,
        Succeeded = false,
        Reason = reason,
        Code = "0xC000006D",
        UserPrincipalName = user,
        HostName = host,
    };

    /// <summary>A user of the tenant of <paramref name="upn"/>'s domain holding <paramref name="role"/> at <paramref name="scope"/>, and an admin API token for them.</summary>
    private static async Task<string> TokenForAsync(TestServer server, string upn, string role, string scope)
    {
        await using var services = server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(upn[(upn.IndexOf('@', StringComparison.Ordinal) + 1)..]))!;
        var user = (await directory.CreateUserAsync(tenant.Id, upn, upn, "Pw-" + Guid.NewGuid().ToString("N"), temporary: false)).User;
        await services.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, role, upn, scope);
        return await services.ServiceProvider.GetRequiredService<AdminTokenService>().IssueAsync(user, ["pwd"], "gatehouse-cli");
    }
}

/// <summary>
/// Issue 15 item 2: sign-in rows of unknown users and domains, refused name forms and refused negotiations are in
/// <c>signins list</c>/<c>show</c> (and <c>--result failure</c>) for the operator and for readers at <c>/</c>, over the
/// admin API too; rows without a tenant are marked; another tenant's rows and callers without rights at <c>/</c> see
/// nothing; the hash chain stays intact.
/// </summary>
public sealed class UnattributedSignInTests(UnattributedSignInFixture fixture) : IClassFixture<UnattributedSignInFixture>
{
    public static TheoryData<string> Callers() => ["operator", "reader"];

    private string? Token(string caller) => caller == "operator" ? null : fixture.ReaderToken;

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task SigninsListUser_UnknownUser_Shown(string caller)
    {
        var run = await fixture.OkAsync(Token(caller), "signins", "list", "--user", "mallory@contoso.test", "--output", "json");

        var row = Assert.Single(Rows(run));
        Assert.Equal("mallory@contoso.test", row.GetProperty("user").GetString());
        Assert.StartsWith("unknown_user:", row.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.False(row.GetProperty("unknownTenant").GetBoolean());

        var table = await fixture.OkAsync(Token(caller), "signins", "list", "--user", "mallory@contoso.test");
        Assert.Contains("mallory@contoso.test", table.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("(none)", table.Output, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task SigninsShow_UnknownUserAndDomainForm_Shown(string caller)
    {
        foreach (var user in new[] { "mallory@contoso.test", @"CONTOSO\alice" })
        {
            var sequence = await SequenceOfAsync(user);

            var run = await fixture.OkAsync(Token(caller), "signins", "show", sequence);

            Assert.Contains(user, run.Output, StringComparison.Ordinal);
            Assert.Contains("Result:", run.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("There is no sign-in", run.Error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task SigninsListFailure_ShowsTheTenantsAndTheUnattributedRows_NotAnotherTenants(string caller)
    {
        var run = await fixture.OkAsync(Token(caller), "signins", "list", "--result", "failure", "--output", "json");

        var rows = Rows(run);
        var correlations = rows.Select(r => r.GetProperty("correlationId").GetString()).ToList();
        Assert.Contains("conn-mallory", correlations);
        Assert.Contains("conn-domain", correlations);
        Assert.Contains("conn-nego", correlations);
        Assert.Contains("legacy-1", correlations);
        Assert.DoesNotContain("conn-fabrikam", correlations);
        Assert.All(rows, r => Assert.Equal("failure", r.GetProperty("result").GetString()));
    }

    [Theory]
    [MemberData(nameof(Callers))]
    public async Task Signins_RowWithoutTenant_ShownMarkedUnknownTenant(string caller)
    {
        var table = await fixture.OkAsync(Token(caller), "signins", "list", "--user", "legacy-spray@contoso.test");
        Assert.Contains("legacy-spray@contoso.test (unknown tenant)", table.Output, StringComparison.Ordinal);

        var json = Assert.Single(Rows(await fixture.OkAsync(Token(caller), "signins", "list", "--user", "legacy-spray@contoso.test", "--output", "json")));
        Assert.True(json.GetProperty("unknownTenant").GetBoolean());

        var show = await fixture.OkAsync(Token(caller), "signins", "show", json.GetProperty("sequence").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("Tenant:", show.Output, StringComparison.Ordinal);
        Assert.Contains("unknown", show.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signins_OtherTenantsReader_SeesItsOwnAndTheUnattributedRows_NotThisTenants()
    {
        var rows = Rows(await fixture.OkAsync(fixture.FabrikamReaderToken, "signins", "list", "--result", "failure", "--output", "json"));
        var correlations = rows.Select(r => r.GetProperty("correlationId").GetString()).ToList();

        Assert.Contains("conn-fabrikam", correlations);
        Assert.Contains("legacy-1", correlations);
        Assert.DoesNotContain("conn-mallory", correlations);
        Assert.DoesNotContain("conn-domain", correlations);
        Assert.DoesNotContain("conn-nego", correlations);

        var mallory = await fixture.RemoteAsync(fixture.FabrikamReaderToken, "signins", "show", await SequenceOfAsync("mallory@contoso.test"));
        Assert.Equal(1, mallory.ExitCode);
        Assert.Contains("There is no sign-in", mallory.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Signins_CallerWithoutRightsAtRoot_SeesNone()
    {
        var list = await fixture.RemoteAsync(fixture.HostReaderToken, "signins", "list", "--user", "mallory@contoso.test");
        var show = await fixture.RemoteAsync(fixture.HostReaderToken, "signins", "show", await SequenceOfAsync("mallory@contoso.test"));

        foreach (var run in new[] { list, show })
        {
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("Gatehouse/signIns/read at /", run.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("mallory", run.Output, StringComparison.Ordinal);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/signIns?user=mallory%40contoso.test&result=failure");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.HostReaderToken);
        using var response = await fixture.Server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain("mallory", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AdminApi_ListSignInsByUser_UnknownUser_Returned()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/v1/signIns?user=mallory%40contoso.test");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fixture.ReaderToken);
        using var response = await fixture.Server.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        Assert.Equal("mallory@contoso.test", Assert.Single(json.RootElement.EnumerateArray()).GetProperty("user").GetString());
    }

    [Fact]
    public async Task SigninsVerify_AfterAttributedAndUnattributedRows_Intact()
    {
        var run = await fixture.OkAsync(null, "signins", "verify");

        Assert.Contains("The sign-in log is intact", run.Output, StringComparison.Ordinal);
    }

    private async Task<string> SequenceOfAsync(string user)
    {
        await using var scope = fixture.Server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Gatehouse.Storage.GatehouseDbContext>();
        var sequence = db.SignIns.Where(s => s.UserPrincipalName == user).Select(s => s.Sequence).Single();
        return sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<JsonElement> Rows(CliRun run)
    {
        using var json = JsonDocument.Parse(run.Output);
        return [.. json.RootElement.EnumerateArray().Select(e => e.Clone())];
    }
}
