using System.Security.Cryptography;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Transport;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Nla;

/// <summary>
/// NLA on the client leg ([MS-CSSP] over the client's TLS, PROTOCOL_HYBRID and HYBRID_EX): the gateway is the CredSSP
/// server, a driver over the sans-IO <see cref="CredSspServer"/>. Prove: read the client's TSRequest frames, give the
/// machine a fresh server challenge and the time, and answer what it asks: the user's NT hash (the machine verifies
/// NTLMv2, the MIC and the public-key binding of the key the client saw), a wrong proof counted toward lockout, the
/// account's state, and the TSCredentials' password through the identity provider's checks. Once the client has named a
/// user, the checks run to their decision whatever the client does (under <see cref="GatewayOptions.SignInDecisionTimeout"/>).
/// Answer: a refusal is a TSRequest errorCode (the machine's own, or <see cref="SignInFailures.NtStatus"/>), or after the
/// credentials the Early User Authorization Result AUTHZ_ACCESS_DENIED for HYBRID_EX; an allowed HYBRID_EX client gets
/// AUTHZ_SUCCESS.
/// </summary>
public sealed class NlaAuthenticator(INlaDirectory directory, IOptions<GatewayOptions> options, TimeProvider time) : ISignInMethod
{
    /// <summary>The protocol name in the sign-in log.</summary>
    public const string ProtocolName = "nla";

    private INlaDirectory Directory => directory;

    private GatewayOptions Limits => options.Value;

    private TimeProvider Clock => time;

    /// <inheritdoc />
    public SignInMethods Method => SignInMethods.Nla;

    /// <inheritdoc />
    string ISignInMethod.ProtocolName => ProtocolName;

    /// <inheritdoc />
    public bool QualifiesAccessRefusals => true;

    /// <inheritdoc />
    public HoldUses HoldUses => HoldUses.All;

