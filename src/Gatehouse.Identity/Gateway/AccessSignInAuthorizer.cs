using Gatehouse.Access;
using Gatehouse.Gateway;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// The session driver's authorisation, for every sign-in method, with the one access call
/// (<see cref="AccessService.AuthorizeSignInAsync"/>: user state, role assignment, Conditional Access, mapped account):
/// the host the proof resolved (a web-account assertion), else the label the client asked for, resolved in the user's
/// tenant only. The answer is the typed refusal (each edge maps it to its own code) or the session grant.
/// </summary>
/// <remarks>
/// A refusal by an authentication strength that the password paths (NLA, TLS, the hold screen's code prompt) cannot meet
/// but a passkey would names the way out in its fix: web account sign-in, or the hold screen's QR sign-in when the
/// gateway offers it (<paramref name="gateway"/>).
/// </remarks>
public sealed class AccessSignInAuthorizer(IServiceScopeFactory scopes, HostKeyTrust hostKeys, IOptions<GatewayOptions>? gateway = null) : ISignInAuthorizer
{
    private bool QrSignInOffered => gateway?.Value is { } o && o.SignInMethods.HasFlag(SignInMethods.QrSignIn) && o.HoldScreen.Enabled;

    /// <inheritdoc/>
    public async Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(subject);
        if (subject is not { TenantId: { } tenantId, UserId: { } userId })
        {
            throw new ArgumentException("a proven subject names its tenant and user", nameof(subject));
        }

        await using var scope = scopes.CreateAsyncScope();
        var hostId = subject.HostId;
        if (hostId is null)
        {
            var label = subject.HostLabel ?? string.Empty;
            var host = label.Length == 0
                ? null
                : await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindHostByLabelAsync(tenantId, label, cancellationToken).ConfigureAwait(false);
            if (host is null)
            {
                return AccessOutcome.Deny(
                    SignInFailure.AccessNotPossible,
                    label.Length == 0 ? "unknown_host: the client named no host (connect with the host's name, not an IP address, so TLS carries it)" : $"unknown_host: no host or alias '{label}' is registered",
                    fix: "Connect with the registered host name ('gatehouse host list').") with
                { TenantId = tenantId, UserId = userId, HostUnknown = true };
            }

            hostId = host.Id;
        }

        var decision = await scope.ServiceProvider.GetRequiredService<AccessService>().AuthorizeSignInAsync(
            new AccessRequest
            {
                UserId = userId,
                HostId = hostId.Value,
                ClientAddress = connection.RemoteAddress,
                AuthenticationMethods = subject.Methods,
                AuthenticatedAt = subject.AuthenticatedAt,
                Application = RdpApplications.AzureWindowsVmSignIn,
            },
            cancellationToken).ConfigureAwait(false);
        var agents = scope.ServiceProvider.GetService<IHostAgentLogons>();
        if (agents is not null && !decision.Allowed && decision.User is { } refusedUser)
        {
            if (decision.Refusal is AccessRefusal.UserDisabled)
            {
                // The user was disabled: the tenant's agents lock the account they manage for them.
                agents.RequestDisable(tenantId, null, refusedUser.UserPrincipalName);
            }
            else if (decision.Refusal is AccessRefusal.NoRole && decision.Host is { } refusedHost
                && await scope.ServiceProvider.GetRequiredService<AccessService>().AgentOfHostAsync(refusedHost.Id, cancellationToken).ConfigureAwait(false) is { } hostAgent)
            {
                // No role on this host (any more): only this host's agent locks the account; the user's accounts on
                // hosts where a role still lets them in are left alone.
                agents.RequestDisable(tenantId, hostAgent, refusedUser.UserPrincipalName);
            }
        }

        if (decision is { Allowed: true, AgentId: { } agentId, Host: { } agentHost, User: { } agentUser })
        {
            if (agents is null)
            {
                return FailClosed(decision, tenantId, $"agent_unavailable: {agentHost.Name} has an agent but this node has no agent channel", null);
            }

            var gateway = scope.ServiceProvider.GetService<Microsoft.Extensions.Options.IOptions<GatewayOptions>>()?.Value;
            var logon = await agents.RequestLogonAsync(
                agentId, agentHost.Id, agentUser.UserPrincipalName, decision.Rbac?.Level ?? LoginLevel.User, gateway?.BackendConnectTimeout ?? TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false);
            if (logon.Account is null)
            {
                return FailClosed(decision, tenantId, logon.Reason ?? "agent_unavailable: no answer", logon.Fix);
            }

            var granted = ToAuthorization(decision with { Account = logon.Account }, tenantId, subject.Methods, subject.AuthenticatedAt, hostKeys, QrSignInOffered);
            var upn = agentUser.UserPrincipalName;
            return granted.Grant is null ? granted : granted with
            {
                Grant = granted.Grant with { HostLogonAccepted = () => agents.ReportAccepted(agentId, logon.LogonId, upn) },
            };
        }

