using Gatehouse.Gateway.Sessions;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway;

/// <summary>
/// Starts the drain when the node begins to stop (<see cref="IHostApplicationLifetime.ApplicationStopping"/>): the RDP
/// listener (<see cref="RdpSocketListenerService"/>, or the Kestrel endpoint) then stops taking connections and waits for
/// the live ones, which are ended with <c>node_draining</c> once
/// <see cref="GatewayOptions.DrainTimeout"/> has passed.
/// </summary>
internal sealed class SessionDrainOnStop(IHostApplicationLifetime lifetime, SessionDrain drain, IOptions<GatewayOptions> options) : IHostedService
{
    private CancellationTokenRegistration _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = lifetime.ApplicationStopping.Register(() => drain.Begin(options.Value.DrainTimeout));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Dispose();
        return Task.CompletedTask;
    }
}
