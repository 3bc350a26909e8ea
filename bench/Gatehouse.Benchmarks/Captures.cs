namespace Gatehouse.Benchmarks;

/// <summary>Loads the frames recorded from real peers (testdata/captures).</summary>
internal static class Captures
{
    public static byte[] Load(string fileName)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "testdata", "captures", "freerdp3-xrdp-tls", fileName);
            if (File.Exists(path))
            {
                return File.ReadAllBytes(path);
            }
        }

        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "testdata", "captures", "freerdp3-xrdp-tls", fileName);
            if (File.Exists(path))
            {
                return File.ReadAllBytes(path);
            }
        }

        throw new FileNotFoundException($"testdata/captures/freerdp3-xrdp-tls/{fileName} not found above {AppContext.BaseDirectory}");
    }
}
