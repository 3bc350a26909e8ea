using Gatehouse.Hosting;
using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// Writes the sign-in pages' attempts into the hash-chained sign-in log (protocol <c>browser</c>). Each entry goes
/// straight to the node's <see cref="SignInLogWriter"/> (a singleton), never through the request's store context, so a
/// failed append never leaves a half-added row there (which a later save, such as the consent, would otherwise write
/// outside the chain). A failure to write is logged, never thrown, as the gateway's writer does: the log records
/// sign-ins, it does not decide them, and refusing every sign-in while the store cannot append would turn a log problem
/// into an outage; the application log keeps the attempt.
/// </summary>
internal sealed partial class IdpSignInLog(SignInLogWriter writer, ILogger<IdpSignInLog> logger)
{
    /// <summary>The sign-in log's protocol for the identity provider's pages.</summary>
    public const string Protocol = "browser";

    public async Task WriteAsync(SignInEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        IdpTelemetry.SignInLogged(entry);
        try
        {
            // Not the request's token: an attempt is recorded even when the browser goes away meanwhile.
            await writer.AppendAsync(entry, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogWriteFailed(entry.CorrelationId, entry.UserPrincipalName, entry.Succeeded ? "success" : "failure", entry.Code, entry.Reason, e.GetType().Name, e.Message);
        }
    }

    [LoggerMessage(ServerEventIds.SignInLogWriteFailed, LogLevel.Error, "Sign-in {CorrelationId}: the sign-in log entry could not be written ({Kind}: {Message}); the attempt: {Upn} {Result} {Code} {Reason}.")]
    private partial void LogWriteFailed(string correlationId, string? upn, string result, string? code, string reason, string kind, string message);
}
