namespace Gatehouse.Hosting;

/// <summary>
/// The logging event ids of the executable, one per <c>[LoggerMessage]</c>, in ranges that do not meet the gateway
/// library's (1xx-6xx, <c>Gatehouse.Gateway.Diagnostics.EventIds</c>): 10xx hosting, 11xx identity provider.
/// The gateway's host side (<c>src/Gatehouse/Gateway/</c>) still writes its ids inline (50, 60-62, 70-71, 90); they
/// are unique across the product and belong in a 12xx range when those files settle.
/// </summary>
internal static class ServerEventIds
{
    // 10xx: hosting (HTTPS certificate, listeners, the Data Protection key ring).
    public const int CertificateGenerated = 1001;
    public const int CertificateReused = 1002;
    public const int CertificateConfigured = 1003;
    public const int RdpListening = 1004;
    public const int KeyFileCreated = 1011;
    public const int KeyRingReencrypted = 1012;
    public const int KeyRingOpened = 1013;
    public const int KeyFileMadePrivate = 1014;
    public const int KeyFileNotPrivate = 1015;
    public const int FirstRunDoneElsewhere = 1021;
    public const int StoreUnavailable = 1022;
    public const int NotReady = 1023;
    public const int ReadyAgain = 1024;
    public const int StoreDownForSignIns = 1025;
    public const int StoreBackForSignIns = 1026;

    // 11xx: identity provider (sign-in log, purge, form reading).
    public const int SignInLogWriteFailed = 1101;
    public const int Purged = 1111;
    public const int PurgeFailed = 1112;
    public const int FormRefused = 1121;
    public const int BodyTooLarge = 1122;

    // 12xx: host agents (join, assertions, logons).
    public const int AgentJoined = 1201;
    public const int AgentRefused = 1202;
    public const int AgentLogonAnswered = 1203;
    public const int AgentHealth = 1204;
    public const int AgentStarted = 1211;
    public const int AgentChannelFailed = 1212;
    public const int AgentAccountPrepared = 1213;
    public const int AgentPasswordRotated = 1214;
    public const int AgentAccountLocked = 1215;
    public const int AgentWorkFailed = 1216;
    public const int AgentWorkClaimed = 1217;
    public const int AgentWorkStoreFailed = 1218;
    public const int AgentWorkListenFailed = 1219;
}
