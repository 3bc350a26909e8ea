using System.Diagnostics;

namespace Gatehouse.Gateway.Diagnostics;

/// <summary>
/// One trace per sign-in, carried through the store: the first sign-in page's span context travels in the sign-in
/// transaction (<c>traceparent</c>), the authorization code's row keeps the span that issued it, the token endpoint
/// continues that trace when it redeems the code (<see cref="Continue"/>) and writes it into the access token
/// (<see cref="TraceClaim"/>), and the gateway continues it once the token is validated
/// (<see cref="TokenPresented(string, string?)"/>). Where a request starts a trace of its own (every HTTP request, the
/// RDP connection before it knows the token), the two are linked both ways.
/// Also joins the traces of one sign-in on this node with span links: a browser sign-in's span that granted the code, the
/// token endpoint's span that redeemed it, and the RDP connection's proof span that presented the token. A browser, a
/// token client and an RDP client carry no trace context between them, so each starts its own trace; the identity
/// provider remembers, by grant id and by token id (ids, never a code or a token), the span contexts that issued them,
/// and the later step links to them. Bounded (the oldest are forgotten first) and in memory: on a cluster whose nodes
/// split the steps the links are missing, and the spans still share <c>enduser.id</c>.
/// </summary>
public static class SignInTraces
{
    /// <summary>How many grants and tokens are remembered.</summary>
    public const int Capacity = 4096;

    /// <summary>
    /// The access-token claim carrying the sign-in's W3C <c>traceparent</c> (<c>00-&lt;trace id&gt;-&lt;span id&gt;-&lt;flags&gt;</c>).
    /// Not a secret: two random ids Gatehouse chose, which name spans in the operator's trace store and give nothing to
    /// anyone holding the token (who already holds the token itself); the token is signed, so a client cannot choose it.
    /// </summary>
    public const string TraceClaim = "gh_trace";

    /// <summary>The longest <c>traceparent</c> read (version 00 is 55 characters).</summary>
    public const int MaxTraceParentChars = 64;

    /// <summary>The custom property on a connection's spans that names its <see cref="ConnectionTrace"/>.</summary>
    internal const string ConnectionProperty = "gatehouse.connection_trace";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, ActivityContext[]> Contexts = new(StringComparer.Ordinal);
    private static readonly Queue<string> Order = new();

    /// <summary>Remembers the current span as the one that granted <paramref name="grantId"/> (the code's sign-in).</summary>
    public static void Granted(Guid grantId)
    {
        if (Activity.Current is { } current)
        {
            Remember("grant:" + grantId.ToString("N"), [current.Context]);
        }
    }

    /// <summary>
    /// The current span issues token <paramref name="tokenId"/> (its <c>jti</c>) of <paramref name="grantId"/>: it is
    /// linked to the grant's sign-in, and both are remembered for the token's use.
    /// </summary>
    public static void TokenIssued(Guid grantId, string tokenId)
    {
        if (Activity.Current is not { } current)
        {
            return;
        }

        var granted = Find("grant:" + grantId.ToString("N"));
        foreach (var context in granted)
        {
            current.AddLink(new ActivityLink(context, new ActivityTagsCollection { ["gatehouse.link"] = "sign_in" }));
        }

        Remember("token:" + tokenId, [.. granted, current.Context]);
    }

    /// <summary>The W3C <c>traceparent</c> of the current span when it is recorded, else null.</summary>
    public static string? CurrentTraceParent() =>
        Activity.Current is { Recorded: true, IdFormat: ActivityIdFormat.W3C } current ? current.Id : null;

    /// <summary>Reads a <c>traceparent</c> Gatehouse wrote (a transaction, a code row, a token claim); false for anything else.</summary>
    public static bool TryParse(string? traceParent, out ActivityContext context)
    {
        context = default;
        return traceParent is { Length: > 0 and <= MaxTraceParentChars }
            && ActivityContext.TryParse(traceParent, null, isRemote: true, out context)
            && context.TraceId != default;
    }

    /// <summary>
    /// Starts <paramref name="name"/> as a child of the sign-in span <paramref name="traceParent"/> names (null when it
    /// names none or nobody listens), linked both ways with the current span (the request's own trace).
    /// </summary>
    public static Activity? Continue(ActivitySource source, string name, string? traceParent)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!TryParse(traceParent, out var parent))
        {
            return null;
        }

        var request = Activity.Current;
        var links = request is null ? null : new[] { new ActivityLink(request.Context, new ActivityTagsCollection { ["gatehouse.link"] = "request" }) };
        var activity = source.StartActivity(name, ActivityKind.Internal, parent, links: links);
        if (activity is not null && request is not null)
        {
            request.AddLink(new ActivityLink(activity.Context, new ActivityTagsCollection { ["gatehouse.link"] = "sign_in" }));
        }

        return activity;
    }

    /// <summary>As <see cref="TokenPresented(string, string?)"/> without a trace claim.</summary>
    public static void TokenPresented(string tokenId) => TokenPresented(tokenId, null);

    /// <summary>
    /// The current span (a connection's proof) presented token <paramref name="tokenId"/>: linked to its sign-in and
    /// issue, and when the token carries its sign-in's trace (<paramref name="traceParent"/>), the connection continues
    /// that trace from here (<see cref="ConnectionTrace.SignedIn"/>).
    /// </summary>
    public static void TokenPresented(string tokenId, string? traceParent)
    {
        if (Activity.Current is not { } current)
        {
            return;
        }

        if (TryParse(traceParent, out var signIn) && current.GetCustomProperty(ConnectionProperty) is ConnectionTrace connection)
        {
            connection.SignedIn(signIn);
        }

        var found = Find("token:" + tokenId);
        for (var i = 0; i < found.Length; i++)
        {
            current.AddLink(new ActivityLink(found[i], new ActivityTagsCollection { ["gatehouse.link"] = i == found.Length - 1 ? "token" : "sign_in" }));
        }
    }

    private static void Remember(string key, ActivityContext[] contexts)
    {
        lock (Gate)
        {
            if (!Contexts.ContainsKey(key))
            {
                if (Order.Count >= Capacity)
                {
                    Contexts.Remove(Order.Dequeue());
                }

                Order.Enqueue(key);
            }

            Contexts[key] = contexts;
        }
    }

    private static ActivityContext[] Find(string key)
    {
        lock (Gate)
        {
            return Contexts.TryGetValue(key, out var contexts) ? contexts : [];
        }
    }
}
