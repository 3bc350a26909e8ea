namespace Gatehouse.Protocol.CredSsp;

/// <summary>
/// Why a <see cref="CredSspServer"/> exchange was refused. Each value has a stable code (<see cref="CredSspServerError.Code"/>,
/// the first word of the sign-in log's reason) and the NTSTATUS the client is sent in <c>TSRequest.errorCode</c>
/// (<see cref="CredSspServer.DefaultStatus"/>). The machine detects the protocol failures itself; the directory's
/// answers (unknown user, lockout, disabled account…) are given to it by the driver through <see cref="CredSspServer.Refuse"/>.
/// </summary>
public enum CredSspServerFailure
{
    /// <summary><c>malformed_tsrequest</c>: a TSRequest that does not parse, is too large, or carries the client's errorCode (SEC_E_INVALID_TOKEN).</summary>
    MalformedTsRequest,

    /// <summary><c>malformed_negotiate</c>: the first negoToken is not an NTLM NEGOTIATE, raw or in a SPNEGO NegTokenInit offering NTLM (SEC_E_INVALID_TOKEN).</summary>
    MalformedNegotiate,

    /// <summary><c>ntlm_flags</c>: the NEGOTIATE lacks NTLMv2 with extended session security, signing, sealing or Unicode (SEC_E_UNSUPPORTED_FUNCTION).</summary>
    NtlmFlags,

    /// <summary><c>version_changed</c>: a later TSRequest names another CredSSP version than the first (SEC_E_INVALID_TOKEN).</summary>
    VersionChanged,

    /// <summary><c>malformed_authenticate</c>: the second TSRequest is not an NTLM AUTHENTICATE in the exchange's form with pubKeyAuth (SEC_E_INVALID_TOKEN).</summary>
    MalformedAuthenticate,

    /// <summary><c>bad_client_nonce</c>: a CredSSP 5+ client did not repeat its 32-byte clientNonce with pubKeyAuth (SEC_E_INVALID_TOKEN).</summary>
    BadClientNonce,

    /// <summary><c>not_a_work_account</c>: the NTLM user name is not one of the accepted forms (STATUS_LOGON_FAILURE); given by the driver.</summary>
    NotAWorkAccount,

    /// <summary><c>unknown_user</c>: the directory has no such user (STATUS_LOGON_FAILURE); given by the driver.</summary>
    UnknownUser,

    /// <summary><c>no_nt_hash</c>: the user has no NT hash to verify NTLMv2 with (STATUS_LOGON_FAILURE); given by the driver.</summary>
    NoNtHash,

    /// <summary><c>bad_password</c>: the NTLMv2 response or the TSPasswordCreds password is wrong (STATUS_LOGON_FAILURE); given by the driver.</summary>
    BadPassword,

    /// <summary><c>locked_out</c>: smart lockout holds the account (STATUS_ACCOUNT_LOCKED_OUT); given by the driver.</summary>
    LockedOut,

    /// <summary><c>bad_mic</c>: the AUTHENTICATE message's MIC does not cover NEGOTIATE, CHALLENGE and AUTHENTICATE (SEC_E_MESSAGE_ALTERED).</summary>
    BadMic,

    /// <summary><c>bad_mech_list_mic</c>: the client's SPNEGO mechListMIC does not verify (SEC_E_MESSAGE_ALTERED).</summary>
    BadMechListMic,

    /// <summary><c>bad_pub_key_auth</c>: pubKeyAuth's signature does not verify, or it binds another TLS key: a man in the middle (SEC_E_MESSAGE_ALTERED).</summary>
    BadPubKeyAuth,

    /// <summary><c>user_disabled</c>: the account is disabled (STATUS_ACCOUNT_DISABLED); given by the driver.</summary>
    UserDisabled,

    /// <summary><c>password_change_required</c>: the password is temporary (STATUS_PASSWORD_MUST_CHANGE); given by the driver.</summary>
    PasswordChangeRequired,

    /// <summary><c>malformed_credentials</c>: the last TSRequest has no authInfo, or its TSCredentials do not parse (SEC_E_INVALID_TOKEN; SEC_E_UNSUPPORTED_FUNCTION for credential types other than a password).</summary>
    MalformedCredentials,

    /// <summary><c>bad_auth_info</c>: authInfo's signature does not verify (SEC_E_MESSAGE_ALTERED).</summary>
    BadAuthInfo,

    /// <summary><c>credentials_mismatch</c>: TSPasswordCreds name another user than the NTLM AUTHENTICATE (STATUS_LOGON_FAILURE).</summary>
    CredentialsMismatch,
}

/// <summary>A typed CredSSP server refusal: what went wrong, the NTSTATUS sent to the client, and the detail for the log.</summary>
/// <param name="Kind">The class of refusal.</param>
/// <param name="Status">The NTSTATUS in the errorCode TSRequest sent to the client.</param>
/// <param name="Detail">What happened, as a lowercase sentence fragment (never a password).</param>
public sealed record CredSspServerError(CredSspServerFailure Kind, uint Status, string Detail)
{
    /// <summary>The stable code of <see cref="Kind"/> (<c>malformed_negotiate</c>, <c>bad_mic</c>…).</summary>
    public string Code => CredSspServer.Code(Kind);

    /// <summary>The sign-in log's reason: <c>code: detail</c>.</summary>
    public string Reason => $"{Code}: {Detail}";

    /// <inheritdoc />
    public override string ToString() => $"{Reason} (0x{Status:X8})";
}
