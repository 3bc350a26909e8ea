using System.Net;
using System.Net.Sockets;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// Free loopback ports for servers the tests start (gatehouse nodes, shadow hosts), each handed out once per test
/// process: the kernel may give a port that was just closed to the next bind to port 0, so two ports picked one after
/// the other could be the same (a node then got one port for HTTPS and RDP and exited), and a port picked for one node
/// could be picked again for the next before the first had bound it.
/// </summary>
internal static class LoopbackPorts
{
    private static readonly HashSet<int> HandedOut = [];
    private static readonly Lock Gate = new();

    /// <summary>A loopback port no listener held when asked, never handed out before by this process.</summary>
    public static int Next()
    {
        lock (Gate)
        {
            while (true)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                if (HandedOut.Add(port))
                {
                    return port;
                }
            }
        }
    }
}
