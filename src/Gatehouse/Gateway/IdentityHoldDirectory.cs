using Gatehouse.Gateway.Hold;
using Gatehouse.Identity;
using Gatehouse.Idp;

namespace Gatehouse.Gateway;

/// <summary>
/// The hold screen's view of the identity provider, in process: which second factor a user can give, and the one-time
/// code checked by the sign-in engine's code step (<see cref="SignInEngine.CheckOneTimeCodeAsync"/>), so the per-account
/// attempt limit it shares with the sign-in pages and the replay protection are the same. The engine writes no sign-in
/// log row for the hold screen's codes: the held session writes its own one row with the reason.
/// </summary>
internal sealed class IdentityHoldDirectory : IHoldDirectory
{
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _time;
    private readonly string _enrollmentHint;

    /// <summary>
    /// Creates the directory. <paramref name="attempts"/> is the limiter the engine draws from (the one the container
    /// holds); it is taken here only so the registration keeps naming it, and must be that same instance.
    /// </summary>
    public IdentityHoldDirectory(IServiceScopeFactory scopes, AccountAttemptLimiter attempts, TimeProvider time, string enrollmentHint)
    {
        ArgumentNullException.ThrowIfNull(scopes);
        ArgumentNullException.ThrowIfNull(attempts);
        ArgumentNullException.ThrowIfNull(time);
        _scopes = scopes;
        _time = time;
        _enrollmentHint = enrollmentHint;
    }

    /// <inheritdoc/>
    public string EnrollmentHint => _enrollmentHint;

    /// <inheritdoc/>
    public async Task<SecondFactor> GetSecondFactorAsync(Guid userId, Guid? hostId, CancellationToken cancellationToken)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var user = await directory.FindUserAsync(userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            return SecondFactor.None;
        }

        // The hold screen only asks for a code: a user with a confirmed app proves it; anyone else enrols on the pages.
        return user.TotpConfirmedAt is not null ? SecondFactor.Code : SecondFactor.Enroll;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<HoldHost>> ListHostsAsync(Guid userId, int max, CancellationToken cancellationToken)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserAsync(userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            return [];
        }

        var hosts = await scope.ServiceProvider.GetRequiredService<AccessService>().HostsUserMaySignInToAsync(user, max, cancellationToken).ConfigureAwait(false);
        return [.. hosts.Select(h => new HoldHost(h.Id, h.Name))];
    }

    /// <inheritdoc/>
    public async Task<OneTimeCodeCheck> CheckOneTimeCodeAsync(Guid userId, string code, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(code);
        await using var scope = _scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var user = await directory.FindUserAsync(userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled || user.TotpConfirmedAt is null)
        {
            return OneTimeCodeCheck.NoMethod;
        }

        var engine = scope.ServiceProvider.GetRequiredService<SignInEngine>();
        return await engine.CheckOneTimeCodeAsync(user, code, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false) switch
        {
            OneTimeCodeOutcome.Accepted => OneTimeCodeCheck.Ok,
            OneTimeCodeOutcome.Throttled => OneTimeCodeCheck.Throttled,
            _ => OneTimeCodeCheck.Wrong,
        };
    }
}
