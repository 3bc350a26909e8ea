using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Gatehouse.Gateway.Agents;

/// <summary>
/// The addresses a host's RDP service listens on: what the agent reads from Linux's <c>/proc/net/tcp</c> and
/// <c>/proc/net/tcp6</c>, what it reports in <see cref="AgentHealthReport.RdpListenAddresses"/>, and how the audit
/// decides whether the host can be reached around the gateway. Everything here is capped and returns a reason instead
/// of throwing: the report comes from a host, and a host is a client.
/// </summary>
public static class ListeningAddresses
{
    /// <summary>The most text of one <c>/proc/net/tcp*</c> file read (a busy host has a few thousand sockets).</summary>
    public const int MaxProcTextLength = 4 * 1024 * 1024;

    /// <summary>The most lines of one <c>/proc/net/tcp*</c> file looked at.</summary>
    public const int MaxProcLines = 65_536;

    /// <summary>The most listening addresses kept (and accepted in a report).</summary>
    public const int MaxAddresses = 64;

    /// <summary>The longest address text accepted in a report (the longest IPv6 text with a scope is 46 characters).</summary>
    public const int MaxAddressLength = 64;

    // The kernel's TCP_LISTEN state (include/net/tcp_states.h), as /proc/net/tcp prints it.
    private const string ListenState = "0A";

    /// <summary>
    /// Reads the sockets in <paramref name="text"/> (the content of <c>/proc/net/tcp</c>, or <c>/proc/net/tcp6</c> when
    /// <paramref name="ipv6"/>) that listen on <paramref name="port"/>, adding each local address (once) to
    /// <paramref name="addresses"/>. The kernel prints each 32-bit word of the address in the host's byte order; this
    /// runs on the host that printed it, so the words are read back in the machine's order.
    /// </summary>
    /// <returns><c>false</c> with the reason when the text is too long, has too many lines or a malformed line.</returns>
    public static bool TryParseProc(string? text, int port, bool ipv6, List<IPAddress> addresses, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        error = null;
        if (text is null)
        {
            return true;
        }

        if (text.Length > MaxProcTextLength)
        {
            error = $"the socket table is longer than {MaxProcTextLength} characters";
            return false;
        }

        if (port is < 1 or > 65535)
        {
            error = "the port is not between 1 and 65535";
            return false;
        }

        var lines = 0;
        var rest = text.AsSpan();
        var first = true;
        while (!rest.IsEmpty)
        {
            var end = rest.IndexOf('\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            if (++lines > MaxProcLines)
            {
                error = $"the socket table has more than {MaxProcLines} lines";
                return false;
            }

            line = line.Trim();
            if (line.IsEmpty)
            {
                continue;
            }

            if (first)
            {
                first = false;
                if (line.StartsWith("sl", StringComparison.Ordinal))
                {
                    // The header: "sl  local_address rem_address   st ...".
                    continue;
                }
            }

            if (!TryParseLine(line, ipv6, out var address, out var localPort, out var listening, out var reason))
            {
                error = string.Create(CultureInfo.InvariantCulture, $"line {lines}: {reason}");
                return false;
            }

            if (listening && localPort == port && !addresses.Contains(address))
            {
                if (addresses.Count >= MaxAddresses)
                {
                    error = $"more than {MaxAddresses} listening addresses";
                    return false;
                }

                addresses.Add(address);
            }
        }

        return true;
    }

    /// <summary>
    /// Checks the addresses an agent reported: at most <see cref="MaxAddresses"/>, each an IP address of at most
    /// <see cref="MaxAddressLength"/> characters. Null stays null (an older agent that does not report them).
    /// </summary>
    /// <returns>The addresses in their canonical text, without duplicates; <c>false</c> with the reason otherwise.</returns>
    public static bool TryNormalize(IReadOnlyList<string?>? reported, out IReadOnlyList<string>? normalized, [NotNullWhen(false)] out string? error)
    {
        normalized = null;
        error = null;
        if (reported is null)
        {
            return true;
        }

        if (reported.Count > MaxAddresses)
        {
            error = $"more than {MaxAddresses} listening addresses";
            return false;
        }

        var list = new List<string>(reported.Count);
        foreach (var text in reported)
        {
            if (text is null || text.Length > MaxAddressLength || !IPAddress.TryParse(text, out var address))
            {
                error = "a listening address is not an IP address";
                return false;
            }

            var canonical = Canonical(address).ToString();
            if (!list.Contains(canonical))
            {
                list.Add(canonical);
            }
        }

        normalized = list;
        return true;
    }

    /// <summary>
    /// The addresses through which the RDP port can be reached around the gateway: a wildcard (<c>0.0.0.0</c>,
    /// <c>::</c>), or any address that is neither loopback nor in <paramref name="allowed"/> (the addresses the gateway
    /// connects to). Empty when the service listens only where the gateway reaches it.
    /// </summary>
    public static IReadOnlyList<string> Exposed(IEnumerable<string> listening, IEnumerable<string> allowed)
    {
        ArgumentNullException.ThrowIfNull(listening);
        ArgumentNullException.ThrowIfNull(allowed);
        var allow = new HashSet<IPAddress>();
        foreach (var text in allowed)
        {
            if (text is { Length: <= MaxAddressLength } && IPAddress.TryParse(text, out var address))
            {
                allow.Add(Canonical(address));
            }
        }

        var exposed = new List<string>();
        foreach (var text in listening)
        {
            if (text is not { Length: <= MaxAddressLength } || !IPAddress.TryParse(text, out var address))
            {
                continue;
            }

            address = Canonical(address);
            var wildcard = address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any);
            if (wildcard || (!IPAddress.IsLoopback(address) && !allow.Contains(address)))
            {
                exposed.Add(address.ToString());
            }
        }

        return exposed;
    }

