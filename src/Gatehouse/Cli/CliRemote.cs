using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gatehouse.Cli;

/// <summary>What <c>gatehouse login</c> saved for one server: the tokens, who signed in, and how to trust the server's certificate.</summary>
internal sealed record CliCredential
{
    /// <summary>The server's base address as given to <c>--server</c>, normalised by <see cref="CliCredentialStore.Key"/>.</summary>
    public required string Server { get; init; }

    /// <summary>The tenant the token was issued in (its id or a domain; <c>common</c> for the first tenant).</summary>
    public string Tenant { get; init; } = "common";

    /// <summary>The signed-in user's UPN (for <c>gatehouse login --status</c> and messages).</summary>
    public string? User { get; init; }

    /// <summary>The admin API access token (bearer, audience <c>api://gatehouse-admin</c>).</summary>
    public required string AccessToken { get; init; }

    /// <summary>When <see cref="AccessToken"/> expires.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    /// <summary>The refresh token, if the IdP issued one.</summary>
    public string? RefreshToken { get; init; }

    /// <summary>A PEM file to trust as the server's certificate or its issuer (the server's generated <c>data/tls/gatehouse.crt</c>), or null for the system's trust store.</summary>
    public string? CaCertificatePath { get; init; }
}

/// <summary>
/// The credentials file of the CLI, <c>credentials.json</c> in <see cref="CliEnvironment.ConfigDirectory"/> (see its
/// default), one entry per server, written with mode 0600 in a directory with mode 0700. It holds bearer tokens:
/// nothing else reads it, and nothing logs it.
/// </summary>
internal sealed class CliCredentialStore(string directory)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <summary>The file's path.</summary>
    public string FilePath { get; } = Path.Combine(directory, "credentials.json");

    /// <summary>The store for <paramref name="environment"/>'s configuration directory.</summary>
    public static CliCredentialStore For(CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return new CliCredentialStore(ResolveDirectory(environment));
    }

    /// <summary>The configuration directory: <c>GATEHOUSE_CONFIG_DIR</c>, <c>$XDG_CONFIG_HOME/gatehouse</c> or <c>~/.config/gatehouse</c>.</summary>
    public static string ResolveDirectory(CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrEmpty(environment.ConfigDirectory))
        {
            return environment.ConfigDirectory;
        }

        if (environment.Variable("GATEHOUSE_CONFIG_DIR") is { Length: > 0 } explicitDirectory)
        {
            return explicitDirectory;
        }

        var xdg = environment.Variable("XDG_CONFIG_HOME");
        var root = string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config") : xdg;
        return Path.Combine(root, "gatehouse");
    }

    /// <summary>The key of a server address: scheme, host and port in lower case, without a trailing slash.</summary>
    public static string Key(Uri server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return server.GetLeftPart(UriPartial.Authority).ToLowerInvariant();
    }

    /// <summary>The saved credential for <paramref name="server"/>, or null.</summary>
    public CliCredential? Find(Uri server) => ReadAll().GetValueOrDefault(Key(server));

    /// <summary>Every saved credential.</summary>
    public IReadOnlyCollection<CliCredential> List() => ReadAll().Values;

    /// <summary>Saves (or replaces) the credential of its server.</summary>
    public void Save(CliCredential credential)
    {
        ArgumentNullException.ThrowIfNull(credential);
        var all = ReadAll();
        all[Key(new Uri(credential.Server))] = credential;
        Write(all);
    }

    /// <summary>Removes the credential of <paramref name="server"/>; false when there was none.</summary>
    public bool Remove(Uri server)
    {
        var all = ReadAll();
        if (!all.Remove(Key(server)))
        {
            return false;
        }

        Write(all);
        return true;
    }

    private Dictionary<string, CliCredential> ReadAll()
    {
        if (!File.Exists(FilePath))
        {
            return new Dictionary<string, CliCredential>(StringComparer.Ordinal);
        }

        try
        {
            using var stream = File.OpenRead(FilePath);
            var entries = JsonSerializer.Deserialize<List<CliCredential>>(stream, Json) ?? [];
            return entries.Where(e => Uri.TryCreate(e.Server, UriKind.Absolute, out _)).ToDictionary(e => Key(new Uri(e.Server)), StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new CliException($"The credentials file {FilePath} is not valid JSON ({e.Message}); delete it and run 'gatehouse login' again.", e);
        }
    }

    private void Write(Dictionary<string, CliCredential> all)
    {
        var directory = Path.GetDirectoryName(FilePath)!;
        if (!OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        else
        {
            Directory.CreateDirectory(directory);
        }

        // Written to a private temporary file first, then moved over the old one: a reader never sees half a file.
        var temporary = FilePath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, options))
            {
                JsonSerializer.Serialize(stream, all.Values.OrderBy(c => c.Server, StringComparer.Ordinal).ToList(), Json);
            }

            File.Move(temporary, FilePath, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}

/// <summary>The HTTP client of <c>--server</c> calls and <c>gatehouse login</c>.</summary>
internal static class CliHttp
{
    /// <summary>How long one call may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(100);

    /// <summary>
    /// A client for <paramref name="server"/>. With <paramref name="caCertificatePath"/> (a PEM file: the server's own
    /// certificate or its issuer), the server's certificate must chain to it and name the server's host; otherwise the
    /// system's trust store decides. Tests pass their own handler through <see cref="CliEnvironment.HttpHandler"/>.
    /// </summary>
    public static HttpClient Create(Uri server, string? caCertificatePath, CliEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(environment);
        HttpClient client;
        if (environment.HttpHandler is { } handler)
        {
            client = new HttpClient(handler, disposeHandler: false);
        }
        else
        {
            // No redirects: a bearer or refresh token is never re-sent to wherever a response points.
            var sockets = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(15), AllowAutoRedirect = false };
            if (!string.IsNullOrEmpty(caCertificatePath))
            {
                var trusted = LoadTrusted(caCertificatePath);
                sockets.SslOptions = new SslClientAuthenticationOptions
                {
                    CertificateChainPolicy = new X509ChainPolicy
                    {
                        TrustMode = X509ChainTrustMode.CustomRootTrust,
                        RevocationMode = X509RevocationMode.NoCheck,
                        CustomTrustStore = { trusted },
                    },
                };
            }

            client = new HttpClient(sockets, disposeHandler: true);
        }

        client.BaseAddress = new Uri(server.GetLeftPart(UriPartial.Authority) + "/");
        client.Timeout = Timeout;
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("gatehouse-cli", typeof(CliHttp).Assembly.GetName().Version?.ToString() ?? "0"));
        return client;
    }

    /// <summary>The server address from <c>--server</c> or <c>GATEHOUSE_SERVER</c>, checked: https (http only for loopback).</summary>
    public static Uri ParseServer(string text)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            throw new CliException($"'{text}' is not a server address; give it as https://host:port (the address 'gatehouse serve' printed).");
        }

        if (uri.Scheme == Uri.UriSchemeHttp && !uri.IsLoopback)
        {
            throw new CliException($"'{text}' uses http: tokens are only sent over https (http is accepted for loopback addresses only).");
        }

        return uri;
    }

    private static X509Certificate2 LoadTrusted(string path)
    {
        try
        {
            // The certificate alone (CreateFromPemFile would also want its private key, which the client never has).
            var pem = File.ReadAllText(path);
            var fields = System.Security.Cryptography.PemEncoding.Find(pem);
            return pem[fields.Label] == "CERTIFICATE"
                ? X509CertificateLoader.LoadCertificate(Convert.FromBase64String(pem[fields.Base64Data]))
                : throw new System.Security.Cryptography.CryptographicException($"the first PEM block is {pem[fields.Label]}, not CERTIFICATE");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException or FormatException)
        {
            throw new CliException($"Cannot read the certificate {path} ({e.Message}); pass the server's PEM certificate (data/tls/gatehouse.crt on the server) with --ca-cert.", e);
        }
    }
}

