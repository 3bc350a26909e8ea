using System.Globalization;
using Gatehouse.Gateway.Sessions;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gatehouse.Gateway;

/// <summary>
/// Readiness while this node drains: unhealthy from the moment <see cref="SessionDrain.Begin"/> is called (the node
/// keeps its live sessions up to <c>Gatehouse:Gateway:DrainTimeout</c> but takes no new users), so
/// <c>/healthz/ready</c> answers 503 <c>drain: …</c> and a load balancer stops sending users here. It does not wait for
/// the host's own stopping signal: whatever starts the drain turns readiness off.
/// </summary>
internal sealed class SessionDrainHealthCheck(SessionDrain drain, SessionRegistry registry) : IHealthCheck
{
    /// <summary>The check's name, the prefix of its line in a 503's body.</summary>
    public const string Name = "drain";

    /// <inheritdoc/>
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(drain.Draining
            ? HealthCheckResult.Unhealthy(string.Create(CultureInfo.InvariantCulture, $"the node is draining ({registry.Count} live session(s) kept until the drain timeout); send new users to another node"))
            : HealthCheckResult.Healthy("not draining"));
}
