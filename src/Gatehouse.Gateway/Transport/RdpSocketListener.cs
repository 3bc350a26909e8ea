using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Gatehouse.Gateway.Diagnostics;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// The RDP port's own accept loop: each accepted socket becomes a <see cref="ConnectionContext"/> whose client leg
/// runs TLS straight on a <see cref="NetworkStream"/> (see <see cref="SocketClientConnection"/>), handed to the session
/// driver on the thread pool. It replaces the Kestrel endpoint, whose socket → pipe → stream path cost one pipe flush and
/// one wake-up of Kestrel's sender per TLS record sent to the client.
/// </summary>
/// <remarks>
/// At most <c>maxConnections</c> connections are open at once (Kestrel's <c>MaxConcurrentConnections</c> did the same):
/// one over it is closed as soon as it is accepted. <see cref="StopAccepting"/> closes the listening socket at once (a
/// draining node refuses new connections while its sessions go on); <see cref="StopAsync"/> then waits for the
/// connections and aborts those still open when its token fires.
/// </remarks>
public sealed partial class RdpSocketListener : IAsyncDisposable
{
    private const int Backlog = 512;

    private readonly IPEndPoint _endPoint;
    private readonly Func<ConnectionContext, Task> _onConnected;
    private readonly long _maxConnections;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<SocketClientConnection, byte> _connections = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Socket? _socket;
    private Task? _acceptLoop;
    private long _active;
    private int _stopping;
    private long _nextId = DateTime.UtcNow.Ticks;

    /// <summary>Creates the listener (nothing is bound until <see cref="Start"/>).</summary>
    /// <param name="endPoint">The address and port to bind (port 0: any free port; <see cref="EndPoint"/> tells which).</param>
    /// <param name="onConnected">The session driver: the connection is complete when its task completes.</param>
    /// <param name="maxConnections">The most connections open at once.</param>
    /// <param name="logger">Where the listener's own events go.</param>
    public RdpSocketListener(IPEndPoint endPoint, Func<ConnectionContext, Task> onConnected, long maxConnections, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(onConnected);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConnections, 1);
        _endPoint = endPoint;
        _onConnected = onConnected;
        _maxConnections = maxConnections;
        _logger = logger;
    }

    /// <summary>The bound address and port, once <see cref="Start"/> has run.</summary>
    public IPEndPoint EndPoint => (_socket?.LocalEndPoint as IPEndPoint) ?? throw new InvalidOperationException("the RDP listener is not started");

    /// <summary>Connections accepted and not yet finished.</summary>
    public long Active => Interlocked.Read(ref _active);

    /// <summary>Binds and listens (an <see cref="SocketException"/> if the port is taken), then accepts in the background.</summary>
    public void Start()
    {
        if (_socket is not null)
        {
            throw new InvalidOperationException("the RDP listener is already started");
        }

        var socket = new Socket(_endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (_endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                // As Kestrel binds [::]: IPv4 clients too.
                socket.DualMode = true;
            }

            socket.Bind(_endPoint);
            socket.Listen(Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _socket = socket;
        _acceptLoop = AcceptLoopAsync(socket);
    }

    /// <summary>Closes the listening socket at once: new connections are refused, open ones go on.</summary>
    public void StopAccepting()
    {
        if (Interlocked.Exchange(ref _stopping, 1) == 0)
        {
            _socket?.Dispose();
            if (Interlocked.Read(ref _active) == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Stops accepting, then waits until every open connection is done; when <paramref name="cancellationToken"/> fires
    /// first, the connections still open are aborted (their drivers end at once) and waited for a few seconds more.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        StopAccepting();
        if (_acceptLoop is { } loop)
        {
            await loop.ConfigureAwait(false);
        }

        try
        {
            await _idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        var open = _connections.Keys.ToArray();
        LogAbortingOnStop(open.Length);
        foreach (var connection in open)
        {
            connection.Abort(new ConnectionAbortedException("the gateway is stopping"));
        }

        try
        {
            await _idle.Task.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A driver that does not end on an abort is not waited for longer than the host would.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);

    private async Task AcceptLoopAsync(Socket listening)
    {
        while (Volatile.Read(ref _stopping) == 0)
        {
            Socket accepted;
            try
            {
                accepted = await listening.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException && Volatile.Read(ref _stopping) != 0)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                // The client gave up while in the backlog.
                continue;
            }
            catch (SocketException e)
            {
                // Out of descriptors, say: logged, and tried again shortly rather than in a tight loop.
                LogAcceptFailed(e.SocketErrorCode, e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
                continue;
            }

            if (Interlocked.Increment(ref _active) > _maxConnections)
            {
                Interlocked.Decrement(ref _active);
                LogConnectionLimit(accepted.RemoteEndPoint, _maxConnections);
                accepted.Dispose();
                continue;
            }

            SocketClientConnection connection;
            try
            {
                accepted.NoDelay = true;
                connection = new SocketClientConnection(accepted, NextConnectionId());
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
                // Reset before it could be set up.
                accepted.Dispose();
                Finished();
                continue;
            }

            _connections.TryAdd(connection, 0);
            _ = RunAsync(connection);
        }
    }

    private async Task RunAsync(SocketClientConnection connection)
    {
        // Off the accept loop: the driver's first steps run on the thread pool.
        await Task.Yield();
        try
        {
            connection.Start();
            await _onConnected(connection).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // One connection's failure must not reach the accept loop or another connection.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogConnectionFailed(connection.ConnectionId, e);
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            _connections.TryRemove(connection, out _);
            Finished();
        }
    }

    private void Finished()
    {
        if (Interlocked.Decrement(ref _active) == 0 && Volatile.Read(ref _stopping) != 0)
        {
            _idle.TrySetResult();
        }
    }

    /// <summary>A connection id in the style of Kestrel's (13 characters of base 32 from a counter seeded by the clock).</summary>
    private string NextConnectionId()
    {
        const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        var id = Interlocked.Increment(ref _nextId);
        return string.Create(13, id, static (span, value) =>
        {
            for (var i = span.Length - 1; i >= 0; i--)
            {
                span[i] = Alphabet[(int)(value & 31)];
                value >>= 5;
            }
        });
    }

    [LoggerMessage(EventIds.ListenerConnectionLimit, LogLevel.Warning, "RDP connection from {Remote} closed at once: {Max} connections are open (Gatehouse:Limits:MaxConcurrentConnections).")]
    private partial void LogConnectionLimit(EndPoint? remote, long max);

    [LoggerMessage(EventIds.ListenerAcceptFailed, LogLevel.Error, "The RDP listener could not accept a connection ({Error}): {Message}")]
    private partial void LogAcceptFailed(SocketError error, string message);

    [LoggerMessage(EventIds.ListenerConnectionFailed, LogLevel.Error, "RDP connection {ConnectionId} failed in the gateway.")]
    private partial void LogConnectionFailed(string connectionId, Exception exception);

    [LoggerMessage(EventIds.ListenerStopped, LogLevel.Information, "The RDP listener stops: {Count} connection(s) still open are aborted.")]
    private partial void LogAbortingOnStop(int count);
}
