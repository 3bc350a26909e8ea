using System.Globalization;
using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// <c>POST /{tenant}/oauth2/v2.0/devicecode</c> (RFC 8628 §3.1–3.2, Entra's shape): for the Gatehouse CLI client and
/// the admin API scope only, issues a device code (polled at the token endpoint) and a user code (entered at
/// <c>/devicelogin</c>), with <c>verification_uri</c>, <c>expires_in</c>, <c>interval</c> and Entra's <c>message</c>.
/// An address may hold at most <see cref="IdpLimits.PendingDeviceCodesPerAddress"/> pending codes.
/// </summary>
internal sealed class DeviceCodeEndpoint(DirectoryService directory, DeviceCodeService deviceCodes, IdpLimits limits, IdpUrls urls)
{
    public async Task PostAsync(HttpContext context, string tenant)
    {
        if (await OAuthForm.ReadAsync(context, directory, tenant).ConfigureAwait(false) is not (var found, var form))
        {
            return;
        }

        var clientId = OAuthForm.Single(form, "client_id");
        if (clientId is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With("client_id")).ConfigureAwait(false);
            return;
        }

        if (!GatehouseCliClient.Is(clientId))
        {
            // The RDP client has no device flow; every other id is unknown.
            await Responses.OAuthErrorAsync(context, AadError.UnknownClient, StatusCodes.Status400BadRequest).ConfigureAwait(false);
            return;
        }

        var scope = OAuthForm.Single(form, "scope");
        if (scope is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With("scope")).ConfigureAwait(false);
            return;
        }

        if (!GatehouseCliClient.IsAllowedScope(scope))
        {
            await Responses.OAuthErrorAsync(context, AadError.CliScopeInvalid).ConfigureAwait(false);
            return;
        }

        var issued = await deviceCodes.IssueAsync(new DeviceCodeRequest
        {
            TenantId = found.Id,
            ClientId = GatehouseCliClient.ClientId,
            // The admin API scope, and the OpenID Connect scopes asked for (openid decides the ID token at the poll).
            Scope = GatehouseCliClient.GrantedScope(scope),
            ClientAddress = AuthorizeEndpoint.ClientAddress(context).ToString(),
            // Configured values are kept within sane bounds: a code lives 1–30 minutes, and clients poll at most once a second.
            Lifetime = Clamp(limits.DeviceCodeLifetime, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(30)),
            Interval = Clamp(limits.DeviceCodePollInterval, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)),
            MaxPendingPerAddress = Math.Max(1, limits.PendingDeviceCodesPerAddress),
        }, context.RequestAborted).ConfigureAwait(false);
        if (issued is null)
        {
            context.Response.Headers.RetryAfter = "60";
            await Responses.OAuthErrorAsync(context, AadError.TooManyDeviceCodes, StatusCodes.Status429TooManyRequests).ConfigureAwait(false);
            return;
        }

        var userCode = DeviceCodeService.Display(issued.UserCode);
        var verification = urls.DeviceLogin;
        await Responses.JsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteString("user_code", userCode);
            w.WriteString("device_code", issued.DeviceCode);
            w.WriteString("verification_uri", verification);
            w.WriteNumber("expires_in", (int)issued.ExpiresIn.TotalSeconds);
            w.WriteNumber("interval", (int)Math.Ceiling(issued.Interval.TotalSeconds));
            w.WriteString("message", string.Create(CultureInfo.InvariantCulture, $"To sign in, use a web browser to open the page {verification} and enter the code {userCode} to authenticate."));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

}
