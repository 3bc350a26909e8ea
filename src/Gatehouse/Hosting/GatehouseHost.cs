using System.Net;
using Gatehouse.Gateway;
using Gatehouse.Identity;
using Gatehouse.Idp;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>What the command line hands to the host: an optional JSON file and the flags as configuration keys.</summary>
internal sealed record HostSettings
{
    public string? ConfigFile { get; init; }

    /// <summary>Configuration keys set by flags (highest precedence), e.g. <c>Gatehouse:DataDirectory</c>.</summary>
    public IReadOnlyDictionary<string, string?> Overrides { get; init; } = new Dictionary<string, string?>();

    /// <summary>Where first-run messages go (the administrator's temporary password is printed here once).</summary>
    public TextWriter Console { get; init; } = System.Console.Out;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Last changes to the services before the host is built (tests add in-memory telemetry exporters here).</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }
}

/// <summary>
/// Builds the one ASP.NET Core host behind <c>gatehouse serve</c>. Configuration precedence, lowest first: embedded
/// defaults, <c>appsettings.json</c> in the working directory, the <c>--config</c> file, environment variables
/// (<c>Gatehouse__PublicName</c>), flags.
/// </summary>
internal static class GatehouseHost
{
    /// <summary>Quiet request logging by default; the sign-in log is the place for per-request detail.</summary>
    private static readonly Dictionary<string, string?> EmbeddedDefaults = new()
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "Warning",

