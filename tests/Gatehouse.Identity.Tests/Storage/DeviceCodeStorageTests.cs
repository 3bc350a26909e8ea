using Gatehouse.Identity.Tests.Support;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity.Tests.Storage;

/// <summary><see cref="DeviceCodeService"/> on SQLite and PostgreSQL, with the clock under the test's control.</summary>
public sealed class DeviceCodeStorageTests(StoreFixture fixture) : IClassFixture<StoreFixture>
{
    private static DeviceCodeRequest Request(string address) => new()
    {
        TenantId = Guid.NewGuid(),
        ClientId = GatehouseCliClient.ClientId,
        Scope = AdminTokenService.Scope,
        ClientAddress = address,
        MaxPendingPerAddress = 2,
    };

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Poll_PendingThenSlowDown_ThenApprovedOnce_AndExpiry(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var service = env.Get<DeviceCodeService>();
        var address = Guid.NewGuid().ToString("N");
        var issued = (await service.IssueAsync(Request(address)))!;

        Assert.Equal(DevicePollStatus.Pending, (await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);
        env.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(DevicePollStatus.SlowDown, (await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);

        // After slow_down the interval is 10 s: 6 s later is too soon again (it grows to 15 s); 16 s later is not.
        env.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(DevicePollStatus.SlowDown, (await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);
        env.Time.Advance(TimeSpan.FromSeconds(16));
        Assert.Equal(DevicePollStatus.Pending, (await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);

        var pending = (await service.FindPendingAsync(issued.UserCode.ToLowerInvariant()))!;
        Assert.True(await service.ApproveAsync(pending.DeviceCodeHash, Guid.NewGuid(), ["pwd", "mfa"], env.Time.GetUtcNow()));
        Assert.False(await service.DenyAsync(pending.DeviceCodeHash, null));
        Assert.Null(await service.FindPendingAsync(issued.UserCode));
        Assert.Equal(DevicePollStatus.BadCode, (await service.PollAsync(issued.DeviceCode, "another-client")).Status);

        env.Time.Advance(TimeSpan.FromSeconds(30));
        var approved = await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId);
        Assert.Equal(DevicePollStatus.Approved, approved.Status);
        Assert.Equal("pwd mfa", approved.Code!.Amr);
        env.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(DevicePollStatus.BadCode, (await service.PollAsync(issued.DeviceCode, GatehouseCliClient.ClientId)).Status);

        // A second code expires after its lifetime, and the purge removes it a minute later.
        var other = (await service.IssueAsync(Request(address)))!;
        env.Time.Advance(TimeSpan.FromMinutes(15));
        Assert.Equal(DevicePollStatus.Expired, (await service.PollAsync(other.DeviceCode, GatehouseCliClient.ClientId)).Status);
        Assert.Null(await service.FindPendingAsync(other.UserCode));
        Assert.True(await service.PurgeExpiredAsync(env.Time.GetUtcNow() + TimeSpan.FromMinutes(2)) >= 2);
        Assert.False(await env.Get<GatehouseDbContext>().DeviceCodes.AnyAsync(d => d.ClientAddress == address));
    }

    [Theory]
    [SqliteStore]
    [PostgresStore]
    public async Task Issue_IsCappedPerAddress_AndDeniedCodesAnswerDenied(StoreProvider provider)
    {
        await using var env = await fixture.CreateEnvAsync(provider);
        var service = env.Get<DeviceCodeService>();
        var address = Guid.NewGuid().ToString("N");
        var first = (await service.IssueAsync(Request(address)))!;
        Assert.NotNull(await service.IssueAsync(Request(address)));

        Assert.Null(await service.IssueAsync(Request(address)));
        Assert.NotNull(await service.IssueAsync(Request(address + "-other")));

        var pending = (await service.FindPendingAsync(DeviceCodeService.Display(first.UserCode)))!;
        Assert.True(await service.DenyAsync(pending.DeviceCodeHash, null));
        Assert.Equal(DevicePollStatus.Denied, (await service.PollAsync(first.DeviceCode, GatehouseCliClient.ClientId)).Status);
    }

    [Theory]
    [InlineData("bcdf-ghjk", "BCDFGHJK")]
    [InlineData(" BCDF GHJK ", "BCDFGHJK")]
    [InlineData("BCDFGHJ", null)]
    [InlineData("ABCD-EFGH", null)]
    [InlineData("BCDF-GHJK-L", null)]
    [InlineData("", null)]
    public void Normalize_AcceptsOnlyTheAlphabet(string typed, string? expected) =>
        Assert.Equal(expected, DeviceCodeService.Normalize(typed));
}
