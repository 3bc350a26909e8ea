namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>Reads a PNG from disk for <see cref="PngDecoder"/>, refusing files over the size cap before reading them.</summary>
public static class PngFile
{
    /// <summary>Reads and decodes <paramref name="path"/>; false with the reason (including a file that cannot be read).</summary>
    public static bool TryLoad(string path, out PngImage? image, out PngError? error, PngLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        limits ??= PngLimits.Default;
        image = null;
        byte[] bytes;
        try
        {
            using var file = File.OpenRead(path);
            if (file.Length > limits.MaxFileBytes)
            {
                error = new PngError(PngErrorKind.FileTooLarge, $"{path}: {file.Length} bytes, more than {limits.MaxFileBytes}");
                return false;
            }

            bytes = new byte[file.Length];
            file.ReadExactly(bytes);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            error = new PngError(PngErrorKind.Unreadable, $"{path}: {exception.Message}");
            return false;
        }

        return PngDecoder.TryDecode(bytes, out image, out error, limits);
    }
}
