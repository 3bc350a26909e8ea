using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// Sends every identity-provider response with a <c>Content-Length</c> and never chunked: FreeRDP's HTTP client
/// reads a body only through <c>Content-Length</c> (design/protocol/freerdp-aad-client.md §3). Responses are
/// buffered up to a configured cap; a handler that exceeds it is a bug and gets a 500 instead of a truncated body.
/// </summary>
internal sealed class ContentLengthMiddleware
{
    private readonly RequestDelegate _next;
    private readonly int _maxBytes;

    public ContentLengthMiddleware(RequestDelegate next, IOptions<GatehouseOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _next = next;
        _maxBytes = options.Value.Limits.MaxBufferedResponseBytes;
    }

    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var original = context.Response.Body;
        await using var buffer = new CappedMemoryStream(_maxBytes, context.Response, original);
        context.Response.Body = buffer;
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        finally
        {
            context.Response.Body = original;
        }

        if (buffer.SentDirectly)
        {
            // The handler declared the length and sent the whole body in one write (a document kept in memory).
            return;
        }

        if (buffer.Overflowed)
        {
            throw new InvalidOperationException($"A response exceeded Gatehouse:Limits:MaxBufferedResponseBytes ({_maxBytes} bytes).");
        }

        if (HttpMethods.IsHead(context.Request.Method) || context.Response.StatusCode is StatusCodes.Status204NoContent or StatusCodes.Status304NotModified)
        {
            return;
        }

        context.Response.ContentLength = buffer.Length;
        if (buffer.Length > 0)
        {
            await original.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), context.RequestAborted).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Buffers the body, up to <paramref name="cap"/>; a body whose length the handler set beforehand and that comes in
    /// one write goes straight to <paramref name="original"/> instead (no copy).
    /// </summary>
    private sealed class CappedMemoryStream(int cap, HttpResponse response, Stream original) : MemoryStream
    {
        public bool Overflowed { get; private set; }

        public bool SentDirectly { get; private set; }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Check(count);
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            Check(buffer.Length);
            base.Write(buffer);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!SentDirectly && Length == 0 && buffer.Length > 0 && response.ContentLength == buffer.Length && buffer.Length <= cap)
            {
                SentDirectly = true;
                return original.WriteAsync(buffer, cancellationToken);
            }

            Check(buffer.Length);
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Check(count);
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        public override void WriteByte(byte value)
        {
            Check(1);
            base.WriteByte(value);
        }

        private void Check(int count)
        {
            if (SentDirectly)
            {
                throw new InvalidOperationException("The response body was already sent with its declared length.");
            }

            if (Length + count > cap)
            {
                Overflowed = true;
                throw new InvalidOperationException($"Response larger than {cap} bytes.");
            }
        }
    }
}
