using System.Buffers;
using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Crypto;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Ntlm;

/// <summary>[MS-NLMP] 4.2.4 NTLMv2 vectors: User / Domain / Password, server challenge 0123456789abcdef, client challenge aa×8.</summary>
public sealed class NtlmV2Tests
{
    private static readonly byte[] ServerChallenge = Convert.FromHexString("0123456789abcdef");
    private static readonly byte[] ClientChallenge = Convert.FromHexString("aaaaaaaaaaaaaaaa");
    private static readonly byte[] RandomSessionKey = Convert.FromHexString("55555555555555555555555555555555");

    [Fact]
    public void NtOwfV2_MatchesSpec_4_2_4_1_1() =>
        Assert.Equal("0c868a403bfd7a93a3001ef22ef02e3f", Hex(NtlmV2.NtOwfV2(NtlmV2.NtHash("Password"), "User", "Domain")));

    [Fact]
    public void NtOwfV2_UpperCasesTheUserButNotTheDomain()
    {
        var hash = NtlmV2.NtHash("Password");
        Assert.Equal(NtlmV2.NtOwfV2(hash, "user", "Domain"), NtlmV2.NtOwfV2(hash, "USER", "Domain"));
        Assert.NotEqual(NtlmV2.NtOwfV2(hash, "User", "domain"), NtlmV2.NtOwfV2(hash, "User", "Domain"));
    }

    [Fact]
    public void ClientBlob_MatchesSpec_4_2_4_1_3()
    {
        var temp = NtlmV2.ClientBlob(0, ClientChallenge, NtlmCorpus.TargetInfo);
        Assert.Equal(
            "0101000000000000" + "0000000000000000" + "aaaaaaaaaaaaaaaa" + "00000000" + Hex(NtlmCorpus.TargetInfo) + "00000000",
            Hex(temp));
    }

    [Fact]
    public void ComputeResponse_MatchesSpecProofAndSessionBaseKey()
    {
        var key = NtlmV2.NtOwfV2(NtlmV2.NtHash("Password"), "User", "Domain");
        var temp = NtlmV2.ClientBlob(0, ClientChallenge, NtlmCorpus.TargetInfo);
        var (response, sessionBaseKey) = NtlmV2.ComputeResponse(key, ServerChallenge, temp);
        Assert.Equal("68cd0ab851e51c96aabc927bebef6a1c", Hex(response.AsSpan(0, 16)));         // 4.2.4.2.2
        Assert.Equal("8de40ccadbc14a82f15cb0ad0de95ca3", Hex(sessionBaseKey));                  // 4.2.4.1.2
        Assert.Equal(temp, response[16..]);
        Assert.Equal(sessionBaseKey, NtlmV2.VerifyResponse(NtlmV2.NtHash("Password"), "User", "Domain", ServerChallenge, response));
    }

    [Fact]
    public void LmV2Response_MatchesSpec_4_2_4_2_1()
    {
        var key = NtlmV2.NtOwfV2(NtlmV2.NtHash("Password"), "User", "Domain");
        Assert.Equal("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa", Hex(NtlmV2.LmV2Response(key, ServerChallenge, ClientChallenge)));
    }

    [Fact]
    public void EncryptedRandomSessionKey_MatchesSpec_4_2_4_2_3()
    {
        var sessionBaseKey = Convert.FromHexString("8de40ccadbc14a82f15cb0ad0de95ca3");
        var encrypted = Rc4.Transform(sessionBaseKey, RandomSessionKey);
        Assert.Equal("c5dad2544fc9799094ce1ce90bc9d03e", Hex(encrypted));
        Assert.Equal(RandomSessionKey, NtlmV2.ExportedSessionKey(sessionBaseKey, encrypted, NtlmNegotiateFlags.KeyExchange));
        Assert.Equal(sessionBaseKey, NtlmV2.ExportedSessionKey(sessionBaseKey, encrypted, NtlmNegotiateFlags.None));
    }

