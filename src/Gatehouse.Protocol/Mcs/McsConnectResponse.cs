using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.4 Server MCS Connect Response PDU with GCC Conference Create Response: the T.125
/// Connect-Response (BER: result, calledConnectId, domainParameters, userData) whose userData is the T.124
/// ConnectData carrying a ConferenceCreateResponse with H.221 key "McDn" and the server data blocks. The
/// connectPDU length is kept as received: [MS-RDPBCGR] says clients ignore it, and Windows and xrdp write values
/// that do not match the content.
/// </summary>
public sealed class McsConnectResponse
{
    /// <summary>rt-successful.</summary>
    public const byte ResultSuccessful = 0;

    private static readonly byte[] Tag = [0x7F, 0x66];
    private const string Pdu = "MCS Connect Response";

    private readonly byte[] _calledConnectId;
    private readonly byte[] _conferenceCreateResponse;
    private readonly List<GccUserDataBlock> _blocks;
    private readonly Forms _forms;

    private McsConnectResponse(byte result, byte[] calledConnectId, DomainParameters parameters, byte[] conferenceCreateResponse, List<GccUserDataBlock> blocks, Forms forms)
    {
        Result = result;
        _calledConnectId = calledConnectId;
        DomainParameters = parameters;
        _conferenceCreateResponse = conferenceCreateResponse;
        _blocks = blocks;
        _forms = forms;
    }

    /// <summary>result (ENUMERATED; 0 = rt-successful).</summary>
    public byte Result { get; }

    /// <summary>calledConnectId as encoded (the INTEGER's content octets).</summary>
    public ReadOnlySpan<byte> CalledConnectId => _calledConnectId;

    /// <summary>domainParameters.</summary>
    public DomainParameters DomainParameters { get; }

    /// <summary>The server data blocks in order.</summary>
    public IReadOnlyList<GccUserDataBlock> Blocks => _blocks;

    /// <summary>TS_UD_SC_CORE, typed.</summary>
    public ServerCoreData Core => new(Find(GccBlockType.ServerCore)!);

    /// <summary>The connectPDU length as received (ignored by clients).</summary>
    public int ConnectPduLength => _forms.ConnectPduLength;

    /// <summary>The block of <paramref name="type"/>, or null.</summary>
    public GccUserDataBlock? Find(GccBlockType type) => _blocks.Find(b => b.Type == type);

    /// <summary>The encoded size (the X.224 Data payload).</summary>
    public int Size => Layout().Total;

    /// <summary>Parses a TPKT frame holding X.224 Data and the PDU.</summary>
    public static bool TryParseFrame(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out McsConnectResponse value, out PduError? error)
    {
        value = null;
        return X224Data.TryUnwrapFrame(frame, out var payload, out error) && TryParse(payload, out value, out error);
    }

    /// <summary>Parses the PDU from the X.224 Data payload; the PDU must use it all.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out McsConnectResponse value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        var forms = new Forms();
        if (!McsBer.TryReadHeader(ref reader, Tag, "Connect-Response", out var length, out forms.Outer)
            || !GccConnectData.Exact(ref reader, length, "Connect-Response length")
            || !McsBer.TryReadHeader(ref reader, 0x0A, "result", out var resultLength, out _))
        {
            error = reader.Error;
            return false;
        }

        if (resultLength != 1)
        {
            error = PduError.Invalid(Pdu, "result", $"ENUMERATED of {resultLength} octets");
            return false;
        }

        if (!reader.TryReadU8("result", out var result)
            || !McsBer.TryReadHeader(ref reader, 0x02, "calledConnectId", out var idLength, out _))
        {
            error = reader.Error;
            return false;
        }

        if (idLength is 0 or > 4)
        {
            error = PduError.Invalid(Pdu, "calledConnectId", $"INTEGER of {idLength} octets");
            return false;
        }

        if (!reader.TryReadBytes(idLength, "calledConnectId", out var connectId)
            || !DomainParameters.TryRead(ref reader, "domainParameters", out var parameters)
            || !McsBer.TryReadHeader(ref reader, 0x04, "userData", out var userDataLength, out forms.UserData)
            || !GccConnectData.Exact(ref reader, userDataLength, "userData length")
            || !GccConnectData.TryRead(ref reader, response: true, out var response, out forms.ConnectPduLength, out forms.ConnectPduLong, out forms.BlocksLong))
        {
            error = reader.Error;
            return false;
        }

        if (!GccUserDataBlock.TryReadAll(reader.Rest, Pdu, McsConnectInitial.MaxBlocks, out var blocks, out error))
        {
            return false;
        }

