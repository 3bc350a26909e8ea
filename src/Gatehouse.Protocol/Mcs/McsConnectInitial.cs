using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Mcs;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.3 Client MCS Connect Initial PDU with GCC Conference Create Request: the T.125 Connect-Initial
/// (BER) whose userData is the T.124 ConnectData (PER) carrying a ConferenceCreateRequest with H.221 key "Duca" and
/// the client data blocks. Every block is kept byte-exact; lengths are re-encoded on write in their original forms
/// when the values still fit. Parse input is the X.224 Data payload.
/// </summary>
public sealed class McsConnectInitial
{
    /// <summary>Most data blocks accepted.</summary>
    public const int MaxBlocks = 16;

    internal static readonly byte[] T124Identifier = [0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01];
    private static readonly byte[] Tag = [0x7F, 0x65];
    private const string Pdu = "MCS Connect Initial";

    private readonly byte[] _calling;
    private readonly byte[] _called;
    private readonly byte[] _conferenceCreateRequest;
    private readonly List<GccUserDataBlock> _blocks;
    private readonly LengthForms _forms;

    private McsConnectInitial(byte[] calling, byte[] called, byte upwardFlag, DomainParameters target, DomainParameters minimum, DomainParameters maximum, byte[] conferenceCreateRequest, List<GccUserDataBlock> blocks, LengthForms forms)
    {
        _calling = calling;
        _called = called;
        UpwardFlagByte = upwardFlag;
        TargetParameters = target;
        MinimumParameters = minimum;
        MaximumParameters = maximum;
        _conferenceCreateRequest = conferenceCreateRequest;
        _blocks = blocks;
        _forms = forms;
    }

    /// <summary>callingDomainSelector.</summary>
    public ReadOnlySpan<byte> CallingDomainSelector => _calling;

    /// <summary>calledDomainSelector.</summary>
    public ReadOnlySpan<byte> CalledDomainSelector => _called;

    /// <summary>upwardFlag as encoded (0xFF for TRUE).</summary>
    public byte UpwardFlagByte { get; }

    /// <summary>upwardFlag.</summary>
    public bool UpwardFlag => UpwardFlagByte != 0;

    /// <summary>targetParameters.</summary>
    public DomainParameters TargetParameters { get; }

    /// <summary>minimumParameters.</summary>
    public DomainParameters MinimumParameters { get; }

    /// <summary>maximumParameters.</summary>
    public DomainParameters MaximumParameters { get; }

    /// <summary>The client data blocks in order.</summary>
    public IReadOnlyList<GccUserDataBlock> Blocks => _blocks;

    /// <summary>TS_UD_CS_CORE, typed.</summary>
    public ClientCoreData Core => new(Find(GccBlockType.ClientCore)!);

    /// <summary>The block of <paramref name="type"/>, or null.</summary>
    public GccUserDataBlock? Find(GccBlockType type) => _blocks.Find(b => b.Type == type);

    /// <summary>The encoded size (the X.224 Data payload).</summary>
    public int Size => Layout().Total;

    /// <summary>Parses a TPKT frame holding X.224 Data and the PDU.</summary>
    public static bool TryParseFrame(ReadOnlySpan<byte> frame, [MaybeNullWhen(false)] out McsConnectInitial value, out PduError? error)
    {
        value = null;
        return X224Data.TryUnwrapFrame(frame, out var payload, out error) && TryParse(payload, out value, out error);
    }

    /// <summary>Parses the PDU from the X.224 Data payload; the PDU must use it all.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out McsConnectInitial value, out PduError? error)
    {
        value = null;
        var reader = new WireReader(source, Pdu);
        var forms = new LengthForms();
        if (!McsBer.TryReadHeader(ref reader, Tag, "Connect-Initial", out var length, out forms.Outer)
            || !GccConnectData.Exact(ref reader, length, "Connect-Initial length")
            || !McsBer.TryReadHeader(ref reader, 0x04, "callingDomainSelector", out var callingLength, out forms.Calling)
            || !reader.TryReadBytes(callingLength, "callingDomainSelector", out var calling)
            || !McsBer.TryReadHeader(ref reader, 0x04, "calledDomainSelector", out var calledLength, out forms.Called)
            || !reader.TryReadBytes(calledLength, "calledDomainSelector", out var called)
            || !McsBer.TryReadHeader(ref reader, 0x01, "upwardFlag", out var flagLength, out _))
        {
            error = reader.Error;
            return false;
        }

        if (flagLength != 1)
        {
            error = PduError.Invalid(Pdu, "upwardFlag", $"BOOLEAN of {flagLength} octets");
            return false;
        }

        if (!reader.TryReadU8("upwardFlag", out var upward)
            || !DomainParameters.TryRead(ref reader, "targetParameters", out var target)
            || !DomainParameters.TryRead(ref reader, "minimumParameters", out var minimum)
            || !DomainParameters.TryRead(ref reader, "maximumParameters", out var maximum)
            || !McsBer.TryReadHeader(ref reader, 0x04, "userData", out var userDataLength, out forms.UserData)
            || !GccConnectData.Exact(ref reader, userDataLength, "userData length"))
        {
            error = reader.Error;
            return false;
        }

        // T.124 ConnectData: t124Identifier, connectPDU (PER length), ConferenceCreateRequest, user data set.
        if (!GccConnectData.TryRead(ref reader, response: false, out var request, out _, out forms.ConnectPduLong, out forms.BlocksLong))
        {
            error = reader.Error;
            return false;
        }

        if (!GccUserDataBlock.TryReadAll(reader.Rest, Pdu, MaxBlocks, out var blocks, out error))
        {
            return false;
        }

        var core = blocks.Find(b => b.Type == GccBlockType.ClientCore);
        if (core is null || core.Length < ClientCoreData.MinimumLength)
        {
            error = PduError.Invalid(Pdu, "TS_UD_CS_CORE", core is null ? "the client core data block is missing" : $"{core.Length} bytes, fewer than the {ClientCoreData.MinimumLength} mandatory ones");
            return false;
        }

        if (blocks.Find(b => b.Type == GccBlockType.ClientNetwork) is { } network && !ClientNetworkData.TryRead(network, out _, out error))
        {
            return false;
        }

        value = new McsConnectInitial(calling.ToArray(), called.ToArray(), upward, target!, minimum!, maximum!, request.ToArray(), blocks, forms);
        return true;
    }

