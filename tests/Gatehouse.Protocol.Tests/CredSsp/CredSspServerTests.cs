using System.Buffers.Binary;
using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Protocol.Tests.CredSsp;

/// <summary>
/// <see cref="CredSspServer"/> step by step: the gateway's own <see cref="CredSspClient"/> against it in memory, the
/// [MS-NLMP] 4.2.4 vectors through its verification, every CredSSP version and form, and one test per refusal.
/// </summary>
public sealed class CredSspServerTests
{
    // The loopback: CredSspClient ⇄ CredSspServer, both sans-IO.

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Loopback_CredSspClient_IsAuthenticated_AndEachSideProvedItselfToTheOther(bool spnego)
    {
        // Arrange
        var client = new CredSspClient(CredSspClientCorpus.Settings(spnego: spnego), CredSspClientCorpus.Random());
        var server = new CredSspServer(new CredSspServerSettings(CredSspClientCorpus.SubjectPublicKey, "VM1", "vm1.gatehouse.test"), CredSspServerCorpus.Random());

        // Act: NEGOTIATE → CHALLENGE
        var challenge = server.Step(client.Start());
        Assert.False(challenge.Failed, challenge.Error?.ToString());
        Assert.Equal(CredSspServerState.WaitingForAuthenticate, server.State);
        Assert.Equal(spnego, server.UsesSpnego);
        Assert.Equal(6, server.ClientVersion);

        // AUTHENTICATE → the server asks for the user's account
        var third = client.Step(challenge.Output!);
        Assert.False(third.Failed, third.Error?.ToString());
        var authenticate = server.Step(third.Output!);
        Assert.Equal((null, null), (authenticate.Output, authenticate.Error));
        Assert.Equal(CredSspServerState.WaitingForAccount, server.State);
        Assert.Equal(new CredSspUser("Domain", "User", "Domain\\User"), server.User);
        Assert.Equal("Domain\\User", server.User!.ToString());

        // The NT hash → proof, MIC and binding verified; the account check is the driver's
        var proven = server.ProvideAccount(NtlmV2.NtHash("Password"));
        Assert.Equal((null, null), (proven.Output, proven.Error));
        Assert.Equal(CredSspServerState.WaitingForAccountCheck, server.State);
        var binding = server.ConfirmAccount();
        Assert.NotNull(binding.Output);
        Assert.Equal(CredSspServerState.WaitingForCredentials, server.State);

        // The client verifies the server's pubKeyAuth (and mechListMIC) and only then sends the credentials
        var fourth = client.Step(binding.Output);
        Assert.False(fourth.Failed, fourth.Error?.ToString());
        Assert.Equal(CredSspClientState.Completed, client.State);
        var credentials = server.Step(fourth.Output!);
        Assert.Equal((null, null), (credentials.Output, credentials.Error));
        Assert.Equal(CredSspServerState.WaitingForPasswordCheck, server.State);
        Assert.Equal(("Domain", "User", "Password"), (server.Credentials!.DomainName, server.Credentials.UserName, server.Credentials.Password));
        var done = server.ConfirmPassword();

        // Assert
        Assert.Equal((null, null), (done.Output, done.Error));
        Assert.Equal(CredSspServerState.Authenticated, server.State);
        Assert.Null(server.Credentials);
    }

    [Fact]
    public void Loopback_ClientWithAnotherPassword_GetsLogonFailure_AfterTheDriverCountedTheWrongProof()
    {
        var client = new CredSspClient(CredSspClientCorpus.Settings(password: "Wrong"), CredSspClientCorpus.Random());
        var server = new CredSspServer(new CredSspServerSettings(CredSspClientCorpus.SubjectPublicKey, "VM1", "vm1"), CredSspServerCorpus.Random());
        var third = client.Step(server.Step(client.Start()).Output!);
        server.Step(third.Output!);

        var proof = server.ProvideAccount(NtlmV2.NtHash("Password"));

        Assert.Equal((null, null), (proof.Output, proof.Error));
        Assert.Equal(CredSspServerState.WrongProof, server.State);
        var refusal = server.Refuse(CredSspServerFailure.BadPassword, "the NTLMv2 response does not match the user's password");
        Assert.Equal("bad_password: the NTLMv2 response does not match the user's password", refusal.Error!.Reason);
        var answer = client.Step(refusal.Output!);
        Assert.Equal((CredSspClientFailure.ServerError, NtStatus.LogonFailure), (answer.Error!.Kind, answer.Error.Status));
    }

    [Fact]
    public void Loopback_ManInTheMiddle_ServerBehindAnotherTlsKey_RefusesBeforeTheCredentials()
    {
        // The client's TLS ends at an interceptor whose key differs from the gateway's: the client binds the wrong key.
        var client = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
        var server = new CredSspServer(new CredSspServerSettings(CredSspServerCorpus.OtherSubjectPublicKey, "VM1", "vm1"), CredSspServerCorpus.Random());
        server.Step(client.Step(server.Step(client.Start()).Output!).Output!);

        var step = server.ProvideAccount(NtlmV2.NtHash("Password"));

        Assert.True(step.Failed);
        Assert.Equal((CredSspServerFailure.BadPubKeyAuth, NtStatus.MessageAltered), (step.Error.Kind, step.Error.Status));
        Assert.Contains("man in the middle", step.Error.Detail, StringComparison.Ordinal);
        Assert.Equal(NtStatus.MessageAltered, client.Step(step.Output!).Error!.Status);
    }

    // The CHALLENGE.

    [Fact]
    public void Negotiate_InSpnego_IsAnsweredWithTheChallenge_TargetInfoAndTimestamp()
    {
        var server = CredSspServerCorpus.Server();
        var first = new ScriptedCredSspClient().First();

        var step = server.Step(first);

        Assert.True(TsRequest.TryParse(step.Output, out var request, out _));
        Assert.Equal(TsRequest.CurrentVersion, request.Version);
        Assert.True(SpnegoToken.TryParse(Assert.Single(request.NegoTokens), out var resp, out _));
        Assert.Equal((NegState.AcceptIncomplete, SpnegoToken.NtlmOid), (resp.State, resp.SupportedMech));
        Assert.True(NtlmChallengeMessage.TryParse(resp.MechToken, out var challenge, out var error), error?.ToString());
        Assert.Equal(Convert.FromHexString("0123456789abcdef"), challenge.ServerChallenge.ToArray());
        Assert.Equal("VM1", Encoding.Unicode.GetString(challenge.TargetName));
        Assert.Equal(CredSspClient.NegotiateFlags | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.TargetTypeServer, challenge.Flags);
        Assert.Equal([10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F], challenge.Version.ToArray());
        var pairs = challenge.TargetInfo!;
        Assert.Equal([AvId.NbDomainName, AvId.NbComputerName, AvId.DnsDomainName, AvId.DnsComputerName, AvId.Timestamp], pairs.Pairs.Select(p => p.Id));
        Assert.Equal("VM1", Encoding.Unicode.GetString(pairs.Find(AvId.NbComputerName)!));
        Assert.Equal("vm1.gatehouse.test", Encoding.Unicode.GetString(pairs.Find(AvId.DnsComputerName)!));
        Assert.Equal(CredSspServerCorpus.Now, pairs.Timestamp);
    }

