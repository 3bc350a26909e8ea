using System.Security.Cryptography;
using System.Xml.Linq;

namespace Gatehouse.Storage.KeyRing;

/// <summary>Where a node finds its key-encryption key.</summary>
public sealed class KeyRingSettings
{
    /// <summary>
    /// Keys from configuration (<c>Gatehouse:KeyRing:Key</c>, base64; several separated by commas, the first encrypting).
    /// When set, no key file is read or written.
    /// </summary>
    public string? Keys { get; init; }

    /// <summary>The key file (absolute path) used when <see cref="Keys"/> is empty.</summary>
    public required string KeyFile { get; init; }

    /// <summary>
    /// Whether a missing key file may be created (<c>gatehouse serve</c>), when nothing in the key ring is encrypted yet.
    /// Admin commands never create one: they use the server's.
    /// </summary>
    public bool CreateKeyFile { get; init; }
}

/// <summary>What <see cref="KeyRingKeySource.Prepare"/> found and did.</summary>
/// <param name="Keys">The node's key-encryption keys.</param>
/// <param name="CreatedKeyFile">The key file that was created now, or null.</param>
/// <param name="Encrypted">Data Protection keys encrypted with the first key-encryption key.</param>
/// <param name="Reencrypted">Keys that were stored unencrypted or under an older key-encryption key and were re-encrypted now.</param>
/// <param name="Unencrypted">Keys still stored unencrypted (when not asked to re-encrypt).</param>
public sealed record KeyRingStatus(KeyEncryptionKeys Keys, string? CreatedKeyFile, int Encrypted, int Reencrypted, int Unencrypted);

/// <summary>
/// The node's key-encryption keys and the rules around them, which fail closed: a key file is created only while no
/// key in the ring is encrypted (otherwise a missing file is an error that says what to restore, never a new key ring
/// that would leave every stored secret unreadable); a key file that other users can read or write is refused; and a
/// node whose keys cannot open every encrypted key in the ring neither starts nor adds a key.
/// </summary>
public sealed class KeyRingKeySource
{
    /// <summary>Data Protection's XML namespace (its <c>XmlConstants</c>).</summary>
    private static readonly XNamespace DataProtectionNamespace = "http://schemas.asp.net/2015/03/dataProtection";
    private static readonly XName EncryptedSecretName = DataProtectionNamespace + "encryptedSecret";
    private static readonly XName RequiresEncryptionName = DataProtectionNamespace + "requiresEncryption";

    private const UnixFileMode NotOwner = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly KeyRingSettings settings;
    private readonly IRewritableXmlRepository repository;
    private readonly Lock gate = new();
    private KeyEncryptionKeys? keys;
    private string? createdKeyFile;

