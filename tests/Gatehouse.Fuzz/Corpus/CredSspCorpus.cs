namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// CredSSP and SPNEGO messages encoded by hand from [MS-CSSP] 2.2.1 and [RFC 4178] 4.2 (annotated), carrying the
/// [MS-NLMP] 4.2.4 NTLM messages.
/// </summary>
public static class CredSspCorpus
{
    /// <summary>TSRequest v6 { negoTokens { [0] NEGOTIATE } } with a clientNonce of 32×0x11.</summary>
    public static byte[] NegotiateRequest => Hex.Bytes(
        "30 53"                                   // TSRequest SEQUENCE, 83 bytes
        + " a0 03 02 01 06"                       //   [0] version INTEGER 6
        + " a1 28 30 26 30 24 a0 22 04 20"        //   [1] negoTokens SEQUENCE OF SEQUENCE { [0] OCTET STRING (32) }
        + " 4e544c4d53535000 01000000 07820800 0000 0000 20000000 0000 0000 20000000"
        + " a5 22 04 20"                          //   [5] clientNonce OCTET STRING (32)
        + " 1111111111111111111111111111111111111111111111111111111111111111");

    /// <summary>TSRequest v6 { errorCode STATUS_LOGON_FAILURE (0xC000006D, as a negative INTEGER) }.</summary>
    public static byte[] LogonFailure => Hex.Bytes("30 0d a0 03 02 01 06 a4 06 02 04 c0 00 00 6d");

    /// <summary>TSCredentials { credType 1, TSPasswordCreds { "Domain", "User", "Password" } }.</summary>
    public static byte[] PasswordCredentials => Hex.Bytes(
        "30 3b a0 03 02 01 01 a1 34 04 32"        // TSCredentials { [0] credType 1, [1] credentials OCTET STRING (50) }
        + " 30 30"                                 //   TSPasswordCreds SEQUENCE (48)
        + " a0 0e 04 0c 44006f006d00610069006e00"  //     [0] domainName "Domain"
        + " a1 0a 04 08 5500730065007200"          //     [1] userName "User"
        + " a2 12 04 10 500061007300730077006f0072006400"); //     [2] password "Password"

    /// <summary>SPNEGO NegTokenInit (InitialContextToken) offering NTLM with the NEGOTIATE message as mechToken.</summary>
    public static byte[] NegTokenInit => Hex.Bytes(
        "60 40 06 06 2b0601050502"                // [APPLICATION 0] { thisMech 1.3.6.1.5.5.2
        + " a0 36 30 34"                          //   negTokenInit [0] SEQUENCE
        + " a0 0e 30 0c 06 0a 2b06010401823702020a" //   [0] mechTypes { 1.3.6.1.4.1.311.2.2.10 }
        + " a2 22 04 20 4e544c4d53535000 01000000 07820800 0000 0000 20000000 0000 0000 20000000"); // [2] mechToken

    /// <summary>SPNEGO NegTokenResp accept-incomplete, NTLM, with a responseToken.</summary>
    public static byte[] NegTokenResp => Hex.Bytes(
        "a1 1d 30 1b"                             // negTokenResp [1] SEQUENCE
        + " a0 03 0a 01 01"                       //   [0] negState accept-incomplete
        + " a1 0c 06 0a 2b06010401823702020a"     //   [1] supportedMech NTLM
        + " a2 06 04 04 01020304");               //   [2] responseToken
}
