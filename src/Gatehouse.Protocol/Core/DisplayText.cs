using System.Buffers;
using System.Globalization;
using System.Text;

namespace Gatehouse.Protocol;

/// <summary>
/// Renders text that came from outside (a user name typed into a client, a name an administrator gave) safe to show
/// on a terminal, in a log line or on a page: every character that could move the cursor, start an escape sequence,
/// reorder the text around it or hide itself is written as a visible escape instead. The unsafe characters are C0
/// and C1 controls and DEL (general category Cc: ESC, BEL, NUL, CR, LF, the 8-bit CSI U+009B), every format
/// character (Cf: the bidirectional embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, the marks
/// U+200E, U+200F and U+061C, zero-width characters, the byte order mark, soft hyphen, tag characters), the line and
/// paragraph separators U+2028 and U+2029, and unpaired surrogates. They are written as <c>\t</c>, <c>\n</c>,
/// <c>\r</c>, <c>\xHH</c> (up to U+00FF), <c>\uHHHH</c> or <c>\UHHHHHHHH</c>, lower-case hexadecimal; everything
/// else is kept as it is (a backslash too, so <c>WORK\rdpuser</c> reads as typed).
/// </summary>
public static class DisplayText
{
    /// <summary>True when <paramref name="value"/> is a character <see cref="Escape(string?)"/> rewrites.</summary>
    public static bool IsUnsafe(Rune value) => Rune.GetUnicodeCategory(value) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => true,
        _ => false,
    };

    /// <summary>True when <paramref name="value"/> holds a character <see cref="Escape(string?)"/> rewrites (or an unpaired surrogate).</summary>
    public static bool ContainsUnsafe(string? value) => value is not null && FirstUnsafe(value) >= 0;

    /// <summary>The index of the first unsafe character (or unpaired surrogate) in <paramref name="value"/>, or -1.</summary>
    public static int FirstUnsafe(ReadOnlySpan<char> value)
    {
        var index = 0;
        while (index < value.Length)
        {
            if (Rune.DecodeFromUtf16(value[index..], out var rune, out var consumed) != OperationStatus.Done || IsUnsafe(rune))
            {
                return index;
            }

            index += consumed;
        }

        return -1;
    }

    /// <summary>
    /// The code point at <paramref name="index"/> of <paramref name="value"/> as <c>U+202E</c> and its escape
    /// (<c>\u202e</c>), for messages that say which character was refused.
    /// </summary>
    public static string Describe(ReadOnlySpan<char> value, int index)
    {
        var code = Rune.DecodeFromUtf16(value[index..], out var rune, out _) == OperationStatus.Done ? rune.Value : value[index];
        var builder = new StringBuilder();
        AppendEscape(builder, code);
        return string.Create(CultureInfo.InvariantCulture, $"U+{code:X4} ({builder})");
    }

    /// <summary>Every unsafe character of <paramref name="value"/> escaped, line breaks included: the result is one line.</summary>
    public static string Escape(string? value) => EscapeCore(value, keepLineBreaks: false);

    /// <summary>
    /// As <see cref="Escape(string?)"/>, but <c>\n</c> and <c>\r\n</c> stay line breaks: for multi-line text the
    /// program itself composed (a stack trace, indented JSON, a QR code drawn in characters).
    /// </summary>
    public static string EscapeKeepingLineBreaks(string? value) => EscapeCore(value, keepLineBreaks: true);

    /// <summary>
    /// At most <paramref name="max"/> characters of <paramref name="value"/>: longer text is cut (never inside a
    /// surrogate pair) and ends with <c>…</c>. Null stays null.
    /// </summary>
    public static string? Truncate(string? value, int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (value is null || value.Length <= max)
        {
            return value;
        }

        var cut = max - 1;
        if (cut > 0 && char.IsHighSurrogate(value[cut - 1]))
        {
            cut--;
        }

        return string.Concat(value.AsSpan(0, cut), "…");
    }

    private static string EscapeCore(string? value, bool keepLineBreaks)
    {
        if (string.IsNullOrEmpty(value))
        {
            return value ?? string.Empty;
        }

        var first = FirstUnsafe(value);
        if (first < 0)
        {
            return value;
        }

        var builder = new StringBuilder(value.Length + 16);
        builder.Append(value, 0, first);
        var index = first;
        while (index < value.Length)
        {
            if (Rune.DecodeFromUtf16(value.AsSpan(index), out var rune, out var consumed) != OperationStatus.Done)
            {
                // An unpaired surrogate: shown by its code unit.
                AppendEscape(builder, value[index]);
                index++;
                continue;
            }

            if (!IsUnsafe(rune))
            {
                builder.Append(value, index, consumed);
            }
            else if (keepLineBreaks && rune.Value == '\n')
            {
                builder.Append('\n');
            }
            else if (keepLineBreaks && rune.Value == '\r' && index + 1 < value.Length && value[index + 1] == '\n')
            {
                builder.Append("\r\n");
                consumed = 2;
            }
            else
            {
                AppendEscape(builder, rune.Value);
            }

            index += consumed;
        }

        return builder.ToString();
    }

    private static void AppendEscape(StringBuilder builder, int code)
    {
        _ = code switch
        {
            '\t' => builder.Append("\\t"),
            '\n' => builder.Append("\\n"),
            '\r' => builder.Append("\\r"),
            <= 0xFF => builder.Append(CultureInfo.InvariantCulture, $"\\x{code:x2}"),
            <= 0xFFFF => builder.Append(CultureInfo.InvariantCulture, $"\\u{code:x4}"),
            _ => builder.Append(CultureInfo.InvariantCulture, $"\\U{code:x8}"),
        };
    }
}
