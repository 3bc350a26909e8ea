using System.Globalization;
using System.Text.Json;
using Gatehouse.Gateway.Agents;
using Gatehouse.Gateway.Backend;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Agents;

/// <summary>A refusal on the agent channel: the reason for the log and the HTTP status.</summary>
public sealed class AgentRefusedException(int status, string reason) : Exception(reason)
{
    /// <summary>The HTTP status to answer.</summary>
    public int Status { get; } = status;
}

/// <summary>An enrolment token as issued: the token text (shown once) and when it expires.</summary>
public sealed record IssuedEnrollment(string Token, DateTimeOffset ExpiresAt);

/// <summary>
/// The server's side of host enrolment and agent authentication, on the store: issues one-time enrolment tokens
/// (hashes only), consumes one atomically when an agent joins, checks each request's assertion (signature, audience,
/// lifetime, single-use <c>jti</c>) and records what the agent reports.
/// </summary>
public sealed class AgentRegistry(GatehouseDbContext db, TimeProvider time)
{
    /// <summary>The longest enrolment token lifetime.</summary>
    public static readonly TimeSpan MaxEnrollmentLifetime = TimeSpan.FromHours(1);

    /// <summary>The shortest and longest health interval an agent may ask for.</summary>
    public const int MinHealthInterval = 5, MaxHealthInterval = 300;

    /// <summary>The agent endpoint's base path (the assertions' audience is the server URL and this path).</summary>
    public const string BasePath = "/agent/v1";

    /// <summary>Issues a one-time enrolment token for <paramref name="host"/>.</summary>
    public async Task<IssuedEnrollment> IssueAsync(Host host, TimeSpan lifetime, string certificateSha256, string? createdBy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (lifetime <= TimeSpan.Zero || lifetime > MaxEnrollmentLifetime)
        {
            throw new ArgumentOutOfRangeException(nameof(lifetime), lifetime, "an enrolment token lives more than zero and at most one hour");
        }

        var token = EnrollmentToken.Create(certificateSha256);
        var now = time.GetUtcNow();
        db.AgentEnrollments.Add(new AgentEnrollment
        {
            Id = Guid.NewGuid(),
            TenantId = host.TenantId,
            HostId = host.Id,
            SecretHash = token.SecretHash,
            CreatedAt = now,
            ExpiresAt = now + lifetime,
            CreatedBy = createdBy,
        });
        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return new IssuedEnrollment(token.ToString(), now + lifetime);
    }

    /// <summary>
    /// Joins an agent: consumes the token (one conditional update, so two racing joins cannot both succeed), replaces
    /// the host's previous agent, and pins the host's RDP key the agent read locally.
    /// </summary>
    public async Task<(HostAgent Agent, Host Host)> JoinAsync(AgentJoinRequest request, string audience, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!EnrollmentToken.TryParse(request.Token, out var token, out var error))
        {
            throw new AgentRefusedException(400, $"agent_join_refused: {error}");
        }

        byte[] publicKey;
        try
        {
            publicKey = request.PublicKey is { Length: > 0 and <= HostAgent.PublicKeyLength } ? Convert.FromBase64String(request.PublicKey) : throw new FormatException();
            using var key = System.Security.Cryptography.ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(publicKey, out _);
            if (key.KeySize != 256)
            {
                throw new FormatException();
            }
        }
        catch (Exception e) when (e is FormatException or System.Security.Cryptography.CryptographicException)
        {
            throw new AgentRefusedException(400, "agent_join_refused: the public key is not a base64 SubjectPublicKeyInfo of an ECDSA P-256 key");
        }

        string? pin = null;
        if (request.RdpCertificatePin is not null && !HostKeyFingerprint.TryParse(request.RdpCertificatePin, out pin))
        {
            throw new AgentRefusedException(400, "agent_join_refused: the RDP certificate pin is not SHA256:<base64>");
        }

