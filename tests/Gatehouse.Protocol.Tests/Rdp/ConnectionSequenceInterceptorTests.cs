using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Captures;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>The connection-sequence interceptor, PDU by PDU, on the FreeRDP 3 to xrdp capture.</summary>
public sealed class ConnectionSequenceInterceptorTests
{
    private const ConnectionSequenceDirection Up = ConnectionSequenceDirection.ClientToHost;
    private const ConnectionSequenceDirection Down = ConnectionSequenceDirection.HostToClient;
    private static readonly ConnectionSequenceAccount Account = new("VM1", "gh-user", "Sw0rdfish!2026");

    private static ConnectionSequenceInterceptor Relay(bool clientInfoRelayed = false) => new(new ConnectionSequenceOptions
    {
        ClientRequestedProtocols = SecurityProtocol.RdsAad,
        HostSelectedProtocol = SecurityProtocol.Hybrid,
        Account = Account,
        ClientInfoRelayed = clientInfoRelayed,
    });

    private static ConnectionSequenceInterceptor SignIn(int maxPdus = 40) => new(new ConnectionSequenceOptions
    {
        ClientRequestedProtocols = SecurityProtocol.Ssl,
        HostSelectedProtocol = SecurityProtocol.Ssl,
        SignInRules = true,
        MaxClientPdus = maxPdus,
    });

    private static byte[] C(string name) => Captured.FreeRdpToXrdp(name);

    private static ConnectionSequenceVerdict Pass(ConnectionSequenceInterceptor interceptor, ConnectionSequenceDirection direction, byte[] frame) =>
        interceptor.Intercept(direction, frame, frame[0] == TpktHeader.Version ? RdpFrameKind.SlowPath : RdpFrameKind.FastPath);

