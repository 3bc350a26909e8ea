using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// The frames a server sends to end a connection after the client's Client Info PDU, when the session must not start
/// (the gateway's refusal of a password in the Client Info PDU):
/// <list type="number">
/// <item>[MS-RDPBCGR] 2.2.1.12 Server License Error PDU - Valid Client: ends the licensing phase the client is in
/// (STATUS_VALID_CLIENT, ST_NO_TRANSITION, an empty BB_ERROR_BLOB), so the client reads what follows as an
/// ordinary server PDU;</item>
/// <item>2.2.5.1 Set Error Info PDU with the reason, only for clients that announced RNS_UD_CS_SUPPORT_ERRINFO_PDU;</item>
/// <item>2.2.2.3 MCS Disconnect Provider Ultimatum (rn-provider-initiated).</item>
/// </list>
/// Every frame is written whole (TPKT, X.224 Data, MCS); Send Data Indications come from the server channel on the I/O
/// channel, as a server sends them.
/// </summary>
public static class ServerRefusal
{
    /// <summary>The server's MCS channel (the initiator of its Send Data Indications).</summary>
    public const ushort ServerChannelId = 1002;

    /// <summary>The I/O channel.</summary>
    public const ushort IoChannelId = 1003;

    /// <summary>earlyCapabilityFlags RNS_UD_CS_SUPPORT_ERRINFO_PDU: the client understands the Set Error Info PDU.</summary>
    public const ushort SupportErrorInfoPdu = 0x0001;

    /// <summary>Licensing preamble bMsgType ERROR_ALERT.</summary>
    public const byte ErrorAlert = 0xFF;

    /// <summary>Licensing preamble flags: PREAMBLE_VERSION_3_0.</summary>
    public const byte PreambleVersion3 = 0x03;

    /// <summary>dwErrorCode STATUS_VALID_CLIENT.</summary>
    public const uint StatusValidClient = 0x0000_0007;

    /// <summary>dwStateTransition ST_NO_TRANSITION.</summary>
    public const uint NoTransition = 0x0000_0002;

    /// <summary>wBlobType BB_ERROR_BLOB.</summary>
    public const ushort ErrorBlob = 0x0004;

    /// <summary>The licensing message after the security header.</summary>
    public const int LicenseMessageSize = 4 /* preamble */ + 4 /* dwErrorCode */ + 4 /* dwStateTransition */
        + 4 /* bbErrorInfo: wBlobType + wBlobLen, no data */;

    /// <summary>User data of the license PDU: basic security header plus the licensing message.</summary>
    public const int LicenseUserDataSize = ClientInfoPdu.SecurityHeaderSize /* flags, flagsHi */ + LicenseMessageSize;

    /// <summary>The share id the gateway puts in its Set Error Info PDU (no Demand Active was sent yet; clients do not check it).</summary>
    public const uint ShareId = 0x0001_03EA;

