using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Tests.Support;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.X224;

/// <summary>Malformed TPKT / X.224 input: each case is refused with a typed error, nothing thrown, bounded allocation.</summary>
public sealed class X224MalformedTests
{
    private static byte[] Patch(byte[] source, int offset, params byte[] bytes)
    {
        var copy = (byte[])source.Clone();
        bytes.CopyTo(copy, offset);
        return copy;
    }

    /// <summary>Rebuilds a Connection Request TPKT frame around an X.224 body, fixing TPKT length and LI.</summary>
    private static byte[] Cr(string bodyAfterFixedHeader)
    {
        var rest = Hex.Bytes(bodyAfterFixedHeader);
        var frame = new byte[4 + 7 + rest.Length];
        frame[0] = 3;
        frame[2] = (byte)(frame.Length >> 8);
        frame[3] = (byte)frame.Length;
        frame[4] = (byte)(frame.Length - 5);
        frame[5] = 0xE0;
        rest.CopyTo(frame, 11);
        return frame;
    }

    public static TheoryData<string, byte[], PduErrorKind> ConnectionRequestCases()
    {
        var spec = X224Corpus.SpecConnectionRequest;
        var data = new TheoryData<string, byte[], PduErrorKind>
        {
            { "tpkt version 0", Patch(spec, 0, 0x00), PduErrorKind.UnexpectedMessageType },
            { "tpkt version 0xff", Patch(spec, 0, 0xFF), PduErrorKind.UnexpectedMessageType },
            { "tpkt length 0", Patch(spec, 2, 0x00, 0x00), PduErrorKind.InvalidField },
            { "tpkt length 3", Patch(spec, 2, 0x00, 0x03), PduErrorKind.InvalidField },
            { "tpkt length 0xffff", Patch(spec, 2, 0xFF, 0xFF), PduErrorKind.NotEnoughBytes },
            { "tpkt length one too large", Patch(spec, 2, 0x00, 0x2d), PduErrorKind.NotEnoughBytes },
            { "tpkt length one too small", Patch(spec, 2, 0x00, 0x2b), PduErrorKind.InvalidField },
            { "tpkt length 4 (empty tpdu)", Hex.Bytes("03 00 00 04"), PduErrorKind.NotEnoughBytes },
            { "LI 0", Patch(spec, 4, 0x00), PduErrorKind.InvalidField },
            { "LI too large", Patch(spec, 4, 0x28), PduErrorKind.InvalidField },
            { "LI too small", Patch(spec, 4, 0x26), PduErrorKind.InvalidField },
            { "LI 0xff", Patch(spec, 4, 0xFF), PduErrorKind.InvalidField },
            { "CC code in a request", Patch(spec, 5, 0xD0), PduErrorKind.UnexpectedMessageType },
            { "DT code in a request", Patch(spec, 5, 0xF0), PduErrorKind.UnexpectedMessageType },
            { "code 0x00", Patch(spec, 5, 0x00), PduErrorKind.UnexpectedMessageType },
            { "DST-REF not zero", Patch(spec, 6, 0x12, 0x34), PduErrorKind.InvalidField },
            { "class 4", Patch(spec, 10, 0x40), PduErrorKind.Unsupported },
            { "cookie without CRLF", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 61"), PduErrorKind.InvalidField },
            { "cookie with CR only", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 61 0d"), PduErrorKind.InvalidField },
            { "cookie with LF only", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 61 0a 01 00 08 00 00 00 00 00"), PduErrorKind.InvalidField },
            { "line that is not a cookie", Cr("48 65 6c 6c 6f 0d 0a"), PduErrorKind.InvalidField },
            { "cookie with NUL", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 00 0d 0a"), PduErrorKind.InvalidField },
            { "cookie with 0xff", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d ff 0d 0a"), PduErrorKind.InvalidField },
            { "cookie with bare LF inside", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 3d 0a 61 0d 0a"), PduErrorKind.InvalidField },
            { "lowercase cookie", Cr("63 6f 6f 6b 69 65 3a 20 6d 73 74 73 3d 61 0d 0a"), PduErrorKind.InvalidField },
            { "neg req truncated", Cr("01 00 08 00 00 00 00"), PduErrorKind.NotEnoughBytes },
            { "neg req 1 byte", Cr("01"), PduErrorKind.NotEnoughBytes },
            { "neg req length 0", Cr("01 00 00 00 03 00 00 00"), PduErrorKind.InvalidField },
            { "neg req length 9", Cr("01 00 09 00 03 00 00 00"), PduErrorKind.InvalidField },
            { "neg req length 0xffff", Cr("01 00 ff ff 03 00 00 00"), PduErrorKind.InvalidField },
            { "neg req followed by garbage", Cr("01 00 08 00 03 00 00 00 ff"), PduErrorKind.InvalidField },
            { "two neg reqs", Cr("01 00 08 00 03 00 00 00 01 00 08 00 03 00 00 00"), PduErrorKind.InvalidField },
            { "neg rsp type in a request", Cr("43 6f 6f 6b 69 65 3a 20 6d 73 74 73 3d 61 0d 0a 02 00 08 00 03 00 00 00"), PduErrorKind.UnexpectedMessageType },
            { "correlation flag without info", Cr("01 08 08 00 03 00 00 00"), PduErrorKind.NotEnoughBytes },
            { "correlation info truncated", Cr("01 08 08 00 03 00 00 00 06 00 24 00 01 02 03"), PduErrorKind.NotEnoughBytes },
            { "correlation wrong type", Cr("01 08 08 00 03 00 00 00 07 00 24 00" + new string('1', 32) + new string('0', 32)), PduErrorKind.UnexpectedMessageType },
            { "correlation flags not zero", Cr("01 08 08 00 03 00 00 00 06 01 24 00" + new string('1', 32) + new string('0', 32)), PduErrorKind.InvalidField },
            { "correlation length 35", Cr("01 08 08 00 03 00 00 00 06 00 23 00" + new string('1', 32) + new string('0', 32)), PduErrorKind.InvalidField },
            { "correlation length 0xffff", Cr("01 08 08 00 03 00 00 00 06 00 ff ff" + new string('1', 32) + new string('0', 32)), PduErrorKind.InvalidField },
            { "correlation reserved not zero", Cr("01 08 08 00 03 00 00 00 06 00 24 00" + new string('1', 32) + new string('0', 30) + "01"), PduErrorKind.InvalidField },
            { "info present but flag clear", Cr("01 00 08 00 03 00 00 00 06 00 24 00" + new string('1', 32) + new string('0', 32)), PduErrorKind.InvalidField },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(ConnectionRequestCases))]
    public void ConnectionRequest_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        var error = Malformed.Rejects<ConnectionRequest>(ConnectionRequest.TryParse, input, kind);
        Assert.False(string.IsNullOrEmpty(error.ToString()), name);
    }

    public static TheoryData<string, byte[], PduErrorKind> ConnectionConfirmCases()
    {
        var cc = X224Corpus.ConfirmHybrid;
        return new TheoryData<string, byte[], PduErrorKind>
        {
            { "CR code in a confirm", Patch(cc, 5, 0xE0), PduErrorKind.UnexpectedMessageType },
            { "LI too small", Patch(cc, 4, 0x0d), PduErrorKind.InvalidField },
            { "LI too large", Patch(cc, 4, 0x0f), PduErrorKind.InvalidField },
            { "neg type 1", Patch(cc, 11, 0x01), PduErrorKind.UnexpectedMessageType },
            { "neg type 6", Patch(cc, 11, 0x06), PduErrorKind.UnexpectedMessageType },
            { "neg length 0", Patch(cc, 13, 0x00, 0x00), PduErrorKind.InvalidField },
            { "neg length 0xffff", Patch(cc, 13, 0xff, 0xff), PduErrorKind.InvalidField },
            { "neg data 4 bytes", Hex.Bytes("03 00 00 0f 0a d0 00 00 12 34 00 02 00 08 00"), PduErrorKind.NotEnoughBytes },
            { "neg data 1 byte", Hex.Bytes("03 00 00 0c 07 d0 00 00 12 34 00 02"), PduErrorKind.NotEnoughBytes },
            { "trailing byte", Hex.Bytes("03 00 00 14 0f d0 00 00 12 34 00 02 00 08 00 02 00 00 00 00"), PduErrorKind.InvalidField },
            { "fixed header truncated", Hex.Bytes("03 00 00 09 04 d0 00 00 12"), PduErrorKind.NotEnoughBytes },
            { "tpkt version 2", Patch(cc, 0, 0x02), PduErrorKind.UnexpectedMessageType },
        };
    }

    [Theory]
    [MemberData(nameof(ConnectionConfirmCases))]
    public void ConnectionConfirm_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        var error = Malformed.Rejects<ConnectionConfirm>(ConnectionConfirm.TryParse, input, kind);
        Assert.False(string.IsNullOrEmpty(error.Reason), name);
    }

    public static TheoryData<string, byte[], PduErrorKind> DisconnectCases() => new()
    {
        { "wrong code", Patch(X224Corpus.Disconnect, 5, 0x81), PduErrorKind.UnexpectedMessageType },
        { "LI too large", Patch(X224Corpus.Disconnect, 4, 0x07), PduErrorKind.InvalidField },
        { "no reason", Hex.Bytes("03 00 00 0a 05 80 00 00 00 00"), PduErrorKind.NotEnoughBytes },
    };

    [Theory]
    [MemberData(nameof(DisconnectCases))]
    public void DisconnectRequest_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        var error = Malformed.Rejects<DisconnectRequest>(DisconnectRequest.TryParse, input, kind);
        Assert.False(string.IsNullOrEmpty(error.Pdu), name);
    }

    [Theory]
    [MemberData(nameof(TruncationSources))]
    public void EveryTruncation_IsRefused(string name, byte[] valid)
    {
        var count = name switch
        {
            "confirm" or "confirm failure" => Malformed.RejectsEveryTruncation<ConnectionConfirm>(ConnectionConfirm.TryParse, valid),
            "disconnect" => Malformed.RejectsEveryTruncation<DisconnectRequest>(DisconnectRequest.TryParse, valid),
            _ => Malformed.RejectsEveryTruncation<ConnectionRequest>(ConnectionRequest.TryParse, valid),
        };
        Assert.Equal(valid.Length, count);
    }

    public static TheoryData<string, byte[]> TruncationSources() => new()
    {
        { "spec request", X224Corpus.SpecConnectionRequest },
        { "freerdp request", X224Corpus.FreeRdpAadConnectionRequest },
        { "correlation request", X224Corpus.RoutingTokenWithCorrelation },
        { "confirm", X224Corpus.ConfirmHybrid },
        { "confirm failure", X224Corpus.ConfirmFailure },
        { "disconnect", X224Corpus.Disconnect },
    };

    public static TheoryData<string, byte[]> DataCases() => new()
    {
        { "LI 3", Hex.Bytes("03 00 00 0a 03 f0 80 02 01 01") },
        { "no EOT", Hex.Bytes("03 00 00 0a 02 f0 00 02 01 01") },
        { "CR code", Hex.Bytes("03 00 00 0a 02 e0 80 02 01 01") },
        { "2-byte TPDU", Hex.Bytes("03 00 00 06 02 f0") },
        { "frame longer than tpkt", Hex.Bytes("03 00 00 07 02 f0 80 00") },
    };

    [Theory]
    [MemberData(nameof(DataCases))]
    public void X224Data_Malformed_IsRefused(string name, byte[] input)
    {
        Assert.False(X224Data.TryUnwrapFrame(input, out _, out var error), name);
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData("03 00 00 05 00", PduErrorKind.NotEnoughBytes)]
    [InlineData("03 00 00 06 02 70", PduErrorKind.UnexpectedMessageType)]
    [InlineData("03 00 00 06 02 10", PduErrorKind.UnexpectedMessageType)]
    public void X224Tpdu_Unknown_IsRefused(string hex, PduErrorKind kind)
    {
        Assert.False(X224Tpdu.TryClassify(Hex.Bytes(hex), out _, out var error));
        Assert.Equal(kind, error!.Kind);
    }
}
