using System.Diagnostics;

namespace Gatehouse.Gateway.Diagnostics;

/// <summary>
/// Joins the traces of one sign-in on this node with span links: a browser sign-in's span that granted the code, the
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

    /// <summary>The current span (a connection's proof) presented token <paramref name="tokenId"/>: linked to its sign-in and issue.</summary>
    public static void TokenPresented(string tokenId)
    {
        if (Activity.Current is not { } current)
        {
            return;
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
