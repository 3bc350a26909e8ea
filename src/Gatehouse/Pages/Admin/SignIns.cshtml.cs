using Gatehouse.Admin.Operations;
using Gatehouse.Portal;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Pages.Admin;

/// <summary>
/// <c>/admin/signins</c>: the sign-in log with the filters of <c>gatehouse signins list</c> as a GET form (user, host,
/// result, time range), and <c>gatehouse signins verify</c> as a button.
/// </summary>
internal sealed class SignInsModel : PortalPageModel
{
    /// <summary>Rows one page shows.</summary>
    public const int Limit = 200;

    /// <summary>The time ranges offered (the <c>--since</c> values).</summary>
    public static readonly IReadOnlyList<(string Value, string Text)> Ranges =
        [("", "Any time"), ("1h", "Last hour"), ("1d", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")];

    [BindProperty(Name = "user", SupportsGet = true)]
    public string? UserFilter { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Host { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Result { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Since { get; set; }

    public IReadOnlyList<SignInView> Rows { get; private set; } = [];

    public SignInVerificationView? Verification { get; private set; }

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Rows = await Operations.ListSignInsAsync(new SignInQuery(Trim(UserFilter), Trim(Host), Trim(Result), Trim(Since), Limit), cancellationToken);
    }

    public async Task OnPostVerifyAsync(CancellationToken cancellationToken)
    {
        Verification = await Operations.VerifySignInsAsync(cancellationToken);
        Rows = await Operations.ListSignInsAsync(new SignInQuery(null, null, null, null, Limit), cancellationToken);
    }

    private static string? Trim(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
