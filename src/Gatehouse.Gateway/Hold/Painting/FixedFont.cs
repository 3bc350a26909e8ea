using System.Buffers;
using System.Text;
using Gatehouse.Protocol;

namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// Text in X.org misc-fixed 10x20 (public domain, embedded in <see cref="FixedFontData"/>): every character is one
/// 10 × 20 cell, times an integer scale. Only Latin-1 (U+0020–U+00FF) has glyphs; every other character, and every
/// character <see cref="DisplayText.IsUnsafe"/> calls unsafe (controls, bidi overrides, zero-width and other format
/// characters, unpaired surrogates), is drawn as <c>?</c>, one cell per code point. Nothing is ever drawn raw.
/// </summary>
public static class FixedFont
{
    /// <summary>The width of one cell at scale 1.</summary>
    public const int CellWidth = 10;

    /// <summary>The height of one cell at scale 1.</summary>
    public const int CellHeight = 20;

    /// <summary>
    /// The most characters of one string that are ever looked at: longer text is cut (and ends with an ellipsis where
    /// it is drawn), so a hostile megabyte-long name costs no more than this.
    /// </summary>
    public const int MaxCharacters = 1024;

    /// <summary>The largest scale accepted (every method taking a scale throws outside 1 to this).</summary>
    public const int MaxScale = 16;

    /// <summary>What an overflowing line ends with (three dots: the font has no single-cell ellipsis).</summary>
    public const string Ellipsis = "...";

    private const int FirstCode = 0x20;
    private const int BytesPerGlyph = CellHeight * 2;

    /// <summary>
    /// <paramref name="text"/> as the characters that will be drawn: each code point becomes one character in
    /// U+0020–U+00FF, and anything without a safe glyph becomes <c>?</c>. At most <see cref="MaxCharacters"/> long.
    /// </summary>
    public static string ToGlyphs(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var builder = new StringBuilder(Math.Min(text.Length, MaxCharacters));
        var index = 0;
        while (index < text.Length && builder.Length < MaxCharacters)
        {
            if (Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out var consumed) != OperationStatus.Done)
            {
                builder.Append('?');
                index += Math.Max(1, consumed);
                continue;
            }

            builder.Append(HasGlyph(rune) ? (char)rune.Value : '?');
            index += consumed;
        }

        return builder.ToString();
    }

    /// <summary>True when <paramref name="rune"/> is drawn as itself (Latin-1, printable, and safe).</summary>
    public static bool HasGlyph(Rune rune) => rune.Value is >= FirstCode and <= 0xFF && !DisplayText.IsUnsafe(rune);

    /// <summary>The 20 rows of two bytes (most significant bit = leftmost pixel) of the glyph drawn for <paramref name="value"/>.</summary>
    public static ReadOnlySpan<byte> Glyph(char value)
    {
        var code = value is >= (char)FirstCode and <= (char)0xFF && !DisplayText.IsUnsafe(new Rune(value)) ? value : '?';
        return FixedFontData.Rows.Slice((code - FirstCode) * BytesPerGlyph, BytesPerGlyph);
    }

    /// <summary>The width in pixels of <paramref name="text"/> drawn at <paramref name="scale"/> (one cell per code point).</summary>
    public static int Measure(string? text, int scale = 1)
    {
        CheckScale(scale);
        return ToGlyphs(text).Length * CellWidth * scale;
    }

    /// <summary>
    /// Draws <paramref name="text"/> with its top-left corner at (<paramref name="x"/>, <paramref name="y"/>) and returns
    /// the width drawn. Only the set bits are painted, so the background shows through.
    /// </summary>
    public static int DrawText(Framebuffer target, string? text, int x, int y, uint color, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(target);
        CheckScale(scale);
        var glyphs = ToGlyphs(text);
        var advance = CellWidth * scale;
        for (var i = 0; i < glyphs.Length; i++)
        {
            var left = x + (i * advance);
            if (left >= target.Width)
            {
                break;
            }

            if (left + advance > 0 && glyphs[i] != ' ')
            {
                target.BlitMask(Glyph(glyphs[i]), CellWidth, CellHeight, 2, left, y, scale, color);
            }
        }

        return glyphs.Length * advance;
    }

    /// <summary>
    /// <paramref name="text"/> cut to fit <paramref name="maxWidth"/> pixels at <paramref name="scale"/>: unchanged when
    /// it fits, otherwise as many characters as fit followed by <see cref="Ellipsis"/>. The result is already in
    /// glyphs (<see cref="ToGlyphs"/>).
    /// </summary>
    public static string Ellipsize(string? text, int maxWidth, int scale = 1)
    {
        CheckScale(scale);
        var glyphs = ToGlyphs(text);
        var fit = Math.Max(0, maxWidth / (CellWidth * scale));
        var cut = (text?.Length ?? 0) > MaxCharacters && glyphs.Length == MaxCharacters;
        if (glyphs.Length <= fit && !cut)
        {
            return glyphs;
        }

        if (fit <= Ellipsis.Length)
        {
            return Ellipsis[..fit];
        }

        return string.Concat(glyphs.AsSpan(0, Math.Min(glyphs.Length, fit - Ellipsis.Length)), Ellipsis);
    }

    /// <summary>
    /// <paramref name="text"/> broken into lines no wider than <paramref name="maxWidth"/> at <paramref name="scale"/>:
    /// breaks at spaces, words longer than a line are split, explicit line breaks are not honoured (they are unsafe
    /// characters and show as <c>?</c>). At most <paramref name="maxLines"/> lines: the last one ends with
    /// <see cref="Ellipsis"/> when text was left over.
    /// </summary>
    public static IReadOnlyList<string> Wrap(string? text, int maxWidth, int scale = 1, int maxLines = int.MaxValue)
    {
        CheckScale(scale);
        var glyphs = ToGlyphs(text);
        var perLine = Math.Max(1, maxWidth / (CellWidth * scale));
        var lines = new List<string>();
        if (maxLines < 1)
        {
            return lines;
        }

        var position = 0;
        while (position < glyphs.Length)
        {
            while (position < glyphs.Length && glyphs[position] == ' ')
            {
                position++;
            }

            if (position >= glyphs.Length)
            {
                break;
            }

            if (lines.Count == maxLines - 1)
            {
                lines.Add(Ellipsize(glyphs[position..], perLine * CellWidth, 1));
                return lines;
            }

            var remaining = glyphs.Length - position;
            if (remaining <= perLine)
            {
                lines.Add(glyphs[position..]);
                break;
            }

            // The last space within the line (or the first one just past it), else a hard split.
            var end = glyphs.LastIndexOf(' ', position + perLine, perLine + 1);
            if (end <= position)
            {
                end = position + perLine;
            }

            lines.Add(glyphs[position..end].TrimEnd());
            position = end;
        }

        if ((text?.Length ?? 0) > MaxCharacters && glyphs.Length == MaxCharacters && lines.Count > 0)
        {
            lines[^1] = Ellipsize(lines[^1] + Ellipsis, perLine * CellWidth, 1);
        }

        return lines;
    }

    private static void CheckScale(int scale)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scale, MaxScale);
    }
}
