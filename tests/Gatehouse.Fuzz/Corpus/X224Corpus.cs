namespace Gatehouse.Fuzz.Corpus;

/// <summary>Connection-initiation vectors from the specification and from real peers.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2105", Justification = "Test vectors.")]
public static class X224Corpus
{
    /// <summary>[MS-RDPBCGR] 4.1.1 Client X.224 Connection Request PDU.</summary>
    public static readonly byte[] SpecConnectionRequest = Hex.Bytes("""
        03 00 00 2c             // TPKT: version 3, length 44
        27                      // LI = 39
        e0                      // CR-CDT
        00 00                   // DST-REF
        00 00                   // SRC-REF
        00                      // class option
        43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 65 6c 74 6f 6e 73 0d 0a // Cookie: mstshash=eltons\r\n
        01 00 08 00 00 00 00 00 // RDP_NEG_REQ: flags 0, length 8, PROTOCOL_RDP
        """);

    /// <summary>FreeRDP 3.10.3 <c>/sec:aad</c>, recorded in freerdp-aad-client.md §1.</summary>
    public static readonly byte[] FreeRdpAadConnectionRequest = Hex.Bytes("""
        03 00 00 2a 25 e0 00 00 00 00 00
        43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 72 6f 6f 74 0d 0a // Cookie: mstshash=root\r\n
        01 00 08 00 10 00 00 00 // RDP_NEG_REQ: PROTOCOL_RDSAAD
        """);

    /// <summary>[MS-RDPBCGR] 4.1.2 shape: a Connection Confirm selecting PROTOCOL_HYBRID (Windows Server 2008).</summary>
    public static readonly byte[] ConfirmHybrid = Hex.Bytes("03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 02 00 00 00");

    /// <summary>Windows 7 / Server 2008 R2: RDP_NEG_RSP flags EXTENDED_CLIENT_DATA_SUPPORTED | RESTRICTED_ADMIN_MODE_SUPPORTED.</summary>
    public static readonly byte[] ConfirmWindows7 = Hex.Bytes("03 00 00 13 0e d0 00 00 12 34 00 02 09 08 00 02 00 00 00");

    /// <summary>Windows Server 2003: RDP_NEG_FAILURE SSL_NOT_ALLOWED_BY_SERVER.</summary>
    public static readonly byte[] ConfirmFailure = Hex.Bytes("03 00 00 13 0e d0 00 00 12 34 00 03 00 08 00 02 00 00 00");

    /// <summary>Windows 2000: no negotiation data at all.</summary>
    public static readonly byte[] ConfirmNoNegotiation = Hex.Bytes("03 00 00 0b 06 d0 00 00 12 34 00");

    /// <summary>A request with a routing token, RDP_NEG_REQ with CORRELATION_INFO_PRESENT, and the correlation info.</summary>
    public static readonly byte[] RoutingTokenWithCorrelation = Hex.Bytes("""
        03 00 00 49 44 e0 00 00 00 00 00
        43 6f 6f 6b 69 65 3a 20 6d 73 74 73 3d 76 6d 31 0d 0a // Cookie: msts=vm1\r\n
        01 08 08 00 0b 00 00 00 // RDP_NEG_REQ: CORRELATION_INFO_PRESENT, SSL | HYBRID | HYBRID_EX
        06 00 24 00             // RDP_NEG_CORRELATION_INFO: type, flags, length 36
        01 02 03 04 05 06 07 08 09 0a 0b 0c 0e 0f 10 11 // correlationId
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 // reserved
        """);

    /// <summary>An X.224 Disconnect Request, reason 0.</summary>
    public static readonly byte[] Disconnect = Hex.Bytes("03 00 00 0b 06 80 00 00 00 00 00");
}
