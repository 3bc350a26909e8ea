namespace Gatehouse.Gateway.Admission;

/// <summary>
/// Whether the node's store (its database) answers, as the RDP listener needs to know: while it does not, a new sign-in
/// is refused at once with a logged reason instead of waiting on the database; sessions already relayed go on (the relay
/// does not use the store).
/// </summary>
public interface IStoreAvailability
{
    /// <summary>Null while the store is taken to answer; otherwise why not, in one line.</summary>
    string? Unavailable { get; }

    /// <summary>
    /// True when <paramref name="exception"/> says the store did not answer (not a bug or a constraint) and the store,
    /// asked once more, does not answer either; the store is then taken to be down until it answers again.
    /// </summary>
    Task<bool> ConfirmUnavailableAsync(Exception exception, CancellationToken cancellationToken);

    /// <summary>Counts one sign-in refused because the store is down; returns how many since it stopped answering.</summary>
    long CountRefusal();
}

/// <summary>A store that always answers (a gateway with no store of its own, and the tests).</summary>
public sealed class AlwaysAvailable : IStoreAvailability
{
    /// <summary>The one instance.</summary>
    public static readonly AlwaysAvailable Instance = new();

    private AlwaysAvailable()
    {
    }

    /// <inheritdoc/>
    public string? Unavailable => null;

    /// <inheritdoc/>
    public Task<bool> ConfirmUnavailableAsync(Exception exception, CancellationToken cancellationToken) => Task.FromResult(false);

    /// <inheritdoc/>
    public long CountRefusal() => 0;
}