    /// <summary>Creates the source over the key ring's <paramref name="repository"/>.</summary>
    public KeyRingKeySource(KeyRingSettings settings, IRewritableXmlRepository repository)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(repository);
        this.settings = settings;
        this.repository = repository;
    }

    /// <summary>The key ring's store (a folder of XML files or the database's table).</summary>
    public IRewritableXmlRepository Repository => repository;

    /// <summary>Whether the keys come from configuration rather than a key file.</summary>
    public bool FromConfiguration => !string.IsNullOrWhiteSpace(settings.Keys);

    /// <summary>The key file (meaningful when <see cref="FromConfiguration"/> is false).</summary>
    public string KeyFile => settings.KeyFile;

    /// <summary>
    /// Loads the keys (creating the key file when allowed), checks that they open every encrypted key in the ring and,
    /// with <paramref name="reencrypt"/>, encrypts every key stored unencrypted (written before Gatehouse encrypted its
    /// key ring) or under an older key-encryption key with the first one. Throws <see cref="KeyRingException"/>.
    /// </summary>
    public KeyRingStatus Prepare(bool reencrypt)
    {
        lock (gate)
        {
            var current = keys ??= Load();
            var reencrypted = reencrypt ? Reencrypt(current) : 0;
            var (encrypted, unencrypted) = Count(current, repository.GetAllElements());
            return new KeyRingStatus(current, createdKeyFile, encrypted, reencrypted, unencrypted);
        }
    }

    /// <summary>
    /// Replaces the key file's key with a new one and re-encrypts every key in the ring with it (the file holds both keys
    /// while it does, so an interruption loses nothing: run it again). With keys from configuration, re-encrypts with
    /// the first configured key instead. Returns the new status.
    /// </summary>
    public KeyRingStatus Rotate()
    {
        lock (gate)
        {
            var current = keys ??= Load();
            if (FromConfiguration)
            {
                var count = Reencrypt(current);
                return new KeyRingStatus(current, null, Count(current, repository.GetAllElements()).Encrypted, count, 0);
            }

            // New key first; the old ones stay until nothing needs them.
            WriteKeyFile(settings.KeyFile, KeyEncryptionKeys.FileText([KeyEncryptionKeys.Generate(), .. current.ToBase64()]), replace: true);
            var both = ReadKeyFile(settings.KeyFile);
            keys = both;
            var reencrypted = Reencrypt(both);
            WriteKeyFile(settings.KeyFile, KeyEncryptionKeys.FileText(both.ToBase64().Take(1)), replace: true);
            keys = ReadKeyFile(settings.KeyFile);
            return new KeyRingStatus(keys, null, Count(keys, repository.GetAllElements()).Encrypted, reencrypted, 0);
        }
    }

    /// <summary>
    /// The keys to encrypt a new Data Protection key with: the key file is read again (it may have been rotated), and
    /// every encrypted key already in the ring must open with them, or no key is added.
    /// </summary>
    internal KeyEncryptionKeys ForNewKey()
    {
        lock (gate)
        {
            var current = keys is null ? Load() : FromConfiguration ? keys : ReadKeyFile(settings.KeyFile);
            Verify(current, repository.GetAllElements());
            keys = current;
            return current;
        }
    }

    /// <summary>The keys to decrypt a key sealed under <paramref name="fingerprint"/> (the key file is read again when it lacks it).</summary>
    internal KeyEncryptionKeys ForDecryption(string fingerprint)
    {
        lock (gate)
        {
            var current = keys ??= Load();
            if (!current.TryFind(fingerprint, out _) && !FromConfiguration && File.Exists(settings.KeyFile))
            {
                // Rotated by 'gatehouse keyring rotate', or copied from the node that rotated it.
                keys = current = ReadKeyFile(settings.KeyFile);
            }

            return current;
        }
    }

    private KeyEncryptionKeys Load()
    {
        if (FromConfiguration)
        {
            var configured = KeyEncryptionKeys.Parse(settings.Keys!, "Gatehouse:KeyRing:Key");
            Verify(configured, repository.GetAllElements());
            return configured;
        }

        if (File.Exists(settings.KeyFile))
        {
            var fromFile = ReadKeyFile(settings.KeyFile);
            Verify(fromFile, repository.GetAllElements());
            return fromFile;
        }

        var elements = repository.GetAllElements();
        var needed = elements.SelectMany(e => e.Descendants(KeyRingCipher.ElementName)).Select(e => e.Attribute("kek")?.Value ?? "?").Distinct().ToList();
        if (needed.Count > 0)
        {
            throw new KeyRingException(
                $"The key ring is encrypted with the key-encryption key {string.Join(", ", needed)}, but there is no key file at {settings.KeyFile}. " +
                "Restore that file from your backup (or copy it from a node that shares this store), or point Gatehouse:KeyRing:KeyFile " +
                "(Gatehouse__KeyRing__KeyFile) at it, or give the key in Gatehouse__KeyRing__Key. Gatehouse does not start a new key ring: " +
                "the host passwords, TOTP secrets and signing key in the store can only be read with the old one.");
        }

        if (!settings.CreateKeyFile)
        {
            throw new KeyRingException(
                $"There is no key-encryption key file at {settings.KeyFile}: start 'gatehouse serve' on this store once (it creates the file), " +
                "or point Gatehouse__KeyRing__KeyFile at the server's key file (or give the key in Gatehouse__KeyRing__Key).");
        }

        try
        {
            WriteKeyFile(settings.KeyFile, KeyEncryptionKeys.FileText([KeyEncryptionKeys.Generate()]), replace: false);
            createdKeyFile = settings.KeyFile;
        }
        catch (IOException) when (File.Exists(settings.KeyFile))
        {
            // Another node or command created it at the same moment: use theirs.
        }

        var created = ReadKeyFile(settings.KeyFile);
        Verify(created, repository.GetAllElements());
        return created;
    }

    /// <summary>Reads a key file, refusing one that other users can read or write.</summary>
    private static KeyEncryptionKeys ReadKeyFile(string path)
    {
        var source = $"the key file {path}";
        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode;
            try
            {
                mode = File.GetUnixFileMode(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KeyRingException($"Cannot read {source}: {e.Message}. Restore it from your backup, or point Gatehouse:KeyRing:KeyFile at it.", e);
            }

            if ((mode & NotOwner) != 0)
            {
                throw new KeyRingException(
                    $"The key file {path} can be read or changed by other users (mode {Octal(mode)}), so the key ring's secrets may be exposed. " +
                    $"Run 'chmod 600 {path}' (and keep it owned by the account that runs Gatehouse), then start again.");
            }
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyRingException($"Cannot read {source}: {e.Message}. Check that the account running Gatehouse owns it.", e);
        }

        return KeyEncryptionKeys.Parse(text, source);
    }

    /// <summary>Writes a key file (mode 0600) through a temporary file and a rename, so it is never seen half-written.</summary>
    private static void WriteKeyFile(string path, string text, bool replace)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temporary, options))
            {
                stream.Write(System.Text.Encoding.ASCII.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }

            // Without replace, the move fails if the file appeared meanwhile (link(2) on Unix), rather than replacing it.
            File.Move(temporary, path, overwrite: replace);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Fails unless <paramref name="current"/> opens every key in <paramref name="elements"/> that Gatehouse encrypted.</summary>
    private static void Verify(KeyEncryptionKeys current, IReadOnlyCollection<XElement> elements)
    {
        foreach (var sealedElement in elements.SelectMany(e => e.Descendants(KeyRingCipher.ElementName)))
        {
            try
            {
                _ = KeyRingCipher.Open(current, sealedElement);
            }
            catch (CryptographicException e)
            {
                var fingerprint = sealedElement.Attribute("kek")?.Value ?? "?";
                throw new KeyRingException(
                    current.TryFind(fingerprint, out _)
                        ? $"{e.Message} Restore the key file and the store from the same backup."
                        : $"The key ring holds keys encrypted with the key-encryption key {fingerprint}, but {current.Source} holds {string.Join(", ", current.Fingerprints)}. " +
                          "Restore the key file that was in use (every node that shares this store needs the same one), or give that key in Gatehouse__KeyRing__Key.",
                    e);
            }
        }
    }

    /// <summary>Encrypts, with the first key, every key secret that is unencrypted or sealed under another key.</summary>
    private int Reencrypt(KeyEncryptionKeys current) => repository.RewriteElements(element =>
    {
        if (!element.Descendants(KeyRingCipher.ElementName).Any(e => e.Attribute("kek")?.Value != current.PrimaryFingerprint)
            && !element.Descendants().Any(RequiresEncryption))
        {
            return null;
        }

        var copy = new XElement(element);

        // Open what an older key sealed (Verify has shown that every one opens) ...
        foreach (var secret in copy.Descendants(EncryptedSecretName).Where(s => s.Element(KeyRingCipher.ElementName) is { } e && e.Attribute("kek")?.Value != current.PrimaryFingerprint).ToList())
        {
            secret.ReplaceWith(KeyRingCipher.Open(current, secret.Element(KeyRingCipher.ElementName)!));
        }

        // ... and seal every secret the way Data Protection's own XmlKeyManager does when an encryptor is configured.
        foreach (var plaintext in copy.Descendants().Where(RequiresEncryption).ToList())
        {
            plaintext.ReplaceWith(new XElement(
                EncryptedSecretName,
                new XAttribute("decryptorType", typeof(AesGcmXmlDecryptor).AssemblyQualifiedName!),
                KeyRingCipher.Seal(current, plaintext)));
        }

        return copy;
    });

    private static bool RequiresEncryption(XElement element) =>
        element.Attribute(RequiresEncryptionName) is { } flag && bool.TryParse(flag.Value, out var required) && required
        && !element.Ancestors(EncryptedSecretName).Any();

    private static (int Encrypted, int Unencrypted) Count(KeyEncryptionKeys current, IReadOnlyCollection<XElement> elements)
    {
        var keyElements = elements.Where(e => e.Name.LocalName == "key").ToList();
        return (
            keyElements.Count(k => k.Descendants(KeyRingCipher.ElementName).Any(e => e.Attribute("kek")?.Value == current.PrimaryFingerprint)),
            keyElements.Count(k => k.Descendants().Any(RequiresEncryption)));
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode, 8);
}
