using System.Net;

namespace Gatehouse.Gateway.Sessions;

/// <summary>One sign-in attempt at the gateway, for the sign-in log.</summary>
public sealed record GatewaySignInEvent
{
    /// <summary>The RDP connection id (the correlation id).</summary>
    public required string ConnectionId { get; init; }

    /// <summary>The client's address.</summary>
    public required IPAddress ClientAddress { get; init; }

    /// <summary><c>web_account</c>, <c>nla</c> or <c>tls</c> (or <c>rdp</c> before a method was chosen).</summary>
    public required string Protocol { get; init; }

    /// <summary>True for a successful sign-in.</summary>
    public required bool Succeeded { get; init; }

    /// <summary>The precise reason.</summary>
    public required string Reason { get; init; }

    /// <summary>The code the client got (e.g. <c>0x80070005</c>, an RDP_NEG_FAILURE code).</summary>
    public string? Code { get; init; }

    /// <summary>What the user sees.</summary>
    public string? UserMessage { get; init; }

    /// <summary>What to change.</summary>
    public string? Fix { get; init; }

    /// <summary>Tenant, when known.</summary>
    public Guid? TenantId { get; init; }

    /// <summary>User, when known.</summary>
    public Guid? UserId { get; init; }

    /// <summary>User name, when known.</summary>
    public string? UserPrincipalName { get; init; }

    /// <summary>Host name, when known.</summary>
    public string? HostName { get; init; }

    /// <summary>Authentication methods.</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>Each policy's outcome (JSON).</summary>
    public string? PoliciesJson { get; init; }

    /// <summary>The assignment that allowed it.</summary>
    public Guid? RoleAssignmentId { get; init; }

    /// <summary>Its role.</summary>
    public string? RoleName { get; init; }

    /// <summary>The injected account.</summary>
    public string? TargetAccount { get; init; }

    /// <summary>The session, when one started.</summary>
    public Guid? SessionId { get; init; }
}

/// <summary>Where the gateway writes its sign-in attempts (the hash-chained sign-in log).</summary>
public interface IGatewaySignInLog
{
    /// <summary>
    /// Writes one attempt; failures to write are the implementation's to report, never the caller's to crash on. The
    /// token is the write's own deadline, never the client's connection (the gateway writes through
    /// <see cref="GatewaySignInLogExtensions.WriteOnceAsync"/>).
    /// </summary>
    Task WriteAsync(GatewaySignInEvent signIn, CancellationToken cancellationToken);
}

/// <summary>How the gateway writes a connection's one sign-in log entry.</summary>
internal static class GatewaySignInLogExtensions
{
    /// <summary>
    /// Writes <paramref name="signIn"/> as <paramref name="connection"/>'s one sign-in log entry; false, and nothing
    /// written, when the connection has one already. The write is not the client's to cancel: it runs under its own
    /// deadline of <paramref name="timeout"/>, so the entry is written whatever the client does next. Callers write it
    /// once the decision is made and before the client is answered.
    /// </summary>
    public static async Task<bool> WriteOnceAsync(this IGatewaySignInLog log, GatewayConnection connection, GatewaySignInEvent signIn, TimeSpan timeout, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(connection);
        if (!connection.TryClaimSignInLog())
        {
            return false;
        }

        Diagnostics.GatewayTelemetry.SignInLogged(connection, signIn);
        using var deadline = new CancellationTokenSource(timeout, time);
        await log.WriteAsync(signIn, deadline.Token).ConfigureAwait(false);
        return true;
    }
}

/// <summary>The durable records of relayed sessions.</summary>
public interface ISessionJournal
{
    /// <summary>Writes the start record; throws when it cannot (the session is then refused).</summary>
    Task StartAsync(LiveSession session, CancellationToken cancellationToken);

    /// <summary>Writes the end record.</summary>
    Task EndAsync(LiveSession session, string reason, CancellationToken cancellationToken);
}
