using System.Security.Cryptography;
using Gatehouse.Identity;
using Microsoft.Playwright;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>Chromium with one virtual authenticator (ctap2, internal, resident keys, user verification that succeeds).</summary>
internal sealed class VirtualBrowser : IAsyncDisposable
{
    private readonly Chromium chromium;
    private readonly IBrowserContext context;
    private readonly ICDPSession cdp;
    private readonly string authenticatorId;

    private VirtualBrowser(Chromium chromium, IBrowserContext context, IPage page, ICDPSession cdp, string authenticatorId)
    {
        this.chromium = chromium;
        this.context = context;
        Page = page;
        this.cdp = cdp;
        this.authenticatorId = authenticatorId;
    }

    public IPage Page { get; }

    public static async Task<VirtualBrowser> StartAsync()
    {
        var chromium = await Chromium.LaunchAsync();
        var context = await chromium.NewContextAsync();
        var page = await context.NewPageAsync();
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("WebAuthn.enable", new Dictionary<string, object> { ["enableUI"] = false });
        var added = await cdp.SendAsync("WebAuthn.addVirtualAuthenticator", new Dictionary<string, object>
        {
            ["options"] = new Dictionary<string, object>
            {
                ["protocol"] = "ctap2",
                ["transport"] = "internal",
                ["hasResidentKey"] = true,
                ["hasUserVerification"] = true,
                ["isUserVerified"] = true,
                ["automaticPresenceSimulation"] = true,
            },
        });
        var id = added!.Value.GetProperty("authenticatorId").GetString()!;
        return new VirtualBrowser(chromium, context, page, cdp, id);
    }

    public async Task AddCredentialAsync(byte[] credentialId, ECDsa key, string rpId, Guid userId, int signCount) =>
        await cdp.SendAsync("WebAuthn.addCredential", new Dictionary<string, object>
        {
            ["authenticatorId"] = authenticatorId,
            ["credential"] = new Dictionary<string, object>
            {
                ["credentialId"] = Convert.ToBase64String(credentialId),
                ["isResidentCredential"] = true,
                ["rpId"] = rpId,
                ["privateKey"] = Convert.ToBase64String(key.ExportPkcs8PrivateKey()),
                ["userHandle"] = Convert.ToBase64String(PasskeyService.UserHandleOf(userId)),
                ["signCount"] = signCount,
            },
        });

    /// <summary>The COSE_Key (RFC 9053) of a P-256 public key, as the store keeps a passkey's: kty EC2, alg ES256, crv P-256, x, y.</summary>
    public static byte[] CoseKey(ECDsa key)
    {
        var q = key.ExportParameters(false).Q;
        return [0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20, .. q.X!, 0x22, 0x58, 0x20, .. q.Y!];
    }

    public async ValueTask DisposeAsync()
    {
        await context.DisposeAsync();
        await chromium.DisposeAsync();
    }
}
