using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Ntlm;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the NTLM messages and AV pair lists.</summary>
public static class NtlmTargets
{
    private static readonly byte[][] Seeds = [NtlmCorpus.Negotiate, NtlmCorpus.Challenge, NtlmCorpus.Authenticate, NtlmCorpus.TargetInfo];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("ntlm-negotiate", Seeds, Oracles.ParseWriteParse<NtlmNegotiateMessage>(NtlmNegotiateMessage.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("ntlm-challenge", Seeds, Oracles.ParseWriteParse<NtlmChallengeMessage>(NtlmChallengeMessage.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("ntlm-authenticate", Seeds, Oracles.ParseWriteParse<NtlmAuthenticateMessage>(NtlmAuthenticateMessage.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("ntlm-avpairs", Seeds, Oracles.ParseWriteParse<AvPairs>(AvPairs.TryParse, (v, o) =>
        {
            var span = o.GetSpan(v.Size);
            v.WriteTo(span);
            o.Advance(v.Size);
        }));
        yield return new FuzzTarget("ntlm-verify", Seeds, VerifyOracle);
    }

    /// <summary>The server-side checks on arbitrary AUTHENTICATE bytes: refuse or verify, never throw.</summary>
    private static void VerifyOracle(ReadOnlySpan<byte> input)
    {
        if (!NtlmAuthenticateMessage.TryParse(input, out var message, out var error))
        {
            if (error is null)
            {
                throw new OracleViolationException("refused without a PduError");
            }

            return;
        }

        var hash = NtlmV2.NtHash("Password");
        var key = NtlmV2.VerifyResponse(hash, message.UserName, message.DomainName, Hex.Bytes("0123456789abcdef"), message.NtChallengeResponse);
        if (key is not null && message.HasMic)
        {
            var exported = NtlmV2.ExportedSessionKey(key, message.EncryptedRandomSessionKey, message.Flags);
            _ = NtlmV2.VerifyMic(exported, NtlmCorpus.Negotiate, NtlmCorpus.Challenge, message.Raw);
        }

        _ = NtlmV2.ClientTimestamp(message.NtChallengeResponse);
        _ = NtlmV2.ClientTargetInfo(message.NtChallengeResponse).Length;
    }
}
