using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Storage;

namespace Gatehouse.Idp;

/// <summary>
/// What the IdP's form-posted endpoints share: the tenant, the form, its parameters. A form that cannot be read is a
/// refused request, never an application error: one the form reader rejects (a NUL, <c>%00</c>, or more or longer fields
/// than allowed) is 400 <c>invalid_request</c> AADSTS900144, a body over <c>Gatehouse:Limits:MaxRequestBodyBytes</c> is
/// 413; both are logged as refused requests.
/// </summary>
internal static partial class OAuthForm
{
    /// <summary>The logger category of refused requests.</summary>
    public const string LogCategory = "Gatehouse.Idp.Requests";

    /// <summary>
    /// The tenant named in the path and the posted form; null after the OAuth error was written (unknown tenant, a body
    /// that is not <c>application/x-www-form-urlencoded</c>, a form that cannot be read, a body too large). With
    /// <paramref name="tenants"/>, the tenant is taken from (and kept in) that cache.
    /// </summary>
    public static Task<(Tenant Tenant, IFormCollection Form)?> ReadAsync(HttpContext context, DirectoryService directory, string tenant, IdpDocumentCache? tenants = null) =>
        ReadAsync(context, () => directory, tenant, tenants);

    /// <summary>
    /// As <see cref="ReadAsync(HttpContext, DirectoryService, string, IdpDocumentCache?)"/>, with the directory resolved
    /// only when the tenant has to be read (the token endpoint: a tenant kept in <paramref name="tenants"/> needs none).
    /// </summary>
    public static async Task<(Tenant Tenant, IFormCollection Form)?> ReadAsync(HttpContext context, Func<DirectoryService> directory, string tenant, IdpDocumentCache? tenants = null)
    {
        // With the cache (the token endpoint), a tenant read within its lifetime is not read again.
        var found = tenants?.TenantRecord(tenant);
        if (found is null)
        {
            found = await directory().FindTenantAsync(tenant).ConfigureAwait(false);
            if (found is not null)
            {
                tenants?.KeepTenantRecord(tenant, found);
            }
        }

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

        var read = await TryReadFormAsync(context).ConfigureAwait(false);
        if (read.Form is null)
        {
            await Responses.OAuthErrorAsync(context, read.Error!, read.Status).ConfigureAwait(false);
            return null;
        }

        return (found, read.Form);
    }

    /// <summary>
    /// Reads the posted form (the caller checked the content type). A form the reader rejects is 400 with
    /// <see cref="AadError.BadRequest"/>, a body over the limit 413; either is logged as a refused request and returned
    /// for the caller to answer in its own shape (OAuth JSON or an error page).
    /// </summary>
    public static async Task<FormRead> TryReadFormAsync(HttpContext context)
    {
        try
        {
            return new FormRead(await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false), null, StatusCodes.Status200OK);
        }
        catch (InvalidDataException)
        {
            // The reader's message says which limit or character; the log needs only that the form was refused.
            RefusedForm(Logger(context), context.Request.Path.Value ?? string.Empty, AuthorizeEndpoint.ClientAddress(context).ToString());
            return new FormRead(null, AadError.BadRequest.With("the form could not be read: a field holds a character that is not allowed (such as NUL, %00), or there are more or longer fields than allowed"), StatusCodes.Status400BadRequest);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            var limit = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
            RefusedTooLarge(Logger(context), context.Request.Path.Value ?? string.Empty, AuthorizeEndpoint.ClientAddress(context).ToString(), limit);
            return new FormRead(null, AadError.BadRequest.With($"the body is larger than the {limit} bytes allowed"), StatusCodes.Status413PayloadTooLarge);
        }
    }

    /// <summary>A parameter given exactly once and not empty, or null.</summary>
    public static string? Single(IFormCollection form, string name) =>
        form.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(LogCategory);

    [LoggerMessage(ServerEventIds.FormRefused, LogLevel.Information, "Refused a request to {Path} from {Address}: its form could not be read (a NUL or other character not allowed, or too many or too long fields); answered 400 invalid_request.")]
    private static partial void RefusedForm(ILogger logger, string path, string address);

    [LoggerMessage(ServerEventIds.BodyTooLarge, LogLevel.Information, "Refused a request to {Path} from {Address}: its body is larger than the {Limit} bytes allowed (Gatehouse:Limits:MaxRequestBodyBytes); answered 413.")]
    private static partial void RefusedTooLarge(ILogger logger, string path, string address, long? limit);
}

/// <summary>The form read by <see cref="OAuthForm.TryReadFormAsync"/>, or the error and status to answer with.</summary>
internal readonly record struct FormRead(IFormCollection? Form, AadError? Error, int Status);
