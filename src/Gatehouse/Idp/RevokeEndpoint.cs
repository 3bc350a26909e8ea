using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// <c>POST /{tenant}/oauth2/v2.0/revoke</c>: token revocation (RFC 7009) for the Gatehouse CLI (<c>gatehouse logout</c>).
/// Form: <c>token</c>, <c>client_id</c> (a public client: no secret), optional <c>token_type_hint</c>
/// (<c>refresh_token</c> or <c>access_token</c>). A refresh token revokes its whole grant (every refresh token and every
/// admin API access token issued from the same sign-in); an admin API access token is listed by its <c>jti</c> until it
/// expires. As §2.2 says, the answer is 200 whether or not there was anything to revoke.
/// </summary>
internal sealed class RevokeEndpoint(DirectoryService directory, RefreshTokenService refreshTokens, AdminTokenService adminTokens, TimeProvider time)
{
    public async Task PostAsync(HttpContext context, string tenant)
    {
        if (await OAuthForm.ReadAsync(context, directory, tenant).ConfigureAwait(false) is not (_, var form))
        {
            return;
        }

        var token = OAuthForm.Single(form, "token");
        var clientId = OAuthForm.Single(form, "client_id");
        if (token is null || clientId is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With(token is null ? "token" : "client_id")).ConfigureAwait(false);
            return;
        }

        if (!GatehouseCliClient.Is(clientId))
        {
            await Responses.OAuthErrorAsync(context, AadError.UnknownClient with { OAuthError = "unauthorized_client" }).ConfigureAwait(false);
            return;
        }

        var hint = OAuthForm.Single(form, "token_type_hint");
        if (hint is not (null or "refresh_token" or "access_token"))
        {
            await Responses.OAuthErrorAsync(context, new AadError(0, "unsupported_token_type", "token_type_hint must be refresh_token or access_token.")).ConfigureAwait(false);
            return;
        }

        // A JWT has dots, a refresh token never does: the hint only orders the lookups (RFC 7009 §2.1).
        if (token.Contains('.', StringComparison.Ordinal))
        {
            await adminTokens.RevokeAsync(token, context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            await refreshTokens.RevokeAsync(token, GatehouseCliClient.ClientId, time.GetUtcNow(), context.RequestAborted).ConfigureAwait(false);
        }

        await Responses.JsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

}
