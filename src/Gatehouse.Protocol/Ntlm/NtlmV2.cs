using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Protocol.Crypto;

namespace Gatehouse.Protocol.Ntlm;

/// <summary>
/// [MS-NLMP] 3.3.2 NTLM v2 authentication and 3.4.5 key derivation: the response keys, the NTLMv2 response a client
/// computes and a server verifies, the session keys and the MIC. Pure functions over byte spans; comparisons of
/// secrets are constant-time.
/// </summary>
public static class NtlmV2
{
    /// <summary>Size of the NTProofStr at the start of an NTLMv2_RESPONSE.</summary>
    public const int ProofSize = 16;

    /// <summary>Smallest NTLMv2_RESPONSE: NTProofStr and the fixed part of NTLMv2_CLIENT_CHALLENGE up to AvPairs.</summary>
    public const int MinResponseSize = ProofSize + 28;

    /// <summary>NT hash of a password: MD4(UTF-16LE(password)) ([MS-NLMP] 3.3.1 NTOWFv1, the input of NTOWFv2).</summary>
    public static byte[] NtHash(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        return Md4.HashData(Encoding.Unicode.GetBytes(password));
    }

    /// <summary>NTOWFv2 = HMAC_MD5(NT hash, UNICODE(Uppercase(user) + domain)) ([MS-NLMP] 3.3.2).</summary>
    public static byte[] NtOwfV2(ReadOnlySpan<byte> ntHash, string user, string domain)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(domain);
        return HMACMD5.HashData(ntHash, Encoding.Unicode.GetBytes(user.ToUpperInvariant() + domain));
    }

    /// <summary>
    /// The client blob "temp": Responserversion 1, HiResponserversion 1, six zero bytes, the FILETIME timestamp, the
    /// client challenge, four zero bytes, the target information (with its MsvAvEOL) and four zero bytes.
    /// </summary>
    public static byte[] ClientBlob(long timestamp, ReadOnlySpan<byte> clientChallenge, ReadOnlySpan<byte> targetInfo)
    {
        if (clientChallenge.Length != 8)
        {
            throw new ArgumentException("The client challenge is 8 bytes.", nameof(clientChallenge));
        }

        var temp = new byte[28 + targetInfo.Length + 4];
        temp[0] = 1;
        temp[1] = 1;
        BinaryPrimitives.WriteInt64LittleEndian(temp.AsSpan(8), timestamp);
        clientChallenge.CopyTo(temp.AsSpan(16));
        targetInfo.CopyTo(temp.AsSpan(28));
        return temp;
    }

    /// <summary>NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ temp).</summary>
    public static byte[] ProofString(ReadOnlySpan<byte> responseKeyNt, ReadOnlySpan<byte> serverChallenge, ReadOnlySpan<byte> temp)
    {
        var input = new byte[serverChallenge.Length + temp.Length];
        serverChallenge.CopyTo(input);
        temp.CopyTo(input.AsSpan(serverChallenge.Length));
        return HMACMD5.HashData(responseKeyNt, input);
    }

    /// <summary>The client side: NtChallengeResponse (NTProofStr ‖ temp) and the SessionBaseKey.</summary>
    public static (byte[] NtChallengeResponse, byte[] SessionBaseKey) ComputeResponse(ReadOnlySpan<byte> responseKeyNt, ReadOnlySpan<byte> serverChallenge, ReadOnlySpan<byte> temp)
    {
        var proof = ProofString(responseKeyNt, serverChallenge, temp);
        var response = new byte[proof.Length + temp.Length];
        proof.CopyTo(response, 0);
        temp.CopyTo(response.AsSpan(proof.Length));
        return (response, HMACMD5.HashData(responseKeyNt, proof));
    }

    /// <summary>LMv2 response: HMAC_MD5(ResponseKeyLM, ServerChallenge ‖ ClientChallenge) ‖ ClientChallenge.</summary>
    public static byte[] LmV2Response(ReadOnlySpan<byte> responseKeyLm, ReadOnlySpan<byte> serverChallenge, ReadOnlySpan<byte> clientChallenge)
    {
        var input = new byte[16];
        serverChallenge.CopyTo(input);
        clientChallenge.CopyTo(input.AsSpan(8));
        var response = new byte[24];
        HMACMD5.HashData(responseKeyLm, input).CopyTo(response, 0);
        clientChallenge.CopyTo(response.AsSpan(16));
        return response;
    }

    /// <summary>
    /// The server side: checks an NTLMv2 response against the user's NT hash. Returns the SessionBaseKey when the
    /// NTProofStr matches (constant-time), null otherwise (including responses too short to be NTLMv2).
    /// </summary>
    public static byte[]? VerifyResponse(ReadOnlySpan<byte> ntHash, string user, string domain, ReadOnlySpan<byte> serverChallenge, ReadOnlySpan<byte> ntChallengeResponse)
    {
        if (ntChallengeResponse.Length < MinResponseSize || ntChallengeResponse[ProofSize] != 1 || ntChallengeResponse[ProofSize + 1] != 1)
        {
            return null;
        }

        var key = NtOwfV2(ntHash, user, domain);
        var proof = ProofString(key, serverChallenge, ntChallengeResponse[ProofSize..]);
        return CryptographicOperations.FixedTimeEquals(proof, ntChallengeResponse[..ProofSize]) ? HMACMD5.HashData(key, proof) : null;
    }

    /// <summary>The timestamp a client put in its NTLMv2 blob (FILETIME), for the server's freshness check.</summary>
    public static long ClientTimestamp(ReadOnlySpan<byte> ntChallengeResponse) =>
        ntChallengeResponse.Length >= MinResponseSize ? BinaryPrimitives.ReadInt64LittleEndian(ntChallengeResponse[(ProofSize + 8)..]) : 0;

    /// <summary>The AV pairs inside an NTLMv2 client blob (the client's copy of the target information).</summary>
    public static ReadOnlySpan<byte> ClientTargetInfo(ReadOnlySpan<byte> ntChallengeResponse) =>
        ntChallengeResponse.Length >= MinResponseSize + 4 ? ntChallengeResponse[MinResponseSize..^4] : default;

    /// <summary>
    /// The ExportedSessionKey: with NTLMSSP_NEGOTIATE_KEY_EXCH, RC4(KeyExchangeKey, EncryptedRandomSessionKey);
    /// otherwise the KeyExchangeKey itself (for NTLMv2 the SessionBaseKey).
    /// </summary>
    public static byte[] ExportedSessionKey(ReadOnlySpan<byte> keyExchangeKey, ReadOnlySpan<byte> encryptedRandomSessionKey, NtlmNegotiateFlags flags) =>
        flags.HasFlag(NtlmNegotiateFlags.KeyExchange) && encryptedRandomSessionKey.Length == 16
            ? Rc4.Transform(keyExchangeKey, encryptedRandomSessionKey)
            : keyExchangeKey.ToArray();

    /// <summary>MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE with its MIC zeroed).</summary>
    public static byte[] ComputeMic(ReadOnlySpan<byte> exportedSessionKey, ReadOnlySpan<byte> negotiate, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> authenticate)
    {
        if (authenticate.Length < NtlmAuthenticateMessage.MicOffset + NtlmAuthenticateMessage.MicSize)
        {
            throw new ArgumentException("The AUTHENTICATE message has no MIC field.", nameof(authenticate));
        }

        var input = new byte[negotiate.Length + challenge.Length + authenticate.Length];
        negotiate.CopyTo(input);
        challenge.CopyTo(input.AsSpan(negotiate.Length));
        authenticate.CopyTo(input.AsSpan(negotiate.Length + challenge.Length));
        input.AsSpan(negotiate.Length + challenge.Length + NtlmAuthenticateMessage.MicOffset, NtlmAuthenticateMessage.MicSize).Clear();
        return HMACMD5.HashData(exportedSessionKey, input);
    }

    /// <summary>True when <paramref name="authenticate"/>'s MIC is right (constant-time).</summary>
    public static bool VerifyMic(ReadOnlySpan<byte> exportedSessionKey, ReadOnlySpan<byte> negotiate, ReadOnlySpan<byte> challenge, ReadOnlySpan<byte> authenticate) =>
        authenticate.Length >= NtlmAuthenticateMessage.MicOffset + NtlmAuthenticateMessage.MicSize
        && CryptographicOperations.FixedTimeEquals(
            ComputeMic(exportedSessionKey, negotiate, challenge, authenticate),
            authenticate.Slice(NtlmAuthenticateMessage.MicOffset, NtlmAuthenticateMessage.MicSize));

    /// <summary>SIGNKEY ([MS-NLMP] 3.4.5.2): MD5(ExportedSessionKey ‖ the direction's magic constant).</summary>
    public static byte[] SignKey(ReadOnlySpan<byte> exportedSessionKey, bool clientToServer) =>
        Md5Concat(exportedSessionKey, clientToServer
            ? "session key to client-to-server signing key magic constant\0"u8
            : "session key to server-to-client signing key magic constant\0"u8);

    /// <summary>SEALKEY ([MS-NLMP] 3.4.5.3) with extended session security: 128, 56 or 40 bits of the key, then MD5 with the magic constant.</summary>
    public static byte[] SealKey(ReadOnlySpan<byte> exportedSessionKey, NtlmNegotiateFlags flags, bool clientToServer)
    {
        var length = flags.HasFlag(NtlmNegotiateFlags.Negotiate128) ? 16 : flags.HasFlag(NtlmNegotiateFlags.Negotiate56) ? 7 : 5;
        return Md5Concat(exportedSessionKey[..Math.Min(length, exportedSessionKey.Length)], clientToServer
            ? "session key to client-to-server sealing key magic constant\0"u8
            : "session key to server-to-client sealing key magic constant\0"u8);
    }

    private static byte[] Md5Concat(ReadOnlySpan<byte> key, ReadOnlySpan<byte> constant)
    {
        var input = new byte[key.Length + constant.Length];
        key.CopyTo(input);
        constant.CopyTo(input.AsSpan(key.Length));
        return MD5.HashData(input);
    }
}

