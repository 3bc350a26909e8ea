using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tls;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Hold;

/// <summary>What the hold screen is used for on one connection.</summary>
public enum HoldUse
{
    /// <summary>Ask for the one-time code a policy needs, then hand the client over.</summary>
    StepUpMfa,

    /// <summary>Show why the sign-in was refused, what to do and the reference id, then disconnect.</summary>
    Refusal,

    /// <summary>The client named no registered host: offer the ones the user may sign in to, then hand the client over.</summary>
    HostPicker,
}

/// <summary>How a hold ended, for the session driver's one sign-in log entry (written before the last answer).</summary>
/// <param name="Refusal">The refusal (null when the client was handed over).</param>
/// <param name="Authorization">The access decision the entry reports (the one after the second factor, when there was one).</param>
/// <param name="Subject">Who, with the methods proven on the hold screen.</param>
/// <param name="Reason">The entry's reason when handed over.</param>
public sealed record HoldDecision(SignInRefusal? Refusal, AccessOutcome? Authorization, SignInSubject Subject, string Reason);

/// <summary>
/// The hold phase of the session driver: after a sign-in method proved who the client is and the decision was a
/// refusal that the hold screen can do better with, the method tells the client to go on and the gateway answers the
/// connection sequence with its own front (<see cref="HoldSession"/>). A policy that a second factor would satisfy gets
/// the one-time code prompt (attempts capped, the identity provider's per-account limit shared, one deadline), the
/// policies evaluated again with <c>mfa</c>, and a handover to the gateway itself with a one-time routing token; any other
/// refusal gets a readable screen with the reference id. The decision is logged (through the driver's callback) before
/// the client hears the end: the redirection, or Set Error Info and the ultimatum.
/// </summary>
public sealed class HoldPhase(
    IOptions<GatewayOptions> options,
    HoldScreenPainter painter,
    RoutingTokens tokens,
    ISignInAuthorizer authorizer,
    TimeProvider time,
    IHoldDirectory? directory = null,
    INlaDirectory? passwords = null,
    IQrSignInDirectory? qr = null)
{
    private int _held;

    private HoldScreenOptions Limits => options.Value.HoldScreen;

    /// <summary>Clients held right now.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>The one-time routing tokens (the driver redeems them on reconnects).</summary>
    public RoutingTokens Tokens => tokens;

    /// <summary>
    /// What, if anything, the hold screen does with this refused decision. A non-null answer takes one of the
    /// <see cref="HoldScreenOptions.MaxConcurrentHolds"/> places, which <see cref="RunAsync"/> gives back: the caller
    /// must run it.
    /// </summary>
    public HoldUse? Use(ISignInMethod method, SignInRefusal refusal, AccessOutcome? authorization)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(refusal);
        if (!Limits.Enabled || method.HoldUses == HoldUses.None)
        {
            return null;
        }

        HoldUse? use = authorization is null
            ? (Limits.Refusals && SignInFailures.IsAccessRefusal(refusal.Failure) ? HoldUse.Refusal : null)
            : UseFor(refusal, authorization, method.HoldUses);
        if (use is null)
        {
            return null;
        }

        if (Interlocked.Increment(ref _held) > Limits.MaxConcurrentHolds)
        {
            Interlocked.Decrement(ref _held);
            return null;
        }

        return use;
    }

    /// <summary>
    /// True when the hold screen takes this TLS connection's sign-in from the start (see
    /// <see cref="HoldScreenOptions.TlsSignIn"/>): not the reconnect of a TLS handover, a password or QR sign-in is
    /// enabled, and a place is free. A true answer takes one of the <see cref="HoldScreenOptions.MaxConcurrentHolds"/> places, which
    /// <see cref="RunTlsSignInAsync"/> gives back: the caller must run it.
    /// </summary>
    public bool TakesTlsSignIn(GatewayConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        // A handover of a TLS sign-in (it carries a secret) is the reconnect's to prove; any other token on a TLS
        // connection (spent at redemption) gives it nothing here: it is held from the start like any TLS client.
        if (!Limits.Enabled || !Limits.TlsSignIn || connection.Handover is { SecretHash: not null } || (!PasswordsOn && !QrOn))
        {
            return false;
        }

        if (Interlocked.Increment(ref _held) > Limits.MaxConcurrentHolds)
        {
            Interlocked.Decrement(ref _held);
            return false;
        }

        return true;
    }

    private bool PasswordsOn => passwords is not null && options.Value.SignInMethods.HasFlag(SignInMethods.Tls);

    private bool QrOn => qr is not null && options.Value.SignInMethods.HasFlag(SignInMethods.QrSignIn);

    /// <summary>
    /// A TLS sign-in on the gateway's own front (the client has only finished TLS): the connection sequence up to the
    /// Client Info PDU, then its password through the same checks as a TLS sign-in (a wrong one is refused at once with
    /// Set Error Info, no screen: nothing leaks to someone who does not know it), or, with no password, the QR sign-in;
    /// then the access decision, and the handover (with the handover's secret, which the reconnect sends back inside
    /// TLS), the one-time code prompt, the host picker or a readable refusal. <paramref name="log"/> writes the
    /// connection's one sign-in log entry (a client that named nobody leaves none), before the client hears the end.
    /// </summary>
    public async Task RunTlsSignInAsync(GatewayConnection connection, Stream client, Func<HoldDecision, Task> log, CancellationToken clientClosed)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(log);
        var label = TlsAuthenticator.HostLabel(connection);
        var state = new HeldState(
            SignInRefusal.Of(SignInFailure.ClientDisconnected, "the client left the hold screen before it signed in"),
            null,
            new SignInSubject { HostLabel = label, HostName = label, AuthenticatedAt = time.GetUtcNow() });
        try
        {
            await HoldAsync(connection, client, state, QrOn ? Limits.QrSignInTimeout : Limits.PromptTimeout, log, async (session, logOnce, cancellationToken) =>
            {
                if (await ProveOnFrontAsync(session, connection, state, logOnce, cancellationToken).ConfigureAwait(false) is not { } subject)
                {
                    return;
                }

                session.Dispose(); // The kept Client Info PDU (a password) is not needed any more.
                var decided = await AuthorizeAsync(connection, subject, cancellationToken).ConfigureAwait(false);
                state.Set(decided.Refusal is { } r ? r with { Reason = $"authorization: {r.Reason}" } : state.Refusal, decided, subject);
                if (decided.Refusal is null)
                {
                    await HandOverAsync(session, connection, subject, decided, $"handed_over: {subject.UserPrincipalName} signed in with {string.Join(' ', subject.Methods)} on the hold screen's TLS sign-in; the client reconnects with a one-time routing token and the handover's secret ({decided.Reason})", logOnce, cancellationToken).ConfigureAwait(false);
                    return;
                }

                switch (UseFor(state.Refusal, decided))
                {
                    case HoldUse.StepUpMfa:
                        await StepUpAsync(session, connection, subject, state.Refusal, decided, logOnce, cancellationToken).ConfigureAwait(false);
                        break;
                    case HoldUse.HostPicker:
                        await PickHostAsync(session, connection, subject, state.Refusal, decided, logOnce, cancellationToken).ConfigureAwait(false);
                        break;
                    case HoldUse.Refusal:
                        await RefuseAsync(session, connection, state.Refusal, decided, subject, logOnce, cancellationToken).ConfigureAwait(false);
                        break;
                    default:
                        await logOnce(new HoldDecision(state.Refusal, decided, subject, string.Empty)).ConfigureAwait(false);
                        await session.RefuseAsync(SignInFailures.ErrorInfo(state.Refusal.Failure), cancellationToken).ConfigureAwait(false);
                        break;
                }
            }, null, clientClosed).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }
    }

    /// <summary>Who the front's client is: its password, or its QR sign-in; null when the attempt ended (logged).</summary>
    private async Task<SignInSubject?> ProveOnFrontAsync(HoldSession session, GatewayConnection connection, HeldState state, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var info = session.ClientInfo;
        var named = info is { UserName.Length: > 0 } ? (info.Domain.Length == 0 ? info.UserName : $"{info.Domain}\\{info.UserName}") : null;
        if (PasswordsOn && info is { PasswordGiven: true } && session.ClientInfoFrame is { } frame)
        {
            using var deciding = new CancellationTokenSource(options.Value.SignInDecisionTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deciding.Token, cancellationToken);
            var proved = await TlsAuthenticator.ProvePasswordAsync(passwords!, frame, options.Value, connection.RemoteAddress, linked.Token).ConfigureAwait(false);
            var subject = state.Subject with
            {
                TenantId = proved.Account?.TenantId,
                UserId = proved.Account?.UserId,
                UserPrincipalName = proved.Account?.UserPrincipalName ?? proved.Upn ?? proved.ClientUser ?? named,
                Methods = proved.Account is null ? [] : ["pwd"],
                AuthenticatedAt = time.GetUtcNow(),
            };
            if (proved.Refusal is { } refused)
            {
                // Refused inside the protocol, as a TLS sign-in always was: no screen before the password is right.
                state.Set(refused, null, subject);
                await log(new HoldDecision(refused, null, subject, string.Empty)).ConfigureAwait(false);
                await session.RefuseAsync(SignInFailures.ErrorInfo(refused.Failure), cancellationToken).ConfigureAwait(false);
                return null;
            }

            return subject;
        }

        if (QrOn)
        {
            return await QrSignInAsync(session, connection, state, log, cancellationToken).ConfigureAwait(false);
        }

        var none = SignInRefusal.Of(SignInFailure.NoPassword, "the Client Info PDU carries no password; TLS sign-in needs one (FreeRDP /p:, or save the password in the client), or use NLA");
        state.Set(none, null, state.Subject with { UserPrincipalName = named });
        await log(new HoldDecision(none, null, state.Subject, string.Empty)).ConfigureAwait(false);
        await session.RefuseAsync(SignInFailures.ErrorInfo(none.Failure), cancellationToken).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// The QR sign-in: a device code for the RDP application naming the host, painted as a QR code of the page with the
    /// code filled in and the short code; polled at its interval while the screen answers refresh requests; approved, it
    /// gives the user with the methods used on the phone. Null when it ended (denied, expired, the client left: logged).
    /// </summary>
    private async Task<SignInSubject?> QrSignInAsync(HoldSession session, GatewayConnection connection, HeldState state, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var started = await qr!.BeginAsync(state.Subject.HostLabel, connection.RemoteAddress, Limits.QrSignInTimeout, cancellationToken).ConfigureAwait(false);
        if (started is null)
        {
            var unavailable = SignInRefusal.Of(SignInFailure.QrSignInUnavailable, "the identity provider issued no sign-in code for the QR sign-in (no tenant, or too many pending codes from this address)");
            state.Set(unavailable, null, state.Subject);
            await log(new HoldDecision(unavailable, null, state.Subject, string.Empty)).ConfigureAwait(false);
            await session.RefuseAsync(SignInFailures.ErrorInfo(unavailable.Failure), cancellationToken).ConfigureAwait(false);
            return null;
        }

        var host = started.HostName ?? "Remote Desktop";
        state.Set(SignInRefusal.Of(SignInFailure.HoldTimeout, $"nobody finished the QR sign-in for {host} on the device-code page"), null, state.Subject);
        await session.ShowAsync(new QrSignInView(started.CompleteUrl, started.UserCode, host, $"{SignInMessages.QrSignInInstructions} {started.VerificationUrl}"), cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var input = session.InputPending(cancellationToken);
            using (var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                var interval = Task.Delay(started.Interval, time, wake.Token);
                var first = await Task.WhenAny(input, interval).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                if (first == input)
                {
                    session.ConsumePending();
                    if (await input.ConfigureAwait(false) is null)
                    {
                        await log(new HoldDecision(state.Refusal with { Reason = $"{state.Refusal.Reason} (the client left the QR sign-in)" }, null, state.Subject, string.Empty)).ConfigureAwait(false);
                        return null;
                    }

                    continue; // Keys do nothing on this screen.
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            var poll = await qr.PollAsync(started, cancellationToken).ConfigureAwait(false);
            switch (poll.State)
            {
                case QrSignInState.Approved when poll.Subject is { } signedIn:
                    return signedIn with { HostLabel = state.Subject.HostLabel, HostName = started.HostName ?? state.Subject.HostLabel };
                case QrSignInState.Denied:
                    var denied = SignInRefusal.Of(SignInFailure.QrSignInDenied, $"the QR sign-in for {host} was answered 'no' or refused on the device-code page (the sign-in log's browser entry says why)") with
                    {
                        Fix = "If it was the user, connect again and answer yes; if not, someone may have tried to get a user to sign in for them (device-code phishing).",
                    };
                    state.Set(denied, null, state.Subject);
                    await RefuseAsync(session, connection, denied, null, state.Subject, log, cancellationToken).ConfigureAwait(false);
                    return null;
                case QrSignInState.Expired:
                    var expired = SignInRefusal.Of(SignInFailure.HoldTimeout, $"the QR sign-in's code for {host} expired before anyone finished on the device-code page");
                    state.Set(expired, null, state.Subject);
                    await log(new HoldDecision(expired, null, state.Subject, string.Empty)).ConfigureAwait(false);
                    await session.RefuseAsync(SignInFailures.ErrorInfo(expired.Failure), cancellationToken).ConfigureAwait(false);
                    return null;
            }
        }
    }

    /// <summary>The hold screen's use for a refused access decision, as <see cref="Use"/> decides it (no place is taken).</summary>
    private HoldUse? UseFor(SignInRefusal refusal, AccessOutcome decided, HoldUses allowed = HoldUses.All) =>
        decided is { MfaWouldSatisfy: true } && Limits.StepUpMfa && directory is not null && allowed.HasFlag(HoldUses.StepUpMfa) ? HoldUse.StepUpMfa
        : decided is { HostUnknown: true } && Limits.HostPicker && directory is not null && allowed.HasFlag(HoldUses.HostPicker) ? HoldUse.HostPicker
        : Limits.Refusals && SignInFailures.IsAccessRefusal(refusal.Failure) && allowed.HasFlag(HoldUses.Refusals) ? HoldUse.Refusal
        : null;

    /// <summary>
    /// Runs the hold on <paramref name="client"/> (the method has told the client to go on). <paramref name="log"/> writes
    /// the connection's one sign-in log entry; it is called exactly once, before the client hears the end.
    /// </summary>
    public async Task RunAsync(GatewayConnection connection, Stream client, HoldUse use, SignInSubject subject, SignInRefusal refusal, AccessOutcome? authorization, Func<Task> proceed, Func<HoldDecision, Task> log, CancellationToken clientClosed)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(proceed);
        ArgumentNullException.ThrowIfNull(log);
        try
        {
            // The method tells the client to go on first (inside the hold, so a client gone by then still leaves its row).
            var state = new HeldState(refusal, authorization, subject);
            await HoldAsync(connection, client, state, Limits.PromptTimeout, log, (session, logOnce, cancellationToken) => use switch
            {
                HoldUse.Refusal => RefuseAsync(session, connection, refusal, authorization, subject, logOnce, cancellationToken),
                HoldUse.HostPicker => PickHostAsync(session, connection, subject, refusal, authorization, logOnce, cancellationToken),
                _ => StepUpAsync(session, connection, subject, refusal, authorization, logOnce, cancellationToken),
            }, proceed, clientClosed).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }
    }

    /// <summary>What a hold has decided so far: the entry its end writes if nothing better is known (a timeout, the client leaving).</summary>
    private sealed class HeldState(SignInRefusal refusal, AccessOutcome? authorization, SignInSubject subject)
    {
        public SignInRefusal Refusal { get; private set; } = refusal;

        public AccessOutcome? Authorization { get; private set; } = authorization;

        public SignInSubject Subject { get; private set; } = subject;

        public void Set(SignInRefusal refusal, AccessOutcome? authorization, SignInSubject subject)
        {
            Refusal = refusal;
            Authorization = authorization;
            Subject = subject;
        }
    }

    /// <summary>
    /// One hold: the front's connection sequence, then <paramref name="body"/>, all under one deadline; the entry is
    /// written exactly once (by the body, or here when the deadline passes, the client leaves or the gateway fails).
    /// </summary>
    private async Task HoldAsync(GatewayConnection connection, Stream client, HeldState state, TimeSpan timeout, Func<HoldDecision, Task> log, Func<HoldSession, Func<HoldDecision, Task>, CancellationToken, Task> body, Func<Task>? proceed, CancellationToken clientClosed)
    {
        var logged = false;
        Task Log(HoldDecision decision)
        {
            logged = true;
            return log(decision);
        }

        using var timer = new CancellationTokenSource(timeout, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(clientClosed, timer.Token);
        HoldSession? session = null;
        try
        {
            if (proceed is not null)
            {
                await proceed().ConfigureAwait(false);
            }

            (session, var problem) = await HoldSession.StartAsync(connection, client, painter, Limits.MaxDesktopPixels, both.Token, keepClientInfo: proceed is null).ConfigureAwait(false);
            if (session is null)
            {
                await Log(new HoldDecision(state.Refusal with { Reason = $"{state.Refusal.Reason} ({problem})" }, state.Authorization, state.Subject, string.Empty)).ConfigureAwait(false);
                return;
            }

            await body(session, Log, both.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !clientClosed.IsCancellationRequested)
        {
            var timedOut = SignInRefusal.Of(SignInFailure.HoldTimeout, $"the hold screen got no answer within {timeout.TotalSeconds:0} s (Gatehouse:Gateway:HoldScreen:{(timeout == Limits.PromptTimeout ? "PromptTimeout" : "QrSignInTimeout")}); before it: {state.Refusal.Reason}");
            if (!logged)
            {
                await Log(new HoldDecision(timedOut, state.Authorization, state.Subject, string.Empty)).ConfigureAwait(false);
            }

            if (session is not null)
            {
                await TryAsync(() => session.RefuseAsync(SignInFailures.ErrorInfo(timedOut.Failure), CancellationToken.None)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            // The decision stands (its reason first); the row says the client did not stay for the screen.
            if (!logged)
            {
                await Log(new HoldDecision(state.Refusal with { Reason = $"{state.Refusal.Reason} (the client left the hold screen)" }, state.Authorization, state.Subject, string.Empty)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!logged)
        {
            // A failure of the gateway's own: the decided connection still leaves its one row, then the error surfaces.
            await Log(new HoldDecision(state.Refusal with { Reason = $"{state.Refusal.Reason} (the hold screen failed: {e.GetType().Name})" }, state.Authorization, state.Subject, string.Empty)).ConfigureAwait(false);
            throw;
        }
        finally
        {
            if (session is not null)
            {
                // The client closes first, once it has read the end (or the wait runs out).
                await session.WaitForCloseAsync(HoldSession.CloseWait, time, clientClosed).ConfigureAwait(false);
                session.Dispose();
            }
        }
    }

    /// <summary>The refusal screen: logged first, painted, shown until the user closes or a key is pressed (or the deadline), then ended.</summary>
    private static async Task RefuseAsync(HoldSession session, GatewayConnection connection, SignInRefusal refusal, AccessOutcome? authorization, SignInSubject subject, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        await log(new HoldDecision(refusal, authorization, subject, string.Empty)).ConfigureAwait(false);
        await session.ShowAsync(new RefusalView(refusal.Message ?? SignInMessages.CredentialsDidNotWork, refusal.Fix ?? "Contact your administrator.", connection.Id), cancellationToken).ConfigureAwait(false);
        await session.NextInputAsync(cancellationToken).ConfigureAwait(false);
        await TryAsync(() => session.RefuseAsync(SignInFailures.ErrorInfo(refusal.Failure), cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>The one-time code prompt, the policies again with <c>mfa</c>, and the handover.</summary>
    private async Task StepUpAsync(HoldSession session, GatewayConnection connection, SignInSubject subject, SignInRefusal refusal, AccessOutcome? authorization, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var userId = subject.UserId!.Value;
        var factor = await directory!.GetSecondFactorAsync(userId, authorization?.HostId ?? subject.HostId, cancellationToken).ConfigureAwait(false);
        if (factor != SecondFactor.Code)
        {
            var enroll = SignInRefusal.Of(SignInFailure.MfaEnrollmentRequired, $"{refusal.Reason}; the user has no authenticator app to prove it with") with { Fix = $"Set up an authenticator app ({directory.EnrollmentHint}), then connect again." };
            await RefuseAsync(session, connection, enroll, authorization, subject, log, cancellationToken).ConfigureAwait(false);
            return;
        }

        const int digits = 6;
        var user = subject.UserPrincipalName ?? session.ClientInfo?.UserName ?? "you";
        var deadlineText = $"You have {Limits.PromptTimeout.TotalMinutes:0.#} minutes.";
        var typed = new System.Text.StringBuilder(digits);
        string? error = null;
        var wrong = 0;
        while (true)
        {
            await session.ShowAsync(new CodePromptView(user, digits, typed.Length, error, deadlineText), cancellationToken).ConfigureAwait(false);
            var input = await session.NextInputAsync(cancellationToken).ConfigureAwait(false);
            switch (input)
            {
                case null:
                    await log(new HoldDecision(refusal with { Reason = $"{refusal.Reason} (the client left the one-time code prompt)" }, authorization, subject, string.Empty)).ConfigureAwait(false);
                    return;
                case DigitTyped d when typed.Length < digits:
                    typed.Append((char)('0' + d.Digit));
                    break;
                case BackspaceTyped when typed.Length > 0:
                    typed.Length--;
                    break;
            }

            if (typed.Length < digits)
            {
                // Enter before the sixth digit does nothing; the sixth digit submits (Enter is not needed).
                continue;
            }

            var code = typed.ToString();
            typed.Clear();
            var check = await directory.CheckOneTimeCodeAsync(userId, code, cancellationToken).ConfigureAwait(false);
            if (check == OneTimeCodeCheck.Ok)
            {
                await SecondFactorProvedAsync(session, connection, subject, log, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (check == OneTimeCodeCheck.Throttled)
            {
                var throttled = SignInRefusal.Of(SignInFailure.Throttled, $"more password or code attempts for {user} this minute than the per-account limit allows; the one-time code was not checked");
                await log(new HoldDecision(throttled, authorization, subject, string.Empty)).ConfigureAwait(false);
                await session.RefuseAsync(SignInFailures.ErrorInfo(throttled.Failure), cancellationToken).ConfigureAwait(false);
                return;
            }

            wrong++;
            if (wrong >= Limits.MaxCodeAttempts)
            {
                var failed = SignInRefusal.Of(SignInFailure.WrongOneTimeCode, $"{wrong} wrong one-time codes from {user} on the hold screen (Gatehouse:Gateway:HoldScreen:MaxCodeAttempts)") with
                {
                    Fix = "Enter the current code from the authenticator app; if codes keep failing, check the device's clock, or reset the method ('gatehouse user mfa').",
                };
                await log(new HoldDecision(failed, authorization, subject, string.Empty)).ConfigureAwait(false);
                await session.RefuseAsync(SignInFailures.ErrorInfo(failed.Failure), cancellationToken).ConfigureAwait(false);
                return;
            }

            var left = Limits.MaxCodeAttempts - wrong;
            error = $"That code didn't work. {left} attempt{(left == 1 ? string.Empty : "s")} left.";
        }
    }

    /// <summary>Most hosts on the picker.</summary>
    public const int MaxPickerHosts = 200;

    /// <summary>
    /// The host picker: the hosts a role lets the user sign in to, chosen with the arrows and Enter; the choice is
    /// decided as a sign-in to that host (a policy that wants MFA then asks for the code), and handed over.
    /// </summary>
    private async Task PickHostAsync(HoldSession session, GatewayConnection connection, SignInSubject subject, SignInRefusal refusal, AccessOutcome? authorization, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var hosts = await directory!.ListHostsAsync(subject.UserId!.Value, MaxPickerHosts, cancellationToken).ConfigureAwait(false);
        if (hosts.Count == 0)
        {
            await RefuseAsync(session, connection, refusal, authorization, subject, log, cancellationToken).ConfigureAwait(false);
            return;
        }

        var selected = 0;
        while (true)
        {
            await session.ShowAsync(new HostPickerView([.. hosts.Select(h => h.Name)], selected, "Choose a computer with the arrow keys, then press Enter."), cancellationToken).ConfigureAwait(false);
            switch (await session.NextInputAsync(cancellationToken).ConfigureAwait(false))
            {
                case null:
                    await log(new HoldDecision(refusal with { Reason = $"{refusal.Reason} (the client left the host picker)" }, authorization, subject, string.Empty)).ConfigureAwait(false);
                    return;
                case ArrowTyped arrow:
                    selected = Math.Clamp(selected + (arrow.Down ? 1 : -1), 0, hosts.Count - 1);
                    break;
                case EnterTyped:
                    var host = hosts[selected];
                    var chosen = subject with { HostId = host.Id, HostName = host.Name };
                    var decided = await AuthorizeAsync(connection, chosen, cancellationToken).ConfigureAwait(false);
                    if (decided.Refusal is not { } still)
                    {
                        await HandOverAsync(session, connection, chosen, decided, $"handed_over: {chosen.UserPrincipalName} chose {host.Name} on the host picker", log, cancellationToken).ConfigureAwait(false);
                    }
                    else if (decided.MfaWouldSatisfy && Limits.StepUpMfa)
                    {
                        await StepUpAsync(session, connection, chosen, still with { Reason = $"authorization: {still.Reason}" }, decided, log, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await RefuseAsync(session, connection, still with { Reason = $"authorization: {still.Reason}" }, decided, chosen, log, cancellationToken).ConfigureAwait(false);
                    }

                    return;
            }
        }
    }

    private async Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
    {
        using var deciding = new CancellationTokenSource(options.Value.SignInDecisionTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deciding.Token, cancellationToken);
        return await authorizer.AuthorizeAsync(connection, subject, linked.Token).ConfigureAwait(false);
    }

    /// <summary>The policies again with the second factor; allowed: the handover, else the refusal screen.</summary>
    private async Task SecondFactorProvedAsync(HoldSession session, GatewayConnection connection, SignInSubject subject, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var stepped = subject with { Methods = [.. subject.Methods.Union(["mfa", "otp"], StringComparer.Ordinal)] };
        var again = await AuthorizeAsync(connection, stepped, cancellationToken).ConfigureAwait(false);
        if (again.Refusal is { } still)
        {
            await RefuseAsync(session, connection, still with { Reason = $"authorization: {still.Reason}" }, again, stepped, log, cancellationToken).ConfigureAwait(false);
            return;
        }

        await HandOverAsync(session, connection, stepped, again, $"handed_over: {stepped.UserPrincipalName} proved a second factor on the hold screen; the client reconnects with a one-time routing token ({again.Reason})", log, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// An allowed decision: a routing token for its host, the entry, then the redirection. A TLS client, which will not
    /// prove anything itself on the reconnect, also gets its user name and a one-time secret (LB_USERNAME, LB_PASSWORD),
    /// which its Client Info PDU sends back inside TLS; the routing token, visible before TLS, is useless without it.
    /// </summary>
    private async Task HandOverAsync(HoldSession session, GatewayConnection connection, SignInSubject subject, AccessOutcome allowed, string reason, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        if (!session.SupportsRedirection)
        {
            var unsupported = SignInRefusal.Of(SignInFailure.HandoverUnsupported, "the client's cluster data does not say REDIRECTION_SUPPORTED, so it cannot be handed over to the host") with
            {
                Fix = "Use a client that follows a server redirection (FreeRDP 3, mstsc, Windows App); for TLS sign-ins, Gatehouse:Gateway:HoldScreen:TlsSignIn=false relays the host from the start instead.",
            };
            await RefuseAsync(session, connection, unsupported, allowed, subject, log, cancellationToken).ConfigureAwait(false);
            return;
        }

        var hostId = allowed.Grant?.HostId ?? allowed.HostId ?? subject.HostId;
        var tls = connection.Negotiation?.Method == SignInMethods.Tls;
        var (secret, secretHash) = tls ? HandoverGrant.NewSecret() : (null, null);
        var token = hostId is { } host ? tokens.Mint(new HandoverGrant
        {
            ClientAddress = connection.RemoteAddress,
            TenantId = subject.TenantId!.Value,
            UserId = subject.UserId!.Value,
            HostId = host,
            Methods = subject.Methods,
            AuthenticatedAt = subject.AuthenticatedAt == default ? time.GetUtcNow() : subject.AuthenticatedAt,
            ConnectionId = connection.Id,
            UserPrincipalName = subject.UserPrincipalName,
            HostName = allowed.Grant?.HostName ?? subject.HostName,
            SecretHash = secretHash,
        }) : null;
        if (token is null)
        {
            var unavailable = SignInRefusal.Of(SignInFailure.HandoverUnavailable, "no routing token could be minted (Gatehouse:Gateway:HoldScreen:MaxOutstandingRoutingTokens)");
            await log(new HoldDecision(unavailable, allowed, subject, string.Empty)).ConfigureAwait(false);
            await session.RefuseAsync(SignInFailures.ErrorInfo(unavailable.Failure), cancellationToken).ConfigureAwait(false);
            return;
        }

        await log(new HoldDecision(null, allowed, subject, reason)).ConfigureAwait(false);
        await session.RedirectAsync(token, cancellationToken, tls ? subject.UserPrincipalName : null, secret).ConfigureAwait(false);
    }

    private static async Task TryAsync(Func<Task> send)
    {
        try
        {
            await send().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The client is gone, or the front is closed already.
        }
    }
}
