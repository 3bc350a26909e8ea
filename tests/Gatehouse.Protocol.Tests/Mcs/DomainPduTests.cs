using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Tests.Captures;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Mcs;

/// <summary>MCS domain PDUs: [MS-RDPBCGR] section 4 examples and captured FreeRDP/xrdp frames, field values and byte-exact round trips.</summary>
public sealed class DomainPduTests
{
    private static byte[] Payload(byte[] frame)
    {
        Assert.True(X224Data.TryUnwrapFrame(frame, out var payload, out var error), error?.ToString());
        return payload.ToArray();
    }

    private static byte[] Written(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void ErectDomain_SpecExample_RoundTrips()
    {
        // [MS-RDPBCGR] 4.1.5
        Assert.True(ErectDomainRequest.TryParse(ClientInfoCorpus.SpecErectDomain, out var value, out var error), error?.ToString());
        Assert.Equal(new ErectDomainRequest(0, 0), value);
        Assert.Equal(5, value.Size);
        Assert.Equal(ClientInfoCorpus.SpecErectDomain, Written(value.Write));
    }

    [Fact]
    public void ErectDomain_Captured_RoundTrips()
    {
        var payload = Payload(Captured.FreeRdpToXrdp("c2s-002-mcs-erect-domain.bin"));
        Assert.True(ErectDomainRequest.TryParse(payload, out var value, out _));
        Assert.Equal(payload, Written(value.Write));
    }

    [Theory]
    [InlineData(0u, "04 01 00 01 00")]
    [InlineData(0x1234u, "04 02 12 34 02 12 34")]
    [InlineData(0x12345678u, "04 04 12 34 56 78 04 12 34 56 78")]
    public void ErectDomain_Integers_WriteMinimalAndParse(uint value, string hex)
    {
        var pdu = new ErectDomainRequest(value, value);
        Assert.Equal(Hex.Bytes(hex), Written(pdu.Write));
        Assert.True(ErectDomainRequest.TryParse(Hex.Bytes(hex), out var parsed, out _));
        Assert.Equal(pdu, parsed);
    }

    [Fact]
    public void ErectDomain_ThreeByteInteger_Parses()
    {
        Assert.True(ErectDomainRequest.TryParse(Hex.Bytes("04 03 01 02 03 01 00"), out var value, out _));
        Assert.Equal(0x010203u, value.SubHeight);
    }

    [Fact]
    public void AttachUserRequest_SpecAndCapture_RoundTrip()
    {
        // [MS-RDPBCGR] 4.1.6
        Assert.True(AttachUserRequest.TryParse(ClientInfoCorpus.SpecAttachUserRequest, out var value, out _));
        Assert.Equal(1, value.Size);
        Assert.Equal(ClientInfoCorpus.SpecAttachUserRequest, Written(value.Write));
        var payload = Payload(Captured.FreeRdpToXrdp("c2s-003-mcs-attach-user-request.bin"));
        Assert.True(AttachUserRequest.TryParse(payload, out _, out _));
        Assert.Equal(payload, Written(value.Write));
    }

    [Fact]
    public void AttachUserConfirm_SpecExample_RoundTrips()
    {
        // [MS-RDPBCGR] 4.1.7
        Assert.True(AttachUserConfirm.TryParse(ClientInfoCorpus.SpecAttachUserConfirm, out var value, out _));
        Assert.Equal(new AttachUserConfirm(McsResult.Successful, 1007), value);
        Assert.Equal(ClientInfoCorpus.SpecAttachUserConfirm, Written(value.Write));
    }

    [Fact]
    public void AttachUserConfirm_Captured_HasInitiator1008()
    {
        var payload = Payload(Captured.FreeRdpToXrdp("s2c-002-mcs-attach-user-confirm.bin"));
        Assert.True(AttachUserConfirm.TryParse(payload, out var value, out _));
        Assert.Equal((ushort)1008, value.Initiator);
        Assert.Equal(payload, Written(value.Write));
    }

    [Fact]
    public void AttachUserConfirm_WithoutInitiator_RoundTrips()
    {
        var bytes = Hex.Bytes("2c 0d // rt-too-many-users, no initiator");
        Assert.True(AttachUserConfirm.TryParse(bytes, out var value, out _));
        Assert.Equal(new AttachUserConfirm(McsResult.TooManyUsers, null), value);
        Assert.Equal(bytes, Written(value.Write));
    }

    [Fact]
    public void AttachUserConfirm_InitiatorBelow1001_Throws()
    {
        var pdu = new AttachUserConfirm(McsResult.Successful, 1000);
        Assert.Throws<ArgumentOutOfRangeException>(() => Written(pdu.Write));
    }

    [Fact]
    public void ChannelJoin_SpecExamples_RoundTrip()
    {
        // [MS-RDPBCGR] 4.1.8
        Assert.True(ChannelJoinRequest.TryParse(ClientInfoCorpus.SpecChannelJoinRequest, out var request, out _));
        Assert.Equal(new ChannelJoinRequest(1007, 1007), request);
        Assert.Equal(ClientInfoCorpus.SpecChannelJoinRequest, Written(request.Write));
        Assert.True(ChannelJoinConfirm.TryParse(ClientInfoCorpus.SpecChannelJoinConfirm, out var confirm, out _));
        Assert.Equal(new ChannelJoinConfirm(McsResult.Successful, 1007, 1007, 1007), confirm);
        Assert.Equal(ClientInfoCorpus.SpecChannelJoinConfirm, Written(confirm.Write));
    }

    [Fact]
    public void ChannelJoin_Captured_RoundTrip()
    {
        var request = Payload(Captured.FreeRdpToXrdp("c2s-004-mcs-channel-join-request.bin"));
        Assert.True(ChannelJoinRequest.TryParse(request, out var r, out _));
        Assert.Equal(new ChannelJoinRequest(1008, 1008), r);
        Assert.Equal(request, Written(r.Write));
        var confirm = Payload(Captured.FreeRdpToXrdp("s2c-003-mcs-channel-join-confirm.bin"));
        Assert.True(ChannelJoinConfirm.TryParse(confirm, out var c, out _));
        Assert.Equal(new ChannelJoinConfirm(McsResult.Successful, 1008, 1008, 1008), c);
        Assert.Equal(confirm, Written(c.Write));
    }

    [Fact]
    public void ChannelJoinConfirm_WithoutChannelId_RoundTrips()
    {
        var bytes = Hex.Bytes("3c 03 00 06 03 f1 // rt-no-such-channel, no channelId");
        Assert.True(ChannelJoinConfirm.TryParse(bytes, out var value, out _));
        Assert.Equal(new ChannelJoinConfirm(McsResult.NoSuchChannel, 1007, 1009, null), value);
        Assert.Equal(bytes, Written(value.Write));
    }

    [Theory]
    [InlineData(McsDisconnectReason.DomainDisconnected, "20 00")]
    [InlineData(McsDisconnectReason.ProviderInitiated, "20 80")]
    [InlineData(McsDisconnectReason.TokenPurged, "21 00")]
    [InlineData(McsDisconnectReason.UserRequested, "21 80")]
    [InlineData(McsDisconnectReason.ChannelPurged, "22 00")]
    public void DisconnectProviderUltimatum_Reasons_RoundTrip(McsDisconnectReason reason, string hex)
    {
        var bytes = Hex.Bytes(hex);
        Assert.True(DisconnectProviderUltimatum.TryParse(bytes, out var value, out var error), error?.ToString());
        Assert.Equal(reason, value.Reason);
        Assert.Equal(2, value.Size);
        Assert.Equal(bytes, Written(value.Write));
    }

    [Theory]
    [InlineData("04", DomainMcsPduType.ErectDomainRequest)]
    [InlineData("28", DomainMcsPduType.AttachUserRequest)]
    [InlineData("2e", DomainMcsPduType.AttachUserConfirm)]
    [InlineData("38", DomainMcsPduType.ChannelJoinRequest)]
    [InlineData("3e", DomainMcsPduType.ChannelJoinConfirm)]
    [InlineData("21", DomainMcsPduType.DisconnectProviderUltimatum)]
    [InlineData("64", DomainMcsPduType.SendDataRequest)]
    [InlineData("68", DomainMcsPduType.SendDataIndication)]
    [InlineData("a8", DomainMcsPduType.TokenTestConfirm)]
    public void Classify_FirstByte_NamesTheChoice(string hex, DomainMcsPduType expected)
    {
        var bytes = Hex.Bytes(hex);
        Assert.True(McsDomainPdu.TryClassify(bytes[0], out var type));
        Assert.Equal(expected, type);
        Assert.True(McsDomainPdu.TryClassify(bytes, out type, out var error));
        Assert.Null(error);
        Assert.Equal(expected, type);
    }

    [Theory]
    [InlineData("c2s-010-client-info.bin", DomainMcsPduType.SendDataRequest, 1008, 1003, 358, false)]
    [InlineData("c2s-021-share-data.bin", DomainMcsPduType.SendDataRequest, 1008, 1007, 12, true)]
    [InlineData("s2c-017-share-data.bin", DomainMcsPduType.SendDataIndication, 1008, 1007, 20, false)]
    [InlineData("s2c-010-license-error.bin", DomainMcsPduType.SendDataIndication, 1008, 1003, 20, false)]
    public void SendData_Captured_FieldsAndZeroCopyRoundTrip(string file, DomainMcsPduType type, int initiator, int channel, int length, bool longForm)
    {
        var payload = Payload(Captured.FreeRdpToXrdp(file));
        Assert.True(McsSendData.TryParse(payload, out var value, out var userData, out var error), error?.ToString());
        Assert.Equal(type, value.Type);
        Assert.Equal(initiator, value.Initiator);
        Assert.Equal(channel, value.ChannelId);
        Assert.Equal(length, value.UserDataLength);
        Assert.Equal(longForm, value.LongLengthForm);
        Assert.Equal(McsDataPriority.High, value.Priority);
        Assert.Equal(3, value.Segmentation);
        Assert.True(value.GetUserData(payload).SequenceEqual(userData));
        Assert.Equal(payload.Length, value.Size);
        Assert.True(McsSendData.TryParse(payload, out var again, out _));
        Assert.Equal(value, again);
        var buffer = new ArrayBufferWriter<byte>();
        value.Write(buffer, userData);
        Assert.Equal(payload, buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void SendData_UserData_IsASliceOfTheInput()
    {
        var payload = Payload(ClientInfoCorpus.CapturedSendDataLongForm);
        Assert.True(McsSendData.TryParseRequest(payload, out var value, out var userData, out _));
        Assert.True(System.Runtime.CompilerServices.Unsafe.AreSame(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(userData),
            ref payload[value.UserDataOffset]));
    }

    [Fact]
    public void SendData_IndicationParsers_AcceptTheirType()
    {
        var payload = Payload(ClientInfoCorpus.CapturedSendDataIndication);
        Assert.True(McsSendData.TryParseIndication(payload, out var value, out _, out _));
        Assert.Equal(DomainMcsPduType.SendDataIndication, value.Type);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(0x7F, 1)]
    [InlineData(0x80, 2)]
    [InlineData(0x3FFF, 2)]
    public void SendData_Create_PicksTheLengthForm(int length, int lengthSize)
    {
        var value = McsSendData.Create(DomainMcsPduType.SendDataIndication, 1002, 1003, length);
        Assert.Equal(6 + lengthSize, value.HeaderSize);
        var userData = new byte[length];
        var buffer = new ArrayBufferWriter<byte>();
        value.Write(buffer, userData);
        Assert.True(McsSendData.TryParse(buffer.WrittenSpan, out var parsed, out _));
        Assert.Equal(value, parsed);
    }

    [Fact]
    public void SendData_BadArguments_Throw()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => McsSendData.Create(DomainMcsPduType.ErectDomainRequest, 1002, 1003, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => McsSendData.Create(DomainMcsPduType.SendDataRequest, 1002, 1003, 0x4000));
        var value = McsSendData.Create(DomainMcsPduType.SendDataRequest, 1002, 1003, 3);
        Assert.Throws<ArgumentException>(() => value.Write(new ArrayBufferWriter<byte>(), new byte[2]));
        Assert.Throws<InvalidOperationException>(() => (value with { Type = DomainMcsPduType.AttachUserRequest }).WriteHeader(new byte[16]));
        Assert.Throws<InvalidOperationException>(() => (value with { UserDataLength = 0x4000 }).WriteHeader(new byte[16]));
        Assert.Throws<ArgumentOutOfRangeException>(() => (value with { Initiator = 1000 }).WriteHeader(new byte[16]));
    }
}
