using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.CredSsp;

public sealed class CredSspTests
{
    [Fact]
    public void TsRequest_NegotiateWithNonce_ParsesAndEncodesByteExact()
    {
        Assert.True(TsRequest.TryParse(CredSspCorpus.NegotiateRequest, out var request, out var error), error?.ToString());
        Assert.Equal(6, request.Version);
        Assert.Single(request.NegoTokens);
        Assert.Equal(NtlmCorpus.Negotiate, request.NegoTokens[0]);
        Assert.Equal(Enumerable.Repeat((byte)0x11, 32).ToArray(), request.ClientNonce.ToArray());
        Assert.False(request.HasAuthInfo);
        Assert.False(request.HasPubKeyAuth);
        Assert.Null(request.ErrorCode);
        Assert.Equal(CredSspCorpus.NegotiateRequest, request.Encode());
    }

    [Fact]
    public void TsRequest_ErrorCode_IsANegativeDerIntegerReadAsNtStatus()
    {
        Assert.True(TsRequest.TryParse(CredSspCorpus.LogonFailure, out var request, out _));
        Assert.Equal(0xC000006Du, request.ErrorCode);
        Assert.Equal(CredSspCorpus.LogonFailure, new TsRequest(6, errorCode: 0xC000006D).Encode());
    }

