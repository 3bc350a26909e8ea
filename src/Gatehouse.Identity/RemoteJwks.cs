using System.Net.Http.Headers;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Identity;

/// <summary>
/// The identity provider's verification keys fetched from its JWKS URL, for a gateway that runs apart from the IdP.
/// Keys are cached for <see cref="CacheLifetime"/>; a token signed by a key the cache does not know triggers one
/// early refresh (at most every <see cref="MinimumRefreshInterval"/>, so a flood of forged kids cannot turn the
/// gateway into a JWKS fetch amplifier). A fetch that fails keeps the keys already known and fails closed when there
/// are none.
/// </summary>
public sealed class RemoteJwks : IDisposable
{
    /// <summary>How long fetched keys are used before they are fetched again.</summary>
    public static readonly TimeSpan CacheLifetime = TimeSpan.FromMinutes(5);

    /// <summary>The shortest time between two fetches.</summary>
    public static readonly TimeSpan MinimumRefreshInterval = TimeSpan.FromSeconds(30);

    /// <summary>The largest JWKS document accepted.</summary>
    public const int MaxDocumentBytes = 256 * 1024;

    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IReadOnlyList<JsonWebKey> _keys = [];
    private DateTimeOffset _fetchedAt = DateTimeOffset.MinValue;

    /// <summary>Creates the source; <paramref name="http"/> is owned by the caller's configuration (TLS trust, timeout).</summary>
    public RemoteJwks(HttpClient http, Uri url, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(url);
        if (url.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException("the JWKS URL must be https", nameof(url));
        }

        _http = http;
        _url = url;
        _time = time;
    }

    /// <summary>The JWKS URL.</summary>
    public Uri Url => _url;

    /// <summary>Number of fetches made (for tests and metrics).</summary>
    public int Fetches { get; private set; }

    /// <summary>The keys; <paramref name="unknownKid"/> asks for a refresh when that kid is not among them.</summary>
    public async Task<IReadOnlyList<JsonWebKey>> GetKeysAsync(string? unknownKid, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var stale = now - _fetchedAt > CacheLifetime;
        var missing = unknownKid is not null && !_keys.Any(k => string.Equals(k.Kid, unknownKid, StringComparison.Ordinal));
        if (!stale && !(missing && now - _fetchedAt > MinimumRefreshInterval))
        {
            return _keys;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_time.GetUtcNow() - _fetchedAt <= MinimumRefreshInterval)
            {
                return _keys;
            }

            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, _url);
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                if (response.Content.Headers.ContentLength > MaxDocumentBytes)
                {
                    throw new InvalidDataException($"the JWKS document is larger than {MaxDocumentBytes} bytes");
                }

                var json = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                if (json.Length > MaxDocumentBytes)
                {
                    throw new InvalidDataException($"the JWKS document is larger than {MaxDocumentBytes} bytes");
                }

                var set = new JsonWebKeySet(json);
                _keys = [.. set.Keys.Where(k => k.Kty == "RSA" && !string.IsNullOrEmpty(k.Kid))];
                Fetches++;
            }
            catch (Exception e) when (e is HttpRequestException or InvalidDataException or ArgumentException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Keep what is known; with nothing known every token fails to verify (closed).
                LastError = $"{e.GetType().Name}: {e.Message}";
            }

            _fetchedAt = _time.GetUtcNow();
            return _keys;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Why the last fetch failed, if it did.</summary>
    public string? LastError { get; private set; }

    /// <inheritdoc/>
    public void Dispose() => _gate.Dispose();
}
