using System.Net;
using Xunit.Abstractions;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>A program from a Debian package that an end-to-end test drives.</summary>
internal sealed record Peer(string Name, string Path, string Package);

/// <summary>
/// The real peers the end-to-end tests need, and the house convention for when one is missing: the test fails with a
/// message naming the package, unless <c>GATEHOUSE_ALLOW_MISSING_PEERS=1</c> (quick local runs), then it returns early.
/// </summary>
internal static class Peers
{
    public const string AllowMissingVariable = "GATEHOUSE_ALLOW_MISSING_PEERS";

    public static readonly Peer Chromium = new("Chromium", "/usr/bin/chromium", "chromium");
    public static readonly Peer XFreeRdp = new("FreeRDP 3 client", "/usr/bin/xfreerdp3", "freerdp3-x11 (bookworm-backports)");
    public static readonly Peer Xvfb = new("Xvfb", "/usr/bin/Xvfb", "xvfb");
    public static readonly Peer Stdbuf = new("stdbuf", "/usr/bin/stdbuf", "coreutils");
    public static readonly Peer Xrdp = new("xrdp", "/usr/sbin/xrdp", "xrdp xorgxrdp");
    public static readonly Peer ShadowServer = new("FreeRDP 3 shadow server", "/usr/bin/freerdp-shadow-cli3", "freerdp3-shadow-x11 (bookworm-backports)");
    public static readonly Peer Import = new("ImageMagick import", "/usr/bin/import", "imagemagick");
    public static readonly Peer Python = new("Debian's Python 3", "/usr/bin/python3", "python3");
    public static readonly Peer XDoTool = new("xdotool", "/usr/bin/xdotool", "xdotool");
    public static readonly Peer ZbarImg = new("zbarimg (QR decoder)", "/usr/bin/zbarimg", "zbar-tools");
    public static readonly Peer RdpCheck = new("impacket rdp_check.py", "/usr/share/doc/python3-impacket/examples/rdp_check.py", "python3-impacket");

    /// <summary>The DNS names the tests use; the test script maps them to 127.0.0.1 in /etc/hosts (vm1.login.gatehouse.test is the portal's .rdp address: HOST.PUBLIC-HOST).</summary>
    public static readonly string[] TestHostNames = ["vm1.gatehouse.test", "vm3.gatehouse.test", "login.gatehouse.test", "vm1.login.gatehouse.test"];

    public static bool AllowMissing => Environment.GetEnvironmentVariable(AllowMissingVariable) == "1";

    /// <summary>
    /// True when every peer is installed. When one is missing: fails the test, or (with the opt-out variable set)
    /// writes why to the test output and returns false so the test can return early.
    /// </summary>
    public static bool Require(ITestOutputHelper output, params Peer[] peers)
    {
        ArgumentNullException.ThrowIfNull(output);
        var missing = peers.Where(p => !File.Exists(p.Path)).ToList();
        if (missing.Count == 0)
        {
            return true;
        }

        var message = string.Join(
            "; ",
            missing.Select(p => $"{p.Name} is not installed ({p.Path} is missing; Debian package {p.Package}): ./scripts/test.sh installs it"));
        if (AllowMissing)
        {
            output.WriteLine($"Not run: {message} ({AllowMissingVariable}=1).");
            return false;
        }

        Assert.Fail(message + $". Set {AllowMissingVariable}=1 to skip instead.");
        return false;
    }

    /// <summary>Fails unless the test host names resolve to 127.0.0.1 (they are in /etc/hosts).</summary>
    public static void RequireTestHostNames()
    {
        foreach (var name in TestHostNames)
        {
            IPAddress[] addresses;
            try
            {
                addresses = Dns.GetHostAddresses(name);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                addresses = [];
                Assert.Fail(HostsMessage(name, e.Message));
            }

            if (!addresses.Contains(IPAddress.Loopback))
            {
                Assert.Fail(HostsMessage(name, $"it resolves to {string.Join(", ", addresses.Select(a => a.ToString()))}"));
            }
        }
    }

    private static string HostsMessage(string name, string detail) =>
        $"The test host name {name} does not resolve to 127.0.0.1 ({detail}). Add the line " +
        $"'127.0.0.1 {string.Join(' ', TestHostNames)}' to /etc/hosts (./scripts/test.sh does it).";
}
