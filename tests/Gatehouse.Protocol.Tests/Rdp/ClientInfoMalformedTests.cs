using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>Malformed Client Info packets and frames: each refused with a typed error, nothing thrown, bounded allocation.</summary>
public sealed class ClientInfoMalformedTests
{
    // Offsets in the captured TS_INFO_PACKET (frame offset 19): see testdata/captures/freerdp3-xrdp-tls.
    private const int CbDomain = 8;
    private const int CbUserName = 10;
    private const int CbPassword = 12;
    private const int CbAlternateShell = 14;
    private const int CbWorkingDir = 16;
    private const int DomainNul = 32;
    private const int UserNameNul = 48;
    private const int PasswordNul = 76;
    private const int AlternateShellNul = 78;
    private const int WorkingDirNul = 80;
    private const int CbClientAddress = 84;
    private const int ClientAddressNul = 104;
    private const int CbClientDir = 106;
    private const int ClientDirNul = 170;
    private const int CbCookie = 352;

    private static byte[] Packet => ClientInfoCorpus.CapturedClientInfo[19..];

    private static byte[] CookiePacket => ClientInfoCorpus.ClientInfoWithCookie[19..];

    private static byte[] U16(byte[] source, int offset, ushort value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] U16BE(byte[] source, int offset, ushort value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] U8(byte[] source, int offset, byte value)
    {
        var copy = (byte[])source.Clone();
        copy[offset] = value;
        return copy;
    }

