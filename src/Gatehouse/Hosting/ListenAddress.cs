using System.Net;

namespace Gatehouse.Hosting;

/// <summary>One HTTPS listen address parsed from <c>Gatehouse:Urls</c> (<c>https://0.0.0.0:8443;https://[::1]:8443</c>).</summary>
internal readonly record struct ListenAddress(IPAddress Address, int Port)
{
    /// <summary>Parses a semicolon-separated list; only <c>https://</c> with an IP address, <c>*</c>, <c>+</c> or <c>localhost</c>.</summary>
    public static IReadOnlyList<ListenAddress> ParseList(string urls)
    {
        ArgumentNullException.ThrowIfNull(urls);
        var result = new List<ListenAddress>();
        foreach (var part in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            result.Add(Parse(part));
        }

        if (result.Count == 0)
        {
            throw new StartupException("Gatehouse:Urls is empty; give at least one address such as https://0.0.0.0:8443.");
        }

        return result;
    }

    public static ListenAddress Parse(string url)
    {
        const string Scheme = "https://";
        if (!url.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new StartupException($"'{url}' is not an https:// address. RDP clients only talk to the identity provider over HTTPS; use e.g. https://0.0.0.0:8443.");
        }

        var rest = url[Scheme.Length..].TrimEnd('/');
        string host;
        string port;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= rest.Length || rest[close + 1] != ':')
            {
                throw Bad(url);
            }

            host = rest[1..close];
            port = rest[(close + 2)..];
        }
        else
        {
            var colon = rest.LastIndexOf(':');
            if (colon < 0)
            {
                host = rest;
                port = "443";
            }
            else
            {
                host = rest[..colon];
                port = rest[(colon + 1)..];
            }
        }

        if (!int.TryParse(port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var portNumber) || portNumber > 65535)
        {
            throw Bad(url);
        }

        IPAddress address;
        if (host is "*" or "+" or "0.0.0.0")
        {
            address = IPAddress.Any;
        }
        else if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (!IPAddress.TryParse(host, out address!))
        {
            throw new StartupException($"'{url}': listen on an IP address (0.0.0.0, 127.0.0.1, [::]) or localhost, not a host name; the host name clients use goes in --public-name.");
        }

        return new ListenAddress(address, portNumber);
    }

    private static StartupException Bad(string url) =>
        new($"'{url}' is not a valid listen address; expected https://ADDRESS:PORT, e.g. https://0.0.0.0:8443.");
}
