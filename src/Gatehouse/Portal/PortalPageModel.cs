using Gatehouse.Admin;
using Gatehouse.Admin.Operations;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.ViewFeatures;

namespace Gatehouse.Portal;

/// <summary>What a refused or failed portal request shows: the status and the admin operation's sentence.</summary>
internal sealed record PortalProblem(int Status, string Title, string Detail);

/// <summary>
/// The base of every signed-in portal page: it reads the cookie session, loads the user again (a disabled or deleted
/// user is signed out), builds the <see cref="AdminCaller"/> from their groups and the tenant's role assignments exactly
/// as the admin API's middleware does, and gives the page <see cref="Operations"/> for that caller. A refusal of an
/// operation (<see cref="AdminProblemException"/>) becomes a page with its status (403, 404, 409…) and sentence.
/// </summary>
internal abstract class PortalPageModel : PageModel
{
    private AdminCaller? _caller;
    private AdminOperations? _operations;

    /// <summary>The signed-in user as the admin operations see them.</summary>
    public AdminCaller Caller => _caller ?? throw new InvalidOperationException("The portal page ran before the session was read.");

    /// <summary>The authentication methods of the sign-in that started this portal session (the ID token's <c>amr</c>).</summary>
    public IReadOnlyList<string> SessionAmr { get; private set; } = [];

    /// <summary>When the user authenticated for this portal session (the ID token's <c>auth_time</c>); null when unknown.</summary>
    public DateTimeOffset? SessionAuthTime { get; private set; }

    /// <summary>The one implementation of every admin operation, for <see cref="Caller"/>.</summary>
    public AdminOperations Operations => _operations ?? throw new InvalidOperationException("The portal page ran before the session was read.");

    public override async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var http = context.HttpContext;
        var session = await http.AuthenticateAsync(PortalSignIn.Scheme).ConfigureAwait(false);
        var userId = session.Succeeded && Guid.TryParse(session.Principal?.FindFirst("oid")?.Value, out var id) ? id : (Guid?)null;
        var user = userId is { } oid ? await http.RequestServices.GetRequiredService<DirectoryService>().FindUserAsync(oid).ConfigureAwait(false) : null;
        if (user is null || !user.Enabled)
        {
            if (session.Succeeded)
            {
                await http.SignOutAsync(PortalSignIn.Scheme).ConfigureAwait(false);
            }

            context.Result = http.Request.Method == HttpMethods.Get
                ? new RedirectResult("/portal/signin?returnUrl=" + Uri.EscapeDataString(http.Request.Path + http.Request.QueryString))
                : Problem(new PortalProblem(StatusCodes.Status401Unauthorized, "Sign in first", "Your portal session has ended. Sign in again, then repeat the action."));
            return;
        }

        SessionAmr = [.. session.Principal!.FindAll(PortalSignIn.AmrClaim).Select(c => c.Value)];
        SessionAuthTime = long.TryParse(session.Principal.FindFirst(PortalSignIn.AuthTimeClaim)?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;
        var access = http.RequestServices.GetRequiredService<AccessService>();
        _caller = AdminCaller.ForUser(user, await access.ExpandPrincipalAsync(user, http.RequestAborted).ConfigureAwait(false), await access.LoadRbacAsync(user.TenantId, http.RequestAborted).ConfigureAwait(false));
        _operations = AdminHandlers.OperationsFor(http, _caller);
        ViewData["Upn"] = user.UserPrincipalName;
        var executed = await next().ConfigureAwait(false);
        if (executed.Exception is AdminProblemException problem && !executed.ExceptionHandled)
        {
            executed.ExceptionHandled = true;
            executed.Result = Problem(new PortalProblem(problem.Status, problem.Title, problem.Message));
        }
        else if (executed.Exception is DirectoryException directoryProblem && !executed.ExceptionHandled)
        {
            executed.ExceptionHandled = true;
            executed.Result = Problem(new PortalProblem(StatusCodes.Status400BadRequest, "Bad request", directoryProblem.Message));
        }
    }

    /// <summary>The problem page (<c>Pages/Shared/_Problem.cshtml</c>) with <paramref name="problem"/>'s status.</summary>
    protected PartialViewResult Problem(PortalProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        return new PartialViewResult
        {
            ViewName = "_Problem",
            StatusCode = problem.Status,
            ViewData = new ViewDataDictionary<PortalProblem>(MetadataProvider, ModelState) { Model = problem },
        };
    }
}
