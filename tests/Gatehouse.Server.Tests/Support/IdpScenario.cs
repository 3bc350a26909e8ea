using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Support;

/// <summary>
/// A server with tenant contoso.test, hosts vm1 and vm2 and users alice and bob (no roles: the IdP needs none), plus
/// the steps the Conditional Access and sign-in log tests share.
/// </summary>
internal sealed partial class IdpScenario : IAsyncDisposable
{
    public const string RdpClient = "a85cf173-4192-42f8-81fa-777a763e6e2c";
    public const string Password = "Correct-Horse-9!";
    public const string Alice = "alice@contoso.test";
    public const string Bob = "bob@contoso.test";
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";

    private IdpScenario(TestServer server, Guid tenantId)
    {
        Server = server;
        TenantId = tenantId;
    }

    public TestServer Server { get; }

    public Guid TenantId { get; }

    public static async Task<IdpScenario> StartAsync(IDictionary<string, string?>? overrides = null, Action<IServiceCollection>? configureServices = null)
    {
        var server = await TestServer.StartAsync(overrides: overrides, configureServices: configureServices);
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
        await directory.CreateHostAsync(tenant.Id, "vm2", "127.0.0.1", 3389, BackendSecurity.Tls, "gh-admin", "a", "gh-user", "u");
        await directory.CreateUserAsync(tenant.Id, Alice, "Alice", Password, temporary: false);
        await directory.CreateUserAsync(tenant.Id, Bob, "Bob", Password, temporary: false);
        return new IdpScenario(server, tenant.Id);
    }

    public static string Authorize(string host = "vm1") =>
        $"/common/oauth2/v2.0/authorize?client_id={RdpClient}&response_type=code&scope=ms-device-service%3A%2F%2Ftermsrv.wvd.microsoft.com%2Fname%2F{host}%2Fuser_impersonation&redirect_uri={Broker}";

    /// <summary>Stores a policy as <c>gatehouse policy create</c> would (it must parse).</summary>
    public async Task AddPolicyAsync(string json)
    {
        Assert.True(PolicyJson.TryParse(json, out var policy, out var error), error);
        await using var scope = Server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var now = DateTimeOffset.UtcNow;
        db.Policies.Add(new PolicyRecord
        {
            Id = Guid.NewGuid(),
            TenantId = TenantId,
            DisplayName = policy.DisplayName,
            NormalizedName = DirectoryService.NormalizeName(policy.DisplayName),
            State = policy.State switch
            {
                PolicyState.ReportOnly => "enabledForReportingButNotEnforced",
                PolicyState.Disabled => "disabled",
                _ => "enabled",
            },
            Json = json,
            CreatedAt = now,
            ModifiedAt = now,
        });
        await db.SaveChangesAsync();
    }

    /// <summary>A policy on every user of vm1 (or of <paramref name="host"/>) with one grant control.</summary>
    public static string Policy(string name, string control, string state = "enabled", string host = "vm1", string excludeUser = "") => $$"""
        { "displayName": "{{name}}", "state": "{{state}}",
          "conditions": { "users": { "includeUsers": ["All"], "excludeUsers": [{{(excludeUser.Length == 0 ? string.Empty : $"\"{excludeUser}\"")}}] },
                          "applications": { "includeApplications": ["All"] },
                          "hosts": { "includeHosts": ["{{host}}"] } },
          "grantControls": { "operator": "OR", "builtInControls": ["{{control}}"] } }
        """;

    /// <summary>Confirms an authenticator app for <paramref name="upn"/> as an administrator and the user would; returns its secret.</summary>
    public async Task<byte[]> EnrollTotpAsync(string upn)
    {
        await using var scope = Server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var user = (await directory.FindUserByUpnAsync(upn))!;
        var secret = Totp.Base32Decode((await directory.BeginTotpEnrollmentAsync(user)).SecretBase32);
        Assert.True(await directory.ConfirmTotpAsync(user, Totp.Compute(secret, Totp.StepAt(DateTimeOffset.UtcNow) - 1)));
        return secret;
    }

    public static async Task SignInAsync(SignInBrowser browser, string user = Alice, string password = Password, string host = "vm1")
    {
        await browser.OpenAsync(Authorize(host));
        await browser.SubmitAsync(("username", user));
        await browser.SubmitAsync(("password", password));
    }

    /// <summary>The code on the copy page (the broker redirect), or null when the page is not the copy page.</summary>
    public static string? CodeFromCopyPage(string html)
    {
        var match = RedirectUrl().Match(html);
        return match.Success ? WebUtility.HtmlDecode(match.Groups[1].Value).Split('?')[1].Split('&')[0]["code=".Length..] : null;
    }

    /// <summary>Redeems a code and returns the access token's <c>amr</c>.</summary>
    public async Task<List<string?>> RedeemAmrAsync(string code)
    {
        var thumbprint = Base64Url(SHA256.HashData("pop-key"u8));
        var reqCnf = Base64Url(System.Text.Encoding.UTF8.GetBytes($"{{\"kid\":\"{thumbprint}\"}}"));
        var body = $"grant_type=authorization_code&code={code}&client_id={RdpClient}&redirect_uri={Broker}&req_cnf={reqCnf}";
        using var response = await Server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(body, System.Text.Encoding.ASCII, "application/x-www-form-urlencoded"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var jwt = json.RootElement.GetProperty("access_token").GetString()!;
        using var claims = JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1]));
        return [.. claims.RootElement.GetProperty("amr").EnumerateArray().Select(e => e.GetString())];
    }

    public async Task<int> AuthorizationCodeCountAsync()
    {
        await using var scope = Server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().AuthorizationCodes.CountAsync();
    }

    /// <summary>The sign-in log's rows in order.</summary>
    public async Task<List<SignInRecord>> SignInsAsync()
    {
        await using var scope = Server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking().OrderBy(s => s.Sequence).ToListAsync();
    }

    public async Task<ChainVerification> VerifyLogAsync()
    {
        await using var scope = Server.App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<SignInLogService>().VerifyAsync();
    }

    public ValueTask DisposeAsync() => Server.DisposeAsync();

    private static string Base64Url(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    [GeneratedRegex("id=\"redirect-url\">([^<]+)<")]
    private static partial Regex RedirectUrl();
}
