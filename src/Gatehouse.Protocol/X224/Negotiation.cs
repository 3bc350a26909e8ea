namespace Gatehouse.Protocol.X224;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.1.1 RDP Negotiation Request (RDP_NEG_REQ), requestedProtocols, and 2.2.1.2.1 selectedProtocol.
/// Unknown bits are kept on a round trip.
/// </summary>
[Flags]
public enum SecurityProtocol : uint
{
    /// <summary>PROTOCOL_RDP: standard RDP security (no TLS).</summary>
    Rdp = 0x00000000,

    /// <summary>PROTOCOL_SSL: TLS.</summary>
    Ssl = 0x00000001,

    /// <summary>PROTOCOL_HYBRID: CredSSP (NLA).</summary>
    Hybrid = 0x00000002,

    /// <summary>PROTOCOL_RDSTLS: TLS with RDSTLS PDUs (after redirection).</summary>
    RdsTls = 0x00000004,

    /// <summary>PROTOCOL_HYBRID_EX: CredSSP with the Early User Authorization Result PDU.</summary>
    HybridEx = 0x00000008,

    /// <summary>PROTOCOL_RDSAAD: TLS with RDS AAD Auth PDUs ("web account" sign-in).</summary>
    RdsAad = 0x00000010,
}

/// <summary>[MS-RDPBCGR] 2.2.1.1.1 RDP Negotiation Request (RDP_NEG_REQ), flags.</summary>
[Flags]
public enum NegotiationRequestFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>RESTRICTED_ADMIN_MODE_REQUIRED.</summary>
    RestrictedAdminModeRequired = 0x01,

    /// <summary>REDIRECTED_AUTHENTICATION_MODE_REQUIRED (Remote Credential Guard).</summary>
    RedirectedAuthenticationModeRequired = 0x02,

    /// <summary>CORRELATION_INFO_PRESENT: an RDP Correlation Info structure follows.</summary>
    CorrelationInfoPresent = 0x08,
}

/// <summary>[MS-RDPBCGR] 2.2.1.2.1 RDP Negotiation Response (RDP_NEG_RSP), flags.</summary>
[Flags]
public enum NegotiationResponseFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>EXTENDED_CLIENT_DATA_SUPPORTED.</summary>
    ExtendedClientDataSupported = 0x01,

    /// <summary>DYNVC_GFX_PROTOCOL_SUPPORTED.</summary>
    DynvcGfxProtocolSupported = 0x02,

    /// <summary>NEGRSP_FLAG_RESERVED.</summary>
    NegRspFlagReserved = 0x04,

    /// <summary>RESTRICTED_ADMIN_MODE_SUPPORTED.</summary>
    RestrictedAdminModeSupported = 0x08,

    /// <summary>REDIRECTED_AUTHENTICATION_MODE_SUPPORTED.</summary>
    RedirectedAuthenticationModeSupported = 0x10,
}

/// <summary>[MS-RDPBCGR] 2.2.1.2.2 RDP Negotiation Failure (RDP_NEG_FAILURE), failureCode.</summary>
public enum NegotiationFailureCode : uint
{
    /// <summary>SSL_REQUIRED_BY_SERVER.</summary>
    SslRequiredByServer = 0x00000001,

    /// <summary>SSL_NOT_ALLOWED_BY_SERVER.</summary>
    SslNotAllowedByServer = 0x00000002,

    /// <summary>SSL_CERT_NOT_ON_SERVER.</summary>
    SslCertNotOnServer = 0x00000003,

    /// <summary>INCONSISTENT_FLAGS.</summary>
    InconsistentFlags = 0x00000004,

    /// <summary>HYBRID_REQUIRED_BY_SERVER.</summary>
    HybridRequiredByServer = 0x00000005,

    /// <summary>SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER.</summary>
    SslWithUserAuthRequiredByServer = 0x00000006,
}

