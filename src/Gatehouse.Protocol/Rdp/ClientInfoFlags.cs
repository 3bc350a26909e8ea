namespace Gatehouse.Protocol.Rdp;

/// <summary>[MS-RDPBCGR] 2.2.1.11.1.1 Info Packet (TS_INFO_PACKET) flags. Unknown bits are kept.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Spec name.")]
public enum ClientInfoFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>INFO_MOUSE.</summary>
    Mouse = 0x0000_0001,

    /// <summary>INFO_DISABLECTRLALTDEL.</summary>
    DisableCtrlAltDel = 0x0000_0002,

    /// <summary>INFO_AUTOLOGON: log on with the credentials in this packet.</summary>
    AutoLogon = 0x0000_0008,

    /// <summary>INFO_UNICODE: the strings are UTF-16LE (required here).</summary>
    Unicode = 0x0000_0010,

    /// <summary>INFO_MAXIMIZESHELL.</summary>
    MaximizeShell = 0x0000_0020,

    /// <summary>INFO_LOGONNOTIFY.</summary>
    LogonNotify = 0x0000_0040,

    /// <summary>INFO_COMPRESSION.</summary>
    Compression = 0x0000_0080,

    /// <summary>INFO_ENABLEWINDOWSKEY.</summary>
    EnableWindowsKey = 0x0000_0100,

    /// <summary>CompressionTypeMask: the four bits that carry the bulk compression type.</summary>
    CompressionTypeMask = 0x0000_1E00,

    /// <summary>INFO_REMOTECONSOLEAUDIO.</summary>
    RemoteConsoleAudio = 0x0000_2000,

    /// <summary>INFO_FORCE_ENCRYPTED_CS_PDU.</summary>
    ForceEncryptedCsPdu = 0x0000_4000,

    /// <summary>INFO_RAIL.</summary>
    Rail = 0x0000_8000,

    /// <summary>INFO_LOGONERRORS.</summary>
    LogonErrors = 0x0001_0000,

    /// <summary>INFO_MOUSE_HAS_WHEEL.</summary>
    MouseHasWheel = 0x0002_0000,

    /// <summary>INFO_PASSWORD_IS_SC_PIN: the password is a smart card PIN.</summary>
    PasswordIsSmartCardPin = 0x0004_0000,

    /// <summary>INFO_NOAUDIOPLAYBACK.</summary>
    NoAudioPlayback = 0x0008_0000,

    /// <summary>INFO_USING_SAVED_CREDS.</summary>
    UsingSavedCreds = 0x0010_0000,

    /// <summary>INFO_AUDIOCAPTURE.</summary>
    AudioCapture = 0x0020_0000,

    /// <summary>INFO_VIDEO_DISABLE.</summary>
    VideoDisable = 0x0040_0000,

    /// <summary>INFO_RESERVED1.</summary>
    Reserved1 = 0x0080_0000,

    /// <summary>INFO_RESERVED2.</summary>
    Reserved2 = 0x0100_0000,

    /// <summary>INFO_HIDEF_RAIL_SUPPORTED.</summary>
    HiDefRailSupported = 0x0200_0000,
}

/// <summary>[MS-RDPBCGR] 2.2.8.1.1.2.1 Basic (TS_SECURITY_HEADER) flags. Unknown bits are kept.</summary>
[Flags]
public enum BasicSecurityFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>SEC_EXCHANGE_PKT.</summary>
    ExchangePkt = 0x0001,

    /// <summary>SEC_TRANSPORT_REQ.</summary>
    TransportReq = 0x0002,

    /// <summary>RDP_SEC_TRANSPORT_RSP.</summary>
    TransportRsp = 0x0004,

    /// <summary>SEC_ENCRYPT.</summary>
    Encrypt = 0x0008,

    /// <summary>SEC_RESET_SEQNO.</summary>
    ResetSeqNo = 0x0010,

    /// <summary>SEC_IGNORE_SEQNO.</summary>
    IgnoreSeqNo = 0x0020,

    /// <summary>SEC_INFO_PKT: the PDU is a Client Info PDU.</summary>
    InfoPkt = 0x0040,

    /// <summary>SEC_LICENSE_PKT.</summary>
    LicensePkt = 0x0080,

    /// <summary>SEC_LICENSE_ENCRYPT_CS / SEC_LICENSE_ENCRYPT_SC.</summary>
    LicenseEncrypt = 0x0200,

    /// <summary>SEC_REDIRECTION_PKT: a Standard Security Server Redirection PDU.</summary>
    RedirectionPkt = 0x0400,

    /// <summary>SEC_SECURE_CHECKSUM.</summary>
    SecureChecksum = 0x0800,

    /// <summary>SEC_AUTODETECT_REQ.</summary>
    AutodetectReq = 0x1000,

    /// <summary>SEC_AUTODETECT_RSP.</summary>
    AutodetectRsp = 0x2000,

    /// <summary>SEC_HEARTBEAT.</summary>
    Heartbeat = 0x4000,

    /// <summary>SEC_FLAGSHI_VALID.</summary>
    FlagsHiValid = 0x8000,
}
