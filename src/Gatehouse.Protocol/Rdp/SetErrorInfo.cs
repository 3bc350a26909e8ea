using System.Buffers;
using System.Buffers.Binary;

namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// [MS-RDPBCGR] 2.2.5.1.1 Set Error Info PDU Data (TS_SET_ERROR_INFO_PDU) errorInfo values: the ones the gateway
/// sends or meets. Other values are kept as numbers.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1028", Justification = "Wire type is a 32-bit unsigned integer.")]
public enum ErrorInfoCode : uint
{
    /// <summary>ERRINFO_NONE.</summary>
    None = 0x0000_0000,

    /// <summary>ERRINFO_RPC_INITIATED_DISCONNECT.</summary>
    RpcInitiatedDisconnect = 0x0000_0001,

    /// <summary>ERRINFO_RPC_INITIATED_LOGOFF.</summary>
    RpcInitiatedLogoff = 0x0000_0002,

    /// <summary>ERRINFO_IDLE_TIMEOUT.</summary>
    IdleTimeout = 0x0000_0003,

    /// <summary>ERRINFO_LOGON_TIMEOUT.</summary>
    LogonTimeout = 0x0000_0004,

    /// <summary>ERRINFO_DISCONNECTED_BY_OTHERCONNECTION.</summary>
    DisconnectedByOtherConnection = 0x0000_0005,

    /// <summary>ERRINFO_OUT_OF_MEMORY.</summary>
    OutOfMemory = 0x0000_0006,

    /// <summary>ERRINFO_SERVER_DENIED_CONNECTION.</summary>
    ServerDeniedConnection = 0x0000_0007,

    /// <summary>ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES.</summary>
    ServerInsufficientPrivileges = 0x0000_0009,

    /// <summary>ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED.</summary>
    ServerFreshCredentialsRequired = 0x0000_000A,

    /// <summary>ERRINFO_RPC_INITIATED_DISCONNECT_BYUSER.</summary>
    RpcInitiatedDisconnectByUser = 0x0000_000B,

    /// <summary>ERRINFO_LOGOFF_BY_USER.</summary>
    LogoffByUser = 0x0000_000C,

    /// <summary>ERRINFO_CLOSE_STACK_ON_DRIVER_NOT_READY.</summary>
    CloseStackOnDriverNotReady = 0x0000_000F,

    /// <summary>ERRINFO_SERVER_DWM_CRASH.</summary>
    ServerDwmCrash = 0x0000_0010,

    /// <summary>ERRINFO_LICENSE_INTERNAL.</summary>
    LicenseInternal = 0x0000_0100,

    /// <summary>ERRINFO_LICENSE_NO_LICENSE_SERVER.</summary>
    LicenseNoLicenseServer = 0x0000_0101,

    /// <summary>ERRINFO_LICENSE_NO_LICENSE.</summary>
    LicenseNoLicense = 0x0000_0102,

    /// <summary>ERRINFO_CB_DESTINATION_NOT_FOUND.</summary>
    CbDestinationNotFound = 0x0000_0400,

    /// <summary>ERRINFO_CB_LOADING_DESTINATION.</summary>
    CbLoadingDestination = 0x0000_0402,

    /// <summary>ERRINFO_CB_REDIRECTING_TO_DESTINATION.</summary>
    CbRedirectingToDestination = 0x0000_0404,

    /// <summary>ERRINFO_CB_DESTINATION_POOL_NOT_FREE.</summary>
    CbDestinationPoolNotFree = 0x0000_0408,

    /// <summary>ERRINFO_CB_CONNECTION_CANCELLED.</summary>
    CbConnectionCancelled = 0x0000_0409,

    /// <summary>ERRINFO_CB_CONNECTION_ERROR_INVALID_SETTINGS.</summary>
    CbConnectionErrorInvalidSettings = 0x0000_0410,

    /// <summary>ERRINFO_BAD_CAPABILITIES.</summary>
    BadCapabilities = 0x0000_10EA,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.5.1.1 Set Error Info PDU (TS_SET_ERROR_INFO_PDU): a share data header with pduType2
/// PDUTYPE2_SET_ERROR_INFO_PDU and the 32-bit errorInfo. Parse input is the Send Data Indication user data of an
/// enhanced-security (TLS/CredSSP) connection, which carries no security header.
/// </summary>
/// <param name="Header">shareDataHeader.</param>
/// <param name="ErrorInfo">errorInfo.</param>
public readonly record struct SetErrorInfoPdu(ShareDataHeader Header, ErrorInfoCode ErrorInfo)
{
    internal const string Name = "Set Error Info PDU";

    /// <summary>Encoded size.</summary>
    public const int EncodedSize = ShareDataHeader.Size /* shareDataHeader */ + 4 /* errorInfo */;

    /// <summary>Encoded size.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Size is an instance property on every PDU.")]
    public int Size => EncodedSize;

    /// <summary>A Set Error Info PDU as a server sends it (pduSource = the server channel, STREAM_LOW, uncompressed).</summary>
    public static SetErrorInfoPdu Create(uint shareId, ErrorInfoCode errorInfo, ushort pduSource = 1002) =>
        new(new ShareDataHeader(
            ShareControlHeader.Create(ShareControlPduType.Data, EncodedSize, pduSource),
            shareId,
            0,
            ShareDataHeader.StreamLow,
            EncodedSize - 14 /* counted from pduType2, as Windows and FreeRDP fill it */,
            ShareDataPduType.SetErrorInfo,
            0,
            0),
            errorInfo);

    /// <summary>Parses a Set Error Info PDU that fills <paramref name="source"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, out SetErrorInfoPdu value, out PduError? error)
    {
        value = default;
        if (!ShareDataHeader.TryParse(source, out var header, out error))
        {
            return false;
        }

        if (header.PduType2 != ShareDataPduType.SetErrorInfo)
        {
            error = PduError.Unexpected(Name, "pduType2", $"0x{(byte)header.PduType2:X2} is not PDUTYPE2_SET_ERROR_INFO_PDU");
            return false;
        }

        if (source.Length < EncodedSize)
        {
            error = PduError.NotEnough(Name, "errorInfo", EncodedSize, source.Length);
            return false;
        }

        if (source.Length > EncodedSize)
        {
            error = PduError.Invalid(Name, "totalLength", $"{source.Length} bytes, a Set Error Info PDU has {EncodedSize}");
            return false;
        }

        value = new SetErrorInfoPdu(header, (ErrorInfoCode)BinaryPrimitives.ReadUInt32LittleEndian(source[ShareDataHeader.Size..]));
        return true;
    }

    /// <summary>Writes the PDU (the Send Data Indication user data).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(EncodedSize);
        Header.WriteTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[ShareDataHeader.Size..], (uint)ErrorInfo);
        output.Advance(EncodedSize);
    }
}
