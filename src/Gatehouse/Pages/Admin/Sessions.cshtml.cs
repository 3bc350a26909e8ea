using Gatehouse.Access;
using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary>
/// <c>/admin/sessions</c>: the live sessions (<c>gatehouse sessions list</c>) with bytes and duration, and a Kill button
/// (<c>gatehouse sessions kill</c>: the operation checks the kill right at the session's host, so a Reader's POST is 403).
/// </summary>
internal sealed class SessionsModel(TimeProvider time) : PortalPageModel
{
    public IReadOnlyList<SessionView> Sessions { get; private set; } = [];

    public SessionKillView? Killed { get; private set; }

    public DateTimeOffset Now { get; } = time.GetUtcNow();

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Sessions = await Operations.ListSessionsAsync(cancellationToken);
    }

    public async Task OnPostKillAsync(Guid id, CancellationToken cancellationToken)
    {
        Killed = await Operations.KillSessionAsync(id, cancellationToken);
        Sessions = await Operations.ListSessionsAsync(cancellationToken);
    }

    /// <summary>Whether to show the Kill button: the caller holds the kill action at the session's host (the POST checks it again, with the host group).</summary>
    public bool CanKill(SessionView session)
    {
        ArgumentNullException.ThrowIfNull(session);
        return Caller.Can(AdminOperations.SessionsKill, Scope.Host(session.Host));
    }
}