    /// <inheritdoc />
    public ISignInAttempt Begin(GatewayConnection connection, Stream client)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(client);
        return new Attempt(this, connection, client);
    }

    /// <summary>The host the client asked for: the first label of the TLS server name (SNI), as in the web-account scope.</summary>
    internal static string? HostLabel(GatewayConnection connection)
    {
        if (connection.Tls?.ServerName is not { Length: > 0 } name || AssertionValidator.LooksLikeAddress(name))
        {
            return null;
        }

        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? name : name[..dot];
    }

    /// <summary>One connection's CredSSP exchange: who, the machine's answer to send, and the decision's deadline.</summary>
    private sealed class Attempt(NlaAuthenticator method, GatewayConnection connection, Stream tls) : ISignInAttempt
    {
        private readonly string? _hostLabel = HostLabel(connection);
        private string? _ntlmUser;
        private string? _upn;
        private NlaAccount? _account;
        private CancellationTokenSource? _deciding;
        private bool _credentialsReceived;
        private CredSspServerError? _machineError;
        private byte[]? _machineAnswer;

        private bool HybridEx => connection.Negotiation?.Result.SelectedProtocol == SecurityProtocol.HybridEx;

        public SignInSubject Subject => new()
        {
            TenantId = _account?.TenantId,
            UserId = _account?.UserId,
            UserPrincipalName = _account?.UserPrincipalName ?? _upn ?? _ntlmUser,
            HostName = _hostLabel,
            HostLabel = _hostLabel,
            Methods = _account is null ? [] : ["pwd"],
            AuthenticatedAt = method.Clock.GetUtcNow(),
        };

        public async Task<SignInProof> ProveAsync(CancellationToken clientClosed)
        {
            try
            {
                return await RunAsync(clientClosed).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_deciding is { IsCancellationRequested: true })
            {
                // The directory did not answer in time: refused (fail closed).
                return SignInProof.Refused(Subject, SignInRefusal.Of(SignInFailure.DecisionTimeout, $"the sign-in decision took longer than {method.Limits.SignInDecisionTimeout.TotalSeconds:0} s (Gatehouse:Gateway:SignInDecisionTimeout)"));
            }
            finally
            {
                _deciding?.Dispose();
                _deciding = null;
            }
        }

        private async Task<SignInProof> RunAsync(CancellationToken clientClosed)
        {
            CredSspServer? server = null;
            while (server?.State is not CredSspServerState.Authenticated)
            {
                CredSspServerStep step;
                if (server is null || server.State is CredSspServerState.WaitingForNegotiate or CredSspServerState.WaitingForAuthenticate or CredSspServerState.WaitingForCredentials)
                {
                    // The client's turn: a decision under way is over (its answer was sent); only CredSSP's deadline runs.
                    EndDecision();
                    var read = await ReadAsync().ConfigureAwait(false);
                    if (read.Frame is null && read.Problem is null)
                    {
                        return FailRead(read, server?.State ?? CredSspServerState.WaitingForNegotiate);
                    }

                    // The CHALLENGE's server challenge and timestamp are drawn when the NEGOTIATE arrives.
                    server ??= NewServer();
                    if (read.Frame is not { } frame)
                    {
                        step = server.Refuse(CredSspServerFailure.MalformedTsRequest, read.Problem!);
                    }
                    else
                    {
                        if (server.State == CredSspServerState.WaitingForCredentials)
                        {
                            _credentialsReceived = true;
                            Decide();
                        }

                        step = server.Step(frame);
                    }
                }
                else
                {
                    step = await AskAsync(server).ConfigureAwait(false);
                }

                if (step.Failed)
                {
                    _machineError = step.Error;
                    _machineAnswer = step.Output;
                    return SignInProof.Refused(Subject, new SignInRefusal(SignInFailures.FromCredSsp(step.Error.Kind), step.Error.Reason));
                }

                if (step.Output is { } output)
                {
                    await tls.WriteAsync(output, clientClosed).ConfigureAwait(false);
                    await tls.FlushAsync(clientClosed).ConfigureAwait(false);
                }
            }

            return SignInProof.Of(Subject);
        }

        public SignInRefusal? PrepareAnswer(SessionGrant grant) => null;

        public string? AnswerCode(SignInOutcome outcome) => outcome.Refusal switch
        {
            null => "0x00000000",
            { Failure: SignInFailure.CredSspTimeout } => null,
            _ => $"0x{Status(outcome.Refusal):X8}",
        };

        public async Task AnswerAsync(SignInOutcome outcome, CancellationToken clientClosed)
        {
            byte[]? answer;
            if (outcome.Refusal is not { } refusal)
            {
                answer = HybridEx ? CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzSuccess) : null;
            }
            else if (refusal.Failure == SignInFailure.CredSspTimeout)
            {
                answer = null;
            }
            else if (_credentialsReceived && HybridEx && _machineError is null)
            {
                // After the credentials, HYBRID_EX clients wait for the Early User Authorization Result.
                answer = CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzAccessDenied);
            }
            else
            {
                answer = _machineAnswer ?? CredSspServer.ErrorMessage(Status(refusal));
            }

            if (answer is not null)
            {
                await tls.WriteAsync(answer, clientClosed).ConfigureAwait(false);
                await tls.FlushAsync(clientClosed).ConfigureAwait(false);
            }
        }

        public ValueTask DisposeAsync()
        {
            _deciding?.Dispose();
            return ValueTask.CompletedTask;
        }

        /// <summary>The NTSTATUS of a refusal: the machine's own, else the gateway's table.</summary>
        private uint Status(SignInRefusal refusal) => _machineError?.Status ?? SignInFailures.NtStatus(refusal.Failure);

        /// <summary>
        /// The CredSSP server of this connection: the TLS key the client saw, the host the client asked for as the NetBIOS
        /// names (the TLS server name as the DNS ones), a fresh server challenge and the current time.
        /// </summary>
        private CredSspServer NewServer()
        {
            // A server name with an empty first label (".example") has no computer name to offer; CredSspServer needs one.
            var computer = (_hostLabel is { Length: > 0 } label ? label : "GATEHOUSE").ToUpperInvariant();
            var tlsFacts = connection.Tls ?? throw new InvalidOperationException("NLA runs after TLS");
            var dnsName = tlsFacts.ServerName is { Length: > 0 } sni ? sni : computer;
            return new CredSspServer(
                new CredSspServerSettings(tlsFacts.ServerPublicKey.ToArray(), computer, dnsName)
                {
                    ResolveUserName = static (domain, user) => NlaUserName.TryResolve(domain, user, out var upn) ? upn : null,
                },
                new CredSspServerRandom(RandomNumberGenerator.GetBytes(8), method.Clock.GetUtcNow().ToFileTime()));
        }

        /// <summary>What the machine asks of the gateway: the account, a wrong proof counted, the account's state, the password checked.</summary>
        private async Task<CredSspServerStep> AskAsync(CredSspServer server)
        {
            var directory = method.Directory;
            switch (server.State)
            {
                case CredSspServerState.WaitingForAccount:
                    // The client has named a user: from here every way this attempt ends leaves its sign-in log entry, and the
                    // gateway's checks run to their decision whatever the client does (bounded by their own deadline).
                    _ntlmUser = server.User!.ToString();
                    return await FindAccountAsync(server, Decide()).ConfigureAwait(false);

                case CredSspServerState.WrongProof:
                    return await directory.RecordWrongProofAsync(_account!, connection.RemoteAddress, _deciding!.Token).ConfigureAwait(false) == NlaAccountCheck.LockedOut
                        ? server.Refuse(CredSspServerFailure.LockedOut, "too many wrong passwords (smart lockout)")
                        : server.Refuse(CredSspServerFailure.BadPassword, "the NTLMv2 response does not match the user's password");

                case CredSspServerState.WaitingForAccountCheck:
                    // The password is proven; the account's state is answered now, as Windows does, so the client can say why.
                    var state = await directory.CheckStateAsync(_account!, connection.RemoteAddress, _deciding!.Token).ConfigureAwait(false);
                    return state == NlaAccountCheck.Ok ? server.ConfirmAccount() : RefuseState(server, state);

                case CredSspServerState.WaitingForPasswordCheck:
                    var check = await directory.CheckPasswordAsync(_account!, server.Credentials!.Password, connection.RemoteAddress, _deciding!.Token).ConfigureAwait(false);
                    return check == NlaAccountCheck.Ok ? server.ConfirmPassword() : RefuseState(server, check);

                default:
                    throw new InvalidOperationException($"NLA: the CredSSP server in state {server.State} asks nothing of the gateway.");
            }
        }

        /// <summary>The account the AUTHENTICATE names, and its NT hash for the machine to verify the NTLMv2 response with.</summary>
        private async Task<CredSspServerStep> FindAccountAsync(CredSspServer server, CancellationToken deciding)
        {
            if (server.User!.AccountName is not { } upn)
            {
                return server.Refuse(CredSspServerFailure.NotAWorkAccount, $"'{_ntlmUser}' is not a work account name ({SignInMessages.NotAWorkAccount})");
            }

            _upn = upn;
            var account = await method.Directory.FindAccountAsync(upn, deciding).ConfigureAwait(false);
            if (account is null)
            {
                return server.Refuse(CredSspServerFailure.UnknownUser, $"no user {upn}");
            }

            _account = account;
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

        /// <summary>
        /// One TSRequest frame from the client within the CredSSP deadline: the frame, or why not. The read is bounded by the
        /// deadline alone, not by the client leaving: a message sent just before the client closed is still read.
        /// </summary>
        private async Task<ClientMessage> ReadAsync()
        {
            using var deadline = new CancellationTokenSource(method.Limits.CredSspTimeout, method.Clock);
            try
            {
                var (frame, problem) = await TsRequestFraming.ReadAsync(tls, deadline.Token).ConfigureAwait(false);
                return new ClientMessage(frame, problem, TimedOut: false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                return new ClientMessage(null, null, TimedOut: true);
            }
        }

        /// <summary>No message: the deadline passed (refused, no answer), or the client closed (unfinished).</summary>
        private SignInProof FailRead(ClientMessage read, CredSspServerState state)
        {
            var awaited = state switch
            {
                CredSspServerState.WaitingForNegotiate => "NEGOTIATE",
                CredSspServerState.WaitingForAuthenticate => "AUTHENTICATE",
                _ => "the credentials (TSCredentials)",
            };
            return read.TimedOut
                ? SignInProof.Refused(Subject, SignInRefusal.Of(SignInFailure.CredSspTimeout, $"no CredSSP message within {method.Limits.CredSspTimeout.TotalSeconds:0} s (waiting for {awaited})"))
                : SignInProof.Left(Subject, $"client_disconnected: the client closed the connection during CredSSP (waiting for {awaited})");
        }

        /// <summary>Starts a decision: the directory under its own deadline, not the client's.</summary>
        private CancellationToken Decide()
        {
            _deciding?.Dispose();
            _deciding = new CancellationTokenSource(method.Limits.SignInDecisionTimeout, method.Clock);
            return _deciding.Token;
        }

        private void EndDecision()
        {
            _deciding?.Dispose();
            _deciding = null;
        }
    }

    /// <summary>A TSRequest frame from the client, or why there is none.</summary>
    private readonly record struct ClientMessage(byte[]? Frame, string? Problem, bool TimedOut);
}
