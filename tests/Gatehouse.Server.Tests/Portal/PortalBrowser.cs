using System.Net;
using System.Net.Security;
using System.Text.RegularExpressions;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Portal;

/// <summary>
/// A cookie-keeping HTTP client for the portal, like a browser without scripts: it follows redirects itself (to the
/// server's public name too, which it reaches on the test server's address), keeps every cookie, and posts forms with
/// their hidden fields (the IdP's pages' and Razor's antiforgery inputs alike).
/// </summary>
internal sealed partial class PortalBrowser : IDisposable
{
    private readonly HttpClient _client;

    public PortalBrowser(TestServer server)
    {
        var pinned = server.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
        Cookies = new CookieContainer();
        _client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == pinned },
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = Cookies,
        })
        {
            BaseAddress = server.BaseAddress,
        };
    }

    public CookieContainer Cookies { get; }

    public HttpStatusCode Status { get; private set; }

    public string Html { get; private set; } = string.Empty;

    public HttpResponseMessage? Last { get; private set; }

    /// <summary>The redirects followed by the last request, in order.</summary>
    public List<Uri> Redirects { get; } = [];

    /// <summary>GETs <paramref name="pathAndQuery"/> and follows redirects.</summary>
    public Task GetAsync(string pathAndQuery) => SendAsync(new HttpRequestMessage(HttpMethod.Get, pathAndQuery));

    /// <summary>Posts the form whose action contains <paramref name="actionContains"/> (the first form when null) with its hidden fields and <paramref name="fields"/> (null removes one).</summary>
    public Task SubmitAsync(string? actionContains, params (string Name, string? Value)[] fields)
    {
        var form = Forms().First(f => actionContains is null || f.Action.Contains(actionContains, StringComparison.Ordinal));
        var values = form.Hidden.ToDictionary(f => f.Name, f => (string?)f.Value);
        foreach (var (name, value) in fields)
        {
            values[name] = value;
        }

        var action = form.Action.Length == 0 ? Last!.RequestMessage!.RequestUri!.PathAndQuery : Local(form.Action);
        var content = new FormUrlEncodedContent(values.Where(f => f.Value is not null).Select(f => new KeyValuePair<string, string>(f.Key, f.Value!)));
        return SendAsync(new HttpRequestMessage(HttpMethod.Post, action) { Content = content });
    }

    /// <summary>Posts <paramref name="fields"/> to <paramref name="path"/> as they are (a forged request: no hidden fields from a page).</summary>
    public Task PostRawAsync(string path, params (string Name, string Value)[] fields) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))) });

    /// <summary>Signs in through the IdP's pages starting from <paramref name="path"/> (a portal page) and lands back on it.</summary>
    public async Task SignInAsync(string user, string password = IdpScenario.Password, string path = "/my")
    {
        await GetAsync(path);
        Assert.Contains("name=\"username\"", Html, StringComparison.Ordinal);
        await SubmitAsync(null, ("username", user));
        await SubmitAsync(null, ("password", password));
    }

    public IReadOnlyList<(string Action, List<(string Name, string Value)> Hidden)> Forms() =>
        [.. FormTag().Matches(Html).Select(m => (
            WebUtility.HtmlDecode(Attribute(m.Groups[1].Value, "action") ?? string.Empty),
            InputTag().Matches(m.Groups[2].Value)
                .Where(i => Attribute(i.Value, "type") == "hidden")
                .Select(i => (WebUtility.HtmlDecode(Attribute(i.Value, "name")!), WebUtility.HtmlDecode(Attribute(i.Value, "value") ?? string.Empty)))
                .ToList()))];

    public void Dispose() => _client.Dispose();

    private async Task SendAsync(HttpRequestMessage request)
    {
        Redirects.Clear();
        for (var hop = 0; ; hop++)
        {
            Assert.True(hop < 10, "too many redirects: " + string.Join(" → ", Redirects));
            Last?.Dispose();
            Last = await _client.SendAsync(request);
            Status = Last.StatusCode;
            Html = await Last.Content.ReadAsStringAsync();
            if ((int)Status is not (301 or 302 or 303 or 307) || Last.Headers.Location is not { } location)
            {
                return;
            }

            Redirects.Add(location);
            request = new HttpRequestMessage(HttpMethod.Get, Local(location.OriginalString));
        }
    }

    /// <summary>The path and query of a URL on the server (absolute URLs name the public name, which the test reaches on its own address).</summary>
    private static string Local(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var absolute) && absolute.Scheme == Uri.UriSchemeHttps ? absolute.PathAndQuery : url;

    private static string? Attribute(string tag, string name)
    {
        var match = Regex.Match(tag, $"\\s{name}=\"([^\"]*)\"", RegexOptions.CultureInvariant);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("<form([^>]*)>(.*?)</form>", RegexOptions.Singleline)]
    private static partial Regex FormTag();

    [GeneratedRegex("<input[^>]*>")]
    private static partial Regex InputTag();
}
