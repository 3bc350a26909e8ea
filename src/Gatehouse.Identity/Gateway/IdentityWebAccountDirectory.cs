using Gatehouse.Gateway.WebAccount;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// The web-account sign-in's view of the identity provider, in process, over <see cref="DirectoryService"/>,
/// <see cref="TokenService"/> and <see cref="ServerChallengeService"/>. The label is looked up before the token is
/// read (the token's audience is the host's registered name), so a token is accepted only when the label also names
/// that host in the token's tenant.
/// </summary>
public sealed class IdentityWebAccountDirectory(IServiceScopeFactory scopes) : IWebAccountDirectory
{
    /// <inheritdoc/>
    public async Task<RegisteredHost?> FindHostAsync(string label, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var host = await directory.FindHostByLabelInAnyTenantAsync(label, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            return null;
        }

        var group = host.HostGroupId is { } id ? await directory.FindHostGroupNameAsync(id, cancellationToken).ConfigureAwait(false) : null;
        return new RegisteredHost(host.Id, host.Name, group);
    }

    /// <inheritdoc/>
    public async Task<AccessTokenCheck> ValidateAccessTokenAsync(string accessToken, RegisteredHost host, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(host);
        await using var scope = scopes.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<TokenService>();
        var outcome = await tokens.ValidateRdpAccessTokenAsync(accessToken, host.Name, now, cancellationToken).ConfigureAwait(false);
        if (!outcome.IsValid)
        {
            return new AccessTokenCheck { Valid = false, FailureReason = outcome.Error };
        }

        // The host's name resolves in the token's tenant only: a host of another tenant is not this token's host.
        var inTenant = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindHostByLabelAsync(outcome.TenantId, host.Name, cancellationToken).ConfigureAwait(false);
        if (inTenant?.Id != host.Id)
        {
            return new AccessTokenCheck { Valid = false, FailureReason = $"host '{host.Name}' is not registered in the token's tenant {outcome.TenantId}" };
        }

        return new AccessTokenCheck
        {
            Valid = true,
            CnfKid = outcome.CnfKid,
            TenantId = outcome.TenantId,
            ObjectId = outcome.ObjectId,
            Upn = outcome.Upn,
            Amr = outcome.Amr,
            AuthenticatedAt = outcome.AuthenticatedAt,
            ExpiresAt = outcome.ExpiresAt,
        };
    }

    /// <inheritdoc/>
    public async Task<bool> ValidateClientNonceAsync(string aadNonce, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var challenges = scope.ServiceProvider.GetRequiredService<ServerChallengeService>();
        return await challenges.ValidateAsync(aadNonce, now, cancellationToken).ConfigureAwait(false);
    }
}