        return ToAuthorization(decision, tenantId, subject.Methods, subject.AuthenticatedAt, hostKeys, QrSignInOffered);
    }

    /// <summary>
    /// The fix of a refusal by an authentication strength that a passkey would meet and this sign-in's methods cannot
    /// (a password, with or without the one-time code): the paths that can offer a passkey. Null for any other refusal.
    /// </summary>
    public static string? StrengthWayOut(AccessDecision decision, IReadOnlyList<string> methods, bool qrSignIn)
    {
        ArgumentNullException.ThrowIfNull(decision);
        ArgumentNullException.ThrowIfNull(methods);
        if (decision is not { Refusal: AccessRefusal.PolicyControlMissing, Policies: { UnmetStrengths.Count: > 0, SatisfiableWithMfa: false, SatisfiableWithPasskey: true } policies })
        {
            return null;
        }

        var strength = policies.UnmetStrengths[0];
        var fix = decision.Fix ?? string.Empty;
        return $"This sign-in ({AuthenticationStrengths.DescribeMethods(methods)}) cannot meet the authentication strength '{strength.Requirement.Strength.Name}' of policy '{strength.Requirement.PolicyName}'. "
            + "Connect with web account sign-in (\"Use a web account to sign in\" in the Remote Desktop app, /sec:aad in FreeRDP) and sign in with a passkey there"
            + (qrSignIn ? ", or connect without typing a password and sign in on your phone with the hold screen's QR code" : string.Empty)
            + $". {fix}".TrimEnd();
    }

    /// <summary>The refusal when the host's agent cannot give an account: the sign-in fails closed with the agent's reason.</summary>
    private static AccessOutcome FailClosed(AccessDecision decision, Guid tenantId, string reason, string? fix) =>
        AccessOutcome.Deny(SignInFailure.AccessNotPossible, reason, "The computer you are connecting to cannot prepare your account right now. Try again later or contact your system administrator.", fix) with
        {
            TenantId = tenantId,
            UserId = decision.User?.Id,
            HostId = decision.Host?.Id,
            PoliciesJson = decision.PoliciesJson,
        };

    /// <summary>The gateway's failure for an access refusal.</summary>
    public static SignInFailure ToFailure(AccessRefusal refusal) => refusal switch
    {
        AccessRefusal.UserDisabled => SignInFailure.AccessUserDisabled,
        AccessRefusal.PasswordChangeRequired => SignInFailure.AccessPasswordChangeRequired,
        AccessRefusal.UnknownUser => SignInFailure.AccessUnknownUser,
        AccessRefusal.NoRole or AccessRefusal.PolicyBlocked or AccessRefusal.PolicyControlMissing => SignInFailure.AccessDenied,
        _ => SignInFailure.AccessNotPossible,
    };

    /// <summary>Maps an access decision to the gateway's answer (the grant when allowed, its host leg pinned to the host's key).</summary>
    public static AccessOutcome ToAuthorization(AccessDecision decision, Guid tenantId, IReadOnlyList<string> methods, DateTimeOffset authenticatedAt, HostKeyTrust hostKeys, bool qrSignIn = false)
    {
        ArgumentNullException.ThrowIfNull(decision);
        ArgumentNullException.ThrowIfNull(hostKeys);
        var common = new AccessOutcome
        {
            Refusal = decision.Allowed ? null : new SignInRefusal(ToFailure(decision.Refusal), decision.Reason) { UserMessage = decision.UserMessage, Fix = StrengthWayOut(decision, methods, qrSignIn) ?? decision.Fix },
            Reason = decision.Reason,
            TenantId = tenantId,
            UserId = decision.User?.Id,
            PoliciesJson = decision.PoliciesJson,
            HostId = decision.Host?.Id,
            MfaWouldSatisfy = !methods.Contains("mfa") && decision is { Refusal: AccessRefusal.PolicyControlMissing, Policies.SatisfiableWithMfa: true },
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
                        account.UserName)
                    { TlsServerName = host.Name },
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
