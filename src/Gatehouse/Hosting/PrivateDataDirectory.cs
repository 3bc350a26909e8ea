using Microsoft.Data.Sqlite;

namespace Gatehouse.Hosting;

/// <summary>
/// The data directory is readable by the account that runs Gatehouse only: the directory and its folders are 0700,
/// the files Gatehouse writes into it 0600. SQLite creates <c>-wal</c> and <c>-shm</c> with the database file's mode, so
/// the database file is created 0600 before SQLite opens it. Folders and files from older versions (0755 and 0644) are
/// made private at start. The key-encryption key file is left alone: a readable one is refused, not silently fixed
/// (<see cref="Gatehouse.Storage.KeyRing.KeyRingKeySource"/>).
/// </summary>
internal static class PrivateDataDirectory
{
    /// <summary>The SQLite database file in the data directory.</summary>
    public const string DatabaseFileName = "gatehouse.db";

    /// <summary>The Data Protection key ring folder (SQLite).</summary>
    public const string KeysFolderName = "keys";

    /// <summary>The default key-encryption key file in the data directory.</summary>
    public const string KeyFileName = "keyring.kek";

    private const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode NotOwner = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>
    /// Creates <paramref name="directory"/> (0700) or makes it and what Gatehouse keeps in it private. Returns what was
    /// made private and what could not be (to log once the host has a logger).
    /// </summary>
    public static IReadOnlyList<ModeChange> Prepare(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return [];
        }

        var changes = new List<ModeChange>();
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, FolderMode);
        }

        Restrict(directory, changes);
        foreach (var suffix in new[] { "", "-wal", "-shm", "-journal" })
        {
            Restrict(Path.Combine(directory, DatabaseFileName + suffix), changes);
        }

        foreach (var folder in new[] { KeysFolderName, TlsCertificates.FolderName })
        {
            var path = Path.Combine(directory, folder);
            if (Directory.Exists(path))
            {
                Restrict(path, changes);
                foreach (var file in Directory.EnumerateFiles(path))
                {
                    Restrict(file, changes);
                }
            }
        }

        return changes;
    }

    /// <summary>
    /// Creates the SQLite database file 0600 and in WAL mode (what EF Core does for a new database, which it then no
    /// longer does because the file exists), so that SQLite's <c>-wal</c> and <c>-shm</c> files are 0600 too.
    /// </summary>
    public static void CreateDatabase(string path)
    {
        if (File.Exists(path))
        {
            return;
        }

        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFileMode;
        }

        try
        {
            using (new FileStream(path, options))
            {
            }
        }
        catch (IOException) when (File.Exists(path))
        {
            // Created by another process meanwhile; it sets its own journal mode.
            return;
        }

        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = 'wal';";
        command.ExecuteNonQuery();
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Restrict(string path, List<ModeChange> changes)
    {
        UnixFileMode current;
        try
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                return;
            }

            current = File.GetUnixFileMode(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        if ((current & NotOwner) == 0)
        {
            return;
        }

        try
        {
            File.SetUnixFileMode(path, current & ~NotOwner);
            changes.Add(new ModeChange(path, current, current & ~NotOwner, null));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            changes.Add(new ModeChange(path, current, current, e.Message));
        }
    }
}

/// <summary>A file or folder of the data directory whose mode was made private (or could not be: <see cref="Error"/>).</summary>
internal sealed record ModeChange(string Path, UnixFileMode Before, UnixFileMode After, string? Error)
{
    public static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}
