using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.DependencyInjection;

namespace Gatehouse.Gateway.Tests.WebAccount;

/// <summary>
/// RDS AAD Auth through the real connection handler on loopback, driven by a C# client that behaves like FreeRDP's
/// /sec:aad (CR with PROTOCOL_RDSAAD, TLS, read the nonce, send the signed assertion, read the result).
/// </summary>
public sealed class WebAccountSignInTests
{
    private static readonly RSA Key = RSA.Create(2048);
    private static readonly byte[] AadRequest = Convert.FromHexString("0300002a25e00000000000436f6f6b69653a206d737473686173683d726f6f740d0a0100080010000000");

    [Fact]
    public async Task ValidAssertion_AndAllowed_GetsSuccessAndSignsIn()
    {
        var authorizer = new FakeAuthorizer(RdsAadAuthResult.Success);
        await using var gateway = await StartAsync(authorizer);
        await using var client = await AadClient.ConnectAsync(gateway.Port);
        var nonce = await client.ReadNonceAsync();
        await client.SendAsync(Assertion(nonce));
        Assert.Equal(RdsAadAuthResult.Success, await client.ReadResultAsync());
        Assert.Equal(1, authorizer.Calls);
    }

    [Fact]
    public async Task ValidAssertion_ButNoRole_GetsAccessDenied()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.AccessDenied));
        await using var client = await AadClient.ConnectAsync(gateway.Port);
        await client.SendAsync(Assertion(await client.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.AccessDenied, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task NonceOfAnotherConnection_GetsInvalidTokenAndTheAuthorizerIsNotAsked()
    {
        var authorizer = new FakeAuthorizer(RdsAadAuthResult.Success);
        await using var gateway = await StartAsync(authorizer);
        await using var first = await AadClient.ConnectAsync(gateway.Port);
        await using var second = await AadClient.ConnectAsync(gateway.Port);
        var firstNonce = await first.ReadNonceAsync();
        await second.ReadNonceAsync();
        await second.SendAsync(Assertion(firstNonce));
        Assert.Equal(RdsAadAuthResult.InvalidToken, await second.ReadResultAsync());
        Assert.Equal(0, authorizer.Calls);

        // The first connection is unaffected and still signs in with its own nonce.
        await first.SendAsync(Assertion(firstNonce));
        Assert.Equal(RdsAadAuthResult.Success, await first.ReadResultAsync());
    }

    [Fact]
    public async Task OversizedRequest_IsRefusedWithoutReadingItAll()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success), o => o.MaxAssertionBytes = 4096);
        await using var client = await AadClient.ConnectAsync(gateway.Port);
        await client.ReadNonceAsync();
        await client.SendAsync(Encoding.ASCII.GetBytes("{\"rdp_assertion\":\"" + new string('A', 8192)));
        Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
        Assert.True(await client.IsClosedAsync());
    }

    [Fact]
    public async Task SlowClient_IsClosedAtTheAssertionDeadline_WhileAnotherSignsIn()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success), o => o.AssertionTimeout = TimeSpan.FromMilliseconds(500));
        await using var slow = await AadClient.ConnectAsync(gateway.Port);
        await slow.ReadNonceAsync();
        await using var fast = await AadClient.ConnectAsync(gateway.Port);
        await fast.SendAsync(Assertion(await fast.ReadNonceAsync()));
        Assert.Equal(RdsAadAuthResult.Success, await fast.ReadResultAsync());
        Assert.True(await slow.IsClosedAsync());
    }

    [Fact]
    public async Task GarbageJson_GetsInvalidToken()
    {
        await using var gateway = await StartAsync(new FakeAuthorizer(RdsAadAuthResult.Success));
        await using var client = await AadClient.ConnectAsync(gateway.Port);
        await client.ReadNonceAsync();
        await client.SendAsync("[\"not an object\"]\0"u8.ToArray());
        Assert.Equal(RdsAadAuthResult.InvalidToken, await client.ReadResultAsync());
    }

    private static Task<GatewayHost> StartAsync(FakeAuthorizer authorizer, Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions { NegotiationTimeout = TimeSpan.FromSeconds(10), TlsHandshakeTimeout = TimeSpan.FromSeconds(10) };
        change?.Invoke(options);
        var directory = new FakeWebAccountDirectory { CnfKid = Thumbprint() };
        return GatewayHost.StartAsync(options, services =>
        {
            services.AddSingleton<IWebAccountDirectory>(directory);
            services.AddSingleton<IWebAccountAuthorizer>(authorizer);
            services.AddSingleton(new WebAccountOptions());
            services.AddSingleton<AssertionValidator>();
            services.AddSingleton<IClientAuthenticator, WebAccountAuthenticator>();
        });
    }

    private static string Thumbprint()
    {
        var p = Key.ExportParameters(false);
        return JwkThumbprint.ComputeRsa(B64(p.Exponent!), B64(p.Modulus!));
    }

    /// <summary>The request FreeRDP's aad.c builds, signed with the PoP key.</summary>
    private static byte[] Assertion(string nonce)
    {
        var p = Key.ExportParameters(false);
        var header = $"{{\"alg\":\"RS256\",\"kid\":\"{B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{Thumbprint()}\"}}"))}\"}}";
        var payload = $"{{\"ts\":\"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}\",\"at\":\"h.p.s\",\"u\":\"ms-device-service://termsrv.wvd.microsoft.com/name/vm1\",\"nonce\":\"{nonce}\",\"cnf\":{{\"jwk\":{{\"kty\":\"RSA\",\"e\":\"{B64(p.Exponent!)}\",\"n\":\"{B64(p.Modulus!)}\"}}}},\"client_claims\":\"{{\\\"aad_nonce\\\":\\\"good\\\"}}\"}}";
        var input = $"{B64(Encoding.UTF8.GetBytes(header))}.{B64(Encoding.UTF8.GetBytes(payload))}";
        var signature = Key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return [.. Encoding.UTF8.GetBytes($"{{\"rdp_assertion\":\"{input}.{B64(signature)}\"}}"), 0];
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private sealed class FakeAuthorizer(int code) : IWebAccountAuthorizer
    {
        private int _calls;

        public int Calls => _calls;

        public Task<WebAccountAuthorization> AuthorizeAsync(GatewayConnection connection, AssertionVerdict verdict, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(new WebAccountAuthorization(code, code == 0 ? "allowed by test" : "no role"));
        }
    }

    /// <summary>A minimal RDS AAD Auth client, as FreeRDP 3 /sec:aad speaks it.</summary>
    private sealed class AadClient : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private readonly SslStream _tls;

        private AadClient(TcpClient tcp, SslStream tls)
        {
            _tcp = tcp;
            _tls = tls;
        }

        public static async Task<AadClient> ConnectAsync(int port)
        {
            var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            var stream = tcp.GetStream();
            await stream.WriteAsync(AadRequest);
            var header = new byte[4];
            await stream.ReadExactlyAsync(header);
            var frame = new byte[(header[2] << 8) | header[3]];
            header.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4));
            Assert.True(ConnectionConfirm.TryParse(frame, out var confirm, out _));
            Assert.Equal(SecurityProtocol.RdsAad, confirm.Result!.Value.SelectedProtocol);
            var tls = new SslStream(stream, false, (_, certificate, _, _) => certificate is not null);
            await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
            return new AadClient(tcp, tls);
        }

        public async Task<string> ReadNonceAsync()
        {
            var message = await ReadMessageAsync();
            Assert.True(RdsAadServerNonce.TryParse(message, out var nonce, out var error), error?.ToString());
            return nonce.Nonce;
        }

        public async Task<int> ReadResultAsync()
        {
            var message = await ReadMessageAsync();
            Assert.True(RdsAadAuthResult.TryParse(message, out var result, out var error), error?.ToString());
            return result.Result;
        }

        public async Task SendAsync(byte[] bytes)
        {
            await _tls.WriteAsync(bytes);
            await _tls.FlushAsync();
        }

        public async Task<bool> IsClosedAsync()
        {
            try
            {
                return await _tls.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)) == 0;
            }
            catch (IOException)
            {
                return true;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _tls.DisposeAsync();
            _tcp.Dispose();
        }

        private async Task<byte[]> ReadMessageAsync()
        {
            var bytes = new List<byte>();
            var one = new byte[1];
            while (true)
            {
                var n = await _tls.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(n == 1, "the gateway closed before a whole RDS AAD message");
                bytes.Add(one[0]);
                if (one[0] == 0)
                {
                    return [.. bytes];
                }
            }
        }
    }
}