/// <summary>[MS-RDPBCGR] 2.2.1.1.1 RDP Negotiation Request (RDP_NEG_REQ).</summary>
/// <param name="Flags">The request flags.</param>
/// <param name="RequestedProtocols">The security protocols the client supports.</param>
public readonly record struct NegotiationRequest(NegotiationRequestFlags Flags, SecurityProtocol RequestedProtocols)
{
    /// <summary>TYPE_RDP_NEG_REQ.</summary>
    public const byte Type = 0x01;

    /// <summary>Size on the wire (the length field is always 8).</summary>
    public const int Size = 1 /* type */ + 1 /* flags */ + 2 /* length */ + 4 /* requestedProtocols */;
}

/// <summary>[MS-RDPBCGR] 2.2.1.2.1 RDP Negotiation Response (RDP_NEG_RSP) or 2.2.1.2.2 RDP Negotiation Failure (RDP_NEG_FAILURE).</summary>
public readonly record struct NegotiationResult
{
    /// <summary>TYPE_RDP_NEG_RSP.</summary>
    public const byte ResponseType = 0x02;

    /// <summary>TYPE_RDP_NEG_FAILURE.</summary>
    public const byte FailureType = 0x03;

    /// <summary>Size on the wire (the length field is always 8).</summary>
    public const int Size = 1 /* type */ + 1 /* flags */ + 2 /* length */ + 4 /* selectedProtocol | failureCode */;

    private NegotiationResult(bool isFailure, byte flags, uint value)
    {
        IsFailure = isFailure;
        RawFlags = flags;
        RawValue = value;
    }

    /// <summary>True for RDP_NEG_FAILURE.</summary>
    public bool IsFailure { get; }

    /// <summary>The flags byte as on the wire.</summary>
    public byte RawFlags { get; }

    /// <summary>selectedProtocol or failureCode as on the wire.</summary>
    public uint RawValue { get; }

    /// <summary>The response flags (meaningful when <see cref="IsFailure"/> is false).</summary>
    public NegotiationResponseFlags ResponseFlags => (NegotiationResponseFlags)RawFlags;

    /// <summary>The selected protocol (meaningful when <see cref="IsFailure"/> is false).</summary>
    public SecurityProtocol SelectedProtocol => (SecurityProtocol)RawValue;

    /// <summary>The failure code (meaningful when <see cref="IsFailure"/> is true).</summary>
    public NegotiationFailureCode FailureCode => (NegotiationFailureCode)RawValue;

    /// <summary>An RDP_NEG_RSP.</summary>
    public static NegotiationResult Response(SecurityProtocol selected, NegotiationResponseFlags flags) =>
        new(false, (byte)flags, (uint)selected);

    /// <summary>An RDP_NEG_FAILURE (its flags byte is always 0).</summary>
    public static NegotiationResult Failure(NegotiationFailureCode code) => new(true, 0, (uint)code);

    internal static NegotiationResult Raw(bool isFailure, byte flags, uint value) => new(isFailure, flags, value);
}

/// <summary>[MS-RDPBCGR] 2.2.1.1.2 RDP Correlation Info (RDP_NEG_CORRELATION_INFO).</summary>
public sealed class CorrelationInfo
{
    /// <summary>TYPE_RDP_CORRELATION_INFO.</summary>
    public const byte Type = 0x06;

    /// <summary>Size on the wire (the length field is always 36).</summary>
    public const int Size = 1 /* type */ + 1 /* flags */ + 2 /* length */ + 16 /* correlationId */ + 16 /* reserved */;

    private readonly byte[] _correlationId;

    /// <summary>Creates correlation info from a 16-byte id.</summary>
    /// <exception cref="ArgumentException">The id is not 16 bytes.</exception>
    public CorrelationInfo(ReadOnlySpan<byte> correlationId)
    {
        if (correlationId.Length != 16)
        {
            throw new ArgumentException("A correlation id is 16 bytes.", nameof(correlationId));
        }

        _correlationId = correlationId.ToArray();
    }

    /// <summary>The 16-byte correlation id.</summary>
    public ReadOnlySpan<byte> CorrelationId => _correlationId;

    /// <summary>The id as a GUID, for logs.</summary>
    public Guid AsGuid => new(_correlationId);
}
