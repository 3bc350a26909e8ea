using System.Globalization;
using Gatehouse.Idp;
using Gatehouse.Storage;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// Turns a request that failed because the database did not answer (<see cref="StoreStartup.IsUnavailable"/>) into a
/// <c>503 Service Unavailable</c> with <c>Retry-After</c> and a readable message (an HTML page for a browser, an
/// Entra-shaped OAuth error for the token endpoints, ProblemDetails for the admin API), logged as one line without a
/// stack trace. Other failures pass through unchanged.
/// </summary>
internal sealed partial class StoreUnavailableMiddleware(RequestDelegate next, IOptions<GatehouseOptions> options, ILogger<StoreUnavailableMiddleware> logger)
{
    /// <summary>The error shown to users and clients.</summary>
    public static readonly AadError Unavailable = new(0, "temporarily_unavailable", "The sign-in service cannot reach its database at the moment. Try again in a few seconds.");

    private readonly string _retryAfter = Math.Max(1, (int)Math.Ceiling(options.Value.Database.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (StoreStartup.IsUnavailable(e) && !context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            LogUnavailable(logger, context.Request.Method, context.Request.Path.Value ?? "", StoreStartup.Describe(e));
            context.Response.Clear();
            context.Response.Headers.RetryAfter = _retryAfter;
            const int status = StatusCodes.Status503ServiceUnavailable;
            if (context.Request.Path.StartsWithSegments(Gatehouse.Admin.AdminApi.Prefix, StringComparison.OrdinalIgnoreCase))
            {
                await Gatehouse.Admin.AdminApiMiddleware.WriteProblemAsync(context, status, "Service unavailable", "The database did not answer; try again in a few seconds.").ConfigureAwait(false);
                context.Response.Headers.RetryAfter = _retryAfter;
            }
            else if (context.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase))
            {
                await Responses.HtmlAsync(context, status, "Try again in a moment", _ => SignInPages.ErrorPage(Unavailable, context.TraceIdentifier)).ConfigureAwait(false);
            }
            else
            {
                await Responses.OAuthErrorAsync(context, Unavailable, status).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(ServerEventIds.StoreUnavailable, LogLevel.Warning, "Answered 503 to {Method} {Path}: the database did not answer ({Reason}).")]
    private static partial void LogUnavailable(ILogger logger, string method, string path, string reason);
}
