using System.Globalization;
using System.Net.Sockets;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// The real xrdp that ./scripts/test.sh starts on loopback, and the two local accounts it created for the gateway to
/// inject (their names and passwords come from the environment the script sets).
/// </summary>
public sealed record XrdpHost(int Port, string UserAccount, string UserPassword, string AdminAccount, string AdminPassword)
{
    public const string PortVariable = "GATEHOUSE_TEST_XRDP_PORT";

    /// <summary>The xrdp the test script started, or a failure that says how to get one.</summary>
    public static XrdpHost FromEnvironment()
    {
        string Get(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: run the tests through ./scripts/test.sh, which starts xrdp and creates its test accounts.");
        return new XrdpHost(
            int.Parse(Get(PortVariable), CultureInfo.InvariantCulture),
            Get("GATEHOUSE_TEST_XRDP_USER"),
            Get("GATEHOUSE_TEST_XRDP_USER_PASSWORD"),
            Get("GATEHOUSE_TEST_XRDP_ADMIN"),
            Get("GATEHOUSE_TEST_XRDP_ADMIN_PASSWORD"));
    }

    /// <summary>True when xrdp accepts TCP connections.</summary>
    public async Task<bool> IsListeningAsync()
    {
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(System.Net.IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Names of the processes running as <paramref name="account"/> (read from /proc).</summary>
    public static IReadOnlyList<string> ProcessesOf(string account)
    {
        var uid = UidOf(account);
        if (uid is null)
        {
            return [];
        }

        var names = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
            {
                continue;
            }

            try
            {
                var status = File.ReadAllLines(Path.Combine(dir, "status"));
                var uidLine = status.FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
                if (uidLine is not null && uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == uid)
                {
                    names.Add(status[0]["Name:".Length..].Trim());
                }
            }
            catch (IOException)
            {
                // The process ended meanwhile.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to read.
            }
        }

        return names;
    }

    private static string? UidOf(string account) =>
        File.ReadLines("/etc/passwd").Select(l => l.Split(':')).FirstOrDefault(f => f.Length > 2 && f[0] == account)?[2];
}
