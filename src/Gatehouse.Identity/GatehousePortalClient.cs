namespace Gatehouse.Identity;

/// <summary>
/// The app registration of the Gatehouse web portal (<c>/my</c>, <c>/admin</c>), a well-known confidential-less client
/// of the server itself: the authorization-code flow with PKCE (S256 required), one redirect URI on the server's own
/// public origin (<see cref="RedirectUri"/>), scope <c>openid</c> (and <c>profile</c>), an ID token and no access or
/// refresh token. It signs in to no host and is asked no consent (a first-party app, as Entra's My Apps portal);
/// Conditional Access sees its sign-ins as sign-ins to <see cref="Gatehouse.Access.GatehouseApplications.AdminApi"/>,
/// since the portal calls the same admin operations as the API.
/// </summary>
public static class GatehousePortalClient
{
    /// <summary>The client id the portal sends.</summary>
    public const string ClientId = "5c1b8a43-2f0e-4d6a-9a57-3e8d1f6b7c20";

    /// <summary>The name users see on the sign-in pages and in the sign-in log.</summary>
    public const string DisplayName = "Gatehouse portal";

    /// <summary>The path of the portal's redirect URI on the server's public origin.</summary>
    public const string CallbackPath = "/portal/signin-callback";

    /// <summary>True when <paramref name="clientId"/> is this client (GUIDs compare case-insensitively).</summary>
    public static bool Is(string? clientId) => string.Equals(clientId, ClientId, StringComparison.OrdinalIgnoreCase);

    /// <summary>The one registered redirect URI: <c>https://PUBLIC-NAME/portal/signin-callback</c>.</summary>
    public static string RedirectUri(string publicName) => $"https://{publicName}{CallbackPath}";

    /// <summary>True when <paramref name="scope"/> is <c>openid</c>, optionally with <c>profile</c>, and nothing else.</summary>
    public static bool IsAllowedScope(string? scope)
    {
        if (string.IsNullOrWhiteSpace(scope) || scope.Length > 256)
        {
            return false;
        }

        var values = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return values.Contains("openid", StringComparer.Ordinal) && values.All(v => v is "openid" or "profile");
    }
}
