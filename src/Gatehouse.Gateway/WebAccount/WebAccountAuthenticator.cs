using System.Buffers;
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

/// <summary>An authorisation answer: the code for the Auth Result PDU (0 when allowed) and the words for the log.</summary>
public sealed record WebAccountAuthorization(int ResultCode, string Reason)
{
    /// <summary>True when the sign-in may go on.</summary>
    public bool Allowed => ResultCode == RdsAadAuthResult.Success;
}

/// <summary>
/// RDS AAD Auth on the client leg ([MS-RDPBCGR] 5.4.5.4): sends this connection's server nonce, waits (within the
/// assertion deadline: the user signs in in a browser meanwhile) for the NUL-terminated request within the size cap,
/// validates it, asks the authoriser, and answers with the Auth Result PDU; a refusal is answered and the
/// connection then closes.
/// </summary>
public sealed partial class WebAccountAuthenticator(
    AssertionValidator validator,
    IWebAccountAuthorizer authorizer,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<WebAccountAuthenticator> logger) : IClientAuthenticator
{
    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.WebAccount;

    /// <inheritdoc />
    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tls);
        var limits = options.Value;
        var nonce = ServerNonce.Issue(time.GetUtcNow());
        var output = new ArrayBufferWriter<byte>(128);
        new RdsAadServerNonce(nonce.Value).Write(output);
        await tls.WriteAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
        await tls.FlushAsync(cancellationToken).ConfigureAwait(false);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limits.AssertionTimeout);
        byte[]? request;
        string? readProblem;
        try
        {
            (request, readProblem) = await ReadMessageAsync(tls, limits.MaxAssertionBytes, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ClientAuthenticationResult.Failure($"no authentication request within {limits.AssertionTimeout.TotalSeconds:0} s (assertion_timeout)");
        }

        if (request is null)
        {
            if (readProblem is not null)
            {
                await AnswerAsync(tls, RdsAadAuthResult.InvalidToken, cancellationToken).ConfigureAwait(false);
            }

            return ClientAuthenticationResult.Failure(readProblem ?? "the client closed the connection before sending its assertion");
        }

        var verdict = await validator.ValidateAsync(request, nonce, cancellationToken).ConfigureAwait(false);
        if (!verdict.Accepted)
        {
            await AnswerAsync(tls, verdict.ResultCode, cancellationToken).ConfigureAwait(false);
            return ClientAuthenticationResult.Failure($"{verdict.Failure}: {verdict.Reason}");
        }

        var decision = await authorizer.AuthorizeAsync(connection, verdict, cancellationToken).ConfigureAwait(false);
        await AnswerAsync(tls, decision.ResultCode, cancellationToken).ConfigureAwait(false);
        if (!decision.Allowed)
        {
            return ClientAuthenticationResult.Failure($"authorization: {decision.Reason}");
        }

        LogSignedIn(connection.Id, verdict.Token?.Upn ?? "?", verdict.Host?.Name ?? "?", decision.Reason);
        return ClientAuthenticationResult.Success;
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

    [LoggerMessage(20, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with a web account to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string upn, string host, string decision);
}
