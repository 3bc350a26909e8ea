using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Relay;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Sessions;

/// <summary>The result of <see cref="SessionOpener.AttachAsync"/>: a live session with its host leg, or why not.</summary>
public sealed record SessionOpenResult(LiveSession? Session, string Reason)
{
    /// <summary>True when the session is open.</summary>
    public bool Opened => Session is not null;
}

/// <summary>
/// The sessions of the session driver: registers a session over its connected host leg and writes the start record
/// before the first byte is relayed (a session whose record cannot be written is refused), relays until either side
/// ends, the session is killed or its maximum duration runs out, and closes it (registry, host leg, end record) in one
/// place, relayed or abandoned.
/// </summary>
public sealed partial class SessionOpener(
    SessionRegistry registry,
    ISessionJournal journal,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<SessionOpener> logger)
{
    /// <summary>
    /// Records the start of a session whose host leg is already connected (the TLS sign-in opens it before the password
    /// is known); when the record cannot be written the host leg is closed and nothing is left open.
    /// </summary>
    public async Task<SessionOpenResult> AttachAsync(GatewayConnection connection, string protocol, SessionGrant grant, BackendConnection backend, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(grant);
        ArgumentNullException.ThrowIfNull(backend);
        var session = registry.Add(connection.Id, connection.RemoteAddress, protocol, grant, time.GetUtcNow());
        session.Backend = backend;
        try
        {
            await journal.StartAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The start was cancelled while the record was written (the sign-in decision's deadline passed, or the
            // gateway stops): nothing stays open, and a record that was written gets its end.
            await CloseAsync(session, "start_cancelled: the session's start was cancelled while its record was written (the sign-in decision's deadline passed, or the gateway is stopping)").ConfigureAwait(false);
            throw;
        }
        catch (Exception e)
        {
            registry.Remove(session);
            await backend.DisposeAsync().ConfigureAwait(false);
            session.Dispose();
            LogStartRecordFailed(connection.Id, e.GetType().Name, e.Message);
            return new SessionOpenResult(null, $"session_record_failed: the session's start record could not be written ({e.GetType().Name}); the session is refused");
        }

        return new SessionOpenResult(session, "opened");
    }

    /// <summary>Relays <paramref name="session"/> until it ends, then writes its end record and closes the host leg.</summary>
    public async Task<RelayOutcome> RunAsync(LiveSession session, GatewayConnection connection, Stream client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(connection);
        var backend = session.Backend ?? throw new InvalidOperationException("the session has no host leg");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Ending);
        using var maxDuration = session.Grant.MaxDuration is { } limit
            ? time.CreateTimer(_ => session.End($"max_session_duration: the policies allow {limit.TotalMinutes:0} minute{(limit == TimeSpan.FromMinutes(1) ? string.Empty : "s")}"), null, limit, Timeout.InfiniteTimeSpan)
            : null;
        var settings = new RelaySettings
        {
            ClientRequestedProtocols = connection.ConnectionRequest?.RequestedProtocols ?? SecurityProtocol.Rdp,
            BackendSelectedProtocol = backend.Selected,
            Credentials = session.Grant.Credentials,
            BufferBytes = options.Value.RelayBufferBytes,
            ClientInfoRelayed = session.ClientInfoRelayed,
        };
        RelayOutcome outcome;
        try
        {
            outcome = await SessionRelay.RunAsync(client, backend.Stream, settings, stop.Token, session.Counters).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Whatever broke, the session still gets its end record.
            outcome = new RelayOutcome(RelayEnd.ProtocolError, $"{e.GetType().Name}: {e.Message}", session.Counters.FromClient, session.Counters.FromBackend);
        }
        finally
        {
            // The host leg closes as soon as the relay ends (before the end record is written), once.
            registry.Remove(session);
            session.Backend = null;
            await backend.DisposeAsync().ConfigureAwait(false);
        }

        var reason = outcome.End == RelayEnd.Cancelled && session.EndReason is { } ended ? ended : $"{Describe(outcome.End)}: {outcome.Reason}";
        await CloseAsync(session, reason).ConfigureAwait(false);
        LogSessionEnded(session.Id, session.Grant.UserPrincipalName, session.Grant.HostName, reason, outcome.BytesFromClient, outcome.BytesFromBackend);
        return outcome;
    }

    /// <summary>Ends a session that was opened but never relayed (the client left before its answer): host leg closed, end record written.</summary>
    public Task AbandonAsync(LiveSession session, string reason)
    {
        ArgumentNullException.ThrowIfNull(session);
        return CloseAsync(session, reason);
    }

    /// <summary>Closes a session, relayed or not: out of the registry, host leg closed, end record written, disposed.</summary>
    private async Task CloseAsync(LiveSession session, string reason)
    {
        registry.Remove(session);
        if (session.Backend is { } backend)
        {
            await backend.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            await journal.EndAsync(session, reason, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogEndRecordFailed(session.Id, e.GetType().Name, e.Message);
        }

        session.Dispose();
    }

    private static string Describe(RelayEnd end) => end switch
    {
        RelayEnd.ClientClosed => "client_closed",
        RelayEnd.BackendClosed => "host_closed",
        RelayEnd.RedirectionRefused => "redirection_refused",
        RelayEnd.ProtocolError => "protocol_error",
        _ => "ended_by_gateway",
    };

    [LoggerMessage(EventIds.SessionStartRecordFailed, LogLevel.Error, "RDP connection {ConnectionId}: the session start record could not be written ({Kind}: {Message}); the session is refused.")]
    private partial void LogStartRecordFailed(string connectionId, string kind, string message);

    [LoggerMessage(EventIds.SessionEndRecordFailed, LogLevel.Error, "Session {SessionId}: the end record could not be written ({Kind}: {Message}).")]
    private partial void LogEndRecordFailed(Guid sessionId, string kind, string message);

    [LoggerMessage(EventIds.SessionEnded, LogLevel.Information, "Session {SessionId} of {Upn} on {Host} ended: {Reason} ({BytesFromClient} bytes from the client, {BytesFromBackend} from the host).")]
    private partial void LogSessionEnded(Guid sessionId, string upn, string host, string reason, long bytesFromClient, long bytesFromBackend);
}
