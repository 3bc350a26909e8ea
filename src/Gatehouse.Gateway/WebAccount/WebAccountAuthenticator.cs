using System.Buffers;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Protocol.RdsAad;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.WebAccount;

/// <summary>
/// Web-account sign-in, RDS AAD Auth on the client leg ([MS-RDPBCGR] 5.4.5.4). Prove: send this connection's server
/// nonce, wait (within the assertion deadline: the user signs in in a browser meanwhile) for the NUL-terminated request
/// within the size cap, and validate it (signature, nonce, proof of possession, the access token, the host) under the
/// decision's own deadline (<see cref="GatewayOptions.SignInDecisionTimeout"/>), so a client that sends its assertion
/// and leaves is still decided. Answer: the Auth Result PDU with the outcome's code (<see cref="SignInFailures.RdsAadResult"/>).
/// A request that never comes is logged without an answer; a client that closes before sending one has named no one and
/// leaves no entry.
/// </summary>
public sealed class WebAccountAuthenticator(AssertionValidator validator, IOptions<GatewayOptions> options, TimeProvider time) : ISignInMethod
{
    /// <summary>The protocol name in the sign-in log.</summary>
    public const string ProtocolName = "web_account";

    private AssertionValidator Validator => validator;

    private GatewayOptions Limits => options.Value;

    private TimeProvider Clock => time;

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.WebAccount;

    /// <inheritdoc />
    string ISignInMethod.ProtocolName => ProtocolName;

    /// <inheritdoc />
    public bool QualifiesAccessRefusals => false;

    /// <inheritdoc />
    /// <remarks>
    /// Readable refusals only: the RDS AAD result is then success and the hold screen says why. No handover: FreeRDP
    /// makes a new PoP key and goes through the browser again on every connect, so a reconnect cannot prove the user
    /// silently (MFA is asked in the browser already; the host picker would need a second browser sign-in).
    /// </remarks>
    public HoldUses HoldUses => HoldUses.Refusals;

    /// <inheritdoc />
    public ISignInAttempt Begin(GatewayConnection connection, Stream client)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(client);
        return new Attempt(this, client);
    }

    /// <summary>The stable code of an assertion failure (the sign-in log's reason prefix).</summary>
    public static string ReasonCode(AssertionFailure failure) => failure switch
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

    /// <summary>Who an assertion names, as far as it verified.</summary>
    private static SignInSubject SubjectOf(AssertionVerdict verdict)
    {
        var token = verdict.Token;
        return new SignInSubject
        {
            TenantId = token is { TenantId: var t } && t != Guid.Empty ? t : null,
            UserId = token is { ObjectId: var o } && o != Guid.Empty ? o : null,
            UserPrincipalName = token?.Upn,
            HostId = verdict.Host?.Id,
            HostName = verdict.Host?.Name ?? verdict.Assertion?.HostLabel,
            HostLabel = verdict.Assertion?.HostLabel,
            Methods = token?.Amr ?? [],
            AuthenticatedAt = token?.AuthenticatedAt ?? default,
        };
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

    private static async Task WriteResultAsync(Stream tls, int code, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>(64);
        new RdsAadAuthResult(code).Write(output);
        await tls.WriteAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One connection's web-account sign-in.</summary>
    private sealed class Attempt(WebAccountAuthenticator method, Stream tls) : ISignInAttempt
    {
        private int? _assertionCode;

        public SignInSubject Subject { get; private set; } = SignInSubject.Nobody;

        public async Task<SignInProof> ProveAsync(CancellationToken clientClosed)
        {
            var limits = method.Limits;

            // The assertion's deadline starts with the nonce (armed before it is sent, so it runs while the client has it). The
            // read is bounded by it alone: a request sent just before the client closed is still read and decided.
            byte[]? request;
            string? readProblem;
            ServerNonce nonce;
            using (var deadline = new CancellationTokenSource(limits.AssertionTimeout, method.Clock))
            {
                nonce = ServerNonce.Issue(method.Clock.GetUtcNow());
                var output = new ArrayBufferWriter<byte>(128);
                new RdsAadServerNonce(nonce.Value).Write(output);
                await tls.WriteAsync(output.WrittenMemory, clientClosed).ConfigureAwait(false);
                await tls.FlushAsync(clientClosed).ConfigureAwait(false);
                try
                {
                    (request, readProblem) = await ReadMessageAsync(tls, limits.MaxAssertionBytes, deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                {
                    return SignInProof.Refused(Subject, SignInRefusal.Of(SignInFailure.AssertionTimeout, $"no authentication request within {limits.AssertionTimeout.TotalSeconds:0} s"));
                }
            }

            if (request is null)
            {
                return readProblem is not null
                    ? SignInProof.Refused(Subject, SignInRefusal.Of(SignInFailure.MalformedRequest, readProblem))
                    : SignInProof.Left(Subject, "client_disconnected: the client closed the connection before sending its assertion");
            }

            // The validation runs to its end whatever the client does, under the decision's deadline.
            AssertionVerdict verdict;
            using (var deciding = new CancellationTokenSource(limits.SignInDecisionTimeout, method.Clock))
            {
                try
                {
                    verdict = await method.Validator.ValidateAsync(request, nonce, deciding.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deciding.IsCancellationRequested)
                {
                    return SignInProof.Refused(Subject, SignInRefusal.Of(SignInFailure.DecisionTimeout, $"the sign-in decision took longer than {limits.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)"));
                }
            }

            Subject = SubjectOf(verdict);
            if (!verdict.Accepted)
            {
                _assertionCode = verdict.ResultCode;
                return SignInProof.Refused(Subject, new SignInRefusal(SignInFailure.AssertionRefused, $"{ReasonCode(verdict.Failure)}: {verdict.Reason}"));
            }

            return SignInProof.Of(Subject);
        }

        public SignInRefusal? PrepareAnswer(Sessions.SessionGrant grant) => null;

        public string? AnswerCode(SignInOutcome outcome) => Code(outcome) is { } code ? $"0x{code:X8}" : null;

        public async Task AnswerAsync(SignInOutcome outcome, CancellationToken clientClosed)
        {
            if (Code(outcome) is { } code)
            {
                await WriteResultAsync(tls, code, clientClosed).ConfigureAwait(false);
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        /// <summary>The Auth Result code for the outcome; null when the client gets no answer (it sent no request in time).</summary>
        private int? Code(SignInOutcome outcome) => outcome.Refusal switch
        {
            null => RdsAadAuthResult.Success,
            { Failure: SignInFailure.AssertionTimeout } => null,
            { Failure: SignInFailure.AssertionRefused } => _assertionCode ?? RdsAadAuthResult.InvalidToken,
            { Failure: var failure } => SignInFailures.RdsAadResult(failure),
        };
    }
}
