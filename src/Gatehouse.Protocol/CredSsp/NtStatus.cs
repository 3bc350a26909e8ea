namespace Gatehouse.Protocol.CredSsp;

/// <summary>
/// The NTSTATUS and SSPI values a CredSSP server puts in <c>TSRequest.errorCode</c> ([MS-CSSP] 2.2.1, [MS-ERREF] 2.3),
/// and the [MS-RDPBCGR] 2.2.10.2 Early User Authorization Result values of HYBRID_EX.
/// </summary>
public static class NtStatus
{
    /// <summary>STATUS_ACCESS_DENIED.</summary>
    public const uint AccessDenied = 0xC0000022;

    /// <summary>STATUS_NO_LOGON_SERVERS (the host cannot be reached).</summary>
    public const uint NoLogonServers = 0xC000005E;

    /// <summary>STATUS_LOGON_FAILURE (unknown user or wrong password).</summary>
    public const uint LogonFailure = 0xC000006D;

    /// <summary>STATUS_ACCOUNT_DISABLED.</summary>
    public const uint AccountDisabled = 0xC0000072;

    /// <summary>STATUS_PASSWORD_MUST_CHANGE.</summary>
    public const uint PasswordMustChange = 0xC0000224;

    /// <summary>STATUS_ACCOUNT_LOCKED_OUT.</summary>
    public const uint AccountLockedOut = 0xC0000234;

    /// <summary>SEC_E_INVALID_TOKEN (a malformed CredSSP, SPNEGO or NTLM message).</summary>
    public const uint InvalidToken = 0x80090308;

    /// <summary>SEC_E_MESSAGE_ALTERED (the public-key binding or a signature does not match).</summary>
    public const uint MessageAltered = 0x8009030F;

    /// <summary>SEC_E_UNSUPPORTED_FUNCTION (an NTLM variant or credential type Gatehouse does not accept).</summary>
    public const uint UnsupportedFunction = 0x80090302;

    /// <summary>Early User Authorization Result AUTHZ_SUCCESS.</summary>
    public const uint AuthzSuccess = 0x00000000;

    /// <summary>Early User Authorization Result AUTHZ_ACCESS_DENIED.</summary>
    public const uint AuthzAccessDenied = 0x00000005;
}