    [Fact]
    public void Negotiate_Raw_IsAnsweredRaw_WithOnlyTheFlagsTheServerOffers()
    {
        var server = CredSspServerCorpus.Server();
        var flags = CredSspServer.RequiredFlags | NtlmNegotiateFlags.Datagram | NtlmNegotiateFlags.LmKey | NtlmNegotiateFlags.Identify;

        var step = server.Step(new ScriptedCredSspClient { Spnego = false, NegotiateFlags = flags }.First());

        Assert.True(TsRequest.TryParse(step.Output, out var request, out _));
        Assert.False(server.UsesSpnego);
        Assert.True(NtlmChallengeMessage.TryParse(request.NegoTokens[0], out var challenge, out var error), error?.ToString());
        Assert.Equal(CredSspServer.RequiredFlags | NtlmNegotiateFlags.TargetInfo | NtlmNegotiateFlags.TargetTypeServer, challenge.Flags);
        Assert.True(challenge.Version.IsEmpty, "no VERSION when the client did not ask for it");
    }

    [Fact]
    public void Server_IsDeterministic_AndTheChallengeComesFromTheCallersRandom()
    {
        var first = new ScriptedCredSspClient().First();
        var a = CredSspServerCorpus.Server().Step(first).Output;
        var b = CredSspServerCorpus.Server().Step(first).Output;
        var other = new CredSspServer(CredSspServerCorpus.Settings(), new CredSspServerRandom(Convert.FromHexString("fedcba9876543210"), CredSspServerCorpus.Now + 1)).Step(first).Output;

        Assert.Equal(a, b);
        Assert.NotEqual(a, other);
        Assert.Contains(Convert.ToHexString(Convert.FromHexString("fedcba9876543210")), Convert.ToHexString(other!), StringComparison.Ordinal);
    }

    // Every version and form, through the whole exchange.

