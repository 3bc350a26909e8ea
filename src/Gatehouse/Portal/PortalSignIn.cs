using System.Net;
using System.Net.Security;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Portal;

/// <summary>What the portal remembers between sending the browser to the IdP and the callback: state, PKCE verifier, where to go after.</summary>
internal sealed record PendingPortalSignIn(string State, string Verifier, string ReturnUrl);

/// <summary>Why a callback did not sign the user in (the page shows the sentence; the log has the detail).</summary>
internal sealed record PortalSignInFailure(string Message);

/// <summary>
/// The portal as an OpenID Connect client of this server's own IdP (<see cref="GatehousePortalClient"/>): the
/// authorization-code flow with PKCE (S256) and <c>state</c>, the code redeemed at the token endpoint over HTTPS on the
/// connection's own local address (the server's certificate pinned), and the ID token validated (signature with the
/// IdP's keys, issuer of the token's tenant, audience = the portal client, lifetime) before the cookie session starts.
/// The state and the verifier travel in a short-lived, Data Protection-sealed <c>__Host-</c> cookie bound to this
/// browser; the ID token carries no nonce (the IdP's code flow does not echo one), and PKCE is what binds the code to
/// the browser that started the sign-in.
/// </summary>
internal sealed class PortalSignIn : IDisposable
{
    public const string Scheme = "GatehousePortal";
    public const string SessionCookie = "__Host-gatehouse-portal";
    public const string PendingCookie = "__Host-gatehouse-portal-signin";

    /// <summary>The session's claim with one of the sign-in's authentication methods (the ID token's <c>amr</c>).</summary>
    public const string AmrClaim = "amr";

    /// <summary>The session's claim with when the user authenticated (the ID token's <c>auth_time</c>, Unix seconds).</summary>
    public const string AuthTimeClaim = "auth_time";

    /// <summary>The tenant segment the portal signs in through (the first tenant, as the CLI's login does).</summary>
    public const string TenantSegment = DirectoryService.CommonTenant;

    private readonly IdpUrls _urls;
    private readonly SigningKeyService _keys;
    private readonly PortalOptions _options;
    private readonly ITimeLimitedDataProtector _protector;
    private readonly HttpClient _backChannel;
    private readonly TimeProvider _time;

