using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// Passkeys in Debian's Chromium with its CDP virtual authenticator (ctap2, internal transport, resident keys, user
/// verification): the page's own script calls <c>navigator.credentials.get</c>, Chromium's authenticator signs, and
/// Gatehouse verifies. The credentials are put into the authenticator with <c>WebAuthn.addCredential</c> (a known
/// P-256 key whose public half is stored as the user's passkey), so the tests can also play a clone (a lower counter)
/// and a credential made for another RP ID.
/// </summary>
public sealed class PasskeyBrowserTests(ITestOutputHelper output)
{
    private const string RdpClientId = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    private const string Password = "Correct-Horse-9!";

    [Fact]
    public async Task Passkey_SignsInWithNoPassword_ThroughConditionalUi_InChromium()
    {
        await using var site = await Site.StartAsync(output);
        if (site is null)
        {
            return;
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var credentialId = await site.StorePasskeyAsync(key, signCount: 0);
        await using var browser = await VirtualBrowser.StartAsync();
        await browser.AddCredentialAsync(credentialId, key, Site.RpId, site.AliceId, signCount: 0);

        // Conditional UI: the page asks at once with mediation "conditional"; the virtual authenticator (presence
        // simulated) answers as a user picking the passkey from the name field's suggestions would, and the page posts it.
        await browser.Page.GotoAsync(site.AuthorizeUrl);
        await browser.Page.WaitForSelectorAsync("button[name=consent][value=allow]");
        await browser.Page.ClickAsync("button[name=consent][value=allow]");
        var redirect = await browser.Page.InnerTextAsync("#redirect-url");
        Assert.Contains("code=", redirect, StringComparison.Ordinal);

        var row = await site.LastSignInAsync();
        Assert.Equal("success", row.Result);
        Assert.Equal("fido mfa", row.Methods);
        Assert.Equal("alice@contoso.test", row.UserPrincipalName);
    }

    [Fact]
    public async Task Passkey_AsTheSecondFactor_AfterThePassword_InChromium()
    {
        await using var site = await Site.StartAsync(output, requireMfa: true);
        if (site is null)
        {
            return;
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var credentialId = await site.StorePasskeyAsync(key, signCount: 0);
        await using var browser = await VirtualBrowser.StartAsync();

        // The passkey goes into the authenticator only now: on the user-name page, conditional UI would have used it.
        await browser.Page.GotoAsync(site.AuthorizeUrl);
        await browser.Page.FillAsync("input[name=username]", "alice@contoso.test");
        await browser.Page.ClickAsync("#next");
        await browser.Page.FillAsync("input[name=password]", Password);
        await browser.Page.ClickAsync("#next");
        await browser.Page.WaitForSelectorAsync("#use-otp");
        Assert.Equal("Verify your identity", await browser.Page.InnerTextAsync("h1"));
        await browser.AddCredentialAsync(credentialId, key, Site.RpId, site.AliceId, signCount: 0);
        await browser.Page.ClickAsync("#passkey-signin");
        await browser.Page.WaitForSelectorAsync("button[name=consent][value=allow]");
        await browser.Page.ClickAsync("button[name=consent][value=allow]");
        await browser.Page.WaitForSelectorAsync("#redirect-url");

        var row = await site.LastSignInAsync();
        Assert.Equal("success", row.Result);
        Assert.Equal("pwd fido mfa", row.Methods);
    }

    [Fact]
    public async Task RemovedPasskey_IsRefused_InChromium()
    {
        await using var site = await Site.StartAsync(output);
        if (site is null)
        {
            return;
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var credentialId = await site.StorePasskeyAsync(key, signCount: 0);
        await browserless(site);
        await using var browser = await VirtualBrowser.StartAsync();
        await browser.AddCredentialAsync(credentialId, key, Site.RpId, site.AliceId, signCount: 0);

        // The conditional request is answered with the removed credential at once; the page comes back with the message.
        await browser.Page.GotoAsync(site.AuthorizeUrl);
        var error = await browser.Page.InnerTextAsync("#error");
        Assert.Contains("We don't recognise this passkey", error, StringComparison.Ordinal);

        // After a refusal the page does not ask again by itself; the button asks again, and is refused again.
        var rows = await site.SignInCountAsync();
        await browser.Page.RunAndWaitForResponseAsync(() => browser.Page.ClickAsync("#passkey-signin"), r => r.Request.Method == "POST");
        Assert.Contains("We don't recognise this passkey", await browser.Page.InnerTextAsync("#error"), StringComparison.Ordinal);
        Assert.Equal(rows + 1, await site.SignInCountAsync());
        Assert.Equal("Sign in", await browser.Page.InnerTextAsync("h1"));
        Assert.StartsWith("passkey_unknown_credential:", (await site.LastSignInAsync()).Reason, StringComparison.Ordinal);

        static async Task browserless(Site site)
        {
            await using var scope = site.App.Services.CreateAsyncScope();
            Assert.True(await scope.ServiceProvider.GetRequiredService<PasskeyService>().RemoveAsync(site.AliceId, "Laptop"));
        }
    }

    [Fact]
    public async Task ClonedAuthenticator_WithALowerCounter_IsRefused_InChromium()
    {
        await using var site = await Site.StartAsync(output);
        if (site is null)
        {
            return;
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var credentialId = await site.StorePasskeyAsync(key, signCount: 0);
        await using var browser = await VirtualBrowser.StartAsync();
        await browser.AddCredentialAsync(credentialId, key, Site.RpId, site.AliceId, signCount: 10);

        // The original signs in; Gatehouse records its counter.
        await browser.Page.GotoAsync(site.AuthorizeUrl);
        await browser.Page.WaitForSelectorAsync("button[name=consent][value=allow]");
        Assert.True(await site.StoredCounterAsync(credentialId) > 10);

        // A copy of the key whose counter is behind: a second authenticator in a fresh browser.
        await using var clone = await VirtualBrowser.StartAsync();
        await clone.AddCredentialAsync(credentialId, key, Site.RpId, site.AliceId, signCount: 2);
        await clone.Page.GotoAsync(site.AuthorizeUrl);
        var error = await clone.Page.InnerTextAsync("#error");
        Assert.Contains("may have been copied", error, StringComparison.Ordinal);
        var row = await site.LastSignInAsync();
        Assert.Equal("failure", row.Result);
        Assert.StartsWith("passkey_counter_regression:", row.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CredentialForAnotherRpId_IsRefused_InChromium()
    {
        await using var site = await Site.StartAsync(output);
        if (site is null)
        {
            return;
        }

        // The passkey is registered, but the authenticator holds it for the parent domain gatehouse.test, and the page's
        // options are altered (as an injected script would) to ask for that RP ID: the browser allows it (a registrable
        // suffix of the page's host), Gatehouse must not.
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var credentialId = await site.StorePasskeyAsync(key, signCount: 0);
        await using var browser = await VirtualBrowser.StartAsync();
        await browser.AddCredentialAsync(credentialId, key, "gatehouse.test", site.AliceId, signCount: 0);

        await browser.Page.GotoAsync(site.AuthorizeUrl);
        await browser.Page.EvaluateAsync("""
            () => {
              const form = document.getElementById('signin');
              const options = JSON.parse(form.getAttribute('data-passkey-options'));
              options.rpId = 'gatehouse.test';
              form.setAttribute('data-passkey-options', JSON.stringify(options));
            }
            """);

        await browser.Page.ClickAsync("#passkey-signin");
        var error = await browser.Page.InnerTextAsync("#error");
        Assert.Contains("different website", error, StringComparison.Ordinal);
        var row = await site.LastSignInAsync();
        Assert.Equal("failure", row.Result);
        Assert.StartsWith("passkey_wrong_rp_id:", row.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegisterOnTheSecurityInfoPage_SignInWithIt_RemoveIt_AndBeRefused_InChromium()
    {
        await using var site = await Site.StartAsync(output, requireMfa: true);
        if (site is null)
        {
            return;
        }

        await using var browser = await VirtualBrowser.StartAsync();
        var page = browser.Page;

        // Sign in to the security-info page with the password and the authenticator app (recent MFA allows adding).
        await page.GotoAsync(site.SecurityInfoUrl);
        await page.FillAsync("input[name=username]", "alice@contoso.test");
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=password]", Password);
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=otp]", Totp.Compute(site.Secret!, Totp.StepAt(DateTimeOffset.UtcNow) + 1));
        await page.ClickAsync("#next");
        await page.WaitForSelectorAsync("#no-passkeys");

        // The registration ceremony in Chromium: the virtual authenticator makes a resident, user-verified credential.
        await page.FillAsync("input[name=new_passkey_name]", "Chromium <test>");
        await page.ClickAsync("#add-passkey");
        Assert.Contains("Passkey 'Chromium <test>' added.", await page.InnerTextAsync("#notice"), StringComparison.Ordinal);
        Assert.Equal("Chromium <test>", await page.InnerTextAsync("td.passkey-name"));
        var registered = await site.LastSignInAsync();
        Assert.StartsWith("passkey_registered:", registered.Reason, StringComparison.Ordinal);

        // Sign in to a host with it and no password (conditional UI picks it up at once).
        await page.GotoAsync(site.AuthorizeUrl);
        await page.ClickAsync("button[name=consent][value=allow]");
        await page.WaitForSelectorAsync("#redirect-url");
        var row = await site.LastSignInAsync();
        Assert.Equal("success", row.Result);
        Assert.Equal("fido mfa", row.Methods);

        // Back to the security-info page, signed in with the passkey this time, and remove it there.
        await page.GotoAsync(site.SecurityInfoUrl);
        await page.WaitForSelectorAsync("button[name=remove]");
        await page.ClickAsync("button[name=remove]");
        await page.WaitForSelectorAsync("#no-passkeys");
        Assert.StartsWith("passkey_removed:", (await site.LastSignInAsync()).Reason, StringComparison.Ordinal);

        // The authenticator still has it; Gatehouse refuses it.
        await page.GotoAsync(site.AuthorizeUrl);
        Assert.Contains("We don't recognise this passkey", await page.InnerTextAsync("#error"), StringComparison.Ordinal);
        Assert.StartsWith("passkey_unknown_credential:", (await site.LastSignInAsync()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AfterATemporaryAccessPass_AUserRegistersAFirstPasskey_AndSignsInWithNoPassword_InChromium()
    {
        await using var site = await Site.StartAsync(output);
        if (site is null)
        {
            return;
        }

        string pass;
        await using (var scope = site.App.Services.CreateAsyncScope())
        {
            pass = (await scope.ServiceProvider.GetRequiredService<TemporaryAccessPassService>().CreateAsync(site.AliceId, TimeSpan.FromHours(1), multiUse: false)).Pass;
        }

        await using var browser = await VirtualBrowser.StartAsync();
        var page = browser.Page;
        await page.GotoAsync(site.SecurityInfoUrl);
        await page.FillAsync("input[name=username]", "alice@contoso.test");
        await page.ClickAsync("#next");
        await page.FillAsync("input[name=password]", pass);
        await page.ClickAsync("#next");
        await page.WaitForSelectorAsync("#no-passkeys");

        await page.FillAsync("input[name=new_passkey_name]", "Phone");
        await page.ClickAsync("#add-passkey");
        Assert.Contains("Passkey 'Phone' added.", await page.InnerTextAsync("#notice"), StringComparison.Ordinal);

        await page.GotoAsync(site.AuthorizeUrl);
        await page.ClickAsync("button[name=consent][value=allow]");
        await page.WaitForSelectorAsync("#redirect-url");
        var row = await site.LastSignInAsync();
        Assert.Equal("success", row.Result);
        Assert.Equal("fido mfa", row.Methods);
    }

    /// <summary>Gatehouse on a free port with host vm1 and alice (password, and with <c>requireMfa</c> a policy asking for MFA and an authenticator app).</summary>
    private sealed class Site : IAsyncDisposable
    {
        public const string RpId = LoopbackGatehouse.HostName;

        private Site(WebApplication app, string publicName, Guid aliceId, byte[]? secret)
        {
            App = app;
            PublicName = publicName;
            AliceId = aliceId;
            Secret = secret;
        }

        /// <summary>Alice's authenticator-app secret (with <c>requireMfa</c>).</summary>
        public byte[]? Secret { get; }

        public string SecurityInfoUrl => $"https://{PublicName}/common/mysignins/security-info";

        public WebApplication App { get; }

        public string PublicName { get; }

        public Guid AliceId { get; }

        public string AuthorizeUrl => $"https://{PublicName}/common/oauth2/v2.0/authorize?client_id={RdpClientId}&response_type=code"
            + "&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2Fvm1%2Fuser_impersonation"
            + $"&redirect_uri=ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2f{RdpClientId}";

        public static async Task<Site?> StartAsync(ITestOutputHelper output, bool requireMfa = false)
        {
            if (!Peers.Require(output, Peers.Chromium))
            {
                return null;
            }

            Peers.RequireTestHostNames();
            var app = await LoopbackGatehouse.StartAsync();
            var publicName = LoopbackGatehouse.PublicName(app);
            await using var scope = app.Services.CreateAsyncScope();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync("contoso.test"))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
            var (alice, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            byte[]? secret = null;
            if (requireMfa)
            {
                var enrollment = await directory.BeginTotpEnrollmentAsync(alice);
                secret = Totp.Base32Decode(enrollment.SecretBase32);
                Assert.True(await directory.ConfirmTotpAsync(alice, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow))));
            }

            return new Site(app, publicName, alice.Id, secret);
        }

        /// <summary>Stores the public half of <paramref name="key"/> as alice's passkey "Laptop"; returns its credential id.</summary>
        public async Task<byte[]> StorePasskeyAsync(ECDsa key, long signCount)
        {
            var credentialId = RandomNumberGenerator.GetBytes(32);
            await using var scope = App.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            db.Passkeys.Add(new Passkey
            {
                Id = Guid.NewGuid(),
                UserId = AliceId,
                CredentialId = credentialId,
                PublicKey = VirtualBrowser.CoseKey(key),
                SignCount = signCount,
                Name = "Laptop",
                CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
            return credentialId;
        }

        public async Task<long> StoredCounterAsync(byte[] credentialId)
        {
            await using var scope = App.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            return (await db.Passkeys.AsNoTracking().SingleAsync(p => p.CredentialId == credentialId)).SignCount;
        }

        public async Task<int> SignInCountAsync()
        {
            await using var scope = App.Services.CreateAsyncScope();
            return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.CountAsync();
        }

        public async Task<SignInRecord> LastSignInAsync()
        {
            await using var scope = App.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
            return await db.SignIns.AsNoTracking().OrderByDescending(s => s.Sequence).FirstAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }


    }
}
