using System.Collections.Concurrent;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Tests;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.MultiNode;

/// <summary>
/// Issue 16 item 2, the RDP listener while the database is down: a new sign-in is refused at once with one log line
/// (the reason and a count), not a hang or a stack trace, and sign-ins work again by themselves when it answers.
/// </summary>
public sealed class RdpStoreDownTests
{
    private const string Password = "Correct-Horse-1";
    private static readonly string SharedKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    [PostgresFact]
    public async Task NlaSignIn_DatabaseDown_RefusedWithOneLoggedLine_ThenAcceptedWhenItAnswers()
    {
        // Arrange: a node whose database sits behind a proxy the test cuts; Alice can sign in with NLA.
        await using var database = await TestPostgres.CreateDatabaseAsync();
        await using var proxy = new DatabaseProxy(database.ServerEndPoint, up: true);
        var logs = new LogsWithExceptions();
        var app = GatehouseHost.Build(new HostSettings
        {
            Console = new StringWriter(),
            Overrides = new Dictionary<string, string?>
            {
                ["Gatehouse:DataDirectory"] = TempDirectory.Create(),
                ["Gatehouse:Urls"] = "https://127.0.0.1:0",
                ["Gatehouse:RdpPort"] = "0",
                ["Gatehouse:PublicName"] = "login.gatehouse.test",
                ["Gatehouse:Store"] = database.ConnectionString(proxy.EndPoint),
                ["Gatehouse:KeyRing:Key"] = SharedKey,
                ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla",
            },
        });
        app.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        await app.StartAsync();
        try
        {
            await using (var scope = app.Services.CreateAsyncScope())
            {
                var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
                var home = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
                await directory.CreateUserAsync(home.Id, "alice@contoso.test", "Alice", Password, temporary: false);
            }

            var port = GatehouseHost.RdpEndPoint(app).Port;
            await SignInAsync(port);
            await Until.TrueAsync(() => SignIns(database) == 1, "the sign-in log entry while the database answers");
            var availability = app.Services.GetRequiredService<IStoreAvailability>();
            Assert.Null(availability.Unavailable);

            // Act 1: the database stops answering; Alice signs in during the sign-in's first use of it.
            proxy.Down();
            await SignInAsync(port);

            // Assert 1: refused with one line (reason, count 1), the node takes the database for down.
            await Until.TrueAsync(() => logs.Messages.Any(m => m.Text.Contains("sign-in refused, the database does not answer", StringComparison.Ordinal)), "the refusal's log line");
            Assert.NotNull(availability.Unavailable);
            Assert.Contains(logs.Messages, m => m.Text.Contains("1 sign-in(s) refused since it stopped answering", StringComparison.Ordinal));

            // Act 2: the next sign-in is refused before negotiation, without asking the database.
            await SignInAsync(port);
            await Until.TrueAsync(() => logs.Messages.Any(m => m.Text.Contains("2 sign-in(s) refused since it stopped answering", StringComparison.Ordinal)), "the second refusal's log line");

            // Assert 2: no stack trace and no error anywhere in the log.
            Assert.DoesNotContain(logs.Messages, m => m.HasException && m.Level >= LogLevel.Warning);
            Assert.DoesNotContain(logs.Messages, m => m.Level >= LogLevel.Error);

            // Act 3: the database answers again.
            proxy.Up();
            await Until.TrueAsync(() => availability.Unavailable is null, "the database taken to answer again");
            await SignInAsync(port);

            // Assert 3: the sign-in was decided and logged again.
            await Until.TrueAsync(() => SignIns(database) == 2, "the sign-in log entry after the database came back");
            Assert.Contains(logs.Messages, m => m.Text.Contains("RDP sign-ins are accepted (2 refused meanwhile)", StringComparison.Ordinal));
        }
        finally
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

    /// <summary>One NLA sign-in; the outcome does not matter (refused, or dropped), only that it ends.</summary>
    private static async Task SignInAsync(int port)
    {
        try
        {
            var (_, tls, tcp) = await CredSspTestClient.RunAsync(port, new CredSspClientOptions { Password = Password });
            using (tcp)
            await using (tls)
            {
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException or Xunit.Sdk.XunitException or EndOfStreamException)
        {
            // The gateway closed the connection: the refusal the test expects.
        }
    }

    private static long SignIns(TestDatabase database) =>
        database.CountAsync("SELECT count(*) FROM \"SignIns\" WHERE \"Protocol\" = 'nla'").GetAwaiter().GetResult();

    private sealed record Entry(LogLevel Level, string Text, bool HasException);

    private sealed class LogsWithExceptions : ILoggerProvider
    {
        private readonly ConcurrentQueue<Entry> _messages = new();

        public IReadOnlyList<Entry> Messages => [.. _messages];

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _messages);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<Entry> messages) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                messages.Enqueue(new Entry(logLevel, $"{category}: {formatter(state, exception)}", exception is not null));
        }
    }
}
