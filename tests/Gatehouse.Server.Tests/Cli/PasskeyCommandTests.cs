using System.Text.Json;
using Gatehouse.Identity;
using Gatehouse.Storage;

namespace Gatehouse.Server.Tests.Cli;

/// <summary><c>gatehouse user passkey list|remove</c> in process on a temp data directory.</summary>
public sealed class PasskeyCommandTests
{
    private static async Task<CliHarness> WithPasskeysAsync()
    {
        var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("Alice-Pw-12345\n", "user", "create", "--upn", "alice@contoso.test", "--display-name", "Alice", "--password-stdin");
        await using var store = await cli.OpenStoreAsync();
        var alice = (await store.Get<DirectoryService>().FindUserByUpnAsync("alice@contoso.test"))!;
        var db = store.Get<GatehouseDbContext>();
        db.Passkeys.Add(new Passkey
        {
            Id = Guid.NewGuid(),
            UserId = alice.Id,
            CredentialId = [0xde, 0xad, 0xbe, 0xef, 0x01],
            PublicKey = [1, 2, 3],
            SignCount = 7,
            BackupEligible = true,
            BackedUp = true,
            Name = "Laptop",
            CreatedAt = new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero),
            LastUsedAt = new DateTimeOffset(2026, 12, 6, 9, 0, 0, TimeSpan.Zero),
        });
        db.Passkeys.Add(new Passkey
        {
            Id = Guid.NewGuid(),
            UserId = alice.Id,
            CredentialId = [0x0a, 0x0b],
            PublicKey = [4, 5, 6],
            Name = "Security key",
            Aaguid = new Guid("01020304-0506-0708-090a-0b0c0d0e0f10"),
            CreatedAt = new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero),
        });
        await db.SaveChangesAsync();
        return cli;
    }

    [Fact]
    public async Task List_Table_ShowsEachPasskeyWithoutKeyMaterial()
    {
        await using var cli = await WithPasskeysAsync();

        var run = await cli.OkAsync("user", "passkey", "list", "alice@contoso.test");

        var lines = run.Output.Split('\n');
        var laptop = lines.Single(l => l.Contains("Laptop", StringComparison.Ordinal));
        Assert.Contains("2026-12-06 09:00:00Z", laptop, StringComparison.Ordinal);
        Assert.Contains("deadbeef…", laptop, StringComparison.Ordinal);
        var key = lines.Single(l => l.Contains("Security key", StringComparison.Ordinal));
        Assert.Contains("never", key, StringComparison.Ordinal);
        Assert.Contains("01020304-0506-0708-090a-0b0c0d0e0f10", key, StringComparison.Ordinal);
        Assert.DoesNotContain("deadbeef01", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_Json_ThenRemove_ThenListAgain()
    {
        await using var cli = await WithPasskeysAsync();

        var before = JsonDocument.Parse((await cli.OkAsync("user", "passkey", "list", "alice@contoso.test", "--output", "json")).Output).RootElement;
        Assert.Equal(["Laptop", "Security key"], before.EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.Equal(7, before[0].GetProperty("signCount").GetInt64());
        Assert.True(before[0].GetProperty("backedUp").GetBoolean());
        Assert.False(before[0].TryGetProperty("publicKey", out _));

        var removed = await cli.OkAsync("user", "passkey", "remove", "alice@contoso.test", "--name", "Laptop");
        Assert.Contains("The passkey 'Laptop' of alice@contoso.test was removed.", removed.Output, StringComparison.Ordinal);

        var after = JsonDocument.Parse((await cli.OkAsync("user", "passkey", "list", "alice@contoso.test", "-o", "json")).Output).RootElement;
        Assert.Equal(["Security key"], after.EnumerateArray().Select(p => p.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task Remove_UnknownNameOrUser_FailsWithSentence()
    {
        await using var cli = await WithPasskeysAsync();

        var unknown = await cli.RunAsync("user", "passkey", "remove", "alice@contoso.test", "--name", "Phone");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("alice@contoso.test has no passkey named 'Phone'", unknown.Error, StringComparison.Ordinal);

        var hostile = await cli.RunAsync("user", "passkey", "remove", "alice@contoso.test", "--name", "a\u202eb");
        Assert.NotEqual(0, hostile.ExitCode);
        Assert.Contains("Give the passkey's name", hostile.Error, StringComparison.Ordinal);

        var nobody = await cli.RunAsync("user", "passkey", "list", "nobody@contoso.test");
        Assert.NotEqual(0, nobody.ExitCode);

        var still = JsonDocument.Parse((await cli.OkAsync("user", "passkey", "list", "alice@contoso.test", "-o", "json")).Output).RootElement;
        Assert.Equal(2, still.GetArrayLength());
    }
}
