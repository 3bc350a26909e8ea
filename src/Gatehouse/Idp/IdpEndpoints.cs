using Gatehouse.Storage;

namespace Gatehouse.Idp;

/// <summary>Registers the identity provider's services and maps its Entra-shaped routes.</summary>
internal static class IdpEndpoints
{
    public static IServiceCollection AddIdp(this IServiceCollection services, string publicName, IdpLimits limits)
    {
        services.AddSingleton(new IdpUrls(publicName));
        services.AddSingleton(limits);
        services.AddSingleton(sp => new AccountAttemptLimiter(limits.AttemptsPerAccountPerMinute, sp.GetRequiredService<IServiceScopeFactory>(), sp.GetService<TimeProvider>()));
        services.AddSingleton(sp => new UserCodeAttemptLimiter(limits.WrongUserCodesPerWindow, limits.WrongUserCodeWindow, sp.GetRequiredService<IServiceScopeFactory>(), sp.GetService<TimeProvider>()));
        services.AddScoped<DeviceCodeEndpoint>();
        services.AddScoped<DeviceLoginEndpoint>();
        services.AddScoped<RevokeEndpoint>();
        services.AddHostedService<IdpPurgeService>();
        services.AddSingleton(sp => new SignInTransactionProtector(
            sp.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>(), limits.SignInLifetime));
        services.AddSingleton<IdpSignInLog>();
        services.AddScoped<SignInEngine>();
        services.AddScoped<AuthorizeEndpoint>();
        services.AddScoped<TokenEndpoint>();
        services.AddScoped<DiscoveryEndpoints>();
        services.AddSingleton(sp => new IdpDocumentCache(sp.GetRequiredService<TimeProvider>()));
        services.AddAntiforgery(options =>
        {
            options.Cookie.Name = "__Host-gatehouse-af";
            options.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            options.Cookie.SameSite = SameSiteMode.Strict;
            options.Cookie.Path = "/";
            options.FormFieldName = "__RequestVerificationToken";
            options.SuppressXFrameOptionsHeader = true;
        });
        services.AddSingleton(sp => new AddressRequestLimiter(limits.RequestsPerAddressPerMinute, TimeSpan.FromMinutes(1), sp.GetService<TimeProvider>() ?? TimeProvider.System));
        return services;
    }

    public static void MapIdp(this WebApplication app)
    {
        app.UseAddressRequestLimit();
        var idp = app.MapGroup("/{tenant}").WithMetadata(AddressRequestLimit.Instance);
        // A document kept in memory is sent without creating the scoped services (and their database context).
        idp.MapGet("/v2.0/.well-known/openid-configuration", (HttpContext c, string tenant, IdpDocumentCache cache) =>
            cache.DiscoveryDocument(tenant) is { } kept
                ? Responses.DocumentAsync(c, kept)
                : c.RequestServices.GetRequiredService<DiscoveryEndpoints>().ConfigurationAsync(c, tenant));
        idp.MapGet("/discovery/v2.0/keys", (HttpContext c, string tenant, IdpDocumentCache cache) =>
            cache.TenantKnown(tenant) && cache.JwksDocument() is { } kept
                ? Responses.DocumentAsync(c, kept)
                : c.RequestServices.GetRequiredService<DiscoveryEndpoints>().KeysAsync(c, tenant));
        idp.MapGet("/oauth2/v2.0/authorize", (HttpContext c, string tenant, AuthorizeEndpoint e) => e.GetAsync(c, tenant));
        idp.MapPost("/oauth2/v2.0/authorize", (HttpContext c, string tenant, AuthorizeEndpoint e) => e.PostAsync(c, tenant)).DisableAntiforgery();
        idp.MapGet("/mysignins/security-info", (HttpContext c, string tenant, AuthorizeEndpoint e) => e.SecurityInfoGetAsync(c, tenant));
        idp.MapPost("/mysignins/security-info", (HttpContext c, string tenant, AuthorizeEndpoint e) => e.PostAsync(c, tenant, securityInfo: true)).DisableAntiforgery();
        idp.MapPost("/oauth2/v2.0/token", (HttpContext c, string tenant, TokenEndpoint e) => e.PostAsync(c, tenant)).DisableAntiforgery();
        idp.MapPost("/oauth2/v2.0/devicecode", (HttpContext c, string tenant, DeviceCodeEndpoint e) => e.PostAsync(c, tenant)).DisableAntiforgery();
        idp.MapPost("/oauth2/v2.0/revoke", (HttpContext c, string tenant, RevokeEndpoint e) => e.PostAsync(c, tenant)).DisableAntiforgery();
        var deviceLogin = app.MapGroup("/devicelogin").WithMetadata(AddressRequestLimit.Instance);
        deviceLogin.MapGet(string.Empty, (HttpContext c, DeviceLoginEndpoint e) => e.GetAsync(c));
        deviceLogin.MapPost(string.Empty, (HttpContext c, DeviceLoginEndpoint e) => e.PostAsync(c)).DisableAntiforgery();
        idp.MapGet("/oauth2/nativeclient", NativeClientAsync);
    }

