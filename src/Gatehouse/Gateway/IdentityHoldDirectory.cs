using Gatehouse.Gateway.Hold;
using Gatehouse.Identity;
using Gatehouse.Idp;

namespace Gatehouse.Gateway;

/// <summary>
/// The hold screen's view of the identity provider, in process: which second factor a user can give, and the one-time
/// code checked by the same service and against the same per-account attempt limit as the sign-in pages.
/// </summary>
internal sealed class IdentityHoldDirectory(IServiceScopeFactory scopes, AccountAttemptLimiter attempts, TimeProvider time, string enrollmentHint) : IHoldDirectory
{
    /// <inheritdoc/>
    public string EnrollmentHint => enrollmentHint;

    /// <inheritdoc/>
    public async Task<SecondFactor> GetSecondFactorAsync(Guid userId, Guid? hostId, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
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
        await using var scope = scopes.CreateAsyncScope();
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
        await using var scope = scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var user = await directory.FindUserAsync(userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled || user.TotpConfirmedAt is null)
        {
            return OneTimeCodeCheck.NoMethod;
        }

        if (!await attempts.TryAttemptAsync(user.UserPrincipalName, cancellationToken).ConfigureAwait(false))
        {
            return OneTimeCodeCheck.Throttled;
        }

        var signIn = scope.ServiceProvider.GetRequiredService<SignInService>();
        return await signIn.VerifyTotpAsync(user, code, time.GetUtcNow(), cancellationToken).ConfigureAwait(false) ? OneTimeCodeCheck.Ok : OneTimeCodeCheck.Wrong;
    }
}