    /// <summary>
    /// The same PDU with the client core data's serverSelectedProtocol set (the gateway tells the backend what its
    /// own leg selected). Refused when the client's core block is too short to carry the field.
    /// </summary>
    public bool TryWithServerSelectedProtocol(SecurityProtocol protocol, [MaybeNullWhen(false)] out McsConnectInitial value, out PduError? error)
    {
        var core = Find(GccBlockType.ClientCore)!;
        if (core.Length < ClientCoreData.ServerSelectedProtocolOffset + 4)
        {
            value = null;
            error = PduError.Unsupported(Pdu, "serverSelectedProtocol", $"the client core data is {core.Length} bytes and has no serverSelectedProtocol field");
            return false;
        }

        value = WithBlock(core.WithUInt32(ClientCoreData.ServerSelectedProtocolOffset, (uint)protocol));
        error = null;
        return true;
    }

    /// <summary>The same PDU with <paramref name="block"/> replacing the block of its type, or appended.</summary>
    public McsConnectInitial WithBlock(GccUserDataBlock block)
    {
        ArgumentNullException.ThrowIfNull(block);
        var blocks = GccUserDataBlock.ReplaceOrAppend(_blocks, block);
        return new McsConnectInitial(_calling, _called, UpwardFlagByte, TargetParameters, MinimumParameters, MaximumParameters, _conferenceCreateRequest, blocks, _forms);
    }

    /// <summary>Writes the PDU (the X.224 Data payload).</summary>
    /// <exception cref="InvalidOperationException">The blocks are too large for a PER length (16383 bytes).</exception>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var l = Layout();
        var span = output.GetSpan(l.Total)[..l.Total];
        var o = 0;
        Tag.CopyTo(span);
        o += Tag.Length;
        o += McsBer.WriteLength(span[o..], l.OuterContent, l.OuterLengthSize);
        o += WriteOctetString(span[o..], _calling, _forms.Calling);
        o += WriteOctetString(span[o..], _called, _forms.Called);
        span[o++] = 0x01;
        span[o++] = 0x01;
        span[o++] = UpwardFlagByte;
        foreach (var p in new[] { TargetParameters, MinimumParameters, MaximumParameters })
        {
            p.Encoded.CopyTo(span[o..]);
            o += p.Encoded.Length;
        }

        span[o++] = 0x04;
        o += McsBer.WriteLength(span[o..], l.UserData, l.UserDataLengthSize);
        GccConnectData.Write(span[o..], l.ConnectPdu, l.ConnectPduLengthSize, _conferenceCreateRequest, l.Blocks, l.BlocksLengthSize, _blocks);
        output.Advance(l.Total);
    }

    /// <summary>Writes TPKT, X.224 Data and the PDU.</summary>
    public void WriteFrame(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        GccUserDataBlock.WriteFramed(output, Size, Write);
    }

    private static int WriteOctetString(Span<byte> destination, ReadOnlySpan<byte> value, int octets)
    {
        destination[0] = 0x04;
        var size = McsBer.LengthSize(value.Length, octets);
        McsBer.WriteLength(destination[1..], value.Length, size);
        value.CopyTo(destination[(1 + size)..]);
        return 1 + size + value.Length;
    }

    private (int Total, int OuterContent, int OuterLengthSize, int UserData, int UserDataLengthSize, int ConnectPdu, int ConnectPduLengthSize, int Blocks, int BlocksLengthSize) Layout()
    {
        var blocks = _blocks.Sum(b => b.Length);
        if (blocks > 0x3FFF)
        {
            throw new InvalidOperationException($"The client data blocks take {blocks} bytes, more than a PER length can say (16383).");
        }

        var blocksLengthSize = DomainPer.LengthSize(blocks, _forms.BlocksLong);
        var connectPdu = _conferenceCreateRequest.Length + blocksLengthSize + blocks;
        var connectPduLengthSize = DomainPer.LengthSize(connectPdu, _forms.ConnectPduLong);
        var userData = GccConnectData.Size(connectPduLengthSize, _conferenceCreateRequest.Length, blocksLengthSize, blocks);
        var userDataLengthSize = McsBer.LengthSize(userData, _forms.UserData);
        var outer = 1 + McsBer.LengthSize(_calling.Length, _forms.Calling) + _calling.Length
            + 1 + McsBer.LengthSize(_called.Length, _forms.Called) + _called.Length
            + 3 /* upwardFlag */
            + TargetParameters.Encoded.Length + MinimumParameters.Encoded.Length + MaximumParameters.Encoded.Length
            + 1 + userDataLengthSize + userData;
        var outerLengthSize = McsBer.LengthSize(outer, _forms.Outer);
        return (Tag.Length + outerLengthSize + outer, outer, outerLengthSize, userData, userDataLengthSize, connectPdu, connectPduLengthSize, blocks, blocksLengthSize);
    }

    /// <summary>How the client wrote each length, so a rewrite keeps the same forms.</summary>
    internal struct LengthForms
    {
        public int Outer;
        public int Calling;
        public int Called;
        public int UserData;
        public bool ConnectPduLong;
        public bool BlocksLong;
    }
}
