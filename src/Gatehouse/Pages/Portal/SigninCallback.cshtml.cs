using Gatehouse.Portal;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Pages.Portal;

/// <summary><c>/portal/signin-callback</c>: the portal client's redirect URI; on success the cookie session starts.</summary>
internal sealed class SigninCallbackModel(PortalSignIn signIn) : PageModel
{
    public string Failure { get; private set; } = string.Empty;

    public async Task<IActionResult> OnGetAsync(string? code, string? state, string? error, CancellationToken cancellationToken)
    {
        var (returnUrl, failure) = await signIn.CompleteAsync(HttpContext, code, state, error, cancellationToken);
        if (failure is null)
        {
            return LocalRedirect(returnUrl!);
        }

        Failure = failure.Message;
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }
}
