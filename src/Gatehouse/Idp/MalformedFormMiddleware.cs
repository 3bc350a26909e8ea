namespace Gatehouse.Idp;

/// <summary>
/// A posted form ASP.NET Core cannot decode (an encoded NUL, <c>%00</c>, in a field: "The form value contains invalid
/// characters") is the client's fault: it gets a 400 (the sign-in pages' error page, or an OAuth error for the token
/// endpoints), not an unhandled exception, a 500 and a stack trace in the log for every such request.
/// </summary>
internal sealed class MalformedFormMiddleware(RequestDelegate next)
{
    private static readonly AadError Malformed = AadError.BadRequest.With("the form holds a value that cannot be decoded (such as an encoded NUL character)");

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (InvalidDataException) when (context.Request.HasFormContentType && !context.Response.HasStarted)
        {
            context.Response.Clear();
            var page = context.Request.Path.Value is { } path
                && (path.EndsWith("/oauth2/v2.0/authorize", StringComparison.OrdinalIgnoreCase) || path.StartsWith("/devicelogin", StringComparison.OrdinalIgnoreCase));
            await (page
                ? Responses.HtmlAsync(context, StatusCodes.Status400BadRequest, "Sign-in error", _ => SignInPages.ErrorPage(Malformed, context.TraceIdentifier))
                : Responses.OAuthErrorAsync(context, Malformed)).ConfigureAwait(false);
        }
    }
}
