// The authorization-code flow of the RDP client (with req_cnf proof-of-possession) on OpenIddict 7.9.0, shaped like
// Entra: /{tenant}/oauth2/v2.0/authorize and /token, AADSTS errors, the RDP scope, the Microsoft RDP client id.
// A prototype for docs/decisions/0004: the sign-in pages are NOT here (the authorize endpoint signs in the user named
// by login_hint at once, as Gatehouse's pages would after the password, MFA and consent).
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

var builder = WebApplication.CreateBuilder(args);
var database = builder.Configuration["Prototype:Database"] ?? Path.Combine(Path.GetTempPath(), $"openiddict-prototype-{Environment.ProcessId}.db");
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Services.AddDbContext<PrototypeDb>(o =>
{
    o.UseSqlite($"Data Source={database}");
    o.UseOpenIddict();
});

builder.Services.AddOpenIddict()
    .AddCore(o => o.UseEntityFrameworkCore().UseDbContext<PrototypeDb>())
    .AddServer(o =>
    {
        // Customisation 1: Entra's tenant segment. OpenIddict's endpoints are fixed paths; TenantPaths (below) strips the
        // segment before OpenIddict sees the request and keeps it for the issuer and the tid claim.
        o.SetAuthorizationEndpointUris("oauth2/v2.0/authorize").SetTokenEndpointUris("oauth2/v2.0/token");
        o.SetIssuer(new Uri("https://login.gatehouse.test/"));
        o.AllowAuthorizationCodeFlow().AllowRefreshTokenFlow();

        // Customisation 2: srv_challenge (RDS AAD's nonce) as a custom grant, answered by the token endpoint below.
        o.AllowCustomFlow(Rdp.ServerChallengeGrant);
        o.RegisterScopes(Scopes.OpenId, Scopes.OfflineAccess, Rdp.Scope);
        o.AddEphemeralEncryptionKey().AddEphemeralSigningKey();

        // Customisation 3: the gateway reads the access token (cnf.kid, oid, tid): a signed JWT, not encrypted.
        o.DisableAccessTokenEncryption();
        o.UseAspNetCore()
            .EnableAuthorizationEndpointPassthrough()
            .EnableTokenEndpointPassthrough()
            .DisableTransportSecurityRequirement();

        // Customisation 7b: OpenIddict drops a "cnf" claim set on the principal (it owns cnf for its mTLS-bound tokens),
        // so cnf.kid goes straight into the access token's descriptor just before it is signed.
        o.AddEventHandler<OpenIddictServerEvents.GenerateTokenContext>(b => b.UseInlineHandler(context =>
        {
            if (context.TokenType == TokenTypeIdentifiers.AccessToken
                && context.Request?["req_cnf"] is { } reqCnf
                && Rdp.TryReadReqCnf((string?)reqCnf, out var kid))
            {
                context.SecurityTokenDescriptor.Claims ??= new Dictionary<string, object>(StringComparer.Ordinal);
                context.SecurityTokenDescriptor.Claims["cnf"] = new Dictionary<string, object> { ["kid"] = kid };
            }

            return default;
        }).SetOrder(OpenIddictServerHandlers.Protection.GenerateIdentityModelToken.Descriptor.Order - 1));

        // Customisation 4b: Entra accepts (and MSAL and FreeRDP send) scope with the code; OpenIddict refuses it (ID2074).
        o.AddEventHandler<OpenIddictServerEvents.ExtractTokenRequestContext>(b => b.UseInlineHandler(context =>
        {
            if (context.Request is { } request && request.IsAuthorizationCodeGrantType())
            {
                request.Scope = null;
            }

            return default;
        }).SetOrder(int.MaxValue));

        // Customisation 4: AADSTS-shaped errors (error_codes, "AADSTSnnnn: " descriptions, timestamp, trace_id, correlation_id).
        o.AddEventHandler<OpenIddictServerEvents.ApplyTokenResponseContext>(b => b.UseInlineHandler(context =>
        {
            AadErrors.Shape(context.Transaction, context.Response);

            // Customisation 8: a PoP-bound token is token_type "pop" (MSAL's PoP scheme checks it).
            if (context.Response.AccessToken is not null && context.Request?["req_cnf"] is not null)
            {
                context.Response.TokenType = "pop";
            }

            return default;
        }));
        o.AddEventHandler<OpenIddictServerEvents.ApplyAuthorizationResponseContext>(b => b.UseInlineHandler(context =>
        {
            AadErrors.Shape(context.Transaction, context.Response);
            return default;
        }));
    });

