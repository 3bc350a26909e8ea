using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary><c>/admin/audit</c>: what is out of policy, each finding with its fix, as <c>gatehouse audit</c> and <c>GET /admin/v1/audit</c>.</summary>
internal sealed class AuditModel : PortalPageModel
{
    public AuditView? Audit { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Audit = await Operations.AuditAsync(new AuditRequest(null), cancellationToken);
    }
}
