using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// OpenID discovery (<c>/{tenant}/v2.0/.well-known/openid-configuration</c>) and the signing keys
/// (<c>/{tenant}/discovery/v2.0/keys</c>), shaped like Entra's: FreeRDP reads only <c>authorization_endpoint</c> and
/// <c>token_endpoint</c>, other clients read the rest.
/// </summary>
internal sealed class DiscoveryEndpoints(DirectoryService directory, SigningKeyService keys, IdpUrls urls, IdpDocumentCache cache)
{
    public async Task ConfigurationAsync(HttpContext context, string tenant)
    {
        if (cache.DiscoveryDocument(tenant) is { } kept)
        {
            await Responses.DocumentAsync(context, kept).ConfigureAwait(false);
            return;
        }

        var found = await directory.FindTenantAsync(tenant).ConfigureAwait(false);
        if (found is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.UnknownTenant).ConfigureAwait(false);
            return;
        }

        // For 'common' and 'organizations' Entra publishes the issuer as a template; clients substitute the token's tid.
        var issuer = DirectoryService.IsMultiTenantSegment(tenant)
            ? $"{urls.Base}/{{tenantid}}/v2.0"
            : urls.Issuer(found.Id);
        var body = Responses.Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("issuer", issuer);
            w.WriteString("authorization_endpoint", urls.Authorize(tenant));
            w.WriteString("token_endpoint", urls.Token(tenant));
            w.WriteString("device_authorization_endpoint", urls.DeviceCode(tenant));
            w.WriteString("revocation_endpoint", urls.Revoke(tenant));
            w.WriteString("jwks_uri", urls.Keys(tenant));
            w.WriteString("tenant_region_scope", "SH");
            Strings(w, "response_types_supported", "code");
            Strings(w, "response_modes_supported", "query");
            Strings(w, "grant_types_supported", "authorization_code", "refresh_token", "srv_challenge", TokenEndpoint.DeviceCodeGrant);
            Strings(w, "subject_types_supported", "pairwise");
            Strings(w, "id_token_signing_alg_values_supported", "RS256");
            Strings(w, "token_endpoint_auth_methods_supported", "none");
            Strings(w, "code_challenge_methods_supported", "S256");
            Strings(w, "scopes_supported", "ms-device-service://termsrv.wvd.microsoft.com/name/{host}/user_impersonation", Gatehouse.Identity.AdminTokenService.Scope, "openid", "profile", "offline_access");
            Strings(w, "claims_supported", "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "tid", "oid", "upn", "preferred_username", "name", "amr", "scp", "cnf");
            w.WriteBoolean("authorization_response_iss_parameter_supported", true);
            w.WriteEndObject();
        });
        await Responses.DocumentAsync(context, cache.KeepDiscovery(tenant, body)).ConfigureAwait(false);
    }

    public async Task KeysAsync(HttpContext context, string tenant)
    {
        if (!cache.TenantKnown(tenant))
        {
            if (await directory.FindTenantAsync(tenant).ConfigureAwait(false) is null)
            {
                await Responses.OAuthErrorAsync(context, AadError.UnknownTenant).ConfigureAwait(false);
                return;
            }

            cache.KeepTenant(tenant);
        }

        if (cache.JwksDocument() is not { } document)
        {
            // Make sure a signing key exists, so the first JWKS fetch already lists the key tokens will be signed with.
            await keys.GetActiveAsync().ConfigureAwait(false);

            // The version is read before the published keys: a change made meanwhile leaves the kept document stale.
            var version = SigningKeyService.Version;
            var set = await keys.GetPublishedKeysAsync().ConfigureAwait(false);
            var body = Responses.Json(w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("keys");
                foreach (var key in set.Keys)
                {
                    w.WriteStartObject();
                    w.WriteString("kty", key.Kty);
                    w.WriteString("use", "sig");
                    w.WriteString("alg", "RS256");
                    w.WriteString("kid", key.Kid);
                    w.WriteString("n", key.N);
                    w.WriteString("e", key.E);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
            document = cache.KeepJwks(body, version);
        }

        await Responses.DocumentAsync(context, document).ConfigureAwait(false);
    }

    private static void Strings(System.Text.Json.Utf8JsonWriter w, string name, params string[] values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }
}