var app = builder.Build();
await using (var scope = app.Services.CreateAsyncScope())
{
    await scope.ServiceProvider.GetRequiredService<PrototypeDb>().Database.EnsureCreatedAsync();
    await Rdp.SeedClientAsync(scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>());
}

app.Use(TenantPaths.StripAsync);
app.UseRouting();
app.UseAuthentication();

app.MapMethods("oauth2/v2.0/authorize", ["GET", "POST"], async (HttpContext context) =>
{
    var request = context.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenIddict request");

    // Customisation 5: the RDP scope names a host; only registered hosts (here: Rdp.Host) are accepted (AADSTS500011).
    if (!request.HasScope(Rdp.Scope))
    {
        return Forbid(Errors.InvalidScope, "AADSTS500011: The resource principal named in the scope was not found in the tenant.");
    }

    // Customisation 6: prompt=none has no SSO session to use (AADSTS50058).
    if (request.HasPromptValue(PromptValues.None) || string.IsNullOrEmpty(request.LoginHint))
    {
        return Forbid(Errors.LoginRequired, "AADSTS50058: A silent sign-in request was sent but no user is signed in.");
    }

    var tenant = TenantPaths.Of(context);
    var identity = new ClaimsIdentity(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
    identity.SetClaim(Claims.Subject, Rdp.ObjectId(request.LoginHint))
        .SetClaim("oid", Rdp.ObjectId(request.LoginHint))
        .SetClaim("tid", tenant)
        .SetClaim("upn", request.LoginHint)
        .SetClaim(Claims.Name, request.LoginHint);
    identity.SetClaims("amr", ["pwd"]);
    identity.SetScopes(request.GetScopes());
    identity.SetResources(Rdp.Resource);
    identity.SetDestinations(_ => [Destinations.AccessToken]);
    return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
});

app.MapPost("oauth2/v2.0/token", async (HttpContext context) =>
{
    var request = context.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("not an OpenIddict request");
    if (request.GrantType == Rdp.ServerChallengeGrant)
    {
        // RDS AAD's nonce: {"Nonce": "..."} and nothing else (not an OAuth token response).
        return Results.Json(new Dictionary<string, string> { ["Nonce"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) });
    }

    if (!request.IsAuthorizationCodeGrantType() && !request.IsRefreshTokenGrantType())
    {
        return Forbid(Errors.UnsupportedGrantType, "AADSTS70003: The app requested an unsupported grant type.");
    }

    // Customisation 7: req_cnf (PoP): a base64url JSON {"kid": "<JWK thumbprint>"} becomes cnf.kid in the access token.
    if (!Rdp.TryReadReqCnf((string?)request["req_cnf"], out var kid))
    {
        return Forbid(Errors.InvalidRequest, "AADSTS50011: The request body must contain the following parameter: 'req_cnf'.");
    }

    var result = await context.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    if (result.Principal is not { } principal)
    {
        return Forbid(Errors.InvalidGrant, "AADSTS70000: The provided authorization code or refresh token is invalid.");
    }

    var identity = new ClaimsIdentity(principal.Claims, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme, Claims.Name, Claims.Role);
    _ = kid; // cnf.kid is written by the GenerateTokenContext handler (customisation 7b): a cnf claim here is dropped.
    identity.SetClaim("scp", "user_impersonation").SetClaim("ver", "2.0").SetClaim("appid", Rdp.ClientId);
    identity.SetDestinations(_ => [Destinations.AccessToken]);
    return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
});

app.MapGet("/healthz", () => "ok");
app.Run();

static IResult Forbid(string error, string description) => Results.Forbid(
    new AuthenticationProperties(new Dictionary<string, string?>
    {
        [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
        [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
    }),
    [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);

/// <summary>OpenIddict's four entities (applications, authorizations, scopes, tokens) in SQLite.</summary>
internal sealed class PrototypeDb(DbContextOptions<PrototypeDb> options) : DbContext(options);

/// <summary>The RDP client, its scope and its PoP parameter.</summary>
internal static class Rdp
{
    public const string ClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    public const string RedirectUri = "ms-appx-web://Microsoft.AAD.BrokerPlugin/a85cf173-4192-42f8-81fa-777a763e6e2c";
    public const string Host = "host1.gatehouse.test";
    public const string Resource = "ms-device-service://termsrv.wvd.microsoft.com/name/" + Host;
    public const string Scope = Resource + "/user_impersonation";
    public const string ServerChallengeGrant = "srv_challenge";

    public static string ObjectId(string upn) => new Guid(SHA256.HashData(Encoding.UTF8.GetBytes(upn.ToUpperInvariant()))[..16]).ToString("D");

    public static async Task SeedClientAsync(IOpenIddictApplicationManager applications)
    {
        if (await applications.FindByClientIdAsync(ClientId) is not null)
        {
            return;
        }

        await applications.CreateAsync(new OpenIddictApplicationDescriptor
        {
            ClientId = ClientId,
            ClientType = ClientTypes.Public,
            ApplicationType = ApplicationTypes.Native,
            DisplayName = "Microsoft Remote Desktop",
            RedirectUris = { new Uri(RedirectUri), new Uri("https://login.microsoftonline.com/common/oauth2/nativeclient") },
            Permissions =
            {
                Permissions.Endpoints.Authorization,
                Permissions.Endpoints.Token,
                Permissions.GrantTypes.AuthorizationCode,
                Permissions.GrantTypes.RefreshToken,
                Permissions.Prefixes.GrantType + ServerChallengeGrant,
                Permissions.ResponseTypes.Code,
                Permissions.Prefixes.Scope + Scope,
                Permissions.Prefixes.Scope + Scopes.OfflineAccess,
            },
        });
    }

    /// <summary>req_cnf: base64url of {"kid":"&lt;43-character base64url thumbprint&gt;"}, at most 512 characters.</summary>
    public static bool TryReadReqCnf(string? reqCnf, out string kid)
    {
        kid = "";
        if (string.IsNullOrEmpty(reqCnf) || reqCnf.Length > 512)
        {
            return false;
        }

        try
        {
            var padded = reqCnf.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - (padded.Length % 4)) % 4);
            using var json = JsonDocument.Parse(Convert.FromBase64String(padded), new JsonDocumentOptions { MaxDepth = 4 });
            if (json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty("kid", out var value)
                && value.ValueKind == JsonValueKind.String
                && value.GetString() is { Length: 43 } text
                && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                kid = text;
                return true;
            }
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
        }

        return false;
    }
}

/// <summary>Entra's /{tenant}/ path segment, stripped before OpenIddict matches its fixed endpoint paths.</summary>
internal static class TenantPaths
{
    private const string Key = "gatehouse.tenant";

    public static string Of(HttpContext context) => context.Items[Key] as string ?? "common";

    public static Task StripAsync(HttpContext context, Func<Task> next)
    {
        var path = context.Request.Path.Value ?? "";
        var slash = path.IndexOf('/', 1);
        if (slash > 1 && path.AsSpan(slash).StartsWith("/oauth2/v2.0/", StringComparison.Ordinal) && slash <= 64)
        {
            context.Items[Key] = path[1..slash];
            context.Request.PathBase = context.Request.PathBase.Add(path[..slash]);
            context.Request.Path = path[slash..];
        }

        return next();
    }
}

/// <summary>OpenIddict's errors reshaped as Entra's (MSAL reads error_codes; users search the AADSTS number).</summary>
internal static class AadErrors
{
    public static void Shape(OpenIddictServerTransaction transaction, OpenIddictResponse response)
    {
        if (string.IsNullOrEmpty(response.Error))
        {
            return;
        }

        var description = response.ErrorDescription ?? "";
        var code = description.StartsWith("AADSTS", StringComparison.Ordinal)
            ? int.Parse(description[6..description.IndexOf(':', StringComparison.Ordinal)], CultureInfo.InvariantCulture)
            : MapOpenIddict(response.ErrorUri, response.Error);
        if (!description.StartsWith("AADSTS", StringComparison.Ordinal))
        {
            description = $"AADSTS{code}: {description}";
        }

        response.ErrorDescription = description;
        response.ErrorUri = null;
        response["error_codes"] = new JsonArray(code);
        response["timestamp"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        response["trace_id"] = Guid.NewGuid().ToString("D");
        response["correlation_id"] = Guid.NewGuid().ToString("D");
        _ = transaction;
    }

    /// <summary>OpenIddict's error ids (the end of error_uri) to the AADSTS codes the clients know.</summary>
    private static int MapOpenIddict(string? errorUri, string error)
    {
        var id = errorUri is null ? "" : errorUri[(errorUri.LastIndexOf('/') + 1)..];
        return id switch
        {
            "ID2001" or "ID2002" => 70000,    // invalid / malformed code
            "ID2016" or "ID2017" => 70008,    // expired
            "ID2010" or "ID2012" => 54005,    // already redeemed
            "ID2052" => 501481,               // code_verifier mismatch
            "ID2072" or "ID2073" => 500112,   // redirect_uri mismatch
            _ => error switch
            {
                Errors.InvalidClient => 700016,
                Errors.InvalidGrant => 70000,
                Errors.InvalidScope => 70011,
                Errors.UnsupportedGrantType => 70003,
                _ => 900144,
            },
        };
    }
}
