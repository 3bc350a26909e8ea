using System.Text;

namespace Gatehouse.Identity.Tests.Unit;

public sealed class TotpTests
{
    // RFC 6238 Appendix B: seed "12345678901234567890" (ASCII), HMAC-SHA-1, 8 digits, T0 = 0, X = 30.
    private static readonly byte[] Rfc6238Seed = Encoding.ASCII.GetBytes("12345678901234567890");

    [Theory]
    [InlineData(59L, "94287082")]
    [InlineData(1111111109L, "07081804")]
    [InlineData(1111111111L, "14050471")]
    [InlineData(1234567890L, "89005924")]
    [InlineData(2000000000L, "69279037")]
    [InlineData(20000000000L, "65353130")]
    public void Compute_Rfc6238AppendixB_Sha1EightDigits(long unixSeconds, string expected)
    {
        var step = Totp.StepAt(DateTimeOffset.FromUnixTimeSeconds(unixSeconds));
        Assert.Equal(expected, Totp.Compute(Rfc6238Seed, step, 8));
    }

    [Theory]
    [InlineData(0L, "755224")]
    [InlineData(1L, "287082")]
    [InlineData(9L, "520489")]
    public void Compute_Rfc4226AppendixD_SixDigits(long counter, string expected) =>
        Assert.Equal(expected, Totp.Compute(Rfc6238Seed, counter));

    [Fact]
    public void StepAt_Thirty_Seconds() => Assert.Equal(37037036L, Totp.StepAt(DateTimeOffset.FromUnixTimeSeconds(1111111109)));

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(1)]
    public void TryVerify_AdjacentStep_Accepted(int offset)
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1234567890);
        var step = Totp.StepAt(now) + offset;
        Assert.True(Totp.TryVerify(Rfc6238Seed, Totp.Compute(Rfc6238Seed, step), now, 0, out var matched));
        Assert.Equal(step, matched);
    }

    [Theory]
    [InlineData(-2)]
    [InlineData(2)]
    public void TryVerify_TwoStepsAway_Refused(int offset)
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1234567890);
        Assert.False(Totp.TryVerify(Rfc6238Seed, Totp.Compute(Rfc6238Seed, Totp.StepAt(now) + offset), now, 0, out _));
    }

    [Fact]
    public void TryVerify_StepAlreadyUsed_Refused()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1234567890);
        var step = Totp.StepAt(now);
        var code = Totp.Compute(Rfc6238Seed, step);
        Assert.True(Totp.TryVerify(Rfc6238Seed, code, now, step - 1, out var matched));
        Assert.False(Totp.TryVerify(Rfc6238Seed, code, now, matched, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("12345")]
    [InlineData("123456789")]
    [InlineData("12a456")]
    [InlineData("000000")]
    public void TryVerify_MalformedOrWrong_Refused(string code) =>
        Assert.False(Totp.TryVerify(Rfc6238Seed, code, DateTimeOffset.FromUnixTimeSeconds(1234567890), 0, out _));

    [Fact]
    public void TryVerify_CodeWithSpaces_Accepted()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1234567890);
        var code = Totp.Compute(Rfc6238Seed, Totp.StepAt(now));
        Assert.True(Totp.TryVerify(Rfc6238Seed, code[..3] + " " + code[3..], now, 0, out _));
    }

    [Fact]
    public void OtpAuthUri_HasUnpaddedSecretAndIssuer()
    {
        var uri = Totp.OtpAuthUri("Gatehouse", "alice@contoso.test", Rfc6238Seed);
        Assert.Equal("otpauth://totp/Gatehouse:alice%40contoso.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30", uri);
    }
}

public sealed class Base32Tests
{
    // RFC 4648 §10 test vectors.
    [Theory]
    [InlineData("", "")]
    [InlineData("f", "MY======")]
    [InlineData("fo", "MZXQ====")]
    [InlineData("foo", "MZXW6===")]
    [InlineData("foob", "MZXW6YQ=")]
    [InlineData("fooba", "MZXW6YTB")]
    [InlineData("foobar", "MZXW6YTBOI======")]
    public void Rfc4648Vectors_EncodeAndDecode(string plain, string encoded)
    {
        Assert.Equal(encoded, Totp.Base32Encode(Encoding.ASCII.GetBytes(plain)));
        Assert.Equal(plain, Encoding.ASCII.GetString(Totp.Base32Decode(encoded)));
        Assert.Equal(plain, Encoding.ASCII.GetString(Totp.Base32Decode(encoded.TrimEnd('=').ToLowerInvariant())));
    }

    [Theory]
    [InlineData("MZXW6YT1")]
    [InlineData("M")]
    [InlineData("MZX")]
    [InlineData("MZXW6Y")]
    [InlineData("MZ!W6YTB")]
    [InlineData("MZ")] // leftover bits not zero: 'Z' = 25 has low bits set
    public void Decode_Malformed_Refused(string text)
    {
        Assert.False(Totp.TryBase32Decode(text, out _));
        Assert.Throws<FormatException>(() => Totp.Base32Decode(text));
    }

    [Fact]
    public void Encode_Unpadded_NoEquals() => Assert.Equal("MY", Totp.Base32Encode("f"u8, pad: false));
}
