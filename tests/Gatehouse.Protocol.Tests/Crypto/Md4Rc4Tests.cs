using System.Text;
using Gatehouse.Protocol.Crypto;

namespace Gatehouse.Protocol.Tests.Crypto;

public sealed class Md4Tests
{
    // RFC 1320 appendix A.5, the MD4 test suite.
    [Theory]
    [InlineData("", "31d6cfe0d16ae931b73c59d7e0c089c0")]
    [InlineData("a", "bde52cb31de33e46245e05fbdbd6fb24")]
    [InlineData("abc", "a448017aaf21d8525fc10ae87aa6729d")]
    [InlineData("message digest", "d9130a8164549fe818874806e1c7014b")]
    [InlineData("abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9")]
    [InlineData("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4")]
    [InlineData("12345678901234567890123456789012345678901234567890123456789012345678901234567890", "e33b4ddc9c38f2199c3e7b164fcc0536")]
    public void HashData_Rfc1320Suite(string message, string digest) =>
        Assert.Equal(digest, Convert.ToHexStringLower(Md4.HashData(Encoding.ASCII.GetBytes(message))));

    [Fact]
    public void HashData_NtHashOfPassword_MatchesMsNlmp()
    {
        // [MS-NLMP] 4.2.2.1.2 NTOWFv1("Password") = MD4(UNICODE("Password")).
        Assert.Equal("a4f49c406510bdcab6824ee7c30fd852", Convert.ToHexStringLower(Md4.HashData(Encoding.Unicode.GetBytes("Password"))));
    }

    // Lengths around the 56-byte padding boundary and across blocks; digests from OpenSSL's legacy MD4
    // (`head -c N /dev/zero | tr '\0' 'a' | openssl dgst -md4 -provider legacy -provider default`).
    [Theory]
    [InlineData(55, "c889c81dd86c4d2e025778944ea02881")]
    [InlineData(56, "d5f9a9e9257077a5f08b0b92f348b0ad")]
    [InlineData(63, "7ea3da77432d44c323671097d1348fc8")]
    [InlineData(64, "52f5076fabd22680234a3fa9f9dc5732")]
    [InlineData(65, "330e377bf231f3cacfecc2c182fe7e5b")]
    [InlineData(119, "e65dd227ccef97fa1d34d70189120f76")]
    [InlineData(120, "b03ddbd470b47c013e0c7ab2ddd763db")]
    [InlineData(1000, "5f1bf26a8067c9159b91f1440f7c9e8a")]
    public void HashData_PaddingBoundaries(int length, string digest)
    {
        var data = Enumerable.Repeat((byte)'a', length).ToArray();
        Span<byte> destination = stackalloc byte[20];
        Md4.HashData(data, destination);
        Assert.Equal(digest, Convert.ToHexStringLower(destination[..16]));
        Assert.Equal(digest, Convert.ToHexStringLower(Md4.HashData(data)));
    }

    [Fact]
    public void HashData_ShortDestination_Throws() =>
        Assert.Throws<ArgumentException>(() => Md4.HashData([1, 2, 3], new byte[15]));
}

public sealed class Rc4Tests
{
    // RFC 6229 section 2, key 0x0102030405 (40 bits): keystream at offsets 0, 16, 240 and 256.
    [Theory]
    [InlineData("0102030405", 0, "b2396305f03dc027ccc3524a0a1118a8")]
    [InlineData("0102030405", 16, "6982944f18fc82d589c403a47a0d0919")]
    [InlineData("0102030405", 240, "28cb1132c96ce286421dcaadb8b69eae")]
    [InlineData("0102030405", 256, "1cfcf62b03eddb641d77dfcf7f8d8c93")]
    public void Keystream_Rfc6229(string key, int offset, string expected)
    {
        var keystream = Rc4.Transform(Convert.FromHexString(key), new byte[offset + 16]);
        Assert.Equal(expected, Convert.ToHexStringLower(keystream.AsSpan(offset, 16)));
    }

    // The classic published examples (key, plaintext, ciphertext).
    [Theory]
    [InlineData("Key", "Plaintext", "bbf316e8d940af0ad3")]
    [InlineData("Wiki", "pedia", "1021bf0420")]
    [InlineData("Secret", "Attack at dawn", "45a01f645fc35b383552544b9bf5")]
    public void Transform_PublishedExamples(string key, string plaintext, string ciphertext) =>
        Assert.Equal(ciphertext, Convert.ToHexStringLower(Rc4.Transform(Encoding.ASCII.GetBytes(key), Encoding.ASCII.GetBytes(plaintext))));

    [Fact]
    public void Transform_InPiecesAndInPlace_ContinuesTheKeystream()
    {
        var key = Convert.FromHexString("0102030405");
        var whole = Rc4.Transform(key, new byte[272]);
        var cipher = new Rc4(key);
        var pieces = new byte[272];
        cipher.Transform(pieces.AsSpan(0, 7), pieces.AsSpan(0, 7));
        cipher.Transform(pieces.AsSpan(7, 200), pieces.AsSpan(7, 200));
        cipher.Transform(pieces.AsSpan(207), pieces.AsSpan(207));
        Assert.Equal(whole, pieces);
    }

    [Fact]
    public void Transform_Twice_RoundTrips()
    {
        var key = Encoding.ASCII.GetBytes("session key 16 b");
        var plain = Encoding.ASCII.GetBytes("NTLM sealing uses one continuous keystream per direction");
        Assert.Equal(plain, Rc4.Transform(key, Rc4.Transform(key, plain)));
    }

    [Fact]
    public void Constructor_BadKeyLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => new Rc4([]));
        Assert.Throws<ArgumentException>(() => new Rc4(new byte[257]));
        Assert.Throws<ArgumentException>(() => new Rc4([1]).Transform(new byte[2], new byte[1]));
    }
}
