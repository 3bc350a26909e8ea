using System.Net;
using Gatehouse.Gateway.Admission;

namespace Gatehouse.Gateway.Tests;

public sealed class PreauthAdmissionTests
{
    [Fact]
    public void TryAdmit_PerAddressCap_RefusesTheNextFromThatAddressOnly()
    {
        var gate = new PreauthAdmission(maxTotal: 100, maxPerAddress: 2);
        var a = IPAddress.Parse("192.0.2.1");
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(a, out var l1));
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(a, out var l2));
        Assert.Equal(AdmissionRefusal.AddressLimit, gate.TryAdmit(a, out var refused));
        Assert.Null(refused);
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(IPAddress.Parse("192.0.2.2"), out var other));
        Assert.Equal(3, gate.Pending);

        l1!.Dispose();
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(a, out var l3));
        l2!.Dispose();
        l3!.Dispose();
        other!.Dispose();
        Assert.Equal(0, gate.Pending);
    }

    [Fact]
    public void TryAdmit_GlobalCap_RefusesEveryone()
    {
        var gate = new PreauthAdmission(maxTotal: 2, maxPerAddress: 10);
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(IPAddress.Parse("192.0.2.1"), out var l1));
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(IPAddress.Parse("192.0.2.2"), out _));
        Assert.Equal(AdmissionRefusal.GlobalLimit, gate.TryAdmit(IPAddress.Parse("192.0.2.3"), out _));
        Assert.Equal(2, gate.Pending);
        l1!.Dispose();
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(IPAddress.Parse("192.0.2.3"), out _));
    }

    [Fact]
    public void Lease_DisposedTwice_ReleasesOnce()
    {
        var gate = new PreauthAdmission(maxTotal: 10, maxPerAddress: 1);
        var a = IPAddress.Parse("192.0.2.1");
        gate.TryAdmit(a, out var l1);
        gate.TryAdmit(IPAddress.Parse("192.0.2.9"), out _);
        l1!.Dispose();
        l1.Dispose();
        Assert.Equal(1, gate.Pending);
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(a, out _));
        Assert.Equal(AdmissionRefusal.AddressLimit, gate.TryAdmit(a, out _));
    }

    [Theory]
    [InlineData("2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::2", true)]
    [InlineData("2001:db8:1:2::1", "2001:db8:1:3::1", false)]
    [InlineData("::ffff:192.0.2.1", "192.0.2.1", true)]
    [InlineData("192.0.2.1", "192.0.2.2", false)]
    public void Group_IPv6ByPrefix64_IPv4MappedAsIPv4(string x, string y, bool same) =>
        Assert.Equal(same, PreauthAdmission.Group(IPAddress.Parse(x)) == PreauthAdmission.Group(IPAddress.Parse(y)));

    [Fact]
    public async Task TryAdmit_Concurrently_NeverExceedsTheCapsAndReturnsToZero()
    {
        var gate = new PreauthAdmission(maxTotal: 50, maxPerAddress: 5);
        var maxSeen = 0;
        var tasks = Enumerable.Range(0, 8).Select(worker => Task.Run(() =>
        {
            var random = new Random(worker);
            for (var i = 0; i < 20_000; i++)
            {
                var address = IPAddress.Parse($"198.51.100.{random.Next(4)}");
                if (gate.TryAdmit(address, out var lease) == AdmissionRefusal.None)
                {
                    var pending = gate.Pending;
                    InterlockedMax(ref maxSeen, pending);
                    lease!.Dispose();
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(0, gate.Pending);
        Assert.True(maxSeen <= 50, $"saw {maxSeen} pending");
        Assert.Equal(AdmissionRefusal.None, gate.TryAdmit(IPAddress.Parse("198.51.100.0"), out _));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
