using System.Net;
using System.Net.Security;
using System.Text.RegularExpressions;

namespace Gatehouse.Server.Tests.Support;

/// <summary>
/// A cookie-keeping HTTP client that walks the sign-in pages like a browser without scripts: it keeps the
/// antiforgery and browser cookies, and posts each form with its hidden fields.
/// </summary>
internal sealed partial class SignInBrowser : IDisposable
{
    private readonly HttpClient _client;

    /// <summary>A browser for the identity provider at <paramref name="baseAddress"/> that trusts exactly the certificate with SHA-1 thumbprint <paramref name="pinned"/>.</summary>
    public SignInBrowser(Uri baseAddress, string pinned)
    {
        _client = new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == pinned },
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = new CookieContainer(),
        })
        {
            BaseAddress = baseAddress,
        };
    }

    public HttpStatusCode Status { get; private set; }

    public string Html { get; private set; } = string.Empty;

    public Uri? Location { get; private set; }

    /// <summary>Shows an earlier page again, as the Back button does (its form can then be posted again).</summary>
    public void Back(string html) => Html = html;

    public Task OpenAsync(string pathAndQuery) => SendAsync(new HttpRequestMessage(HttpMethod.Get, pathAndQuery));

    /// <summary>Posts the current page's form with its hidden fields plus <paramref name="fields"/> (a null value removes a field).</summary>
    public Task SubmitAsync(params (string Name, string? Value)[] fields)
    {
        var form = Hidden().ToDictionary(f => f.Name, f => (string?)f.Value);
        foreach (var (name, value) in fields)
        {
            form[name] = value;
        }

        var action = new Uri(FormAction().Groups[1].Value.Replace("&amp;", "&", StringComparison.Ordinal));
        var content = new FormUrlEncodedContent(form.Where(f => f.Value is not null).Select(f => new KeyValuePair<string, string>(f.Key, f.Value!)));
        return SendAsync(new HttpRequestMessage(HttpMethod.Post, action.PathAndQuery) { Content = content });
    }

    public string Hidden(string name) => Hidden().Single(f => f.Name == name).Value;

    public string? Error => ErrorText().Match(Html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : null;

    public bool Shows(string fieldName) => Html.Contains($"name=\"{fieldName}\"", StringComparison.Ordinal);

    public void Dispose() => _client.Dispose();

    private IEnumerable<(string Name, string Value)> Hidden() =>
        HiddenInput().Matches(Html).Select(m => (WebUtility.HtmlDecode(m.Groups[1].Value), WebUtility.HtmlDecode(m.Groups[2].Value)));

    private Match FormAction() => FormTag().Match(Html);

    private async Task SendAsync(HttpRequestMessage request)
    {
        using var response = await _client.SendAsync(request);
        Status = response.StatusCode;
        Location = response.Headers.Location;
        Html = await response.Content.ReadAsStringAsync();
    }

    [GeneratedRegex("""<input type="hidden" name="([^"]+)" value="([^"]*)">""")]
    private static partial Regex HiddenInput();

    [GeneratedRegex("<form method=\"post\" action=\"([^\"]+)\"")]
    private static partial Regex FormTag();

    [GeneratedRegex("""id="error">([^<]*)<""")]
    private static partial Regex ErrorText();
}
