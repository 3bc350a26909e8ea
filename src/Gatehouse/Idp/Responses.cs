using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Gatehouse.Idp;

/// <summary>
/// Writes the identity provider's responses as whole byte arrays (the <see cref="Hosting.ContentLengthMiddleware"/>
/// adds the Content-Length FreeRDP needs) with the security headers every page carries.
/// </summary>
internal static class Responses
{
    public static Task JsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write, bool noStore = true)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(write);
        return JsonAsync(context, status, Json(write), noStore);
    }

    /// <summary>The JSON <paramref name="write"/> writes, as UTF-8 bytes (what <see cref="JsonAsync(HttpContext, int, ReadOnlyMemory{byte}, bool)"/> sends).</summary>
    public static ReadOnlyMemory<byte> Json(Action<Utf8JsonWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.Default }))
        {
            write(writer);
        }

        return buffer.WrittenMemory;
    }

    /// <summary>A JSON response of bytes already written (a document kept in memory).</summary>
    public static Task JsonAsync(HttpContext context, int status, ReadOnlyMemory<byte> body, bool noStore = true)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        if (noStore)
        {
            context.Response.Headers.CacheControl = "no-store";
            context.Response.Headers.Pragma = "no-cache";
        }

        context.Response.Headers.XContentTypeOptions = NoSniff;
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    private static readonly Microsoft.Extensions.Primitives.StringValues JsonContentType = "application/json; charset=utf-8";
    private static readonly Microsoft.Extensions.Primitives.StringValues NoSniff = "nosniff";

    /// <summary>
    /// A document kept in memory (<see cref="KeptDocument"/>): its bytes with their length and ETag, every header value
    /// made beforehand; <c>304 Not Modified</c>, no body, when the request's <c>If-None-Match</c> names the ETag.
    /// </summary>
    public static Task DocumentAsync(HttpContext context, KeptDocument document)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(document);
        var response = context.Response;
        response.Headers.ETag = document.ETagHeader;
        response.Headers.XContentTypeOptions = NoSniff;
        if (NotModified(context.Request.Headers.IfNoneMatch, document.ETag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.Headers.ContentType = JsonContentType;
        response.ContentLength = document.Body.Length;
        return response.Body.WriteAsync(document.Body, context.RequestAborted).AsTask();
    }

    /// <summary>True when <paramref name="ifNoneMatch"/> (RFC 9110 §13.1.2: <c>*</c> or a list of tags) names <paramref name="etag"/>.</summary>
    internal static bool NotModified(Microsoft.Extensions.Primitives.StringValues ifNoneMatch, string etag)
    {
        foreach (var value in ifNoneMatch)
        {
            if (value is null || value.Length > 4096)
            {
                continue;
            }

            foreach (var range in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                // A weak tag matches by weak comparison (§8.8.3.2), which If-None-Match uses.
                var tag = range.StartsWith("W/", StringComparison.Ordinal) ? range[2..] : range;
                if (tag == "*" || string.Equals(tag, etag, StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>An Entra-shaped OAuth error body: error, error_description (AADSTS…), error_codes, timestamp, trace and correlation ids.</summary>
    public static Task OAuthErrorAsync(HttpContext context, AadError error, int status = StatusCodes.Status400BadRequest)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(error);
        var now = DateTimeOffset.UtcNow;
        var trace = context.TraceIdentifier;
        return JsonAsync(context, status, w =>
        {
            w.WriteStartObject();
            w.WriteString("error", error.OAuthError);
            w.WriteString("error_description", $"{error.Describe()}\r\nTrace ID: {trace}\r\nTimestamp: {now:yyyy-MM-dd HH:mm:ss}Z");
            w.WriteStartArray("error_codes");
            if (error.Code != 0)
            {
                w.WriteNumberValue(error.Code);
            }

            w.WriteEndArray();
            w.WriteString("timestamp", now.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("trace_id", trace);
            w.WriteString("correlation_id", trace);
            w.WriteEndObject();
        });
    }

    /// <summary>
    /// An HTML page. Every page forbids framing, sniffing, referrers and caching, and allows only the inline script
    /// carrying this response's nonce.
    /// </summary>
    public static Task HtmlAsync(HttpContext context, int status, string title, Func<string, string> body)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(body);
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var html = Html.Layout(title, body(nonce));
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/html; charset=utf-8";
        var headers = context.Response.Headers;
        headers.CacheControl = "no-store";
        headers.Pragma = "no-cache";
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers.ContentSecurityPolicy = $"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        return context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(html), context.RequestAborted).AsTask();
    }
}

/// <summary>HTML building blocks; every value from outside goes through <see cref="E"/>.</summary>
internal static class Html
{
    /// <summary>
    /// HTML-encodes <paramref name="value"/> after writing its control, bidirectional and other invisible characters
    /// out (<see cref="Gatehouse.Protocol.DisplayText"/>): an entity such as <c>&amp;#x202E;</c> would still reverse
    /// the text around it, <c>\u202e</c> does not.
    /// </summary>
    public static string E(string? value) => HtmlEncoder.Default.Encode(Gatehouse.Protocol.DisplayText.Escape(value));

    public static string Layout(string title, string body) => $$"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{E(title)}} - Gatehouse</title>
        <style>
        body { font-family: "Segoe UI", "DejaVu Sans", sans-serif; background: #f2f2f2; margin: 0; }
        main { max-width: 440px; margin: 8vh auto; background: #fff; padding: 44px; box-shadow: 0 2px 6px rgba(0,0,0,.2); }
        h1 { font-size: 1.5rem; font-weight: 600; margin: 0 0 1rem; }
        label { display: block; margin: .75rem 0 .25rem; }
        input[type=text], input[type=password], input[type=email] { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 0; border-bottom: 1px solid #666; }
        button { background: #0067b8; color: #fff; border: 0; padding: .5rem 1.5rem; font-size: 1rem; margin-top: 1.25rem; cursor: pointer; }
        button.secondary { background: #ccc; color: #000; margin-right: .5rem; }
        .error { color: #e81123; margin: .75rem 0; }
        .who { color: #1b1b1b; margin-bottom: .5rem; }
        .url { word-break: break-all; font-family: monospace; background: #f6f6f6; padding: .5rem; }
        .hint { color: #555; font-size: .9rem; }
        .qr { display: block; margin: .75rem auto; image-rendering: pixelated; }
        </style>
        </head>
        <body><main>
        {{body}}
        </main></body>
        </html>
        """;

    public static string Error(string? message) =>
        string.IsNullOrEmpty(message) ? string.Empty : $"""<p class="error" role="alert" id="error">{E(message)}</p>""";

    public static string Hidden(string name, string value) => $"""<input type="hidden" name="{E(name)}" value="{E(value)}">""";
}
