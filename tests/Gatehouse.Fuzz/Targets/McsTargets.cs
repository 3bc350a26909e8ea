using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the MCS Connect Initial/Response PDUs with their GCC data and the rewrites.</summary>
public static class McsTargets
{
    private static readonly byte[][] Seeds = [McsCorpus.ConnectInitial, McsCorpus.ConnectResponse, McsCorpus.SpecConnectInitialFrame[7..]];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("mcs-connect-initial", Seeds, Oracles.ParseWriteParse<McsConnectInitial>(McsConnectInitial.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("mcs-connect-response", Seeds, Oracles.ParseWriteParse<McsConnectResponse>(McsConnectResponse.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("mcs-connect-rewrite", Seeds, RewriteOracle);
    }

    /// <summary>Whatever parses can be rewritten (or the rewrite is refused with an error), and the result parses with the new value.</summary>
    private static void RewriteOracle(ReadOnlySpan<byte> input)
    {
        if (McsConnectInitial.TryParse(input, out var initial, out _))
        {
            if (initial.TryWithServerSelectedProtocol(SecurityProtocol.Hybrid, out var rewritten, out var error))
            {
                var buffer = new System.Buffers.ArrayBufferWriter<byte>();
                rewritten.Write(buffer);
                if (!McsConnectInitial.TryParse(buffer.WrittenSpan, out var again, out var againError) || again.Core.ServerSelectedProtocol != SecurityProtocol.Hybrid)
                {
                    throw new OracleViolationException($"rewritten Connect Initial does not carry the new protocol: {againError}");
                }
            }
            else if (error is null)
            {
                throw new OracleViolationException("rewrite refused without an error");
            }
        }

        if (McsConnectResponse.TryParse(input, out var response, out _))
        {
            if (response.TryWithClientRequestedProtocols(SecurityProtocol.RdsAad, out var rewritten, out var error))
            {
                var buffer = new System.Buffers.ArrayBufferWriter<byte>();
                rewritten.Write(buffer);
                if (!McsConnectResponse.TryParse(buffer.WrittenSpan, out var again, out var againError) || again.Core.ClientRequestedProtocols != SecurityProtocol.RdsAad)
                {
                    throw new OracleViolationException($"rewritten Connect Response does not carry the new protocols: {againError}");
                }
            }
            else if (error is null)
            {
                throw new OracleViolationException("rewrite refused without an error");
            }
        }
    }
}