        // Readiness reports a failed check itself, once per change (Gatehouse.Hosting.DatabaseHealthCheck); the health
        // check service would add an Error entry for every probe of the load balancer.
        ["Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks"] = "Critical",
    };

    public static WebApplication Build(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // appsettings.json in the working directory is read once, as the --config file is: with ASP.NET Core's default
        // (reloadOnChange) a file watcher covers the content root and every folder below it, and under systemd that is
        // /var/lib/gatehouse, the data directory, so each SQLite write woke the watcher's thread. Nothing here reads
        // configuration again after start (docs/benchmarks.md, "Idle CPU of gatehouse serve": the file watcher).
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"], ContentRootPath = Environment.CurrentDirectory });

        // Embedded defaults sit below every other source.
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = EmbeddedDefaults });
        if (settings.ConfigFile is { } file)
        {
            if (!File.Exists(file))
            {
                throw new StartupException($"The configuration file {file} does not exist; check the --config path.");
            }

            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
            builder.Configuration.AddEnvironmentVariables();
        }

        builder.Configuration.AddInMemoryCollection(settings.Overrides);
        builder.Logging.AddEscapingConsoleFormatter();

        var options = new GatehouseOptions();
        try
        {
            builder.Configuration.GetSection(GatehouseOptions.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new StartupException($"Invalid configuration in the Gatehouse section: {e.Message}");
        }

        // Relative to the working directory (not the content root or the executable's folder), as every path on the
        // command line; empty means the default.
        options.DataDirectory = Path.GetFullPath(string.IsNullOrWhiteSpace(options.DataDirectory) ? GatehouseOptions.DefaultDataDirectory : options.DataDirectory);
        var listen = ListenAddress.ParseList(options.Urls);
        options.PublicName ??= DefaultPublicName(listen[0].Port);
        if (options.RdpPort is < 0 or > 65535)
        {
            throw new StartupException($"Gatehouse:RdpPort {options.RdpPort} is out of range; use 1-65535 (0 picks a free port).");
        }

        var rdpAddress = listen[0].Address;
        if (!string.IsNullOrWhiteSpace(options.RdpAddress) && !IPAddress.TryParse(options.RdpAddress, out rdpAddress))
        {
            throw new StartupException($"Gatehouse:RdpAddress '{options.RdpAddress}' is not an IP address.");
        }

        IReadOnlyList<ModeChange> madePrivate;
        try
        {
            madePrivate = PrivateDataDirectory.Prepare(options.DataDirectory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot create the data directory {options.DataDirectory}: {e.Message}. Choose another with --data.");
        }

        var publicHost = PublicHost(options.PublicName);
        var (certificate, source, certificatePath) = TlsCertificates.Load(options.Tls, options.DataDirectory, publicHost, settings.Time);

        var metricsOptions = new Gatehouse.Metrics.MetricsOptions();
        builder.Configuration.GetSection("Gatehouse:Metrics").Bind(metricsOptions);
        var telemetryOptions = new TelemetryOptions();
        builder.Configuration.GetSection(TelemetryOptions.Section).Bind(telemetryOptions);
        builder.AddGatehouseTelemetry(telemetryOptions, metricsOptions.Enabled);
        builder.Services.AddSingleton(settings.Time);
        builder.Services.AddSingleton(new ServerCertificate(certificate));
        builder.Services.AddSingleton(settings);
        builder.Services.AddSingleton(new DataDirectoryModes(madePrivate));

        // The directory: SQLite under the data directory, or PostgreSQL with --store; Data Protection keys next to
        // it (a folder for one node, the database when several nodes share PostgreSQL), encrypted with a
        // key-encryption key that is never in the store (a key file, by default beside the database, or configuration).
        var keyRing = options.KeyRing.ToSettings(options.DataDirectory, create: true);
        var databasePath = Path.Combine(options.DataDirectory, PrivateDataDirectory.DatabaseFileName);
        var store = string.IsNullOrWhiteSpace(options.Store)
            ? new Gatehouse.Storage.StoreOptions { Provider = Gatehouse.Storage.StoreProvider.Sqlite, ConnectionString = $"Data Source={databasePath}" }
            : new Gatehouse.Storage.StoreOptions { Provider = Gatehouse.Storage.StoreProvider.Postgres, ConnectionString = options.Store };
        if (store.Provider == Gatehouse.Storage.StoreProvider.Sqlite)
        {
            try
            {
                PrivateDataDirectory.CreateDatabase(databasePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
            {
                throw new StartupException($"Cannot create the database {databasePath}: {e.Message}. Choose another data directory with --data.");
            }
        }

        store.Startup = options.Database.ToStartup();
        builder.Services.AddGatehouseStore(store);
        builder.Services.AddGatehouseReadiness(options.Database);

        // Before anything opens the key ring (Data Protection's own start-up service comes with AddDataProtection below).
        builder.Services.AddHostedService<KeyRingStartup>();
        var identityOptions = new Gatehouse.Identity.GatehouseIdentityOptions
        {
            PublicName = options.PublicName,
            RequireMfaEnrollment = builder.Configuration.GetValue<bool>("Gatehouse:Identity:RequireMfaEnrollment"),
            PasskeyRecentMfaWindow = builder.Configuration.GetValue<TimeSpan?>("Gatehouse:Identity:Passkeys:RecentMfaWindow") ?? TimeSpan.FromMinutes(10),
            PasskeyAllowedAaguids = [.. (builder.Configuration.GetSection("Gatehouse:Identity:Passkeys:AllowedAaguids").Get<string[]>() ?? []).Select(a => Guid.Parse(a, System.Globalization.CultureInfo.InvariantCulture))],
        };
        if (builder.Configuration.GetValue<TimeSpan?>("Gatehouse:Identity:RefreshTokenMaxLifetime") is { } refreshMax)
        {
            identityOptions.RefreshTokenMaxLifetime = refreshMax > TimeSpan.Zero
                ? refreshMax
                : throw new InvalidOperationException($"Gatehouse:Identity:RefreshTokenMaxLifetime must be a positive duration such as 14.00:00:00 (it is {refreshMax}).");
        }

        var hashing = builder.Configuration.GetSection("Gatehouse:Identity:PasswordHashing").Get<Gatehouse.Identity.PasswordHashingOptions>() ?? new Gatehouse.Identity.PasswordHashingOptions();
        try
        {
            builder.Services.AddSingleton(new Gatehouse.Identity.PasswordHasher(hashing));
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new StartupException(e.Message);
        }

        builder.Services.AddGatehouseIdentity(identityOptions);
        builder.Services.AddDataProtection().SetApplicationName("Gatehouse").UseGatehouseKeyRing(
            keyRing,
            store.Provider == Gatehouse.Storage.StoreProvider.Sqlite ? Path.Combine(options.DataDirectory, PrivateDataDirectory.KeysFolderName) : null);

        builder.Services.AddIdp(options.PublicName, builder.Configuration.GetSection("Gatehouse:Limits").Get<Gatehouse.Idp.IdpLimits>() ?? new Gatehouse.Idp.IdpLimits());
        builder.AddGatehouseHsts();
        Gatehouse.Portal.PortalSetup.AddPortal(builder.Services, builder.Configuration);
        builder.Services.AddHostedService<BootstrapService>();
        var rdpListener = new RdpListener();
        builder.Services.AddSingleton(rdpListener);
        builder.Services.AddRdpGateway(builder.Configuration.GetSection("Gatehouse:Gateway"), certificate, $"{Dns.GetHostName()}:{options.RdpPort}");
        var gatewayListener = builder.Configuration.GetValue<RdpListenerKind?>("Gatehouse:Gateway:Listener") ?? RdpListenerKind.Socket;
        builder.Services.AddSingleton(ClusterOptions.From(builder.Configuration.GetSection("Gatehouse:Cluster")));
        builder.Services.AddHostedService<NodeHeartbeatService>();
        builder.Services.AddScoped<Gatehouse.Agents.AgentRegistry>();
        builder.Services.AddSingleton(s => new Gatehouse.Agents.AgentBroker(
            s.GetRequiredService<IServiceScopeFactory>(),
            s.GetRequiredService<TimeProvider>(),
            s.GetRequiredService<ILogger<Gatehouse.Agents.AgentBroker>>(),
            s.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>()));
        builder.Services.AddHostedService<Gatehouse.Agents.AgentWorkRelay>();
        builder.Services.AddSingleton<Gatehouse.Identity.Gateway.IHostAgentLogons>(s => s.GetRequiredService<Gatehouse.Agents.AgentBroker>());
        builder.Services.AddSingleton<IOptions<GatehouseOptions>>(Options.Create(options));
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.Limits.ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.Limits.MaxRequestBodyBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = options.Limits.MaxRequestHeadersBytes;
            kestrel.Limits.RequestHeadersTimeout = options.Limits.RequestHeadersTimeout;
            kestrel.Limits.MaxConcurrentConnections = options.Limits.MaxConcurrentConnections;
            foreach (var address in listen)
            {
                kestrel.Listen(address.Address, address.Port, endpoint =>
                {
                    // FreeRDP's IdP client has no ALPN and speaks only HTTP/1.1.
                    endpoint.Protocols = HttpProtocols.Http1;
                    endpoint.UseHttps(certificate);
                });
            }

            if (gatewayListener == RdpListenerKind.Kestrel)
            {
                kestrel.Listen(rdpAddress!, options.RdpPort, endpoint =>
                {
                    rdpListener.Options = endpoint;
                    endpoint.UseConnectionHandler<Gatehouse.Gateway.RdpConnectionHandler>();
                });
            }
        });
        if (gatewayListener == RdpListenerKind.Socket)
        {
            // The RDP port's own accept loop, registered last so that it stops first: its connections end (the drain)
            // while the services they use are still running.
            builder.Services.AddHostedService(s => new RdpSocketListenerService(
                new IPEndPoint(rdpAddress!, options.RdpPort),
                options.Limits.MaxConcurrentConnections,
                rdpListener,
                s,
                s.GetRequiredService<IHostApplicationLifetime>(),
                s.GetRequiredService<ILogger<Gatehouse.Gateway.Transport.RdpSocketListener>>()));
        }

        settings.ConfigureServices?.Invoke(builder.Services);
        var app = builder.Build();
        app.UseHsts();
        app.UseIdpSpans();
        app.UseMiddleware<ContentLengthMiddleware>();
        app.UseMiddleware<StoreUnavailableMiddleware>();
        app.MapGatehouseHealth();

        Gatehouse.Metrics.MetricsEndpoint.MapMetrics(app, metricsOptions);
        app.MapIdp();
        Gatehouse.Admin.AdminApi.MapAdminApi(app);
        Gatehouse.Portal.PortalSetup.MapPortal(app);
        Gatehouse.Agents.AgentEndpoints.MapAgentApi(app);

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Gatehouse");
        LogCertificate(logger, source, certificatePath, certificate.Thumbprint);
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var note = gatewayListener == RdpListenerKind.Kestrel ? " Kestrel lists it as http:// because the RDP listener runs its own TLS." : string.Empty;
            Log.RdpListening(logger, RdpEndPoint(app).ToString(), app.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.SignInMethods.ToString(), options.PublicName, note);
        });
        return app;
    }

    /// <summary>The HTTPS addresses Kestrel actually bound (with the real port when 0 was asked for).</summary>
    public static IReadOnlyList<Uri> BoundAddresses(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return [.. app.Urls.Select(u => new Uri(u)).Where(u => u.Scheme == Uri.UriSchemeHttps)];
    }

    /// <summary>The RDP listener's bound endpoint (with the real port when 0 was asked for).</summary>
    public static IPEndPoint RdpEndPoint(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<RdpListener>().EndPoint;
    }

    private static string DefaultPublicName(int port)
    {
        var host = Dns.GetHostName().ToLowerInvariant();
        return port == 443 ? host : $"{host}:{port}";
    }

    /// <summary>The host part of <c>host[:port]</c>.</summary>
    internal static string PublicHost(string publicName)
    {
        if (publicName.StartsWith('['))
        {
            var close = publicName.IndexOf(']', StringComparison.Ordinal);
            return close > 0 ? publicName[1..close] : publicName;
        }

        var colon = publicName.LastIndexOf(':');
        return colon > 0 && publicName.IndexOf(':', StringComparison.Ordinal) == colon ? publicName[..colon] : publicName;
    }

    private static void LogCertificate(ILogger logger, CertificateSource source, string path, string thumbprint)
    {
        switch (source)
        {
            case CertificateSource.Generated:
                Log.CertificateGenerated(logger, path, thumbprint);
                break;
            case CertificateSource.Reused:
                Log.CertificateReused(logger, path, thumbprint);
                break;
            default:
                Log.CertificateConfigured(logger, path, thumbprint);
                break;
        }
    }
}

