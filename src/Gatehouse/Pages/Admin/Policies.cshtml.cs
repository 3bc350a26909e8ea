using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary><c>/admin/policies</c>: the Conditional Access policies and their state (enable, disable, report-only), as <c>gatehouse policy list</c> and the API's state change.</summary>
internal sealed class PoliciesModel : PortalPageModel
{
    /// <summary>The states a policy can be put in, with the button's text.</summary>
    public static readonly IReadOnlyList<(string State, string Text)> States =
        [("enabled", "Enable"), ("disabled", "Disable"), ("enabledForReportingButNotEnforced", "Report-only")];

    public IReadOnlyList<PolicyView> Policies { get; private set; } = [];

    public string? Message { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }

    public async Task OnPostStateAsync(string? name, string? state, CancellationToken cancellationToken)
    {
        var changed = await Operations.SetPolicyStateAsync(name ?? string.Empty, state ?? string.Empty, cancellationToken);
        Message = $"'{changed.Name}' is now {changed.State}.";
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }
}
