using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Gateway.WebAccount;

/// <summary>
/// The <c>ts_nonce</c> of one connection: 256 random bits, base64url (safe for FreeRDP to embed verbatim), issued
/// once per TLS connection, valid for a limited time and consumable once.
/// </summary>
public sealed class ServerNonce
{
    private readonly byte[] _ascii;
    private int _consumed;

    private ServerNonce(string value, DateTimeOffset issuedAt)
    {
        Value = value;
        IssuedAt = issuedAt;
        _ascii = Encoding.ASCII.GetBytes(value);
    }

    /// <summary>The nonce text sent in the Server Nonce PDU.</summary>
    public string Value { get; }

    /// <summary>When it was issued.</summary>
    public DateTimeOffset IssuedAt { get; }

    /// <summary>A fresh nonce.</summary>
    public static ServerNonce Issue(DateTimeOffset now) =>
        new(System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32)), now);

    /// <summary>
    /// True once: when <paramref name="presented"/> equals this nonce (constant-time) and it has not been consumed;
    /// the first matching call consumes it.
    /// </summary>
    public bool TryConsume(string presented)
    {
        ArgumentNullException.ThrowIfNull(presented);
        var matches = CryptographicOperations.FixedTimeEquals(_ascii, Encoding.ASCII.GetBytes(presented)) && presented.Length == Value.Length;
        return matches && Interlocked.Exchange(ref _consumed, 1) == 0;
    }

    /// <summary>True after a successful <see cref="TryConsume"/>.</summary>
    public bool IsConsumed => Volatile.Read(ref _consumed) == 1;
}
