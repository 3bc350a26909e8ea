namespace Gatehouse.Protocol.Crypto;

/// <summary>
/// The RC4 stream cipher, which NTLM uses to seal the exported session key and messages ([MS-NLMP] 3.4.3); .NET does
/// not ship it. A keystream state: <see cref="Transform(ReadOnlySpan{byte}, Span{byte})"/> continues where the previous call stopped, as NTLM
/// sealing requires. Not thread-safe; not for any other use.
/// </summary>
public sealed class Rc4
{
    private readonly byte[] _s = new byte[256];
    private byte _i;
    private byte _j;

    /// <summary>Runs the key schedule for <paramref name="key"/> (1 to 256 bytes).</summary>
    /// <exception cref="ArgumentException">The key is empty or longer than 256 bytes.</exception>
    public Rc4(ReadOnlySpan<byte> key)
    {
        if (key.IsEmpty || key.Length > 256)
        {
            throw new ArgumentException("An RC4 key is 1 to 256 bytes.", nameof(key));
        }

        for (var n = 0; n < 256; n++)
        {
            _s[n] = (byte)n;
        }

        byte j = 0;
        for (var n = 0; n < 256; n++)
        {
            j = unchecked((byte)(j + _s[n] + key[n % key.Length]));
            (_s[n], _s[j]) = (_s[j], _s[n]);
        }
    }

    /// <summary>XORs <paramref name="source"/> with the next keystream bytes into <paramref name="destination"/> (may be the same span).</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <paramref name="source"/>.</exception>
    public void Transform(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("The destination is shorter than the source.", nameof(destination));
        }

        var s = _s;
        byte i = _i, j = _j;
        for (var n = 0; n < source.Length; n++)
        {
            i = unchecked((byte)(i + 1));
            j = unchecked((byte)(j + s[i]));
            (s[i], s[j]) = (s[j], s[i]);
            destination[n] = (byte)(source[n] ^ s[unchecked((byte)(s[i] + s[j]))]);
        }

        _i = i;
        _j = j;
    }

    /// <summary>One-shot: encrypts or decrypts <paramref name="data"/> with a fresh keystream for <paramref name="key"/>.</summary>
    public static byte[] Transform(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        var output = new byte[data.Length];
        new Rc4(key).Transform(data, output);
        return output;
    }
}