    [Fact]
    public void Sealer_MatchesSpec_4_2_4_4_GssWrap()
    {
        Assert.True(NtlmChallengeMessage.TryParse(NtlmCorpus.Challenge, out var challenge, out _));
        var sealer = new NtlmSealer(RandomSessionKey, challenge.Flags, clientToServer: true);
        var output = sealer.Seal(Encoding.Unicode.GetBytes("Plaintext"));
        Assert.Equal("010000007fb38ec5c55d497600000000", Hex(output.AsSpan(0, 16)));
        Assert.Equal("54e50165bf1936dc996020c1811b0f06fb5f", Hex(output.AsSpan(16)));

        var receiver = new NtlmSealer(RandomSessionKey, challenge.Flags, clientToServer: true);
        Assert.Equal(Encoding.Unicode.GetBytes("Plaintext"), receiver.Unseal(output));
    }

    [Fact]
    public void Sealer_SequenceAndTampering()
    {
        var flags = NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.ExtendedSessionSecurity | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.Sign;
        var sender = new NtlmSealer(RandomSessionKey, flags, clientToServer: false);
        var receiver = new NtlmSealer(RandomSessionKey, flags, clientToServer: false);
        var first = sender.Seal("one"u8);
        var second = sender.Seal("two"u8);
        Assert.Equal(1u, BitConverter.ToUInt32(second, 12));
        Assert.Equal("one"u8.ToArray(), receiver.Unseal(first));
        var tampered = (byte[])second.Clone();
        tampered[^1] ^= 1;
        Assert.Null(receiver.Unseal(tampered));
        Assert.Null(new NtlmSealer(RandomSessionKey, flags, clientToServer: false).Unseal(new byte[15]));

        // The other direction's keys do not open it.
        Assert.Null(new NtlmSealer(RandomSessionKey, flags, clientToServer: true).Unseal(sender.Seal("x"u8)));
    }

    [Fact]
    public void SealKey_WeakerKeyLengths_UseFewerKeyBytes()
    {
        var key128 = NtlmV2.SealKey(RandomSessionKey, NtlmNegotiateFlags.Negotiate128, true);
        var key56 = NtlmV2.SealKey(RandomSessionKey, NtlmNegotiateFlags.Negotiate56, true);
        var key40 = NtlmV2.SealKey(RandomSessionKey, NtlmNegotiateFlags.None, true);
        Assert.Equal(3, new[] { Hex(key128), Hex(key56), Hex(key40) }.Distinct().Count());
    }

    [Fact]
    public void AuthenticateWithMic_VerifiesOnTheServerSide()
    {
        Assert.True(NtlmAuthenticateMessage.TryParse(NtlmCorpus.Authenticate, out var message, out var error), error?.ToString());
        Assert.Equal("User", message.UserName);
        Assert.Equal("Domain", message.DomainName);
        Assert.Equal("COMPUTER", message.Workstation);
        Assert.True(message.HasMic);
        Assert.Equal(24, message.LmChallengeResponse.Length);
        Assert.Equal(138, message.NtChallengeResponse.Length);

        var sessionBaseKey = NtlmV2.VerifyResponse(NtlmV2.NtHash("Password"), message.UserName, message.DomainName, ServerChallenge, message.NtChallengeResponse);
        Assert.NotNull(sessionBaseKey);
        Assert.Equal("623dbd071be7a530b6a95c2eb4982470", Hex(sessionBaseKey));
        var exported = NtlmV2.ExportedSessionKey(sessionBaseKey, message.EncryptedRandomSessionKey, message.Flags);
        Assert.True(NtlmV2.VerifyMic(exported, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, message.Raw));
        Assert.Equal("f7361633f0ad9bdf4a7c421bc6b824a3", Hex(NtlmV2.ComputeMic(exported, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, message.Raw)));
        Assert.Equal(131400439870000000, NtlmV2.ClientTimestamp(message.NtChallengeResponse));
        Assert.True(AvPairs.TryParse(NtlmV2.ClientTargetInfo(message.NtChallengeResponse), out var pairs, out _));
        Assert.Equal(AvPairs.MicPresentFlag, pairs.Flags);
        Assert.Equal("HTTP/Server", Encoding.Unicode.GetString(pairs.Find(AvId.TargetName)!));
    }

