using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Server.Tests.Cli;

/// <summary><c>gatehouse host test</c> against a small fake RDP host on loopback (X.224 then TLS, like xrdp with security_layer=tls).</summary>
public sealed class HostTestCommandTests
{
    private const string AdminPassword = "Adm1n-Secret-Zebra";
    private const string UserPassword = "Us3r-Secret-Giraffe";

    private static async Task<CliHarness> WithHostAsync(int port)
    {
        var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync(
            $"{AdminPassword}\n{UserPassword}\n",
            "host", "create", "--name", "vm1", "--backend", $"127.0.0.1:{port}", "--backend-security", "tls",
            "--admin-account", "Administrator", "--admin-password-stdin", "--user-account", @"WORK\rdpuser", "--user-password-stdin");
        return cli;
    }

    [Fact]
    public async Task HostTest_FakeTlsHost_ReportsEachStepCertificateAndDecryptableCredentials()
    {
        await using var fake = FakeRdpHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        await using var cli = await WithHostAsync(fake.Port);

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"  ok   TCP          connected to 127.0.0.1:{fake.Port}", run.Output, StringComparison.Ordinal);
        Assert.Contains("  ok   X.224        the host selected TLS (PROTOCOL_SSL)", run.Output, StringComparison.Ordinal);
        Assert.Contains($"TLS 1.", run.Output, StringComparison.Ordinal);
        Assert.Contains($"host key {fake.HostKey}", run.Output, StringComparison.Ordinal);
        Assert.Contains($"  ok   host key     the host presented the trusted key {fake.HostKey}", run.Output, StringComparison.Ordinal);
        Assert.Contains("admin account Administrator: the stored password decrypts", run.Output, StringComparison.Ordinal);
        Assert.Contains(@"user account WORK\rdpuser: the stored password decrypts", run.Output, StringComparison.Ordinal);
        Assert.Contains("checked at the first sign-in", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminPassword, run.Output + run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(UserPassword, run.Output + run.Error, StringComparison.Ordinal);

        // The gateway's cookie: the user account's name without its domain, as a sign-in sends it.
        Assert.Equal("rdpuser", await fake.Cookie.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(await fake.TlsDone.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task HostTest_NothingListening_FailsAtTcpWithFix()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        await using var cli = await WithHostAsync(port);

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("  FAIL TCP          backend_unreachable", run.Output, StringComparison.Ordinal);
        Assert.Contains("gatehouse host test: vm1 failed at TCP: Check that the host is running", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("credentials", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostTest_HostRefusesTls_FailsAtX224()
    {
        await using var fake = FakeRdpHost.Start(NegotiationResult.Failure(NegotiationFailureCode.SslNotAllowedByServer));
        await using var cli = await WithHostAsync(fake.Port);

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("  ok   TCP", run.Output, StringComparison.Ordinal);
        Assert.Contains("  FAIL X.224        backend_negotiation: the host refused Ssl with SslNotAllowedByServer", run.Output, StringComparison.Ordinal);
        Assert.Contains("failed at X.224: Let the host accept TLS", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostTest_StoredPasswordNotDecryptable_FailsAtCredentials()
    {
        await using var fake = FakeRdpHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));
        await using var cli = await WithHostAsync(fake.Port);
        Assert.Equal(1, await cli.ExecuteSqlAsync("UPDATE Hosts SET UserSecretProtected = 'CfDJ8not-a-real-payload' WHERE Name = 'vm1'"));

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("  ok   TLS", run.Output, StringComparison.Ordinal);
        Assert.Contains("admin account Administrator: the stored password decrypts", run.Output, StringComparison.Ordinal);
        Assert.Contains(@"  FAIL credentials  the user account WORK\rdpuser's stored password cannot be decrypted", run.Output, StringComparison.Ordinal);
        Assert.Contains("failed at credentials", run.Error, StringComparison.Ordinal);
    }

    /// <summary>
    /// Accepts connections until disposed (host create reads the key, host test connects again): reads the X.224
    /// Connection Request (records the first cookie), answers with the given negotiation result, and on a TLS selection
    /// completes a TLS handshake with <see cref="Certificate"/> (a fresh self-signed one; a test may swap it, as a host
    /// given a new key, or a man in the middle, would).
    /// </summary>
    internal sealed class FakeRdpHost : IAsyncDisposable
    {
        private readonly TcpListener listener;
        private readonly CancellationTokenSource stop = new();
        private readonly List<X509Certificate2> certificates = [];
        private readonly Task serving;
        private X509Certificate2 certificate;
        private int connections;

        private FakeRdpHost(NegotiationResult answer)
        {
            certificate = NewCertificate();
            listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            serving = AcceptAsync(answer);
        }

        public int Port { get; }

        /// <summary>The certificate the next connections get.</summary>
        public X509Certificate2 Certificate => Volatile.Read(ref certificate);

        /// <summary>The key the host presents now, as Gatehouse prints it.</summary>
        public string HostKey => Gatehouse.Gateway.Backend.HostKeyFingerprint.Of(Certificate);

        /// <summary>Connections accepted so far.</summary>
        public int Connections => Volatile.Read(ref connections);

        public TaskCompletionSource<string> Cookie { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<bool> TlsDone { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static FakeRdpHost Start(NegotiationResult answer) => new(answer);

        /// <summary>From now on the host presents another key.</summary>
        public void ChangeKey() => Volatile.Write(ref certificate, NewCertificate());

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            try
            {
                await serving.WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or TimeoutException or OperationCanceledException)
            {
                // The listener stopped; nothing to clean up.
            }

            stop.Dispose();
            lock (certificates)
            {
                certificates.ForEach(c => c.Dispose());
            }
        }

        private X509Certificate2 NewCertificate()
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest("CN=fake-rdp-host", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
            lock (certificates)
            {
                certificates.Add(created);
            }

            return created;
        }

        private async Task AcceptAsync(NegotiationResult answer)
        {
            var served = new List<Task>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var client = await listener.AcceptTcpClientAsync(stop.Token);
                    Interlocked.Increment(ref connections);
                    served.Add(ServeAsync(client, answer));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // Stopped.
            }

            foreach (var task in served)
            {
                try
                {
                    await task.WaitAsync(TimeSpan.FromSeconds(10));
                }
                catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or TimeoutException or System.Security.Authentication.AuthenticationException)
                {
                    // The client went away.
                }
            }
        }

        private async Task ServeAsync(TcpClient client, NegotiationResult answer)
        {
            using (client)
            {
                var stream = client.GetStream();
                var header = new byte[4];
                await stream.ReadExactlyAsync(header);
                var frame = new byte[BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2))];
                header.CopyTo(frame, 0);
                await stream.ReadExactlyAsync(frame.AsMemory(4));
                Assert.True(ConnectionRequest.TryParse(frame, out var connectionRequest, out var error), error?.ToString());
                Cookie.TrySetResult(connectionRequest.TokenValue ?? string.Empty);

                var confirm = new ArrayBufferWriter<byte>();
                new ConnectionConfirm(answer).Write(confirm);
                await stream.WriteAsync(confirm.WrittenMemory);
                if (answer.IsFailure)
                {
                    return;
                }

                await using var tls = new SslStream(stream);
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = Certificate });
                TlsDone.TrySetResult(true);

                // Wait for the client to close, as an RDP server waits for MCS Connect Initial.
                var buffer = new byte[256];
                while (await tls.ReadAsync(buffer) > 0)
                {
                }
            }
        }
    }
}
