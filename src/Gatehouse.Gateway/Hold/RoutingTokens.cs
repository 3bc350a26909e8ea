using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;

namespace Gatehouse.Gateway.Hold;

/// <summary>What a handover's routing token vouches for: who signed in, how, to which host, from where.</summary>
public sealed record HandoverGrant
{
    /// <summary>The client's address (the reconnect must come from it).</summary>
    public required IPAddress ClientAddress { get; init; }

    /// <summary>Tenant.</summary>
    public required Guid TenantId { get; init; }

    /// <summary>User (the reconnect must sign in as the same user).</summary>
    public required Guid UserId { get; init; }

    /// <summary>The host the user was handed to.</summary>
    public required Guid HostId { get; init; }

    /// <summary>How the user authenticated during the hold (amr, e.g. <c>pwd</c>, <c>mfa</c>, <c>otp</c>).</summary>
    public required IReadOnlyList<string> Methods { get; init; }

    /// <summary>When the user authenticated.</summary>
    public required DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>The connection that held the client (the sign-in it continues).</summary>
    public required string ConnectionId { get; init; }

    /// <summary>The user's name (what a TLS reconnect must name in its Client Info PDU).</summary>
    public string? UserPrincipalName { get; init; }

    /// <summary>The host's name (a TLS reconnect's host comes from the grant, not from what the client names).</summary>
    public string? HostName { get; init; }

    /// <summary>
    /// SHA-256 of the handover's secret, when the redirection carried one (LB_PASSWORD): a TLS reconnect proves it is
    /// the held client by sending the secret in its Client Info PDU, inside TLS. The routing token, seen before TLS,
    /// is then useless without it.
    /// </summary>
    public byte[]? SecretHash { get; init; }

    /// <summary>True when <paramref name="secret"/> is the handover's secret (constant time).</summary>
    public bool IsSecret(ReadOnlySpan<char> secret)
    {
        if (SecretHash is null)
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[32];
        var bytes = System.Text.Encoding.UTF8.GetBytes(secret.ToArray());
        SHA256.HashData(bytes, hash);
        CryptographicOperations.ZeroMemory(bytes);
        return CryptographicOperations.FixedTimeEquals(hash, SecretHash);
    }

    /// <summary>A new handover secret (160 random bits, base32) and its hash for <see cref="SecretHash"/>.</summary>
    public static (string Secret, byte[] Hash) NewSecret()
    {
        var secret = RoutingTokens.NewToken();
        return (secret, SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)));
    }
}

/// <summary>Why a routing token was not honoured (the connection then goes on as an ordinary one).</summary>
public enum RoutingTokenRefusal
{
    /// <summary>Honoured.</summary>
    None,

    /// <summary>Not a token this gateway minted, or already used.</summary>
    Unknown,

    /// <summary>Minted, but its lifetime has run out.</summary>
    Expired,

    /// <summary>Presented from another address than the one it was minted for (kept for its owner).</summary>
    ForeignAddress,
}

/// <summary>
/// The one-time routing tokens of the hold screen's handover ([MS-RDPBCGR] 2.2.13.1 LoadBalanceInfo, sent back by the
/// client in its X.224 Connection Request as <c>Cookie: msts=TOKEN</c>). A token is 160 random bits in base32, lives at
/// most <see cref="HoldScreenOptions.RoutingTokenLifetime"/> (≤ 60 s), is bound to the client's address and to the sign-in
/// it continues, and is honoured once. The table is capped; expired tokens are swept as new ones are minted.
/// Comparisons are by dictionary lookup on the full random value, which reveals nothing about other tokens.
/// </summary>
public sealed class RoutingTokens(TimeProvider time, TimeSpan lifetime, int capacity)
{
    /// <summary>Base32 characters of a token (160 bits).</summary>
    public const int TokenLength = 32;

    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    private readonly ConcurrentDictionary<string, Entry> _tokens = new(StringComparer.Ordinal);

    /// <summary>Outstanding tokens.</summary>
    public int Count => _tokens.Count;

    /// <summary>Mints a token for <paramref name="grant"/>; null when the table is full (the hold then refuses instead).</summary>
    public string? Mint(HandoverGrant grant)
    {
        ArgumentNullException.ThrowIfNull(grant);
        var now = time.GetUtcNow();
        if (_tokens.Count >= capacity)
        {
            Sweep(now);
            if (_tokens.Count >= capacity)
            {
                return null;
            }
        }

        var token = NewToken();
        _tokens[token] = new Entry(grant, now + lifetime);
        return token;
    }

    /// <summary>
    /// Honours <paramref name="token"/> from <paramref name="client"/> once: the grant, or why not. A token presented from
    /// another address stays for its owner; an expired one is dropped.
    /// </summary>
    public RoutingTokenRefusal TryRedeem(string? token, IPAddress client, out HandoverGrant? grant)
    {
        ArgumentNullException.ThrowIfNull(client);
        grant = null;
        if (token is null || token.Length != TokenLength || !_tokens.TryGetValue(token, out var entry))
        {
            return RoutingTokenRefusal.Unknown;
        }

        if (time.GetUtcNow() >= entry.ExpiresAt)
        {
            _tokens.TryRemove(token, out _);
            return RoutingTokenRefusal.Expired;
        }

        if (!entry.Grant.ClientAddress.Equals(client))
        {
            return RoutingTokenRefusal.ForeignAddress;
        }

        // Single use: only the caller that removes it gets the grant.
        if (!_tokens.TryRemove(new KeyValuePair<string, Entry>(token, entry)))
        {
            return RoutingTokenRefusal.Unknown;
        }

        grant = entry.Grant;
        return RoutingTokenRefusal.None;
    }

    private void Sweep(DateTimeOffset now)
    {
        foreach (var (key, entry) in _tokens)
        {
            if (now >= entry.ExpiresAt)
            {
                _tokens.TryRemove(new KeyValuePair<string, Entry>(key, entry));
            }
        }
    }

    internal static string NewToken()
    {
        Span<byte> random = stackalloc byte[20];
        RandomNumberGenerator.Fill(random);
        Span<char> chars = stackalloc char[TokenLength];
        for (var i = 0; i < TokenLength; i++)
        {
            // 160 bits, 5 per character.
            var bit = i * 5;
            var value = ((random[bit / 8] << 8) | (bit / 8 + 1 < random.Length ? random[bit / 8 + 1] : 0)) >> (11 - (bit % 8)) & 0x1F;
            chars[i] = Alphabet[value];
        }

        return new string(chars);
    }

    private sealed record Entry(HandoverGrant Grant, DateTimeOffset ExpiresAt);
}
