using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for TPKT and the X.224 connection PDUs.</summary>
public static class X224Targets
{
    private static readonly byte[][] Seeds =
    [
        X224Corpus.SpecConnectionRequest,
        X224Corpus.FreeRdpAadConnectionRequest,
        X224Corpus.RoutingTokenWithCorrelation,
        X224Corpus.ConfirmHybrid,
        X224Corpus.ConfirmWindows7,
        X224Corpus.ConfirmFailure,
        X224Corpus.ConfirmNoNegotiation,
        X224Corpus.Disconnect,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("x224-connection-request", Seeds, Oracles.ParseWriteParse<ConnectionRequest>(ConnectionRequest.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("x224-connection-confirm", Seeds, Oracles.ParseWriteParse<ConnectionConfirm>(ConnectionConfirm.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("x224-disconnect", Seeds, Oracles.ParseWriteParse<DisconnectRequest>(DisconnectRequest.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("x224-dispatch", Seeds, Oracles.All(
            Oracles.ParseOnly<X224TpduKind>(X224Tpdu.TryClassify),
            input =>
            {
                if (!X224Data.TryUnwrapFrame(input, out _, out var error) && error is null)
                {
                    throw new OracleViolationException("X.224 Data refused without a PduError");
                }
            },
            TpktStreamOracle));
    }

    /// <summary>Stream framing: on any split the frame reader consumes nothing unless it returns a whole frame.</summary>
    private static void TpktStreamOracle(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        var reader = new System.Buffers.SequenceReader<byte>(new System.Buffers.ReadOnlySequence<byte>(bytes));
        var status = Tpkt.TryReadFrame(ref reader, out var frame, out var error);
        switch (status)
        {
            case System.Buffers.OperationStatus.Done when frame.Length != reader.Consumed:
                throw new OracleViolationException("frame length and bytes consumed disagree");
            case System.Buffers.OperationStatus.NeedMoreData when reader.Consumed != 0:
            case System.Buffers.OperationStatus.InvalidData when reader.Consumed != 0:
                throw new OracleViolationException("bytes consumed without a frame");
            case System.Buffers.OperationStatus.InvalidData when error is null:
                throw new OracleViolationException("invalid data without a PduError");
            default:
                break;
        }
    }
}
