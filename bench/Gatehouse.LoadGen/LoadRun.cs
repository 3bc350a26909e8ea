using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.LoadGen;

/// <summary>What to run: requests per plain endpoint, concurrent clients, codes to redeem.</summary>
internal sealed record LoadSettings(int Requests, int Concurrency, int Codes, string? Store = null, bool Profile = false, bool Pkce = false);

/// <summary>
/// One measurement run: starts the host <c>gatehouse serve</c> builds (<see cref="GatehouseHost.Build"/>) on loopback
/// with a throwaway data directory, mints authorization codes directly through <see cref="AuthorizationCodeService"/>,
/// and drives the endpoints over HTTPS with one keep-alive connection per client (handshakes happen in the warm-up,
/// so the figures are request handling, not TLS setup).
/// </summary>
internal static class LoadRun
{
    private const string Tenant = "common";
    private const string HostName = "vm1";
    private const string HealthPath = "/healthz";
    private static readonly string DiscoveryPath = $"/{Tenant}/v2.0/.well-known/openid-configuration";
    private static readonly string KeysPath = $"/{Tenant}/discovery/v2.0/keys";
    private static readonly string TokenPath = $"/{Tenant}/oauth2/v2.0/token";

    /// <summary>A well-formed PoP key confirmation (the JWK thumbprint of a key the load generator never uses).</summary>
    /// <summary>The PKCE verifier of every code with <c>--pkce</c> (as MSAL clients send: S256).</summary>
    private const string Verifier = "gatehouse-loadgen-pkce-verifier-0123456789abcdefghijklmnopqrstuvwxyz";

