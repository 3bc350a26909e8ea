using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the RDS AAD Auth PDUs and their NUL framing.</summary>
public static class RdsAadTargets
{
    private static readonly byte[][] Seeds =
    [
        RdsAadCorpus.ServerNonce, RdsAadCorpus.AuthRequest, RdsAadCorpus.ResultSuccess, RdsAadCorpus.ResultAccessDenied,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("rdsaad-server-nonce", Seeds, Oracles.ParseWriteParse<RdsAadServerNonce>(RdsAadServerNonce.TryParse, (v, o) =>
        {
            // Nonces that FreeRDP could not embed verbatim are refused by Write; the parser itself must not fail.
            if (RdsAadServerNonce.IsSafe(v.Nonce))
            {
                v.Write(o);
            }
            else
            {
                new RdsAadServerNonce("x").Write(o);
            }
        }));
        yield return new FuzzTarget("rdsaad-auth-request", Seeds, Oracles.ParseWriteParse<RdsAadAuthRequest>(RdsAadAuthRequest.TryParse, (v, o) =>
        {
            v.Write(o);
            _ = v.Assertion.Thumbprint;
            _ = v.Assertion.HostLabel;
        }));
        yield return new FuzzTarget("rdsaad-auth-result", Seeds, Oracles.ParseWriteParse<RdsAadAuthResult>(RdsAadAuthResult.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("rdsaad-framing", Seeds, input =>
        {
            var bytes = input.ToArray();
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
            var status = RdsAadFraming.TryReadMessage(ref reader, 64, out var json, out var error);
            switch (status)
            {
                case OperationStatus.Done when json.Length > 64 || json.PositionOf((byte)0) is not null:
                    throw new OracleViolationException("a framed message is over the cap or holds a NUL");
                case OperationStatus.NeedMoreData when reader.Consumed != 0 || bytes.Length > 64:
                    throw new OracleViolationException("NeedMoreData consumed bytes or ignored the cap");
                case OperationStatus.InvalidData when error is null || reader.Consumed != 0:
                    throw new OracleViolationException("InvalidData without an error or with bytes consumed");
            }

            if (!RdsAadFraming.TryReadMessage(input, 64, out _, out _, out var spanError) && spanError is null)
            {
                throw new OracleViolationException("span framing refused without an error");
            }
        });
    }
}
