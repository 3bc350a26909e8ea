using System.Buffers.Binary;

namespace Gatehouse.Protocol.Rdp;

/// <summary>[MS-RDPBCGR] 2.2.13.1 Server Redirection Packet (RDP_SERVER_REDIRECTION_PACKET) RedirFlags. Unknown bits are kept.</summary>
[Flags]
public enum ServerRedirectionFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>LB_TARGET_NET_ADDRESS.</summary>
    TargetNetAddress = 0x0000_0001,

    /// <summary>LB_LOAD_BALANCE_INFO.</summary>
    LoadBalanceInfo = 0x0000_0002,

    /// <summary>LB_USERNAME.</summary>
    UserName = 0x0000_0004,

    /// <summary>LB_DOMAIN.</summary>
    Domain = 0x0000_0008,

    /// <summary>LB_PASSWORD.</summary>
    Password = 0x0000_0010,

    /// <summary>LB_DONTSTOREUSERNAME.</summary>
    DontStoreUserName = 0x0000_0020,

    /// <summary>LB_SMARTCARD_LOGON.</summary>
    SmartcardLogon = 0x0000_0040,

    /// <summary>LB_NOREDIRECT.</summary>
    NoRedirect = 0x0000_0080,

    /// <summary>LB_TARGET_FQDN.</summary>
    TargetFqdn = 0x0000_0100,

    /// <summary>LB_TARGET_NETBIOS_NAME.</summary>
    TargetNetBiosName = 0x0000_0200,

    /// <summary>LB_TARGET_NET_ADDRESSES.</summary>
    TargetNetAddresses = 0x0000_0800,

    /// <summary>LB_CLIENT_TSV_URL.</summary>
    ClientTsvUrl = 0x0000_1000,

    /// <summary>LB_SERVER_TSV_CAPABLE.</summary>
    ServerTsvCapable = 0x0000_2000,

    /// <summary>LB_PASSWORD_IS_PK_ENCRYPTED.</summary>
    PasswordIsPkEncrypted = 0x0000_4000,

    /// <summary>LB_REDIRECTION_GUID.</summary>
    RedirectionGuid = 0x0000_8000,

    /// <summary>LB_TARGET_CERTIFICATE.</summary>
    TargetCertificate = 0x0001_0000,
}

/// <summary>[MS-RDPBCGR] 2.2.13.2 / 2.2.13.3.1 Server Redirection PDU forms: which of the two was recognised.</summary>
public enum ServerRedirectionForm
{
    /// <summary>[MS-RDPBCGR] 2.2.13.2 Standard Security Server Redirection: basic security header with SEC_REDIRECTION_PKT.</summary>
    StandardSecurity,

    /// <summary>[MS-RDPBCGR] 2.2.13.3.1 Enhanced Security Server Redirection: share control header with PDUTYPE_SERVER_REDIR_PKT.</summary>
    EnhancedSecurity,
}

/// <summary>
/// [MS-RDPBCGR] 2.2.13.1 Server Redirection Packet header (RDP_SERVER_REDIRECTION_PACKET): Flags, Length, SessionId and
/// RedirFlags. The optional length-prefixed fields are walked with bounds checks but not decoded.
/// </summary>
/// <param name="Form">The PDU form it came in.</param>
/// <param name="Flags">Flags (SEC_REDIRECTION_PKT).</param>
/// <param name="Length">Length of the redirection packet.</param>
/// <param name="SessionId">SessionId.</param>
/// <param name="RedirFlags">RedirFlags.</param>
/// <param name="Encrypted">True for a standard-security PDU with SEC_ENCRYPT: only the form is known, the packet is not read.</param>
public readonly record struct ServerRedirectionHeader(
    ServerRedirectionForm Form,
    ushort Flags,
    ushort Length,
    uint SessionId,
    ServerRedirectionFlags RedirFlags,
    bool Encrypted);