    [Fact]
    public void TsRequest_AllFields_RoundTrip()
    {
        var request = new TsRequest(6, [[1, 2], [3]], authInfo: [4, 5, 6], pubKeyAuth: new byte[300], errorCode: 0, clientNonce: new byte[32]);
        var bytes = request.Encode();
        Assert.True(TsRequest.TryParse(bytes, out var parsed, out var error), error?.ToString());
        Assert.Equal(2, parsed.NegoTokens.Count);
        Assert.Equal([4, 5, 6], parsed.AuthInfo.ToArray());
        Assert.Equal(300, parsed.PubKeyAuth.Length);
        Assert.Equal(0u, parsed.ErrorCode);
        Assert.Equal(bytes, parsed.Encode());
        Assert.True(TsRequest.TryGetFrameLength(bytes, out var length, out _));
        Assert.Equal(bytes.Length, length);
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("30", 0)]
    [InlineData("30 82 01", 0)]
    [InlineData("30 0b a0 03", 13)]
    [InlineData("30 82 01 00", 260)]
    public void TsRequest_FrameLength_FromTheDerHeader(string hex, int expected)
    {
        Assert.True(TsRequest.TryGetFrameLength(Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal)), out var length, out var error), error?.ToString());
        Assert.Equal(expected, length);
    }

    [Theory]
    [InlineData("31 00", PduErrorKind.InvalidField)]
    [InlineData("30 80", PduErrorKind.InvalidField)]
    [InlineData("30 84 00 00 00 10", PduErrorKind.InvalidField)]
    [InlineData("30 83 01 00 00", PduErrorKind.TooLarge)]
    public void TsRequest_FrameLength_BadHeaders(string hex, PduErrorKind kind)
    {
        Assert.False(TsRequest.TryGetFrameLength(Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal)), out _, out var error));
        Assert.Equal(kind, error!.Kind);
    }

    [Fact]
    public void TsCredentials_Password_ParsesAndEncodesByteExact()
    {
        Assert.True(TsCredentials.TryParse(CredSspCorpus.PasswordCredentials, out var credentials, out var error), error?.ToString());
        Assert.Equal("Domain", credentials.DomainName);
        Assert.Equal("User", credentials.UserName);
        Assert.Equal("Password", credentials.Password);
        Assert.DoesNotContain("s3cr3t!", new TsCredentials("D", "U", "s3cr3t!").ToString(), StringComparison.Ordinal);
        Assert.Equal(CredSspCorpus.PasswordCredentials, credentials.Encode());
    }

    [Fact]
    public void PublicKeyBinding_Version6_HashesWithTheMagicStrings()
    {
        var nonce = Enumerable.Repeat((byte)0x11, 32).ToArray();
        var key = Convert.FromHexString("3082010a0282010100c0ffee");
        var client = PublicKeyBinding.ClientValue(6, nonce, key);
        var expected = System.Security.Cryptography.SHA256.HashData([.. "CredSSP Client-To-Server Binding Hash\0"u8, .. nonce, .. key]);
        Assert.Equal(expected, client);
        var server = PublicKeyBinding.ServerValue(6, nonce, key);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData([.. "CredSSP Server-To-Client Binding Hash\0"u8, .. nonce, .. key]), server);
        Assert.True(PublicKeyBinding.Matches(client, expected));
        Assert.False(PublicKeyBinding.Matches(server, expected));
    }

    [Fact]
    public void PublicKeyBinding_Version4_IsTheKeyAndTheKeyPlusOne()
    {
        var key = Convert.FromHexString("ff0102");
        Assert.Equal(key, PublicKeyBinding.ClientValue(4, default, key));
        Assert.Equal(Convert.FromHexString("000102"), PublicKeyBinding.ServerValue(2, default, key));
        Assert.Empty(PublicKeyBinding.ServerValue(3, default, []));
    }

    [Fact]
    public void SealedCredentials_TravelThroughNtlmSealing()
    {
        var key = Convert.FromHexString("55555555555555555555555555555555");
        var flags = NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.ExtendedSessionSecurity | NtlmNegotiateFlags.Seal | NtlmNegotiateFlags.Sign;
        var client = new NtlmSealer(key, flags, clientToServer: true);
        var server = new NtlmSealer(key, flags, clientToServer: true);
        var pubKeyAuth = client.Seal(PublicKeyBinding.ClientValue(6, new byte[32], [1, 2, 3]));
        var authInfo = client.Seal(new TsCredentials("VM1", "gh-admin", "Sw0rdfish!").Encode());
        Assert.Equal(PublicKeyBinding.ClientValue(6, new byte[32], [1, 2, 3]), server.Unseal(pubKeyAuth));
        Assert.True(TsCredentials.TryParse(server.Unseal(authInfo), out var credentials, out _));
        Assert.Equal("gh-admin", credentials.UserName);
    }

    [Fact]
    public void Spnego_NegTokenInit_ParsesAndEncodesByteExact()
    {
        Assert.True(SpnegoToken.TryParse(CredSspCorpus.NegTokenInit, out var token, out var error), error?.ToString());
        Assert.True(token.IsInit);
        Assert.Equal([SpnegoToken.NtlmOid], token.MechTypes);
        Assert.Equal(NtlmCorpus.Negotiate, token.MechToken.ToArray());
        Assert.Equal(SpnegoToken.EncodeMechTypes([SpnegoToken.NtlmOid]), token.MechTypesDer.ToArray());
        Assert.Equal(CredSspCorpus.NegTokenInit, SpnegoToken.Init([SpnegoToken.NtlmOid], NtlmCorpus.Negotiate).Encode());
        Assert.True(SpnegoToken.LooksLikeSpnego(CredSspCorpus.NegTokenInit));
        Assert.False(SpnegoToken.LooksLikeSpnego(NtlmCorpus.Negotiate));
    }

    [Fact]
    public void Spnego_NegTokenResp_ParsesAndEncodesByteExact()
    {
        Assert.True(SpnegoToken.TryParse(CredSspCorpus.NegTokenResp, out var token, out var error), error?.ToString());
        Assert.False(token.IsInit);
        Assert.Equal(NegState.AcceptIncomplete, token.State);
        Assert.Equal(SpnegoToken.NtlmOid, token.SupportedMech);
        Assert.Equal([1, 2, 3, 4], token.MechToken.ToArray());
        Assert.False(token.HasMechListMic);
        Assert.Equal(CredSspCorpus.NegTokenResp, token.Encode());
        var final = SpnegoToken.Response(NegState.AcceptCompleted, null, null, new byte[16]);
        Assert.True(SpnegoToken.TryParse(final.Encode(), out var parsed, out _));
        Assert.Equal(NegState.AcceptCompleted, parsed.State);
        Assert.Equal(16, parsed.MechListMic.Length);
        Assert.False(parsed.HasMechToken);
    }

    [Fact]
    public void Sealer_MechListMic_SignsAndVerifies()
    {
        var key = Convert.FromHexString("55555555555555555555555555555555");
        var flags = NtlmNegotiateFlags.KeyExchange | NtlmNegotiateFlags.Negotiate128 | NtlmNegotiateFlags.ExtendedSessionSecurity;
        var mechTypes = SpnegoToken.EncodeMechTypes([SpnegoToken.NtlmOid]);
        var mic = new NtlmSealer(key, flags, true).ComputeSignature(mechTypes);
        Assert.True(new NtlmSealer(key, flags, true).VerifySignature(mechTypes, mic));
        Assert.False(new NtlmSealer(key, flags, false).VerifySignature(mechTypes, mic));
    }

    public static TheoryData<string, string> MalformedTsRequests() => new()
    {
        { "empty", "" },
        { "not a sequence", "31 03 a0 01 06" },
        { "trailing bytes", "30 05 a0 03 02 01 06 00" },
        { "missing version", "30 00" },
        { "version 0", "30 05 a0 03 02 01 00" },
        { "version negative", "30 05 a0 03 02 01 ff" },
        { "version too big", "30 0a a0 08 02 06 01 00 00 00 00 00" },
        { "indefinite length", "30 80 a0 03 02 01 06 00 00" },
        { "length past the end", "30 10 a0 03 02 01 06" },
        { "nonce 31 bytes", "3028a003020106a521041f00000000000000000000000000000000000000000000000000000000000000" },
        { "unknown field [6]", "30 0a a0 03 02 01 06 a6 03 02 01 00" },
        { "fields out of order", "30 0d a0 03 02 01 06 a3 02 04 00 a2 02 04 00" },
        { "negoTokens not a sequence", "30 09 a0 03 02 01 06 a1 02 04 00" },
        { "negoToken wrong tag", "30 0d a0 03 02 01 06 a1 06 30 04 30 02 a1 00" },
        { "errorCode 40 bits", "30 0e a0 03 02 01 06 a4 07 02 05 01 00 00 00 00" },
        { "five nego tokens", "30 27 a0 03 02 01 06 a1 20 30 1e 30 04 a0 02 04 00 30 04 a0 02 04 00 30 04 a0 02 04 00 30 04 a0 02 04 00 30 04 a0 02 04 00" },
    };

    [Theory]
    [MemberData(nameof(MalformedTsRequests))]
    public void TsRequest_Malformed_IsRefused(string name, string hex)
    {
        Assert.NotNull(name);
        Malformed.Rejects<TsRequest>(TsRequest.TryParse, Hex.Bytes(hex));
    }

    [Fact]
    public void TsRequest_FiveNegoTokens_IsTooLarge()
    {
        var bytes = new TsRequest(6, [[], [], [], [], []]).Encode();
        Malformed.Rejects<TsRequest>(TsRequest.TryParse, bytes, PduErrorKind.TooLarge);
    }

    [Fact]
    public void TsRequest_Oversized_IsTooLarge() =>
        Malformed.Rejects<TsRequest>(TsRequest.TryParse, new byte[TsRequest.MaxSize + 1], PduErrorKind.TooLarge);

    [Fact]
    public void TsRequest_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<TsRequest>(TsRequest.TryParse, CredSspCorpus.NegotiateRequest);

    [Fact]
    public void TsCredentials_UserLongerThanTheCap_IsTooLarge() =>
        Malformed.Rejects<TsCredentials>(TsCredentials.TryParse, new TsCredentials("D", new string('u', TsCredentials.MaxFieldChars + 1), "p").Encode(), PduErrorKind.TooLarge);

    [Fact]
    public void TsCredentials_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<TsCredentials>(TsCredentials.TryParse, CredSspCorpus.PasswordCredentials);

    public static TheoryData<string, string, PduErrorKind> MalformedCredentials() => new()
    {
        { "smart card", "30 09 a0 03 02 01 02 a1 02 04 00", PduErrorKind.Unsupported },
        { "remote guard", "30 09 a0 03 02 01 06 a1 02 04 00", PduErrorKind.Unsupported },
        { "odd user", "301aa003020101a1130411300fa0020400a103040141a20404024100", PduErrorKind.InvalidField },
        { "credentials not DER", "30 0a a0 03 02 01 01 a1 03 04 01 ff", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(MalformedCredentials))]
    public void TsCredentials_Malformed_IsRefused(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<TsCredentials>(TsCredentials.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string> MalformedSpnego() => new()
    {
        { "empty", "" },
        { "kerberos outer oid", "60 0d 06 09 2a864886f712010202 a0 00" },
        { "neither init nor resp", "a2 02 30 00" },
        { "negState 7", "a1 07 30 05 a0 03 0a 01 07" },
        { "trailing after resp", "a1 02 30 00 00" },
        { "mechTypes not oids", "60 14 06 06 2b0601050502 a0 0a 30 08 a0 06 30 04 04 02 00 00" },
        { "indefinite", "a1 80 30 00 00 00" },
    };

    [Theory]
    [MemberData(nameof(MalformedSpnego))]
    public void Spnego_Malformed_IsRefused(string name, string hex)
    {
        Assert.NotNull(name);
        Malformed.Rejects<SpnegoToken>(SpnegoToken.TryParse, Hex.Bytes(hex));
    }

    [Fact]
    public void Spnego_EveryTruncation_IsRefused()
    {
        Malformed.RejectsEveryTruncation<SpnegoToken>(SpnegoToken.TryParse, CredSspCorpus.NegTokenInit);
        Malformed.RejectsEveryTruncation<SpnegoToken>(SpnegoToken.TryParse, CredSspCorpus.NegTokenResp);
    }
}
