namespace Gatehouse.Gateway.Hold;

/// <summary>What checking a one-time code said.</summary>
public enum OneTimeCodeCheck
{
    /// <summary>The code is the authenticator app's code for now (and was not used before).</summary>
    Ok,

    /// <summary>Not the code.</summary>
    Wrong,

    /// <summary>The per-account attempt limit (shared with the identity provider's pages) is reached; not checked.</summary>
    Throttled,

    /// <summary>The user has no confirmed authenticator app.</summary>
    NoMethod,
}

/// <summary>The second factor a held sign-in still needs.</summary>
public enum SecondFactor
{
    /// <summary>A code from the user's confirmed authenticator app.</summary>
    Code,

    /// <summary>The user has no method yet and must set one up on the identity provider's pages.</summary>
    Enroll,

    /// <summary>None the hold screen can ask for.</summary>
    None,
}

/// <summary>The hold screen's view of the identity provider (Gatehouse implements it over its sign-in service).</summary>
public interface IHoldDirectory
{
    /// <summary>Which second factor <paramref name="userId"/> can give for a sign-in to <paramref name="hostId"/>.</summary>
    Task<SecondFactor> GetSecondFactorAsync(Guid userId, Guid? hostId, CancellationToken cancellationToken);

    /// <summary>Checks a one-time code, counting it against the same per-account limit as the identity provider's pages.</summary>
    Task<OneTimeCodeCheck> CheckOneTimeCodeAsync(Guid userId, string code, CancellationToken cancellationToken);

    /// <summary>The hosts a role assignment lets the user sign in to, by name (the host picker; at most <paramref name="max"/>).</summary>
    Task<IReadOnlyList<HoldHost>> ListHostsAsync(Guid userId, int max, CancellationToken cancellationToken);

    /// <summary>Where the user sets up an authenticator app (shown on the screen), e.g. the identity provider's sign-in page.</summary>
    string EnrollmentHint { get; }
}

/// <summary>A host on the picker.</summary>
/// <param name="Id">The host.</param>
/// <param name="Name">Its name.</param>
public sealed record HoldHost(Guid Id, string Name);
