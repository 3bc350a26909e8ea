using Gatehouse.Access;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// Authorises a web-account sign-in with the one access call (<see cref="AccessService.AuthorizeSignInAsync"/>:
/// user state, role assignment, Conditional Access, mapped account) and turns the answer into the RDS AAD result
/// code and the session grant.
/// </summary>
public sealed class AccessWebAccountAuthorizer(IServiceScopeFactory scopes, HostKeyTrust hostKeys) : IWebAccountAuthorizer
{
    /// <inheritdoc/>
    public async Task<WebAccountAuthorization> AuthorizeAsync(GatewayConnection connection, AssertionVerdict verdict, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(verdict);
        var token = verdict.Token ?? throw new ArgumentException("an accepted verdict carries the token", nameof(verdict));
        var host = verdict.Host ?? throw new ArgumentException("an accepted verdict carries the host", nameof(verdict));
        await using var scope = scopes.CreateAsyncScope();
        var access = scope.ServiceProvider.GetRequiredService<AccessService>();
        var decision = await access.AuthorizeSignInAsync(
            new AccessRequest
            {
                UserId = token.ObjectId,
                HostId = host.Id,
                ClientAddress = connection.RemoteAddress,
                AuthenticationMethods = token.Amr,
                AuthenticatedAt = token.AuthenticatedAt,
                Application = RdpApplications.AzureWindowsVmSignIn,
            },
            cancellationToken).ConfigureAwait(false);
        return ToAuthorization(decision, token.TenantId, token.Amr, token.AuthenticatedAt, hostKeys);
    }

    /// <summary>Maps an access decision to the RDS AAD answer (and the grant when allowed, its host leg pinned to the host's key).</summary>
    public static WebAccountAuthorization ToAuthorization(AccessDecision decision, Guid tenantId, IReadOnlyList<string> methods, DateTimeOffset authenticatedAt, HostKeyTrust hostKeys)
    {
        ArgumentNullException.ThrowIfNull(hostKeys);
        var code = decision.Refusal switch
        {
            AccessRefusal.None => RdsAadAuthResult.Success,
            AccessRefusal.UserDisabled => RdsAadAuthResult.AccountDisabled,
            AccessRefusal.PasswordChangeRequired => RdsAadAuthResult.PasswordExpired,
            AccessRefusal.NoRole or AccessRefusal.PolicyBlocked or AccessRefusal.PolicyControlMissing => RdsAadAuthResult.AccessDenied,
            _ => RdsAadAuthResult.LogonFailure,
        };
        var common = new WebAccountAuthorization(code, decision.Reason)
        {
            TenantId = tenantId,
            UserId = decision.User?.Id,
            UserMessage = decision.UserMessage,
            Fix = decision.Fix,
            PoliciesJson = decision.PoliciesJson,
        };
        if (!decision.Allowed)
        {
            return common;
        }

        var host = decision.Host!;
        var account = decision.Account!;
        return common with
        {
            Grant = new SessionGrant
            {
                TenantId = tenantId,
                UserId = decision.User!.Id,
                UserPrincipalName = decision.User.UserPrincipalName,
                HostId = host.Id,
                HostName = host.Name,
                RoleName = decision.Rbac?.Role?.Name ?? "?",
                RoleAssignmentId = decision.Rbac?.GrantedBy?.Id,
                Backend = hostKeys.Pin(
                    new BackendTarget(
                        host.BackendHost,
                        host.BackendPort,
                        host.BackendSecurity == Gatehouse.Storage.BackendSecurity.Nla ? BackendTarget.NlaProtocols : SecurityProtocol.Ssl,
                        account.UserName),
                    host),
                Credentials = new InjectedCredentials(account.Domain, account.UserName, account.Password),
                MaxDuration = decision.MaxSessionDuration,
                Methods = methods,
                AuthenticatedAt = authenticatedAt,
                PoliciesJson = decision.PoliciesJson,
                Reason = decision.Reason,
            },
        };
    }
}
