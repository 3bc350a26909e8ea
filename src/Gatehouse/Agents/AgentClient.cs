using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

using Gatehouse.Gateway.Agents;

namespace Gatehouse.Agents;

/// <summary>The server refused an agent request, or answered something else than expected.</summary>
public sealed class AgentChannelException(string message, int status = 0) : Exception(message)
{
    /// <summary>The HTTP status (0 when none).</summary>
    public int Status { get; } = status;
}

/// <summary>
/// The agent's HTTPS client: the server's certificate is pinned (its SHA-256 from the enrolment token; no CA is
/// trusted), and each request after the join carries a fresh assertion signed with the agent's key.
/// </summary>
public sealed class AgentClient(HttpClient http, TimeProvider time)
{
    /// <summary>A handler that accepts only the server certificate whose SHA-256 is <paramref name="certificateSha256"/> (hex).</summary>
    public static HttpMessageHandler PinnedHandler(string certificateSha256)
    {
        ArgumentNullException.ThrowIfNull(certificateSha256);
        var expected = Convert.FromHexString(certificateSha256);
        return new SocketsHttpHandler
        {
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is not null && CryptographicOperations.FixedTimeEquals(certificate.GetCertHash(HashAlgorithmName.SHA256), expected),
            },
        };
    }

    /// <summary>Joins with the enrolment token.</summary>
    public async Task<AgentJoinResponse> JoinAsync(Uri server, AgentJoinRequest request, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(server, AgentRegistry.BasePath + "/join")) { Content = JsonContent.Create(request, options: AgentJson.Options) };
        return await SendAsync<AgentJoinResponse>(message, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Long-polls for work.</summary>
    public async Task<IReadOnlyList<AgentWorkItem>> PollAsync(AgentConfig config, ECDsa key, CancellationToken cancellationToken) =>
        (await PostAsync<AgentPollResponse>(config, key, "/poll", new { }, cancellationToken).ConfigureAwait(false)).Work ?? [];

    /// <summary>Sends a work item's result; true when a logon on the server was waiting for it (false: late, nobody will use it).</summary>
    public async Task<bool> SendResultAsync(AgentConfig config, ECDsa key, AgentWorkResult result, CancellationToken cancellationToken)
    {
        var answer = await PostAsync<JsonElement>(config, key, "/result", result, cancellationToken).ConfigureAwait(false);
        return answer.ValueKind == JsonValueKind.Object && answer.TryGetProperty("taken", out var taken) && taken.ValueKind == JsonValueKind.True;
    }

    /// <summary>Sends a health report.</summary>
    public Task SendHealthAsync(AgentConfig config, ECDsa key, AgentHealthReport report, CancellationToken cancellationToken) =>
        PostAsync<JsonElement>(config, key, "/health", report, cancellationToken);

    private async Task<T> PostAsync<T>(AgentConfig config, ECDsa key, string path, object body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(config.Server, AgentRegistry.BasePath + path))
        {
            Content = JsonContent.Create(body, body.GetType(), options: AgentJson.Options),
        };
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AgentAssertion.Create(key, config.AgentId, config.Audience, time.GetUtcNow()));
        return await SendAsync<T>(message, cancellationToken).ConfigureAwait(false);
    }

    private async Task<T> SendAsync<T>(HttpRequestMessage message, CancellationToken cancellationToken)
    {
        using var response = await http.SendAsync(message, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            string? error = null;
            try
            {
                var problem = await response.Content.ReadFromJsonAsync<JsonElement>(AgentJson.Options, cancellationToken).ConfigureAwait(false);
                error = problem.ValueKind == JsonValueKind.Object && problem.TryGetProperty("error", out var e) ? e.GetString() : null;
            }
            catch (JsonException)
            {
            }

            throw new AgentChannelException($"the server answered {(int)response.StatusCode}: {error ?? response.ReasonPhrase}", (int)response.StatusCode);
        }

        try
        {
            return await response.Content.ReadFromJsonAsync<T>(AgentJson.Options, cancellationToken).ConfigureAwait(false)
                ?? throw new AgentChannelException("the server answered JSON null");
        }
        catch (JsonException e)
        {
            throw new AgentChannelException($"the server's answer is not the expected JSON: {e.Message}");
        }
    }
}
