using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Gatehouse.Access;
using Gatehouse.Gateway.Agents;
using Gatehouse.Identity;
using Gatehouse.Identity.Gateway;
using Gatehouse.Storage;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Agents;

/// <summary>
/// The server's side of the agent channel, in memory on the node the agent polls: a mailbox of work per agent (the
/// agent's long poll takes it) and the logons waiting for the agent's answer. The gateway asks through
/// <see cref="IHostAgentLogons"/>; a logon fails closed when the agent is silent, unhealthy or late.
/// </summary>
/// <remarks>
/// An agent polls one node. Work asked on a node the agent has not polled lately also goes through the store
/// (<see cref="AgentWorkRequest"/>, with a <c>NOTIFY</c> on <see cref="WorkChannel"/> on PostgreSQL): the node the agent
/// polls claims it (one claim wins; <see cref="ClaimFromStoreAsync"/>), hands it to the agent and writes a logon's
/// answer back, protected as stored host passwords are; the asking node reads it, deletes the row, and deletes it
/// anyway when it stops waiting. When the agent polls the asking node, the in-memory mailbox is the fast path.
/// </remarks>
public sealed partial class AgentBroker(
    IServiceScopeFactory scopes, TimeProvider time, ILogger<AgentBroker> logger, IDataProtectionProvider? protection = null, string? node = null) : IHostAgentLogons
{
    /// <summary>The PostgreSQL <c>NOTIFY</c> channel of work posted to the store; the payload is the agent id.</summary>
    public const string WorkChannel = "gatehouse_agent_work";

    /// <summary>How often a node waiting for an answer through the store reads it.</summary>
    public static readonly TimeSpan AnswerReadInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>How long after its last poll an agent still counts as polling this node (it polls again at once).</summary>
    public static readonly TimeSpan PollGrace = TimeSpan.FromSeconds(5);

    private const string AnswerPurpose = "Gatehouse.AgentLogonAnswer.v1";
    private readonly IDataProtector? _answers = protection?.CreateProtector(AnswerPurpose);
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _lastPoll = new();
    private readonly ConcurrentDictionary<Guid, Guid> _posted = new();
    private readonly ConcurrentDictionary<Guid, (Guid AgentId, DateTimeOffset ExpiresAt)> _claimed = new();

    /// <summary>This node's name in the store's work rows.</summary>
    public string Node { get; } = node ?? $"{Environment.MachineName[..Math.Min(32, Environment.MachineName.Length)]}-{Guid.NewGuid():N}";

    /// <summary>How long a poll waits for work before it answers with none.</summary>
    public static readonly TimeSpan PollWait = TimeSpan.FromSeconds(25);

    /// <summary>Most work items in one poll answer.</summary>
    public const int MaxItemsPerPoll = 16;

    private readonly ConcurrentDictionary<Guid, Channel<AgentWorkItem>> _mailboxes = new();
    private readonly ConcurrentDictionary<Guid, Guid> _tenants = new();
    private readonly ConcurrentDictionary<Guid, int> _polls = new();
    private readonly ConcurrentDictionary<Guid, (Guid AgentId, TaskCompletionSource<AgentWorkResult> Result)> _pending = new();

    /// <inheritdoc/>
    public async Task<AgentLogonOutcome> RequestLogonAsync(Guid agentId, Guid hostId, string userPrincipalName, LoginLevel level, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(userPrincipalName);
        string hostName;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var agent = await db.HostAgents.AsNoTracking().FirstOrDefaultAsync(a => a.Id == agentId, cancellationToken).ConfigureAwait(false);
            hostName = await db.Hosts.AsNoTracking().Where(h => h.Id == hostId).Select(h => h.Name).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false) ?? hostId.ToString();
            if (agent is null)
            {
                return Refused(Guid.Empty, $"agent_unavailable: the agent of {hostName} was removed", $"gatehouse host enroll {hostName}");
            }

            if (AgentRegistry.Unhealthy(agent, hostName, time.GetUtcNow()) is { } unhealthy)
            {
                return Refused(Guid.Empty, unhealthy, $"Check the agent on {hostName} ('systemctl status gatehouse-agent', 'gatehouse host status {hostName}').");
            }
        }

        var item = new AgentWorkItem(Guid.NewGuid(), "logon", userPrincipalName, level == LoginLevel.Administrator ? "administrator" : "user");
        var result = new TaskCompletionSource<AgentWorkResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[item.Id] = (agentId, result);
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var posted = false;
        try
        {
            Mailbox(agentId).Writer.TryWrite(item);
            var answered = result.Task;
            if (!PollsHere(agentId) && _answers is not null)
            {
                // The agent may poll another node: the request goes through the store too (one of the two wins the
                // claim). Marked as posted only once the row exists, so a poll here never tries to claim a missing row.
                posted = await PostAsync(item, agentId, timeout, cancellationToken).ConfigureAwait(false);
                if (posted)
                {
                    _posted[item.Id] = agentId;
                    answered = FirstAnswerAsync(result.Task, ReadAnswerAsync(item.Id, stopReading.Token));
                }
            }

            var answer = await answered.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
            if (!answer.Ok || string.IsNullOrEmpty(answer.AccountName) || string.IsNullOrEmpty(answer.Password))
            {
                return Refused(item.Id, $"agent_logon_failed: the agent on {hostName} could not prepare an account for {userPrincipalName}: {answer.Error ?? "no account or password in its answer"}", $"See the agent's log on {hostName} ('journalctl -u gatehouse-agent').");
            }

            LogLogonAnswered(logger, hostName, userPrincipalName, answer.AccountName);
            return new AgentLogonOutcome { Account = new MappedAccount(string.Empty, answer.AccountName, answer.Password), LogonId = item.Id };
        }
        catch (TimeoutException)
        {
            return Refused(item.Id, string.Create(CultureInfo.InvariantCulture, $"agent_unavailable: the agent on {hostName} did not answer within {timeout.TotalSeconds} s"), $"Check that the agent on {hostName} runs and reaches the server ('systemctl status gatehouse-agent').");
        }
        finally
        {
            _pending.TryRemove(item.Id, out _);
            _posted.TryRemove(item.Id, out _);
            await stopReading.CancelAsync().ConfigureAwait(false);
            if (posted)
            {
                await DeleteAsync(item.Id).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc/>
    public void ReportAccepted(Guid agentId, Guid logonId, string userPrincipalName) =>
        Send(agentId, new AgentWorkItem(Guid.NewGuid(), "accepted", userPrincipalName, LogonId: logonId));

    /// <inheritdoc/>
    public void RequestDisable(Guid tenantId, Guid? agentId, string userPrincipalName)
    {
        var item = new AgentWorkItem(Guid.NewGuid(), "disable", userPrincipalName);
        if (agentId is { } one)
        {
            Send(one, item);
            return;
        }

        // Every agent of the user's tenant that polls this node: an agent without an account for the user ignores it.
        // Agents of other tenants never learn the user's name.
        foreach (var (id, tenant) in _tenants)
        {
            if (tenant == tenantId)
            {
                Mailbox(id).Writer.TryWrite(item with { Id = Guid.NewGuid() });
            }
        }

        // And the tenant's agents that poll other nodes, through the store.
        if (_answers is not null)
        {
            _ = PostToTenantAsync(tenantId, item);
        }
    }

    /// <summary>Records the tenant of an agent that polls this node (work for a tenant's users goes only to its agents).</summary>
    public void Register(Guid agentId, Guid tenantId)
    {
        _tenants[agentId] = tenantId;
        _lastPoll[agentId] = time.GetUtcNow();
    }

    /// <summary>The agents that poll this node (now, or within <see cref="PollGrace"/>).</summary>
    public IReadOnlyList<Guid> AgentsPollingHere() => [.. _lastPoll.Keys.Where(PollsHere)];

    /// <summary>True when <paramref name="agentId"/> polls this node now or did within <see cref="PollGrace"/>.</summary>
    public bool PollsHere(Guid agentId) =>
        IsPolling(agentId) || (_lastPoll.TryGetValue(agentId, out var at) && time.GetUtcNow() - at < PollGrace);

    /// <summary>Raised when an agent's long poll starts on this node (<see cref="AgentWorkRelay"/> wakes on it).</summary>
    public event Action? PollStarted;

    /// <summary>True while a long poll of <paramref name="agentId"/> waits on this node (tests wait on it).</summary>
    public bool IsPolling(Guid agentId) => _polls.TryGetValue(agentId, out var n) && n > 0;

    /// <summary>Work items waiting in <paramref name="agentId"/>'s mailbox on this node (tests read it).</summary>
    public int Waiting(Guid agentId) => _mailboxes.TryGetValue(agentId, out var mailbox) ? mailbox.Reader.Count : 0;

    /// <summary>Logons waiting for an agent's answer (tests wait on it).</summary>
    public int PendingLogons => _pending.Count;

    /// <summary>The agent's long poll: the work waiting (at most <see cref="MaxItemsPerPoll"/>), waiting up to <paramref name="wait"/> for some.</summary>
    public async Task<IReadOnlyList<AgentWorkItem>> PollAsync(Guid agentId, TimeSpan wait, CancellationToken cancellationToken)
    {
        var reader = Mailbox(agentId).Reader;
        using var timeout = new CancellationTokenSource(wait, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        _polls.AddOrUpdate(agentId, 1, (_, n) => n + 1);
        PollStarted?.Invoke();
        try
        {
            await reader.WaitToReadAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return [];
        }
        finally
        {
            _polls.AddOrUpdate(agentId, 0, (_, n) => n - 1);
            _lastPoll[agentId] = time.GetUtcNow();
        }

        var items = new List<AgentWorkItem>();
        while (items.Count < MaxItemsPerPoll && reader.TryRead(out var item))
        {
            // A logon whose gateway gave up meanwhile (the agent was away) is dropped: no password is set for nobody.
            // One that went through the store too is handed out here only if this node wins its claim.
            if (item.Kind != "logon" || Claimed(item.Id)
                || (_pending.ContainsKey(item.Id) && (!_posted.ContainsKey(item.Id) || await ClaimAsync(item.Id).ConfigureAwait(false))))
            {
                items.Add(item);
            }
        }

        return items;
    }

    /// <summary>
    /// True for a logon this node claimed from the store whose asking node still waits; one it has given up on is
    /// forgotten (as a local logon whose gateway gave up is dropped: no password is set for nobody).
    /// </summary>
    private bool Claimed(Guid id)
    {
        if (!_claimed.TryGetValue(id, out var claim))
        {
            return false;
        }

        if (claim.ExpiresAt > time.GetUtcNow())
        {
            return true;
        }

        _claimed.TryRemove(id, out _);
        return false;
    }

    /// <summary>The agent's answer to a work item; false when no logon of this agent waits for it (late, or not its own).</summary>
    public bool Complete(Guid agentId, AgentWorkResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return _pending.TryGetValue(result.Id, out var waiting) && waiting.AgentId == agentId && waiting.Result.TrySetResult(result);
    }

    /// <summary>
    /// The agent's answer: to the logon waiting on this node, or (for work claimed from the store) written back to the
    /// store, protected, for the node that asked. False when nobody waits for it any more.
    /// </summary>
    public async Task<bool> CompleteAsync(Guid agentId, AgentWorkResult result, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (Complete(agentId, result))
        {
            return true;
        }

        if (_answers is null || !_claimed.TryGetValue(result.Id, out var owner) || owner.AgentId != agentId || !_claimed.TryRemove(result.Id, out _))
        {
            return false;
        }

        var answer = _answers.Protect(JsonSerializer.Serialize(result, AgentJson.Options));
        if (answer.Length > AgentWorkRequest.AnswerLength)
        {
            return false;
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var id = result.Id;
        var node = Node;
        var now = time.GetUtcNow();
        var written = await db.AgentWorkRequests
            .Where(r => r.Id == id && r.ClaimedBy == node && r.AnswerProtected == null && r.ExpiresAt > now)
            .ExecuteUpdateAsync(u => u.SetProperty(r => r.AnswerProtected, answer), cancellationToken).ConfigureAwait(false);
        return written == 1;
    }

    /// <summary>
    /// Claims the store's unclaimed work for the agents that poll this node and puts it in their mailboxes (one node
    /// wins each row); work that needs no answer is deleted once claimed. Sweeps expired rows. Returns how many were claimed.
    /// </summary>
    public async Task<int> ClaimFromStoreAsync(CancellationToken cancellationToken)
    {
        var agents = AgentsPollingHere();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var now = time.GetUtcNow();
        await db.AgentWorkRequests.Where(r => r.ExpiresAt <= now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        if (agents.Count == 0)
        {
            return 0;
        }

        var node = Node;
        var waiting = await db.AgentWorkRequests.AsNoTracking()
            .Where(r => agents.Contains(r.AgentId) && r.ClaimedBy == null && r.RequestedBy != node && r.ExpiresAt > now)
            .OrderBy(r => r.CreatedAt)
            .Take(64)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var claimed = 0;
        foreach (var row in waiting)
        {
            var id = row.Id;
            var won = await db.AgentWorkRequests.Where(r => r.Id == id && r.ClaimedBy == null)
                .ExecuteUpdateAsync(u => u.SetProperty(r => r.ClaimedBy, node), cancellationToken).ConfigureAwait(false) == 1;
            if (!won)
            {
                continue;
            }

            claimed++;
            if (row.Kind == "logon")
            {
                _claimed[row.Id] = (row.AgentId, row.ExpiresAt);
            }
            else
            {
                await db.AgentWorkRequests.Where(r => r.Id == id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
            }

            Mailbox(row.AgentId).Writer.TryWrite(new AgentWorkItem(row.Id, row.Kind, row.UserPrincipalName, row.Level, row.LogonId));
            LogClaimed(logger, row.Kind, row.AgentId, row.RequestedBy);
        }

        return claimed;
    }

    /// <summary>Work for an agent: its mailbox here, and the store when it has not polled this node lately.</summary>
    private void Send(Guid agentId, AgentWorkItem item)
    {
        Mailbox(agentId).Writer.TryWrite(item);
        if (!PollsHere(agentId) && _answers is not null)
        {
            _ = PostAsync(item, agentId, HostAgentRunner.RotateAfter, CancellationToken.None);
        }
    }

    private async Task PostToTenantAsync(Guid tenantId, AgentWorkItem item)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var agents = await db.HostAgents.AsNoTracking().Where(a => a.TenantId == tenantId).Select(a => a.Id).ToListAsync().ConfigureAwait(false);
            foreach (var agentId in agents.Where(a => !PollsHere(a)))
            {
                await PostAsync(item with { Id = Guid.NewGuid() }, agentId, HostAgentRunner.RotateAfter, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is DbException or DbUpdateException or InvalidOperationException)
        {
            LogPostFailed(logger, item.Kind, e.Message);
        }
    }

    /// <summary>Writes <paramref name="item"/> to the store for the node <paramref name="agentId"/> polls (and wakes it on PostgreSQL); false when the store did not take it.</summary>
    private async Task<bool> PostAsync(AgentWorkItem item, Guid agentId, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var now = time.GetUtcNow();
            db.AgentWorkRequests.Add(new AgentWorkRequest
            {
                Id = item.Id,
                AgentId = agentId,
                Kind = item.Kind,
                UserPrincipalName = item.UserPrincipalName,
                Level = item.Level,
                LogonId = item.LogonId,
                RequestedBy = Node,
                CreatedAt = now,
                ExpiresAt = now + lifetime,
            });
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            if (db.Database.IsNpgsql())
            {
                var payload = agentId.ToString("D");
                await db.Database.ExecuteSqlAsync($"SELECT pg_notify({WorkChannel}, {payload})", cancellationToken).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception e) when (e is DbException or DbUpdateException or InvalidOperationException)
        {
            LogPostFailed(logger, item.Kind, e.Message);
            return false;
        }
    }

    /// <summary>Waits for the answer another node wrote for <paramref name="id"/>; reads it once and deletes the row.</summary>
    private async Task<AgentWorkResult> ReadAnswerAsync(Guid id, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(AnswerReadInterval, time, cancellationToken).ConfigureAwait(false);
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            string? answer;
            try
            {
                answer = await db.AgentWorkRequests.AsNoTracking().Where(r => r.Id == id).Select(r => r.AnswerProtected).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbException e)
            {
                LogPostFailed(logger, "answer", e.Message);
                continue;
            }

            if (answer is null)
            {
                continue;
            }

            if (await db.AgentWorkRequests.Where(r => r.Id == id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                continue;
            }

            try
            {
                return JsonSerializer.Deserialize<AgentWorkResult>(_answers!.Unprotect(answer), AgentJson.Options)
                    ?? new AgentWorkResult(id, false, null, null, "the answer in the store is empty");
            }
            catch (Exception e) when (e is JsonException or System.Security.Cryptography.CryptographicException)
            {
                return new AgentWorkResult(id, false, null, null, $"the answer in the store cannot be read ({e.GetType().Name})");
            }
        }
    }

    private static async Task<AgentWorkResult> FirstAnswerAsync(Task<AgentWorkResult> local, Task<AgentWorkResult> store)
    {
        var first = await Task.WhenAny(local, store).ConfigureAwait(false);
        return first.IsCompletedSuccessfully ? await first.ConfigureAwait(false) : await local.ConfigureAwait(false);
    }

    private async Task<bool> ClaimAsync(Guid id)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            var node = Node;
            return await db.AgentWorkRequests.Where(r => r.Id == id && r.ClaimedBy == null)
                .ExecuteUpdateAsync(u => u.SetProperty(r => r.ClaimedBy, node)).ConfigureAwait(false) == 1;
        }
        catch (DbException e)
        {
            LogPostFailed(logger, "claim", e.Message);
            return false;
        }
    }

    private async Task DeleteAsync(Guid id)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().AgentWorkRequests.Where(r => r.Id == id).ExecuteDeleteAsync().ConfigureAwait(false);
        }
        catch (DbException e)
        {
            LogPostFailed(logger, "delete", e.Message);
        }
    }

    private Channel<AgentWorkItem> Mailbox(Guid agentId) =>
        _mailboxes.GetOrAdd(agentId, _ => Channel.CreateBounded<AgentWorkItem>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest }));

    private static AgentLogonOutcome Refused(Guid logonId, string reason, string fix) => new() { LogonId = logonId, Reason = reason, Fix = fix };

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentWorkClaimed, Level = LogLevel.Debug, Message = "Claimed {Kind} work from the store for agent {AgentId} (asked on node {Node})")]
    private static partial void LogClaimed(ILogger logger, string kind, Guid agentId, string node);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentWorkStoreFailed, Level = LogLevel.Warning, Message = "Agent work through the store ({Kind}) failed: {Error}; the in-memory mailbox still serves agents that poll this node")]
    private static partial void LogPostFailed(ILogger logger, string kind, string error);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentLogonAnswered, Level = LogLevel.Information, Message = "The agent on {Host} prepared the account {Account} for {User}")]
    private static partial void LogLogonAnswered(ILogger logger, string host, string user, string account);
}
