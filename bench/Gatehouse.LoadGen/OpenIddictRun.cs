using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.LoadGen;

/// <summary>
/// The code-redemption measurement against the OpenIddict prototype (prototypes/Gatehouse.OpenIddictPrototype, started
/// with <c>dotnet run</c> on loopback): mints codes through its authorize endpoint (it signs in the login_hint user at
/// once), then redeems them at its token endpoint with req_cnf, measured by the same <see cref="LoadRun.MeasureAsync"/>
/// as Gatehouse's own token endpoint.
/// </summary>
internal static class OpenIddictRun
{
    private const string Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    private const string ClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string RedirectUri = "ms-appx-web://Microsoft.AAD.BrokerPlugin/a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Scope = "ms-device-service://termsrv.wvd.microsoft.com/name/host1.gatehouse.test/user_impersonation";
    private static readonly string TokenPath = $"/{Tenant}/oauth2/v2.0/token";
    private static readonly string AuthorizePath = $"/{Tenant}/oauth2/v2.0/authorize";
    private static readonly string ReqCnf = System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes($$"""{"kid":"{{System.Buffers.Text.Base64Url.EncodeToString(SHA256.HashData("gatehouse-loadgen-pop-key"u8))}}"}"""));

    public static async Task<(EndpointResult Redeem, double MintSeconds)> RunAsync(Uri baseAddress, int codes, int concurrency, Action<string> progress, CancellationToken cancellationToken)
    {
        var clients = Enumerable.Range(0, concurrency).Select(_ => new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = baseAddress }).ToList();
        try
        {
            var warm = await MintAsync(clients, Math.Min(codes, 50), cancellationToken);
            await LoadRun.MeasureAsync("warm-up", TokenPath, clients, warm.Count, i => Redeem(warm[i]), cancellationToken);
            progress($"minting {codes} codes through the prototype's authorize endpoint");
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var minted = await MintAsync(clients, codes, cancellationToken);
            var mintSeconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
            progress($"redeeming {codes} codes with {concurrency} clients");
            var redeem = await LoadRun.MeasureAsync("token (code redeem), OpenIddict", TokenPath, clients, minted.Count, i => Redeem(minted[i]), cancellationToken);
            return (redeem, mintSeconds);
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    private static async Task<List<string>> MintAsync(List<HttpClient> clients, int count, CancellationToken cancellationToken)
    {
        var codes = new string[count];
        var next = -1;
        await Task.WhenAll(clients.Select(async client =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var query = string.Create(CultureInfo.InvariantCulture, $"?client_id={ClientId}&response_type=code&redirect_uri={Uri.EscapeDataString(RedirectUri)}&scope={Uri.EscapeDataString(Scope)}&login_hint=user{i}%40contoso.test");
                using var response = await client.GetAsync(AuthorizePath + query, cancellationToken);
                var location = response.StatusCode == HttpStatusCode.Found ? response.Headers.Location?.OriginalString : null;
                var at = location?.IndexOf("code=", StringComparison.Ordinal) ?? -1;
                if (at < 0)
                {
                    throw new InvalidOperationException($"authorize answered {(int)response.StatusCode} without a code");
                }

                var end = location!.IndexOf('&', at);
                codes[i] = Uri.UnescapeDataString(end < 0 ? location[(at + 5)..] : location[(at + 5)..end]);
            }
        }));
        return [.. codes];
    }

    private static HttpRequestMessage Redeem(string code) => new(HttpMethod.Post, TokenPath)
    {
        Content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = ClientId,
            ["code"] = code,
            ["redirect_uri"] = RedirectUri,
            ["scope"] = Scope,
            ["req_cnf"] = ReqCnf,
        }),
    };
}
