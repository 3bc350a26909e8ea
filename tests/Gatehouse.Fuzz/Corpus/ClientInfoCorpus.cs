namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// MCS domain PDU, Client Info, Set Error Info and Server Redirection vectors from [MS-RDPBCGR] section 4 and from
/// the FreeRDP 3.10.3 to xrdp capture (testdata/captures/freerdp3-xrdp-tls).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Security", "CA2105", Justification = "Test vectors.")]
public static class ClientInfoCorpus
{
    /// <summary>[MS-RDPBCGR] 4.1.5 Client MCS Erect Domain Request PDU (X.224 Data payload).</summary>
    public static readonly byte[] SpecErectDomain = Hex.Bytes("04 01 00 01 00 // erectDomainRequest, subHeight 0, subInterval 0");

    /// <summary>[MS-RDPBCGR] 4.1.6 Client MCS Attach User Request PDU.</summary>
    public static readonly byte[] SpecAttachUserRequest = Hex.Bytes("28 // attachUserRequest");

    /// <summary>[MS-RDPBCGR] 4.1.7 Server MCS Attach User Confirm PDU: result rt-successful, initiator 1007.</summary>
    public static readonly byte[] SpecAttachUserConfirm = Hex.Bytes("2e // attachUserConfirm, initiator present\n 00 // result\n 00 06 // initiator 1001 + 6");

    /// <summary>[MS-RDPBCGR] 4.1.8 Client MCS Channel Join Request PDU: initiator 1007, channelId 1007.</summary>
    public static readonly byte[] SpecChannelJoinRequest = Hex.Bytes("38 00 06 03 ef");

    /// <summary>[MS-RDPBCGR] 4.1.8 Server MCS Channel Join Confirm PDU: result 0, initiator 1007, requested 1007, channelId 1007.</summary>
    public static readonly byte[] SpecChannelJoinConfirm = Hex.Bytes("3e 00 00 06 03 ef 03 ef");

    /// <summary>MCS Disconnect Provider Ultimatum, rn-user-requested (as FreeRDP and Windows send it).</summary>
    public static readonly byte[] DisconnectUserRequested = Hex.Bytes("21 80");

    /// <summary>[MS-RDPBCGR] 4.1.10 Client Info PDU, the decrypted TS_INFO_PACKET (Unicode; NTDEV\eltons; extended info ends after performanceFlags).</summary>
    public static readonly byte[] SpecInfoPacket = Hex.Bytes("""
        09 04 09 04 b3 43 00 00 0a 00 0c 00 00 00 00 00 00 00 4e 00 54 00 44 00
        45 00 56 00 00 00 65 00 6c 00 74 00 6f 00 6e 00 73 00 00 00 00 00 00 00
        00 00 02 00 1e 00 31 00 35 00 37 00 2e 00 35 00 39 00 2e 00 32 00 34 00
        32 00 2e 00 31 00 35 00 36 00 00 00 84 00 43 00 3a 00 5c 00 64 00 65 00
        70 00 6f 00 74 00 73 00 5c 00 77 00 32 00 6b 00 33 00 5f 00 31 00 5c 00
        74 00 65 00 72 00 6d 00 73 00 72 00 76 00 5c 00 6e 00 65 00 77 00 63 00
        6c 00 69 00 65 00 6e 00 74 00 5c 00 6c 00 69 00 62 00 5c 00 77 00 69 00
        6e 00 33 00 32 00 5c 00 6f 00 62 00 6a 00 5c 00 69 00 33 00 38 00 36 00
        5c 00 6d 00 73 00 74 00 73 00 63 00 61 00 78 00 2e 00 64 00 6c 00 6c 00
        00 00 e0 01 00 00 50 00 61 00 63 00 69 00 66 00 69 00 63 00 20 00 53 00
        74 00 61 00 6e 00 64 00 61 00 72 00 64 00 20 00 54 00 69 00 6d 00 65 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        0a 00 00 00 05 00 02 00 00 00 00 00 00 00 00 00 00 00 50 00 61 00 63 00
        69 00 66 00 69 00 63 00 20 00 44 00 61 00 79 00 6c 00 69 00 67 00 68 00
        74 00 20 00 54 00 69 00 6d 00 65 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00 01 00 02 00 00 00 00 00
        00 00 c4 ff ff ff 00 00 00 00 01 00 00 00
        """);

