using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.SignIn;
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
    IHoldDirectory? directory = null)
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
        if (!Limits.Enabled || !method.CanHold)
        {
            return null;
        }

        HoldUse? use = authorization is { MfaWouldSatisfy: true } && Limits.StepUpMfa && directory is not null ? HoldUse.StepUpMfa
            : authorization is { HostUnknown: true } && Limits.HostPicker && directory is not null ? HoldUse.HostPicker
            : Limits.Refusals && SignInFailures.IsAccessRefusal(refusal.Failure) ? HoldUse.Refusal
            : null;
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
            await HoldAsync(connection, client, use, subject, refusal, authorization, proceed, log, clientClosed).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }
    }

    private async Task HoldAsync(GatewayConnection connection, Stream client, HoldUse use, SignInSubject subject, SignInRefusal refusal, AccessOutcome? authorization, Func<Task> proceed, Func<HoldDecision, Task> log, CancellationToken clientClosed)
    {
        var logged = false;
        Task Log(HoldDecision decision)
        {
            logged = true;
            return log(decision);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(clientClosed);
        using var timer = new CancellationTokenSource(Limits.PromptTimeout, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, timer.Token);
        HoldSession? session = null;
        try
        {
            await proceed().ConfigureAwait(false);
            (session, var problem) = await HoldSession.StartAsync(connection, client, painter, Limits.MaxDesktopPixels, both.Token).ConfigureAwait(false);
            if (session is null)
            {
                await Log(new HoldDecision(refusal with { Reason = $"{refusal.Reason} ({problem})" }, authorization, subject, string.Empty)).ConfigureAwait(false);
                return;
            }

            if (use == HoldUse.Refusal)
            {
                await RefuseAsync(session, connection, refusal, authorization, subject, Log, both.Token).ConfigureAwait(false);
                return;
            }

            if (use == HoldUse.HostPicker)
            {
                await PickHostAsync(session, connection, subject, refusal, authorization, Log, both.Token).ConfigureAwait(false);
                return;
            }

            await StepUpAsync(session, connection, subject, refusal, authorization, Log, both.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !clientClosed.IsCancellationRequested)
        {
            var timedOut = SignInRefusal.Of(SignInFailure.HoldTimeout, $"the hold screen got no answer within {Limits.PromptTimeout.TotalSeconds:0} s (Gatehouse:Gateway:HoldScreen:PromptTimeout); before it: {refusal.Reason}");
            if (!logged)
            {
                await Log(new HoldDecision(timedOut, authorization, subject, string.Empty)).ConfigureAwait(false);
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
                await Log(new HoldDecision(refusal with { Reason = $"{refusal.Reason} (the client left the hold screen)" }, authorization, subject, string.Empty)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (!logged)
        {
            // A failure of the gateway's own: the decided connection still leaves its one row, then the error surfaces.
            await Log(new HoldDecision(refusal with { Reason = $"{refusal.Reason} (the hold screen failed: {e.GetType().Name})" }, authorization, subject, string.Empty)).ConfigureAwait(false);
            throw;
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

    /// <summary>An allowed decision: a routing token for its host, the entry, then the redirection.</summary>
    private async Task HandOverAsync(HoldSession session, GatewayConnection connection, SignInSubject subject, AccessOutcome allowed, string reason, Func<HoldDecision, Task> log, CancellationToken cancellationToken)
    {
        var hostId = allowed.Grant?.HostId ?? allowed.HostId ?? subject.HostId;
        var token = hostId is { } host ? tokens.Mint(new HandoverGrant
        {
            ClientAddress = connection.RemoteAddress,
            TenantId = subject.TenantId!.Value,
            UserId = subject.UserId!.Value,
            HostId = host,
            Methods = subject.Methods,
            AuthenticatedAt = time.GetUtcNow(),
            ConnectionId = connection.Id,
        }) : null;
        if (token is null)
        {
            var unavailable = SignInRefusal.Of(SignInFailure.HandoverUnavailable, "no routing token could be minted (Gatehouse:Gateway:HoldScreen:MaxOutstandingRoutingTokens)");
            await log(new HoldDecision(unavailable, allowed, subject, string.Empty)).ConfigureAwait(false);
            await session.RefuseAsync(SignInFailures.ErrorInfo(unavailable.Failure), cancellationToken).ConfigureAwait(false);
            return;
        }

        await log(new HoldDecision(null, allowed, subject, reason)).ConfigureAwait(false);
        await session.RedirectAsync(token, cancellationToken).ConfigureAwait(false);
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
