namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// [T.125] 11 DomainMCSPDU: the alternatives of the CHOICE that opens every MCS domain PDU
/// ([MS-RDPBCGR] 2.2.1.5–2.2.1.9, 2.2.8.1.1.1.1). PER sends the index in the top six bits of the first byte.
/// </summary>
public enum DomainMcsPduType
{
    /// <summary>plumbDomainIndication.</summary>
    PlumbDomainIndication = 0,

    /// <summary>erectDomainRequest.</summary>
    ErectDomainRequest = 1,

    /// <summary>mergeChannelsRequest.</summary>
    MergeChannelsRequest = 2,

    /// <summary>mergeChannelsConfirm.</summary>
    MergeChannelsConfirm = 3,

    /// <summary>purgeChannelsIndication.</summary>
    PurgeChannelsIndication = 4,

    /// <summary>mergeTokensRequest.</summary>
    MergeTokensRequest = 5,

    /// <summary>mergeTokensConfirm.</summary>
    MergeTokensConfirm = 6,

    /// <summary>purgeTokensIndication.</summary>
    PurgeTokensIndication = 7,

    /// <summary>disconnectProviderUltimatum.</summary>
    DisconnectProviderUltimatum = 8,

    /// <summary>rejectMCSPDUUltimatum.</summary>
    RejectMcsPduUltimatum = 9,

    /// <summary>attachUserRequest.</summary>
    AttachUserRequest = 10,

    /// <summary>attachUserConfirm.</summary>
    AttachUserConfirm = 11,

    /// <summary>detachUserRequest.</summary>
    DetachUserRequest = 12,

    /// <summary>detachUserIndication.</summary>
    DetachUserIndication = 13,

    /// <summary>channelJoinRequest.</summary>
    ChannelJoinRequest = 14,

    /// <summary>channelJoinConfirm.</summary>
    ChannelJoinConfirm = 15,

    /// <summary>channelLeaveRequest.</summary>
    ChannelLeaveRequest = 16,

    /// <summary>channelConveneRequest.</summary>
    ChannelConveneRequest = 17,

    /// <summary>channelConveneConfirm.</summary>
    ChannelConveneConfirm = 18,

    /// <summary>channelDisbandRequest.</summary>
    ChannelDisbandRequest = 19,

    /// <summary>channelDisbandIndication.</summary>
    ChannelDisbandIndication = 20,

    /// <summary>channelAdmitRequest.</summary>
    ChannelAdmitRequest = 21,

    /// <summary>channelAdmitIndication.</summary>
    ChannelAdmitIndication = 22,

    /// <summary>channelExpelRequest.</summary>
    ChannelExpelRequest = 23,

    /// <summary>channelExpelIndication.</summary>
    ChannelExpelIndication = 24,

    /// <summary>sendDataRequest.</summary>
    SendDataRequest = 25,

    /// <summary>sendDataIndication.</summary>
    SendDataIndication = 26,

    /// <summary>uniformSendDataRequest.</summary>
    UniformSendDataRequest = 27,

    /// <summary>uniformSendDataIndication.</summary>
    UniformSendDataIndication = 28,

    /// <summary>tokenGrabRequest.</summary>
    TokenGrabRequest = 29,

    /// <summary>tokenGrabConfirm.</summary>
    TokenGrabConfirm = 30,

    /// <summary>tokenInhibitRequest.</summary>
    TokenInhibitRequest = 31,

    /// <summary>tokenInhibitConfirm.</summary>
    TokenInhibitConfirm = 32,

    /// <summary>tokenGiveRequest.</summary>
    TokenGiveRequest = 33,

    /// <summary>tokenGiveIndication.</summary>
    TokenGiveIndication = 34,

    /// <summary>tokenGiveResponse.</summary>
    TokenGiveResponse = 35,

    /// <summary>tokenGiveConfirm.</summary>
    TokenGiveConfirm = 36,

    /// <summary>tokenPleaseRequest.</summary>
    TokenPleaseRequest = 37,

    /// <summary>tokenPleaseIndication.</summary>
    TokenPleaseIndication = 38,

    /// <summary>tokenReleaseRequest.</summary>
    TokenReleaseRequest = 39,

    /// <summary>tokenReleaseConfirm.</summary>
    TokenReleaseConfirm = 40,

    /// <summary>tokenTestRequest.</summary>
    TokenTestRequest = 41,

    /// <summary>tokenTestConfirm.</summary>
    TokenTestConfirm = 42,
}

/// <summary>[T.125] 11 DomainMCSPDU dispatch: which alternative an X.224 Data payload carries.</summary>
public static class McsDomainPdu
{
    internal const string Name = "MCS DomainMCSPDU";

    /// <summary>Number of DomainMCSPDU alternatives (0..42).</summary>
    public const int ChoiceCount = 43;

    /// <summary>Classifies the first byte of an MCS domain PDU; false for a choice index beyond 42.</summary>
    public static bool TryClassify(byte first, out DomainMcsPduType type)
    {
        var index = first >> 2;
        type = (DomainMcsPduType)index;
        return index < ChoiceCount;
    }

    /// <summary>Classifies an X.224 Data payload by its first byte (shape of a span parser).</summary>
    public static bool TryClassify(ReadOnlySpan<byte> source, out DomainMcsPduType type, out PduError? error)
    {
        type = default;
        error = null;
        if (source.IsEmpty)
        {
            error = PduError.NotEnough(Name, "choice", 1, 0);
            return false;
        }

        if (!TryClassify(source[0], out type))
        {
            error = PduError.Unexpected(Name, "choice", $"{source[0] >> 2} is not a DomainMCSPDU alternative");
            return false;
        }

        return true;
    }
}