    public static TheoryData<string, byte[], PduErrorKind> PacketCases()
    {
        var p = Packet;
        var data = new TheoryData<string, byte[], PduErrorKind>
        {
            { "ANSI (no INFO_UNICODE)", U8(p, 4, 0xeb), PduErrorKind.Unsupported },
            { "flags 0", U16(U16(p, 4, 0), 6, 0), PduErrorKind.Unsupported },
        };
        foreach (var (name, offset) in new[] { ("cbDomain", CbDomain), ("cbUserName", CbUserName), ("cbPassword", CbPassword), ("cbAlternateShell", CbAlternateShell), ("cbWorkingDir", CbWorkingDir) })
        {
            data.Add($"{name} 0xffff", U16(p, offset, 0xFFFF), PduErrorKind.TooLarge);
            data.Add($"{name} 512", U16(p, offset, 512), PduErrorKind.TooLarge);
            data.Add($"{name} 511 (odd and too large)", U16(p, offset, 511), PduErrorKind.TooLarge);
            data.Add($"{name} odd", U16(p, offset, 3), PduErrorKind.InvalidField);
        }

        data.Add("cbDomain 0 without a terminator", U16(p, CbDomain, 0), PduErrorKind.InvalidField);
        data.Add("cbDomain 2 too large", U16(p, CbDomain, 16), PduErrorKind.InvalidField);
        data.Add("cbDomain 2 too small", U16(p, CbDomain, 12), PduErrorKind.InvalidField);
        data.Add("cbUserName 0 without a terminator", U16(p, CbUserName, 0), PduErrorKind.InvalidField);
        data.Add("cbUserName too large", U16(p, CbUserName, 18), PduErrorKind.InvalidField);
        data.Add("cbPassword 0 without a terminator", U16(p, CbPassword, 0), PduErrorKind.InvalidField);
        data.Add("cbPassword too small", U16(p, CbPassword, 24), PduErrorKind.InvalidField);
        data.Add("cbPassword 510 past the end", U16(p, CbPassword, 510), PduErrorKind.NotEnoughBytes);
        data.Add("cbAlternateShell 2 swallows the terminator", U16(p, CbAlternateShell, 2), PduErrorKind.InvalidField);
        data.Add("Domain missing NUL", U8(p, DomainNul, 0x41), PduErrorKind.InvalidField);
        data.Add("Domain NUL high byte set", U8(p, DomainNul + 1, 0x01), PduErrorKind.InvalidField);
        data.Add("UserName missing NUL", U8(p, UserNameNul, 0x41), PduErrorKind.InvalidField);
        data.Add("Password missing NUL", U8(p, PasswordNul, 0x41), PduErrorKind.InvalidField);
        data.Add("AlternateShell missing NUL", U8(p, AlternateShellNul, 0x41), PduErrorKind.InvalidField);
        data.Add("WorkingDir missing NUL", U8(p, WorkingDirNul, 0x41), PduErrorKind.InvalidField);
        data.Add("cbClientAddress odd", U16(p, CbClientAddress, 19), PduErrorKind.InvalidField);
        data.Add("cbClientAddress 82", U16(p, CbClientAddress, 82), PduErrorKind.TooLarge);
        data.Add("cbClientAddress 0xffff", U16(p, CbClientAddress, 0xFFFF), PduErrorKind.TooLarge);
        data.Add("cbClientAddress too small", U16(p, CbClientAddress, 18), PduErrorKind.InvalidField);
        data.Add("clientAddress missing NUL", U8(p, ClientAddressNul, 0x41), PduErrorKind.InvalidField);
        data.Add("cbClientDir odd", U16(p, CbClientDir, 63), PduErrorKind.InvalidField);
        data.Add("cbClientDir 514", U16(p, CbClientDir, 514), PduErrorKind.TooLarge);
        data.Add("cbClientDir 0xffff", U16(p, CbClientDir, 0xFFFF), PduErrorKind.TooLarge);
        data.Add("clientDir missing NUL", U8(p, ClientDirNul, 0x41), PduErrorKind.InvalidField);
        data.Add("cbAutoReconnectCookie 1", U16(p, CbCookie, 1), PduErrorKind.InvalidField);
        data.Add("cbAutoReconnectCookie 27", U16(p, CbCookie, 27), PduErrorKind.InvalidField);
        data.Add("cbAutoReconnectCookie 0xffff", U16(p, CbCookie, 0xFFFF), PduErrorKind.InvalidField);
        data.Add("cbAutoReconnectCookie 28 without a cookie", U16(p, CbCookie, 28), PduErrorKind.NotEnoughBytes);
        data.Add("cookie packet: cbAutoReconnectCookie 0 leaves 36 bytes of tail", U16(CookiePacket, CbCookie, 0), PduErrorKind.InvalidField);
        data.Add("tail longer than the spec allows", [.. CookiePacket, .. new byte[300]], PduErrorKind.TooLarge);
        data.Add("time zone cut short", p[..(172 + 100)], PduErrorKind.NotEnoughBytes);
        data.Add("one stray byte after clientDir", p[..173], PduErrorKind.NotEnoughBytes);
        data.Add("clientSessionId cut short", p[..346], PduErrorKind.NotEnoughBytes);
        data.Add("performanceFlags cut short", p[..350], PduErrorKind.NotEnoughBytes);
        data.Add("cbAutoReconnectCookie cut short", p[..353], PduErrorKind.NotEnoughBytes);
        data.Add("empty", [], PduErrorKind.NotEnoughBytes);
        data.Add("tail of 1 byte", [.. p, 0x00], PduErrorKind.NotEnoughBytes);
        data.Add("tail of 3 bytes", [.. p, 0, 0, 0], PduErrorKind.NotEnoughBytes);
        data.Add("tail cbDynamicDSTTimeZoneKeyName odd", [.. p, 0, 0, 0, 0, 3, 0, 0, 0, 0], PduErrorKind.InvalidField);
        data.Add("tail cbDynamicDSTTimeZoneKeyName 256", [.. p, 0, 0, 0, 0, 0, 1], PduErrorKind.InvalidField);
        data.Add("tail key name past the end", [.. p, 0, 0, 0, 0, 8, 0, 0x41, 0], PduErrorKind.NotEnoughBytes);
        data.Add("tail with 3 bytes after the key name", [.. p, 0, 0, 0, 0, 2, 0, 0x41, 0, 0, 0, 0], PduErrorKind.InvalidField);
        return data;
    }

