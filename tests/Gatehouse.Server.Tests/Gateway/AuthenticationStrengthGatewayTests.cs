using System.Net;
using Gatehouse.Access;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Identity;
using Gatehouse.Identity.Gateway;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// Authentication strengths at the gateway (issue 19), through the gateway's access decision as <c>gatehouse serve</c>
/// builds it (<see cref="AccessSignInAuthorizer"/>): under a phishing-resistant policy the password paths (NLA and TLS
/// give <c>pwd</c>; the hold screen's code prompt gives <c>pwd otp mfa</c>) are refused with the seeds' words and the way
/// out (web account sign-in, and the QR sign-in when the gateway offers it), no code prompt is offered, and a web-account
/// token or a QR sign-in whose <c>amr</c> is <c>fido mfa</c> is let in.
/// </summary>
public sealed class AuthenticationStrengthGatewayTests
{
    private const string PolicyJson = """
        { "displayName": "Passkeys on vm1", "state": "enabled",
          "conditions": { "users": { "includeUsers": ["All"] }, "hosts": { "includeHosts": ["vm1"] } },
          "grantControls": { "operator": "OR", "authenticationStrength": { "id": "00000000-0000-0000-0000-000000000004" } } }
        """;

    [Theory]
    [InlineData(new[] { "pwd" }, false, "password")]
    [InlineData(new[] { "pwd" }, true, "password")]
    [InlineData(new[] { "pwd", "otp", "mfa" }, false, "password,softwareOath")]
    public async Task PasswordPaths_AreRefused_WithTheSeedsWords_AndTheWayOut(string[] methods, bool qrSignIn, string used)
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla, Tls" });
        var (hostId, userId, tenantId) = await SetUpAsync(server);

        var outcome = await AuthorizeAsync(server, hostId, userId, tenantId, methods, qrSignIn);

        Assert.Null(outcome.Grant);
        var refusal = Assert.IsType<SignInRefusal>(outcome.Refusal);
        Assert.Equal(SignInFailure.AccessDenied, refusal.Failure);
        Assert.Equal(AccessEvaluation.MethodNotAllowedMessage, refusal.Message);
        Assert.StartsWith("authentication_strength_unmet: Phishing-resistant MFA (policy 'Passkeys on vm1') needs fido2; the sign-in used " + used, refusal.Reason, StringComparison.Ordinal);
        Assert.Contains("Connect with web account sign-in", refusal.Fix, StringComparison.Ordinal);
        Assert.Matches("register one at https://login\\.gatehouse\\.test/[0-9a-f-]{36}/mysignins/security-info", refusal.Fix);
        Assert.Equal(qrSignIn, refusal.Fix!.Contains("QR code", StringComparison.Ordinal));

        // The hold screen must not prompt for a one-time code: it cannot meet the strength.
        Assert.False(outcome.MfaWouldSatisfy);
    }

    [Fact]
    public async Task APasskeySignIn_WebAccountTokenOrQr_IsLetIn()
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla, Tls" });
        var (hostId, userId, tenantId) = await SetUpAsync(server);

        var outcome = await AuthorizeAsync(server, hostId, userId, tenantId, ["fido", "mfa"], qrSignIn: true);

        Assert.Null(outcome.Refusal);
        var grant = Assert.IsType<SessionGrant>(outcome.Grant, exactMatch: false);
        Assert.Equal("vm1", grant.HostName);
        Assert.Equal(["fido", "mfa"], grant.Methods);
        Assert.Contains("Passkeys on vm1", outcome.PoliciesJson, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MultifactorStrength_PasswordOnly_LetsTheHoldScreenAskForTheCode()
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?> { ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla, Tls" });
        var (hostId, userId, tenantId) = await SetUpAsync(server, PolicyJson.Replace("00000000-0000-0000-0000-000000000004", AuthenticationStrengths.MultifactorId, StringComparison.Ordinal));

        var password = await AuthorizeAsync(server, hostId, userId, tenantId, ["pwd"], qrSignIn: false);
        Assert.NotNull(password.Refusal);
        Assert.True(password.MfaWouldSatisfy);
        Assert.DoesNotContain("web account sign-in", password.Refusal!.Fix, StringComparison.Ordinal);

        var code = await AuthorizeAsync(server, hostId, userId, tenantId, ["pwd", "otp", "mfa"], qrSignIn: false);
        Assert.Null(code.Refusal);
    }

    private static async Task<(Guid HostId, Guid UserId, Guid TenantId)> SetUpAsync(TestServer server, string policy = PolicyJson)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
        var host = await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 3389, BackendSecurity.Tls, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        var (user, _) = await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "Alice", "Alice-Passphrase-1", temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
        Assert.True(Gatehouse.Access.PolicyJson.TryParse(policy, out var parsed, out var error), error);
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var now = DateTimeOffset.UtcNow;
        db.Policies.Add(new PolicyRecord
        {
            Id = Guid.NewGuid(),
            TenantId = tenant.Id,
            DisplayName = parsed.DisplayName,
            NormalizedName = DirectoryService.NormalizeName(parsed.DisplayName),
            State = "enabled",
            Json = policy,
            CreatedAt = now,
            ModifiedAt = now,
        });
        await db.SaveChangesAsync();
        return (host.Id, user.Id, tenant.Id);
    }

    private static async Task<AccessOutcome> AuthorizeAsync(TestServer server, Guid hostId, Guid userId, Guid tenantId, string[] methods, bool qrSignIn)
    {
        await using var scope = server.App.Services.CreateAsyncScope();
        var now = DateTimeOffset.UtcNow;
        var decision = await scope.ServiceProvider.GetRequiredService<AccessService>().AuthorizeSignInAsync(new AccessRequest
        {
            UserId = userId,
            HostId = hostId,
            ClientAddress = IPAddress.Loopback,
            AuthenticationMethods = methods,
            AuthenticatedAt = now,
        });
        return AccessSignInAuthorizer.ToAuthorization(decision, tenantId, methods, now, server.App.Services.GetRequiredService<HostKeyTrust>(), qrSignIn);
    }
}