    [Theory]
    [InlineData("Passw0rd", "User", "Domain")]
    [InlineData("Password", "Other", "Domain")]
    [InlineData("Password", "User", "Elsewhere")]
    public void VerifyResponse_WrongSecretOrName_Fails(string password, string user, string domain)
    {
        Assert.True(NtlmAuthenticateMessage.TryParse(NtlmCorpus.Authenticate, out var message, out _));
        Assert.Null(NtlmV2.VerifyResponse(NtlmV2.NtHash(password), user, domain, ServerChallenge, message.NtChallengeResponse));
    }

    [Fact]
    public void VerifyResponse_OtherChallengeOrTamperedBlob_Fails()
    {
        Assert.True(NtlmAuthenticateMessage.TryParse(NtlmCorpus.Authenticate, out var message, out _));
        var hash = NtlmV2.NtHash("Password");
        Assert.Null(NtlmV2.VerifyResponse(hash, "User", "Domain", Convert.FromHexString("0123456789abcdee"), message.NtChallengeResponse));
        var blob = message.NtChallengeResponse.ToArray();
        blob[40] ^= 0x80;
        Assert.Null(NtlmV2.VerifyResponse(hash, "User", "Domain", ServerChallenge, blob));
        Assert.Null(NtlmV2.VerifyResponse(hash, "User", "Domain", ServerChallenge, blob.AsSpan(0, 43)));
        Assert.Null(NtlmV2.VerifyResponse(hash, "User", "Domain", ServerChallenge, new byte[24]));
    }

    [Fact]
    public void VerifyMic_TamperedMessage_Fails()
    {
        Assert.True(NtlmAuthenticateMessage.TryParse(NtlmCorpus.Authenticate, out var message, out _));
        var key = NtlmV2.VerifyResponse(NtlmV2.NtHash("Password"), "User", "Domain", ServerChallenge, message.NtChallengeResponse)!;
        var raw = message.Raw.ToArray();
        raw[^1] ^= 1;
        Assert.False(NtlmV2.VerifyMic(key, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, raw));
        Assert.False(NtlmV2.VerifyMic(key, NtlmCorpus.Negotiate.AsSpan(0, 31), NtlmCorpus.Challenge, message.Raw));
        Assert.False(NtlmV2.VerifyMic(key, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, raw.AsSpan(0, 80)));
    }

    [Fact]
    public void ClientSide_BuildsAnAuthenticateTheServerSideAccepts()
    {
        // What the gateway does as CredSSP client towards an NLA host, checked by the server half.
        Assert.True(NtlmChallengeMessage.TryParse(NtlmCorpus.Challenge, out var challenge, out _));
        var key = NtlmV2.NtOwfV2(NtlmV2.NtHash("Sw0rdfish!"), "gh-admin", "VM1");
        var temp = NtlmV2.ClientBlob(133_000_000_000_000_000, ClientChallenge, challenge.TargetInfo!.With(AvId.Flags, [2, 0, 0, 0]).ToArray());
        var (nt, sessionBaseKey) = NtlmV2.ComputeResponse(key, challenge.ServerChallenge, temp);
        var encryptedKey = Rc4.Transform(sessionBaseKey, RandomSessionKey);
        var message = new NtlmAuthenticateMessage(challenge.Flags, new byte[24], nt, "VM1", "gh-admin", "GATEHOUSE", encryptedKey, Convert.FromHexString("0a00614a0000000f"));
        var mic = NtlmV2.ComputeMic(RandomSessionKey, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, message.ToArray());
        var bytes = message.WithMic(mic).ToArray();

        Assert.True(NtlmAuthenticateMessage.TryParse(bytes, out var parsed, out var error), error?.ToString());
        var serverKey = NtlmV2.VerifyResponse(NtlmV2.NtHash("Sw0rdfish!"), parsed.UserName, parsed.DomainName, challenge.ServerChallenge, parsed.NtChallengeResponse);
        Assert.Equal(sessionBaseKey, serverKey);
        var exported = NtlmV2.ExportedSessionKey(serverKey!, parsed.EncryptedRandomSessionKey, parsed.Flags);
        Assert.Equal(RandomSessionKey, exported);
        Assert.True(NtlmV2.VerifyMic(exported, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, parsed.Raw));
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}

public sealed class NtlmMessageTests
{
    [Fact]
    public void Challenge_SpecExample_ParsesAndRoundTrips()
    {
        Assert.True(NtlmChallengeMessage.TryParse(NtlmCorpus.Challenge, out var message, out var error), error?.ToString());
        Assert.Equal(0xe28a8233u, (uint)message.Flags);
        Assert.Equal("0123456789abcdef", Convert.ToHexStringLower(message.ServerChallenge));
        Assert.Equal("Server", Encoding.Unicode.GetString(message.TargetName));
        Assert.Equal("060070170000000f", Convert.ToHexStringLower(message.Version));
        Assert.Equal(2, message.TargetInfo!.Pairs.Count);
        Assert.Equal("Domain", Encoding.Unicode.GetString(message.TargetInfo.Find(AvId.NbDomainName)!));
        Assert.Equal("Server", Encoding.Unicode.GetString(message.TargetInfo.Find(AvId.NbComputerName)!));
        Assert.Null(message.TargetInfo.Timestamp);
        Assert.Equal(NtlmCorpus.Challenge, message.ToArray());
    }

