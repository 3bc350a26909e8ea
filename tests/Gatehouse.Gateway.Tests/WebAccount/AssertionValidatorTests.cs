using System.Security.Cryptography;
using System.Text;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.RdsAad;
using Microsoft.Extensions.DependencyInjection;


namespace Gatehouse.Gateway.Tests.WebAccount;

public sealed class AssertionValidatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly RSA SharedKey = RSA.Create(2048);
    private static readonly RSA OtherKey = RSA.Create(2048);
    private readonly RSA _key = SharedKey;
    private readonly ManualTime _time = new(Now);
    private readonly FakeWebAccountDirectory _directory = new();

    [Fact]
    public async Task FreeRdpShapedAssertion_IsAccepted()
    {
        var nonce = ServerNonce.Issue(Now);
        _directory.CnfKid = Thumbprint(_key);
        var verdict = await Validate(Assertion(nonce.Value), nonce);
        Assert.True(verdict.Accepted, verdict.Reason);
        Assert.Equal(RdsAadAuthResult.Success, verdict.ResultCode);
        Assert.Equal("vm1", verdict.Host!.Name);
        Assert.Equal("alice@contoso.test", verdict.Token!.Upn);
        Assert.Equal(["vm1"], _directory.LookedUp);
    }

    [Fact]
    public async Task TimestampAsNumber_IsAccepted()
    {
        var nonce = ServerNonce.Issue(Now);
        _directory.CnfKid = Thumbprint(_key);
        var verdict = await Validate(Assertion(nonce.Value, tsJson: Now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)), nonce);
        Assert.True(verdict.Accepted, verdict.Reason);
    }

    public static TheoryData<string, AssertionFailure, string> Refusals() => new()
    {
        { "request not an object", AssertionFailure.Malformed, "malformed" },
        { "request without rdp_assertion", AssertionFailure.Malformed, "required member missing" },
        { "jws with two parts", AssertionFailure.Malformed, "three parts" },
        { "oversized assertion", AssertionFailure.Malformed, "malformed" },
        { "invalid utf-8", AssertionFailure.Malformed, "UTF-8" },
        { "EC key", AssertionFailure.Malformed, "RSA expected" },
        { "jwk n not base64url", AssertionFailure.Malformed, "base64url" },
        { "alg none", AssertionFailure.Algorithm, "'none' is not allowed" },
        { "alg HS256", AssertionFailure.Algorithm, "'HS256' is not allowed" },
        { "alg rs256 lower case", AssertionFailure.Algorithm, "'rs256' is not allowed" },
        { "nonce from another connection", AssertionFailure.Nonce, "not the one this connection issued" },
        { "nonce replayed on the same connection", AssertionFailure.Nonce, "already used" },
        { "nonce expired", AssertionFailure.NonceExpired, "expired" },
        { "ts 10 minutes old", AssertionFailure.Timestamp, "old" },
        { "ts 10 minutes ahead", AssertionFailure.Timestamp, "future" },
        { "ts number too old", AssertionFailure.Timestamp, "old" },
        { "payload changed after signing", AssertionFailure.Signature, "does not verify" },
        { "signed by another key", AssertionFailure.Signature, "does not verify" },
        { "RSA-1024 key", AssertionFailure.Key, "RSA-1024" },
        { "RSA-8200 key", AssertionFailure.Key, "RSA-8200" },
        { "even exponent", AssertionFailure.Key, "exponent" },
        { "u not a device url", AssertionFailure.HostLabel, "not a device URL" },
        { "u label 127 (FreeRDP with an IP)", AssertionFailure.HostLabel, "IP address can't be used" },
        { "u label 10.0.0.5", AssertionFailure.HostLabel, "IP address can't be used" },
        { "u label [::1]", AssertionFailure.HostLabel, "IP address can't be used" },
        { "unknown host", AssertionFailure.UnknownHost, "not a registered host" },
        { "token expired", AssertionFailure.AccessToken, "expired" },
        { "token for another host", AssertionFailure.AccessToken, "audience" },
        { "token from another tenant", AssertionFailure.AccessToken, "tenant" },
        { "token bound to another key", AssertionFailure.ProofOfPossession, "cnf.kid" },
        { "token without cnf", AssertionFailure.ProofOfPossession, "cnf.kid" },
        { "no client_claims", AssertionFailure.ClientNonce, "no aad_nonce" },
        { "empty aad_nonce", AssertionFailure.ClientNonce, "no aad_nonce" },
        { "forged aad_nonce", AssertionFailure.ClientNonce, "not a valid" },
    };

    public static TheoryData<string, AssertionFailure, string> HandlerRefusals()
    {
        var data = new TheoryData<string, AssertionFailure, string>();
        foreach (var row in Refusals())
        {
            var (name, failure, reason) = ((string)row[0], (AssertionFailure)row[1], (string)row[2]);
            if (name != "nonce replayed on the same connection")
            {
                data.Add(name, failure, reason);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Refused_WithTheReasonAndSecEInvalidToken(string name, AssertionFailure failure, string reason)
    {
        var nonce = ServerNonce.Issue(Now);
        _directory.CnfKid = Thumbprint(_key);
        var request = Build(name, nonce.Value);
        if (name == "nonce replayed on the same connection")
        {
            Assert.True((await Validate(request, nonce)).Accepted);
        }

        var verdict = await Validate(request, nonce);
        Assert.False(verdict.Accepted);
        Assert.True(failure == verdict.Failure, $"{name}: expected {failure}, got {verdict.Failure}: {verdict.Reason}");
        Assert.Contains(reason, verdict.Reason, StringComparison.Ordinal);
        Assert.Equal(RdsAadAuthResult.InvalidToken, verdict.ResultCode);
    }

    /// <summary>
    /// Every refusal again, end to end through the real connection handler with the C# RDS AAD client: the client gets
    /// SEC_E_INVALID_TOKEN, the sign-in log gets the reason, and a second client signing in meanwhile is not affected.
    /// (A nonce replayed on the same connection cannot be sent through the protocol: the gateway reads one request.)
    /// </summary>
    [Theory]
    [MemberData(nameof(HandlerRefusals))]
    public async Task Refused_ThroughTheGateway_WithTheCodeAndTheLogReason_WhileAnotherClientSignsIn(string name, AssertionFailure failure, string reason)
    {
        Assert.True(Enum.IsDefined(failure));
        _directory.CnfKid = Thumbprint(_key);

        // The assertion deadline runs on the same clock as the nonce: longer than the nonce's lifetime here, so a nonce
        // can expire before the gateway stops waiting (the "nonce expired" case moves the clock by 6 minutes).
        var options = new GatewayOptions { AssertionTimeout = TimeSpan.FromMinutes(10) };
        await using var gateway = await GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<IWebAccountDirectory>(_directory);
            services.AddSingleton<ISignInAuthorizer>(new AllowEveryone());
            services.AddSingleton(new WebAccountOptions());
            services.AddSingleton<AssertionValidator>();
            services.AddSingleton<ISignInMethod, WebAccountAuthenticator>();
            services.AddSingleton<TimeProvider>(_time);
        });
        await using var bystander = await AadTestClient.ConnectAsync(gateway.Port);
        var bystanderNonce = await bystander.ReadNonceAsync();
        await using var client = await AadTestClient.ConnectAsync(gateway.Port);
        var nonce = await client.ReadNonceAsync();

        await client.SendAsync(Build(name, nonce));
        Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
        var refused = Assert.Single(await gateway.SignInLog.WaitForAsync(1));
        Assert.False(refused.Succeeded);
        Assert.Equal("0x80090308", refused.Code);
        Assert.Contains(reason, refused.Reason, StringComparison.Ordinal);

        // The other connection signs in as if nothing happened (the directory fake is reset to a good token first).
        _directory.TokenFailure = null;
        _directory.CnfKid = Thumbprint(_key);
        _time.Reset(Now);
        await bystander.SendAsync(Build("good", bystanderNonce));
        Assert.Equal(RdsAadAuthResult.Success, await bystander.ReadResultAsync());
    }

    [Theory]
    [InlineData("127", true)]
    [InlineData("10", true)]
    [InlineData("192.168.1.10", true)]
    [InlineData("::1", true)]
    [InlineData("[fe80::1]", true)]
    [InlineData("vm1", false)]
    [InlineData("vm-10", false)]
    [InlineData("10vm", false)]
    public void LooksLikeAddress(string label, bool address) => Assert.Equal(address, AssertionValidator.LooksLikeAddress(label));

    [Fact]
    public async Task FailedValidation_DoesNotConsultTheIdentityProviderMoreThanNeeded()
    {
        var nonce = ServerNonce.Issue(Now);
        var verdict = await Validate(Build("signed by another key", nonce.Value), nonce);
        Assert.Equal(AssertionFailure.Signature, verdict.Failure);
        Assert.Empty(_directory.LookedUp);
        Assert.Equal(0, _directory.TokenChecks);
    }

    private byte[] Build(string name, string nonce)
    {
        var ts = Now.ToUnixTimeSeconds();
        switch (name)
        {
            case "request not an object": return "[1]\0"u8.ToArray();
            case "request without rdp_assertion": return "{\"assertion\":\"a.b.c\"}\0"u8.ToArray();
            case "jws with two parts": return RdsAadCorpusMessage("{\"rdp_assertion\":\"eyJhIjoxfQ.eyJhIjoxfQ\"}");
            case "oversized assertion": return RdsAadCorpusMessage($"{{\"rdp_assertion\":\"{new string('A', 70_000)}\"}}");
            case "invalid utf-8": return [.. "{\"rdp_assertion\":\""u8, 0xC3, 0x28, .. "\"}\0"u8];
            case "EC key": return Assertion(nonce, jwk: "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}");
            case "jwk n not base64url": return Assertion(nonce, jwk: "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"not+base64\"}");
            case "alg none": return Assertion(nonce, alg: "none");
            case "alg HS256": return Assertion(nonce, alg: "HS256");
            case "alg rs256 lower case": return Assertion(nonce, alg: "rs256");
            case "nonce from another connection": return Assertion(ServerNonce.Issue(Now).Value);
            case "nonce replayed on the same connection": return Assertion(nonce);
            case "nonce expired":
                _time.Advance(TimeSpan.FromMinutes(6));
                return Assertion(nonce, tsJson: $"\"{ts + 360}\"");
            case "ts 10 minutes old": return Assertion(nonce, tsJson: $"\"{ts - 600}\"");
            case "ts 10 minutes ahead": return Assertion(nonce, tsJson: $"\"{ts + 600}\"");
            case "ts number too old": return Assertion(nonce, tsJson: $"{ts - 301}");
            case "payload changed after signing": return Assertion(nonce, tamper: true);
            case "signed by another key":
                return Assertion(nonce, signer: OtherKey);

            case "RSA-1024 key":
                using (var small = RSA.Create(1024))
                {
                    return Assertion(nonce, signer: small, key: small);
                }

            case "RSA-8200 key": return Assertion(nonce, jwk: $"{{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"{B64([0x80, .. new byte[1024]])}\"}}");
            case "even exponent": return Assertion(nonce, jwk: $"{{\"kty\":\"RSA\",\"e\":\"AQAC\",\"n\":\"{B64(_key.ExportParameters(false).Modulus!)}\"}}");
            case "u not a device url": return Assertion(nonce, url: "https://vm1.contoso.test/");
            case "u label 127 (FreeRDP with an IP)": return Assertion(nonce, url: RdpAssertion.DevicePrefix + "127");
            case "u label 10.0.0.5": return Assertion(nonce, url: RdpAssertion.DevicePrefix + "10.0.0.5");
            case "u label [::1]": return Assertion(nonce, url: RdpAssertion.DevicePrefix + "[::1]");
            case "unknown host": return Assertion(nonce, url: RdpAssertion.DevicePrefix + "vm9");
            case "token expired":
                _directory.TokenFailure = "the token expired at 11:00:00Z";
                return Assertion(nonce);
            case "token for another host":
                _directory.TokenFailure = "the audience names another host";
                return Assertion(nonce);
            case "token from another tenant":
                _directory.TokenFailure = "the tenant is not this gateway's";
                return Assertion(nonce);
            case "token bound to another key":
                _directory.CnfKid = RdsAadCorpusThumbprint;
                return Assertion(nonce);
            case "token without cnf":
                _directory.CnfKid = null;
                return Assertion(nonce);
            case "no client_claims": return Assertion(nonce, clientClaims: null);
            case "empty aad_nonce": return Assertion(nonce, clientClaims: "{\\\"aad_nonce\\\":\\\"\\\"}");
            case "forged aad_nonce": return Assertion(nonce, clientClaims: "{\\\"aad_nonce\\\":\\\"forged\\\"}");
            case "good": return Assertion(nonce);
            default: throw new ArgumentOutOfRangeException(nameof(name), name);
        }
    }

    private const string RdsAadCorpusThumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    private byte[] Assertion(
        string nonce,
        string alg = "RS256",
        string? tsJson = null,
        string url = RdpAssertion.DevicePrefix + "vm1",
        string? jwk = null,
        string? clientClaims = "{\\\"aad_nonce\\\":\\\"good\\\"}",
        RSA? signer = null,
        RSA? key = null,
        bool tamper = false)
    {
        key ??= _key;
        signer ??= key;
        var p = key.ExportParameters(false);
        jwk ??= $"{{\"kty\":\"RSA\",\"e\":\"{B64(p.Exponent!)}\",\"n\":\"{B64(p.Modulus!)}\"}}";
        tsJson ??= $"\"{Now.ToUnixTimeSeconds()}\"";
        var claims = clientClaims is null ? string.Empty : $",\"client_claims\":\"{clientClaims}\"";
        var header = $"{{\"alg\":\"{alg}\",\"kid\":\"x\"}}";
        var payload = $"{{\"ts\":{tsJson},\"at\":\"header.payload.signature\",\"u\":\"{url}\",\"nonce\":\"{nonce}\",\"cnf\":{{\"jwk\":{jwk}}}{claims}}}";
        var signingInput = $"{B64(Encoding.UTF8.GetBytes(header))}.{B64(Encoding.UTF8.GetBytes(payload))}";
        var signature = signer.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (tamper)
        {
            signingInput = $"{B64(Encoding.UTF8.GetBytes(header))}.{B64(Encoding.UTF8.GetBytes(payload.Replace("vm1", "vm2", StringComparison.Ordinal)))}";
        }

        return RdsAadCorpusMessage($"{{\"rdp_assertion\":\"{signingInput}.{B64(signature)}\"}}");
    }

    private sealed class AllowEveryone : ISignInAuthorizer
    {
        public Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken) =>
            Task.FromResult(AccessOutcome.Allow("allowed by test", null));
    }

    private Task<AssertionVerdict> Validate(byte[] request, ServerNonce nonce) =>
        new AssertionValidator(_directory, new WebAccountOptions(), _time).ValidateAsync(request, nonce, CancellationToken.None);

    private static string Thumbprint(RSA key)
    {
        var p = key.ExportParameters(false);
        return JwkThumbprint.ComputeRsa(B64(p.Exponent!), B64(p.Modulus!));
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] RdsAadCorpusMessage(string json) => [.. Encoding.UTF8.GetBytes(json), 0];
}
