using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Captures;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>Client Info PDU: the captured FreeRDP frame and the [MS-RDPBCGR] 4.1.10 packet, field values and byte-exact round trips.</summary>
public sealed class ClientInfoTests
{
    private static byte[] Written(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void CapturedFrame_Parses_Fields()
    {
        var frame = Captured.FreeRdpToXrdp("c2s-010-client-info.bin");
        Assert.Equal(373, frame.Length);
        Assert.Equal(ClientInfoCorpus.CapturedClientInfo, frame);
        Assert.True(ClientInfoPdu.TryParse(frame, out var pdu, out var error), error?.ToString());
        Assert.Equal((ushort)1008, pdu.Initiator);
        Assert.Equal((ushort)1003, pdu.ChannelId);
        Assert.Equal(BasicSecurityFlags.InfoPkt, pdu.SecurityFlags);
        Assert.Equal((ushort)0, pdu.SecurityFlagsHi);
        var p = pdu.Packet;
        Assert.Equal(0u, p.CodePage);
        Assert.Equal((ClientInfoFlags)0x000b47fb, p.Flags);
        Assert.True(p.Flags.HasFlag(ClientInfoFlags.AutoLogon | ClientInfoFlags.Unicode | ClientInfoFlags.LogonErrors));
        Assert.Equal("CONTOSO", p.Domain);
        Assert.Equal("rdpuser", p.UserName);
        Assert.Equal("Rdp-Pass-2026", p.Password);
        Assert.Equal(string.Empty, p.AlternateShell);
        Assert.Equal(string.Empty, p.WorkingDir);
        var x = Assert.IsType<ClientInfoExtended>(p.Extended);
        Assert.Equal(ClientInfoExtended.AddressFamilyInet, x.ClientAddressFamily);
        Assert.Equal("127.0.0.1", x.ClientAddress);
        Assert.Equal(@"C:\Windows\System32\mstscax.dll", x.ClientDir);
        Assert.Equal(172, x.TimeZone!.Value.Length);
        Assert.Equal(0u, x.ClientSessionId);
        Assert.Equal(0x180u, x.PerformanceFlags);
        Assert.Equal(0, x.AutoReconnectCookie!.Value.Length);
        Assert.Equal(0, x.Tail.Length);
    }

    [Theory]
    [InlineData("captured")]
    [InlineData("cookie")]
    [InlineData("minimal")]
    public void Frame_RoundTrips_ByteExact(string which)
    {
        var frame = Frame(which);
        Assert.True(ClientInfoPdu.TryParse(frame, out var pdu, out var error), error?.ToString());
        Assert.Equal(frame.Length, pdu.Size);
        Assert.Equal(frame, Written(pdu.Write));
        Assert.True(ClientInfoPacket.TryParse(frame.AsSpan(which == "minimal" ? 18 : 19), out var packet, out error), error?.ToString());
        Assert.Equal(frame[(which == "minimal" ? 18 : 19)..], Written(packet.Write));
    }

    private static byte[] Frame(string which) => which switch
    {
        "captured" => ClientInfoCorpus.CapturedClientInfo,
        "cookie" => ClientInfoCorpus.ClientInfoWithCookie,
        _ => ClientInfoCorpus.MinimalClientInfo,
    };

    [Fact]
    public void CookieFrame_KeepsCookieAndTail()
    {
        Assert.True(ClientInfoPdu.TryParse(ClientInfoCorpus.ClientInfoWithCookie, out var pdu, out _));
        var x = pdu.Packet.Extended!;
        Assert.Equal(28, x.AutoReconnectCookie!.Value.Length);
        Assert.Equal(28u, BinaryPrimitives.ReadUInt32LittleEndian(x.AutoReconnectCookie.Value.Span));
        Assert.Equal(8, x.Tail.Length);
    }

    [Fact]
    public void MinimalFrame_HasNoExtendedInfo()
    {
        Assert.True(ClientInfoPdu.TryParse(ClientInfoCorpus.MinimalClientInfo, out var pdu, out _));
        Assert.Null(pdu.Packet.Extended);
        Assert.Equal("ab", pdu.Packet.UserName);
        Assert.Equal(0x0409u, pdu.Packet.CodePage);
    }

    [Fact]
    public void SpecInfoPacket_Parses_AndRoundTrips()
    {
        // [MS-RDPBCGR] 4.1.10 Client Info PDU (the decrypted TS_INFO_PACKET).
        var bytes = ClientInfoCorpus.SpecInfoPacket;
        Assert.True(ClientInfoPacket.TryParse(bytes, out var p, out var error), error?.ToString());
        Assert.Equal(0x04090409u, p.CodePage);
        Assert.Equal((ClientInfoFlags)0x43b3, p.Flags);
        Assert.Equal("NTDEV", p.Domain);
        Assert.Equal("eltons", p.UserName);
        Assert.Equal(string.Empty, p.Password);
        var x = p.Extended!;
        Assert.Equal("157.59.242.156", x.ClientAddress);
        Assert.Equal(@"C:\depots\w2k3_1\termsrv\newclient\lib\win32\obj\i386\mstscax.dll", x.ClientDir);
        Assert.Equal(0u, x.ClientSessionId);
        Assert.Equal(1u, x.PerformanceFlags);
        Assert.Null(x.AutoReconnectCookie);
        Assert.Equal(bytes.Length, p.Size);
        Assert.Equal(bytes, Written(p.Write));
    }

    [Fact]
    public void Extended_OptionalFieldsAbsent_SizeStopsAtFirstAbsent()
    {
        var x = new ClientInfoExtended { ClientAddressBytes = ClientInfoPacket.Utf16("a\0"), ClientDirBytes = Array.Empty<byte>() };
        Assert.Equal(2 + 2 + 4 + 2, x.Size);
        Assert.Equal("a", x.ClientAddress);
        Assert.Equal(string.Empty, x.ClientDir);
        var withTz = new ClientInfoExtended { TimeZone = new byte[172] };
        Assert.Equal(6 + 172, withTz.Size);
        var withSession = new ClientInfoExtended { TimeZone = new byte[172], ClientSessionId = 1 };
        Assert.Equal(6 + 176, withSession.Size);
        var withPerf = new ClientInfoExtended { TimeZone = new byte[172], ClientSessionId = 1, PerformanceFlags = 2 };
        Assert.Equal(6 + 180, withPerf.Size);
        foreach (var e in new[] { x, withTz, withSession, withPerf })
        {
            var packet = new ClientInfoPacket { UserNameBytes = ClientInfoPacket.Utf16("u"), Extended = e };
            var bytes = Written(packet.Write);
            Assert.Equal(packet.Size, bytes.Length);
            Assert.True(ClientInfoPacket.TryParse(bytes, out var again, out var error), error?.ToString());
            Assert.Equal(e.Size, again.Extended!.Size);
        }
    }

    [Fact]
    public void NewPdu_Writes_AndParses()
    {
        var pdu = new ClientInfoPdu
        {
            Packet = new ClientInfoPacket
            {
                Flags = ClientInfoFlags.Unicode | ClientInfoFlags.AutoLogon,
                UserNameBytes = ClientInfoPacket.Utf16("alice"),
                PasswordBytes = ClientInfoPacket.Utf16("secret"),
            },
        };
        var bytes = Written(pdu.Write);
        Assert.True(ClientInfoPdu.TryParse(bytes, out var parsed, out var error), error?.ToString());
        Assert.Equal("alice", parsed.Packet.UserName);
        Assert.Equal((ushort)1007, parsed.Initiator);
    }

    [Fact]
    public void Packet_OddOrOversizedString_ThrowsOnWrite()
    {
        var odd = new ClientInfoPacket { DomainBytes = new byte[3] };
        Assert.Throws<InvalidOperationException>(() => Written(odd.Write));
        var big = new ClientInfoPacket { PasswordBytes = new byte[512] };
        Assert.Throws<InvalidOperationException>(() => Written(big.Write));
    }

    [Fact]
    public void Pdu_LargerThanTpkt_ThrowsOnWrite()
    {
        var pdu = new ClientInfoPdu
        {
            Packet = new ClientInfoPacket
            {
                Extended = new ClientInfoExtended
                {
                    TimeZone = new byte[172],
                    ClientSessionId = 0,
                    PerformanceFlags = 0,
                    AutoReconnectCookie = Array.Empty<byte>(),
                    Tail = new byte[70_000],
                },
            },
        };
        Assert.Throws<InvalidOperationException>(() => Written(pdu.Write));
    }
}
