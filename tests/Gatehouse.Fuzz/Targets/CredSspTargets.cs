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

    private static readonly Lazy<byte[]> ChallengeSeed = new(CredSspClientCorpus.ChallengeAnswer);

    public static IEnumerable<FuzzTarget> All()
    {
        // The CredSSP client (the gateway logging on to an NLA host) on hostile server messages: the same bytes are the
        // answer to NEGOTIATE for one client and the answer to AUTHENTICATE for another.
        yield return new FuzzTarget("credssp-client", [ChallengeSeed.Value, CredSspClientCorpus.BindingAnswer(), CredSspCorpus.LogonFailure], input =>
        {
            var first = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
            first.Start();
            CheckClientStep(first, first.Step(input), CredSspClientState.WaitingForServerBinding);
            var second = new CredSspClient(CredSspClientCorpus.Settings(), CredSspClientCorpus.Random());
            second.Start();
            if (second.Step(ChallengeSeed.Value).Failed)
            {
                throw new OracleViolationException("the seed CHALLENGE was refused");
            }

            CheckClientStep(second, second.Step(input), CredSspClientState.Completed);
        });

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

    private static void CheckClientStep(CredSspClient client, CredSspClientStep step, CredSspClientState next)
    {
        if (step.Failed)
        {
            if (client.State != CredSspClientState.Failed || step.Output is not null)
            {
                throw new OracleViolationException($"a failed step left state {client.State} and output {step.Output?.Length}");
            }

            return;
        }

        if (client.State != next || step.Output is null || !TsRequest.TryParse(step.Output, out _, out var error))
        {
            throw new OracleViolationException($"an accepted step left state {client.State} (expected {next}) or wrote an unparsable TSRequest");
        }

        if (error is not null)
        {
            throw new OracleViolationException("accepted with an error");
        }
    }
}
