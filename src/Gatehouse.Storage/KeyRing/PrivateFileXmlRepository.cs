using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Gatehouse.Storage.KeyRing;

/// <summary>A key ring store whose elements can be rewritten in place (to encrypt keys that were stored unencrypted).</summary>
public interface IRewritableXmlRepository : IXmlRepository
{
    /// <summary>
    /// Replaces every stored element for which <paramref name="rewrite"/> returns a new element (null keeps it); each
    /// replacement is atomic, so a reader sees the old element or the new one. Returns how many were replaced.
    /// </summary>
    int RewriteElements(Func<XElement, XElement?> rewrite);
}

/// <summary>
/// The key ring as XML files in one folder (one node with SQLite), the layout of Data Protection's
/// <c>FileSystemXmlRepository</c> (<c>*.xml</c>, one element each), but private: the folder is created 0700 and every
/// file is written 0600 through a temporary file and a rename.
/// </summary>
public sealed class PrivateFileXmlRepository : IRewritableXmlRepository
{
    private readonly string directory;

    /// <summary>Creates the repository over <paramref name="directory"/> (created on the first write).</summary>
    public PrivateFileXmlRepository(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        this.directory = Path.GetFullPath(directory);
    }

    /// <summary>The folder.</summary>
    public string Directory => directory;

    /// <inheritdoc/>
    public IReadOnlyCollection<XElement> GetAllElements() =>
        System.IO.Directory.Exists(directory) ? [.. Files().Select(Load)] : [];

    /// <inheritdoc/>
    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        CreateDirectory();
        var name = IsSafeFileName(friendlyName) && !File.Exists(PathOf(friendlyName)) ? friendlyName : Guid.NewGuid().ToString();
        Write(PathOf(name), element, replace: false);
    }

    /// <inheritdoc/>
    public int RewriteElements(Func<XElement, XElement?> rewrite)
    {
        ArgumentNullException.ThrowIfNull(rewrite);
        if (!System.IO.Directory.Exists(directory))
        {
            return 0;
        }

        var count = 0;
        foreach (var file in Files())
        {
            if (rewrite(Load(file)) is { } replacement)
            {
                Write(file, replacement, replace: true);
                count++;
            }
        }

        return count;
    }

    private List<string> Files() => System.IO.Directory.EnumerateFiles(directory, "*.xml", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal).ToList();

    private string PathOf(string name) => Path.Combine(directory, name + ".xml");

    private static XElement Load(string file)
    {
        using var stream = File.OpenRead(file);
        return XElement.Load(stream);
    }

    private void CreateDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private void Write(string path, XElement element, bool replace)
    {
        // A temporary name that GetAllElements ignores (not *.xml), renamed into place once complete.
        var temporary = Path.Combine(directory, Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temporary, options))
            {
                element.Save(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: replace);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Data Protection's rule for a friendly name that can be a file name.</summary>
    private static bool IsSafeFileName(string name) =>
        !string.IsNullOrEmpty(name) && name.All(c => c is '-' or '_' || char.IsAsciiLetterOrDigit(c));
}
