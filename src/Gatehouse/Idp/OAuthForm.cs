using Gatehouse.Identity;
using Gatehouse.Storage;

namespace Gatehouse.Idp;

/// <summary>What the IdP's form-posted OAuth endpoints (token, devicecode, revoke) share: the tenant, the form, its parameters.</summary>
internal static class OAuthForm
{
    /// <summary>
    /// The tenant named in the path and the posted form; null after the OAuth error was written (unknown tenant, or a
    /// body that is not <c>application/x-www-form-urlencoded</c>).
    /// </summary>
    public static async Task<(Tenant Tenant, IFormCollection Form)?> ReadAsync(HttpContext context, DirectoryService directory, string tenant)
    {
        var found = await directory.FindTenantAsync(tenant).ConfigureAwait(false);
        if (found is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.UnknownTenant).ConfigureAwait(false);
            return null;
        }

        if (!context.Request.HasFormContentType)
        {
            await Responses.OAuthErrorAsync(context, AadError.BadRequest.With("the body must be application/x-www-form-urlencoded")).ConfigureAwait(false);
            return null;
        }

        return (found, await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false));
    }

    /// <summary>A parameter given exactly once and not empty, or null.</summary>
    public static string? Single(IFormCollection form, string name) =>
        form.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;
}
