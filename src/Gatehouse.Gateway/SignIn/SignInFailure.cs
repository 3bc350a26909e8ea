using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.Gateway.SignIn;

/// <summary>
/// Why a gateway sign-in failed: the one vocabulary of the gateway. Each value has a stable code, the first word of the
/// sign-in log's reason (<see cref="SignInFailures.Code"/>); each edge maps it once to what its client understands
/// (<see cref="SignInFailures.RdsAadResult"/>, <see cref="SignInFailures.NtStatus"/>, <see cref="SignInFailures.ErrorInfo"/>),
/// and <see cref="SignInFailures.UserMessage"/> gives the sentence the user sees. Protocol refusals with their own typed
/// vocabulary (<see cref="AssertionRefused"/>, <see cref="CredSspRefused"/>) keep that vocabulary's code as the prefix.
/// </summary>
public enum SignInFailure
{
    /// <summary><c>client_disconnected</c>: the client left before the gateway decided.</summary>
    ClientDisconnected,

    /// <summary><c>negotiation_refused</c>: the X.224 negotiation offered no sign-in method the gateway allows.</summary>
    NegotiationRefused,

    /// <summary><c>assertion_timeout</c>: no RDS AAD authentication request in time.</summary>
    AssertionTimeout,

    /// <summary><c>credssp_timeout</c>: no CredSSP message in time.</summary>
    CredSspTimeout,

    /// <summary><c>client_info_timeout</c>: no Client Info PDU in time.</summary>
    ClientInfoTimeout,

    /// <summary><c>malformed_request</c>: the RDS AAD authentication request is too large or badly terminated.</summary>
    MalformedRequest,

    /// <summary><c>malformed_connection_sequence</c>: a PDU before the Client Info PDU is not what it must be.</summary>
    MalformedConnectionSequence,

    /// <summary><c>malformed_client_info</c>: the Client Info PDU does not parse or cannot be rewritten.</summary>
    MalformedClientInfo,

    /// <summary><c>client_info_too_large</c>: a PDU before the session started is over its cap.</summary>
    ClientInfoTooLarge,

    /// <summary>The web-account assertion did not verify; the prefix is the <c>AssertionFailure</c>'s code.</summary>
    AssertionRefused,

    /// <summary>The CredSSP exchange failed as a protocol; the prefix is the <see cref="CredSspServerFailure"/>'s code.</summary>
    CredSspRefused,

    /// <summary><c>not_a_work_account</c>: the name typed is not a work account (DOMAIN\user, a bare name).</summary>
    NotAWorkAccount,

    /// <summary><c>no_password</c>: a TLS sign-in without a password.</summary>
    NoPassword,

    /// <summary><c>unknown_user</c>: no such user.</summary>
    UnknownUser,

    /// <summary><c>bad_password</c>: the password (or the NTLMv2 proof of it) is wrong.</summary>
    BadPassword,

    /// <summary><c>no_nt_hash</c>: the user has no NT hash for NTLMv2 yet.</summary>
    NoNtHash,

    /// <summary><c>locked_out</c>: smart lockout holds the account.</summary>
    LockedOut,

    /// <summary><c>user_disabled</c>: the account is disabled.</summary>
    UserDisabled,

    /// <summary><c>password_change_required</c>: the password is temporary.</summary>
    PasswordChangeRequired,

    /// <summary><c>unknown_host</c>: the client named no registered host (or an IP address).</summary>
    UnknownHost,

    /// <summary><c>backend_security_unsupported</c>: the host's registration does not allow this sign-in method.</summary>
    BackendSecurityUnsupported,

    /// <summary>The access engine refused: no role, or a Conditional Access policy blocks or needs another control.</summary>
    AccessDenied,

    /// <summary>The access engine refused: the user is disabled.</summary>
    AccessUserDisabled,

    /// <summary>The access engine refused: the password must be changed first.</summary>
    AccessPasswordChangeRequired,

    /// <summary>The access engine refused: the user does not exist (any more).</summary>
    AccessUnknownUser,

    /// <summary>The access engine refused for a reason the user cannot fix by signing in differently (unknown host, no mapped account, sign in again).</summary>
    AccessNotPossible,

