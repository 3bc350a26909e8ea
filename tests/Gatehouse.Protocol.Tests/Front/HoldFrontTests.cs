using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Fuzz.Targets;
using Gatehouse.Protocol.Front;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Front;

public sealed class HoldFrontTests
{
    private const uint ShareId = 0x0002_03EA;
    private const SecurityProtocol Requested = SecurityProtocol.Ssl | SecurityProtocol.Hybrid | SecurityProtocol.HybridEx;

    private static HoldFront NewFront(bool defaultPointer = true) =>
        new(new HoldFrontOptions { ClientRequestedProtocols = Requested, ShareId = ShareId, SendDefaultPointer = defaultPointer });

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    public void ConnectInitial_WritesConnectResponse_OneIdPerChannel(int channels, bool messageChannel)
    {
        var settings = new HoldFrontClientSettings { Channels = [.. Enumerable.Range(0, channels).Select(i => $"ch{i}")], MessageChannel = messageChannel };
        var client = new FrontTestClient(settings);
        var front = NewFront();

        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));

        var response = client.ConnectResponse!;
        Assert.Equal(Requested, response.Core.ClientRequestedProtocols);
        Assert.Equal(0x0008_0004u, response.Core.Version);
        Assert.Equal(0u, response.Core.EarlyCapabilityFlags);
        Assert.Equal(new byte[] { 0x02, 0x0C, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, response.Find(GccBlockType.ServerSecurity)!.Encoded.ToArray());
        Assert.Equal(Enumerable.Range(1004, channels).Select(i => (ushort)i), client.StaticChannelIds);
        Assert.Equal(front.ChannelIds, client.StaticChannelIds);
        Assert.Equal(messageChannel ? (ushort)(1004 + channels) : null, client.MessageChannelId);
        Assert.Equal(front.MessageChannelId, client.MessageChannelId);
        Assert.Equal(settings.Channels, front.Channels.Select(c => c.Name));
        Assert.Equal(34u, response.DomainParameters.MaxChannelIds);
        Assert.Equal(HoldFrontState.WaitingForErectDomain, front.State);
        Assert.True(front.ClientSupportsRedirection);
        Assert.True(front.ClientSupportsErrorInfo);
        Assert.Same(front.ConnectInitial, front.ConnectInitial);
    }

    [Fact]
    public void AttachUser_ConfirmsTheUserChannelAfterTheStaticChannels()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings());
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.ErectDomain()));

        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));

        Assert.Equal(1007, client.UserChannelId);
        Assert.Equal(front.UserChannelId, client.UserChannelId);
        Assert.Equal(HoldFrontState.JoiningChannels, front.State);
    }

    [Fact]
    public void ChannelJoins_ConfirmEach_ThenWaitForClientInfo()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { MessageChannel = true });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        var joins = client.ChannelsToJoin();
        Assert.Equal(6, joins.Count);

        foreach (var channel in joins)
        {
            Assert.Equal(HoldFrontState.JoiningChannels, front.State);
            client.ReadChannelJoinConfirm(front.Receive(HoldFrontClientPdus.ChannelJoin(client.UserChannelId, channel)), channel);
        }

        Assert.Equal(HoldFrontState.WaitingForClientInfo, front.State);
    }

    [Fact]
    public void SkipChannelJoin_IsGranted_AndTheClientGoesStraightToClientInfo()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        Assert.Equal(0x8u, client.ConnectResponse!.Core.EarlyCapabilityFlags);
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));

        Assert.True(front.SkipChannelJoin);
        Assert.Equal(HoldFrontState.WaitingForClientInfo, front.State);
        client.ReadLicenseAndDemandActive(front.Receive(client.ClientInfo()));
        Assert.Equal(HoldFrontState.WaitingForConfirmActive, front.State);
    }

    [Fact]
    public void SkipChannelJoin_StillAnswersAJoinTheClientSendsAnyway()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));

        client.ReadChannelJoinConfirm(front.Receive(HoldFrontClientPdus.ChannelJoin(client.UserChannelId, 1003)), 1003);
        Assert.Equal(HoldFrontState.WaitingForClientInfo, front.State);
    }

    [Fact]
    public void ClientInfo_RaisesTheEvent_AndDemandActiveCarriesTheMinimalCapabilities()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { Width = 1280, Height = 720 });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        foreach (var channel in client.ChannelsToJoin())
        {
            front.Receive(HoldFrontClientPdus.ChannelJoin(client.UserChannelId, channel));
        }

        var result = front.Receive(client.ClientInfo());

        client.ReadLicenseAndDemandActive(result);
        var info = Assert.IsType<ClientInfoReceived>(Assert.Single(result.Events)).Info;
        Assert.Equal("alice", info.UserName);
        Assert.Equal("CORP", info.Domain);
        Assert.True(info.PasswordGiven);
        Assert.Equal(info, front.ClientInfo);
        var demand = client.Demand!;
        Assert.Equal(ShareId, demand.ShareId);
        Assert.Equal("RDP\0", demand.SourceDescriptor);
        Assert.Equal(1002, demand.PduSource);
        Assert.Equal(new ushort[] { 1, 2, 3, 8, 13, 20, 26, 9, 14 }, demand.Capabilities.Keys);
        Assert.DoesNotContain((ushort)28, demand.Capabilities.Keys); // no surface commands
        Assert.DoesNotContain((ushort)29, demand.Capabilities.Keys); // no bitmap codecs
        var general = demand.Capabilities[1];
        Assert.Equal(0x0005, BinaryPrimitives.ReadUInt16LittleEndian(general.AsSpan(10))); // FASTPATH_OUTPUT | LONG_CREDENTIALS
        Assert.Equal(1, general[18]); // refreshRectSupport
        Assert.Equal(1, general[19]); // suppressOutputSupport
        var bitmap = demand.Capabilities[2];
        Assert.Equal(32, BinaryPrimitives.ReadUInt16LittleEndian(bitmap));
        Assert.Equal(1280, BinaryPrimitives.ReadUInt16LittleEndian(bitmap.AsSpan(8)));
        Assert.Equal(720, BinaryPrimitives.ReadUInt16LittleEndian(bitmap.AsSpan(10)));
        var order = demand.Capabilities[3];
        Assert.Equal(84, order.Length);
        Assert.Equal(0x000A, BinaryPrimitives.ReadUInt16LittleEndian(order.AsSpan(30)));
        Assert.All(order.AsSpan(32, 32).ToArray(), b => Assert.Equal(0, b)); // no drawing orders
        Assert.Equal(0x003D, BinaryPrimitives.ReadUInt16LittleEndian(demand.Capabilities[13]));
        Assert.Equal(84, demand.Capabilities[13].Length);
    }

    [Fact]
    public void ClientInfo_WithoutPassword_SaysSo()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));

        var result = front.Receive(client.ClientInfo(password: string.Empty));

        Assert.False(Assert.IsType<ClientInfoReceived>(Assert.Single(result.Events)).Info.PasswordGiven);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void WholeSequence_ReachesActive_WithFinalizationInOrder(bool skip, bool messageChannel)
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = skip, MessageChannel = messageChannel });
        var front = client.RunToActive(NewFront());

        Assert.Equal(1024, front.DesktopWidth);
        Assert.Equal(768, front.DesktopHeight);
        Assert.Equal(32, front.BitsPerPixel);
        Assert.Equal(0x0009_8000u, front.ClientMaxRequestSize);
    }

    [Fact]
    public void Finalization_WithoutDefaultPointer_WritesOnlyTheFourPdus()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront(defaultPointer: false);
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        client.ReadLicenseAndDemandActive(front.Receive(client.ClientInfo()));
        front.Receive(client.ConfirmActive());

        // Only the Font List makes the server answer (IronRDP and FreeRDP servers do the same).
        var frames = client.FinalizationFrames();
        client.ReadFinalization(front.Receive(frames[^1]), defaultPointer: false);
        var pointer = new ArrayBufferWriter<byte>();
        front.WriteDefaultPointer(pointer);
        Assert.Equal(new byte[] { 0x00, 0x05, 0x06, 0x00, 0x00 }, pointer.WrittenSpan.ToArray());
    }

    [Fact]
    public void InputBeforeActivation_IsDropped_NeverFatal()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront();
        var keys = HoldFrontClientPdus.FastPathInput(1, [0x00, 0x1C]);
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        FrontTestClient.AssertQuiet(front.Receive(keys));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        client.ReadLicenseAndDemandActive(front.Receive(client.ClientInfo()));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.SlowPathInput(client.UserChannelId, ShareId, (0x0004, 0, 0x1C, 0))));
        FrontTestClient.AssertQuiet(front.Receive(client.ConfirmActive()));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.SlowPathInput(client.UserChannelId, ShareId, (0x0004, 0, 0x1C, 0))));
        FrontTestClient.AssertQuiet(front.Receive([0x00, 0x03, 0xFF])); // malformed, but not read before activation

        client.ReadFinalization(front.Receive(HoldFrontClientPdus.FontList(client.UserChannelId, ShareId)));
        Assert.Equal(HoldFrontState.Active, front.State);
        Assert.Equal(4, front.DroppedInputFrames);
    }

    [Fact]
    public void VirtualChannelData_IsIgnored_InEveryPhase()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true });
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        front.Receive(HoldFrontClientPdus.ErectDomain());
        client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.SendData(client.UserChannelId, 1004, [1, 2, 3])));
        client.ReadLicenseAndDemandActive(front.Receive(client.ClientInfo()));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.SendData(client.UserChannelId, 1005, [0xFF])));
        Assert.Equal(HoldFrontState.WaitingForConfirmActive, front.State);
    }

    [Fact]
    public void FastPathInput_WhenActive_BecomesEvents()
    {
        var front = new FrontTestClient(new HoldFrontClientSettings()).RunToActive(NewFront());
        byte[] events =
        [
            0x00, 0x1C, // scancode Enter down
            0x03, 0x48, // scancode extended, released (E0 48 up)
            0x80, 0x41, 0x00, // unicode 'A' down
            0x20, 0x00, 0x08, 0x0A, 0x00, 0x14, 0x00, // mouse move to (10, 20)
            0x20, 0x00, 0x90, 0x0A, 0x00, 0x14, 0x00, // left button down
            0x20, 0x88, 0x03, 0x00, 0x00, 0x00, 0x00, // wheel, negative: 0x388 -> -120
            0x40, 0x01, 0x80, 0x01, 0x00, 0x02, 0x00, // extended mouse X1 down
            0x65, // sync: scroll lock | caps lock
            0xC0, 0x01, 0x02, 0x03, 0x04, // QoE timestamp, ignored
        ];

        var result = front.Receive(HoldFrontClientPdus.FastPathInput(9, events));

        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(
            [
                new KeyPressed(0x1C, false, false),
                new KeyPressed(0x48, true, true),
                new UnicodeKey('A', false),
                new Mouse(10, 20, MouseButton.None, false, 0, false),
                new Mouse(10, 20, MouseButton.Left, true, 0, false),
                new Mouse(0, 0, MouseButton.None, false, -120, false),
                new Mouse(1, 2, MouseButton.X1, true, 0, false),
                new KeyboardSynchronized(5),
            ],
            result.Events);
    }

    [Fact]
    public void SlowPathPdus_WhenActive_BecomeEvents()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings());
        var front = client.RunToActive(NewFront());
        var user = client.UserChannelId;

        var input = front.Receive(HoldFrontClientPdus.SlowPathInput(
            user, ShareId, (0x0004, 0x0100, 0x1C, 0), (0x0004, 0x8000, 0x0E, 0), (0x0005, 0x8000, 0x263A, 0), (0x8001, 0x2800, 5, 6), (0x8001, 0x0478, 0, 0),
            (0x8002, 0x8002, 7, 8), (0x0000, 0, 2, 0), (0x0002, 0, 0, 0)));
        Assert.True(input.IsSuccess, input.ToString());
        Assert.Equal(
            [
                new KeyPressed(0x1C, true, false),
                new KeyPressed(0x0E, false, true),
                new UnicodeKey('\u263A', true),
                new Mouse(5, 6, MouseButton.Right, false, 0, false),
                new Mouse(0, 0, MouseButton.None, false, 120, true),
                new Mouse(7, 8, MouseButton.X2, true, 0, false),
                new KeyboardSynchronized(2),
            ],
            input.Events);

        var refresh = front.Receive(HoldFrontClientPdus.RefreshRect(user, ShareId, (0, 0, 63, 63), (64, 0, 127, 31)));
        Assert.Equal([new HoldRectangle(0, 0, 63, 63), new HoldRectangle(64, 0, 127, 31)], Assert.IsType<RefreshRequested>(Assert.Single(refresh.Events)).Areas);
        Assert.Equal(new SuppressOutput(false, null), Assert.Single(front.Receive(HoldFrontClientPdus.SuppressOutput(user, ShareId, false)).Events));
        Assert.True(front.OutputSuppressed);
        Assert.Equal(new SuppressOutput(true, new HoldRectangle(0, 0, 1023, 767)), Assert.Single(front.Receive(HoldFrontClientPdus.SuppressOutput(user, ShareId, true, 1024, 768)).Events));
        Assert.False(front.OutputSuppressed);
        Assert.IsType<ClientShutdownRequested>(Assert.Single(front.Receive(HoldFrontClientPdus.ShutdownRequest(user, ShareId)).Events));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.Synchronize(user, ShareId)));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.PersistentKeyList(user, ShareId)));
        FrontTestClient.AssertQuiet(front.Receive(HoldFrontClientPdus.SendData(user, 1003, [0x06, 0x00, 0x16, 0x00, 0xEF, 0x03]))); // a share control PDU of another type
        Assert.Equal(HoldFrontState.Active, front.State);
    }

    /// <summary>Each phase's malformed or misplaced client PDU and the typed error it must give.</summary>
    public static TheoryData<string, HoldFrontError> MalformedCases() => new()
    {
        { "connect-initial-truncated", HoldFrontError.MalformedPdu },
        { "connect-initial-not-x224", HoldFrontError.MalformedPdu },
        { "connect-initial-huge-desktop", HoldFrontError.UnsupportedClient },
        { "erect-domain-garbage", HoldFrontError.MalformedPdu },
        { "erect-domain-truncated", HoldFrontError.MalformedPdu },
        { "attach-before-erect", HoldFrontError.UnexpectedPdu },
        { "attach-user-trailing", HoldFrontError.MalformedPdu },
        { "join-unknown-channel", HoldFrontError.WrongIdentifier },
        { "join-wrong-initiator", HoldFrontError.WrongIdentifier },
        { "join-truncated", HoldFrontError.MalformedPdu },
        { "client-info-before-joins", HoldFrontError.UnexpectedPdu },
        { "client-info-malformed", HoldFrontError.MalformedPdu },
        { "client-info-wrong-user", HoldFrontError.WrongIdentifier },
        { "send-data-truncated", HoldFrontError.MalformedPdu },
        { "confirm-active-wrong-share", HoldFrontError.WrongIdentifier },
        { "confirm-active-truncated", HoldFrontError.MalformedPdu },
        { "confirm-active-no-fast-path", HoldFrontError.UnsupportedClient },
        { "confirm-active-short-capability", HoldFrontError.MalformedPdu },
        { "share-control-garbage", HoldFrontError.MalformedPdu },
        { "finalization-share-data-compressed", HoldFrontError.MalformedPdu },
        { "confirm-active-twice", HoldFrontError.UnexpectedPdu },
        { "active-fast-path-truncated", HoldFrontError.MalformedPdu },
        { "active-fast-path-encrypted", HoldFrontError.MalformedPdu },
        { "active-fast-path-bad-event", HoldFrontError.MalformedPdu },
        { "active-slow-input-truncated", HoldFrontError.MalformedPdu },
        { "active-slow-input-too-many", HoldFrontError.MalformedPdu },
        { "active-slow-input-bad-type", HoldFrontError.MalformedPdu },
        { "active-refresh-truncated", HoldFrontError.MalformedPdu },
        { "active-suppress-bad-flag", HoldFrontError.MalformedPdu },
        { "active-suppress-no-rect", HoldFrontError.MalformedPdu },
        { "active-neither-tpkt-nor-fast-path", HoldFrontError.MalformedPdu },
        { "active-empty", HoldFrontError.MalformedPdu },
        { "active-wrong-user", HoldFrontError.WrongIdentifier },
        { "active-disconnect", HoldFrontError.ClientDisconnected },
        { "active-mcs-garbage", HoldFrontError.MalformedPdu },
        { "active-join", HoldFrontError.UnexpectedPdu },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedOrMisplacedPdu_GivesATypedError_AndClosesTheFront(string name, HoldFrontError expected)
    {
        var settings = new HoldFrontClientSettings { GeneralExtraFlags = name == "confirm-active-no-fast-path" ? (ushort)0x0004 : (ushort)0x0405 };
        var client = new FrontTestClient(settings);
        var front = NewFront();
        const ushort user = 1007;
        byte[] Share(byte type, params byte[] body) => HoldFrontClientPdus.ShareData(user, ShareId, type, body);

        // Drive the front to the phase the case is about, then send the bad frame.
        byte[] bad;
        var phase = name.Split('-')[0];
        if (phase == "connect")
        {
            var initial = client.ConnectInitial();
            bad = name switch
            {
                "connect-initial-truncated" => Truncate(initial, 40),
                "connect-initial-not-x224" => [0x03, 0x00, 0x00, 0x08, 0x02, 0xE0, 0x80, 0x00],
                _ => HoldFrontClientPdus.ConnectInitial(settings with { Width = 20000 }),
            };
        }
        else
        {
            client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
            if (phase is "erect" or "attach" && name != "attach-user-trailing")
            {
                bad = name switch
                {
                    "erect-domain-garbage" => HoldFrontClientPdus.Frame([0x04, 0xFF]),
                    "erect-domain-truncated" => HoldFrontClientPdus.Frame([0x04]),
                    _ => HoldFrontClientPdus.AttachUser(),
                };
            }
            else
            {
                front.Receive(HoldFrontClientPdus.ErectDomain());
                if (name == "attach-user-trailing")
                {
                    bad = HoldFrontClientPdus.Frame([0x28, 0x00]);
                }
                else
                {
                    client.ReadAttachUserConfirm(front.Receive(HoldFrontClientPdus.AttachUser()));
                    bad = BadAfterAttach(name, client, front, Share);
                }
            }
        }

        var result = front.Receive(bad);

        Assert.Equal(expected, result.Error);
        Assert.False(result.IsSuccess);
        Assert.NotNull(result.ErrorText);
        Assert.True(result.Output.IsEmpty);
        Assert.Empty(result.Events);
        Assert.Equal(HoldFrontState.Closed, front.State);
        if (expected == HoldFrontError.MalformedPdu)
        {
            Assert.NotNull(result.PduError);
        }

        Assert.Equal(HoldFrontError.Closed, front.Receive(HoldFrontClientPdus.ErectDomain()).Error);
    }

    private static byte[] BadAfterAttach(string name, FrontTestClient client, HoldFront front, Func<byte, byte[], byte[]> share)
    {
        var user = client.UserChannelId;
        switch (name)
        {
            case "join-unknown-channel":
                return HoldFrontClientPdus.ChannelJoin(user, 1999);
            case "join-wrong-initiator":
                return HoldFrontClientPdus.ChannelJoin(1001, 1003);
            case "join-truncated":
                return HoldFrontClientPdus.Frame([0x38, 0x00, 0x06]);
            case "client-info-before-joins":
                return client.ClientInfo();
        }

        foreach (var channel in client.ChannelsToJoin())
        {
            front.Receive(HoldFrontClientPdus.ChannelJoin(user, channel));
        }

        switch (name)
        {
            case "client-info-malformed":
                return HoldFrontClientPdus.SendData(user, 1003, [0x40, 0x00, 0x00, 0x00, 0x01]);
            case "client-info-wrong-user":
                return HoldFrontClientPdus.ClientInfo(1004, "CORP", "alice", "x");
            case "send-data-truncated":
                return HoldFrontClientPdus.Frame([0x64, 0x00, 0x06, 0x03, 0xEB, 0x70, 0x80]);
        }

        client.ReadLicenseAndDemandActive(front.Receive(client.ClientInfo()));
        var confirm = client.ConfirmActive();
        switch (name)
        {
            case "confirm-active-wrong-share":
                return HoldFrontClientPdus.ConfirmActive(user, ShareId + 1, 32, client.Settings);
            case "confirm-active-truncated":
                return HoldFrontHelpers.ShrinkSendData(confirm, 30);
            case "confirm-active-no-fast-path":
                return confirm;
            case "confirm-active-short-capability":
                // The first capability set (General) claims a length of 2.
                var copy = (byte[])confirm.Clone();
                var offset = Array.IndexOf(copy, (byte)'M') + 6 + 4;
                BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset + 2), 2);
                return copy;
            case "share-control-garbage":
                return HoldFrontClientPdus.SendData(user, 1003, [0x02, 0x00]);
        }

        FrontTestClient.AssertQuiet(front.Receive(confirm));
        if (name == "finalization-share-data-compressed")
        {
            var sync = HoldFrontClientPdus.Synchronize(user, ShareId);
            sync[^7] = 0x20; // compressedType PACKET_COMPRESSED
            return sync;
        }

        if (name == "confirm-active-twice")
        {
            return confirm;
        }

        front.Receive(HoldFrontClientPdus.FontList(user, ShareId));
        Assert.Equal(HoldFrontState.Active, front.State);
        return name switch
        {
            "active-fast-path-truncated" => HoldFrontClientPdus.FastPathInput(2, [0x00, 0x1C, 0x00]),
            "active-fast-path-encrypted" => [0x84, 0x04, 0x00, 0x1C],
            "active-fast-path-bad-event" => HoldFrontClientPdus.FastPathInput(1, [0xE0]),
            "active-slow-input-truncated" => share(0x1C, [0x01, 0x00, 0x00, 0x00, 0x00, 0x00]),
            "active-slow-input-too-many" => share(0x1C, [0xFF, 0xFF, 0x00, 0x00]),
            "active-slow-input-bad-type" => share(0x1C, [0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0x09, 0x00, 0, 0, 0, 0, 0, 0]),
            "active-refresh-truncated" => share(0x21, [0x02, 0, 0, 0, 0, 0, 0, 0, 10, 0, 10, 0]),
            "active-suppress-bad-flag" => share(0x23, [0x02, 0, 0, 0]),
            "active-suppress-no-rect" => share(0x23, [0x01, 0, 0, 0]),
            "active-neither-tpkt-nor-fast-path" => [0x01, 0x02, 0x03],
            "active-empty" => [],
            "active-wrong-user" => HoldFrontClientPdus.Synchronize(1010, ShareId),
            "active-disconnect" => HoldFrontClientPdus.Disconnect(),
            "active-mcs-garbage" => HoldFrontClientPdus.Frame([0xFF]),
            "active-join" => HoldFrontClientPdus.ChannelJoin(user, 1003),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such case"),
        };
    }

    private static byte[] Truncate(byte[] frame, int remove)
    {
        var copy = frame[..^remove];
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(2), (ushort)copy.Length);
        return copy;
    }

    [Theory]
    [InlineData(32, 0x0009_8000u)]
    [InlineData(16, 0x0009_8000u)]
    [InlineData(32, 8_000u)]
    [InlineData(32, 0u)]
    [InlineData(16, 0u)]
    public void WriteBitmap_RoundTripsThePixels_WithinTheFragmentLimits(int bpp, uint maxRequestSize)
    {
        var settings = new HoldFrontClientSettings { Want32Bpp = bpp == 32, HighColorDepth = bpp == 32 ? 24 : 16, MaxRequestSize = maxRequestSize == 0 ? null : maxRequestSize, SkipChannelJoin = true };
        var front = new FrontTestClient(settings).RunToActive(NewFront());
        Assert.Equal(bpp, front.BitsPerPixel);
        const int X = 5, Y = 7, W = 130, H = 70;
        var random = new Random(42);
        var pixels = new uint[W * H];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (uint)random.Next() | 0xFF00_0000;
        }

        var output = new ArrayBufferWriter<byte>();
        var tiles = front.WriteBitmap(output, X, Y, W, H, pixels, W);

        var bitmaps = FrontTestClient.DecodeBitmaps(output.WrittenMemory, Math.Max(maxRequestSize, FrontOutput.MaxUpdateDataPerPdu));
        Assert.Equal(tiles, bitmaps.Count);
        var rows = FrontOutput.TileRows(bpp, maxRequestSize);
        Assert.Equal(3 * ((H + rows - 1) / rows), tiles);
        var painted = new uint[W * H];
        foreach (var b in bitmaps)
        {
            Assert.Equal(bpp, b.BitsPerPixel);
            var visible = b.Right - b.Left + 1;
            for (var row = 0; row < b.Height; row++)
            {
                for (var col = 0; col < visible; col++)
                {
                    painted[((b.Top - Y + row) * W) + b.Left - X + col] = b.Pixels[(row * visible) + col];
                }
            }
        }

        var expected = bpp == 32 ? pixels : [.. pixels.Select(p => (uint)FrontOutput.ToRgb565(p))];
        Assert.Equal(expected, painted);
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(803, 601)]
    [InlineData(7, 3)]
    public void WriteBitmap_CompressibleImage_IsPlanarCompressed_AndDecodesBack(int w, int h)
    {
        // A gradient with a flat box and a one-pixel marker: what a hold screen looks like to the codec.
        var front = new FrontTestClient(new HoldFrontClientSettings { Width = 1024, Height = 768, SkipChannelJoin = true }).RunToActive(NewFront());
        var pixels = new uint[w * h];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                pixels[(y * w) + x] = 0xFF000000u | ((uint)(x * 255 / w) << 16) | ((uint)(y * 255 / h) << 8) | (y < h / 6 ? 0xFFu : 0x40u);
            }
        }

        for (var y = h / 6; y < h / 4; y++)
        {
            for (var x = w / 8; x < w / 3; x++)
            {
                pixels[(y * w) + x] = 0xFFFFFFFF;
            }
        }

        pixels[0] = 0xFFFF0000;
        var output = new ArrayBufferWriter<byte>();

        front.WriteBitmap(output, 0, 0, w, h, pixels, w);

        var bitmaps = FrontTestClient.DecodeBitmaps(output.WrittenMemory, front.ClientMaxRequestSize);
        var painted = new uint[w * h];
        foreach (var b in bitmaps)
        {
            var visible = b.Right - b.Left + 1;
            for (var row = 0; row < b.Height; row++)
            {
                for (var col = 0; col < visible; col++)
                {
                    painted[((b.Top + row) * w) + b.Left + col] = b.Pixels[(row * visible) + col];
                }
            }
        }

        Assert.Equal(pixels, painted);
        if (w * h > 1000)
        {
            Assert.True(output.WrittenCount * 10 < w * h * 4, $"{output.WrittenCount} bytes for {w}x{h}: planar should save at least 90 % here");
        }
    }

    [Fact]
    public void WriteBitmap_FlatTile_TakesFewHundredBytes()
    {
        // The bytes a flat 64x64 tile costs on the wire (fast-path PDU included), against 16,406 + headers raw.
        var front = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true }).RunToActive(NewFront());
        var pixels = new uint[64 * 64];
        Array.Fill(pixels, 0xFF2B579Au);
        var output = new ArrayBufferWriter<byte>();

        front.WriteBitmap(output, 0, 0, 64, 64, pixels, 64);

        Assert.Single(FrontTestClient.Frames(output.WrittenMemory));
        Assert.Equal(430, output.WrittenCount);
    }

    [Fact]
    public void WriteBitmap_WithoutCompression_SendsRawTiles()
    {
        var options = new HoldFrontOptions { ShareId = ShareId, CompressBitmaps = false };
        var front = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true }).RunToActive(new HoldFront(options));
        var output = new ArrayBufferWriter<byte>();

        front.WriteBitmap(output, 0, 0, 64, 64, new uint[64 * 64], 64);

        Assert.True(output.WrittenCount > 64 * 64 * 4);
    }

    [Fact]
    public void Rdp6Planar_SpecExample_DecodesAsTheSpecSays()
    {
        // [MS-RDPEGDI] 3.1.9.2.3: a 6x3 plane; the first scanline decodes to 255 255 255 255 254 253.
        byte[] encoded = [0x13, 0xFF, 0x20, 0xFE, 0xFD, 0x60, 0x01, 0x7D, 0xF5, 0xC2, 0x9A, 0x38, 0x60, 0x01, 0x67, 0x8B, 0xA3, 0x78, 0xAF];
        var o = 0;

        var plane = FrontTestClient.DecodePlane(encoded, ref o, 6, 3);

        Assert.Equal(encoded.Length, o);
        Assert.Equal(new byte[] { 255, 255, 255, 255, 254, 253 }, plane[..6]);
    }

    [Theory]
    [InlineData(110, 0xF2)] // 16 + 47 + 47
    [InlineData(83, 0x41)] // 16 + 47 + 20: nRunLength 1, 16 + 4
    [InlineData(68, 0x05)] // 16 + 47 + 5: a short run of the last value, no raw byte
    public void Rdp6Planar_LongRuns_UseTheLongForms(int width, byte lastControl)
    {
        // One row of equal non-zero bytes per plane: one raw byte and a run of 15, then runs of the last value.
        var bgra = new byte[width * 4];
        bgra.AsSpan().Fill(0x80);
        var encoded = new byte[Rdp6Planar.MaxSize(width, 1)];

        var length = Rdp6Planar.Encode(bgra, width, 1, encoded);

        Assert.Equal(1 + (3 * 4), length);
        Assert.Equal(new byte[] { 0x30, 0x1F, 0x80, 0xF2, lastControl }, encoded[..5]); // header; raw 1 + run 15; run 32 + 15
        Assert.Equal(bgra.Select((b, i) => i % 4 == 3 ? (byte)0xFF : b), FrontTestClient.DecodePlanar(encoded.AsSpan(0, length), width, 1));
    }

    [Fact]
    public void WriteBitmap_FullTileAt32Bpp_IsFragmentedFirstNextLast()
    {
        var front = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true }).RunToActive(new HoldFront(new HoldFrontOptions { ShareId = ShareId, CompressBitmaps = false }));
        var output = new ArrayBufferWriter<byte>();

        front.WriteBitmap(output, 0, 0, 64, 64, new uint[64 * 64], 64);

        var frames = FrontTestClient.Frames(output.WrittenMemory);
        Assert.Equal(2, frames.Count);
        Assert.Equal(FrontOutput.MaxFastPathPduSize, frames[0].Length);
        Assert.Equal(0x21, UpdateHeader(frames[0])); // BITMAP | FIRST << 4
        Assert.Equal(0x11, UpdateHeader(frames[1])); // BITMAP | LAST << 4
        Assert.Equal(4 + 18 + (64 * 64 * 4), frames.Sum(f => f.Length - (f[1] >= 0x80 ? 3 : 2) - 3));
    }

    private static byte UpdateHeader(byte[] frame) => frame[frame[1] >= 0x80 ? 3 : 2];

    [Fact]
    public void WriteBitmap_AThirdFragment_IsNext()
    {
        var output = new ArrayBufferWriter<byte>();

        FrontOutput.WriteUpdate(output, FrontOutput.UpdateCodeBitmap, new byte[(2 * FrontOutput.MaxUpdateDataPerPdu) + 1]);

        Assert.Equal([0x21, 0x31, 0x11], FrontTestClient.Frames(output.WrittenMemory).Select(UpdateHeader));
    }

    [Theory]
    [InlineData(true, 16, 32)]
    [InlineData(false, 24, 32)]
    [InlineData(false, 16, 16)]
    [InlineData(false, 15, 16)]
    public void ColourDepth_FollowsWant32BppAndHighColorDepth(bool want32, int highColorDepth, int expected)
    {
        var client = new FrontTestClient(new HoldFrontClientSettings { Want32Bpp = want32, HighColorDepth = highColorDepth });
        var front = NewFront();

        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));

        Assert.Equal(expected, front.BitsPerPixel);
    }

    [Fact]
    public void ConfirmActive_CanChooseSixteenBitsPerPixel()
    {
        var settings = new HoldFrontClientSettings { ConfirmBitsPerPixel = 16, Width = 800, Height = 600, SkipChannelJoin = true };
        var front = new FrontTestClient(settings).RunToActive(NewFront());

        Assert.Equal(16, front.BitsPerPixel);
        Assert.Equal(800, front.DesktopWidth);
    }

    [Fact]
    public void Writers_BeforeActivation_Throw()
    {
        var front = NewFront();
        var output = new ArrayBufferWriter<byte>();

        Assert.Throws<InvalidOperationException>(() => front.WriteBitmap(output, 0, 0, 4, 4, new uint[16], 4));
        Assert.Throws<InvalidOperationException>(() => front.WriteRedirection(output, "abc"u8));
        Assert.Throws<InvalidOperationException>(() => front.WriteRefusal(output, ErrorInfoCode.ServerDeniedConnection));
        Assert.Throws<InvalidOperationException>(() => front.WriteDefaultPointer(output));
    }

    [Fact]
    public void WriteBitmap_BadArguments_Throw()
    {
        var front = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true }).RunToActive(NewFront());
        var output = new ArrayBufferWriter<byte>();

        Assert.Throws<ArgumentException>(() => front.WriteBitmap(output, 1000, 0, 100, 4, new uint[400], 100));
        Assert.Throws<ArgumentException>(() => front.WriteBitmap(output, 0, 0, 8, 8, new uint[10], 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => front.WriteBitmap(output, 0, 0, 0, 8, new uint[10], 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => FrontOutput.WriteBitmap(output, 0, 0, 4, 4, new uint[16], 4, 24, 0));
        Assert.Throws<ArgumentException>(() => FrontOutput.WriteBitmap(output, 65530, 0, 10, 1, new uint[10], 10, 32, 0));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WriteRefusal_WritesSetErrorInfoAndDisconnect_EvenWithoutTheErrInfoFlag(bool errorInfo)
    {
        // FreeRDP 3.10 never sets RNS_UD_CS_SUPPORT_ERRINFO_PDU but shows the reason of a Set Error Info PDU.
        var front = new FrontTestClient(new HoldFrontClientSettings { SupportErrorInfo = errorInfo }).RunToActive(NewFront());
        var output = new ArrayBufferWriter<byte>();

        front.WriteRefusal(output, ErrorInfoCode.ServerDeniedConnection);

        var frames = FrontTestClient.Frames(output.WrittenMemory);
        Assert.Equal(2, frames.Count);
        Assert.Equal(errorInfo, front.ClientSupportsErrorInfo);
        Assert.True(SetErrorInfoPdu.TryParse(FrontTestClient.Indication(frames[0]), out var pdu, out var error), error?.ToString());
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, pdu.ErrorInfo);
        Assert.Equal(ShareId, pdu.Header.ShareId);

        Assert.True(X224Data.TryUnwrapFrame(frames[^1], out var payload, out var unwrapError), unwrapError?.ToString());
        Assert.True(DisconnectProviderUltimatum.TryParse(payload, out var ultimatum, out var dpuError), dpuError?.ToString());
        Assert.Equal(McsDisconnectReason.ProviderInitiated, ultimatum.Reason);
        Assert.Equal(HoldFrontState.Closed, front.State);
    }

    [Fact]
    public void WriteRefusal_BeforeActivation_IsAllowedOnceTheDomainExists()
    {
        var client = new FrontTestClient(new HoldFrontClientSettings());
        var front = NewFront();
        client.ReadConnectResponse(front.Receive(client.ConnectInitial()));
        var output = new ArrayBufferWriter<byte>();

        front.WriteRefusal(output, ErrorInfoCode.ServerDeniedConnection);

        Assert.Equal(2, FrontTestClient.Frames(output.WrittenMemory).Count);
        Assert.Throws<InvalidOperationException>(() => front.WriteRefusal(output, ErrorInfoCode.ServerDeniedConnection));
    }

    [Fact]
    public void WriteRedirection_WritesALoadBalanceInfoTheParserReads()
    {
        var front = new FrontTestClient(new HoldFrontClientSettings()).RunToActive(NewFront());
        var output = new ArrayBufferWriter<byte>();

        front.WriteRedirection(output, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"u8);

        var data = FrontTestClient.Indication(Assert.Single(FrontTestClient.Frames(output.WrittenMemory)));
        Assert.True(ServerRedirection.IsRedirection(data));
        Assert.True(ServerRedirection.TryParse(data, out var header, out var error), error?.ToString());
        Assert.Equal(ServerRedirectionForm.EnhancedSecurity, header.Form);
        Assert.Equal(0u, header.SessionId);
        Assert.Equal(ServerRedirectionFlags.LoadBalanceInfo, header.RedirFlags);
        Assert.Equal(data.Length - 8, header.Length);
        Assert.True(ServerRedirection.TryGetLoadBalanceInfo(data, out var info, out error), error?.ToString());
        Assert.Equal("Cookie: msts=ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"u8.ToArray(), info.ToArray());
        Assert.Equal(HoldFrontState.Closed, front.State);
    }

    [Fact]
    public void WriteRedirection_WithAUserAndASecret_CarriesLbUserNameAndLbPassword_NullTerminated()
    {
        var front = new FrontTestClient(new HoldFrontClientSettings()).RunToActive(NewFront());
        var output = new ArrayBufferWriter<byte>();

        front.WriteRedirection(output, "TOKEN"u8, "alice@contoso.test", "SECRET234");

        var data = FrontTestClient.Indication(Assert.Single(FrontTestClient.Frames(output.WrittenMemory)));
        Assert.True(ServerRedirection.TryParse(data, out var header, out var error), error?.ToString());
        Assert.Equal(ServerRedirectionFlags.LoadBalanceInfo | ServerRedirectionFlags.UserName | ServerRedirectionFlags.Password, header.RedirFlags);
        Assert.Equal(data.Length - 8, header.Length);
        Assert.True(ServerRedirection.TryGetLoadBalanceInfo(data, out var info, out error), error?.ToString());
        Assert.Equal("Cookie: msts=TOKEN\r\n"u8.ToArray(), info.ToArray());
        Assert.True(ServerRedirection.TryGetField(data, ServerRedirectionFlags.UserName, out var user, out error), error?.ToString());
        Assert.Equal(System.Text.Encoding.Unicode.GetBytes("alice@contoso.test\0"), user.ToArray());
        Assert.True(ServerRedirection.TryGetField(data, ServerRedirectionFlags.Password, out var password, out error), error?.ToString());
        Assert.Equal(System.Text.Encoding.Unicode.GetBytes("SECRET234\0"), password.ToArray());
        Assert.False(ServerRedirection.TryGetField(data, ServerRedirectionFlags.Domain, out _, out error));
        Assert.NotNull(error);
        Assert.False(ServerRedirection.TryGetField(data, ServerRedirectionFlags.UserName | ServerRedirectionFlags.Password, out _, out _));
        Assert.False(ServerRedirection.TryGetField(data, ServerRedirectionFlags.PasswordIsPkEncrypted, out _, out _));
    }

    [Theory]
    [InlineData("", "x")]
    [InlineData("nul\0inside", "x")]
    [InlineData("alice", "nul\0inside")]
    public void CreateLoadBalanceRedirection_RefusesFieldsThatCannotBeSent(string user, string password)
    {
        Assert.Throws<ArgumentException>(() => ServerRedirection.CreateLoadBalanceRedirection("x"u8, user, password, 1002));
        Assert.Throws<ArgumentException>(() => ServerRedirection.CreateLoadBalanceRedirection("x"u8, "alice", new string('p', ServerRedirection.MaxPasswordChars + 1), 1002));
        Assert.Throws<ArgumentException>(() => ServerRedirection.CreateLoadBalanceRedirection("x"u8, new string('u', ServerRedirection.MaxUserNameChars + 1), "p", 1002));
    }

    [Theory]
    [InlineData("")]
    [InlineData("with space")]
    [InlineData("crlf\r\n")]
    public void WriteRedirection_RefusesATokenThatIsNotPrintableAscii(string token)
    {
        var front = new FrontTestClient(new HoldFrontClientSettings { SkipChannelJoin = true }).RunToActive(NewFront());

        Assert.Throws<ArgumentException>(() => front.WriteRedirection(new ArrayBufferWriter<byte>(), System.Text.Encoding.ASCII.GetBytes(token)));
        Assert.Throws<ArgumentException>(() => front.WriteRedirection(new ArrayBufferWriter<byte>(), new byte[HoldFront.MaxRoutingTokenLength + 1]));
        Assert.Equal(HoldFrontState.Active, front.State);
    }

    [Fact]
    public void LoadBalanceInfo_IsFoundBehindATargetNetAddress_AndMissingOnesAreRefused()
    {
        // Standard form: security header, then a packet with LB_TARGET_NET_ADDRESS (4 bytes) and LB_LOAD_BALANCE_INFO (2 bytes).
        byte[] standard =
        [
            0x00, 0x04, 0x00, 0x00, // SEC_REDIRECTION_PKT
            0x00, 0x04, 0x1A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // Flags, Length 26, SessionId, RedirFlags 3
            0x04, 0x00, 0x00, 0x00, 0x31, 0x00, 0x00, 0x00, // TargetNetAddress
            0x02, 0x00, 0x00, 0x00, 0x41, 0x42, // LoadBalanceInfo "AB"
        ];
        Assert.True(ServerRedirection.TryGetLoadBalanceInfo(standard, out var info, out var error), error?.ToString());
        Assert.Equal("AB"u8.ToArray(), info.ToArray());

        var noInfo = ServerRedirection.CreateLoadBalanceRedirection([], 1002);
        BinaryPrimitives.WriteUInt32LittleEndian(noInfo.AsSpan(16), 0);
        Assert.False(ServerRedirection.TryGetLoadBalanceInfo(noInfo.AsSpan(0, noInfo.Length - 4), out _, out error));
        Assert.NotNull(error);
        Assert.False(ServerRedirection.TryGetLoadBalanceInfo([1, 2], out _, out error));
        Assert.NotNull(error);
    }

    [Fact]
    public void FuzzSeeds_ReachActive()
    {
        // The hold-front fuzz target is only worth its executions if its seeds run the whole sequence.
        var target = Gatehouse.Fuzz.FuzzTargets.Find("hold-front")!;
        foreach (var seed in target.Seeds.Take(2))
        {
            var front = new HoldFront(new HoldFrontOptions { ShareId = HoldFrontTargets.ShareId });
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(seed));
            var activated = false;
            while (Gatehouse.Protocol.FastPath.RdpFraming.TryReadFrame(ref reader, out var frame, out _, out _) == OperationStatus.Done)
            {
                var result = front.Receive(frame.ToArray());
                Assert.True(result.IsSuccess, result.ToString());
                activated |= result.Events.OfType<Activated>().Any();
            }

            Assert.True(activated);
            Assert.Equal(HoldFrontState.Active, front.State);
        }
    }
}

internal static class HoldFrontHelpers
{
    /// <summary>A Send Data Request frame with its user data cut short by <paramref name="remove"/> bytes (lengths fixed up).</summary>
    public static byte[] ShrinkSendData(byte[] frame, int remove)
    {
        Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out _));
        Assert.True(McsSendData.TryParseRequest(payload, out var mcs, out var data, out _));
        var shorter = data[..^remove].ToArray();
        BinaryPrimitives.WriteUInt16LittleEndian(shorter, (ushort)shorter.Length); // keep the share control length consistent
        return HoldFrontClientPdus.SendData(mcs.Initiator, mcs.ChannelId, shorter);
    }
}
