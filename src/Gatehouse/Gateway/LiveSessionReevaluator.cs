using Gatehouse.Access;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Identity.Gateway;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway;

/// <summary>
/// Conditional Access and role assignments for live sessions: every <see cref="GatewayOptions.ReevaluationInterval"/>
/// each session on this node is authorised again with the same call as at sign-in (the user's state, a role on the
/// host, every enforced policy with the sign-in's methods and time, a mapped account); a session that would no longer
/// be allowed (user disabled, role removed, a policy that now blocks, sign-in frequency run out) is ended with the
/// reason. A session that ends because the user was disabled or lost the role on the host also asks the host's agent
/// to lock the user's account there (a disabled user: every agent of the tenant), as a refused sign-in does. A
/// failure to read the store ends nothing (the next round tries again).
/// </summary>
internal sealed partial class LiveSessionReevaluator(
    IServiceScopeFactory scopes,
    SessionRegistry registry,
    IOptions<GatewayOptions> options,
    ILogger<LiveSessionReevaluator> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.ReevaluationInterval;
        if (interval <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await ReevaluateAllAsync(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    /// <summary>One round over every live session; returns how many were ended.</summary>
    internal async Task<int> ReevaluateAllAsync(CancellationToken cancellationToken)
    {
        var ended = 0;
        foreach (var session in registry.List())
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var access = scope.ServiceProvider.GetRequiredService<AccessService>();
                var decision = await access.AuthorizeSignInAsync(
                    new AccessRequest
                    {
                        UserId = session.Grant.UserId,
                        HostId = session.Grant.HostId,
                        ClientAddress = session.ClientAddress,
                        AuthenticationMethods = session.Grant.Methods,
                        AuthenticatedAt = session.Grant.AuthenticatedAt,
                        Application = RdpApplications.AzureWindowsVmSignIn,
                    },
                    cancellationToken).ConfigureAwait(false);
                if (!decision.Allowed)
                {
                    session.End($"access_revoked: {decision.Reason}");
                    LogEnded(session.Id, session.Grant.UserPrincipalName, session.Grant.HostName, decision.Reason);
                    ended++;
                    await LockHostAccountAsync(scope.ServiceProvider, access, session.Grant, decision.Refusal, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(session.Id, e.GetType().Name, e.Message);
            }
        }

        return ended;
    }

    /// <summary>
    /// The user was disabled (every agent of the tenant locks the account it manages for them) or has no role on the
    /// host any more (only that host's agent locks it); other refusals (a policy, sign-in frequency) lock nothing.
    /// </summary>
    private static async Task LockHostAccountAsync(IServiceProvider services, AccessService access, SessionGrant grant, AccessRefusal refusal, CancellationToken cancellationToken)
    {
        if (services.GetService<IHostAgentLogons>() is not { } agents)
        {
            return;
        }

        if (refusal is AccessRefusal.UserDisabled)
        {
            agents.RequestDisable(grant.TenantId, null, grant.UserPrincipalName);
        }
        else if (refusal is AccessRefusal.NoRole && await access.AgentOfHostAsync(grant.HostId, cancellationToken).ConfigureAwait(false) is { } agentId)
        {
            agents.RequestDisable(grant.TenantId, agentId, grant.UserPrincipalName);
        }
    }

    [LoggerMessage(70, LogLevel.Warning, "Session {SessionId} of {Upn} on {Host} ended: access is no longer allowed ({Reason}).")]
    private partial void LogEnded(Guid sessionId, string upn, string host, string reason);

    [LoggerMessage(71, LogLevel.Warning, "Session {SessionId}: could not re-check access ({Kind}: {Message}); it stays until the next round.")]
    private partial void LogFailed(Guid sessionId, string kind, string message);
}
