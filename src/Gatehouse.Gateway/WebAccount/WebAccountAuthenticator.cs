using System.Buffers;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Protocol.RdsAad;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.WebAccount;

/// <summary>The authorisation step after an accepted assertion (roles and Conditional Access, issue-5 engine behind it).</summary>
public interface IWebAccountAuthorizer
{
    /// <summary>Decides whether the signed-in user may use the host; returns the result code and the reason for the log.</summary>
    Task<WebAccountAuthorization> AuthorizeAsync(GatewayConnection connection, AssertionVerdict verdict, CancellationToken cancellationToken);
}

/// <summary>
/// An authorisation answer: the code for the Auth Result PDU (0 when allowed), the words for the log, and, when
/// allowed, the grant (account to inject, host to reach).
/// </summary>
public sealed record WebAccountAuthorization(int ResultCode, string Reason)
{
    /// <summary>True when the sign-in may go on.</summary>
    public bool Allowed => ResultCode == RdsAadAuthResult.Success;

    /// <summary>What the sign-in grants (null when refused, or when the caller only authorises without a session).</summary>
    public SessionGrant? Grant { get; init; }

    /// <summary>The user, when known.</summary>
    public Guid? UserId { get; init; }

    /// <summary>The tenant, when known.</summary>
    public Guid? TenantId { get; init; }

    /// <summary>What the user sees.</summary>
    public string? UserMessage { get; init; }

    /// <summary>What to change.</summary>
    public string? Fix { get; init; }

    /// <summary>Each policy's outcome (JSON).</summary>
    public string? PoliciesJson { get; init; }
}

