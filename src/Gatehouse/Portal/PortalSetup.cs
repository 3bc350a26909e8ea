using Gatehouse.Admin.Operations;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Gatehouse.Portal;

/// <summary>
/// The web portal (<c>/my</c>, <c>/admin</c>, <c>/portal/*</c>): Razor Pages rendered on the server (docs/decisions/0006-portal.md),
/// a cookie session started by <see cref="PortalSignIn"/>, no JavaScript, and one stylesheet.
/// </summary>
internal static class PortalSetup
{
    /// <summary>The portal's stylesheet path.</summary>
    public const string StylesheetPath = "/portal/portal.css";

    /// <summary>
    /// The portal's Content-Security-Policy: the sign-in pages' policy without any script (the portal runs none) and
    /// with styles from its own stylesheet only.
    /// </summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static void AddPortal(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new PortalOptions();
        configuration.GetSection(PortalOptions.Section).Bind(options);
        if (options.SessionLifetime <= TimeSpan.Zero || options.SignInTimeout <= TimeSpan.Zero)
        {
            throw new Gatehouse.Hosting.StartupException($"{PortalOptions.Section}:SessionLifetime and SignInTimeout must be positive durations such as 00:30:00.");
        }

        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        services.AddSingleton<PortalSignIn>();
        services.AddRazorPages(o =>
        {
            // Every POST of every page checks the antiforgery token (400 without it).
            o.Conventions.ConfigureFilter(new Microsoft.AspNetCore.Mvc.AutoValidateAntiforgeryTokenAttribute());
        }).AddApplicationPart(typeof(PortalSetup).Assembly);
        services.AddAuthentication().AddCookie(PortalSignIn.Scheme, c =>
        {
            c.Cookie.Name = PortalSignIn.SessionCookie;
            c.Cookie.HttpOnly = true;
            c.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            c.Cookie.SameSite = SameSiteMode.Lax;
            c.Cookie.Path = "/";
            c.ExpireTimeSpan = options.SessionLifetime;
            c.SlidingExpiration = true;
            c.LoginPath = "/portal/signin";
            c.AccessDeniedPath = "/portal/signin";
        });
    }

    public static void MapPortal(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseWhen(IsPortalPath, branch => branch.Use((context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            if (!context.Request.Path.Equals(StylesheetPath, StringComparison.Ordinal))
            {
                // What antiforgery sets on every page with a form (it logs a warning when it has to override another value).
                headers.CacheControl = "no-cache, no-store";
                headers.Pragma = "no-cache";
            }

            return next(context);
        }));
        var stylesheet = ReadStylesheet();
        app.MapGet(StylesheetPath, () => Results.Bytes(stylesheet, "text/css; charset=utf-8"));
        app.MapRazorPages();
    }

    /// <summary>The portal's pages: <c>/</c>, <c>/my…</c>, <c>/portal/…</c>, and <c>/admin…</c> except the REST API under <c>/admin/v1</c>.</summary>
    private static bool IsPortalPath(HttpContext context)
    {
        var path = context.Request.Path;
        return path == "/" || path.StartsWithSegments("/my", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments("/portal", StringComparison.OrdinalIgnoreCase)
            || (path.StartsWithSegments("/admin", StringComparison.OrdinalIgnoreCase) && !path.StartsWithSegments(Gatehouse.Admin.AdminApi.Prefix, StringComparison.OrdinalIgnoreCase));
    }

    private static byte[] ReadStylesheet()
    {
        using var stream = typeof(PortalSetup).Assembly.GetManifestResourceStream("Gatehouse.Portal.portal.css")
            ?? throw new InvalidOperationException("Internal Gatehouse bug: the portal's stylesheet is not embedded in the assembly.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
