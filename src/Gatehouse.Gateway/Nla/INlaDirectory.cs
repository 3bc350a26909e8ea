using System.Net;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.WebAccount;

namespace Gatehouse.Gateway.Nla;

/// <summary>A directory user as NLA sees it: who, and the NT hash that verifies NTLMv2 (null when none is stored).</summary>
public sealed record NlaAccount(Guid UserId, Guid TenantId, string UserPrincipalName, byte[]? NtHash)
{
    /// <summary>Never prints the hash.</summary>
    public override string ToString() => UserPrincipalName;
}

/// <summary>The outcome of an account check, in the terms the CredSSP answer needs.</summary>
public enum NlaAccountCheck
{
    /// <summary>The sign-in may go on.</summary>
    Ok = 0,

    /// <summary>Wrong password (or unknown user).</summary>
    LogonFailure,

    /// <summary>The account is disabled.</summary>
    Disabled,

    /// <summary>The password is temporary: the user must change it on the identity provider's page first.</summary>
    MustChangePassword,

    /// <summary>Smart lockout holds the account.</summary>
    LockedOut,
}

/// <summary>A registered host and how to reach it, known before the user is (the TLS sign-in opens the host leg first).</summary>
public sealed record PasswordHostLeg(Guid HostId, string HostName, BackendTarget Backend);

/// <summary>The answer to <see cref="INlaDirectory.FindHostLegAsync"/>: the host leg, or why there is none (for the sign-in log).</summary>
public sealed record HostLegLookup(PasswordHostLeg? Leg, string Reason, string? Fix = null)
{
    /// <summary>Why there is no leg (unknown host unless told otherwise).</summary>
    public SignIn.SignInFailure Failure { get; init; } = SignIn.SignInFailure.UnknownHost;

    /// <summary>True when the host is registered and reachable over a leg this sign-in can use.</summary>
    public bool Found => Leg is not null;
}

/// <summary>
/// The password sign-ins' view of the directory (NLA and TLS; Gatehouse.Identity implements it over its services, as
/// <see cref="IWebAccountDirectory"/>): the user and NT hash, the lockout-aware password checks, and the host leg of a TLS
/// sign-in. Authorisation is the session driver's (<see cref="SignIn.ISignInAuthorizer"/>).
/// </summary>
public interface INlaDirectory
{
    /// <summary>The user with that UPN, or null.</summary>
    Task<NlaAccount?> FindAccountAsync(string userPrincipalName, CancellationToken cancellationToken);

    /// <summary>The account's state before the password is known (disabled, locked, temporary password).</summary>
    Task<NlaAccountCheck> CheckStateAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken);

    /// <summary>Counts an NTLMv2 response that did not match toward smart lockout; returns LogonFailure or LockedOut.</summary>
    Task<NlaAccountCheck> RecordWrongProofAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken);

    /// <summary>The password from TSPasswordCreds through the identity provider's check (lockout, disabled, temporary).</summary>
    Task<NlaAccountCheck> CheckPasswordAsync(NlaAccount account, string password, IPAddress client, CancellationToken cancellationToken);

    /// <summary>
    /// For a user name that does not exist: the same password-hashing work as <see cref="CheckPasswordAsync"/>, so a
    /// plain-password sign-in (TLS) answers an unknown user as slowly as a known one.
    /// </summary>
    Task CheckUnknownUserPasswordAsync(string password, CancellationToken cancellationToken);

    /// <summary>
    /// The host named by <paramref name="hostLabel"/> and its backend, before any user is known (the TLS sign-in relays
    /// the host's MCS phase before the Client Info PDU carries the password); a host whose leg needs credentials first
    /// (backend NLA) is refused with the reason.
    /// </summary>
    Task<HostLegLookup> FindHostLegAsync(string hostLabel, CancellationToken cancellationToken);
}
