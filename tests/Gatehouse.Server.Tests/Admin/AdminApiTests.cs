using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Admin;

/// <summary>The admin REST API on the real host: bearer tokens from the IdP's keys, RBAC at the resource's scope, problem+json.</summary>
public sealed class AdminApiTests
{
    private const string HostPassword = "Host-Secret-Okapi-1";

    /// <summary>Creates a user holding <paramref name="role"/> at <paramref name="scope"/> (or none) and returns an admin API token for them.</summary>
    private static async Task<string> TokenForAsync(TestServer server, string upn, string? role, string scope = "/")
    {
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

    private static HttpRequestMessage Request(HttpMethod method, string path, string? token, object? body = null)
    {
        var request = new HttpRequestMessage(method, "/admin/v1" + path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return request;
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(response.Content.Headers.ContentLength);
        using var json = JsonDocument.Parse(text);
        Assert.Equal((int)expected, json.RootElement.GetProperty("status").GetInt32());
        return json.RootElement.Clone();
    }

    private static object VmHost(string name, string? hostGroup = null) => new
    {
        name,
        backendHost = "127.0.0.5",
        backendPort = 1,
        backendSecurity = "tls",
        hostGroup,
        userAccount = "rdpuser",
        userPassword = HostPassword,
    };

    [Fact]
    public async Task Unauthenticated_Or_ForeignToken_Is401WithProblem()
    {
        await using var server = await TestServer.StartAsync();

        using var none = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts", null));
        var problem = await ProblemAsync(none, HttpStatusCode.Unauthorized);
        Assert.Contains("Authorization: Bearer", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("Bearer", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        // A token with the right shape but signed by a key the IdP never published.
        var token = await TokenForAsync(server, "owner@contoso.test", "Owner");
        var parts = token.Split('.');
        var forged = $"{parts[0]}.{parts[1]}.{parts[2][..^4]}AAAA";
        using var bad = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts", forged));
        var refused = await ProblemAsync(bad, HttpStatusCode.Unauthorized);
        Assert.Contains("sign in again", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var good = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts", token));
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
    }

    [Fact]
    public async Task UserWithoutRole_Is403_EvenForReading()
    {
        await using var server = await TestServer.StartAsync();
        var token = await TokenForAsync(server, "nobody@contoso.test", role: null);

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/users", token));

        var problem = await ProblemAsync(response, HttpStatusCode.Forbidden);
        Assert.Contains("No role assignment grants Gatehouse/users/read at /", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reader_CanList_ButNotCreate()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");
        using (var created = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", owner, VmHost("vm1"))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var reader = await TokenForAsync(server, "reader@contoso.test", "Reader");

        using var list = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts", reader));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.NotNull(list.Content.Headers.ContentLength);
        using var hosts = JsonDocument.Parse(await list.Content.ReadAsStringAsync());
        Assert.Equal("vm1", Assert.Single(hosts.RootElement.EnumerateArray()).GetProperty("name").GetString());

        using var create = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", reader, VmHost("vm2")));
        var problem = await ProblemAsync(create, HttpStatusCode.Forbidden);
        Assert.Equal("reader@contoso.test may not do this: No role assignment grants Gatehouse/hosts/write at /. Ask an Owner to assign a role that includes it. Built-in roles that include it: 'Owner', 'Contributor'.", problem.GetProperty("detail").GetString());

        using var after = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts/vm2", owner));
        await ProblemAsync(after, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Owner_CreatesHost_NoSecretInAnyResponse()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");

        using var create = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", owner, VmHost("vm1")));
        var body = await create.Content.ReadAsStringAsync();
        Assert.True(create.StatusCode == HttpStatusCode.Created, body);
        using var show = await server.Client.SendAsync(Request(HttpMethod.Get, "/hosts/vm1", owner));
        var shown = await show.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, show.StatusCode);
        using var json = JsonDocument.Parse(shown);
        Assert.Equal("rdpuser", json.RootElement.GetProperty("userAccount").GetString());
        Assert.True(json.RootElement.GetProperty("userPasswordSet").GetBoolean());
        Assert.DoesNotContain(HostPassword, body, StringComparison.Ordinal);
        Assert.DoesNotContain(HostPassword, shown, StringComparison.Ordinal);
        Assert.DoesNotContain("Protected", shown, StringComparison.Ordinal);

        // The stored secret is the one sent (the gateway can use it).
        await using var services = server.App.Services.CreateAsyncScope();
        var directory = services.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = (await directory.FindHostByLabelAsync(tenant.Id, "vm1"))!;
        Assert.Equal(HostPassword, directory.UnprotectHostSecret(host.UserSecretProtected!));
    }

    [Fact]
    public async Task HostGroupContributor_CreatesHostOnlyInThatGroup()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");
        foreach (var group in new[] { "prod", "test" })
        {
            using var created = await server.Client.SendAsync(Request(HttpMethod.Post, "/hostGroups", owner, new { name = group }));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var contributor = await TokenForAsync(server, "ops@contoso.test", "Contributor", "/hostGroups/test");

        using var inTest = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", contributor, VmHost("t1", "test")));
        Assert.Equal(HttpStatusCode.Created, inTest.StatusCode);
        using var inProd = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", contributor, VmHost("p1", "prod")));
        var problem = await ProblemAsync(inProd, HttpStatusCode.Forbidden);
        Assert.Contains("Gatehouse/hosts/write at /hostGroups/prod", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DataAccessAdministrator_AssignsLoginRoles_NotOwner()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");
        using (var created = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", owner, VmHost("vm1"))))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        await TokenForAsync(server, "alice@contoso.test", role: null);
        var daa = await TokenForAsync(server, "daa@contoso.test", "Virtual Machine Data Access Administrator");

        string? userLoginId = null;
        foreach (var role in new[] { "Virtual Machine User Login", "Virtual Machine Administrator Login" })
        {
            using var assign = await server.Client.SendAsync(Request(HttpMethod.Post, "/roleAssignments", daa, new { role, assignee = "alice@contoso.test", scope = "/hosts/vm1" }));
            var text = await assign.Content.ReadAsStringAsync();
            Assert.True(assign.StatusCode == HttpStatusCode.Created, text);
            using var json = JsonDocument.Parse(text);
            Assert.Equal(role, json.RootElement.GetProperty("role").GetString());
            Assert.Equal("daa@contoso.test", json.RootElement.GetProperty("createdBy").GetString());
            userLoginId ??= json.RootElement.GetProperty("id").GetString();
        }

        using var ownerAssign = await server.Client.SendAsync(Request(HttpMethod.Post, "/roleAssignments", daa, new { role = "Owner", assignee = "alice@contoso.test", scope = "/" }));
        var problem = await ProblemAsync(ownerAssign, HttpStatusCode.Forbidden);
        Assert.Contains("Cannot assign 'Owner'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("may only assign 'Virtual Machine Administrator Login' and 'Virtual Machine User Login'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // Nor may it remove the Owner's own assignment; it may remove the login role it gave.
        using var list = await server.Client.SendAsync(Request(HttpMethod.Get, "/roleAssignments?assignee=owner@contoso.test", daa));
        using var owners = JsonDocument.Parse(await list.Content.ReadAsStringAsync());
        var ownerAssignment = Assert.Single(owners.RootElement.EnumerateArray()).GetProperty("id").GetString();
        using var deleteOwner = await server.Client.SendAsync(Request(HttpMethod.Delete, $"/roleAssignments/{ownerAssignment}", daa));
        await ProblemAsync(deleteOwner, HttpStatusCode.Forbidden);
        using var deleteLogin = await server.Client.SendAsync(Request(HttpMethod.Delete, $"/roleAssignments/{userLoginId}", daa));
        Assert.Equal(HttpStatusCode.OK, deleteLogin.StatusCode);
    }

    [Fact]
    public async Task FirstRunAdministrator_HoldsOwnerAtTenant()
    {
        await using var server = await TestServer.StartAsync();
        var token = await TokenForAsync(server, "admin@contoso.test", role: null);

        using var response = await server.Client.SendAsync(Request(HttpMethod.Get, "/roleAssignments", token));

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var assignment = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal("Owner", assignment.GetProperty("role").GetString());
        Assert.Equal("admin@contoso.test", assignment.GetProperty("assignee").GetString());
        Assert.Equal("/", assignment.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task MalformedBody_Is400ProblemSayingWhatToSend()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");
        using var request = Request(HttpMethod.Post, "/users", owner);
        request.Content = new StringContent("{\"userPrincipalName\": ", System.Text.Encoding.UTF8, "application/json");

        using var response = await server.Client.SendAsync(request);

        var problem = await ProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("not valid JSON", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Owner_CreatesAndDisablesUser_TemporaryPasswordReturnedOnce()
    {
        await using var server = await TestServer.StartAsync();
        var owner = await TokenForAsync(server, "owner@contoso.test", "Owner");

        using var create = await server.Client.SendAsync(Request(HttpMethod.Post, "/users", owner, new { userPrincipalName = "bob@contoso.test", displayName = "Bob" }));
        var created = await create.Content.ReadAsStringAsync();
        Assert.True(create.StatusCode == HttpStatusCode.Created, created);
        using (var json = JsonDocument.Parse(created))
        {
            Assert.Equal(16, json.RootElement.GetProperty("temporaryPassword").GetString()!.Length);
            Assert.True(json.RootElement.GetProperty("user").GetProperty("mustChangePassword").GetBoolean());
        }

        using var disable = await server.Client.SendAsync(Request(HttpMethod.Post, "/users/bob@contoso.test/disable", owner));
        Assert.Equal(HttpStatusCode.OK, disable.StatusCode);
        using var show = await server.Client.SendAsync(Request(HttpMethod.Get, "/users/BOB@contoso.test", owner));
        var shown = await show.Content.ReadAsStringAsync();
        using var user = JsonDocument.Parse(shown);
        Assert.False(user.RootElement.GetProperty("enabled").GetBoolean());
        Assert.False(user.RootElement.TryGetProperty("temporaryPassword", out _));

        using var again = await server.Client.SendAsync(Request(HttpMethod.Post, "/users", owner, new { userPrincipalName = "bob@contoso.test" }));
        await ProblemAsync(again, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task OpenApiDocument_Parses_ListsEveryPath()
    {
        await using var server = await TestServer.StartAsync();

        using var response = await server.Client.GetAsync("/admin/v1/openapi.json");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotNull(response.Content.Headers.ContentLength);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.StartsWith("3.1", json.RootElement.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        var paths = json.RootElement.GetProperty("paths");
        var expected = new (string Path, string Method)[]
        {
            ("/admin/v1/users", "get"), ("/admin/v1/users", "post"), ("/admin/v1/users/{upn}/disable", "post"), ("/admin/v1/users/{upn}/enable", "post"),
            ("/admin/v1/hosts", "get"), ("/admin/v1/hosts", "post"), ("/admin/v1/hosts/{name}", "get"), ("/admin/v1/hosts/{name}", "delete"),
            ("/admin/v1/hostGroups", "get"), ("/admin/v1/hostGroups", "post"), ("/admin/v1/roleDefinitions", "get"),
            ("/admin/v1/roleAssignments", "get"), ("/admin/v1/roleAssignments", "post"), ("/admin/v1/roleAssignments/{id}", "delete"),
            ("/admin/v1/policies", "get"), ("/admin/v1/policies", "post"), ("/admin/v1/policies/{name}", "delete"), ("/admin/v1/policies/what-if", "post"),
            ("/admin/v1/signIns", "get"), ("/admin/v1/signIns/{id}", "get"), ("/admin/v1/signIns/verify", "get"),
            ("/admin/v1/sessions", "get"), ("/admin/v1/sessions/{id}", "delete"),
        };
        foreach (var (path, method) in expected)
        {
            Assert.True(paths.TryGetProperty(path, out var item) && item.TryGetProperty(method, out _), $"{method} {path} missing");
        }

        Assert.Equal("Gatehouse/hosts/write", paths.GetProperty("/admin/v1/hosts").GetProperty("post").GetProperty("x-gatehouse-action").GetString());
        Assert.Equal("http", json.RootElement.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer").GetProperty("type").GetString());
    }
}
