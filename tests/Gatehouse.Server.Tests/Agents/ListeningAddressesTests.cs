using System.Net;
using System.Text;
using System.Text.Json;
using Gatehouse.Agents;
using Gatehouse.Gateway.Agents;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>
/// The agent's reading of <c>/proc/net/tcp</c> and <c>tcp6</c> (lines as a little-endian Linux kernel prints them), the
/// server's check of the reported addresses, what counts as reachable around the gateway, and the health report's
/// backward compatibility.
/// </summary>
public sealed class ListeningAddressesTests
{
    // Written in the layout a little-endian Linux kernel prints (values chosen for the test): the header, a
    // listener on 3389, a connection to 10.0.0.7:3389 (state 01, not a listener), a listener on 22, and a listener
    // on 10.0.0.5:3389.
    private const string Tcp = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25981 1 0000000000000000 100 0 0 10 0
           1: 0700000A:0D3D 0600000A:C350 01 00000000:00000000 02:000A7B1A 00000000     0        0 31337 2 0000000000000000 20 4 30 10 -1
           2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24012 1 0000000000000000 100 0 0 10 0
           3: 0500000A:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25982 1 0000000000000000 100 0 0 10 0
        """;

    // The IPv6 table: :: (wildcard), ::1, and ::ffff:192.168.7.6 (an IPv4-mapped listener), all on 3389.
    private const string Tcp6 = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000000000000:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25983 1 0000000000000000 100 0 0 10 0
           1: 00000000000000000000000001000000:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25984 1 0000000000000000 100 0 0 10 0
           2: 0000000000000000FFFF00000607A8C0:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25985 1 0000000000000000 100 0 0 10 0
        """;

    [Fact]
    public void TryParseProc_Tcp_ListsTheListenersOnThePortOnly()
    {
        var addresses = new List<IPAddress>();

        Assert.True(ListeningAddresses.TryParseProc(Tcp, 3389, ipv6: false, addresses, out var error), error);

        Assert.Equal([IPAddress.Any, IPAddress.Parse("10.0.0.5")], addresses);
    }

    [Fact]
    public void TryParseProc_Tcp6_ReadsEachWordInTheMachinesOrder()
    {
        var addresses = new List<IPAddress>();

        Assert.True(ListeningAddresses.TryParseProc(Tcp6, 3389, ipv6: true, addresses, out var error), error);

        Assert.Equal([IPAddress.IPv6Any, IPAddress.IPv6Loopback, IPAddress.Parse("::ffff:192.168.7.6")], addresses);
    }

