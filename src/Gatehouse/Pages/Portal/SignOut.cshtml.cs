using Gatehouse.Portal;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Pages.Portal;

/// <summary><c>/portal/signout</c>: a POST (with its antiforgery token) ends the cookie session.</summary>
internal sealed class SignOutModel : PageModel
{
    public bool SignedOut { get; private set; }

    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.SignOutAsync(PortalSignIn.Scheme);
        SignedOut = true;
        return Page();
    }
}