/// <summary>
/// [MS-RDPBCGR] 2.2.13.1 Server Redirection PDU recognition, in both its standard-security form (2.2.13.2, the basic
/// security header carries SEC_REDIRECTION_PKT 0x0400) and its enhanced-security form (2.2.13.3.1, a share control
/// header with PDUTYPE_SERVER_REDIR_PKT 0x000A). Input is the user data of an MCS Send Data Indication. A gateway that
/// pins the target refuses these.
/// </summary>
public static class ServerRedirection
{
    internal const string Name = "Server Redirection PDU";

    /// <summary>SEC_REDIRECTION_PKT.</summary>
    public const ushort RedirectionPacketFlag = 0x0400;

    /// <summary>Flags + Length + SessionId + RedirFlags.</summary>
    public const int FixedSize = 2 /* Flags */ + 2 /* Length */ + 4 /* SessionId */ + 4 /* RedirFlags */;

    /// <summary>
    /// True when <paramref name="sendDataUserData"/> looks like a Server Redirection PDU in either form: the enhanced
    /// form's share control pduType is PDUTYPE_SERVER_REDIR_PKT with version 1, or the standard form's security flags
    /// carry SEC_REDIRECTION_PKT (followed, when unencrypted, by a packet whose Flags is SEC_REDIRECTION_PKT). Only the
    /// leading bytes are looked at; use <see cref="TryParse"/> to check the lengths.
    /// </summary>
    public static bool IsRedirection(ReadOnlySpan<byte> sendDataUserData) => Recognise(sendDataUserData) is not null;

    private static ServerRedirectionForm? Recognise(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 4 && BinaryPrimitives.ReadUInt16LittleEndian(data[2..]) == (ShareControlHeader.ProtocolVersion | (ushort)ShareControlPduType.ServerRedirect))
        {
            return ServerRedirectionForm.EnhancedSecurity;
        }

        if (data.Length >= 2)
        {
            var flags = (BasicSecurityFlags)BinaryPrimitives.ReadUInt16LittleEndian(data);
            if ((flags & BasicSecurityFlags.RedirectionPkt) != 0
                && ((flags & BasicSecurityFlags.Encrypt) != 0
                    || (data.Length >= 6 && BinaryPrimitives.ReadUInt16LittleEndian(data[4..]) == RedirectionPacketFlag)))
            {
                return ServerRedirectionForm.StandardSecurity;
            }
        }