    [Theory]
    [InlineData(2, true)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    [InlineData(5, true)]
    [InlineData(5, false)]
    [InlineData(6, true)]
    [InlineData(6, false)]
    [InlineData(7, true)]
    public void EveryVersion_RawOrSpnego_IsAuthenticated_WithTheVersionsBinding(int version, bool spnego)
    {
        var run = CredSspServerHarness.Run(new ScriptedCredSspClient { Version = version, Spnego = spnego }, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.True(run.State == CredSspServerState.Authenticated, run.Error?.ToString());
        Assert.True(run.ClientBindingOk, "the client verified the server's pubKeyAuth (key + 1 below 5, the Server-To-Client hash from 5)");
        Assert.Equal(5, run.Transcript.Count); // NEGOTIATE, CHALLENGE, AUTHENTICATE, pubKeyAuth, TSCredentials
        Assert.True(TsRequest.TryParse(run.Transcript[3], out var answer, out _));
        Assert.Equal(spnego ? 1 : 0, answer.NegoTokens.Count);
    }

    [Fact]
    public void Spnego_WithoutClientMechListMic_IsAnsweredWithoutOne()
    {
        var run = CredSspServerHarness.Run(new ScriptedCredSspClient { SendMechListMic = false }, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.Equal(CredSspServerState.Authenticated, run.State);
        Assert.True(TsRequest.TryParse(run.Transcript[3], out var answer, out _));
        Assert.True(SpnegoToken.TryParse(answer.NegoTokens[0], out var final, out _));
        Assert.Equal(NegState.AcceptCompleted, final.State);
        Assert.False(final.HasMechListMic);
    }

    [Fact]
    public void Spnego_WithClientMechListMic_IsAnsweredWithTheServersOwn()
    {
        var run = CredSspServerHarness.Run(new ScriptedCredSspClient(), CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.True(TsRequest.TryParse(run.Transcript[3], out var answer, out _));
        Assert.True(SpnegoToken.TryParse(answer.NegoTokens[0], out var final, out _));
        var expected = new NtlmSealer(Enumerable.Repeat((byte)0x55, 16).ToArray(), ChallengeFlags(run), clientToServer: false).ComputeSignature(SpnegoToken.EncodeMechTypes([SpnegoToken.NtlmOid]));
        Assert.Equal(expected, final.MechListMic.ToArray());
    }

    [Theory]
    [InlineData("AzureAD", "alice@contoso.test", "", "alice@contoso.test")]
    [InlineData("", "ALICE@contoso.test", "AzureAD", "alice@CONTOSO.test")]
    public void NameForms_ThatResolveToTheSameAccount_Match(string ntlmDomain, string ntlmUser, string credentialDomain, string credentialUser)
    {
        var client = new ScriptedCredSspClient { Domain = ntlmDomain, User = ntlmUser, Credentials = new TsCredentials(credentialDomain, credentialUser, CredSspServerCorpus.Password) };

        var run = CredSspServerHarness.Run(client, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.True(run.State == CredSspServerState.Authenticated, run.Error?.ToString());
    }

    // [MS-NLMP] 4.2.4: the spec's NTLMv2 AUTHENTICATE (User/Domain/Password, server challenge 0123456789abcdef, client
    // challenge aa×8, time 0, random session key 55×16) and its 4.2.4.4 sealed "Plaintext", verified by the server.

    /// <summary>4.2.4.4 GSS_WrapEx of UTF-16 "Plaintext": the signature, then the sealed data.</summary>
    private const string SpecSealedPlaintext = "010000007fb38ec5c55d497600000000" + "54e50165bf1936dc996020c1811b0f06fb5f";

    [Fact]
    public void SpecVectors_4_2_4_TheServerVerifiesTheSpecProof_KeyExchangeAndSealing()
    {
        // Arrange: the server binds to the UTF-16 "Plaintext" of 4.2.4.4, so the spec's sealed message is a valid
        // pubKeyAuth of a CredSSP 2-4 client (whose binding is the key itself).
        var plaintext = Encoding.Unicode.GetBytes("Plaintext");
        var server = SpecServer(plaintext);
        var authenticate = server.Step(new TsRequest(3, [SpecAuthenticate("User", "Domain")], pubKeyAuth: Convert.FromHexString(SpecSealedPlaintext)).Encode());
        Assert.Equal((null, null), (authenticate.Output, authenticate.Error));

        // Act
        var proof = server.ProvideAccount(NtlmV2.NtHash("Password"));

        // Assert: NTProofStr (4.2.4.2.2) verified, RC4(SessionBaseKey 4.2.4.1.2, c5dad254… 4.2.4.2.3) = 55×16, and the
        // 4.2.4.4 signature 010000007fb38ec5c55d497600000000 over the sealed 54e50165… unsealed to the key.
        Assert.Equal((null, null), (proof.Output, proof.Error));
        Assert.Equal(CredSspServerState.WaitingForAccountCheck, server.State);
        Assert.Equal(new CredSspUser("Domain", "User", "Domain\\User"), server.User);
        Assert.True(TsRequest.TryParse(server.ConfirmAccount().Output, out var answer, out _));
        var incremented = (byte[])plaintext.Clone();
        incremented[0]++;
        Assert.Equal(incremented, new NtlmSealer(SpecRandomSessionKey, SpecFlags, clientToServer: false).Unseal(answer.PubKeyAuth));

        // The client's sealing state goes on: its TSCredentials are the second message of the 4.2.4.4 keystream.
        var toServer = new NtlmSealer(SpecRandomSessionKey, SpecFlags, clientToServer: true);
        Assert.Equal(SpecSealedPlaintext, Convert.ToHexStringLower(toServer.Seal(plaintext)));
        var credentials = server.Step(new TsRequest(3, authInfo: toServer.Seal(new TsCredentials("Domain", "User", "Password").Encode())).Encode());
        Assert.Equal((null, null), (credentials.Output, credentials.Error));
        Assert.Equal("Password", server.Credentials!.Password);
    }

    [Theory]
    [InlineData("USER", "Domain", true)]     // NTOWFv2 upper-cases the user name (4.2.4.1.1)…
    [InlineData("user", "Domain", true)]
    [InlineData("User", "DOMAIN", false)]    // …but not the domain
    [InlineData("Usr", "Domain", false)]
    public void SpecVectors_4_2_4_TheProofCoversTheUserUpperCasedAndTheDomainAsIs(string user, string domain, bool verifies)
    {
        var server = SpecServer(Encoding.Unicode.GetBytes("Plaintext"));
        server.Step(new TsRequest(3, [SpecAuthenticate(user, domain)], pubKeyAuth: Convert.FromHexString(SpecSealedPlaintext)).Encode());

        var step = server.ProvideAccount(NtlmV2.NtHash("Password"));

        Assert.False(step.Failed, step.Error?.ToString());
        Assert.Equal(verifies ? CredSspServerState.WaitingForAccountCheck : CredSspServerState.WrongProof, server.State);
    }

    [Fact]
    public void SpecVectors_4_2_4_AnotherPassword_IsAWrongProof()
    {
        var server = SpecServer(Encoding.Unicode.GetBytes("Plaintext"));
        server.Step(new TsRequest(3, [SpecAuthenticate("User", "Domain")], pubKeyAuth: Convert.FromHexString(SpecSealedPlaintext)).Encode());

        var step = server.ProvideAccount(NtlmV2.NtHash("password"));

        Assert.Equal((null, null), (step.Output, step.Error));
        Assert.Equal(CredSspServerState.WrongProof, server.State);
    }

    [Fact]
    public void SpecVectors_4_2_4_AnotherTlsKey_IsABadPubKeyAuth()
    {
        var server = SpecServer(Encoding.Unicode.GetBytes("Plaintexu"));
        server.Step(new TsRequest(3, [SpecAuthenticate("User", "Domain")], pubKeyAuth: Convert.FromHexString(SpecSealedPlaintext)).Encode());

        var step = server.ProvideAccount(NtlmV2.NtHash("Password"));

        Assert.Equal(CredSspServerFailure.BadPubKeyAuth, step.Error?.Kind);
    }

    // Refusals the machine finds, one by one: the typed failure, its NTSTATUS and the errorCode TSRequest.

    [Theory]
    [InlineData("", "malformed_tsrequest")]
    [InlineData("31 03 a0 01 06", "malformed_tsrequest")]                               // not a SEQUENCE
    [InlineData("30 05 a0 03 02 01 00", "malformed_tsrequest")]                          // version 0
    [InlineData("30 0a a0 03 02 01 06 a6 03 02 01 00", "malformed_tsrequest")]           // unknown field [6]
    [InlineData("30 80 a0 03 02 01 06 00 00", "malformed_tsrequest")]                    // indefinite length
    [InlineData("30 05 a0 03 02 01 06 00", "malformed_tsrequest")]                       // a trailing byte
    [InlineData("3028a003020106a521041f00000000000000000000000000000000000000000000000000000000000000", "malformed_tsrequest")] // 31-byte nonce
    [InlineData("30 05 a0 03 02 01 06", "malformed_negotiate")]                          // no negoTokens
    [InlineData("30 0d a0 03 02 01 06 a1 06 30 04 30 02 a0 00", "malformed_tsrequest")]  // negoToken without its OCTET STRING
    [InlineData("30 0f a0 03 02 01 06 a1 08 30 06 30 04 a0 02 04 00", "malformed_negotiate")] // empty negoToken
    [InlineData("30 11 a0 03 02 01 06 a1 0a 30 08 30 06 a0 04 04 02 01 02", "malformed_negotiate")] // garbage token
    [InlineData("30 17 a0 03 02 01 06 a1 10 30 0e 30 0c a0 0a 04 08 4e544c4d53535000", "malformed_negotiate")] // NTLMSSP truncated
    [InlineData("30 1b a0 03 02 01 06 a1 14 30 12 30 10 a0 0e 04 0c 4e544c4d5353500003000000", "malformed_negotiate")] // type 3 first
    [InlineData("30 13 a0 03 02 01 06 a1 0c 30 0a 30 08 a0 06 04 04 a1 02 30 00", "malformed_negotiate")] // NegTokenResp first
    [InlineData("30 2a a0 03 02 01 06 a1 23 30 21 30 1f a0 1d 04 1b 60 19 06 06 2b 06 01 05 05 02 a0 0f 30 0d a0 0b 30 09 06 07 2a 86 48 86 f7 12 01", "malformed_negotiate")]       // Kerberos only
    public void FirstMessage_Malformed_IsRefusedAsInvalidToken(string hex, string code)
    {
        var server = CredSspServerCorpus.Server();

        var step = server.Step(Convert.FromHexString(hex.Replace(" ", string.Empty, StringComparison.Ordinal)));

        AssertRefused(server, step, code, NtStatus.InvalidToken);
    }

    [Fact]
    public void FirstMessage_ClientErrorCode_IsAMalformedTsRequest()
    {
        var server = CredSspServerCorpus.Server();

        var step = server.Step(new TsRequest(6, errorCode: 5).Encode());

        AssertRefused(server, step, "malformed_tsrequest", NtStatus.InvalidToken);
        Assert.Equal("malformed_tsrequest: the client reported error 0x00000005", step.Error!.Reason);
    }

    [Fact]
    public void FirstMessage_Oversized_IsRefusedBeforeParsing()
    {
        var server = CredSspServerCorpus.Server();
        var huge = new TsRequest(6, [new byte[TsRequest.MaxSize]]).Encode();

        var step = server.Step(huge);

        AssertRefused(server, step, "malformed_tsrequest", NtStatus.InvalidToken);
        Assert.Contains("exceeds the limit", step.Error!.Detail, StringComparison.Ordinal);
    }

    public static TheoryData<string> SpnegoFirstTokens() => ["no mechToken", "mechToken not NTLMSSP", "two negoTokens"];

    [Theory]
    [MemberData(nameof(SpnegoFirstTokens))]
    public void FirstMessage_SpnegoWithoutAnNtlmNegotiate_IsMalformedNegotiate(string name)
    {
        var server = CredSspServerCorpus.Server();
        byte[][] tokens = name switch
        {
            "no mechToken" => [SpnegoToken.Init([SpnegoToken.NtlmOid], null).Encode()],
            "mechToken not NTLMSSP" => [SpnegoToken.Init([SpnegoToken.NtlmOid], [1, 2, 3]).Encode()],
            _ => [SpnegoToken.Init([SpnegoToken.NtlmOid], null).Encode(), [1]],
        };

        var step = server.Step(new TsRequest(6, tokens).Encode());

        AssertRefused(server, step, "malformed_negotiate", NtStatus.InvalidToken);
    }

    [Theory]
    [InlineData(NtlmNegotiateFlags.Seal)]
    [InlineData(NtlmNegotiateFlags.Sign)]
    [InlineData(NtlmNegotiateFlags.ExtendedSessionSecurity)]
    [InlineData(NtlmNegotiateFlags.Unicode)]
    [InlineData(NtlmNegotiateFlags.Ntlm)]
    public void Negotiate_WithoutARequiredFlag_IsUnsupported(NtlmNegotiateFlags missing)
    {
        var server = CredSspServerCorpus.Server();

        var step = server.Step(new ScriptedCredSspClient { NegotiateFlags = CredSspClient.NegotiateFlags & ~missing }.First());

        AssertRefused(server, step, "ntlm_flags", NtStatus.UnsupportedFunction);
        Assert.Contains(missing.ToString(), step.Error!.Detail, StringComparison.Ordinal);
    }

    private static readonly Dictionary<string, (ScriptedCredSspClient Client, string Code, uint Status)> ExchangeCases = BuildExchangeCases();

    public static TheoryData<string> ExchangeRefusals() => [.. ExchangeCases.Keys];

    private static Dictionary<string, (ScriptedCredSspClient Client, string Code, uint Status)> BuildExchangeCases()
    {
        var data = new Dictionary<string, (ScriptedCredSspClient, string, uint)>();
        void Add(string name, CredSspClientStage stage, Func<byte[], byte[]> change, string code, uint status, int version = 6, bool spnego = true) =>
            data.Add(name, (new ScriptedCredSspClient { Version = version, Spnego = spnego, Tamper = (s, b) => s == stage ? change(b) : b }, code, status));

        // The second TSRequest.
        Add("third: version 6 then 5 (downgrade)", CredSspClientStage.Third, b => Rebuild(b, version: 5), "version_changed", NtStatus.InvalidToken);
        Add("third: version 3 then 6", CredSspClientStage.Third, b => Rebuild(b, version: 6), "version_changed", NtStatus.InvalidToken, version: 3);
        Add("third: not DER", CredSspClientStage.Third, _ => [0x04, 0x00], "malformed_tsrequest", NtStatus.InvalidToken);
        Add("third: errorCode", CredSspClientStage.Third, b => Rebuild(b, errorCode: 0xC000006D), "malformed_tsrequest", NtStatus.InvalidToken);
        Add("third: raw NTLM after SPNEGO", CredSspClientStage.Third, b => Rebuild(b, tokens: [NtlmStub(3)]), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: SPNEGO after raw NTLM", CredSspClientStage.Third, b => Rebuild(b, tokens: [SpnegoToken.Response(null, null, NtlmStub(3), null).Encode()]), "malformed_authenticate", NtStatus.InvalidToken, spnego: false);
        Add("third: two negoTokens", CredSspClientStage.Third, b => Rebuild(b, tokens: [NtlmStub(3), NtlmStub(3)]), "malformed_authenticate", NtStatus.InvalidToken, spnego: false);
        Add("third: no negoTokens", CredSspClientStage.Third, b => Rebuild(b, tokens: []), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: NegTokenInit again", CredSspClientStage.Third, b => Rebuild(b, tokens: [SpnegoToken.Init([SpnegoToken.NtlmOid], NtlmStub(3)).Encode()]), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: NegTokenResp without a token", CredSspClientStage.Third, b => Rebuild(b, tokens: [SpnegoToken.Response(null, null, null, null).Encode()]), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: SPNEGO garbage", CredSspClientStage.Third, b => Rebuild(b, tokens: [[0xa1, 0x03, 0x30, 0x01]]), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: no pubKeyAuth", CredSspClientStage.Third, b => Rebuild(b, dropPubKeyAuth: true), "malformed_authenticate", NtStatus.InvalidToken);
        Add("third: nonce changed", CredSspClientStage.Third, b => Rebuild(b, nonce: new byte[32]), "bad_client_nonce", NtStatus.InvalidToken);
        Add("third: nonce dropped", CredSspClientStage.Third, b => Rebuild(b, dropNonce: true), "bad_client_nonce", NtStatus.InvalidToken, version: 5);
        Add("third: mechListMIC flipped", CredSspClientStage.Third, FlipMechListMic, "bad_mech_list_mic", NtStatus.MessageAltered);
        Add("third: pubKeyAuth signature flipped", CredSspClientStage.Third, b => Rebuild(b, flipPubKeyAuth: true), "bad_pub_key_auth", NtStatus.MessageAltered);

        // The NTLM AUTHENTICATE inside it.
        Add("authenticate: truncated to the header", CredSspClientStage.Authenticate, b => b[..40], "malformed_authenticate", NtStatus.InvalidToken);
        Add("authenticate: bad signature", CredSspClientStage.Authenticate, b => Patch(b, 0, (byte)'X'), "malformed_authenticate", NtStatus.InvalidToken);
        Add("authenticate: type 1", CredSspClientStage.Authenticate, b => Patch(b, 8, 1), "malformed_authenticate", NtStatus.InvalidToken, spnego: false);
        Add("authenticate: NT response offset past the end", CredSspClientStage.Authenticate, b => Patch(b, 24, 0xFF, 0xFF), "malformed_authenticate", NtStatus.InvalidToken);
        Add("authenticate: MIC flipped", CredSspClientStage.Authenticate, b => Patch(b, NtlmAuthenticateMessage.MicOffset, (byte)(b[NtlmAuthenticateMessage.MicOffset] ^ 1)), "bad_mic", NtStatus.MessageAltered);
        Add("authenticate: encrypted session key changed", CredSspClientStage.Authenticate, b => Patch(b, b.Length - 1, (byte)(b[^1] ^ 1)), "bad_mic", NtStatus.MessageAltered, spnego: false);
        Add("authenticate: NTProofStr flipped", CredSspClientStage.Authenticate, FlipNtProof, "bad_password", NtStatus.LogonFailure);

        // The NEGOTIATE the MIC covers: changed on the way, the client's MIC (over what it sent) no longer matches.
        Add("first: NEGOTIATE's VERSION changed in transit", CredSspClientStage.First, b => PatchLast(b, 0x0E), "bad_mic", NtStatus.MessageAltered, spnego: false);

        // The binding sealed into pubKeyAuth.
        Add("binding: another key (man in the middle)", CredSspClientStage.Binding, b => Patch(b, 0, (byte)(b[0] ^ 0xFF)), "bad_pub_key_auth", NtStatus.MessageAltered);
        Add("binding: empty", CredSspClientStage.Binding, _ => [], "bad_pub_key_auth", NtStatus.MessageAltered, version: 3);
        Add("binding: the key itself from a version 6 client", CredSspClientStage.Binding, _ => CredSspClientCorpus.SubjectPublicKey, "bad_pub_key_auth", NtStatus.MessageAltered);
        Add("binding: the server's answer reflected", CredSspClientStage.Binding, _ => PublicKeyBinding.ServerValue(6, Enumerable.Repeat((byte)0x22, 32).ToArray(), CredSspClientCorpus.SubjectPublicKey), "bad_pub_key_auth", NtStatus.MessageAltered);

        // The last TSRequest and the TSCredentials sealed in it.
        Add("fourth: version 6 then 2 (downgrade)", CredSspClientStage.Fourth, b => Rebuild(b, version: 2), "version_changed", NtStatus.InvalidToken);
        Add("fourth: no authInfo", CredSspClientStage.Fourth, b => Rebuild(b, dropAuthInfo: true), "malformed_credentials", NtStatus.InvalidToken);
        Add("fourth: authInfo flipped", CredSspClientStage.Fourth, b => Rebuild(b, flipAuthInfo: true), "bad_auth_info", NtStatus.MessageAltered);
        Add("fourth: authInfo shorter than a signature", CredSspClientStage.Fourth, b => Rebuild(b, authInfo: new byte[15]), "bad_auth_info", NtStatus.MessageAltered);
        Add("fourth: garbage", CredSspClientStage.Fourth, _ => [0x30, 0x00], "malformed_tsrequest", NtStatus.InvalidToken);
        Add("credentials: not DER", CredSspClientStage.Credentials, _ => [1, 2, 3], "malformed_credentials", NtStatus.InvalidToken);
        Add("credentials: smart card", CredSspClientStage.Credentials, _ => CredType(2), "malformed_credentials", NtStatus.UnsupportedFunction);
        Add("credentials: Remote Credential Guard", CredSspClientStage.Credentials, _ => CredType(6), "malformed_credentials", NtStatus.UnsupportedFunction);
        return data;
    }

    [Theory]
    [MemberData(nameof(ExchangeRefusals))]
    public void Exchange_TamperedMessage_IsRefusedWithItsTypedFailure(string name)
    {
        var (client, code, status) = ExchangeCases[name];

        var run = CredSspServerHarness.Run(client, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.True(run.Error?.Code == code && run.Error.Status == status, $"{name}: expected {code} 0x{status:X8}, got {run.Error?.ToString() ?? run.State.ToString()}");
        Assert.Equal(CredSspServerState.Failed, run.State);
        Assert.True(TsRequest.TryParse(run.Transcript[^1], out var last, out _));
        Assert.Equal(status, last.ErrorCode);
    }

    [Theory]
    [InlineData(true, "raw NTLM after an SPNEGO start")]
    [InlineData(false, "SPNEGO after a raw NTLM start")]
    public void Third_ValidAuthenticateInTheOtherForm_IsMalformedAuthenticate_SayingWhy(bool spnegoFirst, string detail)
    {
        // The AUTHENTICATE itself is right; only its wrapping differs from the first message's.
        byte[] OtherForm(byte[] third)
        {
            Assert.True(TsRequest.TryParse(third, out var r, out _));
            var token = r.NegoTokens[0];
            Assert.True(!spnegoFirst || SpnegoToken.TryParse(token, out _, out _));
            var rewrapped = spnegoFirst && SpnegoToken.TryParse(token, out var resp, out _) ? resp.MechToken.ToArray() : SpnegoToken.Response(null, null, token, null).Encode();
            return Rebuild(third, tokens: [rewrapped]);
        }

        var client = new ScriptedCredSspClient { Spnego = spnegoFirst, Tamper = (stage, b) => stage == CredSspClientStage.Third ? OtherForm(b) : b };

        var run = CredSspServerHarness.Run(client, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.Equal(CredSspServerFailure.MalformedAuthenticate, run.Error?.Kind);
        Assert.Equal(detail, run.Error!.Detail);
    }

    [Fact]
    public void Exchange_WrongPasswordInTsCredentials_AfterTheRightNtlmProof_IsAskedOfTheDriver()
    {
        // NTLM proves "Correct-Horse-1"; TSPasswordCreds carry another password: only the directory's check can tell.
        var client = new ScriptedCredSspClient { Credentials = new TsCredentials(string.Empty, CredSspServerCorpus.Account, "Wrong-Horse-1") };

        var run = CredSspServerHarness.Run(client, CredSspServerCorpus.Server(), CredSspServerCorpus.NtHash);

        Assert.True(run.ProofAccepted);
        Assert.Equal((CredSspServerFailure.BadPassword, NtStatus.LogonFailure), (run.Error!.Kind, run.Error.Status));
    }

    [Theory]
    [InlineData("", "bob@contoso.test")]
    [InlineData("AzureAD", "bob@contoso.test")]
    [InlineData("CONTOSO", "alice")]
    [InlineData("", "")]
    public void Exchange_CredentialsOfAnotherUser_AreACredentialsMismatch(string domain, string user)
    {
        var client = new ScriptedCredSspClient { Credentials = new TsCredentials(domain, user, CredSspServerCorpus.Password) };
        var server = CredSspServerCorpus.Server();

        var run = CredSspServerHarness.Run(client, server, CredSspServerCorpus.NtHash);

        Assert.Equal((CredSspServerFailure.CredentialsMismatch, NtStatus.LogonFailure), (run.Error!.Kind, run.Error.Status));
        Assert.Null(server.Credentials);
    }

    [Fact]
    public void Exchange_NtlmUserThatIsNotAnAccountName_NeverMatchesAnyCredentials()
    {
        // A driver that gives an account for a name the resolver refused (it should refuse NotAWorkAccount) fails closed.
        var server = CredSspServerCorpus.Server();
        var client = new ScriptedCredSspClient { Domain = "CONTOSO", User = "alice", Credentials = new TsCredentials("CONTOSO", "alice", CredSspServerCorpus.Password) };
        var third = client.Third(server.Step(client.First()).Output!)!;
        server.Step(third);
        Assert.Equal(new CredSspUser("CONTOSO", "alice", null), server.User);
        Assert.Equal("CONTOSO\\alice", server.User!.ToString());
        server.ProvideAccount(NtlmV2.NtHash(CredSspServerCorpus.Password));

        var step = server.Step(client.Fourth(server.ConfirmAccount().Output!)!);

        Assert.Equal(CredSspServerFailure.CredentialsMismatch, step.Error?.Kind);
    }

    [Theory]
    [InlineData("azuread", "alice@contoso.test", true)]
    [InlineData("", "alice@contoso.test", false)]
    public void DefaultResolver_ComparesDomainAndUserAsSent_IgnoringCase(string credentialDomain, string credentialUser, bool matches)
    {
        var server = new CredSspServer(new CredSspServerSettings(CredSspClientCorpus.SubjectPublicKey, "VM1", "vm1"), CredSspServerCorpus.Random());
        var client = new ScriptedCredSspClient { Domain = "AzureAD", User = "Alice@Contoso.Test", Credentials = new TsCredentials(credentialDomain, credentialUser, CredSspServerCorpus.Password) };
        server.Step(client.Third(server.Step(client.First()).Output!)!);
        Assert.Equal("AzureAD\\Alice@Contoso.Test", server.User!.AccountName);
        server.ProvideAccount(CredSspServerCorpus.NtHash);

        var step = server.Step(client.Fourth(server.ConfirmAccount().Output!)!);

        Assert.Equal(matches ? null : CredSspServerFailure.CredentialsMismatch, step.Error?.Kind);
        Assert.Equal(matches ? CredSspServerState.WaitingForPasswordCheck : CredSspServerState.Failed, server.State);
    }

    // Refusals the driver gives, from each state that waits for it.

    [Theory]
    [InlineData(CredSspServerFailure.NotAWorkAccount, NtStatus.LogonFailure)]
    [InlineData(CredSspServerFailure.UnknownUser, NtStatus.LogonFailure)]
    [InlineData(CredSspServerFailure.NoNtHash, NtStatus.LogonFailure)]
    public void WaitingForAccount_DriverRefusal_SendsItsStatus(CredSspServerFailure failure, uint status)
    {
        var server = AtAccount();

        var step = server.Refuse(failure, "no such user");

        AssertRefused(server, step, CredSspServer.Code(failure), status);
    }

    [Theory]
    [InlineData(CredSspServerFailure.BadPassword, NtStatus.LogonFailure)]
    [InlineData(CredSspServerFailure.LockedOut, NtStatus.AccountLockedOut)]
    public void WrongProof_IsRefusedAsTheDriverCountsIt(CredSspServerFailure failure, uint status)
    {
        var server = AtAccount();
        server.ProvideAccount(NtlmV2.NtHash("Wrong-Horse-1"));
        Assert.Equal(CredSspServerState.WrongProof, server.State);
        Assert.Throws<InvalidOperationException>(() => server.ConfirmAccount());

        var step = server.Refuse(failure, "counted");

        AssertRefused(server, step, CredSspServer.Code(failure), status);
    }

    [Theory]
    [InlineData(CredSspServerFailure.UserDisabled, NtStatus.AccountDisabled)]
    [InlineData(CredSspServerFailure.PasswordChangeRequired, NtStatus.PasswordMustChange)]
    [InlineData(CredSspServerFailure.LockedOut, NtStatus.AccountLockedOut)]
    public void WaitingForAccountCheck_AccountState_IsAnsweredAfterTheProof(CredSspServerFailure failure, uint status)
    {
        var server = AtAccount();
        server.ProvideAccount(CredSspServerCorpus.NtHash);
        Assert.Equal(CredSspServerState.WaitingForAccountCheck, server.State);

        var step = server.Refuse(failure, "state");

        AssertRefused(server, step, CredSspServer.Code(failure), status);
    }

    [Fact]
    public void WaitingForPasswordCheck_Refusal_ForgetsTheCredentials()
    {
        var (server, _) = AtPasswordCheck();
        Assert.NotNull(server.Credentials);

        var step = server.Refuse(CredSspServerFailure.PasswordChangeRequired, "temporary password");

        AssertRefused(server, step, "password_change_required", NtStatus.PasswordMustChange);
        Assert.Null(server.Credentials);
    }

    [Fact]
    public void WaitingForCredentials_TransportProblem_IsRefusedAsMalformedTsRequest()
    {
        var (server, _) = AtPasswordCheck(stopBeforeCredentials: true);
        Assert.Equal(CredSspServerState.WaitingForCredentials, server.State);

        var step = server.Refuse(CredSspServerFailure.MalformedTsRequest, "TSRequest: length: indefinite length is not DER");

        AssertRefused(server, step, "malformed_tsrequest", NtStatus.InvalidToken);
        Assert.Equal("malformed_tsrequest: TSRequest: length: indefinite length is not DER (0x80090308)", step.Error!.ToString());
    }

    // The contract: wrong-state calls are bugs; the exchange is over after a refusal or authentication.

    [Fact]
    public void Calls_InTheWrongState_Throw()
    {
        var server = CredSspServerCorpus.Server();
        Assert.Throws<InvalidOperationException>(() => server.ProvideAccount(CredSspServerCorpus.NtHash));
        Assert.Throws<InvalidOperationException>(() => server.ConfirmAccount());
        Assert.Throws<InvalidOperationException>(() => server.ConfirmPassword());

        var atAccount = AtAccount();
        Assert.Throws<InvalidOperationException>(() => atAccount.Step(new ScriptedCredSspClient().First()));
        Assert.Throws<ArgumentException>(() => atAccount.ProvideAccount(new byte[15]));
        Assert.Equal(CredSspServerState.WaitingForAccount, atAccount.State);

        var (authenticated, _) = AtPasswordCheck();
        authenticated.ConfirmPassword();
        Assert.Throws<InvalidOperationException>(() => authenticated.Refuse(CredSspServerFailure.BadPassword, "late"));
        Assert.Throws<InvalidOperationException>(() => authenticated.Step([0x30, 0x00]));

        var failed = CredSspServerCorpus.Server();
        failed.Step([0x30, 0x00]);
        Assert.Throws<InvalidOperationException>(() => failed.Refuse(CredSspServerFailure.BadPassword, "twice"));
        Assert.Throws<InvalidOperationException>(() => failed.Step(new ScriptedCredSspClient().First()));
    }

    [Fact]
    public void SettingsAndRandom_RefuseBadArguments()
    {
        var key = CredSspClientCorpus.SubjectPublicKey;
        Assert.Throws<ArgumentException>(() => new CredSspServerSettings([], "VM1", "vm1"));
        Assert.Throws<ArgumentException>(() => new CredSspServerSettings(key, string.Empty, "vm1"));
        Assert.Throws<ArgumentException>(() => new CredSspServerSettings(key, "VM1", new string('a', CredSspServerSettings.MaxNameLength + 1)));
        Assert.Throws<ArgumentNullException>(() => new CredSspServerSettings(key, null!, "vm1"));
        Assert.Throws<ArgumentException>(() => new CredSspServerRandom(new byte[7], 0));
        Assert.Throws<ArgumentNullException>(() => new CredSspServer(null!, CredSspServerCorpus.Random()));
        Assert.Throws<ArgumentNullException>(() => new CredSspServer(CredSspServerCorpus.Settings(), null!));
        Assert.Throws<ArgumentNullException>(() => CredSspServerCorpus.Server().Refuse(CredSspServerFailure.BadPassword, null!));
        var settings = new CredSspServerSettings(key, "VM1", "vm1.gatehouse.test");
        Assert.Equal(key, settings.SubjectPublicKey);
        Assert.NotSame(key, settings.SubjectPublicKey);
        Assert.Equal(("VM1", "vm1.gatehouse.test"), (settings.ComputerName, settings.DnsName));
    }

    [Fact]
    public void FailureCodes_AreTheSignInLogsReasons_EachWithItsStatus()
    {
        string[] expected =
        [
            "malformed_tsrequest", "malformed_negotiate", "ntlm_flags", "version_changed", "malformed_authenticate", "bad_client_nonce",
            "not_a_work_account", "unknown_user", "no_nt_hash", "bad_password", "locked_out", "bad_mic", "bad_mech_list_mic",
            "bad_pub_key_auth", "user_disabled", "password_change_required", "malformed_credentials", "bad_auth_info", "credentials_mismatch",
        ];

        Assert.Equal(expected, Enum.GetValues<CredSspServerFailure>().Select(CredSspServer.Code));
        Assert.All(Enum.GetValues<CredSspServerFailure>(), f => Assert.NotEqual(0u, CredSspServer.DefaultStatus(f)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CredSspServer.Code((CredSspServerFailure)99));
        Assert.Throws<ArgumentOutOfRangeException>(() => CredSspServer.DefaultStatus((CredSspServerFailure)99));
        var error = new CredSspServerError(CredSspServerFailure.BadMic, NtStatus.MessageAltered, "the MIC");
        Assert.Equal(("bad_mic", "bad_mic: the MIC", "bad_mic: the MIC (0x8009030F)"), (error.Code, error.Reason, error.ToString()));
    }

    [Fact]
    public void ErrorMessageAndEarlyResult_AreTheWireForms()
    {
        Assert.True(TsRequest.TryParse(CredSspServer.ErrorMessage(NtStatus.AccessDenied), out var request, out _));
        Assert.Equal((6, NtStatus.AccessDenied), (request.Version, request.ErrorCode));
        Assert.Equal("05000000", Convert.ToHexStringLower(CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzAccessDenied)));
        Assert.Equal("00000000", Convert.ToHexStringLower(CredSspServer.EarlyUserAuthorizationResult(NtStatus.AuthzSuccess)));
    }

    // Helpers.

    private static readonly byte[] SpecRandomSessionKey = Convert.FromHexString("55555555555555555555555555555555");

    /// <summary>The 4.2.4.3 CHALLENGE's flags, which the spec's client kept.</summary>
    private const NtlmNegotiateFlags SpecFlags = (NtlmNegotiateFlags)0xe28a8233;

    private static CredSspServer SpecServer(byte[] key)
    {
        var server = new CredSspServer(new CredSspServerSettings(key, "Server", "Server"), CredSspServerCorpus.Random());
        Assert.False(server.Step(new ScriptedCredSspClient { Version = 3, Spnego = false }.First()).Failed);
        return server;
    }

    /// <summary>The AUTHENTICATE of [MS-NLMP] 4.2.4 (NTLMv2), with the spec's responses and encrypted session key.</summary>
    private static byte[] SpecAuthenticate(string user, string domain)
    {
        var lm = Convert.FromHexString("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa");                                 // 4.2.4.2.1
        var nt = Convert.FromHexString(
            "68cd0ab851e51c96aabc927bebef6a1c"                                                                                 // 4.2.4.2.2 NTProofStr
            + "0101000000000000" + "0000000000000000" + "aaaaaaaaaaaaaaaa" + "00000000"                                       // 4.2.4.1.3 temp
            + "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000");
        var encryptedKey = Convert.FromHexString("c5dad2544fc9799094ce1ce90bc9d03e");                                       // 4.2.4.2.3
        return new NtlmAuthenticateMessage(SpecFlags, lm, nt, domain, user, "COMPUTER", encryptedKey, [6, 0, 0x70, 0x17, 0, 0, 0, 0x0F]).ToArray();
    }

    private static NtlmNegotiateFlags ChallengeFlags(CredSspServerRun run)
    {
        Assert.True(TsRequest.TryParse(run.Transcript[1], out var request, out _));
        Assert.True(SpnegoToken.TryParse(request.NegoTokens[0], out var resp, out _));
        Assert.True(NtlmChallengeMessage.TryParse(resp.MechToken, out var challenge, out _));
        return challenge.Flags;
    }

    private static CredSspServer AtAccount()
    {
        var server = CredSspServerCorpus.Server();
        var client = new ScriptedCredSspClient();
        server.Step(client.Third(server.Step(client.First()).Output!)!);
        Assert.Equal(CredSspServerState.WaitingForAccount, server.State);
        Assert.Equal(CredSspServerCorpus.Account, server.User!.AccountName);
        return server;
    }

    private static (CredSspServer Server, ScriptedCredSspClient Client) AtPasswordCheck(bool stopBeforeCredentials = false)
    {
        var server = CredSspServerCorpus.Server();
        var client = new ScriptedCredSspClient();
        server.Step(client.Third(server.Step(client.First()).Output!)!);
        server.ProvideAccount(CredSspServerCorpus.NtHash);
        var binding = server.ConfirmAccount().Output!;
        if (!stopBeforeCredentials)
        {
            server.Step(client.Fourth(binding)!);
            Assert.Equal(CredSspServerState.WaitingForPasswordCheck, server.State);
        }

        return (server, client);
    }

    private static void AssertRefused(CredSspServer server, CredSspServerStep step, string code, uint status)
    {
        Assert.True(step.Failed, $"expected {code}, the step did not fail (state {server.State})");
        Assert.True(step.Error.Code == code && step.Error.Status == status, $"expected {code} 0x{status:X8}, got {step.Error}");
        Assert.Equal(CredSspServerState.Failed, server.State);
        Assert.False(string.IsNullOrWhiteSpace(step.Error.Detail));
        Assert.True(TsRequest.TryParse(step.Output, out var refusal, out var error), error?.ToString());
        Assert.Equal((TsRequest.CurrentVersion, status), (refusal.Version, refusal.ErrorCode));
        Assert.Empty(refusal.NegoTokens);
        Assert.False(refusal.HasPubKeyAuth);
    }

    private static byte[] Rebuild(
        byte[] tsRequest, int? version = null, IEnumerable<byte[]>? tokens = null, uint? errorCode = null, byte[]? nonce = null, bool dropNonce = false,
        bool dropPubKeyAuth = false, bool flipPubKeyAuth = false, bool dropAuthInfo = false, bool flipAuthInfo = false, byte[]? authInfo = null)
    {
        Assert.True(TsRequest.TryParse(tsRequest, out var r, out _));
        var pubKeyAuth = r.HasPubKeyAuth && !dropPubKeyAuth ? r.PubKeyAuth.ToArray() : null;
        if (flipPubKeyAuth)
        {
            pubKeyAuth![^1] ^= 1;
        }

        var info = authInfo ?? (r.HasAuthInfo && !dropAuthInfo ? r.AuthInfo.ToArray() : null);
        if (flipAuthInfo)
        {
            info![^1] ^= 1;
        }

        return new TsRequest(version ?? r.Version, tokens ?? r.NegoTokens, info, pubKeyAuth, errorCode ?? r.ErrorCode, dropNonce ? null : nonce ?? (r.ClientNonce.IsEmpty ? null : r.ClientNonce.ToArray())).Encode();
    }

    private static byte[] FlipMechListMic(byte[] tsRequest)
    {
        Assert.True(TsRequest.TryParse(tsRequest, out var r, out _));
        Assert.True(SpnegoToken.TryParse(r.NegoTokens[0], out var resp, out _));
        var mic = resp.MechListMic.ToArray();
        mic[^1] ^= 1;
        return Rebuild(tsRequest, tokens: [SpnegoToken.Response(resp.State, resp.SupportedMech, resp.MechToken.ToArray(), mic).Encode()]);
    }

    private static byte[] FlipNtProof(byte[] authenticate)
    {
        var offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(authenticate.AsSpan(24));
        return Patch(authenticate, offset, (byte)(authenticate[offset] ^ 1));
    }

    private static byte[] PatchLast(byte[] firstTsRequest, byte value)
    {
        // The NEGOTIATE's VERSION is its last byte when sent raw; its TSRequest ends with the nonce (version 6).
        Assert.True(TsRequest.TryParse(firstTsRequest, out var r, out _));
        var negotiate = Patch(r.NegoTokens[0], r.NegoTokens[0].Length - 1, value);
        return Rebuild(firstTsRequest, tokens: [negotiate]);
    }

    private static byte[] CredType(int credType)
    {
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        writer.PushSequence();
        writer.PushSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 0, true));
        writer.WriteInteger(credType);
        writer.PopSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 0, true));
        writer.PushSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 1, true));
        writer.WriteOctetString([0x30, 0x00]);
        writer.PopSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 1, true));
        writer.PopSequence();
        return writer.Encode();
    }

    private static byte[] Patch(byte[] bytes, int offset, params byte[] values)
    {
        var copy = (byte[])bytes.Clone();
        values.CopyTo(copy, offset);
        return copy;
    }

    private static byte[] NtlmStub(byte type) => [.. NtlmMessage.Signature, type, 0, 0, 0];
}
