using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.EndToEnd.Tests.Support;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Protocol.X224;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests;

/// <summary>
/// impacket's <c>rdp_check.py</c> (Debian python3-impacket) against <c>gatehouse serve</c> with NLA: it proves the
/// password by CredSSP (the gateway's pubKeyAuth answer makes it print "Access Granted"), sends its credentials and
/// closes at once. Every run must leave exactly one sign-in log entry with the gateway's decision (issue 15: in 10
/// runs of 10 there was none). The script is run unchanged through a small shim: it only connects to port 3389 and
/// reads the user name from a target string that cannot hold an '@', so the shim sends its connection to the
/// gateway's port and hands it the UPN; with <c>sni</c> it also names vm1 in TLS, as mstsc and FreeRDP do.
/// </summary>
public sealed class ImpacketRdpCheckTests(ITestOutputHelper output)
{
    private const string Password = "Correct-Horse-7!";
    private const int Runs = 10;

    private const string Shim = """
        import os, runpy, socket, sys
        import impacket.examples.utils as utils
        from OpenSSL import SSL

        port = int(os.environ["GATEHOUSE_RDP_PORT"])
        user, password, sni = os.environ["GATEHOUSE_USER"], os.environ["GATEHOUSE_PASSWORD"], os.environ.get("GATEHOUSE_SNI", "")
        utils.parse_target = lambda target: ("", user, password, "127.0.0.1")
        connect = socket.socket.connect
        socket.socket.connect = lambda self, address: connect(self, (address[0], port if address[1] == 3389 else address[1]))
        if sni:
            start = SSL.Connection.set_connect_state
            def named(self):
                self.set_tlsext_host_name(sni.encode())
                start(self)
            SSL.Connection.set_connect_state = named
        sys.argv = [sys.argv[1], "target"]
        runpy.run_path(sys.argv[0], run_name="__main__")
        """;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task RightPassword_ThenCloseAtOnce_EveryRunLeavesExactlyOneEntryWithTheDecision(bool nameTheHost)
    {
        if (!Peers.Require(output, Peers.Python, Peers.RdpCheck))
        {
            return;
        }

        await using var host = await TlsHostStub.StartAsync();
        await using var app = await StartGatewayAsync(host.Port);
        var rdpPort = GatehouseHost.RdpEndPoint(app).Port;
        var shim = Path.Combine(Path.GetTempPath(), $"gatehouse-rdp-check-{Guid.NewGuid():N}.py");
        await File.WriteAllTextAsync(shim, Shim);
        try
        {
            for (var run = 0; run < Runs; run++)
            {
                var transcript = await RunRdpCheckAsync(shim, rdpPort, nameTheHost ? "vm1.gatehouse.test" : null);
                Assert.True(transcript.Contains("Access Granted", StringComparison.Ordinal), $"run {run}: rdp_check.py did not get the password proven: {transcript}");

                // The client is gone already; the gateway's decision still lands in the sign-in log.
                var expected = run + 1;
                await UntilAsync(async () => (await RowsAsync(app)).Count >= expected, $"the sign-in log entry of run {run}");
            }

            await Wait.UntilAsync(
                () => app.Services.GetRequiredService<Gatehouse.Gateway.Admission.PreauthAdmission>().Pending == 0 && app.Services.GetRequiredService<SessionRegistry>().Count == 0,
                Wait.Generous,
                "the gateway to be done with every connection");
            var rows = await RowsAsync(app);
            foreach (var row in rows)
            {
                output.WriteLine($"{row.CorrelationId} {row.Result} {row.Code} {row.Reason}");
            }

            Assert.Equal(Runs, rows.Count);
            Assert.Equal(Runs, rows.Select(r => r.CorrelationId).Distinct().Count());
            Assert.All(rows, r => Assert.Equal("alice@contoso.test", r.UserPrincipalName));
            if (nameTheHost)
            {
                Assert.All(rows, r => Assert.Equal("success", r.Result));
                Assert.All(rows, r => Assert.NotNull(r.SessionId));
            }
            else
            {
                // No server name in TLS: the password is right, the host unknown; that is the decision logged.
                Assert.All(rows, r => Assert.StartsWith("authorization: unknown_host: the client named no host", r.Reason, StringComparison.Ordinal));
            }
        }
        finally
        {
            File.Delete(shim);
        }
    }

