using Gatehouse.Fuzz;

namespace Gatehouse.Protocol.Tests.Captures;

/// <summary>Frames recorded from real peers (testdata/captures/, see its README).</summary>
internal static class Captured
{
    public static byte[] FreeRdpToXrdp(string fileName) =>
        File.ReadAllBytes(Path.Combine(RepoPaths.FindRoot()!, "testdata", "captures", "freerdp3-xrdp-tls", fileName));
}
