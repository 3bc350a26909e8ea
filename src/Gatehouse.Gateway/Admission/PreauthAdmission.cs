using System.Collections.Concurrent;
using System.Net;

namespace Gatehouse.Gateway.Admission;

/// <summary>Why a connection was not admitted.</summary>
public enum AdmissionRefusal
{
    /// <summary>Admitted.</summary>
    None,

    /// <summary>Too many unauthenticated connections in total.</summary>
    GlobalLimit,

    /// <summary>Too many unauthenticated connections from this address.</summary>
    AddressLimit,
}

/// <summary>
/// Caps connections that have not authenticated yet, in total and per client address (IPv6 clients are grouped by
/// their /64, since one host owns a whole /64). A lease is released when the connection authenticates or ends, so a
/// flood of half-open connections cannot starve signed-in sessions. Thread-safe.
/// </summary>
public sealed class PreauthAdmission
{
    private readonly ConcurrentDictionary<string, int> _perAddress = new(StringComparer.Ordinal);
    private readonly int _maxTotal;
    private readonly int _maxPerAddress;
    private int _total;

    /// <summary>Creates the admission gate with its two caps.</summary>
    public PreauthAdmission(int maxTotal, int maxPerAddress)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTotal);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPerAddress);
        _maxTotal = maxTotal;
        _maxPerAddress = maxPerAddress;
    }

    /// <summary>Unauthenticated connections admitted now.</summary>
    public int Pending => Volatile.Read(ref _total);

    /// <summary>Admits a connection from <paramref name="address"/>, or says which cap refused it.</summary>
    public AdmissionRefusal TryAdmit(IPAddress address, out AdmissionLease? lease)
    {
        ArgumentNullException.ThrowIfNull(address);
        lease = null;
        if (Interlocked.Increment(ref _total) > _maxTotal)
        {
            Interlocked.Decrement(ref _total);
            Diagnostics.GatewayTelemetry.AdmissionRefusals.Add(1, new KeyValuePair<string, object?>("gatehouse.refusal", "global_limit"));
            return AdmissionRefusal.GlobalLimit;
        }

        var key = Group(address);
        var count = _perAddress.AddOrUpdate(key, 1, static (_, n) => n + 1);
        if (count > _maxPerAddress)
        {
            Release(key);
            Diagnostics.GatewayTelemetry.AdmissionRefusals.Add(1, new KeyValuePair<string, object?>("gatehouse.refusal", "address_limit"));
            return AdmissionRefusal.AddressLimit;
        }

        lease = new AdmissionLease(this, key);
        Diagnostics.GatewayTelemetry.PendingConnections.Add(1);
        return AdmissionRefusal.None;
    }

    /// <summary>The counting key: the IPv4 address, or the /64 prefix of an IPv6 address.</summary>
    internal static string Group(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    private void Release(string key)
    {
        while (true)
        {
            var current = _perAddress[key];
            if (current <= 1)
            {
                if (_perAddress.TryRemove(new KeyValuePair<string, int>(key, current)))
                {
                    break;
                }
            }
            else if (_perAddress.TryUpdate(key, current - 1, current))
            {
                break;
            }
        }

        Interlocked.Decrement(ref _total);
    }

    /// <summary>One admitted connection; dispose it (once) when the connection authenticates or ends.</summary>
    public sealed class AdmissionLease : IDisposable
    {
        private readonly PreauthAdmission _owner;
        private readonly string _key;
        private int _released;

        internal AdmissionLease(PreauthAdmission owner, string key)
        {
            _owner = owner;
            _key = key;
        }

        /// <summary>Releases the slot; later calls do nothing.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Diagnostics.GatewayTelemetry.PendingConnections.Add(-1);
                _owner.Release(_key);
            }
        }
    }
}
