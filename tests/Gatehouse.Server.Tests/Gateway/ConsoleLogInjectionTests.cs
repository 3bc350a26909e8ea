using System.Globalization;
using System.Threading.Channels;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Hosting;
using Gatehouse.Identity;
using Gatehouse.Server.Tests.Cli;
using Gatehouse.Server.Tests.Support;
using Gatehouse.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Gatehouse.Server.Tests.Gateway;

/// <summary>
/// Issue 15 item 3: a user name an NLA client sends (NTLM AUTHENTICATE, UTF-16, anything goes) with an escape sequence,
/// a CR LF that starts a forged log line and U+202E reaches the console log only escaped. The log entries are written by
/// the real server and formatted by the console formatter the server configured, as the console logger does.
/// </summary>
public sealed class ConsoleLogInjectionTests
{
    private const string HostileNtlmUser = "x\u001b[31mevil\r\nwarn: Gatehouse.Forged[1]\u202e@contoso.test";

    [Fact]
    public async Task NlaSignIn_HostileNtlmUserName_EscapedInConsoleLog()
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla",
            ["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled",
        });
        await using (var scope = server.App.Services.CreateAsyncScope())
        {
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var tenant = (await directory.FindTenantAsync(DirectoryService.CommonTenant))!;
            await directory.CreateHostAsync(tenant.Id, "vm1", "127.0.0.1", 1, BackendSecurity.Nla, userAccountName: "rdpuser", userSecret: "Host-Secret-1");
        }

        var console = ConsoleCapture.Attach(server.App.Services);
        var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(GatehouseHost.RdpEndPoint(server.App).Port, new CredSspClientOptions { User = HostileNtlmUser });
        using (tcp)
        await using (tls)
        {
            Assert.NotNull(outcome.ErrorCode);
        }

        var entry = await console.WaitForAsync(text => text.Contains("NLA sign-in of", StringComparison.Ordinal));

        foreach (var c in entry)
        {
            var category = char.GetUnicodeCategory(c);
            Assert.False((category == UnicodeCategory.Control && c != '\n') || category == UnicodeCategory.Format, $"U+{(int)c:X4} in the console log: {entry}");
        }

        Assert.Contains(@"x\x1b[31mevil\r\nwarn: Gatehouse.Forged[1]\u202e@contoso.test", entry, StringComparison.Ordinal);
        Assert.DoesNotContain("\nwarn: Gatehouse.Forged", entry, StringComparison.Ordinal);
        Assert.StartsWith("info: ", entry, StringComparison.Ordinal);

        // The attempt is in the sign-in log, as typed, and prints escaped.
        var run = await CliHarness.RunRawAsync(null, "signins", "list", "--user", HostileNtlmUser, "--data", server.DataDirectory);
        Assert.Contains(@"x\x1b[31mevil\r\nwarn: Gatehouse.Forged[1]\u202e@contoso.test", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', run.Output);
    }

    [Fact]
    public async Task ConsoleFormatter_ExceptionAndScopes_EscapedAndIndented()
    {
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled",
            ["Logging:Console:FormatterOptions:IncludeScopes"] = "true",
        });
        var console = ConsoleCapture.Attach(server.App.Services);
        var logger = server.App.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Gatehouse.Test");

#pragma warning disable CA1848 // The test logs a hostile message on purpose, through the plain extension methods.
        using (logger.BeginScope("scope \u001b[2J{Name}", "a\r\nb"))
        {
            logger.LogWarning(new InvalidOperationException("bad \u001b]0;owned\u0007 value\r\ninfo: forged"), "message \u202e{User}", "u\rv");
        }
#pragma warning restore CA1848

        var entry = await console.WaitForAsync(text => text.Contains("message", StringComparison.Ordinal));
        var lines = entry.TrimEnd('\n').Split('\n');
        Assert.StartsWith("warn: Gatehouse.Test[0]", lines[0], StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.StartsWith("      ", l, StringComparison.Ordinal));
        Assert.Contains(@"=> scope \x1b[2Ja\r\nb", entry, StringComparison.Ordinal);
        Assert.Contains(@"message \u202eu\rv", entry, StringComparison.Ordinal);
        Assert.Contains(@"bad \x1b]0;owned\x07 value", entry, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', entry);
        Assert.DoesNotContain('\r', entry);
        Assert.DoesNotContain('\u202e', entry);
    }

    /// <summary>Formats every log entry of the server with the console formatter its console logger is configured with.</summary>
    private sealed class ConsoleCapture : ILoggerProvider
    {
        private readonly ConsoleFormatter _formatter;
        private readonly Channel<string> _entries = Channel.CreateUnbounded<string>();

        private ConsoleCapture(ConsoleFormatter formatter) => _formatter = formatter;

        public static ConsoleCapture Attach(IServiceProvider services)
        {
            var name = services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue.FormatterName ?? ConsoleFormatterNames.Simple;
            var capture = new ConsoleCapture(services.GetServices<ConsoleFormatter>().Single(f => f.Name == name));
            services.GetRequiredService<ILoggerFactory>().AddProvider(capture);
            return capture;
        }

        /// <summary>The first entry (from now on) that matches; a generous cap only guards against a hang.</summary>
        public async Task<string> WaitForAsync(Func<string, bool> match)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (true)
            {
                var entry = await _entries.Reader.ReadAsync(timeout.Token);
                if (match(entry))
                {
                    return entry;
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
            // The logger factory owns the provider and disposes it with the host; entries written meanwhile are dropped.
        }

        private sealed class Logger(ConsoleCapture owner, string category) : ILogger
        {
            private readonly LoggerExternalScopeProvider _scopes = new();

            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => _scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel))
                {
                    return;
                }

                using var writer = new StringWriter();
                owner._formatter.Write(new LogEntry<TState>(logLevel, category, eventId, state, exception, formatter), _scopes, writer);
                owner._entries.Writer.TryWrite(writer.ToString());
            }
        }
    }
}
