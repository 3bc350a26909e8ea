using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Gatehouse.Protocol.X224;
using FakeHost = Gatehouse.Server.Tests.Cli.HostTestCommandTests.FakeRdpHost;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// The host's TLS key through the CLI on the store (<c>--data</c>): recorded at <c>host create</c> from a real loopback TLS
/// listener (trust on first use), shown by <c>host show</c>, checked by <c>host test</c>, replaced by <c>host trust</c>,
/// dropped and read again by <c>host update</c> to a new backend.
/// </summary>
public sealed class HostKeyCommandTests
{
    private const string UserPassword = "Us3r-Secret-Giraffe";

    private static FakeHost TlsHost() => FakeHost.Start(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None));

    private static async Task<(CliHarness Cli, CliRun Create)> WithHostAsync(string backend)
    {
        var cli = await CliHarness.CreateAsync();
        var create = await cli.OkWithInputAsync(
            UserPassword + "\n",
            "host", "create", "--name", "vm1", "--backend", backend, "--backend-security", "tls", "--user-account", "rdpuser", "--user-password-stdin");
        return (cli, create);
    }

    private static async Task<JsonElement> ShowJsonAsync(CliHarness cli) =>
        JsonDocument.Parse((await cli.OkAsync("host", "show", "vm1", "--output", "json")).Output).RootElement.Clone();

    [Fact]
    public async Task HostCreate_RecordsTheKeyTheHostPresents_AndHostShowPrintsIt()
    {
        await using var fake = TlsHost();
        var (cli, create) = await WithHostAsync($"127.0.0.1:{fake.Port}");
        await using var _ = cli;

        Assert.Contains($"Host key: trusted on first use: {fake.HostKey}, the TLS key 127.0.0.1:{fake.Port} presented now", create.Output, StringComparison.Ordinal);
        var show = await cli.OkAsync("host", "show", "vm1");
        Assert.Contains($"Host key:         {fake.HostKey} (trusted by host create, ", show.Output, StringComparison.Ordinal);
        var json = await ShowJsonAsync(cli);
        Assert.Equal(fake.HostKey, json.GetProperty("certificatePin").GetString());
        Assert.Equal("host create", json.GetProperty("certificatePinnedBy").GetString());
        Assert.NotEqual(JsonValueKind.Null, json.GetProperty("certificatePinnedAt").ValueKind);
        Assert.Equal(1, fake.Connections);
    }

    [Fact]
    public async Task HostCreate_HostUnreachable_RecordsNothing_AndSaysTheFirstConnectionTrustsIt()
    {
        var (cli, create) = await WithHostAsync($"127.0.0.1:{ClosedPort()}");
        await using var _ = cli;

        Assert.Contains("Host key: no TLS key recorded yet (backend_unreachable:", create.Output, StringComparison.Ordinal);
        Assert.Contains("'gatehouse host test vm1'", create.Output, StringComparison.Ordinal);
        Assert.Contains("Host key:         (none trusted yet: the gateway's first connection trusts the key the host presents", (await cli.OkAsync("host", "show", "vm1")).Output, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, (await ShowJsonAsync(cli)).GetProperty("certificatePin").ValueKind);
    }

    [Fact]
    public async Task HostTest_HostWithoutAKey_AsRowsFromBeforeKeysWereRecorded_TrustsTheKeyOnFirstUse()
    {
        await using var fake = TlsHost();
        var (cli, _) = await WithHostAsync($"127.0.0.1:{fake.Port}");
        await using var harness = cli;
        Assert.Equal(1, await cli.ExecuteSqlAsync("UPDATE Hosts SET CertificatePin = NULL, CertificatePinnedAt = NULL, CertificatePinnedBy = NULL WHERE Name = 'vm1'"));

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"  ok   host key     trusted on first use: {fake.HostKey}", run.Output, StringComparison.Ordinal);
        var json = await ShowJsonAsync(cli);
        Assert.Equal(fake.HostKey, json.GetProperty("certificatePin").GetString());
        Assert.Equal("host test", json.GetProperty("certificatePinnedBy").GetString());
    }

    [Fact]
    public async Task HostTest_KeyChanged_FailsAtTls_WithBothKeysAndTheTrustCommand()
    {
        await using var fake = TlsHost();
        var (cli, _) = await WithHostAsync($"127.0.0.1:{fake.Port}");
        await using var harness = cli;
        var trusted = fake.HostKey;
        fake.ChangeKey();

        var run = await cli.RunAsync("host", "test", "vm1");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"  FAIL TLS          backend_certificate_changed: 127.0.0.1:{fake.Port} presented the TLS key {fake.HostKey}, not the trusted {trusted}", run.Output, StringComparison.Ordinal);
        Assert.Contains($"'gatehouse host trust vm1 --fingerprint {fake.HostKey}'", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("the stored password decrypts", run.Output, StringComparison.Ordinal);
        Assert.Equal(trusted, (await ShowJsonAsync(cli)).GetProperty("certificatePin").GetString());
    }

    [Fact]
    public async Task HostTrust_WithFingerprint_TrustsTheNewKey_OnlyWhenTheHostPresentsExactlyIt()
    {
        await using var fake = TlsHost();
        var (cli, _) = await WithHostAsync($"127.0.0.1:{fake.Port}");
        await using var harness = cli;
        var old = fake.HostKey;
        fake.ChangeKey();

        var wrong = await cli.RunAsync("host", "trust", "vm1", "--fingerprint", old);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains($"vm1 (127.0.0.1:{fake.Port}) presents the key {fake.HostKey}, not {old} that you gave, so nothing was changed", wrong.Error, StringComparison.Ordinal);
        Assert.Equal(old, (await ShowJsonAsync(cli)).GetProperty("certificatePin").GetString());

        // The fingerprint as openssl prints it (padded base64) is the same key.
        var trusted = await cli.OkAsync("host", "trust", "vm1", "--fingerprint", fake.HostKey + "=", "--output", "json");
        var view = JsonDocument.Parse(trusted.Output).RootElement;
        Assert.Equal(fake.HostKey, view.GetProperty("presentedKey").GetString());
        Assert.Equal(old, view.GetProperty("previousKey").GetString());
        Assert.True(view.GetProperty("trusted").GetBoolean());
        Assert.True(view.GetProperty("changed").GetBoolean());
        var show = await ShowJsonAsync(cli);
        Assert.Equal(fake.HostKey, show.GetProperty("certificatePin").GetString());
        Assert.Equal("host trust", show.GetProperty("certificatePinnedBy").GetString());
        Assert.True((await cli.RunAsync("host", "test", "vm1")).ExitCode == 0);

        var again = await cli.OkAsync("host", "trust", "vm1", "--fingerprint", fake.HostKey);
        Assert.Contains("was already the trusted key", again.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostTrust_WithoutFingerprint_ShowsTheKey_AndTrustsItOnlyOnYes()
    {
        await using var fake = TlsHost();
        var (cli, _) = await WithHostAsync($"127.0.0.1:{fake.Port}");
        await using var harness = cli;
        var old = fake.HostKey;
        fake.ChangeKey();

        var dryRun = await cli.OkAsync("host", "trust", "vm1", "--output", "json");
        var shown = JsonDocument.Parse(dryRun.Output).RootElement;
        Assert.Equal(fake.HostKey, shown.GetProperty("presentedKey").GetString());
        Assert.False(shown.GetProperty("trusted").GetBoolean());

        var declined = await cli.RunWithInputAsync("no\n", "host", "trust", "vm1");
        Assert.Equal(1, declined.ExitCode);
        Assert.Contains($"vm1 (127.0.0.1:{fake.Port}) presents the TLS key {fake.HostKey}.", declined.Output, StringComparison.Ordinal);
        Assert.Contains($"Trusted until now: {old}.", declined.Output, StringComparison.Ordinal);
        Assert.Contains($"Not trusted, nothing changed. To trust the key without a question: gatehouse host trust vm1 --fingerprint {fake.HostKey}", declined.Error, StringComparison.Ordinal);
        Assert.Equal(1, (await cli.RunAsync("host", "trust", "vm1")).ExitCode);
        Assert.Equal(old, (await ShowJsonAsync(cli)).GetProperty("certificatePin").GetString());

        var accepted = await cli.OkWithInputAsync("yes\n", "host", "trust", "vm1");
        Assert.Contains($"vm1 (127.0.0.1:{fake.Port}): trusted the TLS key {fake.HostKey} in place of {old}.", accepted.Output, StringComparison.Ordinal);
        Assert.Equal(fake.HostKey, (await ShowJsonAsync(cli)).GetProperty("certificatePin").GetString());
    }

    [Theory]
    [InlineData("ab:cd:ef", "is not a host key fingerprint")]
    [InlineData("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "could not be read, so nothing was changed: backend_unreachable")]
    public async Task HostTrust_BadFingerprintOrUnreachableHost_ChangesNothing(string fingerprint, string expected)
    {
        var (cli, _) = await WithHostAsync($"127.0.0.1:{ClosedPort()}");
        await using var harness = cli;

        var run = await cli.RunAsync("host", "trust", "vm1", "--fingerprint", fingerprint);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, (await ShowJsonAsync(cli)).GetProperty("certificatePin").ValueKind);
    }

    [Fact]
    public async Task HostTrust_Help_NamesTheFingerprintAndJson()
    {
        var run = await CliHarness.RunRawAsync(null, "host", "trust", "--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--fingerprint", run.Output, StringComparison.Ordinal);
        Assert.Contains("--output", run.Output, StringComparison.Ordinal);
        Assert.Contains("Trust the TLS key the host presents now", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostUpdate_NewBackend_DropsTheOldKey_AndTrustsTheNewBackendsOnFirstUse()
    {
        await using var first = TlsHost();
        await using var second = TlsHost();
        var (cli, _) = await WithHostAsync($"127.0.0.1:{first.Port}");
        await using var harness = cli;

        var moved = await cli.OkWithInputAsync(UserPassword + "\n", "host", "update", "vm1", "--backend", $"127.0.0.1:{second.Port}", "--user-password-stdin");
        Assert.Contains($"Host key: trusted on first use: {second.HostKey}", moved.Output, StringComparison.Ordinal);
        var show = await ShowJsonAsync(cli);
        Assert.Equal(second.HostKey, show.GetProperty("certificatePin").GetString());
        Assert.Equal("host update", show.GetProperty("certificatePinnedBy").GetString());

        // A backend that does not answer: the old key is dropped all the same (it was the other backend's).
        var unreachable = await cli.OkWithInputAsync(UserPassword + "\n", "host", "update", "vm1", "--backend", $"127.0.0.1:{ClosedPort()}", "--user-password-stdin");
        Assert.Contains("Host key: no TLS key recorded yet (backend_unreachable:", unreachable.Output, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, (await ShowJsonAsync(cli)).GetProperty("certificatePin").ValueKind);

        // An update that leaves the backend alone leaves the key alone and says nothing about it.
        var back = await cli.OkWithInputAsync(UserPassword + "\n", "host", "update", "vm1", "--backend", $"127.0.0.1:{second.Port}", "--user-password-stdin");
        var alias = await cli.OkAsync("host", "update", "vm1", "--alias", "vm1-alt");
        Assert.Contains("Host key: trusted on first use", back.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Host key", alias.Output, StringComparison.Ordinal);
        Assert.Equal(second.HostKey, (await ShowJsonAsync(cli)).GetProperty("certificatePin").GetString());
    }

    private static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
