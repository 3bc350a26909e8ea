using System.Net;
using Gatehouse.Gateway.Hold;

namespace Gatehouse.Gateway.Tests.Hold;

/// <summary>The handover's one-time routing tokens: random, single use, short-lived, bound to the client's address.</summary>
public sealed class RoutingTokensTests
{
    private static readonly IPAddress Client = IPAddress.Parse("192.0.2.10");

    private static HandoverGrant Grant(IPAddress? address = null) => new()
    {
        ClientAddress = address ?? Client,
        TenantId = Guid.NewGuid(),
        UserId = Guid.NewGuid(),
        HostId = Guid.NewGuid(),
        Methods = ["pwd", "mfa", "otp"],
        AuthenticatedAt = DateTimeOffset.UnixEpoch,
        ConnectionId = "c1",
    };

    [Fact]
    public void Token_IsHonouredOnce_ThenUnknown()
    {
        var tokens = new RoutingTokens(new ManualTime(), TimeSpan.FromSeconds(30), 100);
        var grant = Grant();
        var token = tokens.Mint(grant)!;

        Assert.Equal(RoutingTokenRefusal.None, tokens.TryRedeem(token, Client, out var redeemed));
        Assert.Same(grant, redeemed);
        Assert.Equal(RoutingTokenRefusal.Unknown, tokens.TryRedeem(token, Client, out var again));
        Assert.Null(again);
        Assert.Equal(0, tokens.Count);
    }

    [Fact]
    public void Token_Is160RandomBitsInBase32_AndNeverRepeats()
    {
        var tokens = new RoutingTokens(new ManualTime(), TimeSpan.FromSeconds(30), 10_000);
        var minted = Enumerable.Range(0, 2000).Select(_ => tokens.Mint(Grant())!).ToList();
        Assert.All(minted, t => Assert.Matches("^[A-Z2-7]{32}$", t));
        Assert.Equal(minted.Count, minted.Distinct(StringComparer.Ordinal).Count());

        // Every character of the alphabet appears in every position over 2000 tokens (no stuck bits).
        for (var i = 0; i < RoutingTokens.TokenLength; i++)
        {
            Assert.True(minted.Select(t => t[i]).Distinct().Count() >= 28, $"position {i} uses few characters");
        }
    }

    [Fact]
    public void Token_Expires_AfterItsLifetime()
    {
        var time = new ManualTime();
        var tokens = new RoutingTokens(time, TimeSpan.FromSeconds(30), 100);
        var token = tokens.Mint(Grant())!;
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(RoutingTokenRefusal.Expired, tokens.TryRedeem(token, Client, out var grant));
        Assert.Null(grant);
        Assert.Equal(RoutingTokenRefusal.Unknown, tokens.TryRedeem(token, Client, out _));
    }

    [Fact]
    public void Token_FromAnotherAddress_IsRefused_AndStaysForItsOwner()
    {
        var tokens = new RoutingTokens(new ManualTime(), TimeSpan.FromSeconds(30), 100);
        var token = tokens.Mint(Grant())!;
        Assert.Equal(RoutingTokenRefusal.ForeignAddress, tokens.TryRedeem(token, IPAddress.Parse("198.51.100.7"), out var stolen));
        Assert.Null(stolen);
        Assert.Equal(RoutingTokenRefusal.None, tokens.TryRedeem(token, Client, out _));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("AAAA")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public void UnknownOrMalformedTokens_AreUnknown(string? token)
    {
        var tokens = new RoutingTokens(new ManualTime(), TimeSpan.FromSeconds(30), 100);
        tokens.Mint(Grant());
        Assert.Equal(RoutingTokenRefusal.Unknown, tokens.TryRedeem(token, Client, out _));
    }

    [Fact]
    public void FullTable_MintsNothing_UntilTokensExpire()
    {
        var time = new ManualTime();
        var tokens = new RoutingTokens(time, TimeSpan.FromSeconds(30), 2);
        Assert.NotNull(tokens.Mint(Grant()));
        Assert.NotNull(tokens.Mint(Grant()));
        Assert.Null(tokens.Mint(Grant()));
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.NotNull(tokens.Mint(Grant()));
        Assert.Equal(1, tokens.Count);
    }

    [Fact]
    public async Task ConcurrentRedeems_HonourTheTokenExactlyOnce()
    {
        for (var round = 0; round < 50; round++)
        {
            var tokens = new RoutingTokens(new ManualTime(), TimeSpan.FromSeconds(30), 100);
            var token = tokens.Mint(Grant())!;
            using var start = new ManualResetEventSlim();
            var racers = Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            {
                start.Wait();
                return tokens.TryRedeem(token, Client, out HandoverGrant? _);
            })).ToArray();
            start.Set();
            var results = await Task.WhenAll(racers);
            Assert.Equal(1, results.Count(r => r == RoutingTokenRefusal.None));
        }
    }

    [Fact]
    public void Options_RefuseATokenLifetimeOverSixtySeconds()
    {
        Assert.Empty(new HoldScreenOptions().Validate());
        Assert.Contains(new HoldScreenOptions { RoutingTokenLifetime = TimeSpan.FromSeconds(61) }.Validate(), m => m.Contains("RoutingTokenLifetime", StringComparison.Ordinal));
        Assert.Contains(new HoldScreenOptions { MaxCodeAttempts = 0 }.Validate(), m => m.Contains("MaxCodeAttempts", StringComparison.Ordinal));
    }
}
