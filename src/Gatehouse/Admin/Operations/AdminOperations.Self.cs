using Gatehouse.Identity;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>A host the signed-in user may sign in to: the role and account, how a client reaches it, and what <c>diagnose</c> says now.</summary>
internal sealed record MyHostView(string Host, string? Role, string? Account, ClientTargetView Target, DiagnosisView Diagnosis);

/// <summary>
/// The signed-in user's own view (the portal's My hosts and My sign-ins): no admin right is needed to see what concerns
/// oneself, and the answers come from the same rules as everything else (the role assignments that let the user sign
/// in, <c>diagnose</c>, the sign-in log's rows).
/// </summary>
internal sealed partial class AdminOperations
{
    /// <summary>Most hosts My hosts lists.</summary>
    public const int MaxMyHosts = 200;

    /// <summary>The hosts the caller's role assignments let them sign in to, each with its target and diagnosis.</summary>
    public async Task<IReadOnlyList<MyHostView>> ListMyHostsAsync(CancellationToken cancellationToken)
    {
        var user = SelfUser();
        var hosts = await Access.HostsUserMaySignInToAsync(user, MaxMyHosts, cancellationToken).ConfigureAwait(false);
        var info = gateway();
        var result = new List<MyHostView>(hosts.Count);
        foreach (var host in hosts)
        {
            var diagnosis = await DiagnoseCoreAsync(user, host, ip: null, cancellationToken).ConfigureAwait(false);
            var target = new ClientTargetView(host.Name, host.Name, info.PublicName, Gatehouse.Hosting.GatehouseHost.PublicHost(info.PublicName), info.RdpPort, info.CertificateSha256);
            result.Add(new MyHostView(host.Name, diagnosis.Role, diagnosis.Account, target, diagnosis));
        }

        return result;
    }

    /// <summary>The caller's own most recent sign-in log rows (at most <paramref name="limit"/>).</summary>
    public async Task<IReadOnlyList<SignInView>> ListMySignInsAsync(int limit, CancellationToken cancellationToken)
    {
        var user = SelfUser();
        if (limit is <= 0 or > MaxSignIns)
        {
            throw AdminProblemException.BadRequest($"Ask for 1 to {MaxSignIns} rows.");
        }

        var rows = await Db.SignIns.AsNoTracking().Where(s => s.TenantId == Tenant && s.UserId == user.Id)
            .OrderByDescending(s => s.Sequence).Take(limit).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. rows.Select(ToView)];
    }

    private Gatehouse.Storage.User SelfUser() =>
        Caller.User ?? throw AdminProblemException.BadRequest("This shows the signed-in user's own hosts and sign-ins; the operator (--data) has none.");
}
