namespace Gatehouse.Protocol.Tests.Core;

public sealed class DisplayTextTests
{
    [Theory]
    [InlineData("x\u001b[31mevil\u001b]0;owned\u0007@contoso.test", @"x\x1b[31mevil\x1b]0;owned\x07@contoso.test")]
    [InlineData("FAKE\r\nFAKE ROW success@contoso.test", @"FAKE\r\nFAKE ROW success@contoso.test")]
    [InlineData("nul\0byte", @"nul\x00byte")]
    [InlineData("tab\tdel\u007f", @"tab\tdel\x7f")]
    [InlineData("c1 csi \u009b31m next line \u0085", @"c1 csi \x9b31m next line \x85")]
    [InlineData("\u202etset.osotnoc@ecila", @"\u202etset.osotnoc@ecila")]
    [InlineData("a\u202ab\u202bc\u202cd\u202de\u2066f\u2067g\u2068h\u2069i\u200ej\u200fk\u061cl", @"a\u202ab\u202bc\u202cd\u202de\u2066f\u2067g\u2068h\u2069i\u200ej\u200fk\u061cl")]
    [InlineData("zero\u200bwidth\ufeffbom\u00adsoft\u2028line\u2029para", @"zero\u200bwidth\ufeffbom\xadsoft\u2028line\u2029para")]
    [InlineData("tag\U000E0041", @"tag\U000e0041")]
    public void Escape_UnsafeCharacters_WrittenVisibly(string input, string expected)
    {
        Assert.Equal(expected, DisplayText.Escape(input));
        Assert.True(DisplayText.ContainsUnsafe(input));
        Assert.False(DisplayText.ContainsUnsafe(DisplayText.Escape(input)));
    }

    [Theory]
    [InlineData("alice@contoso.test")]
    [InlineData(@"WORK\rdpuser")]
    [InlineData("Zoë Ångström – 山田 → ≤ 😀")]
    [InlineData("")]
    public void Escape_SafeText_Unchanged(string input)
    {
        Assert.Same(input, DisplayText.Escape(input));
        Assert.False(DisplayText.ContainsUnsafe(input));
        Assert.Equal(-1, DisplayText.FirstUnsafe(input));
    }

    [Fact]
    public void Escape_UnpairedSurrogates_WrittenByCodeUnit()
    {
        Assert.Equal(@"a\ud800b\udc00", DisplayText.Escape("a\ud800b\udc00"));
        Assert.Equal(1, DisplayText.FirstUnsafe("a\ud800"));
    }

    [Fact]
    public void Escape_RandomText_NeverThrows_LeavesNothingUnsafe_KeepsSafeCharacters()
    {
        var random = new Random(1234);
        for (var n = 0; n < 5000; n++)
        {
            var chars = new char[random.Next(0, 24)];
            for (var i = 0; i < chars.Length; i++)
            {
                // Mostly the interesting ranges: C0/C1, bidi and format characters, surrogates.
                chars[i] = (char)(random.Next(4) switch
                {
                    0 => random.Next(0, 0xA0),
                    1 => random.Next(0x2000, 0x2070),
                    2 => random.Next(0xD800, 0xE000),
                    _ => random.Next(0, 0x10000),
                });
            }

            var input = new string(chars);
            var escaped = DisplayText.Escape(input);
            Assert.False(DisplayText.ContainsUnsafe(escaped), $"{DisplayText.Escape(escaped)} from {Convert.ToHexString(System.Text.Encoding.Unicode.GetBytes(input))}");
            Assert.Equal(!DisplayText.ContainsUnsafe(input), ReferenceEquals(input, escaped) || input.Length == 0);
            var kept = DisplayText.EscapeKeepingLineBreaks(input);
            Assert.False(DisplayText.ContainsUnsafe(kept.Replace("\r\n", string.Empty, StringComparison.Ordinal).Replace("\n", string.Empty, StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void Escape_Null_IsEmpty() => Assert.Equal(string.Empty, DisplayText.Escape(null));

    [Fact]
    public void EscapeKeepingLineBreaks_KeepsLfAndCrLf_EscapesLoneCrAndTheRest()
    {
        Assert.Equal("one\ntwo\r\nthree\\rfour \\x1b[2J", DisplayText.EscapeKeepingLineBreaks("one\ntwo\r\nthree\rfour \u001b[2J"));
    }

    [Fact]
    public void Describe_NamesTheCodePointAndItsEscape()
    {
        Assert.Equal(@"U+202E (\u202e)", DisplayText.Describe("ab\u202e", 2));
        Assert.Equal(@"U+001B (\x1b)", DisplayText.Describe("\u001b", 0));
        Assert.Equal(@"U+E0041 (\U000e0041)", DisplayText.Describe("\U000E0041", 0));
    }

    [Fact]
    public void Truncate_LongText_CutWithEllipsis_NeverInsideASurrogatePair()
    {
        Assert.Equal("abc", DisplayText.Truncate("abc", 3));
        Assert.Null(DisplayText.Truncate(null, 3));
        Assert.Equal("ab…", DisplayText.Truncate("abcdef", 3));
        Assert.Equal(256, DisplayText.Truncate(new string('x', 60_000), 256)!.Length);

        // "a😀b": the cut would fall between the two halves of the emoji, so it drops the whole pair.
        Assert.Equal("a…", DisplayText.Truncate("a\ud83d\ude00b", 3));
    }
}
