namespace Gatehouse.Fuzz.Corpus;

/// <summary>MCS Connect Initial/Response frames captured from FreeRDP 3.10.3 and xrdp (testdata/captures/freerdp3-xrdp-tls).</summary>
public static class McsCorpus
{
    /// <summary>FreeRDP's Connect Initial, whole TPKT frame (467 bytes, serverSelectedProtocol = 1).</summary>
    public static byte[] ConnectInitialFrame => Capture("c2s-001-mcs-connect-initial.bin");

    /// <summary>xrdp's Connect Response, whole TPKT frame (109 bytes).</summary>
    public static byte[] ConnectResponseFrame => Capture("s2c-001-mcs-connect-response.bin");

    /// <summary>The Connect Initial without TPKT and X.224 Data (what the parser takes).</summary>
    public static byte[] ConnectInitial => ConnectInitialFrame[7..];

    /// <summary>The Connect Response without TPKT and X.224 Data.</summary>
    public static byte[] ConnectResponse => ConnectResponseFrame[7..];

    private static byte[] Capture(string name) =>
        File.ReadAllBytes(Path.Combine(RepoPaths.FindRoot() ?? throw new InvalidOperationException("Gatehouse.slnx not found."), "testdata", "captures", "freerdp3-xrdp-tls", name));
}
