using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for CredSSP TSRequest/TSCredentials and SPNEGO tokens.</summary>
public static class CredSspTargets
{
    private static readonly byte[][] Seeds =
    [
        CredSspCorpus.NegotiateRequest, CredSspCorpus.LogonFailure, CredSspCorpus.PasswordCredentials,
        CredSspCorpus.NegTokenInit, CredSspCorpus.NegTokenResp,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("credssp-tsrequest", Seeds, Oracles.ParseWriteParse<TsRequest>(TsRequest.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("credssp-tscredentials", Seeds, Oracles.ParseWriteParse<TsCredentials>(TsCredentials.TryParse, (v, o) => o.Write(v.Encode())));
        yield return new FuzzTarget("spnego-token", Seeds, Oracles.ParseWriteParse<SpnegoToken>(SpnegoToken.TryParse, (v, o) => o.Write(v.Encode())));
        yield return new FuzzTarget("credssp-frame-length", Seeds, input =>
        {
            if (!TsRequest.TryGetFrameLength(input, out var length, out var error) && error is null)
            {
                throw new OracleViolationException("refused without a PduError");
            }

            if (length < 0 || length > TsRequest.MaxSize)
            {
                throw new OracleViolationException($"frame length {length} outside 0..{TsRequest.MaxSize}");
            }
        });
    }
}