    private static readonly string Challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(Verifier)));

    private static readonly string ReqCnf = Base64Url(Encoding.UTF8.GetBytes($$"""{"kid":"{{Base64Url(SHA256.HashData("gatehouse-loadgen-pop-key"u8))}}"}"""));

    public static async Task<LoadReport> RunAsync(LoadSettings settings, Action<string> progress, CancellationToken cancellationToken)
    {
        // With --store, a PostgreSQL database (Npgsql connection string) instead of the throwaway SQLite file.
        var store = settings.Store is null ? new Dictionary<string, string?>() : new Dictionary<string, string?> { ["Gatehouse:Store"] = settings.Store };
        await using var host = await BenchHost.StartAsync("https://127.0.0.1:0", "login.gatehouse.test", store, progress, cancellationToken);
        var app = host.App;
        var dataDirectory = host.DataDirectory;
        var baseAddress = GatehouseHost.BoundAddresses(app).Single();
        var pinned = app.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
        progress($"host listening on {baseAddress} (data {dataDirectory})");
        var (userId, hostId) = await ArrangeAsync(app.Services, cancellationToken);

        var clients = Enumerable.Range(0, settings.Concurrency).Select(_ => CreateClient(baseAddress, pinned)).ToArray();
        try
        {
            // Warm-up: open every connection, then JIT and cache each path (codes included) outside the measurement.
            foreach (var response in await Task.WhenAll(clients.Select(c => c.GetAsync(new Uri(HealthPath, UriKind.Relative), cancellationToken))))
            {
                response.Dispose();
            }
            var warmup = Math.Min(settings.Requests, 200);
            foreach (var path in new[] { HealthPath, DiscoveryPath, KeysPath })
            {
                await MeasureAsync("warm-up", path, clients, warmup, _ => new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);
            }

            var warmupCodes = await MintAsync(app.Services, userId, hostId, Math.Clamp(settings.Codes / 10, settings.Concurrency, 200), settings.Pkce, cancellationToken);
            await MeasureAsync("warm-up", TokenPath, clients, warmupCodes.Count, i => RedeemRequest(warmupCodes[i], settings.Pkce), cancellationToken);

            progress($"minting {settings.Codes} authorization codes");
            var mintStarted = Stopwatch.GetTimestamp();
            var codes = await MintAsync(app.Services, userId, hostId, settings.Codes, settings.Pkce, cancellationToken);
            var mintSeconds = Stopwatch.GetElapsedTime(mintStarted).TotalSeconds;

            progress($"redeeming {settings.Codes} codes with {settings.Concurrency} clients");
            using var profile = settings.Profile ? new Profile() : null;
            if (profile is not null)
            {
                await profile.StartAsync(settings.Store);
            }

            var redeem = await MeasureAsync("token (code redeem)", TokenPath, clients, codes.Count, i => RedeemRequest(codes[i], settings.Pkce), cancellationToken);
            if (profile is not null)
            {
                await profile.StopAsync(settings.Store);
            }

            if (profile is not null)
            {
                progress(profile.ToTable(codes.Count));
            }
            var sinceMint = Stopwatch.GetElapsedTime(mintStarted);
            if (sinceMint > TimeSpan.FromSeconds(60))
            {
                progress($"warning: minting and redeeming took {sinceMint.TotalSeconds:F0} s, longer than a code lives (60 s); late codes fail as expired. Lower --codes.");
            }

            var results = new List<EndpointResult>();
            foreach (var (name, path) in new[] { ("healthz (baseline)", HealthPath), ("discovery", DiscoveryPath), ("jwks", KeysPath) })
            {
                progress($"{name}: {settings.Requests} requests with {settings.Concurrency} clients");
                results.Add(await MeasureAsync(name, path, clients, settings.Requests, _ => new HttpRequestMessage(HttpMethod.Get, path), cancellationToken));
            }

            results.Insert(1, redeem);
            return new LoadReport(settings, Machine.Describe(), settings.Codes, mintSeconds, results);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>Sends <paramref name="total"/> requests from all clients at once; latency is send to body read.</summary>
    internal static async Task<EndpointResult> MeasureAsync(string name, string path, IReadOnlyList<HttpClient> clients, int total, Func<int, HttpRequestMessage> request, CancellationToken cancellationToken)
    {
        var latencies = new double[total];
        var errors = new int[1];
        var next = new int[] { -1 };
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(clients.Select(async client =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next[0])) < total)
            {
                using var message = request(i);
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.SendAsync(message, HttpCompletionOption.ResponseContentRead, cancellationToken);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref errors[0]);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors[0]);
                }

                latencies[i] = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
            }
        }));
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        Array.Sort(latencies);
        return new EndpointResult(name, path, total, errors[0], total / elapsed, Percentile(latencies, 0.50), Percentile(latencies, 0.99), cpu.TotalMilliseconds / total);
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    internal static double Percentile(double[] sorted, double quantile)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(quantile * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private static async Task<(Guid UserId, Guid HostId)> ArrangeAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = await directory.FindTenantAsync(Tenant, cancellationToken) ?? throw new InvalidOperationException("the first-run bootstrap created no tenant");
        var domain = tenant.Domains.Single(d => d.IsInitial).Name;
        var host = await directory.CreateHostAsync(tenant.Id, HostName, "127.0.0.1", 3389, BackendSecurity.Tls, cancellationToken: cancellationToken);
        var (user, _) = await directory.CreateUserAsync(tenant.Id, $"loadgen@{domain}", "Load generator", password: "Load-Generator-Password-1!", temporary: false, cancellationToken);
        return (user.Id, host.Id);
    }

    /// <summary>Codes for the pre-registered RDP client, as the authorize endpoint issues them after a sign-in.</summary>
    private static async Task<List<string>> MintAsync(IServiceProvider services, Guid userId, Guid hostId, int count, bool pkce, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var issuer = scope.ServiceProvider.GetRequiredService<AuthorizationCodeService>();
        var time = scope.ServiceProvider.GetRequiredService<TimeProvider>();
        var codes = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            codes.Add(await issuer.IssueAsync(new AuthorizationCodeRequest
            {
                ClientId = RdpClient.ClientId,
                RedirectUri = RdpClient.BrokerRedirectUri,
                UserId = userId,
                Scope = $"{RdpScope.ResourcePrefix}{HostName}/{RdpScope.ScopeValue}",
                HostId = hostId,
                CodeChallenge = pkce ? Challenge : null,
                CodeChallengeMethod = pkce ? "S256" : null,
                Amr = ["pwd"],
                AuthTime = time.GetUtcNow(),
            }, cancellationToken));
        }

        return codes;
    }

    private static HttpRequestMessage RedeemRequest(string code, bool pkce)
    {
        List<KeyValuePair<string, string>> form =
        [
            new("grant_type", "authorization_code"),
            new("code", code),
            new("client_id", RdpClient.ClientId),
            new("redirect_uri", RdpClient.BrokerRedirectUri),
            new("req_cnf", ReqCnf),
        ];
        if (pkce)
        {
            form.Add(new("code_verifier", Verifier));
        }

        return new(HttpMethod.Post, TokenPath) { Content = new FormUrlEncodedContent(form) };
    }

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    private static HttpClient CreateClient(Uri baseAddress, string pinnedThumbprint) => new(new SocketsHttpHandler
    {
        // Trust exactly the certificate the host generated (self-signed): pin it.
        SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == pinnedThumbprint },
        MaxConnectionsPerServer = 1,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
        UseCookies = false,
        AllowAutoRedirect = false,
    })
    {
        BaseAddress = baseAddress,
        DefaultRequestVersion = HttpVersion.Version11,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(60),
    };
}

/// <summary>Where the figures were taken.</summary>
internal sealed record Machine(int LogicalProcessors, string Os, string Runtime, string Architecture)
{
    public static Machine Describe() => new(Environment.ProcessorCount, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, RuntimeInformation.ProcessArchitecture.ToString());
}
