using System.Globalization;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>The sign-in log and live sessions (tenant scope; killing at the session's host).</summary>
internal sealed partial class AdminOperations
{
    /// <summary>Most sign-in rows one list returns.</summary>
    public const int MaxSignIns = 1000;

    public async Task<IReadOnlyList<SignInView>> ListSignInsAsync(SignInQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        Caller.Require(SignInsRead, Scope.Tenant);
        var rows = VisibleSignIns();
        if (query.User is { Length: > 0 } upn)
        {
            var found = await Directory.FindUserByUpnAsync(upn, cancellationToken).ConfigureAwait(false);
            var name = upn.Trim();
            rows = found is null || found.TenantId != Tenant ? rows.Where(s => s.UserPrincipalName == name) : rows.Where(s => s.UserId == found.Id || s.UserPrincipalName == name);
        }

        if (query.Host is { Length: > 0 } hostName)
        {
            var normalized = DirectoryService.NormalizeName(hostName);
            rows = rows.Where(s => s.HostName == normalized);
        }

        if (query.Result is { Length: > 0 } outcome)
        {
            var value = outcome.Trim().ToLowerInvariant();
            if (value is not ("success" or "failure"))
            {
                throw AdminProblemException.BadRequest($"--result '{outcome}' is not success or failure.");
            }

            rows = rows.Where(s => s.Result == value);
        }

        if (query.Since is { Length: > 0 } duration)
        {
            if (!AdminText.TryParseDuration(duration, out var span))
            {
                throw AdminProblemException.BadRequest($"--since '{duration}' is not a duration; use a number and a unit: 90s, 30m, 1h, 7d or 2w.");
            }

            var from = Now - span;
            rows = rows.Where(s => s.Time >= from);
        }

        if (query.Limit is <= 0 or > MaxSignIns)
        {
            throw AdminProblemException.BadRequest($"--limit must be a number of rows from 1 to {MaxSignIns}.");
        }

        return [.. (await rows.OrderByDescending(s => s.Sequence).Take(query.Limit).ToListAsync(cancellationToken).ConfigureAwait(false)).Select(ToView)];
    }

    public async Task<SignInView> GetSignInAsync(string idOrSequence, CancellationToken cancellationToken)
    {
        Caller.Require(SignInsRead, Scope.Tenant);
        SignInRecord? record = null;
        if (long.TryParse(idOrSequence, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
        {
            record = await VisibleSignIns().FirstOrDefaultAsync(s => s.Sequence == sequence, cancellationToken).ConfigureAwait(false);
        }
        else if (Guid.TryParse(idOrSequence, out var guid))
        {
            record = await VisibleSignIns().FirstOrDefaultAsync(s => s.Id == guid, cancellationToken).ConfigureAwait(false);
        }

        return record is null
            ? throw AdminProblemException.NotFound($"There is no sign-in '{idOrSequence}'; 'gatehouse signins list' shows the sequence numbers (#).")
            : ToView(record);
    }

    public async Task<SignInVerificationView> VerifySignInsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(SignInsRead, Scope.Tenant);
        var verification = await services.GetRequiredService<SignInLogService>().VerifyAsync(cancellationToken).ConfigureAwait(false);
        return new SignInVerificationView(verification.Intact, verification.Rows, [.. verification.Problems.Select(p => new SignInProblemView(p.Sequence, p.Problem))]);
    }

    public async Task<IReadOnlyList<SessionView>> ListSessionsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(SessionsRead, Scope.Tenant);
        var sessions = await services.GetRequiredService<SessionStore>().ListLiveAsync(cancellationToken).ConfigureAwait(false);
        return [.. sessions.Where(s => s.TenantId == Tenant).Select(s => new SessionView(
            s.Id, s.UserPrincipalName, s.HostName, s.Role, s.Account, s.ClientAddress, s.Protocol, s.Node, s.StartedAt, s.KillRequestedAt, s.BytesFromClient, s.BytesFromBackend))];
    }

    public async Task<SessionKillView> KillSessionAsync(Guid id, CancellationToken cancellationToken)
    {
        var session = await Db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.TenantId == Tenant, cancellationToken).ConfigureAwait(false);
        var hostGroup = session is null ? null : await Db.Hosts.Where(h => h.Id == session.HostId).Join(Db.HostGroups, h => h.HostGroupId, g => g.Id, (h, g) => g.Name).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        Caller.RequireOrHide(SessionsKill, $"the host of session {id}", session is null ? null : Scope.Host(session.HostName), hostGroup,
            $"There is no session {id}; 'gatehouse sessions list' shows the live sessions.");
        if (!await services.GetRequiredService<SessionStore>().RequestKillAsync(id, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"Session {id} has already ended ({session!.EndReason ?? "no reason recorded"}).");
        }

        return new SessionKillView(id, session!.UserPrincipalName, session.HostName, session.Node);
    }

    /// <summary>
    /// The rows a reader at <c>/</c> sees: the tenant's, and those of no tenant (<see cref="Guid.Empty"/>: written
    /// before the log attributed every attempt, or while the store had no tenant), which belong to nobody else and
    /// may be an attack on this tenant; they are marked (<see cref="SignInView.UnknownTenant"/>).
    /// </summary>
    private IQueryable<SignInRecord> VisibleSignIns() =>
        Db.SignIns.AsNoTracking().Where(s => s.TenantId == Tenant || s.TenantId == Guid.Empty);

    private static SignInView ToView(SignInRecord s) => new(
        s.Sequence, s.Id, s.Time, s.Result, s.UserPrincipalName, s.HostName, s.ClientAddress, s.Protocol, s.Methods, s.Code,
        s.RoleName, s.TargetAccount, s.SessionId, s.CorrelationId, s.Reason, s.UserMessage, s.Fix, s.PoliciesJson, s.TenantId == Guid.Empty);
}
