using System.Security.Cryptography;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>
/// [MS-CSSP] 3.1.5 the public-key binding: what the client seals into pubKeyAuth and what the server answers, chosen
/// by the client's CredSSP version. The key is the SubjectPublicKey of the certificate on that TLS leg.
/// </summary>
public static class PublicKeyBinding
{
    private static ReadOnlySpan<byte> ClientToServer => "CredSSP Client-To-Server Binding Hash\0"u8;

    private static ReadOnlySpan<byte> ServerToClient => "CredSSP Server-To-Client Binding Hash\0"u8;

    /// <summary>The client's value: the public key (versions 2-4) or SHA-256(magic ‖ nonce ‖ key) (5 and later).</summary>
    public static byte[] ClientValue(int clientVersion, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> subjectPublicKey) =>
        clientVersion >= 5 ? Hash(ClientToServer, clientNonce, subjectPublicKey) : subjectPublicKey.ToArray();

    /// <summary>The server's answer: the key with its first byte incremented (2-4) or SHA-256 with the server magic (5+).</summary>
    public static byte[] ServerValue(int clientVersion, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> subjectPublicKey)
    {
        if (clientVersion >= 5)
        {
            return Hash(ServerToClient, clientNonce, subjectPublicKey);
        }

        var value = subjectPublicKey.ToArray();
        if (value.Length > 0)
        {
            value[0] = unchecked((byte)(value[0] + 1));
        }

        return value;
    }

    /// <summary>Constant-time comparison of a received binding with the expected one.</summary>
    public static bool Matches(ReadOnlySpan<byte> received, ReadOnlySpan<byte> expected) =>
        CryptographicOperations.FixedTimeEquals(received, expected);

    private static byte[] Hash(ReadOnlySpan<byte> magic, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> key)
    {
        var input = new byte[magic.Length + nonce.Length + key.Length];
        magic.CopyTo(input);
        nonce.CopyTo(input.AsSpan(magic.Length));
        key.CopyTo(input.AsSpan(magic.Length + nonce.Length));
        return SHA256.HashData(input);
    }
}