/// <summary>The HTTPS certificate the identity provider serves.</summary>
internal sealed record ServerCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 Certificate);

/// <summary>Startup log messages (source-generated, no secrets).</summary>
internal static partial class Log
{
    [LoggerMessage(ServerEventIds.CertificateGenerated, LogLevel.Information, "Generated a self-signed HTTPS certificate at {Path} (SHA-1 thumbprint {Thumbprint}).")]
    public static partial void CertificateGenerated(ILogger logger, string path, string thumbprint);

    [LoggerMessage(ServerEventIds.CertificateReused, LogLevel.Information, "Using the HTTPS certificate at {Path} (SHA-1 thumbprint {Thumbprint}).")]
    public static partial void CertificateReused(ILogger logger, string path, string thumbprint);

    [LoggerMessage(ServerEventIds.RdpListening, LogLevel.Information, "RDP gateway listening on {EndPoint}, sign-in methods {Methods} (web account: xfreerdp3 /sec:aad /azure:ad:{PublicName}).{KestrelNote}")]
    public static partial void RdpListening(ILogger logger, string endPoint, string methods, string publicName, string kestrelNote);

    [LoggerMessage(ServerEventIds.CertificateConfigured, LogLevel.Information, "Using the configured HTTPS certificate {Path} (SHA-1 thumbprint {Thumbprint}).")]
    public static partial void CertificateConfigured(ILogger logger, string path, string thumbprint);
}
