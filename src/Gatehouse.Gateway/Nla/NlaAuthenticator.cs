using System.Net.Security;
using System.Security.Cryptography;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.Transport;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Nla;

/// <summary>
/// NLA on the client leg ([MS-CSSP] over the client's TLS, PROTOCOL_HYBRID and HYBRID_EX): the gateway is the CredSSP
/// server, a driver over the sans-IO <see cref="CredSspServer"/>. The driver reads the client's TSRequest frames, gives
/// the machine a fresh server challenge and the time, and answers what it asks: the user's NT hash (the machine verifies
/// NTLMv2, the MIC and the public-key binding of the gateway's certificate), a wrong proof counted toward lockout, the
/// account's state, and the TSCredentials' password through the identity provider's checks; then the access engine
/// (amr <c>pwd</c>). The host leg is opened before the last answer; HYBRID_EX gets the Early User Authorization
/// Result. Every refusal is a TSRequest errorCode (or AUTHZ_ACCESS_DENIED) and a sign-in log entry with the reason.
/// Once the client has named a user, the checks run to their decision whatever the client does (under
/// <see cref="GatewayOptions.SignInDecisionTimeout"/>), and the entry is written before the client hears the answer.
/// </summary>
public sealed partial class NlaAuthenticator(
    INlaDirectory directory,
    GatewayCertificate certificate,
    SessionOpener opener,
    IGatewaySignInLog signInLog,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<NlaAuthenticator> logger) : IClientAuthenticator
{
    /// <summary>The protocol name in the sign-in log.</summary>
    public const string ProtocolName = "nla";

    private const string Unavailable = SignInMessages.HostUnreachable;

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.Nla;

    /// <inheritdoc />
    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(tls);
        var exchange = new Exchange(connection, tls);
        try
        {
            return await RunAsync(exchange, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (exchange.Deciding is { IsCancellationRequested: true })
        {
            // The directory, the authorisation or the host leg did not answer in time: refused (fail closed) and logged.
            var reason = $"decision_timeout: the sign-in decision took longer than {options.Value.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)";
            return exchange.CredentialsReceived
                ? await RefuseAfterCredentialsAsync(exchange, NtStatus.NoLogonServers, reason, Unavailable, cancellationToken).ConfigureAwait(false)
                : await RefuseAsync(exchange, NtStatus.NoLogonServers, reason, Unavailable, null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            exchange.Deciding?.Dispose();
        }
    }

    private async Task<ClientAuthenticationResult> RunAsync(Exchange x, CancellationToken cancellationToken)
    {
        x.HostLabel = HostLabel(x.Tls);
        CredSspServer? server = null;
        while (server?.State is not CredSspServerState.Authenticated)
        {
            CredSspServerStep step;
            if (server is null || server.State is CredSspServerState.WaitingForNegotiate or CredSspServerState.WaitingForAuthenticate or CredSspServerState.WaitingForCredentials)
            {
                // The client's turn: a decision under way is over (its answer was sent); only CredSSP's deadline runs.
                EndDecision(x);
                var read = await ReadAsync(x, cancellationToken).ConfigureAwait(false);
                if (read.Frame is null && read.Problem is null)
                {
                    return await FailReadAsync(x, read, server?.State ?? CredSspServerState.WaitingForNegotiate).ConfigureAwait(false);
                }

                // The CHALLENGE's server challenge and timestamp are drawn when the NEGOTIATE arrives.
                server ??= NewServer(x);
                if (read.Frame is not { } frame)
                {
                    step = server.Refuse(CredSspServerFailure.MalformedTsRequest, read.Problem!);
                }
                else
                {
                    if (server.State == CredSspServerState.WaitingForCredentials)
                    {
                        x.CredentialsReceived = true;
                        Decide(x);
                    }

                    step = server.Step(frame);
                }
            }
            else
            {
                step = await AnswerAsync(server, x).ConfigureAwait(false);
            }

            if (step.Failed)
            {
                return await RefuseAsync(x, step.Error.Status, step.Error.Reason, UserMessage(step.Error.Kind), step.Output, cancellationToken).ConfigureAwait(false);
            }

            if (step.Output is { } output)
            {
                await SendAsync(x, output, cancellationToken).ConfigureAwait(false);
            }
        }

        var deciding = x.Deciding!.Token;
        var account = x.Account!;
        var upn = x.Upn!;
        var decision = await directory.AuthorizeAsync(x.Connection, account, x.HostLabel ?? string.Empty, deciding).ConfigureAwait(false);
        x.Decision = decision;
        if (!decision.Allowed)
        {
            return await RefuseAfterCredentialsAsync(x, unchecked((uint)decision.ResultCode), $"authorization: {decision.Reason}", decision.UserMessage, cancellationToken).ConfigureAwait(false);
        }

        if (decision.Grant is { } grant)
        {
            var open = await opener.OpenAsync(x.Connection, ProtocolName, grant, deciding).ConfigureAwait(false);
            if (!open.Opened)
            {
                x.Fix = open.Fix;
                return await RefuseAfterCredentialsAsync(x, NtStatus.NoLogonServers, open.Reason, Unavailable, cancellationToken).ConfigureAwait(false);
            }

            x.Connection.Session = open.Session;
        }

        // The decision is logged before the client hears it; if the client has left meanwhile, the connection handler
        // closes the session that was opened for it.
        await LogAsync(x, true, decision.Reason, 0).ConfigureAwait(false);
        LogSignedIn(x.Connection.Id, upn, x.HostLabel ?? "?", decision.Reason);
        if (IsHybridEx(x.Connection))
        {
            await SendAsync(x, CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzSuccess), cancellationToken).ConfigureAwait(false);
        }

        return ClientAuthenticationResult.Success;
    }

    /// <summary>
    /// The CredSSP server of this connection: the gateway's TLS key, the host the client asked for as the NetBIOS names
    /// (the TLS server name as the DNS ones), a fresh server challenge and the current time.
    /// </summary>
    private CredSspServer NewServer(Exchange x)
    {
        // A server name with an empty first label (".example") has no computer name to offer; CredSspServer needs one.
        var computer = (x.HostLabel is { Length: > 0 } label ? label : "GATEHOUSE").ToUpperInvariant();
        var dnsName = (x.Tls as SslStream)?.TargetHostName is { Length: > 0 } sni ? sni : computer;
        return new CredSspServer(
            new CredSspServerSettings(certificate.Certificate.PublicKey.EncodedKeyValue.RawData, computer, dnsName)
            {
                ResolveUserName = static (domain, user) => NlaUserName.TryResolve(domain, user, out var upn) ? upn : null,
            },
            new CredSspServerRandom(RandomNumberGenerator.GetBytes(8), time.GetUtcNow().ToFileTime()));
    }

    /// <summary>What the machine asks of the gateway: the account, a wrong proof counted, the account's state, the password checked.</summary>
    private async Task<CredSspServerStep> AnswerAsync(CredSspServer server, Exchange x)
    {
        switch (server.State)
        {
            case CredSspServerState.WaitingForAccount:
                // The client has named a user: from here every way this attempt ends leaves its sign-in log entry, and the
                // gateway's checks run to their decision whatever the client does (bounded by their own deadline).
                x.NtlmUser = server.User!.ToString();
                x.Connection.UnfinishedSignIn = reason => Entry(x, false, reason, null, null);
                return await FindAccountAsync(server, x, Decide(x)).ConfigureAwait(false);

            case CredSspServerState.WrongProof:
                return await directory.RecordWrongProofAsync(x.Account!, x.Connection.RemoteAddress, x.Deciding!.Token).ConfigureAwait(false) == NlaAccountCheck.LockedOut
                    ? server.Refuse(CredSspServerFailure.LockedOut, "too many wrong passwords (smart lockout)")
                    : server.Refuse(CredSspServerFailure.BadPassword, "the NTLMv2 response does not match the user's password");

            case CredSspServerState.WaitingForAccountCheck:
                // The password is proven; the account's state is answered now, as Windows does, so the client can say why.
                var state = await directory.CheckStateAsync(x.Account!, x.Connection.RemoteAddress, x.Deciding!.Token).ConfigureAwait(false);
                return state == NlaAccountCheck.Ok ? server.ConfirmAccount() : RefuseState(server, state);

            case CredSspServerState.WaitingForPasswordCheck:
                var check = await directory.CheckPasswordAsync(x.Account!, server.Credentials!.Password, x.Connection.RemoteAddress, x.Deciding!.Token).ConfigureAwait(false);
                return check == NlaAccountCheck.Ok ? server.ConfirmPassword() : RefuseState(server, check);

            default:
                throw new InvalidOperationException($"NLA: the CredSSP server in state {server.State} asks nothing of the gateway.");
        }
    }

    /// <summary>The account the AUTHENTICATE names, and its NT hash for the machine to verify the NTLMv2 response with.</summary>
    private async Task<CredSspServerStep> FindAccountAsync(CredSspServer server, Exchange x, CancellationToken deciding)
    {
        if (server.User!.AccountName is not { } upn)
        {
            return server.Refuse(CredSspServerFailure.NotAWorkAccount, $"'{x.NtlmUser}' is not a work account name ({SignInMessages.NotAWorkAccount})");
        }

        x.Upn = upn;
        var account = await directory.FindAccountAsync(upn, deciding).ConfigureAwait(false);
        if (account is null)
        {
            return server.Refuse(CredSspServerFailure.UnknownUser, $"no user {upn}");
        }

        x.Account = account;
        return account.NtHash is { Length: 16 } ntHash
            ? server.ProvideAccount(ntHash)
            : server.Refuse(CredSspServerFailure.NoNtHash, "the user's password was set before NLA support and has not been used since; sign in once with it on the identity provider's pages (web account sign-in), or set it again (gatehouse user reset-password), to sign in with NLA");
    }

    private static CredSspServerStep RefuseState(CredSspServer server, NlaAccountCheck check) => check switch
    {
        NlaAccountCheck.Disabled => server.Refuse(CredSspServerFailure.UserDisabled, "the account is disabled"),
        NlaAccountCheck.MustChangePassword => server.Refuse(CredSspServerFailure.PasswordChangeRequired, "the password is temporary; change it on the identity provider's sign-in page first"),
        NlaAccountCheck.LockedOut => server.Refuse(CredSspServerFailure.LockedOut, "smart lockout holds the account"),
        _ => server.Refuse(CredSspServerFailure.BadPassword, "the password in TSPasswordCreds is wrong"),
    };

    /// <summary>What the user is told of a refusal (the client shows it; the sign-in log keeps it).</summary>
    private static string? UserMessage(CredSspServerFailure failure) => failure switch
    {
        CredSspServerFailure.NotAWorkAccount => SignInMessages.NotAWorkAccount,
        CredSspServerFailure.UnknownUser or CredSspServerFailure.NoNtHash or CredSspServerFailure.BadPassword => SignInMessages.CredentialsDidNotWork,
        CredSspServerFailure.LockedOut => SignInMessages.AccountLocked,
        CredSspServerFailure.UserDisabled => SignInMessages.AccountDisabled,
        CredSspServerFailure.PasswordChangeRequired => SignInMessages.MustChangePassword,
        _ => null,
    };

    /// <summary>The host the client asked for: the first label of the TLS server name (SNI), as in the web-account scope.</summary>
    internal static string? HostLabel(Stream tls)
    {
        if ((tls as SslStream)?.TargetHostName is not { Length: > 0 } name || AssertionValidator.LooksLikeAddress(name))
        {
            return null;
        }

        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? name : name[..dot];
    }

    private static bool IsHybridEx(GatewayConnection connection) =>
        connection.Negotiation?.Result.SelectedProtocol == SecurityProtocol.HybridEx;

    /// <summary>
    /// One TSRequest frame from the client within the CredSSP deadline: the frame, or why not. The read is bounded by the
    /// deadline alone, not by the client leaving: a message sent just before the client closed is still read.
    /// </summary>
    private async Task<ClientMessage> ReadAsync(Exchange x, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(options.Value.CredSspTimeout, time);
        try
        {
            var (frame, problem) = await TsRequestFraming.ReadAsync(x.Tls, deadline.Token).ConfigureAwait(false);
            return new ClientMessage(frame, problem, TimedOut: false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return new ClientMessage(null, null, TimedOut: true);
        }
    }

    /// <summary>
    /// No message: the deadline passed (refused and logged, no answer), or the client closed (logged by the connection
    /// handler when the client had named a user). A malformed frame is the machine's refusal.
    /// </summary>
    private async Task<ClientAuthenticationResult> FailReadAsync(Exchange x, ClientMessage read, CredSspServerState state)
    {
        var awaited = state switch
        {
            CredSspServerState.WaitingForNegotiate => "NEGOTIATE",
            CredSspServerState.WaitingForAuthenticate => "AUTHENTICATE",
            _ => "the credentials (TSCredentials)",
        };
        if (read.TimedOut)
        {
            var reason = $"credssp_timeout: no CredSSP message within {options.Value.CredSspTimeout.TotalSeconds:0} s (waiting for {awaited})";
            await LogAsync(x, false, reason, null).ConfigureAwait(false);
            return ClientAuthenticationResult.Failure(reason);
        }

        return ClientAuthenticationResult.Failure($"client_disconnected: the client closed the connection during CredSSP (waiting for {awaited})");
    }

    /// <summary>Starts a decision: the directory and the host leg under their own deadline, not the client's.</summary>
    private CancellationToken Decide(Exchange x)
    {
        x.Deciding?.Dispose();
        x.Deciding = new CancellationTokenSource(options.Value.SignInDecisionTimeout, time);
        return x.Deciding.Token;
    }

    private static void EndDecision(Exchange x)
    {
        x.Deciding?.Dispose();
        x.Deciding = null;
    }

    /// <summary>After the credentials: HYBRID_EX clients wait for the Early User Authorization Result, HYBRID ones for nothing.</summary>
    private async Task<ClientAuthenticationResult> RefuseAfterCredentialsAsync(Exchange x, uint status, string reason, string? userMessage, CancellationToken cancellationToken)
    {
        if (IsHybridEx(x.Connection))
        {
            await LogAsync(x, false, reason, status, userMessage).ConfigureAwait(false);
            await AnswerRefusalAsync(() => SendAsync(x, CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzAccessDenied), cancellationToken), cancellationToken).ConfigureAwait(false);
            return ClientAuthenticationResult.Failure(reason);
        }

        return await RefuseAsync(x, status, reason, userMessage, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Logs the refusal, then tells the client (which may have left: the entry is written either way) with
    /// <paramref name="answer"/>, the machine's errorCode TSRequest, or one with <paramref name="status"/>.
    /// </summary>
    private async Task<ClientAuthenticationResult> RefuseAsync(Exchange x, uint status, string reason, string? userMessage, byte[]? answer, CancellationToken cancellationToken)
    {
        await LogAsync(x, false, reason, status, userMessage).ConfigureAwait(false);
        await AnswerRefusalAsync(() => SendAsync(x, answer ?? CredSspServer.ErrorMessage(status), cancellationToken), cancellationToken).ConfigureAwait(false);
        return ClientAuthenticationResult.Failure(reason);
    }

    private static async Task AnswerRefusalAsync(Func<Task> answer, CancellationToken cancellationToken)
    {
        try
        {
            await answer().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // The client is gone; the refusal is logged already.
        }
    }

    private static async Task SendAsync(Exchange x, byte[] bytes, CancellationToken cancellationToken)
    {
        await x.Tls.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await x.Tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes this connection's one sign-in log entry (not cancelled by the client leaving).</summary>
    private async Task LogAsync(Exchange x, bool succeeded, string reason, uint? code, string? userMessage = null)
    {
        if (await signInLog.WriteOnceAsync(x.Connection, Entry(x, succeeded, reason, code, userMessage), options.Value.SignInDecisionTimeout, time).ConfigureAwait(false) && !succeeded)
        {
            LogRefused(x.Connection.Id, x.Upn ?? x.NtlmUser ?? "?", reason);
        }
    }

    private static GatewaySignInEvent Entry(Exchange x, bool succeeded, string reason, uint? code, string? userMessage) =>
        GatewaySignInEvent.ForPassword(x.Connection, ProtocolName, succeeded, reason, code is { } c ? $"0x{c:X8}" : null, userMessage, x.Fix, x.Account, x.Upn ?? x.NtlmUser, x.HostLabel, x.Decision);

    [LoggerMessage(EventIds.NlaSignedIn, LogLevel.Information, "RDP connection {ConnectionId}: {Upn} signed in with NLA to {Host} ({Decision}).")]
    private partial void LogSignedIn(string connectionId, string upn, string host, string decision);

    [LoggerMessage(EventIds.NlaRefused, LogLevel.Information, "RDP connection {ConnectionId}: NLA sign-in of {User} refused: {Reason}")]
    private partial void LogRefused(string connectionId, string user, string reason);

    /// <summary>A TSRequest frame from the client, or why there is none.</summary>
    private readonly record struct ClientMessage(byte[]? Frame, string? Problem, bool TimedOut);

    /// <summary>One connection's sign-in: who, what was decided, and the decision's deadline (CredSSP's state is the machine's).</summary>
    private sealed class Exchange(GatewayConnection connection, Stream tls)
    {
        public GatewayConnection Connection { get; } = connection;

        public Stream Tls { get; } = tls;

        public string? HostLabel { get; set; }

        public string? NtlmUser { get; set; }

        public string? Upn { get; set; }

        public NlaAccount? Account { get; set; }

        public WebAccountAuthorization? Decision { get; set; }

        public string? Fix { get; set; }

        /// <summary>The deadline of the decision under way (the directory, the authorisation, the host leg), if any.</summary>
        public CancellationTokenSource? Deciding { get; set; }

        /// <summary>True once the TSCredentials arrived (a refusal then uses the Early User Authorization Result).</summary>
        public bool CredentialsReceived { get; set; }
    }
}
