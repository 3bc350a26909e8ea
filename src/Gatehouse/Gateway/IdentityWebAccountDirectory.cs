using Gatehouse.Gateway.WebAccount;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Gateway;

/// <summary>The web-account sign-in's view of the identity provider, in process (over the store and the IdP's keys).</summary>
internal sealed class IdentityWebAccountDirectory(IServiceScopeFactory scopes) : IWebAccountDirectory
{
    public async Task<RegisteredHost?> FindHostAsync(string label, CancellationToken cancellationToken)
    {
        if (!RdpScope.TryValidateLabel(label, out var name, out _))
        {
            return null;
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var host = await db.Hosts.AsNoTracking().FirstOrDefaultAsync(h => h.Name == name, cancellationToken).ConfigureAwait(false);
        if (host is null)
        {
            var alias = await db.HostAliases.AsNoTracking().FirstOrDefaultAsync(a => a.Name == name, cancellationToken).ConfigureAwait(false);
            host = alias is null ? null : await db.Hosts.AsNoTracking().FirstOrDefaultAsync(h => h.Id == alias.HostId, cancellationToken).ConfigureAwait(false);
        }

        if (host is null)
        {
            return null;
        }

        var group = host.HostGroupId is { } id
            ? await db.HostGroups.AsNoTracking().Where(g => g.Id == id).Select(g => g.Name).FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false)
            : null;
        return new RegisteredHost(host.Id, host.Name, group);
    }

    public async Task<AccessTokenCheck> ValidateAccessTokenAsync(string accessToken, RegisteredHost host, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<TokenService>();
        var outcome = await tokens.ValidateRdpAccessTokenAsync(accessToken, host.Name, now, cancellationToken).ConfigureAwait(false);
        return outcome.IsValid
            ? new AccessTokenCheck
            {
                Valid = true,
                CnfKid = outcome.CnfKid,
                TenantId = outcome.TenantId,
                ObjectId = outcome.ObjectId,
                Upn = outcome.Upn,
                Amr = outcome.Amr,
                AuthenticatedAt = outcome.AuthenticatedAt,
                ExpiresAt = outcome.ExpiresAt,
            }
            : new AccessTokenCheck { Valid = false, FailureReason = outcome.Error };
    }

    public async Task<bool> ValidateClientNonceAsync(string aadNonce, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var challenges = scope.ServiceProvider.GetRequiredService<ServerChallengeService>();
        return await challenges.ValidateAsync(aadNonce, now, cancellationToken).ConfigureAwait(false);
    }
}
