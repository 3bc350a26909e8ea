using Microsoft.Playwright;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// Debian's Chromium driven by Playwright (design/PEERS-browser-postgres.md §1): always <c>ExecutablePath</c> (nothing
/// is downloaded), headless, and a resolver that maps the test host names to 127.0.0.1 and refuses every other name,
/// so the browser makes no lookups outside the machine.
/// </summary>
internal sealed class Chromium : IAsyncDisposable
{
    private Chromium(IPlaywright playwright, IBrowser browser)
    {
        Playwright = playwright;
        Browser = browser;
    }

    public IPlaywright Playwright { get; }

    public IBrowser Browser { get; }

    public static async Task<Chromium> LaunchAsync()
    {
        var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        try
        {
            var map = string.Join(" , ", Peers.TestHostNames.Select(n => $"MAP {n} 127.0.0.1"));
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = Peers.Chromium.Path,
                Headless = true,
                Args =
                [
                    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    $"--host-resolver-rules={map} , MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            });
            return new Chromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A fresh context (own cookies) that accepts the IdP's self-signed certificate.</summary>
    public Task<IBrowserContext> NewContextAsync() =>
        Browser.NewContextAsync(new BrowserNewContextOptions
        {
            IgnoreHTTPSErrors = true,
            ViewportSize = new ViewportSize { Width = 1000, Height = 900 },
            Locale = "en-US",
        });

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
    }
}
