using Gatehouse.Hosting;

namespace Gatehouse.Server.Tests.Cli;

/// <summary><c>gatehouse host enroll</c> and <c>gatehouse host status</c> on the store (<c>--data</c>).</summary>
public sealed class HostAgentCommandTests
{
    [Fact]
    public async Task Enroll_PrintsTheOneCommand_WithATokenPinningTheServersCertificate()
    {
        await using var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("User-Secret-1\n", "host", "create", "--name", "vm1", "--backend", "127.0.0.1:1", "--backend-security", "tls", "--user-account", "rdpuser", "--user-password-stdin");

        // Without the server's certificate there is nothing to pin: refused with the way out.
        var unknown = await cli.RunAsync("host", "enroll", "vm1");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("--server", unknown.Error, StringComparison.Ordinal);

        // The certificate gatehouse serve generates in the data directory.
        using var certificate = TlsCertificates.Generate("login.gatehouse.test", DateTimeOffset.UtcNow);
        Directory.CreateDirectory(Path.Combine(cli.DataDirectory, TlsCertificates.FolderName));
        await File.WriteAllTextAsync(Path.Combine(cli.DataDirectory, TlsCertificates.FolderName, TlsCertificates.CertificateFileName), certificate.ExportCertificatePem());
        var sha256 = Convert.ToHexStringLower(certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));

        var run = await cli.OkAsync("host", "enroll", "vm1", "--lifetime", "10m");
        Assert.Contains("gatehouse agent join --server https://", run.Output, StringComparison.Ordinal);
        Assert.Matches($"--token ghjoin1\\.[A-Za-z0-9_-]{{43}}\\.{sha256}", run.Output);

        var tooLong = await cli.RunAsync("host", "enroll", "vm1", "--lifetime", "2h");
        Assert.NotEqual(0, tooLong.ExitCode);
        Assert.Contains("--lifetime must be between 1m and 1h", tooLong.Error, StringComparison.Ordinal);

        var list = await cli.OkAsync("host", "list");
        Assert.Contains("Agent", list.Output, StringComparison.Ordinal);
        Assert.Matches("vm1 .* none", list.Output);

        var status = await cli.OkAsync("host", "status", "vm1");
        Assert.Contains("not enrolled", status.Output, StringComparison.Ordinal);
        Assert.Contains("gatehouse host enroll vm1", status.Output, StringComparison.Ordinal);
        var json = await cli.OkAsync("host", "status", "vm1", "--output", "json");
        Assert.Contains("\"enrolled\": false", json.Output, StringComparison.Ordinal);
    }
}
