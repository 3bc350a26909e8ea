namespace Gatehouse.Fuzz.Corpus;

/// <summary>Preconnection PDUs built from [MS-RDPEPS] 2.2.1.1/2.2.1.2, and fast-path PDUs captured from FreeRDP 3 and xrdp.</summary>
public static class FramingCorpus
{
    /// <summary>V1: cbSize 16, Flags 0, Version 1, Id 42.</summary>
    public static byte[] PreconnectionV1 => Hex.Bytes("10000000 00000000 01000000 2a000000");

    /// <summary>V2: cbSize 28, Flags 0, Version 2, Id 0, cchPCB 5, wszPCB "vm1:" + NUL.</summary>
    public static byte[] PreconnectionV2 => Hex.Bytes("1c000000 00000000 02000000 00000000 0500 7600 6d00 3100 3a00 0000");

    /// <summary>Client fast-path input, 2-byte length form for 8 bytes (capture c2s-017).</summary>
    public static byte[] FastPathInput => Hex.Bytes("0c80 0801 0f60 010f");

    /// <summary>Server fast-path update, 2-byte length form for 7 bytes (capture s2c-016).</summary>
    public static byte[] FastPathUpdate => Hex.Bytes("0080 0783 0000 00");

    /// <summary>A fast-path PDU with the 1-byte length form.</summary>
    public static byte[] FastPathShort => Hex.Bytes("04 06 01 02 03 04");
}