    [Theory]
    [MemberData(nameof(PacketCases))]
    public void Packet_Malformed_Rejected(string name, byte[] packet, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ClientInfoPacket>(ClientInfoPacket.TryParse, packet, kind);
    }

    public static TheoryData<string, byte[], PduErrorKind> FrameCases()
    {
        var f = ClientInfoCorpus.CapturedClientInfo;
        return new TheoryData<string, byte[], PduErrorKind>
        {
            { "TPKT version 2", U8(f, 0, 2), PduErrorKind.UnexpectedMessageType },
            { "TPKT length one too large", U16BE(f, 2, 374), PduErrorKind.NotEnoughBytes },
            { "TPKT length one too small", U16BE(f, 2, 372), PduErrorKind.InvalidField },
            { "TPKT length 0xffff", U16BE(f, 2, 0xFFFF), PduErrorKind.NotEnoughBytes },
            { "TPKT length 0", U16BE(f, 2, 0), PduErrorKind.InvalidField },
            { "X.224 code CR", U8(f, 5, 0xE0), PduErrorKind.UnexpectedMessageType },
            { "X.224 without EOT", U8(f, 6, 0x00), PduErrorKind.Unsupported },
            { "MCS Send Data Indication instead of Request", U8(f, 7, 0x68), PduErrorKind.UnexpectedMessageType },
            { "MCS Erect Domain choice", U8(f, 7, 0x04), PduErrorKind.UnexpectedMessageType },
            { "MCS initiator out of range", U16BE(f, 8, 0xFFFF), PduErrorKind.InvalidField },
            { "PER length one too large", U16BE(f, 13, 0x8167), PduErrorKind.NotEnoughBytes },
            { "PER length one too small", U16BE(f, 13, 0x8165), PduErrorKind.InvalidField },
            { "PER length 0x3fff", U16BE(f, 13, 0xBFFF), PduErrorKind.NotEnoughBytes },
            { "PER length fragmented", U16BE(f, 13, 0xC001), PduErrorKind.Unsupported },
            { "security flags without SEC_INFO_PKT", U16(f, 15, 0x0000), PduErrorKind.UnexpectedMessageType },
            { "security flags SEC_LICENSE_PKT", U16(f, 15, 0x0080), PduErrorKind.UnexpectedMessageType },
            { "security flags SEC_ENCRYPT", U16(f, 15, 0x0048), PduErrorKind.Unsupported },
            { "security header cut short", Hex.Bytes("03 00 00 10 02 f0 80 64 00 07 03 eb 70 02 40 00"), PduErrorKind.NotEnoughBytes },
            { "ANSI info packet", U8(f, 19 + 4, 0xeb), PduErrorKind.Unsupported },
            { "cbUserName odd inside the frame", U16(f, 19 + CbUserName, 13), PduErrorKind.InvalidField },
        };
    }

    [Theory]
    [MemberData(nameof(FrameCases))]
    public void Frame_Malformed_Rejected(string name, byte[] frame, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ClientInfoPdu>(ClientInfoPdu.TryParse, frame, kind);
    }

    [Fact]
    public void Packet_EveryTruncationOfTheFixedPart_Rejected()
    {
        // Truncations inside the extended info's optional tail are valid shorter packets, so cut only up to clientDir.
        var p = Packet;
        for (var length = 0; length <= ClientDirNul + 1; length++)
        {
            if (length == WorkingDirNul + 2)
            {
                // Ends right after WorkingDir: a valid RDP 4.0 packet without extended info.
                continue;
            }

            Malformed.Rejects<ClientInfoPacket>(ClientInfoPacket.TryParse, p[..length]);
        }
    }

    [Fact]
    public void Frame_EveryTruncation_Rejected()
    {
        Malformed.RejectsEveryTruncation<ClientInfoPdu>(ClientInfoPdu.TryParse, ClientInfoCorpus.ClientInfoWithCookie);
    }
}
