using Gatehouse.Protocol;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// The console log's format: the layout of .NET's simple formatter (<c>info: Category[7]</c>, then the message indented
/// on the next line, or both on one line with <c>SingleLine</c>), with every value escaped by <see cref="DisplayText"/>.
/// Log messages carry what clients sent (an NTLM user name, a name typed on the sign-in page, a host label), so a CR LF
/// or an escape sequence in them must not forge a log line or drive the operator's terminal: the message and the scopes
/// become one line each, with <c>\r\n</c>, <c>\x1b</c>, <c>\u202e</c> written out; an exception keeps its line breaks
/// (the stack trace) and is indented under its entry, its other control characters escaped. This is the console
/// formatter of <c>gatehouse serve</c> whatever <c>Logging:Console:FormatterName</c> says, except <c>json</c>, whose
/// JSON writer escapes control and non-ASCII characters itself. An entry written inside a span carries its ids after
/// the event id (<c>info: Category[7] trace_id=… span_id=…</c>), so the line and its trace find each other.
/// </summary>
internal sealed class EscapingConsoleFormatter(IOptionsMonitor<SimpleConsoleFormatterOptions> options) : ConsoleFormatter(FormatterName)
{
    /// <summary>The formatter's name in <c>Logging:Console:FormatterName</c>.</summary>
    public const string FormatterName = "gatehouse";

    private const string Padding = "      ";
    private const string DefaultForeground = "\x1B[39m\x1B[22m";
    private const string DefaultBackground = "\x1B[49m";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
        {
            return;
        }

        var settings = options.CurrentValue;
        var singleLine = settings.SingleLine;
        if (settings.TimestampFormat is { } format)
        {
            var now = settings.UseUtcTimestamp ? DateTimeOffset.UtcNow : DateTimeOffset.Now;
            textWriter.Write(now.ToString(format, System.Globalization.CultureInfo.InvariantCulture));
        }

        var (level, color) = Level(logEntry.LogLevel);
        if (UseColor(settings) && color.Length > 0)
        {
            textWriter.Write(color);
            textWriter.Write(level);
            textWriter.Write(DefaultForeground);
            textWriter.Write(DefaultBackground);
        }
        else
        {
            textWriter.Write(level);
        }

        textWriter.Write(": ");
        textWriter.Write(DisplayText.Escape(logEntry.Category));
        textWriter.Write('[');
        textWriter.Write(logEntry.EventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(']');
        WriteTraceContext(textWriter);
        if (!singleLine)
        {
            textWriter.Write('\n');
        }

        if (settings.IncludeScopes && scopeProvider is not null)
        {
            var any = false;
            scopeProvider.ForEachScope(
                (scope, writer) =>
                {
                    writer.Write(any ? " => " : singleLine ? " => " : Padding + "=> ");
                    writer.Write(DisplayText.Escape(Convert.ToString(scope, System.Globalization.CultureInfo.InvariantCulture)));
                    any = true;
                },
                textWriter);
            if (any && !singleLine)
            {
                textWriter.Write('\n');
            }
        }

        if (message is not null)
        {
            textWriter.Write(singleLine ? " " : Padding);
            textWriter.Write(DisplayText.Escape(message));
            if (!singleLine)
            {
                textWriter.Write('\n');
            }
        }

        if (logEntry.Exception is { } exception)
        {
            // A startup failure whose message says what to do (a bad setting, a database that never answered) is
            // shown as that message: its stack trace says nothing an administrator can act on.
            var shown = exception is StartupException or Gatehouse.Storage.StoreUnavailableException ? exception.Message : exception.ToString();
            var text = DisplayText.EscapeKeepingLineBreaks(shown).Replace("\r\n", "\n", StringComparison.Ordinal);
            if (singleLine)
            {
                textWriter.Write(' ');
                textWriter.Write(text.Replace("\n", " ", StringComparison.Ordinal));
            }
            else
            {
                textWriter.Write(Padding);
                textWriter.Write(text.Replace("\n", "\n" + Padding, StringComparison.Ordinal));
                textWriter.Write('\n');
            }
        }

        if (singleLine)
        {
            textWriter.Write('\n');
        }
    }

    /// <summary>
    /// The trace and span ids of the activity the entry is written in (the console logger formats on the logging thread),
    /// so a line can be found in the trace backend: <c> trace_id=… span_id=…</c>, lower-case hex only.
    /// </summary>
    private static void WriteTraceContext(TextWriter writer)
    {
        if (System.Diagnostics.Activity.Current is not { IdFormat: System.Diagnostics.ActivityIdFormat.W3C } activity)
        {
            return;
        }

        writer.Write(" trace_id=");
        writer.Write(activity.TraceId.ToHexString());
        writer.Write(" span_id=");
        writer.Write(activity.SpanId.ToHexString());
    }

    private static bool UseColor(SimpleConsoleFormatterOptions settings) => settings.ColorBehavior switch
    {
        LoggerColorBehavior.Enabled => true,
        LoggerColorBehavior.Disabled => false,
        _ => !Console.IsOutputRedirected,
    };

    private static (string Text, string Color) Level(LogLevel level) => level switch
    {
        LogLevel.Trace => ("trce", "\x1B[37m"),
        LogLevel.Debug => ("dbug", "\x1B[37m"),
        LogLevel.Information => ("info", "\x1B[32m"),
        LogLevel.Warning => ("warn", "\x1B[1m\x1B[33m"),
        LogLevel.Error => ("fail", "\x1B[30m\x1B[41m"),
        LogLevel.Critical => ("crit", "\x1B[1m\x1B[37m\x1B[41m"),
        _ => ("none", string.Empty),
    };
}

/// <summary>Registration of <see cref="EscapingConsoleFormatter"/>.</summary>
internal static class EscapingConsoleLogging
{
    /// <summary>
    /// Makes <see cref="EscapingConsoleFormatter"/> the console logger's formatter (options from
    /// <c>Logging:Console:FormatterOptions</c>, as for the simple formatter); only <c>json</c> may replace it.
    /// </summary>
    public static ILoggingBuilder AddEscapingConsoleFormatter(this ILoggingBuilder logging)
    {
        ArgumentNullException.ThrowIfNull(logging);
        logging.AddConsoleFormatter<EscapingConsoleFormatter, SimpleConsoleFormatterOptions>();
        logging.Services.PostConfigure<ConsoleLoggerOptions>(o =>
        {
            if (!string.Equals(o.FormatterName, ConsoleFormatterNames.Json, StringComparison.OrdinalIgnoreCase))
            {
                o.FormatterName = EscapingConsoleFormatter.FormatterName;
            }
        });
        return logging;
    }
}