    private async Task<string> RunRdpCheckAsync(string shim, int rdpPort, string? serverName)
    {
        var info = new ProcessStartInfo(Peers.Python.Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(shim);
        info.ArgumentList.Add(Peers.RdpCheck.Path);
        info.Environment["GATEHOUSE_RDP_PORT"] = rdpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        info.Environment["GATEHOUSE_USER"] = "alice@contoso.test";
        info.Environment["GATEHOUSE_PASSWORD"] = Password;
        info.Environment["GATEHOUSE_SNI"] = serverName ?? string.Empty;
        using var process = Process.Start(info) ?? throw new InvalidOperationException("python3 did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(Wait.Generous);
        await process.WaitForExitAsync(deadline.Token);
        var transcript = await stdout + await stderr;
        output.WriteLine(transcript.Trim());
        return transcript;
    }

    private static async Task<List<SignInRecord>> RowsAsync(WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<GatehouseDbContext>().SignIns.AsNoTracking()
            .Where(s => s.Protocol == "nla").OrderBy(s => s.Sequence).ToListAsync();
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > Wait.Generous)
            {
                throw new TimeoutException($"Timed out after {Wait.Generous.TotalSeconds:0} s waiting for {what}.");
            }

            await Task.Delay(25);
        }
    }

    /// <summary><c>gatehouse serve</c> with NLA; alice may sign in to vm1, whose host is the TLS stub.</summary>
    private static async Task<WebApplication> StartGatewayAsync(int hostPort)
    {
        var httpsPort = LoopbackPorts.Next();

        var app = GatehouseHost.Build(new HostSettings
        {
            Overrides = new Dictionary<string, string?>
            {
                ["Gatehouse:DataDirectory"] = Path.Combine(Path.GetTempPath(), "gatehouse-e2e", Guid.NewGuid().ToString("N")),
                ["Gatehouse:Urls"] = $"https://127.0.0.1:{httpsPort}",
                ["Gatehouse:RdpPort"] = "0",
                ["Gatehouse:PublicName"] = $"login.gatehouse.test:{httpsPort}",
                ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla",
            },
            Console = new StringWriter(),
        });
        await app.StartAsync();
        await using var scope = app.Services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var tenant = (await directory.FindTenantAsync("contoso.test"))!;
        await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", hostPort, BackendSecurity.Tls, "hostadmin", "Host-Admin-1", "hostuser", "Host-User-1");
        await directory.CreateUserAsync(tenant.Id, "alice@contoso.test", "alice", Password, temporary: false);
        await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(tenant.Id, "Virtual Machine User Login", "alice@contoso.test", "/hosts/vm1");
        return app;
    }

    /// <summary>A host for the gateway's host leg: answers X.224 selecting TLS, does the handshake, then holds each connection.</summary>
    private sealed class TlsHostStub : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly X509Certificate2 _certificate;
        private readonly CancellationTokenSource _stop = new();
        private Task _accept = Task.CompletedTask;

        private TlsHostStub(X509Certificate2 certificate) => _certificate = certificate;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static Task<TlsHostStub> StartAsync()
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest("CN=vm1-stub", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            var stub = new TlsHostStub(X509Certificate2.CreateFromPem(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem()));
            stub._listener.Start();
            stub._accept = stub.AcceptAsync();
            return Task.FromResult(stub);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            try
            {
                await _accept;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }

            _stop.Dispose();
            _certificate.Dispose();
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                _ = Task.Run(() => ServeAsync(client));
            }
        }

        private async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    var header = new byte[4];
                    await stream.ReadExactlyAsync(header, _stop.Token);
                    await stream.ReadExactlyAsync(new byte[((header[2] << 8) | header[3]) - 4], _stop.Token);
                    var confirm = new ArrayBufferWriter<byte>();
                    new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None)).Write(confirm);
                    await stream.WriteAsync(confirm.WrittenMemory, _stop.Token);
                    await using var tls = new SslStream(stream);
                    await tls.AuthenticateAsServerAsync(_certificate);
                    var sink = new byte[4096];
                    while (await tls.ReadAsync(sink, _stop.Token) > 0)
                    {
                    }
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
                {
                }
            }
        }
    }
}