/// <summary>
/// [MS-NLMP] 3.4.3-3.4.4 message confidentiality and integrity with extended session security, for one direction:
/// RC4 sealing with a keystream that continues across messages, and the 16-byte NTLMSSP_MESSAGE_SIGNATURE
/// (version 1, the first 8 bytes of HMAC_MD5(SignKey, SeqNum ‖ message) encrypted with the same RC4 state when
/// keys were exchanged, SeqNum). CredSSP uses it to protect the public key and the credentials.
/// </summary>
public sealed class NtlmSealer
{
    /// <summary>Size of the NTLMSSP_MESSAGE_SIGNATURE.</summary>
    public const int SignatureSize = 16;

    private readonly byte[] _signKey;
    private readonly Rc4 _seal;
    private readonly bool _keyExchange;
    private uint _sequence;

    /// <summary>Creates the state for one direction from the exported session key.</summary>
    public NtlmSealer(ReadOnlySpan<byte> exportedSessionKey, NtlmNegotiateFlags flags, bool clientToServer)
    {
        _signKey = NtlmV2.SignKey(exportedSessionKey, clientToServer);
        _seal = new Rc4(NtlmV2.SealKey(exportedSessionKey, flags, clientToServer));
        _keyExchange = flags.HasFlag(NtlmNegotiateFlags.KeyExchange);
    }