    [Theory]
    [InlineData("   0: 0000000G:0D3D 00000000:0000 0A", "line 1: the local address is not hexadecimal")]
    [InlineData("   0: 00000000:0D3 00000000:0000 0A", "line 1: the local address is not 8 hex digits, a colon and a 4-digit port")]
    [InlineData("   0: 00000000:0D3D 00000000:0000 0", "line 1: the state is not two hex digits")]
    [InlineData("   0: 00000000:0D3D", "line 1: not a socket line (slot, local address, remote address, state)")]
    [InlineData("garbage garbage garbage garbage", "line 1: not a socket line (slot, local address, remote address, state)")]
    [InlineData("   0: 00000000:+D3D 00000000:0000 0A", "line 1: the local port is not hexadecimal")]
    public void TryParseProc_MalformedLine_IsRefusedWithTheReason(string text, string expected)
    {
        Assert.False(ListeningAddresses.TryParseProc(text, 3389, ipv6: false, [], out var error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void TryParseProc_Caps_TextLinesAndAddresses()
    {
        var longText = new string(' ', ListeningAddresses.MaxProcTextLength + 1);
        var manyLines = new string('\n', ListeningAddresses.MaxProcLines + 1);
        var manyAddresses = new StringBuilder();
        for (var i = 1; i <= ListeningAddresses.MaxAddresses + 1; i++)
        {
            manyAddresses.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i}: {i:X2}00000A:0D3D 00000000:0000 0A\n");
        }

        Assert.False(ListeningAddresses.TryParseProc(longText, 3389, false, [], out var e1));
        Assert.False(ListeningAddresses.TryParseProc(manyLines, 3389, false, [], out var e2));
        Assert.False(ListeningAddresses.TryParseProc(manyAddresses.ToString(), 3389, false, [], out var e3));
        Assert.False(ListeningAddresses.TryParseProc(Tcp, 0, false, [], out var e4));
        Assert.Contains("longer than", e1, StringComparison.Ordinal);
        Assert.Contains("more than 65536 lines", e2, StringComparison.Ordinal);
        Assert.Equal("more than 64 listening addresses", e3);
        Assert.Equal("the port is not between 1 and 65535", e4);
    }

    [Fact]
    public void ReadLocal_ReadsBothFilesOfAProcDirectory()
    {
        var directory = TempDirectory.Create();
        File.WriteAllText(Path.Combine(directory, "tcp"), Tcp);
        File.WriteAllText(Path.Combine(directory, "tcp6"), Tcp6);

        var addresses = ListeningAddresses.ReadLocal(3389, directory);

        Assert.Equal(["0.0.0.0", "10.0.0.5", "::", "::1", "192.168.7.6"], addresses);

        // This machine's own tables parse (whatever listens here).
        Assert.NotNull(ListeningAddresses.ReadLocal(22));
    }

    [Fact]
    public void ReadLocal_MalformedTable_ReportsNothingRatherThanAGuess()
    {
        var directory = TempDirectory.Create();
        File.WriteAllText(Path.Combine(directory, "tcp"), "   0: zz:0D3D 00000000:0000 0A\n");

        Assert.Null(ListeningAddresses.ReadLocal(3389, directory));
    }

    [Fact]
    public void Exposed_WildcardsAndUnlistedAddresses_AreReachableAroundTheGateway()
    {
        var exposed = ListeningAddresses.Exposed(
            ["0.0.0.0", "::", "127.0.0.1", "::1", "10.0.0.5", "::ffff:10.0.0.6", "192.168.7.6", "fe80::1%2", "not an address"],
            ["10.0.0.5", "10.0.0.6", "fe80::1", "junk"]);

        Assert.Equal(["0.0.0.0", "::", "192.168.7.6"], exposed);
        Assert.Empty(ListeningAddresses.Exposed(["127.0.0.1", "10.0.0.5"], ["10.0.0.5"]));
    }

    [Fact]
    public void TryNormalize_ChecksWhatTheAgentSent()
    {
        Assert.True(ListeningAddresses.TryNormalize(null, out var none, out _));
        Assert.Null(none);
        Assert.True(ListeningAddresses.TryNormalize(["::ffff:10.0.0.1", "10.0.0.1", "::"], out var normalized, out _));
        Assert.Equal(["10.0.0.1", "::"], normalized);
        Assert.False(ListeningAddresses.TryNormalize(["10.0.0.1", "not-an-ip"], out _, out var bad));
        Assert.Equal("a listening address is not an IP address", bad);
        Assert.False(ListeningAddresses.TryNormalize([new string('1', 65)], out _, out _));
        Assert.False(ListeningAddresses.TryNormalize([null], out _, out _));
        Assert.False(ListeningAddresses.TryNormalize([.. Enumerable.Range(0, 65).Select(i => $"10.0.0.{i}")], out _, out var many));
        Assert.Equal("more than 64 listening addresses", many);
    }

    [Fact]
    public async Task HealthReport_WithAndWithoutAddresses_IsStoredBackwardCompatibly()
    {
        // Arrange: an enrolled host; one report as an agent before this field sends it (no rdpListenAddresses), one with
        // addresses, one with junk.
        await using var cli = await CliHarness.CreateAsync();
        await AuditCommandTests.AddHostAsync(cli, "vm1", "10.0.0.1", stored: false, agent: new AuditCommandTests.AgentSpec(null, true, DateTimeOffset.UtcNow));
        await using var store = await cli.OpenStoreAsync();
        var db = store.Get<GatehouseDbContext>();
        var agentId = (await db.HostAgents.SingleAsync()).Id;
        var registry = new AgentRegistry(db, TimeProvider.System);
        var old = JsonSerializer.Deserialize<AgentHealthReport>(
            """{"rdpListening":true,"rdpCertificatePin":null,"managedAccounts":1,"agentVersion":"0.9","agentTime":"2026-12-07T06:00:00Z","lastError":null,"intervalSeconds":30}""",
            AgentJson.Options)!;

        // Act and assert
        Assert.Null(old.RdpListenAddresses);
        Assert.Null(StoredAddresses(await registry.RecordHealthAsync(agentId, old, CancellationToken.None)));
        Assert.Equal(["10.0.0.1", "::1"], StoredAddresses(await registry.RecordHealthAsync(agentId, old with { RdpListenAddresses = ["10.0.0.1", "::1"] }, CancellationToken.None)));
        Assert.Null(StoredAddresses(await registry.RecordHealthAsync(agentId, old with { RdpListenAddresses = ["10.0.0.1", "<script>"] }, CancellationToken.None)));
        Assert.Contains("\"rdpListenAddresses\":[\"10.0.0.1\"]", JsonSerializer.Serialize(old with { RdpListenAddresses = ["10.0.0.1"] }, AgentJson.Options), StringComparison.Ordinal);

        static IReadOnlyList<string>? StoredAddresses(HostAgent agent) =>
            JsonSerializer.Deserialize<StoredHealth>(agent.HealthJson!, AgentJson.Options)!.RdpListenAddresses;
    }

    [Fact]
    public async Task Runner_HealthReport_CarriesTheListeningAddresses()
    {
        // Arrange: the agent with a capturing HTTP handler in place of the server.
        using var capture = new CaptureHandler();
        using var http = new HttpClient(capture);
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var time = new Gatehouse.Gateway.Tests.ManualTime();
        var state = new AgentState(Path.Combine(TempDirectory.Create(), "agent"));
        var config = new AgentConfig { Server = new Uri("https://login.gatehouse.test"), ServerCertificateSha256 = new string('a', 64), AgentId = Guid.NewGuid(), Audience = "aud", RdpPort = 3390 };
        var ports = new List<int>();
        using var runner = new HostAgentRunner(state, config, key, new AgentClient(http, time), new LinuxHostAccounts(new LinuxHostAccountsTests.FakeRunner()), new ListeningProbe(), time, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance)
        {
            ListenAddresses = port =>
            {
                ports.Add(port);
                return ["10.0.0.1", "::1"];
            },
        };

        // Act
        await runner.ReportHealthAsync(CancellationToken.None);

        // Assert
        Assert.Equal([3390], ports);
        var report = JsonSerializer.Deserialize<AgentHealthReport>(Assert.Single(capture.Bodies), AgentJson.Options)!;
        Assert.Equal(["10.0.0.1", "::1"], report.RdpListenAddresses);
    }

    private sealed class ListeningProbe : IRdpProbe
    {
        public Task<RdpProbeResult> ProbeAsync(int port, CancellationToken cancellationToken) => Task.FromResult(new RdpProbeResult(true, null, null));
    }

    private sealed class CaptureHandler : HttpMessageHandler
    {
        public List<string> Bodies { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Bodies.Add(await request.Content!.ReadAsStringAsync(cancellationToken));
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        }
    }
}
