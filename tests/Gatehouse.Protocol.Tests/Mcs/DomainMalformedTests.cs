using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Mcs;

/// <summary>Malformed MCS domain PDUs: each is refused with a typed error, nothing thrown, bounded allocation.</summary>
public sealed class DomainMalformedTests
{
    public static TheoryData<string, string, PduErrorKind> ErectDomainCases() => new()
    {
        { "empty", "", PduErrorKind.NotEnoughBytes },
        { "attach user request choice", "28 01 00 01 00", PduErrorKind.UnexpectedMessageType },
        { "choice padding bits set", "05 01 00 01 00", PduErrorKind.InvalidField },
        { "subHeight length 0", "04 00 01 00", PduErrorKind.InvalidField },
        { "subHeight length 5", "04 05 00 00 00 00 00 01 00", PduErrorKind.Unsupported },
        { "subHeight length 0xff", "04 ff 00", PduErrorKind.Unsupported },
        { "subHeight longer than the input", "04 02 00", PduErrorKind.NotEnoughBytes },
        { "subInterval missing", "04 01 00", PduErrorKind.NotEnoughBytes },
        { "trailing byte", "04 01 00 01 00 00", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(ErectDomainCases))]
    public void ErectDomain_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ErectDomainRequest>(ErectDomainRequest.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> AttachUserCases() => new()
    {
        { "request: empty", "", PduErrorKind.NotEnoughBytes },
        { "request: confirm choice", "2c", PduErrorKind.UnexpectedMessageType },
        { "request: padding bits", "29", PduErrorKind.InvalidField },
        { "request: trailing byte", "28 00", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(AttachUserCases))]
    public void AttachUserRequest_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<AttachUserRequest>(AttachUserRequest.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> AttachUserConfirmCases() => new()
    {
        { "request choice", "28", PduErrorKind.UnexpectedMessageType },
        { "result 16", "2e 10 00 06", PduErrorKind.InvalidField },
        { "result 0xff", "2e ff 00 06", PduErrorKind.InvalidField },
        { "low padding bit set", "2f 00 00 06", PduErrorKind.InvalidField },
        { "initiator flagged but missing", "2e 00", PduErrorKind.NotEnoughBytes },
        { "initiator flagged but one byte", "2e 00 00", PduErrorKind.NotEnoughBytes },
        { "initiator present but not flagged", "2c 00 00 06", PduErrorKind.InvalidField },
        { "initiator offset 64535 (UserId 65536)", "2e 00 fc 17", PduErrorKind.InvalidField },
        { "initiator offset 0xffff", "2e 00 ff ff", PduErrorKind.InvalidField },
        { "trailing byte", "2e 00 00 06 00", PduErrorKind.InvalidField },
        { "result missing", "2c", PduErrorKind.NotEnoughBytes },
    };

    [Theory]
    [MemberData(nameof(AttachUserConfirmCases))]
    public void AttachUserConfirm_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<AttachUserConfirm>(AttachUserConfirm.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> ChannelJoinRequestCases() => new()
    {
        { "confirm choice", "3c 00 06 03 ef", PduErrorKind.UnexpectedMessageType },
        { "padding bits", "3a 00 06 03 ef", PduErrorKind.InvalidField },
        { "initiator offset 0xffff", "38 ff ff 03 ef", PduErrorKind.InvalidField },
        { "channelId one byte", "38 00 06 03", PduErrorKind.NotEnoughBytes },
        { "trailing byte", "38 00 06 03 ef 00", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(ChannelJoinRequestCases))]
    public void ChannelJoinRequest_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ChannelJoinRequest>(ChannelJoinRequest.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> ChannelJoinConfirmCases() => new()
    {
        { "request choice", "38 00 00 06 03 ef 03 ef", PduErrorKind.UnexpectedMessageType },
        { "result 0x20", "3e 20 00 06 03 ef 03 ef", PduErrorKind.InvalidField },
        { "padding bit", "3f 00 00 06 03 ef 03 ef", PduErrorKind.InvalidField },
        { "initiator out of range", "3e 00 fc 18 03 ef 03 ef", PduErrorKind.InvalidField },
        { "channelId flagged but missing", "3e 00 00 06 03 ef", PduErrorKind.NotEnoughBytes },
        { "channelId present but not flagged", "3c 00 00 06 03 ef 03 ef", PduErrorKind.InvalidField },
        { "requested missing", "3c 00 00 06", PduErrorKind.NotEnoughBytes },
    };

    [Theory]
    [MemberData(nameof(ChannelJoinConfirmCases))]
    public void ChannelJoinConfirm_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ChannelJoinConfirm>(ChannelJoinConfirm.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> DisconnectCases() => new()
    {
        { "reason 5", "22 80", PduErrorKind.InvalidField },
        { "reason 7", "23 80", PduErrorKind.InvalidField },
        { "padding bits", "21 81", PduErrorKind.InvalidField },
        { "reason byte missing", "21", PduErrorKind.NotEnoughBytes },
        { "trailing byte", "21 80 00", PduErrorKind.InvalidField },
        { "attach user request choice", "28 80", PduErrorKind.UnexpectedMessageType },
    };

    [Theory]
    [MemberData(nameof(DisconnectCases))]
    public void DisconnectProviderUltimatum_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<DisconnectProviderUltimatum>(DisconnectProviderUltimatum.TryParse, Hex.Bytes(hex), kind);
    }

    public static TheoryData<string, string, PduErrorKind> SendDataCases() => new()
    {
        { "empty", "", PduErrorKind.NotEnoughBytes },
        { "erect domain choice", "04 01 00 01 00", PduErrorKind.UnexpectedMessageType },
        { "uniform send data choice", "6c 00 06 03 eb 70 01 00", PduErrorKind.UnexpectedMessageType },
        { "choice padding bits", "65 00 06 03 eb 70 01 00", PduErrorKind.InvalidField },
        { "initiator out of range", "64 ff ff 03 eb 70 01 00", PduErrorKind.InvalidField },
        { "channelId truncated", "64 00 06 03", PduErrorKind.NotEnoughBytes },
        { "priority missing", "64 00 06 03 eb", PduErrorKind.NotEnoughBytes },
        { "length missing", "64 00 06 03 eb 70", PduErrorKind.NotEnoughBytes },
        { "2-byte length truncated", "64 00 06 03 eb 70 80", PduErrorKind.NotEnoughBytes },
        { "length larger than the data", "64 00 06 03 eb 70 03 00 00", PduErrorKind.NotEnoughBytes },
        { "length smaller than the data", "64 00 06 03 eb 70 01 00 00", PduErrorKind.InvalidField },
        { "length 0 with data", "64 00 06 03 eb 70 00 00", PduErrorKind.InvalidField },
        { "2-byte length 0x3fff with 1 byte", "64 00 06 03 eb 70 bf ff 00", PduErrorKind.NotEnoughBytes },
        { "2-byte length smaller than the data", "64 00 06 03 eb 70 80 01 00 00", PduErrorKind.InvalidField },
        { "fragmented length 0xc1", "64 00 06 03 eb 70 c1 00", PduErrorKind.Unsupported },
        { "fragmented length 0xff", "64 00 06 03 eb 70 ff ff", PduErrorKind.Unsupported },
    };

    [Theory]
    [MemberData(nameof(SendDataCases))]
    public void SendData_Malformed_Rejected(string name, string hex, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<McsSendData>(McsSendData.TryParse, Hex.Bytes(hex), kind);
    }

    [Fact]
    public void SendData_RequestParserOnIndication_Unexpected()
    {
        var payload = ClientInfoCorpus.CapturedSendDataIndication.AsSpan(7);
        Assert.False(McsSendData.TryParseRequest(payload, out _, out _, out var error));
        Assert.Equal(PduErrorKind.UnexpectedMessageType, error!.Kind);
        Assert.False(McsSendData.TryParseIndication(ClientInfoCorpus.CapturedSendDataLongForm.AsSpan(7), out _, out _, out error));
        Assert.Equal(PduErrorKind.UnexpectedMessageType, error!.Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("ac")]
    [InlineData("fc")]
    public void Classify_NotAChoice_Rejected(string hex)
    {
        Malformed.Rejects<DomainMcsPduType>(McsDomainPdu.TryClassify, Hex.Bytes(hex));
    }

    public static TheoryData<string> TruncationVectors() =>
    [
        "erect",
        "auc",
        "cjr",
        "cjc",
        "dpum",
        "sdrq",
        "sdin",
    ];

    [Theory]
    [MemberData(nameof(TruncationVectors))]
    public void EveryTruncation_Rejected(string which)
    {
        _ = which switch
        {
            "erect" => Malformed.RejectsEveryTruncation<ErectDomainRequest>(ErectDomainRequest.TryParse, ClientInfoCorpus.SpecErectDomain),
            "auc" => Malformed.RejectsEveryTruncation<AttachUserConfirm>(AttachUserConfirm.TryParse, ClientInfoCorpus.SpecAttachUserConfirm),
            "cjr" => Malformed.RejectsEveryTruncation<ChannelJoinRequest>(ChannelJoinRequest.TryParse, ClientInfoCorpus.SpecChannelJoinRequest),
            "cjc" => Malformed.RejectsEveryTruncation<ChannelJoinConfirm>(ChannelJoinConfirm.TryParse, ClientInfoCorpus.SpecChannelJoinConfirm),
            "dpum" => Malformed.RejectsEveryTruncation<DisconnectProviderUltimatum>(DisconnectProviderUltimatum.TryParse, ClientInfoCorpus.DisconnectUserRequested),
            "sdrq" => Malformed.RejectsEveryTruncation<McsSendData>(McsSendData.TryParse, ClientInfoCorpus.CapturedClientInfo[7..]),
            _ => Malformed.RejectsEveryTruncation<McsSendData>(McsSendData.TryParse, ClientInfoCorpus.CapturedLicenseError[7..]),
        };
    }
}
