using System.Collections.Concurrent;
using System.Reflection;
using System.Security.Cryptography;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.Backend;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Agents;

/// <summary>What the agent found on the local RDP port.</summary>
public sealed record RdpProbeResult(bool Listening, string? CertificatePin, string? Error);

/// <summary>Reads the local RDP service: listening, and the fingerprint of its TLS key.</summary>
public interface IRdpProbe
{
    /// <summary>Connects to the RDP port on this host (X.224 negotiation and TLS, as the gateway does).</summary>
    Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken);
}

/// <summary>The real probe: the gateway's own backend connector against 127.0.0.1 (TLS security; no credential is sent).</summary>
public sealed class LocalRdpProbe : IRdpProbe
{
    /// <inheritdoc/>
    public async Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken)
    {
        var result = await BackendConnector.ConnectAsync(new BackendTarget("127.0.0.1", port, SecurityProtocol.Ssl, string.Empty), TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        if (result.Connection is { } connection)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            return new RdpProbeResult(true, connection.HostKey, null);
        }

        return new RdpProbeResult(result.Failure != BackendFailure.Unreachable, null, result.Reason);
    }
}

/// <summary>
/// The agent: <see cref="JoinAsync"/> once (<c>gatehouse agent join</c>), then <see cref="RunAsync"/> as a service
/// (<c>gatehouse agent run</c>): a long poll out to the server for work (logons, rotations, locks) and a health report
/// every interval, each reconnecting by itself with a doubling back-off (1 s to 60 s).
/// </summary>
public sealed partial class HostAgentRunner(
    AgentState state, AgentConfig config, ECDsa key, AgentClient client, IHostAccounts accounts, IRdpProbe probe, TimeProvider time, ILogger logger) : IDisposable
{
    /// <summary>A logon's password is changed again at the latest this long after it was given.</summary>
    public static readonly TimeSpan RotateAfter = TimeSpan.FromSeconds(60);

    /// <summary>The agent's version.</summary>
    public static readonly string Version = typeof(HostAgentRunner).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);
    private readonly SemaphoreSlim _accountsGate = new(1, 1);
    private readonly ConcurrentDictionary<Guid, (string Name, CancellationTokenSource Timer)> _rotations = new();
    private string? _lastError;

    /// <summary>How many times the poll loop has reconnected after a failure (tests wait on it).</summary>
    public int Reconnects { get; private set; }

    /// <summary>How many health reports the server took.</summary>
    public int HealthReports { get; private set; }

    /// <summary>Reads the addresses the RDP port listens on for the health report (default: <see cref="ListeningAddresses.ReadLocal"/>; tests replace it).</summary>
    public Func<int, IReadOnlyList<string>?> ListenAddresses { get; init; } = port => ListeningAddresses.ReadLocal(port);

    /// <summary>Joins: creates the key pair (0600, in the state directory), reads the local RDP key, registers with the token, and saves the configuration.</summary>
    public static async Task<AgentConfig> JoinAsync(
        AgentState state, Uri server, string token, int rdpPort, int healthIntervalSeconds, IReadOnlyList<string>? adminGroups, IReadOnlyList<string>? userGroups,
        HttpMessageHandler? handler, IRdpProbe probe, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(probe);
        if (!EnrollmentToken.TryParse(token, out var parsed, out var error))
        {
            throw new AgentChannelException(error);
        }

        using var key = state.CreateKey();
        var rdp = await probe.ProbeAsync(rdpPort, cancellationToken).ConfigureAwait(false);
        using var http = new HttpClient(handler ?? AgentClient.PinnedHandler(parsed.ServerCertificateSha256), disposeHandler: handler is null) { Timeout = TimeSpan.FromSeconds(60) };
        var client = new AgentClient(http, time);
        var answer = await client.JoinAsync(
            server,
            new AgentJoinRequest(parsed.ToString(), Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), System.Runtime.InteropServices.RuntimeInformation.OSDescription, Version, rdpPort, rdp.CertificatePin, healthIntervalSeconds),
            cancellationToken).ConfigureAwait(false);
        var defaults = new AgentConfig { Server = server, ServerCertificateSha256 = parsed.ServerCertificateSha256, AgentId = answer.AgentId, Audience = answer.Audience };
        var config = defaults with
        {
            HostName = answer.HostName,
            RdpPort = rdpPort,
            HealthIntervalSeconds = healthIntervalSeconds,
            AdminGroups = adminGroups is { Count: > 0 } ? adminGroups : defaults.AdminGroups,
            UserGroups = userGroups ?? defaults.UserGroups,
        };
        state.SaveConfig(config);
        return config;
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        LogStarted(logger, config.AgentId, config.Server, config.HostName);
        await RecoverAsync(cancellationToken).ConfigureAwait(false);
        await Task.WhenAll(PollLoopAsync(cancellationToken), HealthLoopAsync(cancellationToken)).ConfigureAwait(false);
    }

    private async Task PollLoopAsync(CancellationToken cancellationToken)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var work = await client.PollAsync(config, key, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromSeconds(1);
                foreach (var item in work)
                {
                    var result = await HandleAsync(item, cancellationToken).ConfigureAwait(false);
                    if (result is not null
                        && !await client.SendResultAsync(config, key, result, cancellationToken).ConfigureAwait(false)
                        && result.Ok)
                    {
                        // Nobody waits for this logon any more (the gateway gave up): its password must not live on.
                        await RotateNowAsync(item.Id, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is HttpRequestException or AgentChannelException or IOException or TaskCanceledException)
            {
                _lastError = e.Message;
                Reconnects++;
                LogChannelFailed(logger, e.Message, backoff.TotalSeconds);
                try
                {
                    await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task HealthLoopAsync(CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromSeconds(Math.Clamp(config.HealthIntervalSeconds, AgentRegistry.MinHealthInterval, AgentRegistry.MaxHealthInterval));
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await ReportHealthAsync(cancellationToken).ConfigureAwait(false);
                HealthReports++;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is HttpRequestException or AgentChannelException or IOException or TaskCanceledException)
            {
                _lastError = e.Message;
                LogChannelFailed(logger, e.Message, interval.TotalSeconds);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Probes the RDP service and sends one health report.</summary>
    public async Task ReportHealthAsync(CancellationToken cancellationToken)
    {
        var rdp = await probe.ProbeAsync(config.RdpPort, cancellationToken).ConfigureAwait(false);
        var report = new AgentHealthReport(rdp.Listening && rdp.CertificatePin is not null, rdp.CertificatePin, state.LoadAccounts().Count, Version, time.GetUtcNow(), rdp.Error ?? _lastError, config.HealthIntervalSeconds, ListenAddresses(config.RdpPort));
        await client.SendHealthAsync(config, key, report, cancellationToken).ConfigureAwait(false);
    }

    private async Task RotateNowAsync(Guid logonId, CancellationToken cancellationToken)
    {
        if (!_rotations.TryRemove(logonId, out var rotation))
        {
            return;
        }

        await rotation.Timer.CancelAsync().ConfigureAwait(false);
        rotation.Timer.Dispose();
        await _accountsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RotateAsync(rotation.Name, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HostAccountException or IOException or InvalidOperationException)
        {
            _lastError = e.Message;
            LogWorkFailed(logger, "rotate", rotation.Name, e.Message);
        }
        finally
        {
            _accountsGate.Release();
        }
    }

    /// <summary>
    /// Changes the password of every account whose logon password was handed out and not changed again (the agent
    /// stopped or died in between): no account is left with a password someone was given. Returns how many.
    /// </summary>
    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        var rotated = 0;
        await _accountsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var name in state.LoadPendingRotations())
            {
                if (_rotations.Values.Any(r => r.Name == name))
                {
                    continue;
                }

                try
                {
                    if (await accounts.ExistsAsync(name, cancellationToken).ConfigureAwait(false))
                    {
                        await RotateAsync(name, cancellationToken).ConfigureAwait(false);
                        rotated++;
                    }
                    else
                    {
                        state.RemovePendingRotation(name);
                    }
                }
                catch (Exception e) when (e is HostAccountException or IOException or InvalidOperationException)
                {
                    _lastError = e.Message;
                    LogWorkFailed(logger, "rotate", name, e.Message);
                }
            }
        }
        finally
        {
            _accountsGate.Release();
        }

        return rotated;
    }

    /// <summary>Does one work item; the answer to send (null for items that need none).</summary>
    public async Task<AgentWorkResult?> HandleAsync(AgentWorkItem item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        await _accountsGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            switch (item.Kind)
            {
                case "logon":
                    return await LogonAsync(item, cancellationToken).ConfigureAwait(false);
                case "accepted" when item.LogonId is { } logonId && _rotations.TryRemove(logonId, out var rotation):
                    await rotation.Timer.CancelAsync().ConfigureAwait(false);
                    rotation.Timer.Dispose();
                    await RotateAsync(rotation.Name, cancellationToken).ConfigureAwait(false);
                    return null;
                case "disable":
                    if (state.LoadAccounts().TryGetValue(item.UserPrincipalName.Trim().ToLowerInvariant(), out var name))
                    {
                        await accounts.LockAsync(name, cancellationToken).ConfigureAwait(false);
                        LogLocked(logger, name, item.UserPrincipalName);
                    }

                    return null;
                default:
                    return null;
            }
        }
        catch (Exception e) when (e is HostAccountException or ArgumentException or InvalidOperationException or IOException)
        {
            _lastError = e.Message;
            LogWorkFailed(logger, item.Kind, item.UserPrincipalName, e.Message);
            return item.Kind == "logon" ? new AgentWorkResult(item.Id, false, null, null, e.Message) : null;
        }
        finally
        {
            _accountsGate.Release();
        }
    }

    private async Task<AgentWorkResult> LogonAsync(AgentWorkItem item, CancellationToken cancellationToken)
    {
        var upn = item.UserPrincipalName.Trim().ToLowerInvariant();
        var mapping = state.LoadAccounts();
        var existing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var candidate in Candidates(upn))
        {
            if (await accounts.ExistsAsync(candidate, cancellationToken).ConfigureAwait(false))
            {
                existing.Add(candidate);
            }
        }

        var name = AgentNames.Derive(upn, mapping, existing.Contains);

        // Recorded before the account is created, so a crash in between leaves the name reserved for this user.
        state.RecordAccount(upn, name);
        await accounts.EnsureAsync(name, $"Gatehouse {upn}", cancellationToken).ConfigureAwait(false);
        var wanted = item.Level == "administrator" ? config.AdminGroups : config.UserGroups;
        await accounts.SetGroupsAsync(name, wanted, [.. config.AdminGroups.Union(config.UserGroups)], cancellationToken).ConfigureAwait(false);
        var password = LogonPasswords.Create();

        // On the list before the password is set: if the agent dies before the rotation, it rotates when it starts.
        state.AddPendingRotation(name);
        await accounts.SetPasswordAsync(name, password, enable: true, cancellationToken).ConfigureAwait(false);
        LogLogon(logger, name, item.UserPrincipalName, item.Level);
        var timer = new CancellationTokenSource();
        _rotations[item.Id] = (name, timer);
        _ = RotateLaterAsync(item.Id, name, timer.Token, cancellationToken);
        return new AgentWorkResult(item.Id, true, name, password, null);
    }

    /// <summary>The names <see cref="AgentNames.Derive"/> may try for <paramref name="upn"/> (existence is checked on the host first).</summary>
    private static List<string> Candidates(string upn)
    {
        var probed = new List<string>();
        AgentNames.Derive(upn, new Dictionary<string, string>(), name =>
        {
            probed.Add(name);
            return probed.Count < 8;
        });
        return probed;
    }

    private async Task RotateLaterAsync(Guid logonId, string name, CancellationToken timer, CancellationToken stopping)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer, stopping);
        try
        {
            await Task.Delay(RotateAfter, time, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        if (!_rotations.TryRemove(logonId, out var rotation))
        {
            return;
        }

        rotation.Timer.Dispose();
        await _accountsGate.WaitAsync(stopping).ConfigureAwait(false);
        try
        {
            await RotateAsync(name, stopping).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HostAccountException or IOException or InvalidOperationException)
        {
            _lastError = e.Message;
            LogWorkFailed(logger, "rotate", name, e.Message);
        }
        finally
        {
            _accountsGate.Release();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _accountsGate.Dispose();

    /// <summary>Pending rotations (tests wait on it).</summary>
    public int PendingRotations => _rotations.Count;

    private async Task RotateAsync(string name, CancellationToken cancellationToken)
    {
        // A new random password nobody knows: the logon's password no longer works.
        await accounts.SetPasswordAsync(name, LogonPasswords.Create(), enable: false, cancellationToken).ConfigureAwait(false);
        if (!_rotations.Values.Any(r => r.Name == name))
        {
            // No other logon's password for this account is still out.
            state.RemovePendingRotation(name);
        }

        LogRotated(logger, name);
    }

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentStarted, Level = LogLevel.Information, Message = "Agent {AgentId} running against {Server} for host {Host}")]
    private static partial void LogStarted(ILogger logger, Guid agentId, Uri server, string? host);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentChannelFailed, Level = LogLevel.Warning, Message = "Agent channel failed ({Error}); retrying in {Seconds} s")]
    private static partial void LogChannelFailed(ILogger logger, string error, double seconds);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentAccountPrepared, Level = LogLevel.Information, Message = "Account {Account} prepared for {User} ({Level}) with a password for one logon")]
    private static partial void LogLogon(ILogger logger, string account, string user, string? level);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentPasswordRotated, Level = LogLevel.Information, Message = "Password of {Account} rotated after the logon")]
    private static partial void LogRotated(ILogger logger, string account);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentAccountLocked, Level = LogLevel.Warning, Message = "Account {Account} of {User} locked (user disabled or no longer holds a role)")]
    private static partial void LogLocked(ILogger logger, string account, string user);

    [LoggerMessage(EventId = Hosting.ServerEventIds.AgentWorkFailed, Level = LogLevel.Warning, Message = "Agent work {Kind} for {User} failed: {Error}")]
    private static partial void LogWorkFailed(ILogger logger, string kind, string user, string error);
}
