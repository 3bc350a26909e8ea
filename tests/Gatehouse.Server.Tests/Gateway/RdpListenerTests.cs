using System.Net;
using System.Net.Sockets;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// The RDP port of <c>gatehouse serve</c>: the gateway's own accept loop by default, the Kestrel endpoint on
/// <c>Gatehouse:Gateway:Listener = Kestrel</c>; the bound port is reported either way, and a node that begins to stop
/// refuses new RDP connections at once while the open ones go on (the drain).
/// </summary>
public sealed class RdpListenerTests
{
    /// <summary>An X.224 Connection Request asking for TLS and CredSSP (the default web-account gateway refuses it in the negotiation).</summary>
    private static readonly byte[] ConnectionRequest =
    [
        0x03, 0x00, 0x00, 0x13, // TPKT, 19 bytes
        0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR
        0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, // RDP_NEG_REQ: PROTOCOL_SSL | PROTOCOL_HYBRID
    ];

    [Theory]
    [InlineData(null)]
    [InlineData("Socket")]
    [InlineData("Kestrel")]
    public async Task RdpPort_IsReported_AndAnswersTheNegotiation(string? listener)
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:Listener"] = listener });
        var endPoint = GatehouseHost.RdpEndPoint(server.App);
        Assert.NotEqual(0, endPoint.Port);

        using var client = await ConnectAsync(endPoint.Port);
        await client.SendAsync(ConnectionRequest);
        var answer = await ReadToEndAsync(client);

        // A TPKT frame (the negotiation's answer), then the gateway closes.
        Assert.True(answer.Length >= 11, $"answer of {answer.Length} bytes");
        Assert.Equal(0x03, answer[0]);
        Assert.Equal(0xD0, answer[5]); // X.224 Connection Confirm
    }

    [Fact]
    public async Task Stopping_RefusesNewRdpConnectionsAtOnce_WhileTheOpenOneIsStillServed()
    {
        await using var server = await TestServer.StartAsync();
        var port = GatehouseHost.RdpEndPoint(server.App).Port;
        using var open = await ConnectAsync(port);

        // The node begins to stop (SIGTERM): the drain starts, and the RDP port takes no new connection.
        server.App.Lifetime.StopApplication();

        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(IPAddress.Loopback, port));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

        // The connection accepted before is still served.
        await open.SendAsync(ConnectionRequest);
        var answer = await ReadToEndAsync(open);
        Assert.True(answer.Length >= 11, $"answer of {answer.Length} bytes");
        Assert.Equal(0xD0, answer[5]);
    }

    private static async Task<Socket> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return socket;
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var received = new MemoryStream();
        var buffer = new byte[256];
        int count;
        while ((count = await socket.ReceiveAsync(buffer).WaitAsync(TimeSpan.FromSeconds(30))) > 0)
        {
            received.Write(buffer, 0, count);
        }

        return received.ToArray();
    }
}