    [Fact]
    public void Negotiate_RoundTrips()
    {
        Assert.True(NtlmNegotiateMessage.TryParse(NtlmCorpus.Negotiate, out var message, out var error), error?.ToString());
        Assert.Equal(0x00088207u, (uint)message.Flags);
        Assert.True(message.Version.IsEmpty);
        Assert.Equal(NtlmCorpus.Negotiate, Write(message.Write, message.Size));
    }

    [Fact]
    public void Negotiate_WithVersionAndNames_RoundTrips()
    {
        var message = new NtlmNegotiateMessage(NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.Version | NtlmNegotiateFlags.OemDomainSupplied, "DOM"u8, "WS"u8, Convert.FromHexString("0a00614a0000000f"));
        var bytes = Write(message.Write, message.Size);
        Assert.True(NtlmNegotiateMessage.TryParse(bytes, out var parsed, out _));
        Assert.Equal("DOM"u8.ToArray(), parsed.DomainName.ToArray());
        Assert.Equal("WS"u8.ToArray(), parsed.Workstation.ToArray());
        Assert.Equal("0a00614a0000000f", Convert.ToHexStringLower(parsed.Version));
        Assert.Equal(bytes, Write(parsed.Write, parsed.Size));
    }

    [Fact]
    public void Authenticate_RoundTripsByteExact()
    {
        Assert.True(NtlmAuthenticateMessage.TryParse(NtlmCorpus.Authenticate, out var message, out _));
        Assert.Equal(NtlmCorpus.Authenticate, message.ToArray());
    }

    [Fact]
    public void TryReadType_Dispatches()
    {
        Assert.True(NtlmMessage.TryReadType(NtlmCorpus.Challenge, out var type, out _));
        Assert.Equal(NtlmMessage.ChallengeType, type);
        Assert.False(NtlmMessage.TryReadType("NTLMSSP"u8.ToArray(), out _, out var error));
        Assert.Equal(PduErrorKind.NotEnoughBytes, error!.Kind);
    }

    [Fact]
    public void AvPairs_WithReplacesOrAppends()
    {
        Assert.True(AvPairs.TryParse(NtlmCorpus.TargetInfo, out var pairs, out _));
        var stamped = pairs.With(AvId.Timestamp, new byte[] { 1, 0, 0, 0, 0, 0, 0, 0 });
        Assert.Equal(1, stamped.Timestamp);
        Assert.Equal(3, stamped.Pairs.Count);
        Assert.Equal(2, stamped.With(AvId.Timestamp, new byte[8]).Pairs.Count(p => p.Id != AvId.Timestamp));
        Assert.Equal(0u, pairs.Flags);
        Assert.Throws<ArgumentException>(() => new AvPairs([(AvId.Eol, Array.Empty<byte>())]));
    }

    private static byte[] Write(Action<IBufferWriter<byte>> write, int size)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        Assert.Equal(size, buffer.WrittenCount);
        return buffer.WrittenSpan.ToArray();
    }
}
