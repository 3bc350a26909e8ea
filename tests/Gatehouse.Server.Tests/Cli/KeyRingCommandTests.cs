using Gatehouse.Cli;
using Gatehouse.Server.Tests.Hosting;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;

namespace Gatehouse.Server.Tests.Cli;

/// <summary>
/// Issue 15, item 8: admin commands open the key ring with the server's key-encryption key (and fail closed without
/// it), and <c>gatehouse keyring show|rotate</c> let the operator check and rotate it.
/// </summary>
public sealed class KeyRingCommandTests
{
    [Fact]
    public async Task AdminCommand_KeyFileMissing_FailsAndSaysWhatToRestore()
    {
        await using var cli = await CliHarness.CreateAsync();
        var keyFile = Path.Combine(cli.DataDirectory, "keyring.kek");
        File.Delete(keyFile);

        var run = await cli.RunAsync("user", "list");
        Assert.Equal(ExitCodes.Failed, run.ExitCode);
        Assert.Contains($"no key file at {keyFile}", run.Error, StringComparison.Ordinal);
        Assert.Contains("Restore", run.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(keyFile));
    }

    [Fact]
    public async Task AdminCommand_KeyFileFromTheEnvironment_OpensTheStore()
    {
        await using var cli = await CliHarness.CreateAsync();
        var elsewhere = Path.Combine(TempDirectory.Create(), "gatehouse.kek");
        File.Move(Path.Combine(cli.DataDirectory, "keyring.kek"), elsewhere);

        var environment = new CliEnvironment { Variable = name => name == "Gatehouse__KeyRing__KeyFile" ? elsewhere : null };
        var run = await CliHarness.RunInAsync(environment, null, "user", "list", "--data", cli.DataDirectory);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("admin@contoso.test", run.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(cli.DataDirectory, "keyring.kek")));
    }

    [Fact]
    public async Task Keyring_Rotate_ReplacesTheKeyAndWhatWasSealedStillOpens()
    {
        await using var cli = await CliHarness.CreateAsync();
        var keyFile = Path.Combine(cli.DataDirectory, "keyring.kek");
        var before = SecretsAtRestTests.KeyFileFingerprint(keyFile);
        string sealedSecret;
        await using (var store = await cli.OpenStoreAsync())
        {
            sealedSecret = store.Get<IDataProtectionProvider>().CreateProtector("t").Protect("host password");
        }

        var show = await cli.OkAsync("keyring", "show");
        Assert.Contains($"Key-encryption key: {before} from the key file {keyFile}", show.Output, StringComparison.Ordinal);
        Assert.Contains($"encrypted with {before}", show.Output, StringComparison.Ordinal);

        var rotate = await cli.OkAsync("keyring", "rotate");
        var after = SecretsAtRestTests.KeyFileFingerprint(keyFile);
        Assert.NotEqual(before, after);
        Assert.Contains($"Replaced the key-encryption key {before} with {after}", rotate.Output, StringComparison.Ordinal);

        // The file holds the new key alone, every key is encrypted with it, and the secret still opens.
        Assert.Single(KeyEncryptionKeys.Parse(await File.ReadAllTextAsync(keyFile), keyFile).Fingerprints);
        foreach (var file in Directory.GetFiles(Path.Combine(cli.DataDirectory, "keys"), "*.xml"))
        {
            var xml = await File.ReadAllTextAsync(file);
            Assert.Contains($"kek=\"{after}\"", xml, StringComparison.Ordinal);
            Assert.DoesNotContain(before, xml, StringComparison.Ordinal);
        }

        await using (var store = await cli.OpenStoreAsync())
        {
            Assert.Equal("host password", store.Get<IDataProtectionProvider>().CreateProtector("t").Unprotect(sealedSecret));
        }

        Assert.Contains($"encrypted with {after}", (await cli.OkAsync("keyring", "show")).Output, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        }
    }

    [Fact]
    public async Task Keyring_RotateWithKeysFromTheEnvironment_ReencryptsWithTheFirst()
    {
        await using var cli = await CliHarness.CreateAsync();
        var keyFile = Path.Combine(cli.DataDirectory, "keyring.kek");
        var old = (await File.ReadAllLinesAsync(keyFile)).Single(l => !l.StartsWith('#'));
        var fresh = KeyEncryptionKeys.Generate();
        var freshFingerprint = KeyEncryptionKeys.Parse(fresh, "test").PrimaryFingerprint;

        var environment = new CliEnvironment { Variable = name => name == "Gatehouse__KeyRing__Key" ? $"{fresh},{old}" : null };
        var run = await CliHarness.RunInAsync(environment, null, "keyring", "rotate", "--data", cli.DataDirectory);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"with the key-encryption key {freshFingerprint}", run.Output, StringComparison.Ordinal);

        // The new key alone opens the ring now; the key file was not touched.
        environment = new CliEnvironment { Variable = name => name == "Gatehouse__KeyRing__Key" ? fresh : null };
        run = await CliHarness.RunInAsync(environment, null, "keyring", "show", "--data", cli.DataDirectory);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"encrypted with {freshFingerprint}", run.Output, StringComparison.Ordinal);
        Assert.Equal(old, (await File.ReadAllLinesAsync(keyFile)).Single(l => !l.StartsWith('#')));
    }

    [Fact]
    public async Task Keyring_Help_DescribesTheCommands()
    {
        var help = await CliHarness.RunRawAsync(null, "keyring", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("show", help.Output, StringComparison.Ordinal);
        Assert.Contains("rotate", help.Output, StringComparison.Ordinal);
        Assert.Contains("Gatehouse__KeyRing__KeyFile", help.Output, StringComparison.Ordinal);
    }
}
