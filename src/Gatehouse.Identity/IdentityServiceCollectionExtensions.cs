using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Gatehouse.Identity;

/// <summary>Registration of the identity services (the store is registered separately with <c>AddGatehouseStore</c>).</summary>
public static class IdentityServiceCollectionExtensions
{
    /// <summary>Registers the identity services (scoped, over the scoped <c>GatehouseDbContext</c>) and Data Protection.</summary>
    public static IServiceCollection AddGatehouseIdentity(this IServiceCollection services, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.TryAddSingleton(new PasswordHasher());
        services.AddDataProtection();
        services.AddScoped<DirectoryService>();
        services.AddScoped<SignInService>();
        services.AddScoped<ConsentService>();
        services.AddScoped<SigningKeyService>();
        services.AddScoped<TokenService>();
        services.AddScoped<AdminTokenService>();
        services.AddScoped<ServerChallengeService>();
        services.AddScoped<AuthorizationCodeService>();
        services.TryAddSingleton<CodeRedemption>();
        services.AddScoped<RefreshTokenService>();
        services.AddScoped<DeviceCodeService>();
        services.AddScoped<AccessService>();
        services.AddScoped<ISignInLogHeadStore, StoreSignInLogHeadStore>();
        services.TryAddSingleton<SignInLogWriter>();
        services.AddScoped<SignInLogService>();
        services.AddScoped<SessionStore>();
        services.AddScoped<PasskeyService>();
        services.AddScoped<TemporaryAccessPassService>();
        return services;
    }
}
