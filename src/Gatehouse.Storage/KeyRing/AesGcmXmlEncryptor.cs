using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Storage.KeyRing;

/// <summary>
/// Encrypts a Data Protection key's secret (its <c>masterKey</c> element) with the key-encryption key: AES-256-GCM over
/// the element's XML, a fresh 96-bit nonce each time. Data Protection stores the result inside
/// <c>&lt;encryptedSecret decryptorType="…AesGcmXmlDecryptor…"&gt;</c>.
/// </summary>
/// <remarks>
/// Chosen over <c>ProtectKeysWithCertificate</c>: a 32-byte key fits in a file or an environment variable (containers,
/// several nodes), needs no certificate store or XML-Enc machinery to decrypt, and its authentication tag turns a wrong
/// key or an altered row into a clear error instead of garbage.
/// </remarks>
public sealed class AesGcmXmlEncryptor : IXmlEncryptor
{
    private readonly KeyRingKeySource keys;

    /// <summary>Creates the encryptor over the node's keys.</summary>
    public AesGcmXmlEncryptor(KeyRingKeySource keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        this.keys = keys;
    }

    /// <inheritdoc/>
    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        ArgumentNullException.ThrowIfNull(plaintextElement);

        // A new key is rare (every 90 days): re-read the key file and check that this node can open every key already in
        // the ring, so a node holding a stale or wrong key file never adds a key the other nodes cannot read.
        return new EncryptedXmlInfo(KeyRingCipher.Seal(keys.ForNewKey(), plaintextElement), typeof(AesGcmXmlDecryptor));
    }
}

/// <summary>Decrypts what <see cref="AesGcmXmlEncryptor"/> encrypted (Data Protection creates it by type name).</summary>
public sealed class AesGcmXmlDecryptor : IXmlDecryptor
{
    private readonly KeyRingKeySource keys;

    /// <summary>Created by Data Protection's activator with the application's services.</summary>
    public AesGcmXmlDecryptor(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        keys = services.GetService<KeyRingKeySource>()
            ?? throw new InvalidOperationException("This Data Protection key is encrypted with Gatehouse's key-encryption key; open the key ring through gatehouse (serve or an admin command), which knows where the key is.");
    }

    /// <inheritdoc/>
    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        return KeyRingCipher.Open(keys.ForDecryption(KeyRingCipher.FingerprintOf(encryptedElement)), encryptedElement);
    }
}

/// <summary>The sealed form of one secret element: <c>&lt;aesGcm kek="FINGERPRINT"&gt;base64(nonce ‖ ciphertext ‖ tag)&lt;/aesGcm&gt;</c>.</summary>
internal static class KeyRingCipher
{
    /// <summary>The element <see cref="AesGcmXmlEncryptor"/> writes.</summary>
    public static readonly XName ElementName = XName.Get("aesGcm", "urn:gatehouse:keyring:v1");

    private const int NonceSize = 12;
    private const int TagSize = 16;

    /// <summary>Binds the ciphertext to this format.</summary>
    private static readonly byte[] AssociatedData = Encoding.ASCII.GetBytes("gatehouse-keyring-v1");

    public static XElement Seal(KeyEncryptionKeys keys, XElement plaintextElement)
    {
        var plaintext = Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting));
        var sealedBytes = new byte[NonceSize + plaintext.Length + TagSize];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using (var aes = new AesGcm(keys.Primary, TagSize))
        {
            aes.Encrypt(nonce, plaintext, sealedBytes.AsSpan(NonceSize, plaintext.Length), sealedBytes.AsSpan(NonceSize + plaintext.Length), AssociatedData);
        }

        CryptographicOperations.ZeroMemory(plaintext);
        return new XElement(ElementName, new XAttribute("kek", keys.PrimaryFingerprint), Convert.ToBase64String(sealedBytes));
    }

    /// <summary>The fingerprint of the key-encryption key that sealed <paramref name="element"/>.</summary>
    public static string FingerprintOf(XElement element) =>
        element.Name == ElementName && element.Attribute("kek")?.Value is { Length: > 0 } fingerprint
            ? fingerprint
            : throw new CryptographicException("This encrypted Data Protection key is not in the form Gatehouse writes; the key ring was altered.");

    public static XElement Open(KeyEncryptionKeys keys, XElement element)
    {
        var fingerprint = FingerprintOf(element);
        if (!keys.TryFind(fingerprint, out var key))
        {
            throw new CryptographicException($"This Data Protection key was encrypted with the key-encryption key {fingerprint}, but {keys.Source} holds {string.Join(", ", keys.Fingerprints)}.");
        }

        byte[] sealedBytes;
        try
        {
            sealedBytes = Convert.FromBase64String(element.Value);
        }
        catch (FormatException e)
        {
            throw new CryptographicException("An encrypted Data Protection key is not base64; the key ring was altered.", e);
        }

        if (sealedBytes.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("An encrypted Data Protection key is truncated; the key ring was altered.");
        }

        var plaintext = new byte[sealedBytes.Length - NonceSize - TagSize];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize, plaintext.Length), sealedBytes.AsSpan(NonceSize + plaintext.Length), plaintext, AssociatedData);
            return XElement.Parse(Encoding.UTF8.GetString(plaintext));
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new CryptographicException($"A Data Protection key does not decrypt with the key-encryption key {fingerprint} from {keys.Source}: the key file or the stored key ring was altered.", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}
