using Gatehouse.Gateway.Sessions;
using Gatehouse.Identity;
using Gatehouse.Storage;

namespace Gatehouse.Gateway;

/// <summary>
/// Writes the gateway's sign-in attempts into the hash-chained sign-in log; a failure to write (the store down, or the
/// write's own deadline passed) is logged, never thrown. The token is the write's deadline, never the client's. Rows go
/// straight to the node's <see cref="SignInLogWriter"/> (a singleton): no scope or store context per attempt.
/// </summary>
internal sealed partial class StoreGatewaySignInLog(SignInLogWriter writer, ILogger<StoreGatewaySignInLog> logger) : IGatewaySignInLog
{
    public async Task WriteAsync(GatewaySignInEvent signIn, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signIn);
        try
        {
            await writer.AppendAsync(
                new SignInEntry
                {
                    TenantId = signIn.TenantId ?? Guid.Empty,
                    CorrelationId = signIn.ConnectionId,
                    Protocol = signIn.Protocol,
                    Succeeded = signIn.Succeeded,
                    Reason = signIn.Reason,
                    UserId = signIn.UserId,
                    UserPrincipalName = signIn.UserPrincipalName,
                    Application = Gatehouse.Access.RdpApplications.AzureWindowsVmSignIn,
                    HostName = signIn.HostName,
                    ClientAddress = signIn.ClientAddress.ToString(),
                    Methods = signIn.Methods,
                    Code = signIn.Code,
                    UserMessage = signIn.UserMessage,
                    Fix = signIn.Fix,
                    PoliciesJson = signIn.PoliciesJson,
                    RoleAssignmentId = signIn.RoleAssignmentId,
                    RoleName = signIn.RoleName,
                    TargetAccount = signIn.TargetAccount,
                    SessionId = signIn.SessionId,
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (StoreStartup.IsUnavailable(e))
        {
            // Expected while the database is down (the listener then refuses sign-ins): not a failure of the gateway.
            LogWriteUnavailable(signIn.ConnectionId, StoreStartup.Describe(e));
        }
        catch (Exception e)
        {
            LogWriteFailed(signIn.ConnectionId, e.GetType().Name, e.Message);
        }
    }

    [LoggerMessage(51, LogLevel.Warning, "RDP connection {ConnectionId}: the sign-in log entry could not be written, the database does not answer ({Reason}).")]
    private partial void LogWriteUnavailable(string connectionId, string reason);

    [LoggerMessage(50, LogLevel.Error, "RDP connection {ConnectionId}: the sign-in log entry could not be written ({Kind}: {Message}).")]
    private partial void LogWriteFailed(string connectionId, string kind, string message);
}

/// <summary>Session start and end records in the store, tagged with this node's name (kills reach the node that holds the session).</summary>
internal sealed class StoreSessionJournal(IServiceScopeFactory scopes, GatewayNode node) : ISessionJournal
{
    public async Task StartAsync(LiveSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<SessionStore>();
        await store.StartAsync(
            new SessionRecord
            {
                Id = session.Id,
                TenantId = session.Grant.TenantId,
                UserId = session.Grant.UserId,
                UserPrincipalName = session.Grant.UserPrincipalName,
                HostId = session.Grant.HostId,
                HostName = session.Grant.HostName,
                Role = session.Grant.RoleName,
                Account = session.Grant.Credentials.ToString(),
                ClientAddress = session.ClientAddress.ToString(),
                Protocol = session.Protocol,
                Node = node.Name,
                StartedAt = session.StartedAt,
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async Task EndAsync(LiveSession session, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<SessionStore>();
        await store.EndAsync(session.Id, reason, session.Counters.FromClient, session.Counters.FromBackend, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>This node's name in session records (default: the machine name and the RDP port).</summary>
internal sealed record GatewayNode(string Name);

/// <summary>
/// Polls for kill requests addressed to this node (from <c>gatehouse sessions kill</c> on any node) every
/// <see cref="Interval"/> on the injected clock while the node holds sessions, and ends those sessions (with no session
/// the poll's timer is not armed: it waits for <see cref="SessionRegistry.WhenAnySessionAsync"/>); on start, marks sessions an earlier run of this
/// node left open as ended; on stop, ends every session. On PostgreSQL, <see cref="SessionKillListener"/> ends them at
/// once through <c>LISTEN/NOTIFY</c>, and this poll is the fallback.
/// </summary>
internal sealed partial class SessionKillWatcher(
    IServiceScopeFactory scopes,
    SessionRegistry registry,
    GatewayNode node,
    TimeProvider time,
    ILogger<SessionKillWatcher> logger) : BackgroundService
{
    /// <summary>How often the store is asked for kill requests.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    /// <summary>The end reason of a session killed by an administrator.</summary>
    public const string KilledReason = "killed: ended by an administrator (gatehouse sessions kill)";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await using (var scope = scopes.CreateAsyncScope())
            {
                var orphans = await scope.ServiceProvider.GetRequiredService<SessionStore>().EndOrphansAsync(node.Name, "gateway_restarted: the node stopped while the session was open", stoppingToken).ConfigureAwait(false);
                if (orphans > 0)
                {
                    LogOrphans(orphans);
                }
            }

            while (true)
            {
                // No session, nothing to kill: the poll's timer runs only while this node holds sessions (an idle node
                // does not wake twice a second for nothing). A session's first poll comes one interval after it opened.
                await registry.WhenAnySessionAsync(stoppingToken).ConfigureAwait(false);
                using var timer = new PeriodicTimer(Interval, time);
                while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false) && registry.Count > 0)
                {
                    await PollOnceAsync(stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shutting down.
        }
        finally
        {
            registry.EndAll("gateway_shutdown: the gateway is stopping");
        }
    }

    /// <summary>Asks the store once for kill requests addressed to this node and ends those sessions.</summary>
    private async Task PollOnceAsync(CancellationToken stoppingToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var kills = await scope.ServiceProvider.GetRequiredService<SessionStore>().KillRequestsAsync(node.Name, stoppingToken).ConfigureAwait(false);
            foreach (var id in kills)
            {
                if (registry.Kill(id, KilledReason))
                {
                    LogKilled(id);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogPollFailed(e.GetType().Name, e.Message);
        }
    }

    [LoggerMessage(60, LogLevel.Warning, "Marked {Count} session(s) left open by an earlier run of this node as ended.")]
    private partial void LogOrphans(int count);

    [LoggerMessage(61, LogLevel.Information, "Session {SessionId} ended by an administrator.")]
    private partial void LogKilled(Guid sessionId);

    [LoggerMessage(62, LogLevel.Warning, "Could not read session kill requests ({Kind}: {Message}).")]
    private partial void LogPollFailed(string kind, string message);
}
