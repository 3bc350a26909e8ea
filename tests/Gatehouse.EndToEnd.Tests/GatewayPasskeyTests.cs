using System.Security.Cryptography;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// A passkey all the way to the desktop: the real <c>xfreerdp3 /sec:aad</c> prints its sign-in address, Chromium (with
/// its virtual authenticator holding Kim's passkey) opens it and signs in with no password through conditional UI, the
/// redirect URL goes back to the client, and the gateway lets it onto the xrdp desktop under a policy that requires
/// phishing-resistant MFA on vm1. The token's methods and the log say <c>fido mfa</c>; the same user's NLA (password)
/// sign-in is refused with the seeds' words.
/// </summary>
public sealed partial class GatewayDesktopTests
{
    [Fact]
    public async Task Passkey_WebAccountSignIn_InChromium_UnderAPhishingResistantPolicy_LandsOnTheDesktop()
    {
        if (!await gateway.ReadyAsync(output) || !Peers.Require(output, Peers.Chromium))
        {
            return;
        }

        const string upn = "kim@contoso.test";
        await CreateUserWithRoleOnVm1Async(upn);
        await CreatePolicyAsync("Phishing-resistant for kim", $$"""
            {
              "displayName": "Phishing-resistant for kim",
              "state": "enabled",
              "conditions": { "users": { "includeUsers": ["{{upn}}"] }, "applications": { "includeApplications": ["All"] } },
              "grantControls": { "operator": "OR", "builtInControls": [], "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } }
            }
            """);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (userId, credentialId) = await StorePasskeyAsync(upn, key);

        await using var browser = await VirtualBrowser.StartAsync();
        await browser.AddCredentialAsync(credentialId, key, gateway.PublicName.Split(':')[0], userId, signCount: 0);
        await using var display = await XvfbDisplay.StartAsync(Wait.Generous);
        var client = StartClient(display);
        try
        {
            // The address FreeRDP prints, in Chromium: conditional UI answers with the passkey, then consent.
            var browse = await client.WaitForLineAsync(BrowseTo(), Wait.Generous, "the 'Browse to:' line");
            await browser.Page.GotoAsync(browse.Groups[1].Value);
            await browser.Page.WaitForSelectorAsync("button[name=consent][value=allow]");
            await browser.Page.ClickAsync("button[name=consent][value=allow]");
            var redirect = await browser.Page.InnerTextAsync("#redirect-url");
            Assert.StartsWith("ms-appx-web://Microsoft.AAD.BrokerPlugin/", redirect, StringComparison.Ordinal);
            await client.WriteLineAsync(redirect.Trim());

            var session = await WaitForLiveSessionAsync(upn, client);
            Assert.Equal(gateway.Xrdp!.UserAccount, session.Grant.Credentials.UserName);
            await Wait.UntilAsync(() => XrdpHost.ProcessesOf(gateway.Xrdp.UserAccount).Count > 0, Wait.Generous, "a process of the user account on the host", () => client.Transcript);
            var entry = await WaitForSignInAsync(upn, "success");
            Assert.Equal("fido mfa", entry.Methods);
            Assert.Equal(session.Id, entry.SessionId);
            output.WriteLine($"Passkey sign-in: {entry.Reason}");
        }
        finally
        {
            await client.DisposeAsync();
        }

        await WaitForSessionEndAsync(upn);

        // The same user with a password (NLA) cannot meet the strength: refused with the seeds' words and the way out.
        await using var nlaDisplay = await XvfbDisplay.StartAsync(Wait.Generous);
        await using var nla = StartNlaClient(nlaDisplay, upn, Password);
        var refused = await WaitForSignInAsync(upn, "failure", "nla");
        Assert.Contains("authentication_strength_unmet: Phishing-resistant MFA", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("web account sign-in", refused.Fix, StringComparison.Ordinal);
    }

    /// <summary>Stores the public half of <paramref name="key"/> as the user's passkey "Laptop" (as the security-info page would have).</summary>
    private async Task<(Guid UserId, byte[] CredentialId)> StorePasskeyAsync(string upn, ECDsa key)
    {
        await using var scope = gateway.App!.Services.CreateAsyncScope();
        var user = (await scope.ServiceProvider.GetRequiredService<DirectoryService>().FindUserByUpnAsync(upn))!;
        var credentialId = RandomNumberGenerator.GetBytes(32);
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        db.Passkeys.Add(new Passkey
        {
            Id = Guid.NewGuid(),
            UserId = user.Id,
            CredentialId = credentialId,
            PublicKey = VirtualBrowser.CoseKey(key),
            SignCount = 0,
            Name = "Laptop",
            CreatedAt = DateTimeOffset.UtcNow,
        });
        await db.SaveChangesAsync();
        Assert.Equal(1, await db.Passkeys.CountAsync(p => p.UserId == user.Id));
        return (user.Id, credentialId);
    }
}
