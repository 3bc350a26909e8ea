namespace Gatehouse.Hosting;

/// <summary>
/// The <c>Gatehouse</c> configuration section. Values come, in rising precedence, from the embedded defaults, an
/// optional JSON file (<c>--config</c>), environment variables (<c>Gatehouse__PublicName=…</c>) and command-line flags.
/// </summary>
internal sealed class GatehouseOptions
{
    public const string Section = "Gatehouse";

    /// <summary>
    /// SQLite database, generated TLS certificate, Data Protection keys and the key-encryption key live here (0700).
    /// Relative to the working directory of the command, as for every path given on the command line.
    /// </summary>
    public string DataDirectory { get; set; } = DefaultDataDirectory;

    /// <summary>The default <see cref="DataDirectory"/>.</summary>
    public const string DefaultDataDirectory = "./data";

    /// <summary>A PostgreSQL connection string; empty means SQLite under <see cref="DataDirectory"/>.</summary>
    public string? Store { get; set; }

    /// <summary>HTTPS addresses of the identity provider (semicolon-separated).</summary>
    public string Urls { get; set; } = "https://0.0.0.0:8443";

    /// <summary>The TCP port of the RDP listener (0 picks a free port).</summary>
    public int RdpPort { get; set; } = 3389;

    /// <summary>The IP address the RDP listener binds; default: the address of the first HTTPS URL.</summary>
    public string? RdpAddress { get; set; }

    /// <summary>The <c>host[:port]</c> clients use for the identity provider; default: machine name and HTTPS port.</summary>
    public string? PublicName { get; set; }

    /// <summary>
    /// Comma-separated IP addresses, on the hosts, that the gateway connects to (besides each host's backend address):
    /// <c>gatehouse audit</c> accepts a host's RDP port listening there; anywhere else it is reachable around the gateway.
    /// </summary>
    public string? GatewayAddresses { get; set; }

    /// <summary><see cref="GatewayAddresses"/> as a list.</summary>
    public IReadOnlyList<string> GatewayAddressList =>
        (GatewayAddresses ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The first tenant's verified domain, used by the first-run bootstrap.</summary>
    public string Domain { get; set; } = "contoso.test";

    public TlsOptions Tls { get; set; } = new();

    /// <summary>The key-encryption key of the Data Protection key ring.</summary>
    public KeyRingOptions KeyRing { get; set; } = new();

    public LimitOptions Limits { get; set; } = new();

    /// <summary>Waiting for the database at startup, readiness, and what clients are told while it does not answer.</summary>
    public DatabaseOptions Database { get; set; } = new();
}

/// <summary>
/// The <c>Gatehouse:Database</c> section: how a node behaves while its database (SQLite file or PostgreSQL) does not
/// answer.
/// </summary>
internal sealed class DatabaseOptions
{
    /// <summary>How long a starting node waits for the database in all before it gives up (0 gives up at once).</summary>
    public TimeSpan StartupWaitLimit { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The delay after the first failed attempt at startup; doubled after each further one.</summary>
    public TimeSpan StartupRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest delay between two attempts at startup.</summary>
    public TimeSpan StartupMaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the readiness check (<c>/healthz/ready</c>) waits for the database's answer.</summary>
    public TimeSpan ReadyTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The <c>Retry-After</c> of a 503 answered because the database did not answer.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The store's startup settings.</summary>
    public Gatehouse.Storage.StoreStartupOptions ToStartup() => new()
    {
        WaitLimit = StartupWaitLimit < TimeSpan.Zero ? TimeSpan.Zero : StartupWaitLimit,
        RetryDelay = StartupRetryDelay > TimeSpan.Zero ? StartupRetryDelay : TimeSpan.FromSeconds(1),
        MaxRetryDelay = StartupMaxRetryDelay > TimeSpan.Zero ? StartupMaxRetryDelay : TimeSpan.FromSeconds(30),
    };
}

/// <summary>PEM files for the HTTPS certificate; when both are empty one is generated into the data directory.</summary>
internal sealed class TlsOptions
{
    public string? CertificatePath { get; set; }

    public string? KeyPath { get; set; }
}

/// <summary>Limits of the HTTP surface (every limit configurable, with safe defaults).</summary>
internal sealed class LimitOptions
{
    /// <summary>Largest request body accepted by the identity provider (forms and token requests are small).</summary>
    public long MaxRequestBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Largest request header block.</summary>
    public int MaxRequestHeadersBytes { get; set; } = 32 * 1024;

    /// <summary>Time allowed to send the request headers.</summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Concurrent HTTP connections.</summary>
    public long MaxConcurrentConnections { get; set; } = 1000;

    /// <summary>Largest response the identity provider buffers to send with a Content-Length.</summary>
    public int MaxBufferedResponseBytes { get; set; } = 1024 * 1024;

    /// <summary>How long a shutdown waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
