using System.Diagnostics;
using Gatehouse.Gateway.Diagnostics;
using Gatehouse.Identity;
using Microsoft.AspNetCore.Routing;

namespace Gatehouse.Idp;

/// <summary>
/// The identity provider's spans (source <c>Gatehouse.Idp</c>): one per request to a sign-in page, the device login
/// page, the device code endpoint and the token endpoint, as a child of ASP.NET Core's request span, with the sign-in
/// log's correlation id and result once an entry is written. Pages of one sign-in (one correlation id) are linked to
/// its first page's span. Attributes are ids, codes and fixed words: never a form field, a code or a token.
/// </summary>
internal static class IdpTelemetry
{
    /// <summary>The identity provider's activity source.</summary>
    public const string ActivitySourceName = "Gatehouse.Idp";

    /// <summary>Spans of the identity provider.</summary>
    public static readonly ActivitySource Source = new(ActivitySourceName);

    /// <summary>How many sign-ins' first spans are remembered for links (oldest forgotten first).</summary>
    internal const int MaxRemembered = 4096;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, ActivityContext> FirstSpans = new(StringComparer.Ordinal);
    private static readonly Queue<string> Order = new();

    /// <summary>The span name of a route, or null for routes that are not traced as IdP steps.</summary>
    internal static string? SpanName(string? route) => route switch
    {
        "/{tenant}/oauth2/v2.0/authorize" => "gatehouse.idp.authorize",
        "/{tenant}/oauth2/v2.0/token" => "gatehouse.idp.token",
        "/{tenant}/oauth2/v2.0/devicecode" => "gatehouse.idp.device_code",
        "/{tenant}/oauth2/v2.0/revoke" => "gatehouse.idp.revoke",
        "/devicelogin" => "gatehouse.idp.device_login",
        _ => null,
    };

    /// <summary>Wraps the identity provider's endpoints in their spans.</summary>
    public static IApplicationBuilder UseIdpSpans(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
        if (SpanName(route) is not { } name)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        // A later page of a browser sign-in continues the sign-in's trace (the transaction carries its first page's
        // span context), so all its pages are one trace whichever node serves them; ASP.NET Core's request span, which
        // starts a trace of its own, is linked both ways.
        var signInTrace = await SignInTraceParentAsync(context, name).ConfigureAwait(false);
        using var activity = signInTrace is not null
            ? SignInTraces.Continue(Source, name, signInTrace)
            : Source.StartActivity(name, ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("gatehouse.correlation_id", context.TraceIdentifier);
            activity.SetTag("gatehouse.idp.step", context.Request.Method == HttpMethods.Get ? "page" : "submit");
        }

        await next(context).ConfigureAwait(false);
        if (activity is not null)
        {
            activity.SetTag("http.response.status_code", context.Response.StatusCode);
            if (context.Response.StatusCode >= 500)
            {
                activity.SetStatus(ActivityStatusCode.Error);
            }
        }
    });

    /// <summary>The sign-in trace a posted page belongs to (from its transaction), or null.</summary>
    private static async Task<string?> SignInTraceParentAsync(HttpContext context, string name)
    {
        if (name is not ("gatehouse.idp.authorize" or "gatehouse.idp.device_login")
            || !HttpMethods.IsPost(context.Request.Method)
            || !context.Request.HasFormContentType
            || Activity.Current is null
            || context.RequestServices.GetService<SignInTransactionProtector>() is not { } transactions)
        {
            return null;
        }

        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException or OperationCanceledException)
        {
            // The endpoint reads the form again and answers the problem itself.
            return null;
        }

        return transactions.TryUnprotect(form[SignInTransactionProtector.FormField], context.Request.Cookies[SignInTransactionProtector.BrowserCookie], out var tx)
            ? tx.TraceParent
            : null;
    }

    /// <summary>The grant type a token request asked for (a fixed word, or <c>other</c>).</summary>
    public static void GrantType(string? grantType)
    {
        if (Activity.Current is { } activity && activity.Source == Source)
        {
            activity.SetTag("gatehouse.grant_type", grantType switch
            {
                "authorization_code" or "refresh_token" or "srv_challenge" or "device_code" or TokenEndpoint.DeviceCodeGrant => grantType,
                null => "missing",
                _ => "other",
            });
        }
    }

    /// <summary>
    /// A sign-in log entry of the identity provider: counted on <c>gatehouse.sign_ins</c>, and its correlation id, result,
    /// reason code and user id put on the current IdP span, linked to the first span of the same sign-in.
    /// </summary>
    public static void SignInLogged(SignInEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var result = entry.Succeeded ? "success" : "failure";
        var reason = GatewayTelemetry.ReasonCode(entry.Reason);
        GatewayTelemetry.SignIns.Add(1, new("gatehouse.protocol", entry.Protocol), new("gatehouse.result", result), new("gatehouse.reason", reason));
        if (Activity.Current is not { } activity || activity.Source != Source)
        {
            return;
        }

        activity.SetTag("gatehouse.correlation_id", entry.CorrelationId);
        activity.SetTag("gatehouse.protocol", entry.Protocol);
        activity.SetTag("gatehouse.result", result);
        activity.SetTag("gatehouse.reason", reason);
        activity.SetTag("gatehouse.tenant_id", entry.TenantId.ToString());
        activity.SetTag("enduser.id", entry.UserId?.ToString());
        activity.AddEvent(new ActivityEvent("gatehouse.sign_in_log", tags: new ActivityTagsCollection
        {
            ["gatehouse.result"] = result,
            ["gatehouse.reason"] = reason,
            ["gatehouse.code"] = SafeCode(entry.Code),
        }));
        if (FirstSpanOf(entry.CorrelationId, activity.Context) is { } first && first.TraceId != activity.TraceId && !activity.Links.Any(l => l.Context.TraceId == first.TraceId))
        {
            activity.AddLink(new ActivityLink(first));
        }
    }

    /// <summary>An AADSTS or OAuth error code as is; anything else (free text) as <c>other</c>.</summary>
    internal static string? SafeCode(string? code) =>
        code is null ? null : code.Length <= 32 && code.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or 'x') ? code : "other";

    /// <summary>The first span seen for <paramref name="correlationId"/> (remembering <paramref name="current"/> when it is the first).</summary>
    private static ActivityContext? FirstSpanOf(string correlationId, ActivityContext current)
    {
        lock (Gate)
        {
            if (FirstSpans.TryGetValue(correlationId, out var first))
            {
                return first;
            }

            if (Order.Count >= MaxRemembered)
            {
                FirstSpans.Remove(Order.Dequeue());
            }

            FirstSpans[correlationId] = current;
            Order.Enqueue(correlationId);
            return null;
        }
    }
}
