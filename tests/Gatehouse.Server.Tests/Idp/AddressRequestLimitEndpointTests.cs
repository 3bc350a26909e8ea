using System.Net;
using System.Text.Json;
using Gatehouse.Gateway.Tests;
using Gatehouse.Idp;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Idp;

/// <summary>
/// <c>Gatehouse:Limits:RequestsPerAddressPerMinute</c> on the identity provider's routes: a <c>429</c> with
/// <c>Retry-After</c> and the OAuth error body over the limit, a new window on the (fake) clock, and routes outside the
/// identity provider not counted.
/// </summary>
public sealed class AddressRequestLimitEndpointTests
{
    private static readonly Uri Discovery = new("/common/v2.0/.well-known/openid-configuration", UriKind.Relative);
    private static readonly Uri DeviceLogin = new("/devicelogin", UriKind.Relative);

    [Fact]
    public async Task IdpRoutes_OverTheLimit_Answer429WithRetryAfter_UntilTheNextWindow()
    {
        // Arrange: three requests a minute, on a clock the test moves.
        var time = new ManualTime();
        await using var server = await TestServer.StartAsync(
            overrides: new Dictionary<string, string?> { ["Gatehouse:Limits:RequestsPerAddressPerMinute"] = "3" },
            configureServices: s => s.AddSingleton(sp => new AddressRequestLimiter(sp.GetRequiredService<IdpLimits>().RequestsPerAddressPerMinute, TimeSpan.FromMinutes(1), time)));

        // Act: two discovery requests, one device-login page (the same count), then one too many.
        (await server.Client.GetAsync(Discovery)).EnsureSuccessStatusCode();
        (await server.Client.GetAsync(Discovery)).EnsureSuccessStatusCode();
        (await server.Client.GetAsync(DeviceLogin)).EnsureSuccessStatusCode();
        using var refused = await server.Client.GetAsync(Discovery);

        // Assert
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(60), refused.Headers.RetryAfter?.Delta);
        using (var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()))
        {
            Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("error").GetString()));
        }

        // Routes outside the identity provider are not counted.
        (await server.Client.GetAsync(new Uri("/healthz", UriKind.Relative))).EnsureSuccessStatusCode();

        // A minute later the address has a new window.
        time.Advance(TimeSpan.FromMinutes(1));
        (await server.Client.GetAsync(Discovery)).EnsureSuccessStatusCode();
    }
}