    public PortalSignIn(IdpUrls urls, SigningKeyService keys, IOptions<PortalOptions> options, IDataProtectionProvider dataProtection, ServerCertificate certificate, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(dataProtection);
        ArgumentNullException.ThrowIfNull(certificate);
        _urls = urls;
        _time = time;
        _keys = keys;
        _options = options.Value;
        _protector = dataProtection.CreateProtector("Gatehouse.Portal.PendingSignIn.v1").ToTimeLimitedDataProtector();
        var pinned = certificate.Certificate.GetCertHashString(HashAlgorithmName.SHA256);
        _backChannel = new HttpClient(new SocketsHttpHandler
        {
            // The token endpoint is this server: trust exactly its own certificate (self-signed by default).
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) => presented is not null && string.Equals(presented.GetCertHashString(HashAlgorithmName.SHA256), pinned, StringComparison.OrdinalIgnoreCase),
            },
            AllowAutoRedirect = false,
            UseCookies = false,
        })
        {
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    /// <summary>Starts a sign-in: sets the pending cookie and returns the IdP's authorize URL to redirect to.</summary>
    public string Begin(HttpContext context, string? returnUrl)
    {
        ArgumentNullException.ThrowIfNull(context);
        var state = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var pending = new PendingPortalSignIn(state, verifier, SafeReturnUrl(returnUrl));
        context.Response.Cookies.Append(PendingCookie, _protector.Protect(JsonSerializer.Serialize(pending), _options.SignInTimeout), new CookieOptions
        {
            Secure = true,
            HttpOnly = true,
            SameSite = SameSiteMode.Lax,
            Path = "/",
            IsEssential = true,
            MaxAge = _options.SignInTimeout,
        });
        return _urls.Authorize(TenantSegment)
            + "?client_id=" + GatehousePortalClient.ClientId
            + "&response_type=code"
            + "&scope=openid%20profile"
            + "&redirect_uri=" + Uri.EscapeDataString(GatehousePortalClient.RedirectUri(_urls.PublicName))
            + "&state=" + state
            + "&code_challenge=" + challenge
            + "&code_challenge_method=S256";
    }

    /// <summary>
    /// The callback: checks the state against the pending cookie, redeems the code with the verifier, validates the ID
    /// token and starts the cookie session. Returns where to go next, or the failure to show.
    /// </summary>
    public async Task<(string? ReturnUrl, PortalSignInFailure? Failure)> CompleteAsync(HttpContext context, string? code, string? state, string? error, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var pending = ReadPending(context);
        context.Response.Cookies.Delete(PendingCookie, new CookieOptions { Secure = true, HttpOnly = true, SameSite = SameSiteMode.Lax, Path = "/" });
        if (error is not null)
        {
            return (null, new PortalSignInFailure($"The sign-in did not finish ({Truncate(error)}). Sign in again."));
        }

        if (pending is null || state is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(pending.State), Encoding.ASCII.GetBytes(state)))
        {
            return (null, new PortalSignInFailure("This sign-in was not started in this browser, or it took longer than allowed. Sign in again."));
        }

        if (string.IsNullOrEmpty(code) || code.Length > 4096)
        {
            return (null, new PortalSignInFailure("The sign-in came back without a code. Sign in again."));
        }

        var idToken = await RedeemAsync(context, code, pending.Verifier, cancellationToken).ConfigureAwait(false);
        if (idToken.Failure is not null)
        {
            return (null, idToken.Failure);
        }

        var identity = await ValidateIdTokenAsync(idToken.Token!, cancellationToken).ConfigureAwait(false);
        if (identity is null)
        {
            return (null, new PortalSignInFailure("The identity provider's answer could not be verified. Sign in again."));
        }

        await context.SignInAsync(Scheme, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = false, AllowRefresh = true }).ConfigureAwait(false);
        return (pending.ReturnUrl, null);
    }

    public void Dispose() => _backChannel.Dispose();

    /// <summary>Only a local path of the portal (never another origin, never <c>//host</c>).</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is { Length: > 1 and <= 1024 } url && url[0] == '/' && url[1] != '/' && url[1] != '\\' && !url.Contains("://", StringComparison.Ordinal)
            ? url
            : "/my";

    private PendingPortalSignIn? ReadPending(HttpContext context)
    {
        var value = context.Request.Cookies[PendingCookie];
        if (string.IsNullOrEmpty(value) || value.Length > 4096)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<PendingPortalSignIn>(_protector.Unprotect(value));
        }
        catch (Exception e) when (e is CryptographicException or JsonException or FormatException)
        {
            return null;
        }
    }

    private async Task<(string? Token, PortalSignInFailure? Failure)> RedeemAsync(HttpContext context, string code, string verifier, CancellationToken cancellationToken)
    {
        var local = context.Connection.LocalIpAddress ?? IPAddress.Loopback;
        if (local.IsIPv4MappedToIPv6)
        {
            local = local.MapToIPv4();
        }

        var endpoint = new UriBuilder(Uri.UriSchemeHttps, local.ToString(), context.Connection.LocalPort, $"/{TenantSegment}/oauth2/v2.0/token").Uri;
        using var body = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = GatehousePortalClient.ClientId,
            ["code"] = code,
            ["redirect_uri"] = GatehousePortalClient.RedirectUri(_urls.PublicName),
            ["code_verifier"] = verifier,
        });
        try
        {
            using var response = await _backChannel.PostAsync(endpoint, body, cancellationToken).ConfigureAwait(false);
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            using var json = JsonDocument.Parse(text);
            if (response.IsSuccessStatusCode && json.RootElement.TryGetProperty("id_token", out var token) && token.GetString() is { } jwt)
            {
                return (jwt, null);
            }

            var description = json.RootElement.TryGetProperty("error_description", out var d) ? d.GetString() : null;
            return (null, new PortalSignInFailure($"The identity provider refused the sign-in's code ({Truncate(description?.Split('\r')[0] ?? "no reason given")}). Sign in again."));
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException)
        {
            return (null, new PortalSignInFailure($"The portal could not reach the identity provider's token endpoint ({Truncate(e.Message)}). Try again; if it keeps failing, check the server's log."));
        }
    }

    private async Task<ClaimsIdentity?> ValidateIdTokenAsync(string jwt, CancellationToken cancellationToken)
    {
        JsonWebToken unverified;
        try
        {
            unverified = new JsonWebToken(jwt);
        }
        catch (ArgumentException)
        {
            return null;
        }

        if (!unverified.TryGetPayloadValue<string>("tid", out var tid) || !Guid.TryParse(tid, out var tenantId))
        {
            return null;
        }

        var keys = await _keys.GetVerificationKeysAsync(_time.GetUtcNow(), unverified.Kid, cancellationToken).ConfigureAwait(false);
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = _urls.Issuer(tenantId),
            ValidAudience = GatehousePortalClient.ClientId,
            IssuerSigningKeys = keys,
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidTypes = [TokenService.IdTokenType],
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = TimeSpan.FromMinutes(1),
        }).ConfigureAwait(false);
        if (!result.IsValid || !result.Claims.TryGetValue("oid", out var oid) || !Guid.TryParse(oid as string, out var userId))
        {
            return null;
        }

        // amr and auth_time: the portal's security info applies the IdP's recent-MFA rule to this sign-in.
        var verified = (JsonWebToken)result.SecurityToken;
        List<Claim> claims =
        [
            new Claim("oid", userId.ToString("D")),
            new Claim("tid", tenantId.ToString("D")),
            new Claim("preferred_username", result.Claims.TryGetValue("preferred_username", out var upn) ? upn as string ?? string.Empty : string.Empty),
        ];
        claims.AddRange(verified.Claims.Where(c => c.Type == "amr").Take(8).Select(c => new Claim(AmrClaim, c.Value)));
        if (verified.TryGetPayloadValue<long>("auth_time", out var authTime))
        {
            claims.Add(new Claim(AuthTimeClaim, authTime.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return new ClaimsIdentity(claims, Scheme, "preferred_username", null);
    }

    private static string Truncate(string text) => text.Length > 200 ? text[..200] + "…" : text;
}