    /// <summary>Captured c2s-002: Erect Domain Request frame.</summary>
    public static readonly byte[] CapturedErectDomain = Hex.Bytes("03 00 00 0c 02 f0 80 04 01 00 01 00");

    /// <summary>Captured c2s-003: Attach User Request frame.</summary>
    public static readonly byte[] CapturedAttachUserRequest = Hex.Bytes("03 00 00 08 02 f0 80 28");

    /// <summary>Captured s2c-002: Attach User Confirm frame (initiator 1008).</summary>
    public static readonly byte[] CapturedAttachUserConfirm = Hex.Bytes("03 00 00 0b 02 f0 80 2e 00 00 07");

    /// <summary>Captured c2s-004: Channel Join Request frame.</summary>
    public static readonly byte[] CapturedChannelJoinRequest = Hex.Bytes("03 00 00 0c 02 f0 80 38 00 07 03 f0");

    /// <summary>Captured s2c-003: Channel Join Confirm frame.</summary>
    public static readonly byte[] CapturedChannelJoinConfirm = Hex.Bytes("03 00 00 0f 02 f0 80 3e 00 00 07 03 f0 03 f0");

    /// <summary>Captured s2c-010: licensing error in a Send Data Indication frame.</summary>
    public static readonly byte[] CapturedLicenseError = Hex.Bytes("03 00 00 22 02 f0 80 68 00 07 03 eb 70 14 80 00 10 00 ff 02 10 00 07 00 00 00 02 00 00 00 28 14 00 00");

    /// <summary>Captured c2s-021: Send Data Request on channel 1007 with the 2-byte PER length form for 12 bytes.</summary>
    public static readonly byte[] CapturedSendDataLongForm = Hex.Bytes("03 00 00 1b 02 f0 80 64 00 07 03 ef 70 80 0c 04 00 00 00 03 00 00 00 50 00 02 00");

    /// <summary>Captured s2c-017: Send Data Indication on channel 1007.</summary>
    public static readonly byte[] CapturedSendDataIndication = Hex.Bytes("03 00 00 22 02 f0 80 68 00 07 03 ef 70 14 0c 00 00 00 03 00 00 00 50 00 02 00 00 00 00 00 00 00 00 00");

    /// <summary>Captured c2s-010: Client Info PDU frame (CONTOSO\rdpuser, flags 0x000b47fb, 373 bytes).</summary>
    public static readonly byte[] CapturedClientInfo = Hex.Bytes("""
        03 00 01 75 02 f0 80 64 00 07 03 eb 70 81 66 40 00 00 00 00 00 00 00 fb
        47 0b 00 0e 00 0e 00 1a 00 00 00 00 00 43 00 4f 00 4e 00 54 00 4f 00 53
        00 4f 00 00 00 72 00 64 00 70 00 75 00 73 00 65 00 72 00 00 00 52 00 64
        00 70 00 2d 00 50 00 61 00 73 00 73 00 2d 00 32 00 30 00 32 00 36 00 00
        00 00 00 00 00 02 00 14 00 31 00 32 00 37 00 2e 00 30 00 2e 00 30 00 2e
        00 31 00 00 00 40 00 43 00 3a 00 5c 00 57 00 69 00 6e 00 64 00 6f 00 77
        00 73 00 5c 00 53 00 79 00 73 00 74 00 65 00 6d 00 33 00 32 00 5c 00 6d
        00 73 00 74 00 73 00 63 00 61 00 78 00 2e 00 64 00 6c 00 6c 00 00 00 00
        00 00 00 43 00 6f 00 6f 00 72 00 64 00 69 00 6e 00 61 00 74 00 65 00 64
        00 20 00 55 00 6e 00 69 00 76 00 65 00 72 00 73 00 61 00 6c 00 20 00 54
        00 69 00 6d 00 65 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 43 00 6f 00 6f 00 72 00 64
        00 69 00 6e 00 61 00 74 00 65 00 64 00 20 00 55 00 6e 00 69 00 76 00 65
        00 72 00 73 00 61 00 6c 00 20 00 54 00 69 00 6d 00 65 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 80 01 00 00 00 00
        """);

