namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// NTLM messages from [MS-NLMP] 4.2.4 (NTLMv2 with User/Domain/Password, server challenge 0123456789abcdef, client
/// challenge aa×8) and an AUTHENTICATE message with a MIC, channel bindings and a target name built from those inputs
/// (the same bytes Chromium's net/ntlm tests use).
/// </summary>
public static class NtlmCorpus
{
    /// <summary>A NEGOTIATE_MESSAGE with flags 0x00088207, no VERSION, empty domain and workstation.</summary>
    public static byte[] Negotiate => Hex.Bytes("4e544c4d53535000 01000000 07820800 0000 0000 20000000 0000 0000 20000000");

    /// <summary>[MS-NLMP] 4.2.4.3 CHALLENGE_MESSAGE: flags 0xe28a8233, TargetName "Server", TargetInfo Domain/Server.</summary>
    public static byte[] Challenge => Hex.Bytes(
        "4e544c4d53535000 02000000 0c000c00 38000000 33828ae2 0123456789abcdef 0000000000000000 24002400 44000000"
        + " 060070170000000f"
        + " 530065007200760065007200"
        + " 02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000");

    /// <summary>AUTHENTICATE_MESSAGE answering <see cref="Challenge"/> with a client timestamp, MIC, channel bindings and SPN HTTP/Server.</summary>
    public static byte[] Authenticate => Hex.Bytes(
        "4e544c4d53535000 03000000 18001800 58000000 8a008a00 70000000 0c000c00 fa000000 08000800 06010000 10001000 0e010000 00000000 58000000"
        + " 03820800 0000000000000000 f7361633f0ad9bdf4a7c421bc6b824a3"
        + " 000000000000000000000000000000000000000000000000"
        + " 8c0260dbef690662af9c42d50782d2ed 0101000000000000 800bc8fd00d4d201 aaaaaaaaaaaaaaaa 00000000"
        + " 02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 06000400 02000000"
        + " 0a001000 6586e99d81c2fc984e47172fd4dd0310 09001600 48005400540050002f00530065007200760065007200 00000000 00000000"
        + " 44006f006d00610069006e00 5500730065007200 43004f004d0050005500540045005200");

    /// <summary>The target information of <see cref="Challenge"/>.</summary>
    public static byte[] TargetInfo => Hex.Bytes("02000c00 44006f006d00610069006e00 01000c00 530065007200760065007200 00000000");
}
