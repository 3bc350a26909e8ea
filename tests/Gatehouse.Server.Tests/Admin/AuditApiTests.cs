using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Gatehouse.Cli;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Admin;

/// <summary><c>GET /admin/v1/audit</c> on the real host, and <c>gatehouse audit --server</c> through it.</summary>
public sealed class AuditApiTests
{
    [Fact]
    public async Task Audit_ReaderMayRead_NoRoleMayNot_AndTheCliOverTheApiFailsOnMedium()
    {
        // Arrange: a host with a stored password and no agent (host-not-enrolled, medium).
        await using var server = await TestServer.StartAsync();
        var owner = await RemoteCliFixture.TokenForAsync(server, "owner@contoso.test", "Owner");
        var reader = await RemoteCliFixture.TokenForAsync(server, "reader@contoso.test", "Reader");
        var nobody = await RemoteCliFixture.TokenForAsync(server, "nobody@contoso.test", role: null);
        var host = new
        {
            name = "vm1",
            backendHost = "127.0.0.5",
            backendPort = 1,
            backendSecurity = "tls",
            userAccount = "rdpuser",
            userPassword = "Host-Secret-Okapi-1",
        };
        using (var created = await server.Client.SendAsync(Request(HttpMethod.Post, "/hosts", owner, host)))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // Act
        using var read = await server.Client.SendAsync(Request(HttpMethod.Get, "/audit", reader));
        using var refused = await server.Client.SendAsync(Request(HttpMethod.Get, "/audit", nobody));
        using var otherTenant = await server.Client.SendAsync(Request(HttpMethod.Get, "/audit?tenant=fabrikam.test", reader));
        var environment = new CliEnvironment
        {
            HttpHandler = server.CreateHandler(),
            ConfigDirectory = TempDirectory.Create(),
            Variable = name => name == "GATEHOUSE_TOKEN" ? reader : null,
        };
        var address = server.BaseAddress.GetLeftPart(UriPartial.Authority);
        var cli = await CliHarness.RunInAsync(environment, null, "audit", "--fail-on", "medium", "--server", address);
        var cliHigh = await CliHarness.RunInAsync(environment, null, "audit", "--fail-on", "high", "--output", "json", "--server", address);

        // Assert
        var text = await read.Content.ReadAsStringAsync();
        Assert.True(read.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var finding = json.RootElement.GetProperty("findings").EnumerateArray().Single(f => f.GetProperty("id").GetString() == "host-not-enrolled");
        Assert.Equal("vm1", finding.GetProperty("subject").GetString());
        Assert.Equal("medium", finding.GetProperty("severity").GetString());
        Assert.Equal("gatehouse host enroll vm1, then run the command it prints on the host", finding.GetProperty("fix").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("Gatehouse/hosts/read", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, otherTenant.StatusCode);
        Assert.True(cli.ExitCode == ExitCodes.FindingsAtOrAbove, cli.ToString());
        Assert.Contains("host-not-enrolled", cli.Output, StringComparison.Ordinal);
        Assert.True(cliHigh.ExitCode == 0, cliHigh.ToString());
        Assert.Contains("\"id\": \"host-not-enrolled\"", cliHigh.Output, StringComparison.Ordinal);
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, string token, object? body = null)
    {
        var request = new HttpRequestMessage(method, "/admin/v1" + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        return request;
    }
}