    /// <summary>
    /// Refuses a request to an endpoint marked with <see cref="AddressRequestLimit"/> once its address has used up
    /// <see cref="IdpLimits.RequestsPerAddressPerMinute"/>: <c>429</c>, <c>Retry-After: 60</c> and the OAuth error body
    /// (<see cref="AadError.TooManyRequests"/>), before the endpoint's services are created, as ASP.NET Core's rate limiter did.
    /// </summary>
    private static void UseAddressRequestLimit(this WebApplication app)
    {
        var limiter = app.Services.GetRequiredService<AddressRequestLimiter>();
        app.Use((context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<AddressRequestLimit>() is null
                || limiter.TryAcquire(context.Connection.RemoteIpAddress?.ToString() ?? "unknown"))
            {
                return next(context);
            }

            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = "60";
            return Responses.OAuthErrorAsync(context, AadError.TooManyRequests, StatusCodes.Status429TooManyRequests);
        });
    }

    /// <summary>
    /// Where FreeRDP 3.16+ sends the browser (its redirect URI for this client): the page shows the whole address to
    /// paste into the client, as the <c>ms-appx-web:</c> path does.
    /// </summary>
    private static Task NativeClientAsync(HttpContext context, string tenant)
    {
        var request = context.Request;
        var url = $"{request.Scheme}://{request.Host}{request.PathBase}{request.Path}{request.QueryString}";
        if (!request.Query.ContainsKey("code"))
        {
            return Responses.HtmlAsync(context, StatusCodes.Status400BadRequest, "Sign-in error", _ => SignInPages.ErrorPage(
                AadError.BadRequest.With(request.Query.TryGetValue("error_description", out var d) ? d.ToString() : "this page needs the code from a sign-in; start again from your remote desktop client"),
                context.TraceIdentifier));
        }

        return Responses.HtmlAsync(context, StatusCodes.Status200OK, "Copy the address", nonce => SignInPages.CopyRedirect(nonce, url, string.Empty));
    }
}

/// <summary>
/// Caps password and one-time-code attempts per account (whatever the address), on top of the lockout: a slow spray
/// across many addresses, or a code-guessing run, is throttled per account. The attempts are counted in the store
/// (<see cref="StoreStartup.CountAttempt"/>, one atomic upsert per attempt), on SQLite as on PostgreSQL, so every node
/// sharing a store counts into the same window: N nodes together allow <c>perMinute</c> attempts, not N times that.
/// One code path for both providers; an attempt costs one small write, next to the password hash it guards.
/// </summary>
internal sealed class AccountAttemptLimiter(int perMinute, IServiceScopeFactory scopes, TimeProvider? time = null)
{
    /// <summary>The window the limit applies to.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly int _limit = Math.Max(1, perMinute);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>True when one more attempt for <paramref name="account"/> is allowed now (the attempt is counted).</summary>
    public bool TryAttempt(string account)
    {
        ArgumentNullException.ThrowIfNull(account);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        return StoreStartup.CountAttempt(db, Key(account), _time.GetUtcNow(), Window) <= _limit;
    }

    /// <summary>Asynchronous <see cref="TryAttempt"/>.</summary>
    public async Task<bool> TryAttemptAsync(string account, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(account);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        return await StoreStartup.CountAttemptAsync(db, Key(account), _time.GetUtcNow(), Window, cancellationToken).ConfigureAwait(false) <= _limit;
    }

