namespace Gatehouse.Identity;

/// <summary>
/// The app registration of the <c>gatehouse</c> command line, a well-known public client (like the Azure CLI's
/// <c>04b07795-8ddb-461a-bbee-02f9e1bf7b46</c> at Entra): no secret, no redirect URI, the device authorization grant
/// (RFC 8628) and refresh tokens only, and only the admin API's scope <see cref="AdminTokenService.Scope"/> (bearer
/// tokens, no proof-of-possession). Conditional Access sees its sign-ins as sign-ins to the application
/// <see cref="Gatehouse.Access.GatehouseApplications.AdminApi"/>.
/// </summary>
public static class GatehouseCliClient
{
    /// <summary>The client id every <c>gatehouse login</c> sends.</summary>
    public const string ClientId = "9f96595f-4eb5-4226-bc18-5d7de55f5d00";

    /// <summary>The name users see on the sign-in pages and in the sign-in log.</summary>
    public const string DisplayName = "Gatehouse CLI";

    /// <summary>The OpenID Connect scopes the client may ask for besides the admin API's.</summary>
    private static readonly string[] OidcScopes = ["openid", "profile", "offline_access"];

    /// <summary>True when <paramref name="clientId"/> is this client (GUIDs compare case-insensitively).</summary>
    public static bool Is(string? clientId) => string.Equals(clientId, ClientId, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// What is stored for an allowed <paramref name="scope"/>: <see cref="AdminTokenService.Scope"/>, then those of
    /// <c>openid profile offline_access</c> it asked for, in that order (the ID token depends on <c>openid</c>).
    /// </summary>
    public static string GrantedScope(string scope)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var asked = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return string.Join(' ', new[] { AdminTokenService.Scope }.Concat(OidcScopes.Where(s => asked.Contains(s, StringComparer.Ordinal))));
    }

    /// <summary>
    /// True when <paramref name="scope"/> (space-separated, as sent) asks for the admin API and nothing this client may
    /// not have: <c>api://gatehouse-admin/admin</c> (or <c>api://gatehouse-admin/.default</c>), plus optionally the
    /// OpenID Connect scopes <c>openid profile offline_access</c> (<c>openid</c> adds an ID token; a refresh token is
    /// always issued).
    /// </summary>
    public static bool IsAllowedScope(string? scope)
    {
        if (string.IsNullOrWhiteSpace(scope) || scope.Length > 512)
        {
            return false;
        }

        var admin = false;
        foreach (var value in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (string.Equals(value, AdminTokenService.Scope, StringComparison.OrdinalIgnoreCase)
                || string.Equals(value, AdminTokenService.Audience + "/.default", StringComparison.OrdinalIgnoreCase))
            {
                admin = true;
            }
            else if (value is not ("openid" or "profile" or "offline_access"))
            {
                return false;
            }
        }

        return admin;
    }
}
