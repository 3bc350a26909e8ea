using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.11 Client Info PDU: TPKT, X.224 Data, MCS Send Data Request, a basic security header
/// (2.2.8.1.1.2.1, flags SEC_INFO_PKT, no encryption) and the TS_INFO_PACKET. Parse and write cover the whole frame.
/// </summary>
public sealed class ClientInfoPdu
{
    internal const string Name = "Client Info PDU";

    /// <summary>Size of the basic security header (flags, flagsHi).</summary>
    public const int SecurityHeaderSize = 2 /* flags */ + 2 /* flagsHi */;

    /// <summary>MCS initiator (the client's user channel id).</summary>
    public ushort Initiator { get; init; } = 1007;

    /// <summary>MCS channelId (the I/O channel, normally 1003).</summary>
    public ushort ChannelId { get; init; } = 1003;

    /// <summary>MCS dataPriority and segmentation byte.</summary>
    public byte PriorityAndSegmentation { get; init; } = McsSendData.DefaultPriorityAndSegmentation;

    /// <summary>True when the MCS length used the 2-byte form although it fits one byte.</summary>
    public bool LongLengthForm { get; init; }

    /// <summary>Basic security header flags (SEC_INFO_PKT set).</summary>
    public BasicSecurityFlags SecurityFlags { get; init; } = BasicSecurityFlags.InfoPkt;

    /// <summary>Basic security header flagsHi.</summary>
    public ushort SecurityFlagsHi { get; init; }

    /// <summary>infoPacket.</summary>
    public required ClientInfoPacket Packet { get; init; }

    private int UserDataLength => SecurityHeaderSize /* basic security header */ + Packet.Size /* infoPacket */;

    private McsSendData Mcs => new(DomainMcsPduType.SendDataRequest, Initiator, ChannelId, PriorityAndSegmentation, 0, UserDataLength, LongLengthForm);

    /// <summary>Encoded size of the whole frame.</summary>
    public int Size => X224Data.FrameOverhead /* TPKT + X.224 Data */ + Mcs.HeaderSize /* MCS Send Data Request */ + UserDataLength;

    /// <summary>Parses a whole Client Info PDU frame (TPKT header first).</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out ClientInfoPdu value, out PduError? error)
    {
        value = null;
        if (!X224Data.TryUnwrapFrame(frame, out var mcsPdu, out error)
            || !McsSendData.TryParseRequest(mcsPdu, out var mcs, out var userData, out error)
            || !TryReadSecurityHeader(userData, out var flags, out var flagsHi, out error)
            || !ClientInfoPacket.TryParse(userData[SecurityHeaderSize..], out var packet, out error))
        {
            return false;
        }

        value = new ClientInfoPdu
        {
            Initiator = mcs.Initiator,
            ChannelId = mcs.ChannelId,
            PriorityAndSegmentation = mcs.PriorityAndSegmentation,
            LongLengthForm = mcs.LongLengthForm,
            SecurityFlags = flags,
            SecurityFlagsHi = flagsHi,
            Packet = packet,
        };
        return true;
    }

    /// <summary>Reads the basic security header of a Client Info PDU: SEC_INFO_PKT required, SEC_ENCRYPT unsupported.</summary>
    internal static bool TryReadSecurityHeader(ReadOnlySpan<byte> userData, out BasicSecurityFlags flags, out ushort flagsHi, out PduError? error)
    {
        flags = default;
        flagsHi = 0;
        error = null;
        if (userData.Length < SecurityHeaderSize)
        {
            error = PduError.NotEnough(Name, "securityHeader", SecurityHeaderSize, userData.Length);
            return false;
        }

        flags = (BasicSecurityFlags)BinaryPrimitives.ReadUInt16LittleEndian(userData);
        flagsHi = BinaryPrimitives.ReadUInt16LittleEndian(userData[2..]);
        if ((flags & BasicSecurityFlags.InfoPkt) == 0)
        {
            error = PduError.Unexpected(Name, "securityHeader.flags", "SEC_INFO_PKT is not set");
            return false;
        }

        if ((flags & BasicSecurityFlags.Encrypt) != 0)
        {
            error = PduError.Unsupported(Name, "securityHeader.flags", "SEC_ENCRYPT (standard RDP security) is not supported");
            return false;
        }

        return true;
    }

    /// <summary>Writes the whole frame.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        if (size > Tpkt.MaxPacketLength)
        {
            throw new InvalidOperationException($"a {size}-byte frame does not fit TPKT");
        }

        var span = output.GetSpan(size)[..size];
        X224Data.WriteFrameHeader(span, size);
        var offset = X224Data.FrameOverhead + Mcs.WriteHeader(span[X224Data.FrameOverhead..]);
        BinaryPrimitives.WriteUInt16LittleEndian(span[offset..], (ushort)SecurityFlags);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(offset + 2)..], SecurityFlagsHi);
        Packet.WriteTo(span[(offset + SecurityHeaderSize)..]);
        output.Advance(size);
    }
}
