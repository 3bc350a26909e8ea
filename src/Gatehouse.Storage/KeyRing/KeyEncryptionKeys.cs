using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Storage.KeyRing;

/// <summary>
/// The key-encryption keys (KEKs) that seal the Data Protection key ring at rest: 256-bit AES keys, the first of which
/// encrypts and every one of which decrypts (a key file holds a second key only while <c>gatehouse keyring rotate</c>
/// re-encrypts the ring). They never live in the store: a key file beside the node's data, or configuration.
/// </summary>
public sealed class KeyEncryptionKeys
{
    /// <summary>Bytes in a key (AES-256).</summary>
    public const int KeySize = 32;

    private readonly byte[][] keys;

    private KeyEncryptionKeys(byte[][] keys, string source)
    {
        this.keys = keys;
        Source = source;
        Fingerprints = [.. keys.Select(k => Fingerprint(k))];
    }

    /// <summary>Where the keys came from, for messages ("the key file /var/lib/gatehouse/keyring.kek").</summary>
    public string Source { get; }

    /// <summary>The keys' fingerprints, the encrypting key's first.</summary>
    public IReadOnlyList<string> Fingerprints { get; }

    /// <summary>The fingerprint of the key that encrypts.</summary>
    public string PrimaryFingerprint => Fingerprints[0];

    /// <summary>The key that encrypts.</summary>
    internal ReadOnlySpan<byte> Primary => keys[0];

    /// <summary>
    /// A key's public name: the first 8 bytes of its SHA-256, in hex. Stored next to what it encrypts, so a node can
    /// say which key file a key ring needs; it reveals nothing usable about the key.
    /// </summary>
    public static string Fingerprint(ReadOnlySpan<byte> key) => Convert.ToHexStringLower(SHA256.HashData(key)[..8]);

    /// <summary>A fresh random key, base64.</summary>
    public static string Generate() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeySize));

    /// <summary>
    /// Parses keys written as base64, one per line (a key file; lines starting with <c>#</c> are comments) or separated
    /// by commas or spaces (configuration). Throws <see cref="KeyRingException"/> naming <paramref name="source"/> when
    /// there is none or one is not the base64 of 32 bytes; the message never contains the text.
    /// </summary>
    public static KeyEncryptionKeys Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(source);
        var parsed = new List<byte[]>();
        foreach (var line in text.Split('\n'))
        {
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue;
            }

            foreach (var item in trimmed.Split([',', ' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries))
            {
                var key = new byte[KeySize];
                if (!Convert.TryFromBase64String(item, key, out var written) || written != KeySize)
                {
                    throw new KeyRingException($"{source} holds something that is not a key-encryption key: each key must be the base64 of 32 random bytes (for example the output of 'openssl rand -base64 32').");
                }

                parsed.Add(key);
            }
        }

        return parsed.Count == 0
            ? throw new KeyRingException($"{source} holds no key-encryption key: it must hold the base64 of 32 random bytes (for example the output of 'openssl rand -base64 32').")
            : new KeyEncryptionKeys([.. parsed], source);
    }

    /// <summary>The key with <paramref name="fingerprint"/>, or false.</summary>
    internal bool TryFind(string fingerprint, out ReadOnlySpan<byte> key)
    {
        var index = Fingerprints.ToList().IndexOf(fingerprint);
        key = index < 0 ? default : keys[index];
        return index >= 0;
    }

    /// <summary>The text of a key file holding <paramref name="base64Keys"/>, the first of which encrypts.</summary>
    internal static string FileText(IEnumerable<string> base64Keys)
    {
        var text = new StringBuilder();
        text.Append("# Gatehouse key-encryption key: it seals the Data Protection key ring, which seals the host passwords, TOTP\n");
        text.Append("# secrets and token-signing key in the store. Keep this file mode 0600, owned by the account that runs Gatehouse,\n");
        text.Append("# and back it up apart from the database: the store cannot be read without it, and it is useless without the store.\n");
        text.Append("# Every node that shares the store needs the same file. The first key encrypts; any others only decrypt.\n");
        foreach (var key in base64Keys)
        {
            text.Append(key).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>The keys in base64, the encrypting key first (to write a key file).</summary>
    internal IEnumerable<string> ToBase64() => keys.Select(k => Convert.ToBase64String(k));
}

/// <summary>The key ring cannot be opened safely; the message says what the operator restores or changes.</summary>
public sealed class KeyRingException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeyRingException()
    {
    }

    /// <summary>Creates the exception with the operator's sentence.</summary>
    public KeyRingException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the operator's sentence and the cause.</summary>
    public KeyRingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
