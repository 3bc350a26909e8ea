using System.Collections.Concurrent;
using System.Net;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;

namespace Gatehouse.Gateway.Sessions;

/// <summary>A relayed session on this node: who, where, since when, bytes each way, and the switch that ends it.</summary>
public sealed class LiveSession : IDisposable
{
    private readonly CancellationTokenSource _end = new();
    private string? _endReason;

    internal LiveSession(Guid id, string connectionId, IPAddress clientAddress, string protocol, SessionGrant grant, DateTimeOffset startedAt)
    {
        Id = id;
        ConnectionId = connectionId;
        ClientAddress = clientAddress;
        Protocol = protocol;
        Grant = grant;
        StartedAt = startedAt;
    }

    /// <summary>Session id.</summary>
    public Guid Id { get; }

    /// <summary>The RDP connection.</summary>
    public string ConnectionId { get; }

    /// <summary>The client's address.</summary>
    public IPAddress ClientAddress { get; }

    /// <summary>Sign-in protocol.</summary>
    public string Protocol { get; }

    /// <summary>What the sign-in granted.</summary>
    public SessionGrant Grant { get; }

    /// <summary>Start.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>Bytes each way, live.</summary>
    public RelayCounters Counters { get; } = new();

    /// <summary>Cancelled when the session must end (kill, policy, shutdown).</summary>
    public CancellationToken Ending => _end.Token;

    /// <summary>Why the gateway ended it, when it did.</summary>
    public string? EndReason => _endReason;

    /// <summary>The host leg, once connected.</summary>
    public BackendConnection? Backend { get; internal set; }

    /// <summary>
    /// True when the sign-in already relayed the MCS phase and the rewritten Client Info PDU (TLS sign-in): the relay
    /// then starts after them.
    /// </summary>
    public bool ClientInfoRelayed { get; internal set; }

    /// <summary>Ends the session with <paramref name="reason"/> (the first reason wins).</summary>
    public void End(string reason)
    {
        Interlocked.CompareExchange(ref _endReason, reason, null);
        _end.Cancel();
    }

    /// <inheritdoc/>
    public void Dispose() => _end.Dispose();
}

/// <summary>The live sessions of this node.</summary>
public sealed class SessionRegistry
{
    private readonly ConcurrentDictionary<Guid, LiveSession> _sessions = new();
    private TaskCompletionSource _added = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Every live session, newest first.</summary>
    public IReadOnlyList<LiveSession> List() => [.. _sessions.Values.OrderByDescending(s => s.StartedAt)];

    /// <summary>The live session with <paramref name="id"/>, or null.</summary>
    public LiveSession? Find(Guid id) => _sessions.GetValueOrDefault(id);

    /// <summary>Number of live sessions.</summary>
    public int Count => _sessions.Count;

    /// <summary>
    /// Completes when this node holds a session: at once if it holds one now, otherwise when the next one is added.
    /// Services that only have work while sessions are live wait on it instead of waking on a timer for nothing.
    /// </summary>
    public Task WhenAnySessionAsync(CancellationToken cancellationToken)
    {
        // Read the signal before looking at the table: an Add after the look completes this signal (it swaps it after
        // adding), and an Add before it is seen by the look.
        var added = Volatile.Read(ref _added);
        return _sessions.IsEmpty ? added.Task.WaitAsync(cancellationToken) : Task.CompletedTask;
    }

    /// <summary>Ends <paramref name="id"/>; false when this node does not hold it.</summary>
    public bool Kill(Guid id, string reason)
    {
        if (!_sessions.TryGetValue(id, out var session))
        {
            return false;
        }

        session.End(reason);
        return true;
    }

    /// <summary>Ends every session (shutdown).</summary>
    public void EndAll(string reason)
    {
        foreach (var session in _sessions.Values)
        {
            session.End(reason);
        }
    }

    internal LiveSession Add(string connectionId, IPAddress clientAddress, string protocol, SessionGrant grant, DateTimeOffset now)
    {
        var session = new LiveSession(Guid.NewGuid(), connectionId, clientAddress, protocol, grant, now);
        _sessions[session.Id] = session;
        Interlocked.Exchange(ref _added, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        Diagnostics.GatewayTelemetry.LiveSessions.Add(1, new KeyValuePair<string, object?>("gatehouse.protocol", protocol));
        return session;
    }

    internal void Remove(LiveSession session)
    {
        if (_sessions.TryRemove(session.Id, out _))
        {
            Diagnostics.GatewayTelemetry.LiveSessions.Add(-1, new KeyValuePair<string, object?>("gatehouse.protocol", session.Protocol));
        }
    }
}
