using Gatehouse.Agents;

namespace Gatehouse.Server.Tests.Agents;

/// <summary>The local account name for a user: stable, collision-safe, capped, never a system account.</summary>
public sealed class AgentNamesTests
{
    private static readonly Dictionary<string, string> NoMapping = [];

    [Fact]
    public void PlainUpn_GetsItsLocalPart()
    {
        Assert.Equal("alice", AgentNames.Derive("Alice@Contoso.com", NoMapping, _ => false));
    }

    [Fact]
    public void ExistingUnmanagedAccount_IsNeverTaken_TheDomainIsAdded()
    {
        Assert.Equal("alice-contoso", AgentNames.Derive("alice@contoso.com", NoMapping, name => name == "alice"));
    }

    [Fact]
    public void BothTaken_AHashSuffixFollows_AndIsStableForTheUser()
    {
        var taken = new HashSet<string> { "alice", "alice-contoso" };
        var first = AgentNames.Derive("alice@contoso.com", NoMapping, taken.Contains);
        Assert.StartsWith("alice-contoso-", first, StringComparison.Ordinal);
        Assert.Equal(first, AgentNames.Derive("alice@contoso.com", NoMapping, taken.Contains));
        Assert.True(AgentNames.IsValid(first));
    }

    [Fact]
    public void RecordedMapping_Wins_EvenWhenTheAccountExists()
    {
        var mapping = new Dictionary<string, string> { ["alice@contoso.com"] = "alice-contoso" };
        Assert.Equal("alice-contoso", AgentNames.Derive("ALICE@contoso.com", mapping, _ => true));
    }

    [Fact]
    public void NameMappedToAnotherUser_IsNotGivenAgain()
    {
        var mapping = new Dictionary<string, string> { ["alice@fabrikam.com"] = "alice" };
        Assert.Equal("alice-contoso", AgentNames.Derive("alice@contoso.com", mapping, _ => false));
    }

    [Theory]
    [InlineData("root@contoso.com")]
    [InlineData("Administrator@contoso.com")]
    [InlineData("sudo@contoso.com")]
    [InlineData("xrdp@contoso.com")]
    public void ReservedNames_AreNeverGiven_EvenWhenNoSuchAccountExists(string upn)
    {
        var name = AgentNames.Derive(upn, NoMapping, _ => false);
        Assert.DoesNotContain(name, AgentNames.Reserved);
        Assert.EndsWith("-contoso", name, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-o@evil.com")]
    [InlineData("../../etc/passwd@x.y")]
    [InlineData("a b;rm -rf /@x.y")]
    [InlineData("$(reboot)@x.y")]
    [InlineData("élodie.dupont@x.y")]
    [InlineData("@x.y")]
    [InlineData("1234@x.y")]
    [InlineData("....@....")]
    [InlineData("\u202Eevil@x.y")]
    public void HostileUpns_GiveOnlySafeNames(string upn)
    {
        var name = AgentNames.Derive(upn, NoMapping, _ => false);
        Assert.True(AgentNames.IsValid(name), name);
        Assert.Matches("^[a-z][a-z0-9-]{0,31}$", name);
    }

    [Fact]
    public void LongUpn_IsCappedAt32_WithItsSuffixKept()
    {
        var upn = new string('a', 64) + "@contoso.com";
        var plain = AgentNames.Derive(upn, NoMapping, _ => false);
        Assert.Equal(32, plain.Length);
        var suffixed = AgentNames.Derive(upn, NoMapping, name => name == plain);
        Assert.True(suffixed.Length <= 32, suffixed);
        Assert.EndsWith("-contoso", suffixed, StringComparison.Ordinal);
        Assert.NotEqual(plain, suffixed);
    }

    [Fact]
    public void TwoUsersWithTheSameLocalPart_GetDifferentNames()
    {
        var mapping = new Dictionary<string, string>();
        var a = AgentNames.Derive("bob@contoso.com", mapping, _ => false);
        mapping["bob@contoso.com"] = a;
        var b = AgentNames.Derive("bob@fabrikam.com", mapping, _ => false);
        Assert.Equal("bob", a);
        Assert.Equal("bob-fabrikam", b);
    }
}
