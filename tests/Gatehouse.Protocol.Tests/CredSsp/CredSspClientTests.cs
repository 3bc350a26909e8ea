using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Protocol.Tests.CredSsp;

public sealed class CredSspClientTests
{
    [Fact]
    public void Start_SendsVersion6SpnegoNegotiateAndNonce()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        Assert.True(TsRequest.TryParse(client.Start(), out var request, out var error), error?.ToString());
        Assert.Equal(6, request.Version);
        Assert.Equal(Enumerable.Repeat((byte)0x11, 32), request.ClientNonce.ToArray());
        Assert.True(SpnegoToken.TryParse(request.NegoTokens[0], out var init, out _));
        Assert.True(init.IsInit);
        Assert.Equal([SpnegoToken.NtlmOid], init.MechTypes);
        Assert.True(NtlmNegotiateMessage.TryParse(init.MechToken, out var negotiate, out _));
        Assert.Equal(CredSspClient.NegotiateFlags, negotiate.Flags);
        Assert.Equal(CredSspClientState.WaitingForChallenge, client.State);
    }

    /// <summary>
    /// [MS-NLMP] 4.2.4: the 4.2.4.3 CHALLENGE (no timestamp) answered with client challenge aa×8, time 0 and random
    /// session key 55×16 gives the spec's LMv2 response, NTProofStr and encrypted session key.
    /// </summary>
    [Fact]
    public void Step_SpecChallenge_AuthenticateMatchesSpec_4_2_4()
    {
        var settings = new CredSspClientSettings("Domain", "User", "Password", CredSspClientCorpus.SubjectPublicKey) { SuppressExtendedProtection = true, Workstation = "COMPUTER", UseSpnego = true };
        var client = new CredSspClient(settings, CredSspClientCorpus.Random());
        client.Start();
        var challenge = new TsRequest(6, [SpnegoToken.Response(NegState.AcceptIncomplete, SpnegoToken.NtlmOid, NtlmCorpus.Challenge, null).Encode()]).Encode();

        var step = client.Step(challenge);

        Assert.False(step.Failed, step.Error?.ToString());
        Assert.True(TsRequest.TryParse(step.Output, out var third, out _));
        Assert.True(SpnegoToken.TryParse(third.NegoTokens[0], out var resp, out _));
        Assert.True(NtlmAuthenticateMessage.TryParse(resp.MechToken, out var authenticate, out var error), error?.ToString());
        Assert.Equal("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa", Hex(authenticate.LmChallengeResponse));   // 4.2.4.2.1
        Assert.Equal("68cd0ab851e51c96aabc927bebef6a1c", Hex(authenticate.NtChallengeResponse[..16]));             // 4.2.4.2.2
        Assert.Equal("c5dad2544fc9799094ce1ce90bc9d03e", Hex(authenticate.EncryptedRandomSessionKey));             // 4.2.4.2.3
        Assert.Equal(new byte[16], authenticate.Mic.ToArray()); // No server timestamp: no MIC.
        Assert.Equal(("User", "Domain", "COMPUTER"), (authenticate.UserName, authenticate.DomainName, authenticate.Workstation));
        Assert.True(third.HasPubKeyAuth);
        Assert.True(resp.HasMechListMic);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(5)]
    [InlineData(4)]
    [InlineData(2)]
    public void FullExchange_WithServer_SendsCredentialsOnlyAfterTheServerProvedItself(int serverVersion)
    {
        var (client, server, first) = CredSspClientCorpus.Started(new FakeCredSspServer { Version = serverVersion });
        var third = client.Step(server.Challenge(first)!);
        Assert.False(third.Failed, third.Error?.ToString());
        var answer = server.Answer(third.Output!);
        Assert.True(answer is not null, server.Failure);

        var fourth = client.Step(answer);

        Assert.False(fourth.Failed, fourth.Error?.ToString());
        Assert.Equal(CredSspClientState.Completed, client.State);
        Assert.Equal(Math.Min(6, serverVersion), client.NegotiatedVersion);
        var credentials = server.Credentials(fourth.Output!);
        Assert.NotNull(credentials);
        Assert.Equal(("Domain", "User", "Password"), (credentials.DomainName, credentials.UserName, credentials.Password));
    }

    /// <summary>The default (what the gateway sends hosts): raw NTLM in negoTokens, as FreeRDP's client sends it.</summary>
    [Fact]
    public void Start_ByDefault_SendsRawNtlmNegotiate()
    {
        var client = new CredSspClient(new CredSspClientSettings("Domain", "User", "Password", CredSspClientCorpus.SubjectPublicKey), CredSspClientCorpus.Random());
        Assert.True(TsRequest.TryParse(client.Start(), out var request, out var error), error?.ToString());
        Assert.False(SpnegoToken.LooksLikeSpnego(request.NegoTokens[0]));
        Assert.True(NtlmNegotiateMessage.TryParse(request.NegoTokens[0], out var negotiate, out _));
        Assert.Equal(CredSspClient.NegotiateFlags, negotiate.Flags);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(5)]
    [InlineData(4)]
    [InlineData(2)]
    public void FullExchange_RawNtlm_NoSpnegoAnywhere_SendsCredentialsOnlyAfterTheServerProvedItself(int serverVersion)
    {
        var (client, server, first) = CredSspClientCorpus.Started(new FakeCredSspServer { Version = serverVersion }, spnego: false);
        var third = client.Step(server.Challenge(first)!);
        Assert.False(third.Failed, third.Error?.ToString());
        Assert.True(TsRequest.TryParse(third.Output!, out var authenticate, out _));
        Assert.True(NtlmAuthenticateMessage.TryParse(authenticate.NegoTokens[0], out _, out _), "the AUTHENTICATE is sent raw");
        var answer = server.Answer(third.Output!);
        Assert.True(answer is not null, server.Failure);

        var fourth = client.Step(answer);

        Assert.False(fourth.Failed, fourth.Error?.ToString());
        Assert.Equal(CredSspClientState.Completed, client.State);
        var credentials = server.Credentials(fourth.Output!);
        Assert.NotNull(credentials);
        Assert.Equal(("Domain", "User", "Password"), (credentials.DomainName, credentials.UserName, credentials.Password));
    }

    [Fact]
    public void ServerChangingItsVersion_BetweenMessages_IsRefused_BeforeTheCredentials()
    {
        var (client, server, first) = CredSspClientCorpus.Started(new FakeCredSspServer { Version = 6 }, spnego: false);
        var third = client.Step(server.Challenge(first)!);
        Assert.True(TsRequest.TryParse(server.Answer(third.Output!)!, out var answer, out _));
        var downgraded = new TsRequest(4, pubKeyAuth: answer.PubKeyAuth.ToArray()).Encode();

        var step = client.Step(downgraded);

        Assert.True(step.Failed);
        Assert.Null(step.Output);
        Assert.Contains("changed its CredSSP version from 6 to 4", step.Error!.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ChallengeWithout128BitKeys_IsUnsupported()
    {
        var (client, server, first) = CredSspClientCorpus.Started(spnego: false);
        Assert.True(TsRequest.TryParse(server.Challenge(first)!, out var request, out _));
        var challenge = request.NegoTokens[0];
        var flags = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(challenge.AsSpan(20)) & ~(uint)Gatehouse.Protocol.Ntlm.NtlmNegotiateFlags.Negotiate128;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(challenge.AsSpan(20), flags);

        var step = client.Step(new TsRequest(request.Version, [challenge]).Encode());

        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.Unsupported, step.Error!.Kind);
        Assert.Contains("128-bit", step.Error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RawNtlm_ServerAnswerWithAnotherNegoToken_IsRefused_BeforeTheCredentials()
    {
        var (client, server, first) = CredSspClientCorpus.Started(spnego: false);
        var third = client.Step(server.Challenge(first)!);
        Assert.True(TsRequest.TryParse(server.Answer(third.Output!)!, out var answer, out _));
        var withToken = new TsRequest(answer.Version, [[1, 2, 3]], pubKeyAuth: answer.PubKeyAuth.ToArray()).Encode();

        var step = client.Step(withToken);

        Assert.True(step.Failed);
        Assert.Null(step.Output);
        Assert.Equal(CredSspClientFailure.Malformed, step.Error!.Kind);
    }

    [Fact]
    public void FullExchange_ServerWithoutMechListMic_Completes()
    {
        // FreeRDP's shadow server answers AUTHENTICATE with pubKeyAuth alone.
        var (client, server, first) = CredSspClientCorpus.Started(new FakeCredSspServer { SendMechListMic = false });
        var third = client.Step(server.Challenge(first)!);
        var fourth = client.Step(server.Answer(third.Output!)!);
        Assert.False(fourth.Failed, fourth.Error?.ToString());
        Assert.Equal(CredSspClientState.Completed, client.State);
    }

    [Fact]
    public void Authenticate_WithServerTimestamp_CarriesAVerifiableMicAndZeroLmResponse()
    {
        var (client, server, first) = CredSspClientCorpus.Started();
        var third = client.Step(server.Challenge(first)!);
        Assert.True(TsRequest.TryParse(third.Output, out var request, out _));
        Assert.True(SpnegoToken.TryParse(request.NegoTokens[0], out var resp, out _));
        Assert.True(NtlmAuthenticateMessage.TryParse(resp.MechToken, out var authenticate, out _));
        Assert.Equal(new byte[24], authenticate.LmChallengeResponse.ToArray());
        Assert.True(AvPairs.TryParse(NtlmV2.ClientTargetInfo(authenticate.NtChallengeResponse), out var pairs, out _));
        Assert.Equal(AvPairs.MicPresentFlag, pairs.Flags);
        Assert.Equal("TERMSRV/vm1", Encoding.Unicode.GetString(pairs.Find(AvId.TargetName)!));
        Assert.Equal(new byte[16], pairs.Find(AvId.ChannelBindings));
        Assert.Equal(CredSspClientCorpus.ServerTime, NtlmV2.ClientTimestamp(authenticate.NtChallengeResponse));

        // The server-side check fails when one byte of the message changes (the MIC covers it).
        Assert.NotNull(server.Answer(third.Output!));
    }

    [Fact]
    public void ServerBoundToAnotherTlsKey_IsAManInTheMiddle_NoCredentials()
    {
        // Arrange: a server that holds the session key but saw another TLS key than the client (the client's TLS ends at
        // an interceptor). The exchange is deterministic, so its answer is sealed with the key this client derives.
        var otherKey = CredSspClientCorpus.SubjectPublicKey.ToArray();
        otherKey[^6] ^= 0xFF;
        var elsewhere = new CredSspClient(CredSspClientCorpus.Settings(key: otherKey), CredSspClientCorpus.Random());
        var server = new FakeCredSspServer { SubjectPublicKey = otherKey };
        var answerForOtherKey = server.Answer(elsewhere.Step(server.Challenge(elsewhere.Start())!).Output!)!;

        // Act
        var step = ClientSeeingKey(CredSspClientCorpus.SubjectPublicKey, answerForOtherKey);

        // Assert
        Assert.True(step.Failed);
        Assert.Null(step.Output);
        Assert.Equal(CredSspClientFailure.ServerNotAuthenticated, step.Error.Kind);
        Assert.Contains("man in the middle", step.Error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ServerBindingEchoesTheClientValue_IsRefused()
    {
        // A reflected pubKeyAuth (the client's own value) must not pass for the server's.
        var (client, server, first) = CredSspClientCorpus.Started();
        var third = client.Step(server.Challenge(first)!);
        Assert.True(TsRequest.TryParse(third.Output, out var request, out _));
        var reflected = new TsRequest(6, pubKeyAuth: request.PubKeyAuth.ToArray()).Encode();

        var step = client.Step(reflected);

        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.ServerNotAuthenticated, step.Error.Kind);
        Assert.Equal(CredSspClientState.Failed, client.State);
    }

    [Fact]
    public void WrongPassword_ServerErrorCode_IsTypedWithTheNtStatus()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(password: "Wrong"), CredSspClientCorpus.Random());
        var server = new FakeCredSspServer();
        var third = client.Step(server.Challenge(client.Start())!);

        var step = client.Step(server.Answer(third.Output!)!);

        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.ServerError, step.Error.Kind);
        Assert.Equal(NtStatus.LogonFailure, step.Error.Status);
        Assert.Equal("authenticate", step.Error.Stage);
        Assert.Contains("STATUS_LOGON_FAILURE", step.Error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorCodeAnsweringNegotiate_IsServerErrorAtNegotiate()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        client.Start();
        var step = client.Step(CredSspCorpus.LogonFailure);
        Assert.True(step.Failed);
        Assert.Equal((CredSspClientFailure.ServerError, 0xC000006Du, "negotiate"), (step.Error.Kind, step.Error.Status, step.Error.Stage));
    }

    [Theory]
    [InlineData("")]
    [InlineData("30")]
    [InlineData("3003020106")]
    [InlineData("300ba003020106a1043002300004")]
    public void MalformedServerMessage_IsMalformed(string hex)
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        client.Start();
        var step = client.Step(Convert.FromHexString(hex));
        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.Malformed, step.Error.Kind);
    }

    [Fact]
    public void ChallengeWithoutExtendedSessionSecurity_IsUnsupported()
    {
        var flags = NtlmNegotiateFlags.Unicode | NtlmNegotiateFlags.Ntlm | NtlmNegotiateFlags.Sign | NtlmNegotiateFlags.Seal;
        var challenge = new NtlmChallengeMessage(flags, FakeCredSspServer.ServerChallenge, [], new AvPairs([])).ToArray();
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        client.Start();
        var step = client.Step(new TsRequest(6, [SpnegoToken.Response(NegState.AcceptIncomplete, SpnegoToken.NtlmOid, challenge, null).Encode()]).Encode());
        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.Unsupported, step.Error.Kind);
    }

    [Fact]
    public void SpnegoReject_IsUnsupported()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        client.Start();
        var step = client.Step(new TsRequest(6, [SpnegoToken.Response(NegState.Reject, null, null, null).Encode()]).Encode());
        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.Unsupported, step.Error.Kind);
    }

    [Fact]
    public void TamperedServerBinding_IsRefused()
    {
        var (client, server, first) = CredSspClientCorpus.Started();
        var third = client.Step(server.Challenge(first)!);
        Assert.True(TsRequest.TryParse(server.Answer(third.Output!), out var answer, out _));
        var pubKeyAuth = answer.PubKeyAuth.ToArray();
        pubKeyAuth[^1] ^= 1;

        var step = client.Step(new TsRequest(answer.Version, answer.NegoTokens, pubKeyAuth: pubKeyAuth).Encode());

        Assert.True(step.Failed);
        Assert.Equal(CredSspClientFailure.ServerNotAuthenticated, step.Error.Kind);
    }

    [Fact]
    public void Step_InWrongState_Throws()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        Assert.Throws<InvalidOperationException>(() => client.Step(CredSspCorpus.LogonFailure));
        client.Start();
        Assert.Throws<InvalidOperationException>(() => client.Start());
        client.Step(CredSspCorpus.LogonFailure);
        Assert.Throws<InvalidOperationException>(() => client.Step(CredSspCorpus.LogonFailure));
    }

    private static CredSspClientStep ClientSeeingKey(byte[] key, byte[] serverAnswer)
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(key: key), CredSspClientCorpus.Random());
        var server = new FakeCredSspServer { SubjectPublicKey = key };
        var third = client.Step(server.Challenge(client.Start())!);
        Assert.False(third.Failed);
        return client.Step(serverAnswer);
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
