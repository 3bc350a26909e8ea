namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// [T.124] 9.5/9.6 ConnectData as RDP uses it inside the MCS connect PDUs' userData: the T.124 object identifier,
/// the connectPDU PER length, the ConferenceCreateRequest (H.221 key "Duca") or ConferenceCreateResponse ("McDn"),
/// and the PER length of the user data blocks. One reader and one writer for the Connect Initial, the Connect
/// Response and the in-place patch.
/// </summary>
internal static class GccConnectData
{
    public const int RequestSize = 12;
    public const int ResponseSize = 13;

    /// <summary>
    /// Reads up to the data blocks, which are then <c>reader.Rest</c>. The request's connectPDU length must match what
    /// follows; the response's is returned as sent ([MS-RDPBCGR]: clients ignore it, and servers write wrong ones).
    /// </summary>
    public static bool TryRead(ref WireReader reader, bool response, out ReadOnlySpan<byte> conference, out int connectPduLength, out bool connectPduLong, out bool blocksLong)
    {
        conference = default;
        connectPduLength = 0;
        connectPduLong = false;
        blocksLong = false;
        if (!reader.TryReadBytes(McsConnectInitial.T124Identifier.Length, "t124Identifier", out var identifier))
        {
            return false;
        }

        if (!identifier.SequenceEqual(McsConnectInitial.T124Identifier))
        {
            return reader.FailInvalid("t124Identifier", "not the T.124 object identifier 0.0.20.124.0.1");
        }

        if (!DomainPer.TryReadLength(ref reader, "connectPDU length", out connectPduLength, out connectPduLong)
            || (!response && !Exact(ref reader, connectPduLength, "connectPDU length"))
            || !reader.TryReadBytes(response ? ResponseSize : RequestSize, response ? "ConferenceCreateResponse" : "ConferenceCreateRequest", out conference))
        {
            return false;
        }

        var valid = response
            ? conference[0] == 0x14 && conference[7] == 0xC0 && conference[9..].SequenceEqual("McDn"u8)
            : conference[0] == 0x00 && conference[6] == 0xC0 && conference[8..].SequenceEqual("Duca"u8);
        if (!valid)
        {
            return reader.FailInvalid(
                response ? "ConferenceCreateResponse" : "ConferenceCreateRequest",
                response ? "not a conferenceCreateResponse with the H.221 server key \"McDn\"" : "not a conferenceCreateRequest with the H.221 client key \"Duca\"");
        }

        return DomainPer.TryReadLength(ref reader, "user data length", out var blocksLength, out blocksLong)
            && Exact(ref reader, blocksLength, "user data length");
    }

    /// <summary>The encoded size for the given lengths and their forms.</summary>
    public static int Size(int connectPduLengthSize, int conference, int blocksLengthSize, int blocks) =>
        McsConnectInitial.T124Identifier.Length + connectPduLengthSize + conference + blocksLengthSize + blocks;

    /// <summary>Writes the ConnectData and the blocks; returns the bytes written.</summary>
    public static int Write(Span<byte> span, int connectPduLength, int connectPduLengthSize, ReadOnlySpan<byte> conference, int blocksLength, int blocksLengthSize, IReadOnlyList<GccUserDataBlock> blocks)
    {
        var o = 0;
        McsConnectInitial.T124Identifier.CopyTo(span);
        o += McsConnectInitial.T124Identifier.Length;
        o += DomainPer.WriteLength(span[o..], connectPduLength, connectPduLengthSize);
        conference.CopyTo(span[o..]);
        o += conference.Length;
        o += DomainPer.WriteLength(span[o..], blocksLength, blocksLengthSize);
        foreach (var block in blocks)
        {
            block.Encoded.CopyTo(span[o..]);
            o += block.Length;
        }

        return o;
    }

    /// <summary>A length that must equal what is left of the reader.</summary>
    public static bool Exact(ref WireReader reader, int length, string field) =>
        length == reader.Remaining || reader.FailInvalid(field, $"{length} but {reader.Remaining} bytes follow");
}
