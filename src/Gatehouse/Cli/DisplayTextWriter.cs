using System.Text;
using Gatehouse.Protocol;

namespace Gatehouse.Cli;

/// <summary>
/// The admin commands' standard output and error: whatever a command writes goes through
/// <see cref="DisplayText.Escape(string?)"/>, so a name with ESC, BEL, NUL, U+202E or a CR LF prints as
/// <c>\x1b</c>, <c>\u202e</c>, <c>\r\n</c> and can neither drive the terminal nor draw a line of its own. Each
/// <c>Write</c> is escaped whole, line breaks included; the line break of <c>WriteLine</c> is the writer's own.
/// Multi-line text the program composed itself (indented JSON, a QR code, an .rdp file) goes through
/// <see cref="WriteTextAsync"/>, which keeps its line breaks.
/// </summary>
internal sealed class DisplayTextWriter(TextWriter inner) : TextWriter(inner.FormatProvider)
{
    /// <summary>The writer underneath (what Spectre.Console writes tables to, their cells already escaped).</summary>
    public TextWriter Inner { get; } = inner;

    public override Encoding Encoding => Inner.Encoding;

    [System.Diagnostics.CodeAnalysis.AllowNull]
    public override string NewLine
    {
        get => Inner.NewLine;
        set => Inner.NewLine = value;
    }

    /// <summary>Writes multi-line text the program composed: each line escaped, its <c>\n</c> and <c>\r\n</c> kept.</summary>
    public Task WriteTextAsync(string text) => Inner.WriteAsync(DisplayText.EscapeKeepingLineBreaks(text));

    public override void Write(char value) => Inner.Write(DisplayText.Escape(value.ToString()));

    public override void Write(string? value) => Inner.Write(DisplayText.Escape(value));

    public override void Write(char[] buffer, int index, int count) => Inner.Write(DisplayText.Escape(new string(buffer, index, count)));

    public override void Write(ReadOnlySpan<char> buffer) => Inner.Write(DisplayText.Escape(new string(buffer)));

    public override void WriteLine() => Inner.WriteLine();

    public override void WriteLine(string? value) => Inner.WriteLine(DisplayText.Escape(value));

    public override void WriteLine(ReadOnlySpan<char> buffer) => Inner.WriteLine(DisplayText.Escape(new string(buffer)));

    public override Task WriteAsync(char value) => Inner.WriteAsync(DisplayText.Escape(value.ToString()));

    public override Task WriteAsync(string? value) => Inner.WriteAsync(DisplayText.Escape(value));

    public override Task WriteAsync(char[] buffer, int index, int count) => Inner.WriteAsync(DisplayText.Escape(new string(buffer, index, count)));

    public override Task WriteAsync(ReadOnlyMemory<char> buffer, CancellationToken cancellationToken = default) =>
        Inner.WriteAsync(DisplayText.Escape(new string(buffer.Span)).AsMemory(), cancellationToken);

    public override Task WriteLineAsync() => Inner.WriteLineAsync();

    public override Task WriteLineAsync(char value) => Inner.WriteLineAsync(DisplayText.Escape(value.ToString()));

    public override Task WriteLineAsync(string? value) => Inner.WriteLineAsync(DisplayText.Escape(value));

    public override Task WriteLineAsync(char[] buffer, int index, int count) => Inner.WriteLineAsync(DisplayText.Escape(new string(buffer, index, count)));

    public override Task WriteLineAsync(ReadOnlyMemory<char> buffer, CancellationToken cancellationToken = default) =>
        Inner.WriteLineAsync(DisplayText.Escape(new string(buffer.Span)).AsMemory(), cancellationToken);

    public override void Flush() => Inner.Flush();

    public override Task FlushAsync() => Inner.FlushAsync();

    public override Task FlushAsync(CancellationToken cancellationToken) => Inner.FlushAsync(cancellationToken);
}
