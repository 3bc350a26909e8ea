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

    /// <summary>[MS-RDPBCGR] 4.1.3 Client MCS Connect Initial PDU with GCC Conference Create Request (whole TPKT frame).</summary>
    public static byte[] SpecConnectInitialFrame => Hex.Bytes("""
        03 00 01 a0 02 f0 80 7f 65 82 01 94 04 01 01 04 01 01 01 01 ff 30 19 02 01 22 02 01 02 02 01 00
        02 01 01 02 01 00 02 01 01 02 02 ff ff 02 01 02 30 19 02 01 01 02 01 01 02 01 01 02 01 01 02 01
        00 02 01 01 02 02 04 20 02 01 02 30 1c 02 02 ff ff 02 02 fc 17 02 02 ff ff 02 01 01 02 01 00 02
        01 01 02 02 ff ff 02 01 02 04 82 01 33 00 05 00 14 7c 00 01 81 2a 00 08 00 10 00 01 c0 00 44 75
        63 61 81 1c 01 c0 d8 00 04 00 08 00 00 05 00 04 01 ca 03 aa 09 04 00 00 ce 0e 00 00 45 00 4c 00
        54 00 4f 00 4e 00 53 00 2d 00 44 00 45 00 56 00 32 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00
        00 00 00 00 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 01 ca 01 00 00 00 00 00 18 00 07 00 01 00 36 00 39 00 37 00 31 00 32 00
        2d 00 37 00 38 00 33 00 2d 00 30 00 33 00 35 00 37 00 39 00 37 00 34 00 2d 00 34 00 32 00 37 00
        31 00 34 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 c0 0c 00
        0d 00 00 00 00 00 00 00 02 c0 0c 00 1b 00 00 00 00 00 00 00 03 c0 2c 00 03 00 00 00 72 64 70 64
        72 00 00 00 00 00 80 80 63 6c 69 70 72 64 72 00 00 00 a0 c0 72 64 70 73 6e 64 00 00 00 00 00 c0
        """);

    private static byte[] Capture(string name) =>
        File.ReadAllBytes(Path.Combine(RepoPaths.FindRoot() ?? throw new InvalidOperationException("Gatehouse.slnx not found."), "testdata", "captures", "freerdp3-xrdp-tls", name));
}