    /// <summary>Seals <paramref name="message"/>: returns signature (16 bytes) ‖ sealed message, as CredSSP sends it.</summary>
    public byte[] Seal(ReadOnlySpan<byte> message)
    {
        var output = new byte[SignatureSize + message.Length];
        _seal.Transform(message, output.AsSpan(SignatureSize));
        Sign(message, output.AsSpan(0, SignatureSize));
        return output;
    }

    /// <summary>
    /// Unseals signature ‖ sealed message from the peer; returns the plaintext, or null when the signature does not
    /// match (constant-time) or the input is shorter than a signature.
    /// </summary>
    public byte[]? Unseal(ReadOnlySpan<byte> signatureAndMessage)
    {
        if (signatureAndMessage.Length < SignatureSize)
        {
            return null;
        }

        var plaintext = new byte[signatureAndMessage.Length - SignatureSize];
        _seal.Transform(signatureAndMessage[SignatureSize..], plaintext);
        Span<byte> expected = stackalloc byte[SignatureSize];
        Sign(plaintext, expected);
        return CryptographicOperations.FixedTimeEquals(expected, signatureAndMessage[..SignatureSize]) ? plaintext : null;
    }

    /// <summary>GSS_GetMIC: the 16-byte signature of <paramref name="message"/> without sealing it (SPNEGO mechListMIC).</summary>
    public byte[] ComputeSignature(ReadOnlySpan<byte> message)
    {
        var signature = new byte[SignatureSize];
        Sign(message, signature);
        return signature;
    }

    /// <summary>GSS_VerifyMIC: true when <paramref name="signature"/> signs <paramref name="message"/> at this sequence number (constant-time).</summary>
    public bool VerifySignature(ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        Span<byte> expected = stackalloc byte[SignatureSize];
        Sign(message, expected);
        return CryptographicOperations.FixedTimeEquals(expected, signature);
    }

    private void Sign(ReadOnlySpan<byte> message, Span<byte> signature)
    {
        var input = new byte[4 + message.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(input, _sequence);
        message.CopyTo(input.AsSpan(4));
        var mac = HMACMD5.HashData(_signKey, input);
        BinaryPrimitives.WriteUInt32LittleEndian(signature, 1);
        if (_keyExchange)
        {
            _seal.Transform(mac.AsSpan(0, 8), signature.Slice(4, 8));
        }
        else
        {
            mac.AsSpan(0, 8).CopyTo(signature[4..]);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(signature[12..], _sequence);
        _sequence = unchecked(_sequence + 1);
    }
}
