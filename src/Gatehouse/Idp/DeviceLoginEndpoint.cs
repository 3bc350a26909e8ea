using Gatehouse.Identity;
using Microsoft.AspNetCore.Antiforgery;

namespace Gatehouse.Idp;

/// <summary>
/// <c>/devicelogin</c> (RFC 8628 <c>verification_uri</c>, Entra's page of the same name): the user enters the code
/// <c>gatehouse login</c> or the hold screen showed (field <c>otc</c>); a pending code starts the ordinary sign-in steps
/// of <see cref="SignInEngine"/> (rendered by <see cref="AuthorizeEndpoint"/>) with a device transaction, and later posts
/// of that transaction continue there. An RDP device code names its host in the scope; a host not in the code's tenant
/// is refused before the user name is asked.
/// Wrong codes are counted per address and per browser (<see cref="UserCodeAttemptLimiter"/>, an attempt taken before the
/// lookup and given back for a right code): past the allowance the page refuses without looking codes up. Wrong and throttled codes go to the sign-in log (no user is known yet).
/// </summary>
internal sealed class DeviceLoginEndpoint(
    AuthorizeEndpoint signIn,
    DeviceCodeService deviceCodes,
    DirectoryService directory,
    UserCodeAttemptLimiter attempts,
    IAntiforgery antiforgery,
    IdpUrls urls,
    IdpSignInLog log)
{
    public Task GetAsync(HttpContext context)
    {
        AuthorizeEndpoint.EnsureBrowserCookie(context);
        var prefill = context.Request.Query.TryGetValue("otc", out var otc) && otc.Count == 1 ? otc[0] : null;
        return RenderAsync(context, StatusCodes.Status200OK, DeviceCodeService.Normalize(prefill) is { } code ? DeviceCodeService.Display(code) : null, error: null);
    }

    public async Task PostAsync(HttpContext context)
    {
        if (!context.Request.HasFormContentType)
        {
            await Responses.HtmlAsync(context, StatusCodes.Status400BadRequest, "Sign-in error", _ => SignInPages.ErrorPage(AadError.BadRequest.With("the form must be posted as application/x-www-form-urlencoded"), context.TraceIdentifier)).ConfigureAwait(false);
            return;
        }

        var read = await OAuthForm.TryReadFormAsync(context).ConfigureAwait(false);
        if (read.Form is not { } form)
        {
            await Responses.HtmlAsync(context, read.Status, "Sign-in error", _ => SignInPages.ErrorPage(read.Error!, context.TraceIdentifier)).ConfigureAwait(false);
            return;
        }

        if (form.ContainsKey(SignInTransactionProtector.FormField))
        {
            // A step of a device sign-in already under way (user name, password, code, the final question).
            await signIn.StepAsync(context, form, tenant: null).ConfigureAwait(false);
            return;
        }

        try
        {
            await antiforgery.ValidateRequestAsync(context).ConfigureAwait(false);
        }
        catch (AntiforgeryValidationException)
        {
            await RenderAsync(context, StatusCodes.Status400BadRequest, null, "The page expired or was opened in another browser. Reload it and enter the code again.").ConfigureAwait(false);
            return;
        }

        var browser = context.Request.Cookies[SignInTransactionProtector.BrowserCookie];
        var address = AuthorizeEndpoint.ClientAddress(context).ToString();
        string[] keys = browser is { Length: > 0 } ? ["address:" + address, "browser:" + SignInTransactionProtector.Bind(browser)] : ["address:" + address];
        var typed = ((string?)form["otc"])?.Trim();
        // The attempt is taken before the lookup: concurrent guesses each need one, so a burst gets no more than the allowance.
        if (!attempts.TryAcquire(keys))
        {
            await LogAsync(context, "user_code_throttled: too many wrong codes from this address or browser; the code was not checked", AadError.UserCodeThrottled).ConfigureAwait(false);
            context.Response.Headers.RetryAfter = "300";
            await RenderAsync(context, StatusCodes.Status429TooManyRequests, typed, AadError.UserCodeThrottled.Describe()).ConfigureAwait(false);
            return;
        }

        var found = string.IsNullOrEmpty(typed) ? null : await deviceCodes.FindPendingAsync(typed, context.RequestAborted).ConfigureAwait(false);
        if (found is null)
        {
            await LogAsync(context, DeviceCodeService.Normalize(typed) is null
                ? "bad_user_code: what was entered on /devicelogin is not a user code (8 letters BCDF-GHJK)"
                : "bad_user_code: no pending device sign-in has this code (mistyped, expired, or already used)", AadError.UserCodeInvalid).ConfigureAwait(false);
            await RenderAsync(context, StatusCodes.Status400BadRequest, typed, AadError.UserCodeInvalid.Describe()).ConfigureAwait(false);
            return;
        }

        // Only wrong codes count: the right one gives its attempt back.
        attempts.Release(keys);
        await signIn.BeginDeviceSignInAsync(context, found).ConfigureAwait(false);
    }

    private Task RenderAsync(HttpContext context, int status, string? prefill, string? error)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        return Responses.HtmlAsync(context, status, "Enter code", _ => SignInPages.DeviceCode(urls.DeviceLogin, tokens.FormFieldName, tokens.RequestToken!, prefill, error));
    }

    /// <summary>A failed code entry in the sign-in log, under the first tenant (the code would have said which).</summary>
    private async Task LogAsync(HttpContext context, string reason, AadError error)
    {
        var tenant = await directory.FindTenantAsync(DirectoryService.CommonTenant).ConfigureAwait(false);
        if (tenant is null)
        {
            return;
        }

        await log.WriteAsync(new SignInEntry
        {
            TenantId = tenant.Id,
            CorrelationId = context.TraceIdentifier,
            Protocol = IdpSignInLog.Protocol,
            Succeeded = false,
            Reason = reason,
            Application = GatehouseCliClient.ClientId,
            ClientAddress = AuthorizeEndpoint.ClientAddress(context).ToString(),
            Code = error.OAuthError,
            UserMessage = error.Describe(),
            Fix = "Enter the code 'gatehouse login' (or the remote desktop's sign-in screen) shows, within 15 minutes; repeated wrong codes from one address may be someone guessing.",
        }).ConfigureAwait(false);
    }
}
