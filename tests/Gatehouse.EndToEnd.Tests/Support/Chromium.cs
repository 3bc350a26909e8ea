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

    /// <summary>
    /// Playwright's waits (a navigation, a selector, a load state) in every context: 2 minutes instead of its default 30 s,
    /// which a sign-in's redirect chain exceeded once on a loaded 2-core CI machine (the portal desktop test).
    /// </summary>
    public const float WaitMilliseconds = 120_000;

    /// <summary>A fresh context (own cookies) that accepts the IdP's self-signed certificate, with <see cref="WaitMilliseconds"/> for every wait.</summary>
    public async Task<IBrowserContext> NewContextAsync()
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            IgnoreHTTPSErrors = true,
            ViewportSize = new ViewportSize { Width = 1000, Height = 900 },
            Locale = "en-US",
        });
        context.SetDefaultTimeout(WaitMilliseconds);
        context.SetDefaultNavigationTimeout(WaitMilliseconds);
        return context;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
    }
}
