using System.Net;
using System.Net.Sockets;
using System.Text;
using Gatehouse.Gateway.Agents;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// Fuzz target for the agent's reading of <c>/proc/net/tcp</c> and <c>tcp6</c> (the listening addresses it reports) and
/// the server's check of a reported list: never throws, stays within its caps, and what it accepts is what it found.
/// </summary>
public static class ListeningAddressTargets
{
    private static readonly byte[] Tcp = Encoding.ASCII.GetBytes(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
        "   0: 00000000:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25981 1 0000000000000000 100 0 0 10 0\n" +
        "   1: 0500000A:0D3D 0600000A:C350 01 00000000:00000000 02:000A7B1A 00000000     0        0 31337 2 0000000000000000 20 4 30 10 -1\n" +
        "   2: 0100007F:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24012 1 0000000000000000 100 0 0 10 0\n");

    private static readonly byte[] Tcp6 = Encoding.ASCII.GetBytes(
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
        "   0: 00000000000000000000000000000000:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25983 1 0000000000000000 100 0 0 10 0\n" +
        "   1: 0000000000000000FFFF00000607A8C0:0D3D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 25985 1 0000000000000000 100 0 0 10 0\n");

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("rdp-listen-addresses", [Tcp, Tcp6], input =>
        {
            var text = Encoding.UTF8.GetString(input);
            foreach (var ipv6 in new[] { false, true })
            {
                var addresses = new List<IPAddress>();
                if (ListeningAddresses.TryParseProc(text, 3389, ipv6, addresses, out var error))
                {
                    if (addresses.Count > ListeningAddresses.MaxAddresses || addresses.Distinct().Count() != addresses.Count)
                    {
                        throw new OracleViolationException("more addresses than the cap, or one twice");
                    }

                    if (addresses.Any(a => a.AddressFamily != (ipv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork)))
                    {
                        throw new OracleViolationException("an address of the other family");
                    }

                    // What the agent would report passes the server's check, and the audit can judge it.
                    var reported = addresses.Select(a => a.ToString()).ToList();
                    if (!ListeningAddresses.TryNormalize(reported, out var normalized, out var refused) || normalized!.Count > reported.Count)
                    {
                        throw new OracleViolationException($"the server refuses what the agent read: {refused}");
                    }

                    _ = ListeningAddresses.Exposed(normalized, reported);
                }
                else if (error is null)
                {
                    throw new OracleViolationException("a refused table without a reason");
                }
            }

            // The same bytes as a reported list (one address a line), as a hostile agent might send.
            var lines = text.Split('\n');
            if (ListeningAddresses.TryNormalize(lines, out var list, out var why))
            {
                if (list!.Count > ListeningAddresses.MaxAddresses)
                {
                    throw new OracleViolationException("the normalized list is over the cap");
                }
            }
            else if (why is null)
            {
                throw new OracleViolationException("a refused list without a reason");
            }
        });
    }
}
