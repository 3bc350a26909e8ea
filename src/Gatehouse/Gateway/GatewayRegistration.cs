using System.Net;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Hold;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Identity.Gateway;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway;

/// <summary>
/// The RDP listener, kept so the bound port can be reported (it is 0 until bound): the gateway's own accept loop, or the
/// Kestrel endpoint when <c>Gatehouse:Gateway:Listener</c> is <c>Kestrel</c>.
/// </summary>
internal sealed class RdpListener
{
    public ListenOptions? Options { get; set; }

    public Transport.RdpSocketListener? Socket { get; set; }

    public IPEndPoint EndPoint => Socket?.EndPoint ?? Options?.IPEndPoint ?? throw new InvalidOperationException("the RDP listener is not configured");
}

/// <summary>Registration of the RDP gateway inside <c>gatehouse serve</c>.</summary>
internal static class GatewayRegistration
{
    /// <summary>
    /// The HTTP client for the remote identity provider's JWKS: HTTP/1.1 or newer, a 10 s timeout, and the IdP's
    /// certificate either pinned by its SHA-256 (a self-signed IdP) or validated against the system's trust store.
    /// </summary>
    internal static HttpClient RemoteJwksClient(string? pinnedSha256)
    {
#pragma warning disable CA2000 // The handler is owned by the client, which lives as long as the host.
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(10) };
#pragma warning restore CA2000
        if (!string.IsNullOrEmpty(pinnedSha256))
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is not null && string.Equals(
                    Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(certificate.GetRawCertData())), pinnedSha256, StringComparison.OrdinalIgnoreCase);
        }

        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>
    /// Registers the gateway: limits from <paramref name="section"/> (<c>Gatehouse:Gateway</c>), the pre-authentication
    /// caps, the web-account sign-in against the in-process identity provider, authorisation through the access
    /// service, session records and kill requests in the store, and the sign-in log.
    /// </summary>
    public static IServiceCollection AddRdpGateway(this IServiceCollection services, IConfigurationSection section, X509Certificate2 certificate, string nodeName)
    {
        var options = new GatewayOptions();
        var webAccount = new WebAccountOptions();
        try
        {
            section.Bind(options);
            section.GetSection("WebAccount").Bind(webAccount);
        }
        catch (InvalidOperationException e)
        {
            throw new Hosting.StartupException($"Invalid configuration in Gatehouse:Gateway: {e.Message}");
        }

        if (options.ClientInfoTimeout < TimeSpan.FromSeconds(1) || options.ClientInfoTimeout > TimeSpan.FromMinutes(5))
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:ClientInfoTimeout {options.ClientInfoTimeout} is out of range; use 00:00:01-00:05:00.");
        }

        if (options.DrainTimeout < TimeSpan.Zero || options.DrainTimeout > TimeSpan.FromHours(24))
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:DrainTimeout {options.DrainTimeout} is out of range; use 00:00:00-1.00:00:00.");
        }

        if (options.MaxUnauthenticatedHostLegsPerHost is < 1 or > 1024)
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:MaxUnauthenticatedHostLegsPerHost {options.MaxUnauthenticatedHostLegsPerHost} is out of range; use 1-1024.");
        }

        if (options.MaxClientInfoBytes is < 1024 or > 64 * 1024)
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:MaxClientInfoBytes {options.MaxClientInfoBytes} is out of range; use 1024-65536.");
        }

        if (options.CredSspTimeout < TimeSpan.FromSeconds(1) || options.CredSspTimeout > TimeSpan.FromMinutes(5))
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:CredSspTimeout {options.CredSspTimeout} is out of range; use 00:00:01-00:05:00.");
        }

        if (options.SignInDecisionTimeout < TimeSpan.FromSeconds(5) || options.SignInDecisionTimeout > TimeSpan.FromMinutes(5))
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:SignInDecisionTimeout {options.SignInDecisionTimeout} is out of range; use 00:00:05-00:05:00.");
        }

        if (options.RelayBufferBytes is < Relay.RelaySettings.MinBufferBytes or > Relay.RelaySettings.MaxBufferBytes)
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:RelayBufferBytes {options.RelayBufferBytes} is out of range; use {Relay.RelaySettings.MinBufferBytes}-{Relay.RelaySettings.MaxBufferBytes}.");
        }

        if (options.MaxAssertionBytes is < 1024 or > 1024 * 1024 || options.MaxPendingConnections < 1 || options.MaxPendingConnectionsPerAddress < 1)
        {
            throw new Hosting.StartupException("Gatehouse:Gateway: MaxAssertionBytes must be 1 KiB-1 MiB and the pending-connection caps at least 1.");
        }

        if (options.HoldScreen.Validate().FirstOrDefault() is { } holdProblem)
        {
            throw new Hosting.StartupException(holdProblem);
        }

        if (options.SignInMethods.HasFlag(SignInMethods.QrSignIn) && (!options.HoldScreen.Enabled || !options.HoldScreen.TlsSignIn))
        {
            throw new Hosting.StartupException("Gatehouse:Gateway:SignInMethods has QrSignIn, which the hold screen shows: set Gatehouse:Gateway:HoldScreen:Enabled and HoldScreen:TlsSignIn to true, or remove QrSignIn.");
        }

        if (!HoldScreenPainter.TryCreate(new HoldScreenAppearance { OrganisationName = options.HoldScreen.OrganisationName, LogoPath = options.HoldScreen.LogoPath }, out var painter, out var logoError))
        {
            throw new Hosting.StartupException($"Gatehouse:Gateway:HoldScreen:LogoPath '{options.HoldScreen.LogoPath}' cannot be used: {logoError}. Use a small 8-bit RGB or RGBA PNG.");
        }

        var jwksUrl = options.JwksUrl;
        if (!string.IsNullOrWhiteSpace(jwksUrl))
        {
            if (!Uri.TryCreate(jwksUrl, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps)
            {
                throw new Hosting.StartupException($"Gatehouse:Gateway:JwksUrl '{jwksUrl}' is not an https URL (the identity provider's /common/discovery/v2.0/keys).");
            }

            var pin = options.JwksCertificateSha256?.Replace(":", string.Empty, StringComparison.Ordinal);
            services.AddSingleton(sp => new Identity.RemoteJwks(RemoteJwksClient(pin), url, sp.GetRequiredService<TimeProvider>()));
        }

        services.AddSingleton(Options.Create(options));
        services.AddSingleton(new PreauthAdmission(options.MaxPendingConnections, options.MaxPendingConnectionsPerAddress));
        services.AddSingleton(new GatewayCertificate(certificate));
        services.AddSingleton(webAccount);
        services.AddSingleton(new GatewayNode(nodeName));
        services.AddSingleton<IWebAccountDirectory, IdentityWebAccountDirectory>();
        services.AddSingleton<HostKeyTrust>();
        services.AddSingleton<ISignInAuthorizer, AccessSignInAuthorizer>();
        services.AddSingleton<AssertionValidator>();
        services.AddSingleton<ISignInMethod, WebAccountAuthenticator>();
        if ((options.SignInMethods & (SignInMethods.Nla | SignInMethods.Tls | SignInMethods.QrSignIn)) != 0)
        {
            services.AddSingleton<Nla.INlaDirectory, IdentityNlaDirectory>();
        }

        if (options.SignInMethods.HasFlag(SignInMethods.Nla))
        {
            services.AddSingleton<ISignInMethod, Nla.NlaAuthenticator>();
        }

        if ((options.SignInMethods & (SignInMethods.Tls | SignInMethods.QrSignIn)) != 0)
        {
            // The QR sign-in's reconnect is a TLS sign-in that proves the handover's secret.
            services.AddSingleton<ISignInMethod, Tls.TlsAuthenticator>();
        }
        services.AddSingleton(painter!);
        services.AddSingleton(sp => new RoutingTokens(sp.GetRequiredService<TimeProvider>(), options.HoldScreen.RoutingTokenLifetime, options.HoldScreen.MaxOutstandingRoutingTokens));
        services.AddSingleton<IHoldDirectory>(sp => new IdentityHoldDirectory(
            sp.GetRequiredService<IServiceScopeFactory>(),
            sp.GetRequiredService<Idp.AccountAttemptLimiter>(),
            sp.GetRequiredService<TimeProvider>(),
            "sign in once on the identity provider's page ('gatehouse login' opens it) and follow its set-up steps"));
        services.AddSingleton<IQrSignInDirectory>(sp => new IdentityQrSignIn(
            sp.GetRequiredService<IServiceScopeFactory>(),
            sp.GetRequiredService<Idp.IdpUrls>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<HoldPhase>();
        services.AddSingleton<SessionRegistry>();
        services.AddSingleton(sp => new SessionDrain(sp.GetRequiredService<SessionRegistry>(), sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<SessionDrainOnStop>();
        services.AddHealthChecks().AddCheck<SessionDrainHealthCheck>(SessionDrainHealthCheck.Name);
        services.PostConfigure<HostOptions>(h =>
        {
            // The host must not give up on the live connections before the drain ends them.
            var needed = options.DrainTimeout + TimeSpan.FromSeconds(5);
            if (h.ShutdownTimeout < needed)
            {
                h.ShutdownTimeout = needed;
            }
        });
        services.AddSingleton<SessionOpener>();
        services.AddSingleton<IGatewaySignInLog, StoreGatewaySignInLog>();
        services.AddSingleton<ISessionJournal, StoreSessionJournal>();
        services.AddHostedService<SessionKillWatcher>();
        services.AddSingleton<SessionKillListener>();
        services.AddHostedService(sp => sp.GetRequiredService<SessionKillListener>());
        services.AddSingleton<LiveSessionReevaluator>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveSessionReevaluator>());
        return services;
    }
}
