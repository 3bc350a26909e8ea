using System.Net;
using Gatehouse.Access;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// The password sign-ins' view of the identity provider, in process: users and their NT hashes (decrypted only here),
/// the password checks with smart lockout, and the host leg of a TLS sign-in (authorisation is
/// <see cref="AccessSignInAuthorizer"/>'s).
/// </summary>
public sealed class IdentityNlaDirectory(IServiceScopeFactory scopes, TimeProvider time, HostKeyTrust hostKeys) : INlaDirectory
{
    /// <inheritdoc/>
    public async Task<NlaAccount?> FindAccountAsync(string userPrincipalName, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var user = await directory.FindUserByUpnAsync(userPrincipalName, cancellationToken).ConfigureAwait(false);
        return user is null ? null : new NlaAccount(user.Id, user.TenantId, user.UserPrincipalName, directory.RevealNtHash(user));
    }

    /// <inheritdoc/>
    public async Task<NlaAccountCheck> CheckStateAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        await using var scope = scopes.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserAsync(account.UserId, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return NlaAccountCheck.LogonFailure;
        }

        if (!user.Enabled)
        {
            return NlaAccountCheck.Disabled;
        }

        var locked = await scope.ServiceProvider.GetRequiredService<SignInService>().GetLockedUntilAsync(user, client, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        return locked is not null ? NlaAccountCheck.LockedOut : user.MustChangePassword ? NlaAccountCheck.MustChangePassword : NlaAccountCheck.Ok;
    }

    /// <inheritdoc/>
    public async Task<NlaAccountCheck> RecordWrongProofAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        await using var scope = scopes.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserAsync(account.UserId, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return NlaAccountCheck.LogonFailure;
        }

        var check = await scope.ServiceProvider.GetRequiredService<SignInService>().RecordWrongProofAsync(user, client, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        return check.Result == PasswordCheckResult.Locked ? NlaAccountCheck.LockedOut : NlaAccountCheck.LogonFailure;
    }

    /// <inheritdoc/>
    public async Task CheckUnknownUserPasswordAsync(string password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(password);
        await using var scope = scopes.CreateAsyncScope();
        var signIn = scope.ServiceProvider.GetRequiredService<SignInService>();

        // PBKDF2 is CPU work: off the caller's thread like the real check's database and hashing work.
        await Task.Run(() => signIn.CheckUnknownUser(password), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<NlaAccountCheck> CheckPasswordAsync(NlaAccount account, string password, IPAddress client, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(account);
        await using var scope = scopes.CreateAsyncScope();
        var user = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserAsync(account.UserId, cancellationToken).ConfigureAwait(false);
        if (user is null)
        {
            return NlaAccountCheck.LogonFailure;
        }

        var check = await scope.ServiceProvider.GetRequiredService<SignInService>().CheckPasswordAsync(user, password, client, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        return check.Result switch
        {
            PasswordCheckResult.Success => NlaAccountCheck.Ok,
            PasswordCheckResult.Disabled => NlaAccountCheck.Disabled,
            PasswordCheckResult.Locked => NlaAccountCheck.LockedOut,
            PasswordCheckResult.MustChangePassword => NlaAccountCheck.MustChangePassword,
            _ => NlaAccountCheck.LogonFailure,
        };
    }

    /// <inheritdoc/>
    public async Task<HostLegLookup> FindHostLegAsync(string hostLabel, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hostLabel);
        await using var scope = scopes.CreateAsyncScope();

        // No user is known yet: the label resolves in any tenant, and AuthorizeAsync resolves it again in the user's
        // tenant (TlsAuthenticator refuses a grant for another host than this leg's).
        var host = hostLabel.Length == 0
            ? null
            : await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindHostByLabelInAnyTenantAsync(hostLabel, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return new HostLegLookup(null, $"unknown_host: no host or alias '{hostLabel}' is registered", "Connect with the registered host name ('gatehouse host list').");
        }

        if (host.BackendSecurity != Gatehouse.Storage.BackendSecurity.Tls)
        {
            return new HostLegLookup(
                null,
                $"backend_security_unsupported: {host.Name} is registered with backend security {host.BackendSecurity}; TLS sign-in relays the host's connection sequence before the password arrives, which a host that requires NLA cannot do",
                $"Sign in to {host.Name} with NLA (FreeRDP /sec:nla) or a web account (/sec:aad).")
            {
                Failure = SignInFailure.BackendSecurityUnsupported,
            };
        }

        // The cookie names no account: which mapped account logs on is decided by the role, after the password.
        return new HostLegLookup(new PasswordHostLeg(host.Id, host.Name, hostKeys.Pin(new BackendTarget(host.BackendHost, host.BackendPort, SecurityProtocol.Ssl, "gatehouse") { TlsServerName = host.Name }, host)), "found");
    }
}