    /// <summary><c>backend_*</c>: the host leg could not be opened; the prefix is the connector's.</summary>
    HostUnreachable,

    /// <summary><c>too_many_unauthenticated</c>: too many TLS sign-ins hold host legs to this host.</summary>
    TooManyUnauthenticated,

    /// <summary><c>host_closed</c> / <c>host_protocol</c>: the host failed during the relayed MCS phase.</summary>
    HostFailed,

    /// <summary><c>host_changed</c>: the host's registration changed while the client signed in.</summary>
    HostChanged,

    /// <summary><c>no_grant</c>: the authorisation allowed the sign-in but named no account.</summary>
    NoGrant,

    /// <summary><c>session_record_failed</c> / <c>start_cancelled</c>: the session's start record could not be written.</summary>
    SessionRecordFailed,

    /// <summary><c>decision_timeout</c>: the decision took longer than its deadline.</summary>
    DecisionTimeout,

    /// <summary><c>gateway_error</c>: the gateway failed.</summary>
    GatewayError,

    /// <summary><c>wrong_one_time_code</c>: the hold screen's one-time code was wrong too many times.</summary>
    WrongOneTimeCode,

    /// <summary><c>throttled</c>: more code attempts for the account than the per-account limit allows.</summary>
    Throttled,

    /// <summary><c>mfa_enrollment_required</c>: a policy requires MFA and the user has no authenticator app yet.</summary>
    MfaEnrollmentRequired,

    /// <summary><c>hold_timeout</c>: the user did not finish on the hold screen in time.</summary>
    HoldTimeout,

    /// <summary><c>handover_unavailable</c>: no routing token could be minted (the table is full).</summary>
    HandoverUnavailable,

    /// <summary><c>handover_unsupported</c>: the client does not follow a server redirection, so it cannot be handed over.</summary>
    HandoverUnsupported,

    /// <summary><c>handover_proof_failed</c>: a reconnect with a handover's routing token did not prove it is the held client (its Client Info PDU lacks the handover's user or secret).</summary>
    HandoverProofFailed,

    /// <summary><c>qr_sign_in_denied</c>: the user answered "no" to the QR sign-in's question, or the sign-in on the phone was refused.</summary>
    QrSignInDenied,

    /// <summary><c>qr_sign_in_unavailable</c>: no sign-in code could be issued for the QR sign-in (the identity provider refused or is down).</summary>
    QrSignInUnavailable,
}

/// <summary>A refused sign-in: the typed failure, the precise reason for the log, and what the user sees and should do.</summary>
/// <param name="Failure">The class of failure.</param>
/// <param name="Reason">The sign-in log's reason (<c>code: detail</c>).</param>
public sealed record SignInRefusal(SignInFailure Failure, string Reason)
{
    /// <summary>What the user sees, when it differs from <see cref="SignInFailures.UserMessage"/> (an access decision's own sentence).</summary>
    public string? UserMessage { get; init; }

    /// <summary>What to change, for the sign-in log.</summary>
    public string? Fix { get; init; }

    /// <summary>The sentence the user sees.</summary>
    public string? Message => UserMessage ?? SignInFailures.UserMessage(Failure);

    /// <summary>A refusal whose reason is <c>code: detail</c> with the failure's own code.</summary>
    public static SignInRefusal Of(SignInFailure failure, string detail) => new(failure, $"{SignInFailures.Code(failure)}: {detail}");
}

