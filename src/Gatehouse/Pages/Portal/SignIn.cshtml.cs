using Gatehouse.Portal;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Gatehouse.Pages.Portal;

/// <summary><c>/portal/signin</c>: sends the browser to the IdP's sign-in pages (authorization code with PKCE).</summary>
internal sealed class SignInModel(PortalSignIn signIn) : PageModel
{
    public IActionResult OnGet(string? returnUrl) => Redirect(signIn.Begin(HttpContext, returnUrl));
}
