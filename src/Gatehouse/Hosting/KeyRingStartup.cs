using Gatehouse.Storage.KeyRing;

namespace Gatehouse.Hosting;

/// <summary>
/// The <c>Gatehouse:KeyRing</c> section: the key-encryption key that seals the Data Protection key ring at rest (README,
/// "Secrets and backup"). Give at most one of the two.
/// </summary>
internal sealed class KeyRingOptions
{
    /// <summary>The key file; default <c>keyring.kek</c> in the data directory, created 0600 at the first start.</summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// The key itself, base64 of 32 bytes (<c>Gatehouse__KeyRing__Key</c>; containers, several nodes); no key file is read
    /// or written. While rotating, several separated by commas: the first encrypts, all decrypt.
    /// </summary>
    public string? Key { get; set; }

    /// <summary>The settings for the store at <paramref name="dataDirectory"/>; <paramref name="create"/>: may create the key file.</summary>
    public KeyRingSettings ToSettings(string dataDirectory, bool create)
    {
        if (!string.IsNullOrWhiteSpace(Key) && !string.IsNullOrWhiteSpace(KeyFile))
        {
            throw new StartupException("Both Gatehouse:KeyRing:Key and Gatehouse:KeyRing:KeyFile are set: give the key-encryption key in one place only.");
        }

        return new KeyRingSettings
        {
            Keys = string.IsNullOrWhiteSpace(Key) ? null : Key,
            KeyFile = Path.GetFullPath(string.IsNullOrWhiteSpace(KeyFile) ? Path.Combine(dataDirectory, PrivateDataDirectory.KeyFileName) : KeyFile),
            CreateKeyFile = create,
        };
    }
}

/// <summary>
/// Opens the key ring before anything else uses it (registered right after the store's migration, before Data
/// Protection's own start-up service): loads or creates the key-encryption key, refuses to start when it cannot open
/// every encrypted key, and encrypts the keys that older versions stored unencrypted. It first reports what in the data
/// directory was made private while the host was built.
/// </summary>
internal sealed class KeyRingStartup(KeyRingKeySource keyRing, DataDirectoryModes modes, ILogger<KeyRingStartup> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var change in modes.Changes)
        {
            if (change.Error is { } error)
            {
                KeyRingLog.NotPrivate(logger, change.Path, ModeChange.Octal(change.Before), error);
            }
            else
            {
                KeyRingLog.MadePrivate(logger, change.Path, ModeChange.Octal(change.Before), ModeChange.Octal(change.After));
            }
        }

        KeyRingStatus status;
        try
        {
            status = keyRing.Prepare(reencrypt: true);
        }
        catch (KeyRingException e)
        {
            throw new StartupException(e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot read or write the Data Protection key ring: {e.Message}. Check that the account running Gatehouse owns the data directory and everything in it.");
        }

        if (status.CreatedKeyFile is { } created)
        {
            KeyRingLog.KeyFileCreated(logger, created, status.Keys.PrimaryFingerprint);
        }

        if (status.Reencrypted > 0)
        {
            KeyRingLog.Reencrypted(logger, status.Reencrypted, status.Keys.PrimaryFingerprint);
        }

        if (status.Encrypted > 0)
        {
            KeyRingLog.Opened(logger, status.Encrypted, status.Keys.PrimaryFingerprint, status.Keys.Source);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>What <see cref="PrivateDataDirectory.Prepare"/> changed while the host was built, logged at start.</summary>
internal sealed record DataDirectoryModes(IReadOnlyList<ModeChange> Changes);

/// <summary>Key ring and data directory messages (fingerprints and paths only, never a key).</summary>
internal static partial class KeyRingLog
{
    [LoggerMessage(ServerEventIds.KeyFileCreated, LogLevel.Warning, "Created the key-encryption key file {Path} (fingerprint {Fingerprint}). Back it up apart from the database: the stored host passwords, TOTP secrets and signing key cannot be read without it. Every node that shares this store needs the same file.")]
    public static partial void KeyFileCreated(ILogger logger, string path, string fingerprint);

    [LoggerMessage(ServerEventIds.KeyRingReencrypted, LogLevel.Warning, "Encrypted {Count} Data Protection key(s) with the key-encryption key {Fingerprint}: they were stored unencrypted (or under an older key-encryption key). Backups made before now still hold them that way.")]
    public static partial void Reencrypted(ILogger logger, int count, string fingerprint);

    [LoggerMessage(ServerEventIds.KeyRingOpened, LogLevel.Information, "Data Protection key ring: {Count} key(s), encrypted with the key-encryption key {Fingerprint} from {Source}.")]
    public static partial void Opened(ILogger logger, int count, string fingerprint, string source);

    [LoggerMessage(ServerEventIds.KeyFileMadePrivate, LogLevel.Warning, "{Path} was readable by other users (mode {Before}); it is now private to this account (mode {After}).")]
    public static partial void MadePrivate(ILogger logger, string path, string before, string after);

    [LoggerMessage(ServerEventIds.KeyFileNotPrivate, LogLevel.Warning, "{Path} is readable by other users (mode {Mode}) and could not be made private ({Error}): as its owner, run chmod go= on it.")]
    public static partial void NotPrivate(ILogger logger, string path, string mode, string error);
}
