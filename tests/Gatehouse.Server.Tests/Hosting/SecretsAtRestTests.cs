using System.Collections.Concurrent;
using System.Xml.Linq;
using Gatehouse.Hosting;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Gatehouse.Storage.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.Hosting;

/// <summary>
/// Issue 15, item 8: the Data Protection key ring is encrypted with a key-encryption key that is not in the store, the
/// node fails closed without the right one, and the data directory is private to the account that runs Gatehouse.
/// </summary>
public sealed class SecretsAtRestTests
{
    private const UnixFileMode PrivateFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task Serve_FreshDataDirectory_FoldersAre0700AndFiles0600()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var data = Path.Combine(TempDirectory.Create(), "data");
        await using var server = await TestServer.StartAsync(data);

        // While the server's store has a connection open, SQLite's -wal and -shm files exist next to the database (the
        // last connection to close removes them, and when the pool holds none is up to its timing: one is held here).
        await using var scope = server.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        await db.Database.OpenConnectionAsync();
        await db.Database.ExecuteSqlRawAsync("SELECT count(*) FROM sqlite_master");
        var files = Directory.EnumerateFiles(data, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(data, f)).ToList();
        Assert.Contains("gatehouse.db", files);
        Assert.Contains("gatehouse.db-wal", files);
        Assert.Contains("gatehouse.db-shm", files);
        Assert.Contains("keyring.kek", files);
        Assert.Contains(files, f => f.StartsWith("keys/key-", StringComparison.Ordinal));
        Assert.Contains(Path.Combine("tls", TlsCertificates.CertificateFileName), files);
        foreach (var file in files)
        {
            Assert.True(File.GetUnixFileMode(Path.Combine(data, file)) == PrivateFile, $"{file} is {File.GetUnixFileMode(Path.Combine(data, file))}");
        }

