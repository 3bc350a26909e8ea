using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>Issue 16: <c>gatehouse sessions list</c> shows every node's sessions with the node that holds each.</summary>
public sealed class SessionNodeCommandTests
{
    [Fact]
    public async Task SessionsList_ShowsTheNodeOfEachSession()
    {
        // Arrange: two live sessions held by two nodes.
        await using var cli = await CliHarness.CreateAsync();
        await using (var store = await cli.OpenStoreAsync())
        {
            var tenant = await store.Get<GatehouseDbContext>().Tenants.Select(t => t.Id).SingleAsync();
            foreach (var node in new[] { "gw-a.internal:3389", "gw-b.internal:3389" })
            {
                await store.Get<SessionStore>().StartAsync(new SessionRecord
                {
                    Id = Guid.NewGuid(),
                    TenantId = tenant,
                    UserId = Guid.NewGuid(),
                    UserPrincipalName = "alice@contoso.test",
                    HostId = Guid.NewGuid(),
                    HostName = "vm1",
                    Protocol = "nla",
                    Node = node,
                    StartedAt = DateTimeOffset.UtcNow,
                });
            }
        }

        // Act
        var table = await cli.OkAsync("sessions", "list");
        var json = await cli.OkAsync("sessions", "list", "--output", "json");

        // Assert: a NODE column with each node, and "node" in the JSON.
        var header = table.Output.Split('\n').First(l => l.Contains("Started", StringComparison.OrdinalIgnoreCase));
        Assert.Contains("Node", header, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("gw-a.internal:3389", table.Output, StringComparison.Ordinal);
        Assert.Contains("gw-b.internal:3389", table.Output, StringComparison.Ordinal);
        Assert.Contains("\"node\": \"gw-a.internal:3389\"", json.Output, StringComparison.Ordinal);
        Assert.Contains("\"node\": \"gw-b.internal:3389\"", json.Output, StringComparison.Ordinal);
    }
}
