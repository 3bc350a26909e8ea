using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary><c>/admin</c>: links to the log and sessions, and sign-ins per hour over the last day and seven days (SVG drawn here).</summary>
internal sealed class IndexModel(TimeProvider time) : PortalPageModel
{
    public IReadOnlyList<SignInChart> Charts { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        // The same read as 'gatehouse signins list --since 7d' (signIns/read at /): a Reader sees the charts.
        var week = await Operations.ListSignInsAsync(new SignInQuery(null, null, null, "7d", AdminOperations.MaxSignIns), cancellationToken);
        var now = time.GetUtcNow();
        var truncated = week.Count >= AdminOperations.MaxSignIns;
        Charts =
        [
            SignInChart.Build("Sign-ins per hour, last 24 hours", week, now, 24, truncated && week[^1].Time > now.AddDays(-1)),
            SignInChart.Build("Sign-ins per hour, last 7 days", week, now, 7 * 24, truncated),
        ];
    }
}