    /// <summary>Writes the Server License Error PDU - Valid Client.</summary>
    public static void WriteLicenseValidClient(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        Span<byte> data = stackalloc byte[LicenseUserDataSize];
        BinaryPrimitives.WriteUInt16LittleEndian(data, (ushort)BasicSecurityFlags.LicensePkt);
        BinaryPrimitives.WriteUInt16LittleEndian(data[2..], 0);
        data[4] = ErrorAlert;
        data[5] = PreambleVersion3;
        BinaryPrimitives.WriteUInt16LittleEndian(data[6..], LicenseMessageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(data[8..], StatusValidClient);
        BinaryPrimitives.WriteUInt32LittleEndian(data[12..], NoTransition);
        BinaryPrimitives.WriteUInt16LittleEndian(data[16..], ErrorBlob);
        BinaryPrimitives.WriteUInt16LittleEndian(data[18..], 0);
        WriteSendDataIndication(output, data);
    }

    /// <summary>Writes a Set Error Info PDU (pduSource 0, as [MS-RDPBCGR] 2.2.5.1.1 requires) carrying <paramref name="errorInfo"/>.</summary>
    public static void WriteSetErrorInfo(IBufferWriter<byte> output, ErrorInfoCode errorInfo)
    {
        ArgumentNullException.ThrowIfNull(output);
        var pdu = new ArrayBufferWriter<byte>(SetErrorInfoPdu.EncodedSize);
        SetErrorInfoPdu.Create(ShareId, errorInfo, pduSource: 0).Write(pdu);
        WriteSendDataIndication(output, pdu.WrittenSpan);
    }

    /// <summary>Writes an MCS Disconnect Provider Ultimatum in its X.224 Data frame.</summary>
    public static void WriteDisconnectProviderUltimatum(IBufferWriter<byte> output, McsDisconnectReason reason = McsDisconnectReason.ProviderInitiated)
    {
        ArgumentNullException.ThrowIfNull(output);
        var ultimatum = new DisconnectProviderUltimatum(reason);
        var size = X224Data.FrameOverhead /* TPKT + X.224 Data */ + ultimatum.Size /* the domain PDU */;
        X224Data.WriteFrameHeader(output.GetSpan(size), size);
        output.Advance(X224Data.FrameOverhead);
        ultimatum.Write(output);
    }

    /// <summary>Writes the three refusal frames; the Set Error Info PDU only when <paramref name="clientSupportsErrorInfo"/>.</summary>
    public static void Write(IBufferWriter<byte> output, ErrorInfoCode errorInfo, bool clientSupportsErrorInfo)
    {
        WriteLicenseValidClient(output);
        if (clientSupportsErrorInfo)
        {
            WriteSetErrorInfo(output, errorInfo);
        }

        WriteDisconnectProviderUltimatum(output);
    }

    /// <summary>
    /// Reads a licensing message (after the basic security header with SEC_LICENSE_PKT) as a Licensing Error Message:
    /// its dwErrorCode and dwStateTransition.
    /// </summary>
    public static bool TryParseLicenseError(ReadOnlySpan<byte> userData, out uint errorCode, out uint stateTransition, out PduError? error)
    {
        const string name = "Server License Error PDU";
        errorCode = 0;
        stateTransition = 0;
        error = null;
        if (userData.Length < LicenseUserDataSize)
        {
            error = PduError.NotEnough(name, "licensing message", LicenseUserDataSize, userData.Length);
            return false;
        }

        if (((BasicSecurityFlags)BinaryPrimitives.ReadUInt16LittleEndian(userData) & BasicSecurityFlags.LicensePkt) == 0)
        {
            error = PduError.Unexpected(name, "securityHeader.flags", "SEC_LICENSE_PKT is not set");
            return false;
        }

        if (userData[4] != ErrorAlert)
        {
            error = PduError.Unexpected(name, "bMsgType", $"0x{userData[4]:X2} is not ERROR_ALERT");
            return false;
        }

        int messageSize = BinaryPrimitives.ReadUInt16LittleEndian(userData[6..]);
        if (messageSize != userData.Length - ClientInfoPdu.SecurityHeaderSize)
        {
            error = PduError.Invalid(name, "wMsgSize", $"{messageSize} disagrees with the {userData.Length - ClientInfoPdu.SecurityHeaderSize} bytes of the message");
            return false;
        }

        errorCode = BinaryPrimitives.ReadUInt32LittleEndian(userData[8..]);
        stateTransition = BinaryPrimitives.ReadUInt32LittleEndian(userData[12..]);
        return true;
    }

    private static void WriteSendDataIndication(IBufferWriter<byte> output, ReadOnlySpan<byte> userData)
    {
        var mcs = McsSendData.Create(DomainMcsPduType.SendDataIndication, ServerChannelId, IoChannelId, userData.Length);
        var size = X224Data.FrameOverhead /* TPKT + X.224 Data */ + mcs.Size /* MCS Send Data Indication with the user data */;
        X224Data.WriteFrameHeader(output.GetSpan(size), size);
        output.Advance(X224Data.FrameOverhead);
        mcs.Write(output, userData);
    }
}
