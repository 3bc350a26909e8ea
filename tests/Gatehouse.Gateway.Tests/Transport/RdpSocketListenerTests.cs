using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Gatehouse.Gateway.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Gateway.Tests.Transport;

/// <summary>The RDP port's own accept loop, on 127.0.0.1 with an OS-chosen port, driven by real sockets.</summary>
public sealed class RdpSocketListenerTests
{
    [Fact]
    public async Task Start_ReportsTheBoundPort_AndAcceptedConnectionsReachTheDriver()
    {
        // Arrange: a driver that answers each connection's first line through the connection's pipes.
        await using var listener = new RdpSocketListener(new IPEndPoint(IPAddress.Loopback, 0), EchoOnceAsync, 100, NullLogger.Instance);

        // Act
        listener.Start();

        // Assert
        Assert.NotEqual(0, listener.EndPoint.Port);
        Assert.Equal(IPAddress.Loopback, listener.EndPoint.Address);
        using var client = await ConnectAsync(listener);
        await client.SendAsync("ping"u8.ToArray());
        Assert.Equal("ping", await ReadToEndAsync(client));
    }

    [Fact]
    public async Task ConnectionOverTheLimit_IsClosedAtOnce_WhileTheOpenOneGoesOn()
    {
        // Arrange: one connection allowed, held open by the driver until the test lets it go.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        await using var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            async connection =>
            {
                Interlocked.Increment(ref entered);
                await release.Task;
                await EchoOnceAsync(connection);
            },
            maxConnections: 1,
            NullLogger.Instance);
        listener.Start();
        using var first = await ConnectAsync(listener);
        await Until.TrueAsync(() => Volatile.Read(ref entered) == 1, "the first connection reached the driver");

        // Act
        using var second = await ConnectAsync(listener);

        // Assert: the second is closed by the gateway without reaching the driver; the first still works.
        Assert.Equal(string.Empty, await ReadToEndAsync(second));
        Assert.Equal(1, Volatile.Read(ref entered));
        release.SetResult();
        await first.SendAsync("still here"u8.ToArray());
        Assert.Equal("still here", await ReadToEndAsync(first));
    }

    [Fact]
    public async Task StopAccepting_RefusesNewConnectionsAtOnce_AndTheOpenOneGoesOnUntilItEnds()
    {
        // Arrange
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            async connection =>
            {
                Interlocked.Increment(ref entered);
                await release.Task;
                await EchoOnceAsync(connection);
            },
            maxConnections: 100,
            NullLogger.Instance);
        listener.Start();
        var endPoint = listener.EndPoint;
        using var open = await ConnectAsync(listener);
        await Until.TrueAsync(() => Volatile.Read(ref entered) == 1, "the connection reached the driver");

        // Act
        listener.StopAccepting();
        var stopped = listener.StopAsync(CancellationToken.None);

        // Assert: nobody listens on the port any more; the open connection is waited for, and still served.
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(endPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.False(stopped.IsCompleted);
        Assert.Equal(1, listener.Active);
        release.SetResult();
        await open.SendAsync("bye"u8.ToArray());
        Assert.Equal("bye", await ReadToEndAsync(open));
        await stopped.WaitAsync(Until.Backstop);
        Assert.Equal(0, listener.Active);
    }

    [Fact]
    public async Task StopAsync_WhenItsTimeIsUp_AbortsTheOpenConnections()
    {
        // Arrange: a driver that reads until the client leaves (or the connection is aborted).
        var closedSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            async connection =>
            {
                using var _ = connection.ConnectionClosed.Register(() => closedSeen.TrySetResult());
                try
                {
                    while (!(await connection.Transport.Input.ReadAsync()).IsCompleted)
                    {
                    }
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or OperationCanceledException)
                {
                }
            },
            maxConnections: 100,
            NullLogger.Instance);
        listener.Start();
        using var client = await ConnectAsync(listener);
        await Until.TrueAsync(() => listener.Active == 1, "the connection was accepted");

        // Act
        await listener.StopAsync(new CancellationToken(canceled: true)).WaitAsync(Until.Backstop);

        // Assert: the connection was aborted (its closed token fired) and the client sees its end.
        await closedSeen.Task.WaitAsync(Until.Backstop);
        Assert.Equal(0, listener.Active);
        var ended = await ReadToEndOrResetAsync(client);
        Assert.True(ended);
    }

    [Fact]
    public async Task TakeStream_StartsWithTheBytesThePipeReadAhead()
    {
        // Arrange: the client sends a 4-byte "request" and what follows it (as a TLS ClientHello can follow the X.224
        // Connection Request) in one write; the driver consumes only the request from the pipe, then takes the stream.
        var afterRequest = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            async connection =>
            {
                var input = connection.Transport.Input;
                while (true)
                {
                    var read = await input.ReadAsync();
                    if (read.Buffer.Length >= 4 || read.IsCompleted)
                    {
                        var request = read.Buffer.Slice(0, Math.Min(4, read.Buffer.Length));
                        input.AdvanceTo(request.End);
                        break;
                    }

                    input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                }

                var stream = connection.Features.Get<IClientLegStreamFeature>()!.TakeStream();
                using var rest = new MemoryStream();
                await stream.CopyToAsync(rest);
                afterRequest.SetResult(System.Text.Encoding.ASCII.GetString(rest.ToArray()));
            },
            maxConnections: 100,
            NullLogger.Instance);
        listener.Start();
        using var client = await ConnectAsync(listener);

        // Act
        await client.SendAsync("REQ!hello, TLS"u8.ToArray());
        client.Shutdown(SocketShutdown.Send);

        // Assert
        Assert.Equal("hello, TLS", await afterRequest.Task.WaitAsync(Until.Backstop));
    }

    [Fact]
    public async Task Connection_ReportsItsEndPoints_AndAnIdLikeKestrels()
    {
        var seen = new TaskCompletionSource<(string Id, EndPoint? Remote, EndPoint? Local)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            connection =>
            {
                seen.SetResult((connection.ConnectionId, connection.RemoteEndPoint, connection.LocalEndPoint));
                return Task.CompletedTask;
            },
            maxConnections: 100,
            NullLogger.Instance);
        listener.Start();
        using var client = await ConnectAsync(listener);

        var (id, remote, local) = await seen.Task.WaitAsync(Until.Backstop);

        Assert.Equal(13, id.Length);
        Assert.Equal(client.LocalEndPoint, remote);
        Assert.Equal(listener.EndPoint, local);
    }

    private static async Task EchoOnceAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var read = await input.ReadAsync();
        var bytes = read.Buffer.ToArray();
        input.AdvanceTo(read.Buffer.End);
        await connection.Transport.Output.WriteAsync(bytes);
    }

    private static async Task<Socket> ConnectAsync(RdpSocketListener listener)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.EndPoint);
        return socket;
    }

    /// <summary>Everything the gateway sends until it closes (a reset counts as the end).</summary>
    private static async Task<string> ReadToEndAsync(Socket socket)
    {
        using var received = new MemoryStream();
        var buffer = new byte[256];
        try
        {
            int count;
            while ((count = await socket.ReceiveAsync(buffer).WaitAsync(Until.Backstop)) > 0)
            {
                received.Write(buffer, 0, count);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        return System.Text.Encoding.ASCII.GetString(received.ToArray());
    }

    private static async Task<bool> ReadToEndOrResetAsync(Socket socket)
    {
        try
        {
            var buffer = new byte[16];
            while (await socket.ReceiveAsync(buffer).WaitAsync(Until.Backstop) > 0)
            {
            }

            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }
}