    /// <summary>The captured Client Info with a 28-byte ARC_CS_PRIVATE_PACKET and the reserved1..dynamicDaylightTimeDisabled tail added.</summary>
    public static readonly byte[] ClientInfoWithCookie = Hex.Bytes("""
        03 00 01 99 02 f0 80 64 00 07 03 eb 70 81 8a 40 00 00 00 00 00 00 00 fb
        47 0b 00 0e 00 0e 00 1a 00 00 00 00 00 43 00 4f 00 4e 00 54 00 4f 00 53
        00 4f 00 00 00 72 00 64 00 70 00 75 00 73 00 65 00 72 00 00 00 52 00 64
        00 70 00 2d 00 50 00 61 00 73 00 73 00 2d 00 32 00 30 00 32 00 36 00 00
        00 00 00 00 00 02 00 14 00 31 00 32 00 37 00 2e 00 30 00 2e 00 30 00 2e
        00 31 00 00 00 40 00 43 00 3a 00 5c 00 57 00 69 00 6e 00 64 00 6f 00 77
        00 73 00 5c 00 53 00 79 00 73 00 74 00 65 00 6d 00 33 00 32 00 5c 00 6d
        00 73 00 74 00 73 00 63 00 61 00 78 00 2e 00 64 00 6c 00 6c 00 00 00 00
        00 00 00 43 00 6f 00 6f 00 72 00 64 00 69 00 6e 00 61 00 74 00 65 00 64
        00 20 00 55 00 6e 00 69 00 76 00 65 00 72 00 73 00 61 00 6c 00 20 00 54
        00 69 00 6d 00 65 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 43 00 6f 00 6f 00 72 00 64
        00 69 00 6e 00 61 00 74 00 65 00 64 00 20 00 55 00 6e 00 69 00 76 00 65
        00 72 00 73 00 61 00 6c 00 20 00 54 00 69 00 6d 00 65 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 80 01 00 00 1c 00 1c 00 00 00 01 00 00 00 07 00 00
        00 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 00 00 00 00 00 00 00
        00
        """);

    /// <summary>A minimal Client Info frame: no extended info, user "ab", 1-byte PER length.</summary>
    public static readonly byte[] MinimalClientInfo = Hex.Bytes("""
        03 00 00 32 02 f0 80 64 00 06 03 eb 70 24 40 00 00 00 09 04 00 00 33 00
        00 00 00 00 04 00 00 00 00 00 00 00 00 00 61 00 62 00 00 00 00 00 00 00
        00 00
        """);

    /// <summary>Set Error Info PDU (Send Data Indication user data): shareId 0x000103ea, ERRINFO_SERVER_DENIED_CONNECTION.</summary>
    public static readonly byte[] SetErrorInfo = Hex.Bytes("""
        16 00 17 00 ea 03 // share control: totalLength 22, PDUTYPE_DATAPDU | version 1, pduSource 1002
        ea 03 01 00 00 01 08 00 2f 00 00 00 // shareId, pad1, STREAM_LOW, uncompressedLength 8, SET_ERROR_INFO, not compressed
        07 00 00 00 // errorInfo ERRINFO_SERVER_DENIED_CONNECTION
        """);

    /// <summary>Enhanced security Server Redirection PDU (2.2.13.3.1): LB_LOAD_BALANCE_INFO with 4 bytes, pad1Octet.</summary>
    public static readonly byte[] EnhancedRedirection = Hex.Bytes("""
        1d 00 1a 00 ea 03 // share control: totalLength 29, PDUTYPE_SERVER_REDIR_PKT | version 1, pduSource 1002
        00 00 // pad2Octets
        00 04 14 00 // Flags SEC_REDIRECTION_PKT, Length 20
        05 00 00 00 // SessionId 5
        02 00 00 00 // RedirFlags LB_LOAD_BALANCE_INFO
        04 00 00 00 74 73 76 31 // LoadBalanceInfo "tsv1"
        00 // pad1Octet
        """);

    /// <summary>Standard security Server Redirection PDU (2.2.13.2): basic security header with SEC_REDIRECTION_PKT.</summary>
    public static readonly byte[] StandardRedirection = Hex.Bytes("""
        00 04 00 00 // securityHeader: SEC_REDIRECTION_PKT, flagsHi 0
        00 04 1e 00 // Flags SEC_REDIRECTION_PKT, Length 30
        01 00 00 00 // SessionId 1
        0c 00 00 00 // RedirFlags LB_USERNAME | LB_DOMAIN
        06 00 00 00 61 00 62 00 00 00 // UserName "ab"
        04 00 00 00 64 00 00 00 // Domain "d"
        """);
}
