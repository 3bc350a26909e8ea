using System.Buffers.Binary;
using System.Numerics;

namespace Gatehouse.Protocol.Crypto;

/// <summary>
/// [RFC 1320] The MD4 message-digest algorithm. NTLM needs it for the NT hash (NTOWFv1/NTOWFv2 in [MS-NLMP] 3.3);
/// .NET does not ship it. Not for any other use: MD4 is broken as a general-purpose hash.
/// </summary>
public static class Md4
{
    /// <summary>The digest size in bytes.</summary>
    public const int HashSizeInBytes = 16;

    /// <summary>Computes the MD4 digest of <paramref name="source"/>.</summary>
    public static byte[] HashData(ReadOnlySpan<byte> source)
    {
        var digest = new byte[HashSizeInBytes];
        HashData(source, digest);
        return digest;
    }

    /// <summary>Computes the MD4 digest of <paramref name="source"/> into the first 16 bytes of <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 16 bytes.</exception>
    public static void HashData(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (destination.Length < HashSizeInBytes)
        {
            throw new ArgumentException("The destination must hold 16 bytes.", nameof(destination));
        }

        uint a = 0x67452301, b = 0xefcdab89, c = 0x98badcfe, d = 0x10325476;
        Span<uint> x = stackalloc uint[16];
        var full = source.Length / 64;
        for (var i = 0; i < full; i++)
        {
            Block(source.Slice(i * 64, 64), x, ref a, ref b, ref c, ref d);
        }

        // Padding (RFC 1320 3.1-3.2): 0x80, zeros to 56 mod 64, then the bit length as 64-bit little endian.
        Span<byte> tail = stackalloc byte[128];
        tail.Clear();
        var rest = source[(full * 64)..];
        rest.CopyTo(tail);
        tail[rest.Length] = 0x80;
        var tailLength = rest.Length < 56 ? 64 : 128;
        BinaryPrimitives.WriteUInt64LittleEndian(tail[(tailLength - 8)..], unchecked((ulong)source.Length * 8));
        for (var offset = 0; offset < tailLength; offset += 64)
        {
            Block(tail.Slice(offset, 64), x, ref a, ref b, ref c, ref d);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, a);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], b);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], c);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], d);
    }

    private static void Block(ReadOnlySpan<byte> block, Span<uint> x, ref uint a, ref uint b, ref uint c, ref uint d)
    {
        for (var i = 0; i < 16; i++)
        {
            x[i] = BinaryPrimitives.ReadUInt32LittleEndian(block[(i * 4)..]);
        }

        uint aa = a, bb = b, cc = c, dd = d;

        // Round 1: F(x,y,z) = xy | ~x z.
        foreach (var k in stackalloc[] { 0, 4, 8, 12 })
        {
            a = R1(a, b, c, d, x[k], 3);
            d = R1(d, a, b, c, x[k + 1], 7);
            c = R1(c, d, a, b, x[k + 2], 11);
            b = R1(b, c, d, a, x[k + 3], 19);
        }

        // Round 2: G(x,y,z) = xy | xz | yz, constant 0x5A827999.
        foreach (var k in stackalloc[] { 0, 1, 2, 3 })
        {
            a = R2(a, b, c, d, x[k], 3);
            d = R2(d, a, b, c, x[k + 4], 5);
            c = R2(c, d, a, b, x[k + 8], 9);
            b = R2(b, c, d, a, x[k + 12], 13);
        }

        // Round 3: H(x,y,z) = x ^ y ^ z, constant 0x6ED9EBA1, word order 0 8 4 12 2 10 6 14 1 9 5 13 3 11 7 15.
        foreach (var k in stackalloc[] { 0, 2, 1, 3 })
        {
            a = R3(a, b, c, d, x[k], 3);
            d = R3(d, a, b, c, x[k + 8], 9);
            c = R3(c, d, a, b, x[k + 4], 11);
            b = R3(b, c, d, a, x[k + 12], 15);
        }

        a = unchecked(a + aa);
        b = unchecked(b + bb);
        c = unchecked(c + cc);
        d = unchecked(d + dd);
    }

    private static uint R1(uint a, uint b, uint c, uint d, uint x, int s) =>
        BitOperations.RotateLeft(unchecked(a + ((b & c) | (~b & d)) + x), s);

    private static uint R2(uint a, uint b, uint c, uint d, uint x, int s) =>
        BitOperations.RotateLeft(unchecked(a + ((b & c) | (b & d) | (c & d)) + x + 0x5A827999u), s);

    private static uint R3(uint a, uint b, uint c, uint d, uint x, int s) =>
        BitOperations.RotateLeft(unchecked(a + (b ^ c ^ d) + x + 0x6ED9EBA1u), s);
}
