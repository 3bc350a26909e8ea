using System.Net;
using System.Net.Sockets;
using Gatehouse.Gateway.Tests;
using Gatehouse.Hosting;
using Gatehouse.Idp;
using Gatehouse.Server.Tests.Hosting;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16, what must hold when several <c>gatehouse serve</c> nodes share one database: startup on an empty database,
/// one TLS certificate for all, the per-account throttle counted once for all, readiness that tells the truth and 503s
/// while the database does not answer, and a node that waits for its database instead of exiting.
/// </summary>
public sealed class MultiNodeTests
{
    /// <summary>The key-encryption key every node of a test shares (README, "Secrets and backup").</summary>
    private static readonly string SharedKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    [PostgresFact]
    public async Task NodesStartedTogether_OnAnEmptyPostgres_AllStartAndSetUpOneTenant()
    {
        // Arrange: four nodes, one empty database, one certificate.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var (certPath, keyPath) = SharedCertificate();
        const int Nodes = 4;

        // Act: started at the same moment.
        var consoles = Enumerable.Range(0, Nodes).Select(_ => new StringWriter()).ToList();
        var apps = consoles.Select(console => GatehouseHost.Build(new HostSettings
        {
            Console = console,
            Overrides = NodeSettings(database.ConnectionString(), certPath, keyPath),
        })).ToList();
        var starts = apps.Select(app => Task.Run(() => app.StartAsync())).ToList();
        var outcome = await Task.WhenAll(starts.Select(async t =>
        {
            try
            {
                await t;
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        }));

        try
        {
            // Assert: every node started, the first run happened once, every node is ready and serves the same certificate.
            Assert.All(outcome, e => Assert.Null(e));
            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Tenants\""));
            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Users\""));
            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"RoleAssignments\""));
            Assert.Single(consoles, c => c.ToString().Contains("Temporary password", StringComparison.Ordinal));
            var pinned = apps[0].Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
            foreach (var app in apps)
            {
                Assert.Equal(pinned, app.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString());
                using var client = PinnedClient(app, pinned);
                var ready = await client.GetAsync(Readiness.ReadyPath);
                Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            }
        }
        finally
        {
            foreach (var app in apps)
            {
                await StopAsync(app);
            }
        }
    }

    [PostgresFact]
    public async Task FirstRunSetup_ConcurrentWithoutTheLock_IsIdempotent()
    {
        // The first-run setup alone, four at once in one node, outside the startup lock: the losers of the race on the
        // seed rows read the winner's tenant back instead of failing.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var console = new StringWriter();
        var app = GatehouseHost.Build(new HostSettings { Console = console, Overrides = NodeSettings(database.ConnectionString(), null, null) });
        var logs = new CapturedLogs();
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        try
        {
            await app.Services.MigrateGatehouseStoreAsync();
            var bootstrap = app.Services.GetServices<IHostedService>().OfType<BootstrapService>().Single();
            using var go = new ManualResetEventSlim();
            var runs = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
            {
                go.Wait();
                await using var scope = app.Services.CreateAsyncScope();
                await bootstrap.SeedAsync(scope.ServiceProvider, CancellationToken.None);
            })).ToList();
            go.Set();
            await Task.WhenAll(runs);

            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Tenants\""));
            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"Users\""));
            Assert.Equal(1, await database.CountAsync("SELECT count(*) FROM \"RoleAssignments\""));
            Assert.Equal(1, console.ToString().Split("Temporary password").Length - 1);
            Assert.DoesNotContain(logs.Messages, m => m.StartsWith("Error", StringComparison.Ordinal));
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    [PostgresFact]
    public async Task AccountAttempts_TwoNodesOnOnePostgres_ShareOneLimit()
    {
        await using var database = await TestPostgres.CreateDatabaseAsync();
        var overrides = new Dictionary<string, string?>
        {
            ["Gatehouse:Store"] = database.ConnectionString(),
            ["Gatehouse:KeyRing:Key"] = SharedKey,
            ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "6",
        };
        await using var a = await TestServer.StartAsync(overrides: overrides);
        await using var b = await TestServer.StartAsync(overrides: overrides);
        await AssertSharedLimitAsync(a, b, limit: 6);
    }

    [Fact]
    public async Task AccountAttempts_TwoNodesOnOneSqliteFile_ShareOneLimit()
    {
        var data = TempDirectory.Create();
        var overrides = new Dictionary<string, string?> { ["Gatehouse:Limits:AttemptsPerAccountPerMinute"] = "6" };
        await using var a = await TestServer.StartAsync(data, overrides);
        await using var b = await TestServer.StartAsync(data, overrides);
        await AssertSharedLimitAsync(a, b, limit: 6);
    }

    [Fact]
    public async Task Tls_ConfiguredPemFiles_EveryNodeServesTheSameCertificate()
    {
        var (certPath, keyPath) = SharedCertificate();
        var tls = new Dictionary<string, string?> { ["Gatehouse:Tls:CertificatePath"] = certPath, ["Gatehouse:Tls:KeyPath"] = keyPath };
        await using var a = await TestServer.StartAsync(overrides: tls);
        await using var b = await TestServer.StartAsync(overrides: tls);

        // A client that trusts node A's certificate (pinned, as a CLI that trusted it once) reaches node B.
        using var client = new HttpClient(a.CreateHandler()) { BaseAddress = b.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Readiness.LivePath)).StatusCode);
        Assert.Equal(
            a.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString(),
            b.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString());
    }

    [PostgresFact]
    public async Task DatabaseDown_ReadinessAnd503_ThenRecovers()
    {
        // Arrange: a node whose database is behind a proxy the test can take down.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var proxy = new DatabaseProxy(database.ServerEndPoint, up: true);
        var logs = new CapturedLogs();
        var app = GatehouseHost.Build(new HostSettings
        {
            Console = new StringWriter(),
            Overrides = NodeSettings(database.ConnectionString(proxy.EndPoint), null, null),
        });
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        await app.StartAsync();
        try
        {
            using var client = PinnedClient(app);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Readiness.ReadyPath)).StatusCode);

            // Act: the database stops answering.
            proxy.Down();

            // Assert: liveness stays, readiness says why it is not ready, requests that need the database answer 503.
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Readiness.LivePath)).StatusCode);
            var ready = await client.GetAsync(Readiness.ReadyPath);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            var reason = await ready.Content.ReadAsStringAsync();
            Assert.StartsWith("not ready\n", reason, StringComparison.Ordinal);
            Assert.Contains("database: the database did not answer", reason, StringComparison.Ordinal);
            Assert.DoesNotContain(proxy.EndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), reason, StringComparison.Ordinal);
            Assert.NotNull(ready.Headers.RetryAfter?.Delta);
            Assert.Contains(logs.Messages, m => m.Contains("Not ready: the database did not answer", StringComparison.Ordinal));

            var token = await client.PostAsync("/contoso.test/oauth2/v2.0/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code",
                ["client_id"] = "a85cf173-4192-42f8-81fa-777a763e6e2c",
                ["code"] = "x",
            }));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, token.StatusCode);
            Assert.NotNull(token.Headers.RetryAfter?.Delta);
            var body = await token.Content.ReadAsStringAsync();
            Assert.Contains("\"error\":\"temporarily_unavailable\"", body, StringComparison.Ordinal);
            Assert.Contains("cannot reach its database", body, StringComparison.Ordinal);

            using var page = new HttpRequestMessage(HttpMethod.Get, "/contoso.test/oauth2/v2.0/authorize?client_id=x&response_type=code");
            page.Headers.Accept.ParseAdd("text/html");
            var html = await client.SendAsync(page);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, html.StatusCode);
            Assert.Equal("text/html", html.Content.Headers.ContentType?.MediaType);
            Assert.Contains("cannot reach its database", await html.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.DoesNotContain(logs.Messages, m => m.StartsWith("Error", StringComparison.Ordinal) || m.StartsWith("Critical", StringComparison.Ordinal));
            Assert.Contains(logs.Messages, m => m.Contains("Answered 503 to POST /contoso.test/oauth2/v2.0/token", StringComparison.Ordinal));

            // The database answers again: the node is ready again by itself.
            proxy.Up();
            await Until.TrueAsync(() => client.GetAsync(Readiness.ReadyPath).GetAwaiter().GetResult().StatusCode == HttpStatusCode.OK, "ready again");
        }
        finally
        {
            await StopAsync(app);
        }
    }

    [PostgresFact]
    public async Task Start_DatabaseDown_WaitsWithOneLinePerAttempt_AndStartsWhenItAnswers()
    {
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var proxy = new DatabaseProxy(database.ServerEndPoint, up: false);
        var logs = new CapturedLogs();
        var app = GatehouseHost.Build(new HostSettings
        {
            Console = new StringWriter(),
            Overrides = NodeSettings(database.ConnectionString(proxy.EndPoint), null, null),
        });
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        var start = app.StartAsync();
        try
        {
            await Until.TrueAsync(() => logs.Messages.Count(IsWaitLine) >= 2 || start.IsCompleted, "two attempts while the database is down");
            Assert.False(start.IsCompleted, "the node started (or gave up) while its database was down");
            proxy.Up();
            await start;

            var waits = logs.Messages.Where(IsWaitLine).ToList();
            Assert.Contains("(migrations, attempt 1)", waits[0], StringComparison.Ordinal);
            Assert.Contains("Trying again in 1 s.", waits[0], StringComparison.Ordinal);
            Assert.Contains("Trying again in 2 s.", waits[1], StringComparison.Ordinal);
            Assert.All(waits, w => Assert.DoesNotContain("\n", w, StringComparison.Ordinal));
            Assert.Contains(logs.Messages, m => m.Contains("The database answered (migrations, attempt", StringComparison.Ordinal));
            using var client = PinnedClient(app);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(Readiness.ReadyPath)).StatusCode);
        }
        finally
        {
            proxy.Up();
            try
            {
                await start;
            }
            catch (StoreUnavailableException)
            {
            }

            await StopAsync(app);
        }

        static bool IsWaitLine(string m) => m.Contains("The database is not answering", StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_DatabaseNeverAnswers_GivesUpAfterTheWaitLimitWithOneMessage()
    {
        // A port nothing listens on: every connection is refused.
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        var overrides = NodeSettings($"Host=127.0.0.1;Port={port};Database=gatehouse;Username=gatehouse;Password=x;Timeout=5", null, null);
        overrides["Gatehouse:Database:StartupWaitLimit"] = "00:00:02";
        var app = GatehouseHost.Build(new HostSettings { Console = new StringWriter(), Overrides = overrides });
        var console = FormattedLogs.Attach(app.Services);
        try
        {
            var e = await Assert.ThrowsAsync<StoreUnavailableException>(() => app.StartAsync());
            Assert.Contains("giving up on migrations after Gatehouse:Database:StartupWaitLimit", e.Message, StringComparison.Ordinal);

            // What the console shows: a line per attempt and the message, no stack trace.
            var text = string.Join("", console.Entries);
            Assert.Contains("The database is not answering (migrations, attempt 1)", text, StringComparison.Ordinal);
            Assert.Contains("giving up on migrations", text, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static async Task AssertSharedLimitAsync(TestServer a, TestServer b, int limit)
    {
        // Both nodes, in parallel, try the same account (in any letter case) twice the limit each.
        var limiters = new[] { a.App.Services.GetRequiredService<AccountAttemptLimiter>(), b.App.Services.GetRequiredService<AccountAttemptLimiter>() };
        Assert.NotSame(limiters[0], limiters[1]);
        var results = await Task.WhenAll(Enumerable.Range(0, 4 * limit).Select(i => Task.Run(() =>
            limiters[i % 2].TryAttempt(i % 3 == 0 ? "Alice@Contoso.test" : " alice@contoso.test"))));
        Assert.Equal(limit, results.Count(allowed => allowed));

        // Another account has its own allowance.
        Assert.True(limiters[1].TryAttempt("bob@contoso.test"));

        // Wrong device user codes (default: 5 per address or browser per 5 minutes) are counted once for both nodes too.
        var codes = new[] { a.App.Services.GetRequiredService<UserCodeAttemptLimiter>(), b.App.Services.GetRequiredService<UserCodeAttemptLimiter>() };
        var address = "address:203.0.113." + Random.Shared.Next(1, 255);
        var guesses = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() =>
            codes[i % 2].TryAcquire(address, "browser:" + (i % 4)))));
        Assert.Equal(5, guesses.Count(allowed => allowed));
        codes[0].Release(address, "browser:0");
        Assert.True(codes[1].TryAcquire(address));
        Assert.False(codes[0].TryAcquire(address));
    }

    private static Dictionary<string, string?> NodeSettings(string store, string? certPath, string? keyPath) => new()
    {
        ["Gatehouse:DataDirectory"] = TempDirectory.Create(),
        ["Gatehouse:Urls"] = "https://127.0.0.1:0",
        ["Gatehouse:RdpPort"] = "0",
        ["Gatehouse:PublicName"] = "login.gatehouse.test",
        ["Gatehouse:Store"] = store,
        ["Gatehouse:KeyRing:Key"] = SharedKey,
        ["Gatehouse:Tls:CertificatePath"] = certPath,
        ["Gatehouse:Tls:KeyPath"] = keyPath,
        ["Gatehouse:Database:ReadyTimeout"] = "00:00:10",
    };

    /// <summary>One certificate and key as PEM files, as an administrator would copy to every node.</summary>
    private static (string Cert, string Key) SharedCertificate()
    {
        var directory = TempDirectory.Create();
        using var certificate = TlsCertificates.Generate("login.gatehouse.test", DateTimeOffset.UtcNow);
        var certPath = Path.Combine(directory, "shared.crt");
        var keyPath = Path.Combine(directory, "shared.key");
        File.WriteAllText(certPath, certificate.ExportCertificatePem());
        using var rsa = System.Security.Cryptography.X509Certificates.RSACertificateExtensions.GetRSAPrivateKey(certificate)!;
        File.WriteAllText(keyPath, rsa.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath);
    }

    private static HttpClient PinnedClient(WebApplication app, string? pinned = null)
    {
        pinned ??= app.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString();
        var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == pinned,
            },
            AllowAutoRedirect = false,
            UseCookies = false,
        };
        return new HttpClient(handler) { BaseAddress = GatehouseHost.BoundAddresses(app).Single() };
    }

    private static async Task StopAsync(WebApplication app)
    {
        try
        {
            await app.StopAsync();
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
        }

        await app.DisposeAsync();
    }
}

/// <summary>Every log entry of a host as its console formatter writes it.</summary>
internal sealed class FormattedLogs : ILoggerProvider
{
    private readonly Microsoft.Extensions.Logging.Console.ConsoleFormatter formatter;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> entries = new();

    private FormattedLogs(Microsoft.Extensions.Logging.Console.ConsoleFormatter formatter) => this.formatter = formatter;

    public IReadOnlyList<string> Entries => [.. entries];

    public static FormattedLogs Attach(IServiceProvider services)
    {
        var name = services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>>().CurrentValue.FormatterName
            ?? Microsoft.Extensions.Logging.Console.ConsoleFormatterNames.Simple;
        var logs = new FormattedLogs(services.GetServices<Microsoft.Extensions.Logging.Console.ConsoleFormatter>().Single(f => f.Name == name));
        services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        return logs;
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(FormattedLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            using var writer = new StringWriter();
            owner.formatter.Write(new Microsoft.Extensions.Logging.Abstractions.LogEntry<TState>(logLevel, category, eventId, state, exception, formatter), null, writer);
            owner.entries.Enqueue(writer.ToString());
        }
    }
}
