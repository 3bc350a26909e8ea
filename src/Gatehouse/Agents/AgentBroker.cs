using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Gatehouse.Access;
using Gatehouse.Gateway.Agents;
using Gatehouse.Identity;
using Gatehouse.Identity.Gateway;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Agents;

/// <summary>
/// The server's side of the agent channel, in memory on the node the agent polls: a mailbox of work per agent (the
/// agent's long poll takes it) and the logons waiting for the agent's answer. The gateway asks through
/// <see cref="IHostAgentLogons"/>; a logon fails closed when the agent is silent, unhealthy or late.
/// </summary>
/// <remarks>
/// An agent polls one node; a gateway on another node of a cluster does not see its mailbox (its logons then fail
/// with <c>agent_unavailable</c>). Routing between nodes is left for later.
/// </remarks>
public sealed partial class AgentBroker(IServiceScopeFactory scopes, TimeProvider time, ILogger<AgentBroker> logger) : IHostAgentLogons
{
    /// <summary>How long a poll waits for work before it answers with none.</summary>
    public static readonly TimeSpan PollWait = TimeSpan.FromSeconds(25);

    /// <summary>Most work items in one poll answer.</summary>
    public const int MaxItemsPerPoll = 16;

    private readonly ConcurrentDictionary<Guid, Channel<AgentWorkItem>> _mailboxes = new();
    private readonly ConcurrentDictionary<Guid, Guid> _tenants = new();
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
        try
        {
            Mailbox(agentId).Writer.TryWrite(item);
            var answer = await result.Task.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
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
        }
    }

    /// <inheritdoc/>
    public void ReportAccepted(Guid agentId, Guid logonId, string userPrincipalName) =>
        Mailbox(agentId).Writer.TryWrite(new AgentWorkItem(Guid.NewGuid(), "accepted", userPrincipalName, LogonId: logonId));

    /// <inheritdoc/>
    public void RequestDisable(Guid tenantId, Guid? agentId, string userPrincipalName)
    {
        var item = new AgentWorkItem(Guid.NewGuid(), "disable", userPrincipalName);
        if (agentId is { } one)
        {
            Mailbox(one).Writer.TryWrite(item);
            return;
        }

        // Every agent of the user's tenant that polls this node: an agent without an account for the user ignores it.
        // Agents of other tenants never learn the user's name.
        foreach (var (id, mailbox) in _mailboxes)
        {
            if (_tenants.TryGetValue(id, out var tenant) && tenant == tenantId)
            {
                mailbox.Writer.TryWrite(item with { Id = Guid.NewGuid() });
            }
        }
    }

    /// <summary>Records the tenant of an agent that polls this node (work for a tenant's users goes only to its agents).</summary>
    public void Register(Guid agentId, Guid tenantId) => _tenants[agentId] = tenantId;

    /// <summary>Logons waiting for an agent's answer (tests wait on it).</summary>
    public int PendingLogons => _pending.Count;

    /// <summary>The agent's long poll: the work waiting (at most <see cref="MaxItemsPerPoll"/>), waiting up to <paramref name="wait"/> for some.</summary>
    public async Task<IReadOnlyList<AgentWorkItem>> PollAsync(Guid agentId, TimeSpan wait, CancellationToken cancellationToken)
    {
        var reader = Mailbox(agentId).Reader;
        using var timeout = new CancellationTokenSource(wait, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            await reader.WaitToReadAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return [];
        }

        var items = new List<AgentWorkItem>();
        while (items.Count < MaxItemsPerPoll && reader.TryRead(out var item))
        {
            items.Add(item);
        }

        return items;
    }

    /// <summary>The agent's answer to a work item; false when no logon of this agent waits for it (late, or not its own).</summary>
    public bool Complete(Guid agentId, AgentWorkResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return _pending.TryGetValue(result.Id, out var waiting) && waiting.AgentId == agentId && waiting.Result.TrySetResult(result);
    }

    private Channel<AgentWorkItem> Mailbox(Guid agentId) =>
        _mailboxes.GetOrAdd(agentId, _ => Channel.CreateBounded<AgentWorkItem>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest }));

    private static AgentLogonOutcome Refused(Guid logonId, string reason, string fix) => new() { LogonId = logonId, Reason = reason, Fix = fix };

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentLogonAnswered, Level = LogLevel.Information, Message = "The agent on {Host} prepared the account {Account} for {User}")]
    private static partial void LogLogonAnswered(ILogger logger, string host, string user, string account);
}