    [Fact]
    public void Relay_CapturedSequence_RewritesThreePdus_ForwardsTheRest_ThenIsOver()
    {
        var sequence = Relay();

        // Client to host: the Connect Initial carries what the host selected.
        var initial = Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin"));
        Assert.Equal(ConnectionSequenceAction.Rewrite, initial.Action);
        Assert.True(initial.AwaitsAnswer);
        Assert.True(McsConnectInitial.TryParseFrame(initial.Bytes, out var ci, out var error), error?.ToString());
        Assert.Equal(SecurityProtocol.Hybrid, ci.Core.ServerSelectedProtocol);

        // Host to client: the Connect Response carries what the client asked for.
        var response = Pass(sequence, Down, C("s2c-001-mcs-connect-response.bin"));
        Assert.Equal(ConnectionSequenceAction.Rewrite, response.Action);
        Assert.True(McsConnectResponse.TryParseFrame(response.Bytes, out var cr, out error), error?.ToString());
        Assert.Equal(SecurityProtocol.RdsAad, cr.Core.ClientRequestedProtocols);
        Assert.True(sequence.McsConnected);

        foreach (var name in new[] { "c2s-002-mcs-erect-domain.bin", "c2s-003-mcs-attach-user-request.bin", "c2s-004-mcs-channel-join-request.bin" })
        {
            var frame = C(name);
            var verdict = Pass(sequence, Up, frame);
            Assert.Equal(ConnectionSequenceAction.Forward, verdict.Action);
            Assert.Same(frame, verdict.Bytes);
        }

        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, C("s2c-002-mcs-attach-user-confirm.bin")).Action);
        Assert.False(sequence.ClientDone);

        // The Client Info PDU: the injected account, the client's copy wiped.
        var clientInfo = C("c2s-010-client-info.bin");
        var info = Pass(sequence, Up, clientInfo);
        Assert.Equal(ConnectionSequenceAction.Rewrite, info.Action);
        Assert.True(info.HoldsSecret);
        Assert.DoesNotContain(clientInfo, b => b != 0);
        Assert.True(ClientInfoPdu.TryParse(info.Bytes, out var pdu, out error), error?.ToString());
        Assert.Equal(("VM1", "gh-user", "Sw0rdfish!2026"), (pdu.Packet.Domain, pdu.Packet.UserName, pdu.Packet.Password));
        Assert.True(pdu.Packet.Flags.HasFlag(ClientInfoFlags.AutoLogon));
        Assert.True(sequence.ClientDone);
        Assert.False(sequence.IsComplete);

        // The host's licensing, then the Demand Active PDU ends the sequence.
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, C("s2c-010-license-error.bin")).Action);
        Assert.False(sequence.HostDone);
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, C("s2c-011-demand-active.bin")).Action);
        Assert.True(sequence.HostDone);
        Assert.True(sequence.IsComplete);

        // Afterwards: a byte pump, even for what would have been refused before.
        var redirection = ConnectionSequenceCorpus.IndicationFrame(ClientInfoCorpus.EnhancedRedirection);
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, redirection).Action);
        var another = C("c2s-010-client-info.bin");
        var late = Pass(sequence, Up, another);
        Assert.Equal(ConnectionSequenceAction.Forward, late.Action);
        Assert.Same(another, late.Bytes);
        Assert.Equal(C("c2s-010-client-info.bin"), another);
    }

    [Fact]
    public void Relay_FastPathFromTheHost_EndsTheHostSequence()
    {
        var sequence = Relay();
        Pass(sequence, Down, C("s2c-001-mcs-connect-response.bin"));
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, C("s2c-016-fastpath-update.bin")).Action);
        Assert.True(sequence.HostDone);
    }

    [Fact]
    public void Relay_FastPathFromTheClientBeforeItsClientInfo_IsForwarded()
    {
        var sequence = Relay();
        Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin"));
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Up, C("c2s-017-fastpath-input.bin")).Action);
        Assert.False(sequence.ClientDone);
    }

    [Fact]
    public void SignIn_CapturedMcsPhase_AnswersWhatTheHostAnswers_AndHoldsTheClientInfo()
    {
        var sequence = SignIn();
        var initial = Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin"));
        Assert.Equal((ConnectionSequenceAction.Rewrite, true), (initial.Action, initial.AwaitsAnswer));
        Assert.True(McsConnectInitial.TryParseFrame(C("c2s-001-mcs-connect-initial.bin"), out var parsed, out _));
        Assert.Equal(((parsed.Core.EarlyCapabilityFlags ?? 0) & ServerRefusal.SupportErrorInfoPdu) != 0, sequence.ErrorInfoAnnounced);
        Assert.False(sequence.McsConnected);
        Assert.Equal(ConnectionSequenceAction.Rewrite, Pass(sequence, Down, C("s2c-001-mcs-connect-response.bin")).Action);
        Assert.True(sequence.McsConnected);

        var erect = Pass(sequence, Up, C("c2s-002-mcs-erect-domain.bin"));
        Assert.Equal((ConnectionSequenceAction.Forward, false), (erect.Action, erect.AwaitsAnswer));
        var attach = Pass(sequence, Up, C("c2s-003-mcs-attach-user-request.bin"));
        Assert.Equal((ConnectionSequenceAction.Forward, true), (attach.Action, attach.AwaitsAnswer));
        var join = Pass(sequence, Up, C("c2s-004-mcs-channel-join-request.bin"));
        Assert.Equal((ConnectionSequenceAction.Forward, true), (join.Action, join.AwaitsAnswer));

        var clientInfo = C("c2s-010-client-info.bin");
        var held = Pass(sequence, Up, clientInfo);
        Assert.Equal(ConnectionSequenceAction.Hold, held.Action);
        Assert.Same(clientInfo, held.Bytes);
        Assert.Equal(C("c2s-010-client-info.bin"), clientInfo); // held as sent: the sign-in reads the password from it
        Assert.True(sequence.ClientDone);
        Assert.Equal(5, sequence.ClientPdus);
    }

    [Fact]
    public void ClientInfoRelayed_StartsAfterTheClientInfo_AndStillRefusesRedirection()
    {
        var sequence = Relay(clientInfoRelayed: true);
        Assert.True(sequence.ClientDone);
        Assert.True(sequence.McsConnected);
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Up, C("c2s-017-fastpath-input.bin")).Action);
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Down, C("s2c-010-license-error.bin")).Action);
        var refused = Pass(sequence, Down, ConnectionSequenceCorpus.IndicationFrame(ClientInfoCorpus.EnhancedRedirection));
        Assert.Equal((ConnectionSequenceAction.Refuse, ConnectionSequenceRefusal.ServerRedirection), (refused.Action, refused.Refusal));
        Assert.Null(refused.Bytes);
    }

    public static TheoryData<string, bool, ConnectionSequenceRefusal> ClientRefusals() => new()
    {
        // (what the client sends after a good Connect Initial, or "first:" for its first PDU; sign-in rules?; refusal)
        { "first:fast-path", false, ConnectionSequenceRefusal.NotConnectInitial },
        { "first:fast-path", true, ConnectionSequenceRefusal.NotConnectInitial },
        { "first:erect-domain", false, ConnectionSequenceRefusal.ConnectInitialNotRewritable },
        { "first:erect-domain", true, ConnectionSequenceRefusal.NotConnectInitial },
        { "first:not-x224-data", false, ConnectionSequenceRefusal.NotConnectInitial },
        { "first:not-x224-data", true, ConnectionSequenceRefusal.MalformedPdu },
        { "first:empty-x224-data", true, ConnectionSequenceRefusal.MalformedPdu },
        { "first:no-server-selected-protocol", true, ConnectionSequenceRefusal.ConnectInitialNotRewritable },
        { "fast-path", true, ConnectionSequenceRefusal.MalformedPdu },
        { "not-x224-data", true, ConnectionSequenceRefusal.MalformedPdu },
        { "empty-x224-data", true, ConnectionSequenceRefusal.MalformedPdu },
        { "send-data", true, ConnectionSequenceRefusal.SendDataBeforeClientInfo },
        { "channel-join-confirm", true, ConnectionSequenceRefusal.UnexpectedMcsPdu },
        { "ultimatum", true, ConnectionSequenceRefusal.ClientDisconnected },
        { "info-flag-only", false, ConnectionSequenceRefusal.ClientInfoNotRewritable },
    };

    [Theory]
    [MemberData(nameof(ClientRefusals))]
    public void Client_PduThatBreaksTheSequence_IsRefused_AndSoIsEverythingAfter(string what, bool signInRules, ConnectionSequenceRefusal expected)
    {
        var sequence = signInRules ? SignIn() : Relay();
        var name = what.StartsWith("first:", StringComparison.Ordinal) ? what[6..] : what;
        if (name == what)
        {
            Assert.NotEqual(ConnectionSequenceAction.Refuse, Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin")).Action);
        }

        var frame = name switch
        {
            "fast-path" => C("c2s-017-fastpath-input.bin"),
            "erect-domain" => C("c2s-002-mcs-erect-domain.bin"),
            "not-x224-data" => Hex.Bytes("03 00 00 08 02 e0 80 28"),   // a CR TPDU code, not DT
            "empty-x224-data" => Hex.Bytes("03 00 00 07 02 f0 80"),
            "no-server-selected-protocol" => ShortCoreConnectInitial(),
            "send-data" => ClientInfoCorpus.CapturedSendDataLongForm,
            "channel-join-confirm" => C("s2c-003-mcs-channel-join-confirm.bin"),
            "ultimatum" => ConnectionSequenceCorpus.DataFrame(ClientInfoCorpus.DisconnectUserRequested),
            "info-flag-only" => SendDataRequest([0x40, 0x00, 0x00, 0x00]), // SEC_INFO_PKT and no info packet
            _ => throw new ArgumentException(name),
        };
        var copy = (byte[])frame.Clone();
        var verdict = Pass(sequence, Up, frame);
        Assert.Equal(ConnectionSequenceAction.Refuse, verdict.Action);
        Assert.Equal(expected, verdict.Refusal);
        Assert.Null(verdict.Bytes);
        Assert.True(sequence.IsRefused);
        if (expected == ConnectionSequenceRefusal.ClientInfoNotRewritable)
        {
            Assert.NotNull(verdict.Error);
            Assert.DoesNotContain(frame, b => b != 0); // wiped all the same
        }
        else
        {
            Assert.Equal(copy, frame);
        }

        // Nothing passes after a refusal, in either direction.
        Assert.Equal(verdict, Pass(sequence, Down, C("s2c-001-mcs-connect-response.bin")));
        Assert.Equal(verdict, Pass(sequence, Up, C("c2s-002-mcs-erect-domain.bin")));
    }

    [Theory]
    [InlineData("s2c-016-fastpath-update.bin")]
    [InlineData("s2c-002-mcs-attach-user-confirm.bin")]
    public void Host_FirstPduNotAConnectResponse_IsRefused(string name)
    {
        var verdict = Pass(Relay(), Down, C(name));
        Assert.Equal((ConnectionSequenceAction.Refuse, ConnectionSequenceRefusal.NotConnectResponse), (verdict.Action, verdict.Refusal));
    }

    [Fact]
    public void Host_ServerRedirectionBeforeDemandActive_IsRefused()
    {
        var sequence = Relay();
        Pass(sequence, Down, C("s2c-001-mcs-connect-response.bin"));
        Pass(sequence, Down, C("s2c-010-license-error.bin"));
        var verdict = Pass(sequence, Down, ConnectionSequenceCorpus.IndicationFrame(ClientInfoCorpus.EnhancedRedirection));
        Assert.Equal((ConnectionSequenceAction.Refuse, ConnectionSequenceRefusal.ServerRedirection), (verdict.Action, verdict.Refusal));
        Assert.False(sequence.HostDone);
    }

    [Fact]
    public void SignIn_MorePdusThanAllowed_AreRefused()
    {
        var sequence = SignIn(maxPdus: 3);
        Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin"));
        Pass(sequence, Up, C("c2s-002-mcs-erect-domain.bin"));
        Assert.False(sequence.ClientPduLimitReached);
        Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Up, C("c2s-002-mcs-erect-domain.bin")).Action);
        Assert.True(sequence.ClientPduLimitReached);
        var verdict = Pass(sequence, Up, C("c2s-010-client-info.bin"));
        Assert.Equal((ConnectionSequenceAction.Refuse, ConnectionSequenceRefusal.TooManyPdus), (verdict.Action, verdict.Refusal));
        Assert.Equal(3, sequence.ClientPdus);
    }

    [Fact]
    public void Relay_HasNoPduLimit()
    {
        var sequence = Relay();
        Pass(sequence, Up, C("c2s-001-mcs-connect-initial.bin"));
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(ConnectionSequenceAction.Forward, Pass(sequence, Up, C("c2s-002-mcs-erect-domain.bin")).Action);
        }

        Assert.False(sequence.ClientPduLimitReached);
        Assert.Equal(ConnectionSequenceAction.Rewrite, Pass(sequence, Up, C("c2s-010-client-info.bin")).Action);
    }

    [Fact]
    public void Intercept_NullArguments_AreProgrammingErrors()
    {
        Assert.Throws<ArgumentNullException>(() => new ConnectionSequenceInterceptor(null!));
        Assert.Throws<ArgumentNullException>(() => Relay().Intercept(Up, null!, RdpFrameKind.SlowPath));
        Assert.Equal("VM1\\gh-user", Account.ToString());
        Assert.Equal("gh-user", (Account with { Domain = string.Empty }).ToString());
    }

    /// <summary>A Connect Initial whose client core data stops before serverSelectedProtocol: it parses, but cannot be patched.</summary>
    private static byte[] ShortCoreConnectInitial()
    {
        Assert.True(McsConnectInitial.TryParseFrame(C("c2s-001-mcs-connect-initial.bin"), out var initial, out _));
        var core = initial.Find(GccBlockType.ClientCore)!.Encoded[..ClientCoreData.ServerSelectedProtocolOffset].ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(core.AsSpan(2), (ushort)core.Length);
        var trimmed = initial.WithBlock(new GccUserDataBlock(core));
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        trimmed.WriteFrame(output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] SendDataRequest(byte[] userData)
    {
        var mcs = McsSendData.Create(DomainMcsPduType.SendDataRequest, 1007, 1003, userData.Length);
        var body = new System.Buffers.ArrayBufferWriter<byte>();
        mcs.Write(body, userData);
        return ConnectionSequenceCorpus.DataFrame(body.WrittenSpan.ToArray());
    }
}
