namespace Gatehouse.Protocol.Ntlm;

/// <summary>[MS-NLMP] 2.2.2.5 NEGOTIATE: the negotiate flags of every NTLM message. Unknown bits are kept.</summary>
[Flags]
public enum NtlmNegotiateFlags : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>NTLMSSP_NEGOTIATE_UNICODE (A): strings are UTF-16LE.</summary>
    Unicode = 0x00000001,

    /// <summary>NTLM_NEGOTIATE_OEM (B): strings are OEM (refused by Gatehouse).</summary>
    Oem = 0x00000002,

    /// <summary>NTLMSSP_REQUEST_TARGET (C).</summary>
    RequestTarget = 0x00000004,

    /// <summary>NTLMSSP_NEGOTIATE_SIGN (D).</summary>
    Sign = 0x00000010,

    /// <summary>NTLMSSP_NEGOTIATE_SEAL (E).</summary>
    Seal = 0x00000020,

    /// <summary>NTLMSSP_NEGOTIATE_DATAGRAM (F).</summary>
    Datagram = 0x00000040,

    /// <summary>NTLMSSP_NEGOTIATE_LM_KEY (G).</summary>
    LmKey = 0x00000080,

    /// <summary>NTLMSSP_NEGOTIATE_NTLM (H).</summary>
    Ntlm = 0x00000200,

    /// <summary>Anonymous connection (J).</summary>
    Anonymous = 0x00000800,

    /// <summary>NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED (K).</summary>
    OemDomainSupplied = 0x00001000,

    /// <summary>NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED (L).</summary>
    OemWorkstationSupplied = 0x00002000,

    /// <summary>NTLMSSP_NEGOTIATE_ALWAYS_SIGN (M).</summary>
    AlwaysSign = 0x00008000,

    /// <summary>NTLMSSP_TARGET_TYPE_DOMAIN (N).</summary>
    TargetTypeDomain = 0x00010000,

    /// <summary>NTLMSSP_TARGET_TYPE_SERVER (O).</summary>
    TargetTypeServer = 0x00020000,

    /// <summary>NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY (P).</summary>
    ExtendedSessionSecurity = 0x00080000,

    /// <summary>NTLMSSP_NEGOTIATE_IDENTIFY (Q).</summary>
    Identify = 0x00100000,

    /// <summary>NTLMSSP_REQUEST_NON_NT_SESSION_KEY (R).</summary>
    RequestNonNtSessionKey = 0x00400000,

    /// <summary>NTLMSSP_NEGOTIATE_TARGET_INFO (S).</summary>
    TargetInfo = 0x00800000,

    /// <summary>NTLMSSP_NEGOTIATE_VERSION (T): the 8-byte VERSION field is present.</summary>
    Version = 0x02000000,

    /// <summary>NTLMSSP_NEGOTIATE_128 (U).</summary>
    Negotiate128 = 0x20000000,

    /// <summary>NTLMSSP_NEGOTIATE_KEY_EXCH (V).</summary>
    KeyExchange = 0x40000000,

    /// <summary>NTLMSSP_NEGOTIATE_56 (W).</summary>
    Negotiate56 = 0x80000000,
}
