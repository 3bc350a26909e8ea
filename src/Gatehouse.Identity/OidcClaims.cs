using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Storage;

namespace Gatehouse.Identity;

/// <summary>What an ID token (OpenID Connect Core §2) is issued for.</summary>
public sealed record IdTokenRequest
{
    /// <summary>The signed-in user (<c>oid</c>, <c>tid</c>, <c>preferred_username</c>, <c>name</c>).</summary>
    public required User User { get; init; }

    /// <summary>The client the token is for (<c>aud</c>; the pairwise <c>sub</c> is per client).</summary>
    public required string ClientId { get; init; }

    /// <summary>Issuer; null means <see cref="GatehouseIdentityOptions.IssuerFor"/> of the user's tenant.</summary>
    public string? Issuer { get; init; }

    /// <summary>The <c>nonce</c> of the authentication request, echoed when it had one (OpenID Connect Core §3.1.3.6).</summary>
    public string? Nonce { get; init; }

    /// <summary>The sign-in's authentication methods (<c>amr</c>); written only when given.</summary>
    public IReadOnlyList<string>? Amr { get; init; }

    /// <summary>When the user authenticated (<c>auth_time</c>); written only when given.</summary>
    public DateTimeOffset? AuthTime { get; init; }
}

/// <summary>
/// Identifiers shared by ID and access tokens and the token response, in Entra's shapes: the pairwise subject and
/// <c>client_info</c>, which Microsoft's MSAL libraries build their account (<c>home_account_id</c> = <c>uid.utid</c>) from.
/// </summary>
public static class OidcClaims
{
    /// <summary>How long an ID token is valid (Entra's: one hour).</summary>
    public static readonly TimeSpan IdTokenLifetime = TimeSpan.FromHours(1);

    /// <summary>
    /// The <c>sub</c> of <paramref name="userId"/> for <paramref name="clientId"/>: pairwise, as Entra's (and as the
    /// discovery document says, <c>subject_types_supported: pairwise</c>): stable for one user and client, different for
    /// another client; base64url of a SHA-256, 43 characters. <c>oid</c> is the identifier that is the same everywhere.
    /// </summary>
    public static string PairwiseSubject(Guid tenantId, Guid userId, string clientId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        var input = $"gatehouse-sub/{tenantId:D}/{userId:D}/{clientId.ToLowerInvariant()}";
        return Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(input)));
    }

    /// <summary>
    /// Entra's <c>client_info</c> (returned when the token request has <c>client_info=1</c>): base64url of
    /// <c>{"uid":"&lt;oid&gt;","utid":"&lt;tenant id&gt;"}</c>.
    /// </summary>
    public static string ClientInfo(User user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var json = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
        {
            ["uid"] = user.Id.ToString("D"),
            ["utid"] = user.TenantId.ToString("D"),
        });
        return Base64Url.Encode(json);
    }

    /// <summary>True when the space-separated <paramref name="scope"/> asks for OpenID Connect (<c>openid</c>).</summary>
    public static bool RequestsOpenId(string? scope) =>
        scope is not null && scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains("openid", StringComparer.Ordinal);
}