/// <summary>The tables of <see cref="SignInFailure"/>: its code, and what each edge says for it.</summary>
public static class SignInFailures
{
    /// <summary>The stable code: the first word of the sign-in log's reason.</summary>
    public static string Code(SignInFailure failure) => failure switch
    {
        SignInFailure.ClientDisconnected => "client_disconnected",
        SignInFailure.NegotiationRefused => "negotiation_refused",
        SignInFailure.AssertionTimeout => "assertion_timeout",
        SignInFailure.CredSspTimeout => "credssp_timeout",
        SignInFailure.ClientInfoTimeout => "client_info_timeout",
        SignInFailure.MalformedRequest => "malformed_request",
        SignInFailure.MalformedConnectionSequence => "malformed_connection_sequence",
        SignInFailure.MalformedClientInfo => "malformed_client_info",
        SignInFailure.ClientInfoTooLarge => "client_info_too_large",
        SignInFailure.AssertionRefused => "assertion_refused",
        SignInFailure.CredSspRefused => "credssp_refused",
        SignInFailure.NotAWorkAccount => "not_a_work_account",
        SignInFailure.NoPassword => "no_password",
        SignInFailure.UnknownUser => "unknown_user",
        SignInFailure.BadPassword => "bad_password",
        SignInFailure.NoNtHash => "no_nt_hash",
        SignInFailure.LockedOut => "locked_out",
        SignInFailure.UserDisabled => "user_disabled",
        SignInFailure.PasswordChangeRequired => "password_change_required",
        SignInFailure.UnknownHost => "unknown_host",
        SignInFailure.BackendSecurityUnsupported => "backend_security_unsupported",
        SignInFailure.AccessDenied or SignInFailure.AccessUserDisabled or SignInFailure.AccessPasswordChangeRequired
            or SignInFailure.AccessUnknownUser or SignInFailure.AccessNotPossible => "authorization",
        SignInFailure.HostUnreachable => "backend_unreachable",
        SignInFailure.TooManyUnauthenticated => "too_many_unauthenticated",
        SignInFailure.HostFailed => "host_closed",
        SignInFailure.HostChanged => "host_changed",
        SignInFailure.NoGrant => "no_grant",
        SignInFailure.SessionRecordFailed => "session_record_failed",
        SignInFailure.DecisionTimeout => "decision_timeout",
        SignInFailure.GatewayError => "gateway_error",
        SignInFailure.WrongOneTimeCode => "wrong_one_time_code",
        SignInFailure.Throttled => "throttled",
        SignInFailure.MfaEnrollmentRequired => "mfa_enrollment_required",
        SignInFailure.HoldTimeout => "hold_timeout",
        SignInFailure.HandoverUnavailable => "handover_unavailable",
        SignInFailure.HandoverUnsupported => "handover_unsupported",
        SignInFailure.HandoverProofFailed => "handover_proof_failed",
        SignInFailure.QrSignInDenied => "qr_sign_in_denied",
        SignInFailure.QrSignInUnavailable => "qr_sign_in_unavailable",
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, null),
    };

    /// <summary>True for the access engine's refusals (their reason is the engine's own).</summary>
    public static bool IsAccessRefusal(SignInFailure failure) =>
        failure is SignInFailure.AccessDenied or SignInFailure.AccessUserDisabled or SignInFailure.AccessPasswordChangeRequired
            or SignInFailure.AccessUnknownUser or SignInFailure.AccessNotPossible;

    /// <summary>The RDS AAD Auth Result code a web-account client is sent ([MS-RDPBCGR] 2.2.17.2).</summary>
    public static int RdsAadResult(SignInFailure failure) => failure switch
    {
        SignInFailure.AccessDenied => RdsAadAuthResult.AccessDenied,
        SignInFailure.AccessUserDisabled or SignInFailure.UserDisabled => RdsAadAuthResult.AccountDisabled,
        SignInFailure.AccessPasswordChangeRequired or SignInFailure.PasswordChangeRequired => RdsAadAuthResult.PasswordExpired,
        SignInFailure.AccessUnknownUser or SignInFailure.AccessNotPossible or SignInFailure.UnknownUser => RdsAadAuthResult.LogonFailure,
        SignInFailure.HostUnreachable or SignInFailure.HostFailed or SignInFailure.HostChanged or SignInFailure.SessionRecordFailed
            or SignInFailure.DecisionTimeout or SignInFailure.GatewayError or SignInFailure.NoGrant or SignInFailure.TooManyUnauthenticated
            or SignInFailure.BackendSecurityUnsupported => RdsAadAuthResult.NoLogonServers,
        _ => RdsAadAuthResult.InvalidToken,
    };

    /// <summary>The NTSTATUS an NLA client is sent in the CredSSP errorCode ([MS-CSSP] 2.2.1).</summary>
    public static uint NtStatus(SignInFailure failure) => failure switch
    {
        SignInFailure.NotAWorkAccount or SignInFailure.UnknownUser or SignInFailure.BadPassword or SignInFailure.NoNtHash
            or SignInFailure.NoPassword or SignInFailure.AccessUnknownUser => Protocol.CredSsp.NtStatus.LogonFailure,
        SignInFailure.LockedOut => Protocol.CredSsp.NtStatus.AccountLockedOut,
        SignInFailure.UserDisabled or SignInFailure.AccessUserDisabled => Protocol.CredSsp.NtStatus.AccountDisabled,
        SignInFailure.PasswordChangeRequired or SignInFailure.AccessPasswordChangeRequired => Protocol.CredSsp.NtStatus.PasswordMustChange,
        SignInFailure.AccessDenied or SignInFailure.AccessNotPossible or SignInFailure.UnknownHost => Protocol.CredSsp.NtStatus.AccessDenied,
        SignInFailure.MalformedRequest or SignInFailure.CredSspRefused or SignInFailure.AssertionRefused => Protocol.CredSsp.NtStatus.InvalidToken,
        _ => Protocol.CredSsp.NtStatus.NoLogonServers,
    };

    /// <summary>The Set Error Info code a TLS client is sent after the Client Info PDU ([MS-RDPBCGR] 2.2.5.1.1).</summary>
    public static ErrorInfoCode ErrorInfo(SignInFailure failure) => failure switch
    {
        _ when IsAccessRefusal(failure) => ErrorInfoCode.ServerInsufficientPrivileges,
        SignInFailure.HoldTimeout => ErrorInfoCode.LogonTimeout,
        _ => ErrorInfoCode.ServerDeniedConnection,
    };

    /// <summary>The sentence the user sees (null when the client shows its own).</summary>
    public static string? UserMessage(SignInFailure failure) => failure switch
    {
        SignInFailure.UnknownUser or SignInFailure.BadPassword or SignInFailure.NoNtHash or SignInFailure.NoPassword
            or SignInFailure.AssertionRefused or SignInFailure.HandoverProofFailed => SignInMessages.CredentialsDidNotWork,
        SignInFailure.NotAWorkAccount => SignInMessages.NotAWorkAccount,
        SignInFailure.LockedOut => SignInMessages.AccountLocked,
        SignInFailure.UserDisabled => SignInMessages.AccountDisabled,
        SignInFailure.PasswordChangeRequired => SignInMessages.MustChangePassword,
        SignInFailure.UnknownHost => SignInMessages.UseHostName,
        SignInFailure.HostUnreachable or SignInFailure.HostFailed or SignInFailure.TooManyUnauthenticated or SignInFailure.SessionRecordFailed
            or SignInFailure.DecisionTimeout or SignInFailure.BackendSecurityUnsupported or SignInFailure.HandoverUnavailable
            or SignInFailure.QrSignInUnavailable => SignInMessages.HostUnreachable,
        SignInFailure.HandoverUnsupported => SignInMessages.HandoverUnsupported,
        SignInFailure.QrSignInDenied => SignInMessages.QrSignInDenied,
        SignInFailure.WrongOneTimeCode => SignInMessages.WrongOneTimeCode,
        SignInFailure.Throttled => SignInMessages.TooManyAttempts,
        SignInFailure.MfaEnrollmentRequired => SignInMessages.MfaEnrollmentRequired,
        SignInFailure.HoldTimeout => SignInMessages.HoldTimeout,
        _ => null,
    };

    /// <summary>The gateway's failure for a CredSSP server refusal (the directory's answers keep their meaning).</summary>
    public static SignInFailure FromCredSsp(CredSspServerFailure failure) => failure switch
    {
        CredSspServerFailure.NotAWorkAccount => SignInFailure.NotAWorkAccount,
        CredSspServerFailure.UnknownUser => SignInFailure.UnknownUser,
        CredSspServerFailure.NoNtHash => SignInFailure.NoNtHash,
        CredSspServerFailure.BadPassword => SignInFailure.BadPassword,
        CredSspServerFailure.LockedOut => SignInFailure.LockedOut,
        CredSspServerFailure.UserDisabled => SignInFailure.UserDisabled,
        CredSspServerFailure.PasswordChangeRequired => SignInFailure.PasswordChangeRequired,
        _ => SignInFailure.CredSspRefused,
    };
}
