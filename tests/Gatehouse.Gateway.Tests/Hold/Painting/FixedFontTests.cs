using Gatehouse.Gateway.Hold.Painting;

namespace Gatehouse.Gateway.Tests.Hold.Painting;

public sealed class FixedFontTests
{
    // misc-fixed 10x20 'A', as in the BDF (10 columns, MSB first, two bytes a row).
    private static readonly ushort[] GlyphA =
    [
        0x0000, 0x0000, 0x0000, 0x0C00, 0x1E00, 0x3300, 0x3300, 0x6180, 0x6180, 0x6180,
        0x7F80, 0x6180, 0x6180, 0x6180, 0x6180, 0x6180, 0x0000, 0x0000, 0x0000, 0x0000,
    ];

    [Fact]
    public void Glyph_A_HasTheKnownRows()
    {
        var rows = FixedFont.Glyph('A');
        for (var row = 0; row < FixedFont.CellHeight; row++)
        {
            Assert.Equal(GlyphA[row], (ushort)((rows[row * 2] << 8) | rows[(row * 2) + 1]));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void DrawText_A_SetsExactlyTheGlyphsPixels(int scale)
    {
        var fb = Framebuffer.Create(64, 64);
        fb.Clear(Bgra.Black);
        var width = fb.DrawText("A", 3, 5, Bgra.White, scale);
        Assert.Equal(FixedFont.CellWidth * scale, width);
        for (var y = 0; y < 64; y++)
        {
            for (var x = 0; x < 64; x++)
            {
                var (gx, gy) = ((x - 3) / scale, (y - 5) / scale);
                var inside = x >= 3 && y >= 5 && gx < FixedFont.CellWidth && gy < FixedFont.CellHeight;
                var set = inside && (GlyphA[gy] & (0x8000 >> gx)) != 0;
                Assert.True((fb[x, y] == Bgra.White) == set, $"pixel ({x}, {y})");
            }
        }
    }

    [Fact]
    public void FontData_MatchesTheInstalledPcfFont()
    {
        const string Source = "/usr/share/fonts/X11/misc/10x20-ISO8859-1.pcf.gz";
        if (!File.Exists(Source))
        {
            return; // xfonts-base is not installed: nothing to compare with (the 'A' test still checks the table).
        }

        var regenerated = Gatehouse.Tools.FontGen.PcfFont.Load(Source).Rows;
        Assert.Equal(regenerated, FixedFontData.Rows.ToArray());
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("café £5 ÿ", "café £5 ÿ")]
    [InlineData("evil\u202Efdp.exe", "evil?fdp.exe")]
    [InlineData("\u001B[31mred", "?[31mred")]
    [InlineData("bell\a tab\t nl\n del\u007F c1\u009B", "bell? tab? nl? del? c1?")]
    [InlineData("zero\u200Bwidth soft\u00ADhyphen bom\uFEFF", "zero?width soft?hyphen bom?")]
    [InlineData("emoji \U0001F600!", "emoji ?!")]
    [InlineData("Ωmega", "?mega")]
    public void ToGlyphs_UnsafeOrMissingCharacters_BecomeQuestionMarks(string text, string expected) =>
        Assert.Equal(expected, FixedFont.ToGlyphs(text));

    [Fact]
    public void ToGlyphs_UnpairedSurrogates_BecomeQuestionMarks()
    {
        Assert.Equal("lone ? surrogate", FixedFont.ToGlyphs("lone \uD800 surrogate"));
        Assert.Equal("?x?", FixedFont.ToGlyphs("\uDC00x\uD800"));
    }

    [Fact]
    public void Glyph_UnsafeLatin1_IsTheQuestionMark()
    {
        Assert.True(FixedFont.Glyph('\u001B').SequenceEqual(FixedFont.Glyph('?')));
        Assert.True(FixedFont.Glyph('\u0085').SequenceEqual(FixedFont.Glyph('?')));
        Assert.True(FixedFont.Glyph('\u202E').SequenceEqual(FixedFont.Glyph('?')));
        Assert.False(FixedFont.Glyph('A').SequenceEqual(FixedFont.Glyph('?')));
    }

    [Fact]
    public void Measure_CountsCodePointsTimesCellWidthAndScale()
    {
        Assert.Equal(0, FixedFont.Measure(null));
        Assert.Equal(50, FixedFont.Measure("hello"));
        Assert.Equal(100, FixedFont.Measure("hello", 2));
        Assert.Equal(20, FixedFont.Measure("\U0001F600!"));
        Assert.Equal(FixedFont.MaxCharacters * 10, FixedFont.Measure(new string('x', 100_000)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    [InlineData(17)]
    [InlineData(int.MaxValue)]
    public void Scale_OutsideOneToSixteen_Throws(int scale)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedFont.Measure("x", scale));
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedFont.Wrap("x", 100, scale));
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedFont.Ellipsize("x", 100, scale));
        Assert.Throws<ArgumentOutOfRangeException>(() => FixedFont.DrawText(Framebuffer.Create(4, 4), "x", 0, 0, Bgra.White, scale));
    }

    [Fact]
    public void Ellipsize_FitsOrCutsWithDots()
    {
        Assert.Equal("hello", FixedFont.Ellipsize("hello", 50));
        Assert.Equal("hel...", FixedFont.Ellipsize("hello world", 60));
        Assert.Equal("h...", FixedFont.Ellipsize("hello world", 80, 2));
        Assert.Equal("..", FixedFont.Ellipsize("hello world", 25));
        Assert.Equal(string.Empty, FixedFont.Ellipsize("hello world", 5));
        Assert.EndsWith("...", FixedFont.Ellipsize(new string('x', 100_000), 1_000_000));
    }

    [Fact]
    public void Wrap_BreaksAtSpacesAndSplitsLongWords()
    {
        Assert.Equal(["the quick", "brown fox", "jumps"], FixedFont.Wrap("the quick brown fox jumps", 100));
        Assert.Equal(["abcdefghij", "klm"], FixedFont.Wrap("abcdefghijklm", 100));
        Assert.Equal(["one", "two"], FixedFont.Wrap("one two", 60, 2));
        Assert.Empty(FixedFont.Wrap("   ", 100));
        Assert.Empty(FixedFont.Wrap(null, 100));
    }

    [Fact]
    public void Wrap_TooManyLines_EndsTheLastWithAnEllipsis()
    {
        var lines = FixedFont.Wrap("one two three four five six seven", 100, maxLines: 2);
        Assert.Equal(["one two", "three f..."], lines);
        Assert.All(FixedFont.Wrap(new string('x', 100_000), 200, maxLines: 3), line => Assert.True(line.Length <= 20));
        Assert.EndsWith("...", FixedFont.Wrap(new string('x', 100_000), 200, maxLines: 3)[^1]);
    }

    [Fact]
    public void Wrap_EveryLineFitsTheWidth()
    {
        var text = string.Join(' ', Enumerable.Range(0, 90).Select(i => new string((char)('a' + (i % 26)), 1 + (i % 17))));
        foreach (var width in new[] { 10, 55, 100, 333 })
        {
            var lines = FixedFont.Wrap(text, width);
            Assert.All(lines, line => Assert.True(FixedFont.Measure(line) <= Math.Max(10, width), $"{line} wider than {width}"));
            Assert.Equal(text.Replace(" ", string.Empty, StringComparison.Ordinal), string.Concat(lines).Replace(" ", string.Empty, StringComparison.Ordinal));
        }
    }
}