        var core = blocks.Find(b => b.Type == GccBlockType.ServerCore);
        if (result == ResultSuccessful && (core is null || core.Length < 8))
        {
            error = PduError.Invalid(Pdu, "TS_UD_SC_CORE", core is null ? "the server core data block is missing" : $"{core.Length} bytes, fewer than 8");
            return false;
        }

        value = new McsConnectResponse(result, connectId.ToArray(), parameters!, response.ToArray(), blocks, forms);
        return true;
    }

    /// <summary>
    /// The same PDU with the server core data's clientRequestedProtocols set (the gateway gives the client back the
    /// protocols it asked for). Refused when the server's core block has no such field.
    /// </summary>
    public bool TryWithClientRequestedProtocols(SecurityProtocol protocols, [MaybeNullWhen(false)] out McsConnectResponse value, out PduError? error)
    {
        var core = Find(GccBlockType.ServerCore);
        if (core is null || core.Length < ServerCoreData.ClientRequestedProtocolsOffset + 4)
        {
            value = null;
            error = PduError.Unsupported(Pdu, "clientRequestedProtocols", "the server core data has no clientRequestedProtocols field");
            return false;
        }

        value = WithBlock(core.WithUInt32(ServerCoreData.ClientRequestedProtocolsOffset, (uint)protocols));
        error = null;
        return true;
    }

    /// <summary>The same PDU with <paramref name="block"/> replacing the block of its type, or appended.</summary>
    public McsConnectResponse WithBlock(GccUserDataBlock block)
    {
        ArgumentNullException.ThrowIfNull(block);
        var blocks = GccUserDataBlock.ReplaceOrAppend(_blocks, block);
        return new McsConnectResponse(Result, _calledConnectId, DomainParameters, _conferenceCreateResponse, blocks, _forms);
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var l = Layout();
        var span = output.GetSpan(l.Total)[..l.Total];
        var o = 0;
        Tag.CopyTo(span);
        o += Tag.Length;
        o += McsBer.WriteLength(span[o..], l.Outer, l.OuterLengthSize);
        span[o++] = 0x0A;
        span[o++] = 0x01;
        span[o++] = Result;
        span[o++] = 0x02;
        span[o++] = (byte)_calledConnectId.Length;
        _calledConnectId.CopyTo(span[o..]);
        o += _calledConnectId.Length;
        DomainParameters.Encoded.CopyTo(span[o..]);
        o += DomainParameters.Encoded.Length;
        span[o++] = 0x04;
        o += McsBer.WriteLength(span[o..], l.UserData, l.UserDataLengthSize);
        GccConnectData.Write(span[o..], _forms.ConnectPduLength, l.ConnectPduLengthSize, _conferenceCreateResponse, l.Blocks, l.BlocksLengthSize, _blocks);
        output.Advance(l.Total);
    }

    /// <summary>Writes TPKT, X.224 Data and the PDU.</summary>
    public void WriteFrame(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        GccUserDataBlock.WriteFramed(output, Size, Write);
    }

    private (int Total, int Outer, int OuterLengthSize, int UserData, int UserDataLengthSize, int ConnectPduLengthSize, int Blocks, int BlocksLengthSize) Layout()
    {
        var blocks = _blocks.Sum(b => b.Length);
        if (blocks > 0x3FFF)
        {
            throw new InvalidOperationException($"The server data blocks take {blocks} bytes, more than a PER length can say (16383).");
        }

        var blocksLengthSize = DomainPer.LengthSize(blocks, _forms.BlocksLong);
        var connectPduLengthSize = DomainPer.LengthSize(_forms.ConnectPduLength, _forms.ConnectPduLong);
        var userData = GccConnectData.Size(connectPduLengthSize, _conferenceCreateResponse.Length, blocksLengthSize, blocks);
        var userDataLengthSize = McsBer.LengthSize(userData, _forms.UserData);
        var outer = 3 /* result */ + 2 + _calledConnectId.Length + DomainParameters.Encoded.Length + 1 + userDataLengthSize + userData;
        var outerLengthSize = McsBer.LengthSize(outer, _forms.Outer);
        return (Tag.Length + outerLengthSize + outer, outer, outerLengthSize, userData, userDataLengthSize, connectPduLengthSize, blocks, blocksLengthSize);
    }

    private struct Forms
    {
        public int Outer;
        public int UserData;
        public int ConnectPduLength;
        public bool ConnectPduLong;
        public bool BlocksLong;
    }
}
