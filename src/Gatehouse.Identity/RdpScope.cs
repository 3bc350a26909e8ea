using System.Net;

namespace Gatehouse.Identity;

/// <summary>The pre-registered public RDP client (Microsoft's Remote Desktop client id, used by FreeRDP and mstsc).</summary>
public static class RdpClient
{
    /// <summary>Client id.</summary>
    public const string ClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";

    /// <summary>True when <paramref name="clientId"/> is this client (GUIDs compare case-insensitively).</summary>
    public static bool Is(string? clientId) => string.Equals(clientId, ClientId, StringComparison.OrdinalIgnoreCase);

    /// <summary>The broker redirect URI (a browser cannot follow it: the user copies it into the client).</summary>
    public const string BrokerRedirectUri = "ms-appx-web://Microsoft.AAD.BrokerPlugin/a85cf173-4192-42f8-81fa-777a763e6e2c";

    /// <summary>The native-client redirect URI for <paramref name="publicName"/> and <paramref name="tenantSegment"/>.</summary>
    public static string NativeClientRedirectUri(string publicName, string tenantSegment) =>
        $"https://{publicName}/{tenantSegment}/oauth2/nativeclient";

    /// <summary>True when <paramref name="redirectUri"/> is one of the client's registered redirect URIs (exact match).</summary>
    public static bool IsRegisteredRedirectUri(string redirectUri, string publicName, string tenantSegment) =>
        string.Equals(redirectUri, BrokerRedirectUri, StringComparison.Ordinal)
        || string.Equals(redirectUri, NativeClientRedirectUri(publicName, tenantSegment), StringComparison.Ordinal);
}

/// <summary>The RDP device-service scope <c>ms-device-service://termsrv.wvd.microsoft.com/name/&lt;host&gt;/user_impersonation</c>.</summary>
public static class RdpScope
{
    /// <summary>The resource prefix (audience without the host label).</summary>
    public const string ResourcePrefix = "ms-device-service://termsrv.wvd.microsoft.com/name/";

    /// <summary>The only scope value granted.</summary>
    public const string ScopeValue = "user_impersonation";

    /// <summary>
    /// The scope of a device sign-in (the hold screen's QR sign-in) for a client that named no host: the user signs in to
    /// Remote Desktop as such, the policies for the RDP application are evaluated with no host, and the gateway asks
    /// which host afterwards (the host picker). It is never accepted by <see cref="TryParse"/>: only device codes that
    /// the gateway issues itself carry it.
    /// </summary>
    public const string AnyHostScope = ResourcePrefix + "*/" + ScopeValue;

    /// <summary>Longest label accepted (a DNS label).</summary>
    public const int MaxLabelLength = 63;

    /// <summary>Message for an IP-looking label (the sign-in log and the error page say this).</summary>
    public const string IpAddressError = "IP address can't be used with web account sign-in; use the host name";

    /// <summary>The audience (resource) of <paramref name="hostName"/>: lower-case.</summary>
    public static string Resource(string hostName)
    {
        ArgumentNullException.ThrowIfNull(hostName);
        return ResourcePrefix + hostName.ToLowerInvariant();
    }

    /// <summary>The scope string for <paramref name="hostName"/>.</summary>
    public static string For(string hostName) => Resource(hostName) + "/" + ScopeValue;

    /// <summary>
    /// Parses a scope parameter (space-separated; exactly one device-service scope, plus optional <c>openid</c>,
    /// <c>profile</c>, <c>offline_access</c>). On success <paramref name="label"/> is the lower-case host label.
    /// </summary>
    public static bool TryParse(string? scope, out string label, out string error)
    {
        label = "";
        if (string.IsNullOrWhiteSpace(scope))
        {
            error = "scope is missing";
            return false;
        }

        if (scope.Length > 2048)
        {
            error = "scope is too long";
            return false;
        }

        string? found = null;
        foreach (var item in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (item is "openid" or "profile" or "offline_access")
            {
                continue;
            }

            if (!item.StartsWith(ResourcePrefix, StringComparison.OrdinalIgnoreCase))
            {
                error = "unsupported scope: only the remote desktop device-service scope can be requested";
                return false;
            }

            if (found is not null)
            {
                error = "only one remote desktop host can be requested at a time";
                return false;
            }

            found = item;
        }

        if (found is null)
        {
            error = "the remote desktop device-service scope is missing";
            return false;
        }

        var rest = found[ResourcePrefix.Length..];
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !string.Equals(rest[(slash + 1)..], ScopeValue, StringComparison.OrdinalIgnoreCase))
        {
            error = "scope must end with /user_impersonation";
            return false;
        }

        return TryValidateLabel(rest[..slash], out label, out error);
    }

    /// <summary>
    /// Validates a host label: 1–63 characters of letters, digits and '-' (not at either end); refuses labels that are all
    /// digits (FreeRDP turns <c>/v:127.0.0.1</c> into <c>127</c>) or look like an IP address.
    /// </summary>
    public static bool TryValidateLabel(string? candidate, out string label, out string error)
    {
        label = "";
        if (string.IsNullOrEmpty(candidate))
        {
            error = "host name is missing";
            return false;
        }

        if (candidate.Length > MaxLabelLength && !candidate.Contains(':', StringComparison.Ordinal))
        {
            error = "host name is too long";
            return false;
        }

        if (IPAddress.TryParse(candidate, out _) || candidate.All(c => char.IsAsciiDigit(c) || c == '.')
            || candidate.Contains(':', StringComparison.Ordinal) || candidate.StartsWith('['))
        {
            error = IpAddressError;
            return false;
        }

        if (candidate.Length > MaxLabelLength)
        {
            error = "host name is too long";
            return false;
        }

        foreach (var c in candidate)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                error = "host name may contain only letters, digits and '-'";
                return false;
            }
        }

        if (candidate[0] == '-' || candidate[^1] == '-')
        {
            error = "host name cannot start or end with '-'";
            return false;
        }

        label = candidate.ToLowerInvariant();
        error = "";
        return true;
    }
}
