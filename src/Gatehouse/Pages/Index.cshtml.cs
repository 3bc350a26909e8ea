using Gatehouse.Portal;
using Microsoft.AspNetCore.Mvc;

namespace Gatehouse.Pages;

/// <summary><c>/</c>: a signed-in user goes to My hosts (anyone else to the sign-in first).</summary>
internal sealed class IndexModel : PortalPageModel
{
    public IActionResult OnGet() => Redirect("/my");
}
