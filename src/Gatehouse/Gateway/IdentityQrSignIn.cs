using System.Net;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Identity;
using Gatehouse.Idp;

namespace Gatehouse.Gateway;

/// <summary>
/// The hold screen's QR sign-in over the identity provider's device-code service, in process: a device code for the
/// RDP client (<see cref="RdpClient.ClientId"/>) whose scope names the host (or any host, when the client named none),
/// under the host's tenant (or the default one). The user enters it on <c>/devicelogin</c>, signs in with whatever the
/// policies ask, and answers "Are you trying to sign in to &lt;host&gt;?"; the poll then gives the user and the methods
/// used (amr). The device code's own rules hold: single redemption, the polling interval, expiry.
/// </summary>
internal sealed class IdentityQrSignIn(IServiceScopeFactory scopes, IdpUrls urls, TimeProvider time) : IQrSignInDirectory
{
    /// <inheritdoc/>
    public async Task<QrSignInStart?> BeginAsync(string? hostLabel, IPAddress client, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        await using var scope = scopes.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var host = hostLabel is null ? null : await directory.FindHostByLabelInAnyTenantAsync(hostLabel, cancellationToken).ConfigureAwait(false);
        var tenantId = host?.TenantId ?? (await directory.FindTenantAsync(DirectoryService.CommonTenant, cancellationToken).ConfigureAwait(false))?.Id;
        if (tenantId is not { } tenant)
        {
            return null;
        }

        var issued = await scope.ServiceProvider.GetRequiredService<DeviceCodeService>().IssueAsync(
            new DeviceCodeRequest
            {
                TenantId = tenant,
                ClientId = RdpClient.ClientId,
                Scope = host is null ? RdpScope.AnyHostScope : RdpScope.For(host.Name),
                ClientAddress = client.ToString(),
                Lifetime = lifetime,
            },
            cancellationToken).ConfigureAwait(false);
        if (issued is null)
        {
            return null;
        }

        var display = DeviceCodeService.Display(issued.UserCode);
        return new QrSignInStart(display, urls.DeviceLogin, $"{urls.DeviceLogin}?otc={issued.UserCode}", issued.DeviceCode, issued.Interval, host?.Name);
    }

    /// <inheritdoc/>
    public async Task<QrSignInPoll> PollAsync(QrSignInStart started, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(started);
        await using var scope = scopes.CreateAsyncScope();
        var poll = await scope.ServiceProvider.GetRequiredService<DeviceCodeService>().PollAsync(started.DeviceCode, RdpClient.ClientId, cancellationToken).ConfigureAwait(false);
        switch (poll.Status)
        {
            case DevicePollStatus.Pending or DevicePollStatus.SlowDown:
                return new QrSignInPoll(QrSignInState.Pending);
            case DevicePollStatus.Denied:
                return new QrSignInPoll(QrSignInState.Denied);
            case DevicePollStatus.Approved when poll.Code is { UserId: { } userId } code:
                var user = await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserAsync(userId, cancellationToken).ConfigureAwait(false);
                if (user is null)
                {
                    return new QrSignInPoll(QrSignInState.Denied);
                }

                return new QrSignInPoll(QrSignInState.Approved, new SignInSubject
                {
                    TenantId = user.TenantId,
                    UserId = user.Id,
                    UserPrincipalName = user.UserPrincipalName,
                    Methods = (code.Amr ?? "pwd").Split(' ', StringSplitOptions.RemoveEmptyEntries),
                    AuthenticatedAt = code.AuthTime ?? time.GetUtcNow(),
                });
            default:
                return new QrSignInPoll(QrSignInState.Expired);
        }
    }
}