    /// <summary>
    /// Reads the local addresses the RDP port listens on from <c>/proc/net/tcp</c> and <c>/proc/net/tcp6</c>. Null when
    /// they cannot be read (not Linux, no <c>/proc</c>) or do not parse: the report then leaves them out.
    /// </summary>
    public static IReadOnlyList<string>? ReadLocal(int port, string procDirectory = "/proc/net")
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var addresses = new List<IPAddress>();
        foreach (var (file, ipv6) in new[] { ("tcp", false), ("tcp6", true) })
        {
            var path = Path.Combine(procDirectory, file);
            string? text;
            try
            {
                text = File.Exists(path) ? ReadCapped(path) : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            if (!TryParseProc(text, port, ipv6, addresses, out _))
            {
                return null;
            }
        }

        return [.. addresses.Select(a => Canonical(a).ToString())];
    }

    private static string? ReadCapped(string path)
    {
        // /proc files report a length of 0: read up to the cap, and one more character to notice a longer file.
        using var reader = new StreamReader(path);
        var buffer = new char[MaxProcTextLength + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = reader.Read(buffer, total, buffer.Length - total)) > 0)
        {
            total += read;
        }

        return new string(buffer, 0, total);
    }

    /// <summary>IPv4-mapped IPv6 addresses (<c>::ffff:10.0.0.5</c>) as the IPv4 address they are; scopes dropped.</summary>
    private static IPAddress Canonical(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0)
        {
            return new IPAddress(address.GetAddressBytes());
        }

        return address;
    }

    private static bool TryParseLine(ReadOnlySpan<char> line, bool ipv6, [NotNullWhen(true)] out IPAddress? address, out int port, out bool listening, [NotNullWhen(false)] out string? error)
    {
        address = null;
        port = 0;
        listening = false;

        // "0: 00000000:0D3D 00000000:0000 0A ...": the slot, the local address, the remote address, the state.
        Span<Range> fields = stackalloc Range[5];
        var count = line.Split(fields, ' ', StringSplitOptions.RemoveEmptyEntries);
        if (count < 4 || !line[fields[0]].EndsWith(':'))
        {
            error = "not a socket line (slot, local address, remote address, state)";
            return false;
        }

        var local = line[fields[1]];
        var colon = local.IndexOf(':');
        var hexLength = ipv6 ? 32 : 8;
        if (colon != hexLength || local.Length != hexLength + 5)
        {
            error = ipv6 ? "the local address is not 32 hex digits, a colon and a 4-digit port" : "the local address is not 8 hex digits, a colon and a 4-digit port";
            return false;
        }

        if (!int.TryParse(local[(colon + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out port))
        {
            error = "the local port is not hexadecimal";
            return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        for (var word = 0; word < hexLength / 8; word++)
        {
            if (!uint.TryParse(local.Slice(word * 8, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                error = "the local address is not hexadecimal";
                return false;
            }

            // The kernel printed the word as the integer it holds in memory: its bytes, in the machine's order, are the address's.
            System.Runtime.InteropServices.MemoryMarshal.Write(bytes.Slice(word * 4, 4), in value);
        }

        var state = line[fields[3]];
        if (state.Length != 2 || !byte.TryParse(state, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out _))
        {
            error = "the state is not two hex digits";
            return false;
        }

        listening = state.Equals(ListenState, StringComparison.OrdinalIgnoreCase);
        address = new IPAddress(bytes[..(hexLength / 2)]);
        error = null;
        return true;
    }
}