/// <summary>
/// RDS AAD Auth on the client leg ([MS-RDPBCGR] 5.4.5.4): sends this connection's server nonce, waits (within the
/// assertion deadline: the user signs in in a browser meanwhile) for the NUL-terminated request within the size cap,
/// validates it, asks the authoriser, opens the session to the host (so an unreachable host is reported in the
/// answer), writes the sign-in log entry, and only then answers with the Auth Result PDU; a refusal is answered and the
/// connection then closes. Once the request is in, the decision runs to its end under its own deadline
/// (<see cref="GatewayOptions.SignInDecisionTimeout"/>), not the client's: a client that sends its assertion and leaves
/// still gets its entry. A request that never comes (deadline) or is malformed is logged too; a client that closes
/// before sending one has named no one and leaves no entry.
/// </summary>
public sealed partial class WebAccountAuthenticator(
    AssertionValidator validator,
    IWebAccountAuthorizer authorizer,
    SessionOpener opener,
    IGatewaySignInLog signInLog,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<WebAccountAuthenticator> logger) : IClientAuthenticator
{
    /// <summary>The protocol name in the sign-in log.</summary>
    public const string ProtocolName = "web_account";

    private const string Unavailable = SignInMessages.HostUnreachable;

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.WebAccount;

    /// <inheritdoc />
    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tls);
        var limits = options.Value;

        // The assertion's deadline starts with the nonce (armed before it is sent, so it runs while the client has it). The
        // read is bounded by it alone: a request sent just before the client closed is still read and decided.
        byte[]? request;
        string? readProblem;
        ServerNonce nonce;
        using (var deadline = new CancellationTokenSource(limits.AssertionTimeout, time))
        {
            nonce = ServerNonce.Issue(time.GetUtcNow());
            var output = new ArrayBufferWriter<byte>(128);
            new RdsAadServerNonce(nonce.Value).Write(output);
            await tls.WriteAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
            await tls.FlushAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                (request, readProblem) = await ReadMessageAsync(tls, limits.MaxAssertionBytes, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                var reason = $"assertion_timeout: no authentication request within {limits.AssertionTimeout.TotalSeconds:0} s";
                await LogAsync(connection, new SignInFacts(false, reason, null)).ConfigureAwait(false);
                return ClientAuthenticationResult.Failure(reason);
            }
        }

        if (request is null)
        {
            if (readProblem is not null)
            {
                return await RefuseAsync(tls, connection, new SignInFacts(false, $"malformed_request: {readProblem}", RdsAadAuthResult.InvalidToken), cancellationToken).ConfigureAwait(false);
            }

            return ClientAuthenticationResult.Failure("client_disconnected: the client closed the connection before sending its assertion");
        }

        // The decision: validation, authorisation and the host leg run to their end whatever the client does.
        SignInFacts facts;
        using (var deciding = new CancellationTokenSource(limits.SignInDecisionTimeout, time))
        {
            try
            {
                facts = await DecideAsync(connection, request, nonce, deciding.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deciding.IsCancellationRequested)
            {
                facts = new SignInFacts(false, $"decision_timeout: the sign-in decision took longer than {limits.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)", RdsAadAuthResult.NoLogonServers)
                {
                    UserMessage = Unavailable,
                };
            }
        }

        if (!facts.Succeeded)
        {
            return await RefuseAsync(tls, connection, facts, cancellationToken).ConfigureAwait(false);
        }

        // Logged before the client hears it; if the client has left meanwhile, the connection handler closes the session.
        await LogAsync(connection, facts).ConfigureAwait(false);
        LogSignedIn(connection.Id, facts.Verdict?.Token?.Upn ?? "?", facts.Verdict?.Host?.Name ?? "?", facts.Reason);
        await AnswerAsync(tls, RdsAadAuthResult.Success, cancellationToken).ConfigureAwait(false);
        return ClientAuthenticationResult.Success;
    }

    /// <summary>Validates the request, authorises, opens the session: what the entry and the answer are made of.</summary>
    private async Task<SignInFacts> DecideAsync(GatewayConnection connection, byte[] request, ServerNonce nonce, CancellationToken cancellationToken)
    {
        var verdict = await validator.ValidateAsync(request, nonce, cancellationToken).ConfigureAwait(false);
        if (!verdict.Accepted)
        {
            return new SignInFacts(false, $"{ReasonCode(verdict.Failure)}: {verdict.Reason}", verdict.ResultCode) { Verdict = verdict, UserMessage = SignInMessages.CredentialsDidNotWork };
        }

        var decision = await authorizer.AuthorizeAsync(connection, verdict, cancellationToken).ConfigureAwait(false);
        if (!decision.Allowed)
        {
            return new SignInFacts(false, decision.Reason, decision.ResultCode) { Verdict = verdict, Decision = decision };
        }

        if (decision.Grant is { } grant)
        {
            var open = await opener.OpenAsync(connection, ProtocolName, grant, cancellationToken).ConfigureAwait(false);
            if (!open.Opened)
            {
                return new SignInFacts(false, open.Reason, RdsAadAuthResult.NoLogonServers)
                {
                    Verdict = verdict,
                    Decision = decision,
                    UserMessage = Unavailable,
                    Fix = open.Fix,
                };
            }

            connection.Session = open.Session;
        }

        return new SignInFacts(true, decision.Reason, RdsAadAuthResult.Success) { Verdict = verdict, Decision = decision };
    }

    /// <summary>Logs the refusal, then answers it (the client may have left: the entry is written either way).</summary>
    private async Task<ClientAuthenticationResult> RefuseAsync(Stream tls, GatewayConnection connection, SignInFacts facts, CancellationToken cancellationToken)
    {
        await LogAsync(connection, facts).ConfigureAwait(false);
        try
        {
            await AnswerAsync(tls, facts.Code ?? RdsAadAuthResult.InvalidToken, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // The client is gone; the refusal is logged already.
        }

        return ClientAuthenticationResult.Failure(facts.Decision is { Allowed: false } ? $"authorization: {facts.Reason}" : facts.Reason);
    }

    private static string ReasonCode(AssertionFailure failure) => failure switch
    {
        AssertionFailure.Malformed => "malformed_assertion",
        AssertionFailure.Algorithm => "bad_algorithm",
        AssertionFailure.Nonce => "bad_nonce",
        AssertionFailure.NonceExpired => "nonce_expired",
        AssertionFailure.Timestamp => "bad_timestamp",
        AssertionFailure.Key => "bad_pop_key",
        AssertionFailure.Signature => "bad_assertion_signature",
        AssertionFailure.HostLabel => "bad_host_label",
        AssertionFailure.UnknownHost => "unknown_host",
        AssertionFailure.AccessToken => "bad_access_token",
        AssertionFailure.ProofOfPossession => "pop_mismatch",
        AssertionFailure.ClientNonce => "bad_client_nonce",
        _ => "refused",
    };

    /// <summary>Writes this connection's one sign-in log entry (not cancelled by the client leaving).</summary>
    private async Task LogAsync(GatewayConnection connection, SignInFacts facts)
    {
        var token = facts.Verdict?.Token;
        var grant = facts.Decision?.Grant;
        var entry = new GatewaySignInEvent
        {
            ConnectionId = connection.Id,
            ClientAddress = connection.RemoteAddress,
            Protocol = ProtocolName,
            Succeeded = facts.Succeeded,
            Reason = facts.Reason,
            Code = facts.Code is { } code ? $"0x{code:X8}" : null,
            UserMessage = facts.UserMessage ?? facts.Decision?.UserMessage,
            Fix = facts.Fix ?? facts.Decision?.Fix,
            TenantId = facts.Decision?.TenantId ?? (token is { TenantId: var t } && t != Guid.Empty ? t : null),
            UserId = facts.Decision?.UserId ?? (token is { ObjectId: var o } && o != Guid.Empty ? o : null),
            UserPrincipalName = token?.Upn,
            HostName = facts.Verdict?.Host?.Name ?? facts.Verdict?.Assertion?.HostLabel,
            Methods = token?.Amr ?? [],
            PoliciesJson = facts.Decision?.PoliciesJson,
            RoleAssignmentId = grant?.RoleAssignmentId,
            RoleName = grant?.RoleName,
            TargetAccount = facts.Succeeded ? grant?.Credentials.ToString() : null,
            SessionId = facts.Succeeded ? connection.Session?.Id : null,
        };
        await signInLog.WriteOnceAsync(connection, entry, options.Value.SignInDecisionTimeout, time).ConfigureAwait(false);
    }

    /// <summary>What one attempt's log entry is made of.</summary>
    private sealed record SignInFacts(bool Succeeded, string Reason, int? Code)
    {
        public AssertionVerdict? Verdict { get; init; }

        public WebAccountAuthorization? Decision { get; init; }

        public string? UserMessage { get; init; }

        public string? Fix { get; init; }
    }

    /// <summary>Reads bytes until a NUL, refusing more than <paramref name="maxBytes"/>; nothing after the NUL is read.</summary>
    private static async Task<(byte[]? Message, string? Problem)> ReadMessageAsync(Stream tls, int maxBytes, CancellationToken cancellationToken)
    {
        // The client sends nothing after its request until it has our answer, so reading past the NUL cannot
        // swallow the next PDU; still, read in small chunks and stop at the terminator.
        var buffer = new ArrayBufferWriter<byte>(4096);
        var chunk = new byte[4096];
        while (true)
        {
            var read = await tls.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return (null, null);
            }

            var nul = Array.IndexOf(chunk, (byte)0, 0, read);
            var take = nul >= 0 ? nul + 1 : read;
            if (buffer.WrittenCount + take > maxBytes + 1)
            {
                return (null, $"the authentication request is larger than {maxBytes} bytes (Gatehouse:Gateway:MaxAssertionBytes)");
            }

            buffer.Write(chunk.AsSpan(0, take));
            if (nul >= 0)
            {
                if (nul + 1 != read)
                {
                    return (null, "data after the authentication request's terminator");
                }

                return (buffer.WrittenSpan.ToArray(), null);
            }
        }
    }

    private static async Task AnswerAsync(Stream tls, int code, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>(64);
        new RdsAadAuthResult(code).Write(output);
        await tls.WriteAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventIds.WebAccountSignedIn, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with a web account to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string upn, string host, string decision);
}