        return null;
    }

    /// <summary>
    /// Parses the header of a Server Redirection PDU in either form. Input that is not a redirection is refused with
    /// <see cref="PduErrorKind.UnexpectedMessageType"/>.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> sendDataUserData, out ServerRedirectionHeader value, out PduError? error)
    {
        value = default;
        switch (Recognise(sendDataUserData))
        {
            case ServerRedirectionForm.EnhancedSecurity:
                return TryParseEnhanced(sendDataUserData, out value, out error);
            case ServerRedirectionForm.StandardSecurity:
                return TryParseStandard(sendDataUserData, out value, out error);
            default:
                error = sendDataUserData.Length < 4
                    ? PduError.NotEnough(Name, "header", 4, sendDataUserData.Length)
                    : PduError.Unexpected(Name, "header", "neither SEC_REDIRECTION_PKT nor PDUTYPE_SERVER_REDIR_PKT");
                return false;
        }
    }

    /// <summary>[MS-RDPBCGR] 2.2.13.2: basic security header (flags with SEC_REDIRECTION_PKT, flagsHi) + redirection packet.</summary>
    public static bool TryParseStandard(ReadOnlySpan<byte> sendDataUserData, out ServerRedirectionHeader value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(sendDataUserData, Name);
        if (!reader.TryReadU16LE("securityHeader.flags", out var flags) || !reader.TryReadU16LE("securityHeader.flagsHi", out _))
        {
            error = reader.Error;
            return false;
        }

        var security = (BasicSecurityFlags)flags;
        if ((security & BasicSecurityFlags.RedirectionPkt) == 0)
        {
            error = PduError.Unexpected(Name, "securityHeader.flags", "SEC_REDIRECTION_PKT is not set");
            return false;
        }

        if ((security & BasicSecurityFlags.Encrypt) != 0)
        {
            value = new ServerRedirectionHeader(ServerRedirectionForm.StandardSecurity, flags, 0, 0, ServerRedirectionFlags.None, Encrypted: true);
            error = null;
            return true;
        }

        return TryParsePacket(sendDataUserData[4..], ServerRedirectionForm.StandardSecurity, out value, out error);
    }

    /// <summary>[MS-RDPBCGR] 2.2.13.3.1: share control header (PDUTYPE_SERVER_REDIR_PKT) + pad2Octets + redirection packet (+ pad1Octet).</summary>
    public static bool TryParseEnhanced(ReadOnlySpan<byte> sendDataUserData, out ServerRedirectionHeader value, out PduError? error)
    {
        value = default;
        if (!ShareControlHeader.TryParse(sendDataUserData, out var control, out error))
        {
            return false;
        }

        if (control.Type != ShareControlPduType.ServerRedirect)
        {
            error = PduError.Unexpected(Name, "pduType", $"{control.PduType & 0xF} is not PDUTYPE_SERVER_REDIR_PKT");
            return false;
        }

        const int Offset = ShareControlHeader.Size + 2 /* pad2Octets */;
        if (sendDataUserData.Length < Offset)
        {
            error = PduError.NotEnough(Name, "pad2Octets", Offset, sendDataUserData.Length);
            return false;
        }

        return TryParsePacket(sendDataUserData[Offset..], ServerRedirectionForm.EnhancedSecurity, out value, out error);
    }

    private static bool TryParsePacket(ReadOnlySpan<byte> packet, ServerRedirectionForm form, out ServerRedirectionHeader value, out PduError? error)
    {
        value = default;
        var reader = new WireReader(packet, Name);
        if (reader.TryReadU16LE("Flags", out var flags)
            && reader.TryReadU16LE("Length", out var length)
            && reader.TryReadU32LE("SessionId", out var sessionId)
            && reader.TryReadU32LE("RedirFlags", out var redirFlags))
        {
            if (flags != RedirectionPacketFlag)
            {
                reader.FailInvalid("Flags", $"0x{flags:X4}, expected SEC_REDIRECTION_PKT");
            }
            else if (length < FixedSize)
            {
                reader.FailInvalid("Length", $"{length} is shorter than the fixed fields");
            }
            else if (length > packet.Length)
            {
                reader.Fail(PduError.NotEnough(Name, "Length", length, packet.Length));
            }
            else if (packet.Length - length > 8)
            {
                // At most an 8-byte Pad (standard) or pad1Octet (enhanced) may follow the packet.
                reader.FailInvalid("Length", $"{length} leaves {packet.Length - length} bytes unaccounted for");
            }
            else if (WalkFields(packet[FixedSize..length], (ServerRedirectionFlags)redirFlags, ref reader))
            {
                value = new ServerRedirectionHeader(form, flags, length, sessionId, (ServerRedirectionFlags)redirFlags, Encrypted: false);
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>
    /// Writes the user data of an [MS-RDPBCGR] 2.2.13.3.1 Enhanced Security Server Redirection PDU that carries only a
    /// LoadBalanceInfo (RedirFlags LB_LOAD_BALANCE_INFO, SessionID 0): share control header (PDUTYPE_SERVER_REDIR_PKT),
    /// pad2Octets and the redirection packet. The client reconnects to the same address with the LoadBalanceInfo as its
    /// X.224 routing token.
    /// </summary>
    public static byte[] CreateLoadBalanceRedirection(ReadOnlySpan<byte> loadBalanceInfo, ushort pduSource) =>
        CreateLoadBalanceRedirection(loadBalanceInfo, null, default, pduSource);

    /// <summary>Largest LB_PASSWORD accepted by <see cref="CreateLoadBalanceRedirection(ReadOnlySpan{byte}, string?, ReadOnlySpan{char}, ushort)"/>, in characters ([MS-RDPBCGR] 2.2.13.1: 512 bytes with the terminator).</summary>
    public const int MaxPasswordChars = 255;

    /// <summary>Largest LB_USERNAME accepted, in characters.</summary>
    public const int MaxUserNameChars = 255;

    /// <summary>
    /// As <see cref="CreateLoadBalanceRedirection(ReadOnlySpan{byte}, ushort)"/>, and when given, LB_USERNAME (UTF-16LE,
    /// null-terminated) and LB_PASSWORD (a plain, null-terminated UTF-16LE password cookie, not
    /// LB_PASSWORD_IS_PK_ENCRYPTED). A client that reconnects with TLS security sends the user name and the cookie in its
    /// Client Info PDU, inside TLS; the cookie never crosses the wire in the clear.
    /// </summary>
    /// <exception cref="ArgumentException">A field is too long, or holds a NUL.</exception>
    public static byte[] CreateLoadBalanceRedirection(ReadOnlySpan<byte> loadBalanceInfo, string? userName, ReadOnlySpan<char> password, ushort pduSource)
    {
        if (userName is not null && (userName.Length is 0 or > MaxUserNameChars || userName.Contains('\0', StringComparison.Ordinal)))
        {
            throw new ArgumentException($"the user name must have 1 to {MaxUserNameChars} characters and no NUL", nameof(userName));
        }

        if (password.Length > MaxPasswordChars || password.Contains('\0'))
        {
            throw new ArgumentException($"the password cookie must have at most {MaxPasswordChars} characters and no NUL", nameof(password));
        }

        var flags = ServerRedirectionFlags.LoadBalanceInfo;
        var userBytes = userName is null ? 0 : (userName.Length + 1) * 2;
        var passwordBytes = password.IsEmpty ? 0 : (password.Length + 1) * 2;
        var packet = FixedSize + 4 + loadBalanceInfo.Length;
        if (userName is not null)
        {
            flags |= ServerRedirectionFlags.UserName;
            packet += 4 + userBytes;
        }

        if (!password.IsEmpty)
        {
            flags |= ServerRedirectionFlags.Password;
            packet += 4 + passwordBytes;
        }

        var total = ShareControlHeader.Size + 2 /* pad2Octets */ + packet;
        if (total > ushort.MaxValue)
        {
            throw new ArgumentException($"a {loadBalanceInfo.Length}-byte LoadBalanceInfo does not fit the PDU", nameof(loadBalanceInfo));
        }

        var pdu = new byte[total];
        ShareControlHeader.Create(ShareControlPduType.ServerRedirect, (ushort)total, pduSource).WriteTo(pdu);
        var o = ShareControlHeader.Size + 2;
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o), RedirectionPacketFlag);
        BinaryPrimitives.WriteUInt16LittleEndian(pdu.AsSpan(o + 2), (ushort)packet);
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o + 4), 0); // SessionID 0: no REDIRECTED_SESSIONID_FIELD_VALID on reconnect.
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o + 8), (uint)flags);
        o += FixedSize;
        BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o), (uint)loadBalanceInfo.Length);
        loadBalanceInfo.CopyTo(pdu.AsSpan(o + 4));
        o += 4 + loadBalanceInfo.Length;
        if (userName is not null)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o), (uint)userBytes);
            System.Text.Encoding.Unicode.GetBytes(userName, pdu.AsSpan(o + 4));
            o += 4 + userBytes; // The terminator is already zero.
        }

        if (!password.IsEmpty)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(pdu.AsSpan(o), (uint)passwordBytes);
            System.Text.Encoding.Unicode.GetBytes(password, pdu.AsSpan(o + 4));
        }

        return pdu;
    }

    /// <summary>
    /// One optional field of a Server Redirection PDU in either (unencrypted) form — its bytes as sent (UTF-16 strings
    /// keep their terminator) — or false when the PDU has no such field or does not parse.
    /// </summary>
    /// <param name="sendDataUserData">The MCS Send Data Indication's user data.</param>
    /// <param name="field">Exactly one of the length-prefixed field flags.</param>
    /// <param name="value">The field's bytes.</param>
    /// <param name="error">Why not.</param>
    public static bool TryGetField(ReadOnlySpan<byte> sendDataUserData, ServerRedirectionFlags field, out ReadOnlySpan<byte> value, out PduError? error)
    {
        value = default;
        if (!TryParse(sendDataUserData, out var header, out error))
        {
            return false;
        }

        if (header.Encrypted || (header.RedirFlags & field) == 0 || System.Numerics.BitOperations.PopCount((uint)field) != 1)
        {
            error = PduError.Unexpected(Name, "RedirFlags", $"no {field}");
            return false;
        }

        // The packet was walked by TryParse: every present field's length is within the packet.
        var start = header.Form == ServerRedirectionForm.EnhancedSecurity ? ShareControlHeader.Size + 2 : 4;
        var fields = sendDataUserData.Slice(start + FixedSize, header.Length - FixedSize);
        foreach (var bit in FieldOrder)
        {
            if (((uint)header.RedirFlags & bit) == 0)
            {
                continue;
            }

            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(fields);
            if (bit == (uint)field)
            {
                value = fields.Slice(4, length);
                return true;
            }

            fields = fields[(4 + length)..];
        }

        error = PduError.Unexpected(Name, "RedirFlags", $"{field} is not a length-prefixed field");
        return false;
    }

    /// <summary>
    /// The LoadBalanceInfo of a Server Redirection PDU in either (unencrypted) form, or false when the PDU has none or
    /// does not parse.
    /// </summary>
    public static bool TryGetLoadBalanceInfo(ReadOnlySpan<byte> sendDataUserData, out ReadOnlySpan<byte> loadBalanceInfo, out PduError? error) =>
        TryGetField(sendDataUserData, ServerRedirectionFlags.LoadBalanceInfo, out loadBalanceInfo, out error);

    private static ReadOnlySpan<uint> FieldOrder =>
    [
        (uint)ServerRedirectionFlags.TargetNetAddress, (uint)ServerRedirectionFlags.LoadBalanceInfo,
        (uint)ServerRedirectionFlags.UserName, (uint)ServerRedirectionFlags.Domain, (uint)ServerRedirectionFlags.Password,
        (uint)ServerRedirectionFlags.TargetFqdn, (uint)ServerRedirectionFlags.TargetNetBiosName,
        (uint)ServerRedirectionFlags.ClientTsvUrl, (uint)ServerRedirectionFlags.RedirectionGuid,
        (uint)ServerRedirectionFlags.TargetCertificate, (uint)ServerRedirectionFlags.TargetNetAddresses,
    ];

    /// <summary>Each present optional field is a 32-bit length and that many bytes; none may run past Length.</summary>
    private static bool WalkFields(ReadOnlySpan<byte> fields, ServerRedirectionFlags redirFlags, ref WireReader outer)
    {
        var reader = new WireReader(fields, Name);
        foreach (var bit in FieldOrder)
        {
            if (((uint)redirFlags & bit) == 0)
            {
                continue;
            }

            if (!reader.TryReadU32LE("field length", out var length))
            {
                break;
            }

            if (length > (uint)reader.Remaining)
            {
                reader.Fail(PduError.NotEnough(Name, ((ServerRedirectionFlags)bit).ToString(), unchecked((int)Math.Min(length, int.MaxValue)), reader.Remaining));
                break;
            }

            reader.TrySkip((int)length, "field");
        }

        return reader.Error is null || outer.Fail(reader.Error);
    }
}
