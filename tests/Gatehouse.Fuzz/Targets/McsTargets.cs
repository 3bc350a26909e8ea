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
        yield return new FuzzTarget("mcs-connect-patch", Seeds, PatchOracle);
    }

    /// <summary>The in-place patch never throws, refuses with an error, and agrees with the object model when both accept.</summary>
    private static void PatchOracle(ReadOnlySpan<byte> input)
    {
        var copy = input.ToArray();
        if (!McsConnectPatch.TrySetServerSelectedProtocol(copy, SecurityProtocol.Hybrid, out var error))
        {
            if (error is null || !copy.AsSpan().SequenceEqual(input))
            {
                throw new OracleViolationException("a refused patch must carry an error and leave the bytes alone");
            }
        }
        else if (McsConnectInitial.TryParse(input, out var parsed, out _)
            && parsed.TryWithServerSelectedProtocol(SecurityProtocol.Hybrid, out var rewritten, out _))
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            rewritten.Write(buffer);
            if (!buffer.WrittenSpan.SequenceEqual(copy))
            {
                throw new OracleViolationException("the in-place patch and the object-model rewrite disagree");
            }
        }

        var response = input.ToArray();
        if (!McsConnectPatch.TrySetClientRequestedProtocols(response, SecurityProtocol.RdsAad, out var responseError) && responseError is null)
        {
            throw new OracleViolationException("a refused response patch must carry an error");
        }
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
