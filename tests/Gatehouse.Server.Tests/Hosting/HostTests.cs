using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;

namespace Gatehouse.Server.Tests.Hosting;

[Collection(ProcessEnvironmentCollection.Name)]
public sealed class HostTests
{
    [Fact]
    public async Task Serve_FirstRun_GeneratesCertificateAndReusesItNextTime()
    {
        var data = TempDirectory.Create();
        string firstThumbprint;
        await using (var server = await TestServer.StartAsync(data))
        {
            var certPath = Path.Combine(data, "tls", TlsCertificates.CertificateFileName);
            Assert.True(File.Exists(certPath));
            using var cert = X509Certificate2.CreateFromPemFile(certPath, Path.Combine(data, "tls", TlsCertificates.KeyFileName));
            firstThumbprint = cert.Thumbprint;
            Assert.True(cert.MatchesHostname("login.gatehouse.test"));
            Assert.True(cert.MatchesHostname("localhost"));
            Assert.Equal(2048, cert.GetRSAPublicKey()!.KeySize);
            Assert.Equal("sha256RSA", cert.SignatureAlgorithm.FriendlyName);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(data, "tls", TlsCertificates.KeyFileName)));
            }

            Assert.Equal(firstThumbprint, await ServedThumbprintAsync(server.BaseAddress));
        }

        await using (var again = await TestServer.StartAsync(data))
        {
            Assert.Equal(firstThumbprint, await ServedThumbprintAsync(again.BaseAddress));
        }
    }

    [Fact]
    public async Task Serve_PublicNameChanges_RenewsGeneratedCertificate()
    {
        var data = TempDirectory.Create();
        await using (await TestServer.StartAsync(data))
        {
        }

        await using var renamed = await TestServer.StartAsync(data, new Dictionary<string, string?> { ["Gatehouse:PublicName"] = "idp.example.test:8443" });
        using var cert = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(Path.Combine(data, "tls", TlsCertificates.CertificateFileName)));
        Assert.True(cert.MatchesHostname("idp.example.test"));
    }

    [Fact]
    public async Task Serve_ConfiguredPemFiles_AreServed()
    {
        var pemDir = TempDirectory.Create();
        using var generated = TlsCertificates.Generate("pem.gatehouse.test", DateTimeOffset.UtcNow);
        var certPath = Path.Combine(pemDir, "c.pem");
        var keyPath = Path.Combine(pemDir, "k.pem");
        await File.WriteAllTextAsync(certPath, generated.ExportCertificatePem());
        await File.WriteAllTextAsync(keyPath, generated.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());

        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Tls:CertificatePath"] = certPath,
            ["Gatehouse:Tls:KeyPath"] = keyPath,
        });
        Assert.Equal(generated.Thumbprint, await ServedThumbprintAsync(server.BaseAddress));
        Assert.False(Directory.Exists(Path.Combine(server.DataDirectory, "tls")));
    }

    [Theory]
    [InlineData("Gatehouse:Tls:CertificatePath", "/nonexistent/c.pem", "Both Gatehouse:Tls:CertificatePath and Gatehouse:Tls:KeyPath")]
    [InlineData("Gatehouse:Urls", "http://127.0.0.1:0", "not an https:// address")]
    [InlineData("Gatehouse:Urls", "https://login.example:8443", "listen on an IP address")]
    [InlineData("Gatehouse:Urls", "https://127.0.0.1:99999", "not a valid listen address")]
    [InlineData("Gatehouse:Urls", " ; ", "Gatehouse:Urls is empty")]
    [InlineData("Gatehouse:RdpPort", "70000", "out of range")]
    [InlineData("Gatehouse:RdpPort", "many", "Invalid configuration")]
    [InlineData("Gatehouse:RdpAddress", "vm1.example", "is not an IP address")]
    [InlineData("Gatehouse:Gateway:RelayBufferBytes", "100", "RelayBufferBytes 100 is out of range")]
    [InlineData("Gatehouse:Gateway:MaxAssertionBytes", "10", "MaxAssertionBytes must be")]
    [InlineData("Gatehouse:Gateway:JwksUrl", "http://idp.example/keys", "is not an https URL")]
    [InlineData("Gatehouse:Gateway:ClientInfoTimeout", "00:10:00", "ClientInfoTimeout 00:10:00 is out of range")]
    [InlineData("Gatehouse:Gateway:MaxClientInfoBytes", "100", "MaxClientInfoBytes 100 is out of range")]
    [InlineData("Gatehouse:Gateway:SignInDecisionTimeout", "00:00:01", "SignInDecisionTimeout 00:00:01 is out of range")]
    [InlineData("Gatehouse:Gateway:AssertionTimeout", "soon", "Invalid configuration in Gatehouse:Gateway")]
    public async Task Serve_BadConfiguration_FailsWithAnActionableMessage(string key, string value, string expected)
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => TestServer.StartAsync(overrides: new Dictionary<string, string?> { [key] = value }));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_BothPemPathsButUnreadable_SaysWhichFiles()
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Tls:CertificatePath"] = "/nonexistent/c.pem",
            ["Gatehouse:Tls:KeyPath"] = "/nonexistent/k.pem",
        }));
        Assert.Contains("/nonexistent/c.pem", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_MissingConfigFile_IsAStartupError()
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => TestServer.StartAsync(configFile: "/nonexistent/gatehouse.json"));
        Assert.Contains("--config", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_Precedence_FlagsBeatEnvironmentBeatFile()
    {
        var dir = TempDirectory.Create();
        var file = Path.Combine(dir, "gatehouse.json");
        await File.WriteAllTextAsync(file, """{ "Gatehouse": { "PublicName": "from-file.test", "Domain": "file.test", "RdpPort": 3391 } }""");
        Environment.SetEnvironmentVariable("Gatehouse__Domain", "env.test");
        Environment.SetEnvironmentVariable("Gatehouse__RdpPort", "3392");
        try
        {
            await using var server = await TestServer.StartAsync(
                overrides: new Dictionary<string, string?> { ["Gatehouse:PublicName"] = null!, ["Gatehouse:RdpPort"] = "3393" },
                configFile: file);
            var options = server.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatehouseOptions>>().Value;
            Assert.Equal("env.test", options.Domain);
            Assert.Equal(3393, options.RdpPort);
        }
        finally
        {
            Environment.SetEnvironmentVariable("Gatehouse__Domain", null);
            Environment.SetEnvironmentVariable("Gatehouse__RdpPort", null);
        }
    }

    [Fact]
    public async Task Responses_AreHttp11WithContentLengthAndNeverChunked()
    {
        await using var server = await TestServer.StartAsync();
        foreach (var path in new[] { "/healthz", "/does-not-exist" })
        {
            var raw = await RawGetAsync(server.BaseAddress, path);
            var head = raw[..raw.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
            Assert.StartsWith("HTTP/1.1 ", head, StringComparison.Ordinal);
            Assert.Contains("\r\nContent-Length: ", head, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("Transfer-Encoding", head, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("\r\nServer:", head, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task Server_NegotiatesOnlyHttp11()
    {
        await using var server = await TestServer.StartAsync();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "login.gatehouse.test",
            // The tests inspect the served certificate themselves.
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
        });
        Assert.Equal(SslApplicationProtocol.Http11, tls.NegotiatedApplicationProtocol);
    }

    [Theory]
    [InlineData("https://0.0.0.0:8443", "0.0.0.0", 8443)]
    [InlineData("https://*:443", "0.0.0.0", 443)]
    [InlineData("https://localhost:8443/", "127.0.0.1", 8443)]
    [InlineData("https://[::1]:9443", "::1", 9443)]
    [InlineData("HTTPS://127.0.0.1", "127.0.0.1", 443)]
    public void ListenAddress_Parses(string url, string address, int port)
    {
        var parsed = ListenAddress.Parse(url);
        Assert.Equal(IPAddress.Parse(address), parsed.Address);
        Assert.Equal(port, parsed.Port);
    }

    [Theory]
    [InlineData("login.contoso.test:8443", "login.contoso.test")]
    [InlineData("login.contoso.test", "login.contoso.test")]
    [InlineData("[::1]:8443", "::1")]
    [InlineData("127.0.0.1:8443", "127.0.0.1")]
    public void PublicHost_StripsThePort(string publicName, string host) =>
        Assert.Equal(host, GatehouseHost.PublicHost(publicName));

    [Fact]
    public async Task Serve_ConfigurationFiles_AreReadOnce_NoFileWatcherOnTheContentRoot()
    {
        // The content root is the working directory; under systemd that is the data directory, where every SQLite write
        // would wake a watcher of appsettings*.json (ASP.NET Core's default reloadOnChange covers the folders below it).
        var configFile = Path.Combine(TempDirectory.Create(), "gatehouse.json");
        await File.WriteAllTextAsync(configFile, """{ "HostTests": { "Marker": "from the file" } }""");
        await using var server = await TestServer.StartAsync(configFile: configFile);

        var files = ((Microsoft.Extensions.Configuration.IConfigurationRoot)server.App.Configuration).Providers
            .OfType<Microsoft.Extensions.Configuration.FileConfigurationProvider>()
            .Select(p => p.Source)
            .ToList();
        Assert.Contains(files, s => s.Path == "appsettings.json");
        Assert.Contains(files, s => s.Path == Path.GetFileName(configFile));
        Assert.All(files, s => Assert.False(s.ReloadOnChange, $"{s.Path} is watched for changes"));
        Assert.Equal("from the file", server.App.Configuration["HostTests:Marker"]);
    }

    private static async Task<string> ServedThumbprintAsync(Uri address)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, address.Port);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "login.gatehouse.test",
            // The tests inspect the served certificate themselves.
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
        });
        using var served = new X509Certificate2(tls.RemoteCertificate!);
        return served.Thumbprint;
    }

    private static async Task<string> RawGetAsync(Uri address, string path)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, address.Port);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "login.gatehouse.test",
            // The tests inspect the served certificate themselves.
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
        });

        // Exactly the request shape FreeRDP's hand-written client sends (utils/http.c).
        await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {address.Authority}\r\nConnection: close\r\n\r\n"));
        using var reader = new StreamReader(tls, Encoding.ASCII);
        return await reader.ReadToEndAsync();
    }
}
