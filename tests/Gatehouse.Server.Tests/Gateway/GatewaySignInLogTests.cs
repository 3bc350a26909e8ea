using System.Net;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>The gateway's writer into the hash-chained sign-in log, as <c>gatehouse serve</c> registers it.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class GatewaySignInLogTests
{
    [Fact]
    public async Task AWrite_IsBoundedByItsOwnDeadline_AndAPassedDeadlineIsReportedNotThrown()
    {
        await using var server = await TestServer.StartAsync();
        var log = server.App.Services.GetRequiredService<IGatewaySignInLog>();

        // The gateway hands the writer the write's own deadline (never the client's token): a deadline that has
        // passed abandons the write, which is reported in the server's log and never thrown at the connection.
        using (var passed = new CancellationTokenSource())
        {
            await passed.CancelAsync();
            await log.WriteAsync(Entry("conn-late"), passed.Token);
        }

        await log.WriteAsync(Entry("conn-on-time"), CancellationToken.None);

        await using var scope = server.App.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking()
            .Where(r => r.Protocol == "nla").Select(r => r.CorrelationId).ToListAsync();
        Assert.Equal(["conn-on-time"], rows);
    }

    private static GatewaySignInEvent Entry(string connectionId) => new()
    {
        ConnectionId = connectionId,
        ClientAddress = IPAddress.Loopback,
        Protocol = "nla",
        Succeeded = false,
        Reason = "bad_password: test",
        UserPrincipalName = "alice@contoso.test",
    };
}