        foreach (var folder in new[] { data, Path.Combine(data, "keys"), Path.Combine(data, "tls") })
        {
            Assert.True(File.GetUnixFileMode(folder) == PrivateFolder, $"{folder} is {File.GetUnixFileMode(folder)}");
        }
    }

    [Fact]
    public async Task Serve_KeyRing_IsEncryptedWithTheKeyFileAndStartWarnsOfNoUnencryptedKeys()
    {
        var data = TempDirectory.Create();
        var logs = new CapturedLogs();
        await using (var server = await StartAsync(data, logs))
        {
            // Everything the first start sealed (the signing key among them) opens.
            var protector = server.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("test");
            Assert.Equal("secret", protector.Unprotect(protector.Protect("secret")));
        }

        Assert.DoesNotContain(logs.Messages, m => m.Contains("No XML encryptor configured", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Messages, m => m.Contains("unencrypted form", StringComparison.Ordinal));
        var fingerprint = KeyFileFingerprint(Path.Combine(data, "keyring.kek"));
        var keyFiles = Directory.GetFiles(Path.Combine(data, "keys"), "*.xml");
        Assert.NotEmpty(keyFiles);
        foreach (var file in keyFiles)
        {
            var xml = await File.ReadAllTextAsync(file);
            Assert.Contains("<encryptedSecret", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<value>", xml, StringComparison.Ordinal);
            Assert.Contains($"kek=\"{fingerprint}\"", xml, StringComparison.Ordinal);
        }

        Assert.Contains(logs.Messages, m => m.Contains("Created the key-encryption key file", StringComparison.Ordinal) && m.Contains(fingerprint, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_KeysFromBeforeEncryption_StillOpenAndAreEncryptedAtStart()
    {
        // A data directory as earlier versions left it: 0755, a 0644 database, the key ring unencrypted in keys/.
        var data = TempDirectory.Create();
        var legacy = new ServiceCollection();
        legacy.AddDataProtection().SetApplicationName("Gatehouse").PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(data, "keys")));
        string sealedSecret;
        await using (var old = legacy.BuildServiceProvider())
        {
            sealedSecret = old.GetRequiredService<IDataProtectionProvider>().CreateProtector("legacy").Protect("host password");
        }

        await using (var db = new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = $"Data Source={Path.Combine(data, "gatehouse.db")};Pooling=False" }.CreateContext())
        {
            await db.Database.MigrateAsync();
        }

        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(data, PrivateFolder | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(Path.Combine(data, "gatehouse.db"), PrivateFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        Assert.Contains(Directory.GetFiles(Path.Combine(data, "keys")), f => File.ReadAllText(f).Contains("<masterKey", StringComparison.Ordinal));

        var logs = new CapturedLogs();
        await using (var server = await StartAsync(data, logs))
        {
            Assert.Equal("host password", server.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("legacy").Unprotect(sealedSecret));
        }

        foreach (var file in Directory.GetFiles(Path.Combine(data, "keys"), "*.xml"))
        {
            var xml = await File.ReadAllTextAsync(file);
            Assert.Contains("<encryptedSecret", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<masterKey", xml, StringComparison.Ordinal);
        }

        Assert.Contains(logs.Messages, m => m.Contains("Encrypted 1 Data Protection key(s)", StringComparison.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(PrivateFolder, File.GetUnixFileMode(data));
            Assert.Equal(PrivateFile, File.GetUnixFileMode(Path.Combine(data, "gatehouse.db")));
            Assert.Contains(logs.Messages, m => m.Contains("gatehouse.db was readable by other users (mode 0644)", StringComparison.Ordinal));
        }

        // And it still opens after a restart (now through the key-encryption key).
        await using (var again = await StartAsync(data, new CapturedLogs()))
        {
            Assert.Equal("host password", again.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("legacy").Unprotect(sealedSecret));
        }
    }

    [Fact]
    public async Task Serve_KeyFileMissingWhileKeysAreEncrypted_RefusesToStartAndSaysWhatToRestore()
    {
        var data = TempDirectory.Create();
        await using (await StartAsync(data, new CapturedLogs()))
        {
        }

        var keyFile = Path.Combine(data, "keyring.kek");
        var fingerprint = KeyFileFingerprint(keyFile);
        File.Delete(keyFile);
        var keysBefore = Directory.GetFiles(Path.Combine(data, "keys"));

        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(data, new CapturedLogs()));
        Assert.Contains($"no key file at {keyFile}", e.Message, StringComparison.Ordinal);
        Assert.Contains(fingerprint, e.Message, StringComparison.Ordinal);
        Assert.Contains("Restore", e.Message, StringComparison.Ordinal);

        // No new key ring: no key file, no new key.
        Assert.False(File.Exists(keyFile));
        Assert.Equal(keysBefore, Directory.GetFiles(Path.Combine(data, "keys")));
    }

    [Fact]
    public async Task Serve_WrongKeyFile_RefusesToStartAndAddsNoKey()
    {
        var data = TempDirectory.Create();
        await using (await StartAsync(data, new CapturedLogs()))
        {
        }

        var keyFile = Path.Combine(data, "keyring.kek");
        var right = KeyFileFingerprint(keyFile);
        await WriteKeyFileAsync(keyFile, KeyEncryptionKeys.Generate());
        var wrong = KeyFileFingerprint(keyFile);
        var keysBefore = Directory.GetFiles(Path.Combine(data, "keys"));

        var logs = new CapturedLogs();
        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(data, logs));
        Assert.Contains(right, e.Message, StringComparison.Ordinal);
        Assert.Contains(wrong, e.Message, StringComparison.Ordinal);
        Assert.Equal(keysBefore, Directory.GetFiles(Path.Combine(data, "keys")));

        // The check ran before Data Protection's own start-up service touched the key ring.
        Assert.DoesNotContain(logs.Messages, m => m.Contains("Microsoft.AspNetCore.DataProtection", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_KeyFileReadableByOtherUsers_IsRefused()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var data = TempDirectory.Create();
        await using (await StartAsync(data, new CapturedLogs()))
        {
        }

        var keyFile = Path.Combine(data, "keyring.kek");
        File.SetUnixFileMode(keyFile, PrivateFile | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(data, new CapturedLogs()));
        Assert.Contains($"chmod 600 {keyFile}", e.Message, StringComparison.Ordinal);
        Assert.Contains("mode 0644", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_KeyFromConfiguration_WritesNoKeyFileAndAnotherKeyIsRefused()
    {
        var data = TempDirectory.Create();
        var key = KeyEncryptionKeys.Generate();
        var settings = new Dictionary<string, string?> { ["Gatehouse:KeyRing:Key"] = key };
        string sealedSecret;
        await using (var server = await StartAsync(data, new CapturedLogs(), settings))
        {
            sealedSecret = server.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Protect("x");
        }

        Assert.False(File.Exists(Path.Combine(data, "keyring.kek")));
        var fingerprint = KeyEncryptionKeys.Parse(key, "test").PrimaryFingerprint;
        Assert.All(Directory.GetFiles(Path.Combine(data, "keys"), "*.xml"), f => Assert.Contains($"kek=\"{fingerprint}\"", File.ReadAllText(f), StringComparison.Ordinal));

        // A second node given the same key opens what the first sealed; one given another key does not start.
        await using (var again = await StartAsync(data, new CapturedLogs(), settings))
        {
            Assert.Equal("x", again.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("t").Unprotect(sealedSecret));
        }

        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(data, new CapturedLogs(), new Dictionary<string, string?> { ["Gatehouse:KeyRing:Key"] = KeyEncryptionKeys.Generate() }));
        Assert.Contains(fingerprint, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_KeyFileOutsideTheDataDirectory_IsCreatedThere()
    {
        var data = TempDirectory.Create();
        var keyFile = Path.Combine(TempDirectory.Create(), "etc", "gatehouse.kek");
        await using (await StartAsync(data, new CapturedLogs(), new Dictionary<string, string?> { ["Gatehouse:KeyRing:KeyFile"] = keyFile }))
        {
        }

        Assert.True(File.Exists(keyFile));
        Assert.False(File.Exists(Path.Combine(data, "keyring.kek")));
        Assert.All(Directory.GetFiles(Path.Combine(data, "keys"), "*.xml"), f => Assert.Contains($"kek=\"{KeyFileFingerprint(keyFile)}\"", File.ReadAllText(f), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_KeyFileRotatedWhileRunning_ReadsTheNewKeyFile()
    {
        var data = TempDirectory.Create();
        await using var server = await StartAsync(data, new CapturedLogs());
        var protector = server.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("t");
        var sealedSecret = protector.Protect("host password");
        var keyFile = Path.Combine(data, "keyring.kek");
        var before = KeyFileFingerprint(keyFile);

        var rotate = await Gatehouse.Server.Tests.Cli.CliHarness.RunRawAsync(null, "keyring", "rotate", "--data", data);
        Assert.True(rotate.ExitCode == 0, rotate.ToString());
        var after = KeyFileFingerprint(keyFile);
        Assert.NotEqual(before, after);

        // A key another process added under the new key-encryption key opens on the server (it reads the key file
        // again), a key the server adds is sealed with the new one, and what was sealed before still opens.
        var now = DateTimeOffset.UtcNow;
        Guid fromElsewhere;
        await using (var other = await Gatehouse.Cli.AdminStore.OpenAsync(new Gatehouse.Cli.AdminStoreLocation(data, null), TimeProvider.System, create: false, CancellationToken.None))
        {
            fromElsewhere = other.Get<Microsoft.AspNetCore.DataProtection.KeyManagement.IKeyManager>().CreateNewKey(now, now.AddDays(90)).KeyId;
        }

        var keyManager = server.Services.GetRequiredService<Microsoft.AspNetCore.DataProtection.KeyManagement.IKeyManager>();
        Assert.NotNull(keyManager.GetAllKeys().Single(k => k.KeyId == fromElsewhere).CreateEncryptor());
        var added = keyManager.CreateNewKey(now, now.AddDays(90));
        var addedXml = await File.ReadAllTextAsync(Path.Combine(data, "keys", $"key-{added.KeyId}.xml"));
        Assert.Contains($"kek=\"{after}\"", addedXml, StringComparison.Ordinal);
        Assert.Equal("host password", protector.Unprotect(sealedSecret));
    }

    [Theory]
    [InlineData("Gatehouse:KeyRing:Key", "bm90IGEga2V5", "not a key-encryption key")]
    [InlineData("Gatehouse:KeyRing:Key", "%%%", "not a key-encryption key")]
    public async Task Serve_BadKeyInConfiguration_IsAStartupErrorThatDoesNotEchoIt(string name, string value, string expected)
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(TempDirectory.Create(), new CapturedLogs(), new Dictionary<string, string?> { [name] = value }));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(value, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_KeyAndKeyFileBothConfigured_IsAStartupError()
    {
        var e = await Assert.ThrowsAsync<StartupException>(() => StartAsync(TempDirectory.Create(), new CapturedLogs(), new Dictionary<string, string?>
        {
            ["Gatehouse:KeyRing:Key"] = KeyEncryptionKeys.Generate(),
            ["Gatehouse:KeyRing:KeyFile"] = "/tmp/other.kek",
        }));
        Assert.Contains("in one place only", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The fingerprint of the (only) key in a key file.</summary>
    internal static string KeyFileFingerprint(string path) =>
        KeyEncryptionKeys.Parse(File.ReadAllText(path), path).PrimaryFingerprint;

    internal static async Task WriteKeyFileAsync(string path, string base64)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFile;
        }

        await using var stream = new FileStream(path, options);
        await using var writer = new StreamWriter(stream);
        await writer.WriteLineAsync(base64);
    }

    /// <summary>Builds and starts the real host with <paramref name="logs"/> capturing every message of the start.</summary>
    private static async Task<StartedApp> StartAsync(string data, CapturedLogs logs, IDictionary<string, string?>? overrides = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Gatehouse:DataDirectory"] = data,
            ["Gatehouse:Urls"] = "https://127.0.0.1:0",
            ["Gatehouse:RdpPort"] = "0",
            ["Gatehouse:PublicName"] = "login.gatehouse.test",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var app = GatehouseHost.Build(new HostSettings { Overrides = settings, Console = new StringWriter() });
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new StartedApp(app);
    }
}

/// <summary>A started host, stopped and disposed at the end of the test.</summary>
internal sealed class StartedApp(WebApplication app) : IAsyncDisposable
{
    public IServiceProvider Services => app.Services;

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}

/// <summary>Every log message written through the host's logger factory.</summary>
internal sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> messages = new();

    public IReadOnlyList<string> Messages => [.. messages];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, messages);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> messages) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            messages.Enqueue($"{logLevel} {category}: {formatter(state, exception)}");
    }
}
