using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>Set Error Info PDU and the share headers.</summary>
public sealed class SetErrorInfoTests
{
    [Fact]
    public void Vector_Parses_AndRoundTrips()
    {
        var bytes = ClientInfoCorpus.SetErrorInfo;
        Assert.True(SetErrorInfoPdu.TryParse(bytes, out var value, out var error), error?.ToString());
        Assert.Equal(ErrorInfoCode.ServerDeniedConnection, value.ErrorInfo);
        Assert.Equal(ShareControlPduType.Data, value.Header.ShareControl.Type);
        Assert.Equal((ushort)22, value.Header.ShareControl.TotalLength);
        Assert.Equal((ushort)1002, value.Header.ShareControl.PduSource);
        Assert.Equal(0x000103eau, value.Header.ShareId);
        Assert.Equal(ShareDataHeader.StreamLow, value.Header.StreamId);
        Assert.Equal(ShareDataPduType.SetErrorInfo, value.Header.PduType2);
        Assert.Equal(22, value.Size);
        var buffer = new ArrayBufferWriter<byte>();
        value.Write(buffer);
        Assert.Equal(bytes, buffer.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData(ErrorInfoCode.LogoffByUser, 0x0Cu)]
    [InlineData(ErrorInfoCode.ServerDeniedConnection, 0x07u)]
    [InlineData(ErrorInfoCode.ServerInsufficientPrivileges, 0x09u)]
    [InlineData(ErrorInfoCode.ServerFreshCredentialsRequired, 0x0Au)]
    [InlineData(ErrorInfoCode.CbConnectionCancelled, 0x409u)]
    public void Create_WritesTheCode(ErrorInfoCode code, uint wire)
    {
        var buffer = new ArrayBufferWriter<byte>();
        SetErrorInfoPdu.Create(0x000103ea, code).Write(buffer);
        var bytes = buffer.WrittenSpan.ToArray();
        Assert.Equal(wire, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(18)));
        Assert.Equal(ClientInfoCorpus.SetErrorInfo[..18], bytes[..18]);
        Assert.True(SetErrorInfoPdu.TryParse(bytes, out var parsed, out _));
        Assert.Equal(code, parsed.ErrorInfo);
    }

    [Fact]
    public void UnknownCode_IsKept()
    {
        var bytes = (byte[])ClientInfoCorpus.SetErrorInfo.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(18), 0xDEADBEEF);
        Assert.True(SetErrorInfoPdu.TryParse(bytes, out var value, out _));
        Assert.Equal(0xDEADBEEFu, (uint)value.ErrorInfo);
    }

    private static byte[] Patch(int offset, params byte[] bytes)
    {
        var copy = (byte[])ClientInfoCorpus.SetErrorInfo.Clone();
        bytes.CopyTo(copy, offset);
        return copy;
    }

    public static TheoryData<string, byte[], PduErrorKind> Cases() => new()
    {
        { "totalLength one too large", Patch(0, 0x17, 0x00), PduErrorKind.NotEnoughBytes },
        { "totalLength one too small", Patch(0, 0x15, 0x00), PduErrorKind.InvalidField },
        { "totalLength 0", Patch(0, 0x00, 0x00), PduErrorKind.InvalidField },
        { "totalLength 0xffff", Patch(0, 0xFF, 0xFF), PduErrorKind.NotEnoughBytes },
        { "version 0", Patch(2, 0x07, 0x00), PduErrorKind.InvalidField },
        { "version 2", Patch(2, 0x27, 0x00), PduErrorKind.InvalidField },
        { "demand active pduType", Patch(2, 0x11, 0x00), PduErrorKind.UnexpectedMessageType },
        { "redirection pduType", Patch(2, 0x1A, 0x00), PduErrorKind.UnexpectedMessageType },
        { "synchronize pduType2", Patch(14, 0x1F), PduErrorKind.UnexpectedMessageType },
        { "compressed", Patch(15, 0x20), PduErrorKind.Unsupported },
        { "trailing bytes", [.. Patch(0, 0x1A, 0x00), 0, 0, 0, 0], PduErrorKind.InvalidField },
        { "errorInfo cut (totalLength fixed)", Patch(0, 0x14, 0x00)[..20], PduErrorKind.NotEnoughBytes },
        { "share data header only", Patch(0, 0x12, 0x00)[..18], PduErrorKind.NotEnoughBytes },
        { "share data header cut", Patch(0, 0x0A, 0x00)[..10], PduErrorKind.NotEnoughBytes },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_Rejected(string name, byte[] bytes, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<SetErrorInfoPdu>(SetErrorInfoPdu.TryParse, bytes, kind);
    }

    [Fact]
    public void EveryTruncation_Rejected()
    {
        Malformed.RejectsEveryTruncation<SetErrorInfoPdu>(SetErrorInfoPdu.TryParse, ClientInfoCorpus.SetErrorInfo);
    }

    [Fact]
    public void ShareControlHeader_CreateAndWrite()
    {
        var header = ShareControlHeader.Create(ShareControlPduType.DemandActive, 6, 1002);
        var bytes = new byte[6];
        header.WriteTo(bytes);
        Assert.Equal(Hex.Bytes("06 00 11 00 ea 03"), bytes);
        Assert.True(ShareControlHeader.TryParse(bytes, out var parsed, out _));
        Assert.Equal(header, parsed);
        Assert.False(ShareDataHeader.TryParse(bytes, out _, out var error));
        Assert.Equal(PduErrorKind.UnexpectedMessageType, error!.Kind);
    }
}
