using System.Globalization;
using System.Net;
using System.Text.Json;
using Gatehouse.Identity;

namespace Gatehouse.Cli;

/// <summary>The IdP's answer to a device authorization request (RFC 8628 §3.2).</summary>
internal sealed record DeviceAuthorization(string DeviceCode, string UserCode, string VerificationUri, TimeSpan ExpiresIn, TimeSpan Interval, string Message)
{
    public override string ToString() => $"DeviceAuthorization {UserCode} at {VerificationUri}";
}

/// <summary>Tokens from the token endpoint; <see cref="ToString"/> never shows them.</summary>
internal sealed record CliTokens(string AccessToken, string? RefreshToken, TimeSpan ExpiresIn)
{
    /// <summary>The <c>upn</c> claim of the access token, read without validation (for display only: the server validates).</summary>
    public string? UserPrincipalName => Claim("upn");

    /// <summary>The <c>tid</c> claim, read the same way.</summary>
    public string? TenantId => Claim("tid");

    public override string ToString() => $"CliTokens expiring in {ExpiresIn}";

    private string? Claim(string name)
    {
        var parts = AccessToken.Split('.');
        if (parts.Length != 3)
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]));
            return json.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
    }
}

/// <summary>An OAuth error answer (<c>error</c>, <c>error_description</c>) from the IdP.</summary>
internal sealed record OAuthError(string Error, string? Description)
{
    /// <summary>The description's first line (Entra's adds trace lines).</summary>
    public string Summary => (Description ?? Error).Split('\r', '\n')[0];
}

/// <summary>
/// The Gatehouse CLI's OAuth client (<see cref="GatehouseCliClient.ClientId"/>) against the server's IdP: the device
/// authorization request, one token poll, the refresh, the revocation. Failures to reach the server become one
/// <see cref="CliException"/> sentence with what to check.
/// </summary>
internal static class CliOAuth
{
    /// <summary>What <c>gatehouse login</c> asks for: the admin API and a refresh token.</summary>
    public const string Scope = AdminTokenService.Scope + " offline_access";

    public static async Task<DeviceAuthorization> RequestDeviceCodeAsync(HttpClient http, string tenant, CancellationToken cancellationToken)
    {
        var (json, error) = await PostAsync(http, $"{Uri.EscapeDataString(tenant)}/oauth2/v2.0/devicecode", [("client_id", GatehouseCliClient.ClientId), ("scope", Scope)], cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            throw new CliException(error.Error switch
            {
                "invalid_tenant" => $"The server has no tenant '{tenant}'; give the tenant's domain or id with --tenant (or leave it out for the first tenant).",
                "unauthorized_client" => "The server does not know the Gatehouse CLI client; update the server to a version with 'gatehouse login'.",
                _ => $"The server refused the sign-in request: {error.Summary} Try again in a few minutes.",
            });
        }

        using (json)
        {
            var root = json!.RootElement;
            return new DeviceAuthorization(
                String(root, "device_code"),
                String(root, "user_code"),
                String(root, "verification_uri"),
                TimeSpan.FromSeconds(Number(root, "expires_in", 900)),
                TimeSpan.FromSeconds(Math.Max(1, Number(root, "interval", 5))),
                root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString()! : string.Empty);
        }
    }

    /// <summary>One poll: the tokens, or the OAuth error (<c>authorization_pending</c>, <c>slow_down</c>, …).</summary>
    public static async Task<(CliTokens? Tokens, OAuthError? Error)> PollAsync(HttpClient http, string tenant, string deviceCode, CancellationToken cancellationToken)
    {
        var (json, error) = await PostAsync(http, $"{Uri.EscapeDataString(tenant)}/oauth2/v2.0/token",
            [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("client_id", GatehouseCliClient.ClientId), ("device_code", deviceCode)], cancellationToken).ConfigureAwait(false);
        return error is not null ? (null, error) : (ReadTokens(json!), null);
    }

    /// <summary>Redeems a refresh token: new tokens, or the OAuth error (then the user must sign in again).</summary>
    public static async Task<(CliTokens? Tokens, OAuthError? Error)> RefreshAsync(HttpClient http, string tenant, string refreshToken, CancellationToken cancellationToken)
    {
        var (json, error) = await PostAsync(http, $"{Uri.EscapeDataString(tenant)}/oauth2/v2.0/token",
            [("grant_type", "refresh_token"), ("client_id", GatehouseCliClient.ClientId), ("refresh_token", refreshToken), ("scope", Scope)], cancellationToken).ConfigureAwait(false);
        return error is not null ? (null, error) : (ReadTokens(json!), null);
    }

    /// <summary>Revokes a token (RFC 7009); a refresh token revokes the whole sign-in at the server.</summary>
    public static async Task RevokeAsync(HttpClient http, string tenant, string token, bool isRefreshToken, CancellationToken cancellationToken)
    {
        var (json, error) = await PostAsync(http, $"{Uri.EscapeDataString(tenant)}/oauth2/v2.0/revoke",
            [("token", token), ("token_type_hint", isRefreshToken ? "refresh_token" : "access_token"), ("client_id", GatehouseCliClient.ClientId)], cancellationToken).ConfigureAwait(false);
        json?.Dispose();
        if (error is not null)
        {
            throw new CliException($"The server refused to revoke the sign-in: {error.Summary} The saved sign-in was kept; remove it with 'gatehouse logout --local'.");
        }
    }

    private static CliTokens ReadTokens(JsonDocument json)
    {
        using (json)
        {
            var root = json.RootElement;
            return new CliTokens(
                String(root, "access_token"),
                root.TryGetProperty("refresh_token", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null,
                TimeSpan.FromSeconds(Number(root, "expires_in", 3600)));
        }
    }

    private static async Task<(JsonDocument? Json, OAuthError? Error)> PostAsync(HttpClient http, string path, (string Name, string Value)[] form, CancellationToken cancellationToken)
    {
        using var content = new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));
        HttpResponseMessage response;
        try
        {
            response = await http.PostAsync(new Uri(path, UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            var reason = e.InnerException is System.Security.Authentication.AuthenticationException
                ? "its TLS certificate is not trusted; pass the server's certificate with --ca-cert (data/tls/gatehouse.crt on the server)"
                : e.Message;
            throw new CliException($"Cannot reach {http.BaseAddress?.GetLeftPart(UriPartial.Authority)}: {reason.TrimEnd('.')}. Check the address and that 'gatehouse serve' is running there.", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"{http.BaseAddress?.GetLeftPart(UriPartial.Authority)} did not answer within {CliHttp.Timeout.TotalSeconds:0} seconds; check that the server is running and reachable.", e);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            JsonDocument json;
            try
            {
                json = JsonDocument.Parse(text);
            }
            catch (JsonException e)
            {
                throw new CliException($"{http.BaseAddress?.GetLeftPart(UriPartial.Authority)} answered {(int)response.StatusCode} without the identity provider's JSON; check that --server is a Gatehouse server's address.", e);
            }

            if (response.IsSuccessStatusCode)
            {
                return (json, null);
            }

            using (json)
            {
                var root = json.RootElement;
                var error = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String
                    ? e.GetString()!
                    : ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
                var description = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error_description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                if (response.StatusCode == HttpStatusCode.TooManyRequests && error is not ("slow_down" or "temporarily_unavailable"))
                {
                    error = "slow_down";
                }

                return (null, new OAuthError(error, description));
            }
        }
    }

    private static string String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new CliException($"The server's answer has no '{name}'; check that --server is a Gatehouse server's address.");

    private static double Number(JsonElement root, string name, double fallback) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && number > 0 ? number : fallback;
}
