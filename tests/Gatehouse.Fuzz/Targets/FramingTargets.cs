using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Preconnection;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the preconnection PDU and the slow-path/fast-path framing.</summary>
public static class FramingTargets
{
    private static readonly byte[][] Seeds =
    [
        FramingCorpus.PreconnectionV1, FramingCorpus.PreconnectionV2, FramingCorpus.FastPathInput, FramingCorpus.FastPathUpdate,
        FramingCorpus.FastPathShort, X224Corpus.FreeRdpAadConnectionRequest,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("preconnection-pdu", Seeds, Oracles.ParseWriteParse<PreconnectionPdu>(PreconnectionPdu.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("fastpath-header", Seeds, Oracles.ParseWriteParse<FastPathHeader>(FastPathHeader.TryParse, (v, o) =>
        {
            // Only the header is rewritten; pad to the declared length so the output is a whole PDU.
            var span = o.GetSpan(v.Length);
            var written = v.WriteTo(span);
            span[written..v.Length].Clear();
            o.Advance(v.Length);
        }));
        yield return new FuzzTarget("rdp-framing", Seeds, input =>
        {
            var bytes = input.ToArray();
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
            var status = RdpFraming.TryReadFrame(ref reader, out var frame, out _, out var error);
            if ((status == OperationStatus.InvalidData) != (error is not null) || (status != OperationStatus.Done && reader.Consumed != 0))
            {
                throw new OracleViolationException($"{status} with error {error} and {reader.Consumed} bytes consumed");
            }

            if (status == OperationStatus.Done && frame.Length > bytes.Length)
            {
                throw new OracleViolationException("frame longer than the input");
            }

            var pcb = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
            var pcbStatus = PreconnectionPdu.TryReadFrame(ref pcb, 1024, out var pdu, out var pcbError);
            if ((pcbStatus == OperationStatus.InvalidData) != (pcbError is not null) || (pcbStatus == OperationStatus.Done && pdu.Length > 1024))
            {
                throw new OracleViolationException($"preconnection framing {pcbStatus} with error {pcbError}");
            }
        });
    }
}