    /// <summary>The prefix of this limiter's keys in the store.</summary>
    public const string KeyPrefix = "account:";

    private static string Key(string account) => KeyPrefix + account.Trim().ToUpperInvariant();
}

/// <summary>Endpoint metadata: the endpoint counts against <see cref="IdpLimits.RequestsPerAddressPerMinute"/>.</summary>
internal sealed class AddressRequestLimit
{
    /// <summary>The one instance (the marker has no state).</summary>
    public static readonly AddressRequestLimit Instance = new();

    private AddressRequestLimit()
    {
    }
}

/// <summary>Identity-provider limits (configuration section <c>Gatehouse:Limits</c>).</summary>
internal sealed record IdpLimits
{
    /// <summary>Requests one address may make per minute to the identity provider's endpoints (<see cref="AddressRequestLimiter"/>).</summary>
    public int RequestsPerAddressPerMinute { get; init; } = 300;

    /// <summary>Password and one-time-code attempts per account per minute, from any address.</summary>
    public int AttemptsPerAccountPerMinute { get; init; } = 20;

    public TimeSpan SignInLifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>How long a device code of <c>gatehouse login</c> lives (RFC 8628 <c>expires_in</c>; Entra: 900 s).</summary>
    public TimeSpan DeviceCodeLifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The polling interval the device-code client is told (RFC 8628 <c>interval</c>).</summary>
    public TimeSpan DeviceCodePollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Unexpired, unredeemed device codes one address may hold.</summary>
    public int PendingDeviceCodesPerAddress { get; init; } = 10;

    /// <summary>Wrong user codes on <c>/devicelogin</c> a browser, or an address, may enter per <see cref="WrongUserCodeWindow"/> before it must wait.</summary>
    public int WrongUserCodesPerWindow { get; init; } = 5;

    /// <summary>The window of <see cref="WrongUserCodesPerWindow"/>.</summary>
    public TimeSpan WrongUserCodeWindow { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Throttles guessing of device sign-in user codes on <c>/devicelogin</c>: wrong codes are counted per address and per
/// browser (its sign-in cookie); once either has used up its allowance, codes are not even looked up until the window
/// has passed. An attempt is taken (<see cref="TryAcquire"/>) before the code is looked up, for all its keys, so a
/// concurrent burst gets no more than the allowance; a right code gives it back (<see cref="Release"/>): only wrong
/// codes count. Counted in the store (<see cref="StoreStartup.CountAttempt"/>), so every node sharing it counts into the
/// same windows. A refused attempt takes back what it counted; under a concurrent burst a key may briefly count more
/// than it holds, which only refuses sooner, never allows more.
/// </summary>
internal sealed class UserCodeAttemptLimiter(int perWindow, TimeSpan window, IServiceScopeFactory scopes, TimeProvider? time = null)
{
    /// <summary>The prefix of this limiter's keys in the store.</summary>
    public const string KeyPrefix = "usercode:";

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly int _limit = Math.Max(1, perWindow);

    /// <summary>The window the allowance applies to.</summary>
    public TimeSpan Window { get; } = window > TimeSpan.Zero ? window : TimeSpan.FromMinutes(5);

    /// <summary>
    /// Takes one attempt from every one of <paramref name="keys"/>; false, taking nothing, when any of them has none
    /// left in its window.
    /// </summary>
    public bool TryAcquire(params string[] keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var now = _time.GetUtcNow();
        var counted = new List<string>(keys.Length);
        foreach (var key in keys)
        {
            counted.Add(key);
            if (StoreStartup.CountAttempt(db, KeyPrefix + key, now, Window) > _limit)
            {
                foreach (var taken in counted)
                {
                    StoreStartup.UncountAttempt(db, KeyPrefix + taken, now, Window);
                }

                return false;
            }
        }

        return true;
    }

    /// <summary>Gives back the attempt <see cref="TryAcquire"/> took (the code was right), in windows still running.</summary>
    public void Release(params string[] keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var now = _time.GetUtcNow();
        foreach (var key in keys)
        {
            StoreStartup.UncountAttempt(db, KeyPrefix + key, now, Window);
        }
    }
}
