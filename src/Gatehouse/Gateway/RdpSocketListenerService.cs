using System.Net;
using System.Net.Sockets;
using Gatehouse.Gateway.Transport;

namespace Gatehouse.Gateway;

/// <summary>
/// Runs the RDP port's own accept loop (<see cref="RdpSocketListener"/>) with the host: bound when the host starts (so
/// <see cref="RdpListener.EndPoint"/> and the "listening" line report the port), closed to new connections as soon as
/// the node begins to stop (<see cref="IHostApplicationLifetime.ApplicationStopping"/>, when the drain begins), and on
/// stop waiting for the live connections (the drain ends them) until the host's shutdown timeout, then aborting them.
/// </summary>
internal sealed class RdpSocketListenerService(
    IPEndPoint endPoint,
    long maxConnections,
    RdpListener listener,
    IServiceProvider services,
    IHostApplicationLifetime lifetime,
    ILogger<RdpSocketListener> logger) : IHostedService
{
    private RdpSocketListener? _listener;
    private CancellationTokenRegistration _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var handler = ActivatorUtilities.GetServiceOrCreateInstance<RdpConnectionHandler>(services);
        var socketListener = new RdpSocketListener(endPoint, handler.OnConnectedAsync, maxConnections, logger);
        try
        {
            socketListener.Start();
        }
        catch (SocketException e)
        {
            throw new IOException($"Failed to bind the RDP listener to {endPoint}: {e.Message}", e);
        }

        _listener = socketListener;
        listener.Socket = socketListener;
        _stopping = lifetime.ApplicationStopping.Register(socketListener.StopAccepting);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.DisposeAsync();
        if (_listener is { } socketListener)
        {
            await socketListener.StopAsync(cancellationToken);
        }
    }
}