        var now = time.GetUtcNow();
        var hash = token.SecretHash;
        var consumed = await db.AgentEnrollments
            .Where(e => e.SecretHash == hash && e.ConsumedAt == null && e.ExpiresAt > now)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.ConsumedAt, (DateTimeOffset?)now), cancellationToken).ConfigureAwait(false);
        if (consumed != 1)
        {
            throw new AgentRefusedException(401, "agent_join_refused: the enrolment token is unknown, already used or expired; issue a new one with 'gatehouse host enroll HOST'");
        }

        var enrollment = await db.AgentEnrollments.AsNoTracking().FirstAsync(e => e.SecretHash == hash, cancellationToken).ConfigureAwait(false);
        var host = await db.Hosts.FirstOrDefaultAsync(h => h.Id == enrollment.HostId, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentRefusedException(404, "agent_join_refused: the host was deleted after the token was issued");
        await db.HostAgents.Where(a => a.HostId == host.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        var agent = new HostAgent
        {
            Id = Guid.NewGuid(),
            TenantId = host.TenantId,
            HostId = host.Id,
            PublicKey = Convert.ToBase64String(publicKey),
            JoinedAt = now,
            LastSeenAt = now,
            OperatingSystem = Cap(request.OperatingSystem, 256),
            AgentVersion = Cap(request.AgentVersion, 64),
            RdpPort = request.RdpPort is >= 1 and <= 65535 ? request.RdpPort : 3389,
            HealthIntervalSeconds = Math.Clamp(request.HealthIntervalSeconds, MinHealthInterval, MaxHealthInterval),
        };
        db.HostAgents.Add(agent);
        if (pin is not null)
        {
            // The pin comes only through this authenticated channel (the token proved the host was enrolled by an admin).
            host.CertificatePin = pin;
            host.CertificatePinnedAt = now;
            host.CertificatePinnedBy = "agent join";
        }

        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return (agent, host);
    }

    /// <summary>
    /// Authenticates a request by its assertion: the registered key's signature, the audience, a lifetime of at most
    /// five minutes, and a <c>jti</c> never seen before (a row per <c>jti</c>; the primary key refuses the second use).
    /// Records the agent as seen.
    /// </summary>
    public async Task<HostAgent> AuthenticateAsync(string? assertion, string audience, CancellationToken cancellationToken)
    {
        if (!AgentAssertion.TryRead(assertion, out var claims, out var error))
        {
            throw new AgentRefusedException(401, $"agent_assertion_refused: {error}");
        }

        var agentId = claims.AgentId;
        var agent = await db.HostAgents.FirstOrDefaultAsync(a => a.Id == agentId, cancellationToken).ConfigureAwait(false)
            ?? throw new AgentRefusedException(401, $"agent_assertion_refused: no agent {agentId} is enrolled (it was replaced or its host deleted); join again");
        var now = time.GetUtcNow();
        if (AgentAssertion.Verify(assertion!, claims, Convert.FromBase64String(agent.PublicKey), audience, now) is { } reason)
        {
            throw new AgentRefusedException(401, $"agent_assertion_refused: {reason}");
        }

        db.AgentAssertionUses.Add(new AgentAssertionUse { Jti = claims.Id!, AgentId = agent.Id, ExpiresAt = DateTimeOffset.FromUnixTimeSeconds(claims.Expires) + AgentAssertion.Skew });
        agent.LastSeenAt = now;
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            throw new AgentRefusedException(401, "agent_assertion_refused: the assertion was used before (replay)");
        }

        // Old jti rows are kept only as long as the assertions they protect could still be accepted.
        await db.AgentAssertionUses.Where(u => u.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return agent;
    }

    /// <summary>Records a health report; a changed RDP certificate updates the host's pin (only through this channel).</summary>
    public async Task<HostAgent> RecordHealthAsync(Guid agentId, AgentHealthReport report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var agent = await db.HostAgents.FirstAsync(a => a.Id == agentId, cancellationToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        agent.RdpListening = report.RdpListening;
        agent.AgentVersion = Cap(report.AgentVersion, 64) ?? agent.AgentVersion;
        agent.HealthIntervalSeconds = Math.Clamp(report.IntervalSeconds, MinHealthInterval, MaxHealthInterval);
        agent.HealthAt = now;
        agent.LastSeenAt = now;
        var stored = new StoredHealth(
            report.RdpListening,
            report.RdpCertificatePin,
            Math.Max(0, report.ManagedAccounts),
            Cap(report.AgentVersion, 64),
            (report.AgentTime - now).TotalSeconds,
            Cap(report.LastError, 1024),
            ListeningAddresses.TryNormalize(report.RdpListenAddresses, out var listening, out _) ? listening : null);
        agent.HealthJson = JsonSerializer.Serialize(stored, AgentJson.Options);
        if (report.RdpCertificatePin is not null && HostKeyFingerprint.TryParse(report.RdpCertificatePin, out var pin))
        {
            var host = await db.Hosts.FirstAsync(h => h.Id == agent.HostId, cancellationToken).ConfigureAwait(false);
            if (!HostKeyFingerprint.Matches(host.CertificatePin, pin))
            {
                host.CertificatePin = pin;
                host.CertificatePinnedAt = now;
                host.CertificatePinnedBy = "agent";
            }
        }

        await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return agent;
    }

    /// <summary>
    /// Why a logon through this agent must not be tried now: silent for more than three health intervals, or the RDP
    /// service is not listening. Null when it may.
    /// </summary>
    public static string? Unhealthy(HostAgent agent, string hostName, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(agent);
        var interval = TimeSpan.FromSeconds(Math.Clamp(agent.HealthIntervalSeconds, MinHealthInterval, MaxHealthInterval));
        if (agent.LastSeenAt is not { } seen || now - seen > 3 * interval)
        {
            return string.Create(CultureInfo.InvariantCulture, $"agent_unavailable: the agent on {hostName} has been silent since {agent.LastSeenAt?.ToString("u", CultureInfo.InvariantCulture) ?? "it joined"} (more than three health intervals of {interval.TotalSeconds} s)");
        }

        if (agent.RdpListening == false)
        {
            return string.Create(CultureInfo.InvariantCulture, $"host_unhealthy: the agent on {hostName} reports that the RDP service is not listening on port {agent.RdpPort}");
        }

        return null;
    }

    private static string? Cap(string? text, int length) => text is null ? null : text.Length <= length ? text : text[..length];
}

/// <summary>
/// A health report as stored (<see cref="HostAgent.HealthJson"/>). <c>RdpListenAddresses</c> is null when the agent did
/// not report them (an older agent) or reported something that is not a list of IP addresses.
/// </summary>
public sealed record StoredHealth(bool RdpListening, string? RdpCertificatePin, int ManagedAccounts, string? AgentVersion, double ClockSkewSeconds, string? LastError, IReadOnlyList<string>? RdpListenAddresses = null);