/// <summary>
/// The bearer token of a <c>--server</c> call: <c>GATEHOUSE_TOKEN</c> when set, else the credential <c>gatehouse login</c>
/// saved for that server while it is valid; when it is (nearly) expired and a refresh token is saved, the refresh token
/// is redeemed at the server (under a lock file, so two commands never spend the same refresh token, which would revoke
/// the sign-in) and the new pair is saved.
/// </summary>
internal static class CliTokenSource
{
    /// <summary>A token is renewed this long before it expires.</summary>
    public static readonly TimeSpan RenewBefore = TimeSpan.FromMinutes(2);

    /// <summary>The access token for <paramref name="server"/>, or a <see cref="CliException"/> saying how to sign in.</summary>
    public static async Task<string> GetAccessTokenAsync(Uri server, CliEnvironment environment, HttpClient http, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(http);
        cancellationToken.ThrowIfCancellationRequested();
        if (environment.Variable("GATEHOUSE_TOKEN") is { Length: > 0 } token)
        {
            return token.Trim();
        }

        var store = CliCredentialStore.For(environment);
        var saved = store.Find(server);
        if (saved is not null && IsFresh(saved, environment))
        {
            return saved.AccessToken;
        }

        if (saved?.RefreshToken is { Length: > 0 })
        {
            using var renewal = await CliCredentialLock.AcquireAsync(store, environment.Time, cancellationToken).ConfigureAwait(false);

            // Another command may have renewed it while this one waited for the lock.
            saved = store.Find(server);
            if (saved is not null && IsFresh(saved, environment))
            {
                return saved.AccessToken;
            }

            if (saved?.RefreshToken is { Length: > 0 } refreshToken)
            {
                var (tokens, _) = await CliOAuth.RefreshAsync(http, saved.Tenant, refreshToken, cancellationToken).ConfigureAwait(false);
                if (tokens is not null)
                {
                    store.Save(saved with
                    {
                        AccessToken = tokens.AccessToken,
                        RefreshToken = tokens.RefreshToken ?? refreshToken,
                        ExpiresAt = environment.Time.GetUtcNow() + tokens.ExpiresIn,
                        User = tokens.UserPrincipalName ?? saved.User,
                    });
                    return tokens.AccessToken;
                }
            }
        }

        throw new CliException(saved is null
            ? $"Not signed in to {CliCredentialStore.Key(server)}: run 'gatehouse login --server {CliCredentialStore.Key(server)}' (or set GATEHOUSE_TOKEN to an admin API token)."
            : $"The sign-in to {CliCredentialStore.Key(server)} as {saved.User} has expired: run 'gatehouse login --server {CliCredentialStore.Key(server)}' again.");
    }

    private static bool IsFresh(CliCredential credential, CliEnvironment environment) =>
        credential.ExpiresAt - RenewBefore > environment.Time.GetUtcNow();
}

/// <summary>An exclusive lock on the credentials file's directory (<c>credentials.lock</c>), held while a refresh token is spent.</summary>
internal sealed class CliCredentialLock : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly FileStream _stream;

    private CliCredentialLock(FileStream stream) => _stream = stream;

    public static async Task<CliCredentialLock> AcquireAsync(CliCredentialStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(time);
        var directory = Path.GetDirectoryName(store.FilePath)!;
        var path = Path.Combine(directory, "credentials.lock");
        var deadline = time.GetUtcNow() + Wait;
        while (true)
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
                if (!OperatingSystem.IsWindows())
                {
                    options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                }

                return new CliCredentialLock(new FileStream(path, options));
            }
            catch (IOException) when (time.GetUtcNow() < deadline)
            {
                // Another gatehouse command is renewing: wait for it (it saves the new tokens this one then reads).
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new CliException($"Another gatehouse command has held {path} for {Wait.TotalSeconds:0} seconds; if none is running, delete that file and try again.", e);
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
