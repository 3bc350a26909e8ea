using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Spnego;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The CredSSP server (the gateway's NLA sign-in) through whole exchanges, without sockets: a
/// <see cref="ScriptedCredSspClient"/> runs the exchange against <see cref="CredSspServer"/> and one of its messages is
/// replaced by the fuzz input, so mutations reach every step, including those behind a valid NTLMv2 proof
/// (pubKeyAuth, the sealed TSCredentials) that a parser-level target cannot reach.
/// <para>
/// Input: byte 0 picks the message (<see cref="CredSspClientStage"/>, modulo 7); byte 1 the exchange — bit 0 raw NTLM
/// (else SPNEGO), bits 1-3 the CredSSP version (2 + n mod 5), bit 4 a directory whose NT hash is not the client's
/// password, bit 5 a server behind another TLS key (a man in the middle), bit 6 no SPNEGO mechListMIC, bit 7 the
/// <c>AzureAD\</c> domain; the rest replaces the message.
/// </para>
/// Invariants, besides "no exception and bounded allocation" (the engine's) and the machine's contract at every step
/// (<see cref="CredSspServerHarness.Expect"/>): the proof is never accepted with a wrong NT hash, nor a pubKeyAuth bound
/// to another TLS key (unless the binding itself was replaced); once the proof passed, what the server acted on is what
/// this client signed (<see cref="CheckIntegrity"/>); an authenticated exchange is one whose client verified the
/// server's pubKeyAuth and whose password was checked; the genuine message always gives the genuine outcome. The server
/// challenge and the client's session key depend on byte 1, so bytes spliced from another seed are not signed for
/// this exchange.
/// </summary>
public static class CredSspServerTargets
{
    public const string Name = "credssp-server";

    private const int StageCount = 7;
    private const byte RawNtlm = 0x01;
    private const byte WrongPassword = 0x10;
    private const byte ManInTheMiddle = 0x20;
    private const byte NoMechListMic = 0x40;
    private const byte AzureAdDomain = 0x80;

    private static readonly byte[] WrongHash = NtlmV2.NtHash("Wrong-Horse-1");

    private static readonly Lazy<byte[][]> SeedList = new(() => [.. GenuineSeeds(), .. EdgeSeeds().Select(e => e.Input)]);

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget(Name, SeedList.Value, Run);
    }

    /// <summary>The options byte for a version and form (bits 1-3 and bit 0).</summary>
    public static byte Options(int version, bool spnego = true, byte extra = 0) =>
        (byte)((((version - 2) % 5) << 1) | (spnego ? 0 : RawNtlm) | extra);

    /// <summary>
    /// A seed: the genuine message of <paramref name="stage"/> under <paramref name="options"/>, behind its two selector
    /// bytes; null when the exchange ends before that message (after a wrong proof or a man in the middle's binding).
    /// </summary>
    public static byte[]? Seed(CredSspClientStage stage, byte options)
    {
        byte[]? genuine = null;
        var client = Client(options, (s, original) =>
        {
            if (s == stage)
            {
                genuine = original;
            }

            return original;
        });
        CredSspServerHarness.Run(client, Server(options), Hash(options));
        return genuine is null ? null : [(byte)stage, options, .. genuine];
    }

    /// <summary>
    /// Seeds next to the checks a byte-level mutation rarely reaches (one byte among hundreds): a version change in the
    /// second and last TSRequest, a flipped mechListMIC, credentials of another type or user; each with the refusal it gets.
    /// </summary>
    public static IReadOnlyList<(byte[] Input, CredSspServerFailure Expected)> EdgeSeeds()
    {
        var options = Options(6);
        return
        [
            (Edge(CredSspClientStage.Third, options, b => Rebuild(b, version: 5)), CredSspServerFailure.VersionChanged),
            (Edge(CredSspClientStage.Fourth, options, b => Rebuild(b, version: 2)), CredSspServerFailure.VersionChanged),
            (Edge(CredSspClientStage.Third, options, FlipMechListMic), CredSspServerFailure.BadMechListMic),
            (Edge(CredSspClientStage.Third, Options(5, spnego: false), b => Rebuild(b, nonce: new byte[TsRequest.NonceSize])), CredSspServerFailure.BadClientNonce),
            (Edge(CredSspClientStage.Credentials, options, _ => SmartCardCredentials), CredSspServerFailure.MalformedCredentials),
            (Edge(CredSspClientStage.Credentials, options, _ => new TsCredentials(string.Empty, "bob@contoso.test", CredSspServerCorpus.Password).Encode()), CredSspServerFailure.CredentialsMismatch),
        ];
    }

    /// <summary>Runs one input (the oracle).</summary>
    public static CredSspServerRun Run(ReadOnlySpan<byte> input, out bool unchanged)
    {
        unchanged = false;
        if (input.Length < 2)
        {
            return new CredSspServerRun(CredSspServerState.WaitingForNegotiate, null, false, false, [], null);
        }

        var stage = (CredSspClientStage)(input[0] % StageCount);
        var options = input[1];
        var payload = input[2..].ToArray();
        byte[]? genuine = null;
        var client = Client(options, (s, original) =>
        {
            if (s != stage)
            {
                return original;
            }

            genuine = original;
            return payload;
        });
        var run = CredSspServerHarness.Run(client, Server(options), Hash(options));
        unchanged = genuine is not null && genuine.AsSpan().SequenceEqual(payload);
        var wrongPassword = (options & WrongPassword) != 0;
        var manInTheMiddle = (options & ManInTheMiddle) != 0;
        if (wrongPassword && run.ProofAccepted)
        {
            throw new OracleViolationException($"the server accepted an NTLMv2 proof made with another password ({stage} replaced)");
        }

        if (manInTheMiddle && run.ProofAccepted && stage != CredSspClientStage.Binding)
        {
            throw new OracleViolationException($"the server accepted a pubKeyAuth bound to another TLS key ({stage} replaced)");
        }

        if (run.State == CredSspServerState.Authenticated && !manInTheMiddle && !run.ClientBindingOk)
        {
            throw new OracleViolationException($"the server authenticated a client whose check of the server's pubKeyAuth failed ({stage} replaced)");
        }

        if (run.ProofAccepted)
        {
            CheckIntegrity(client, run, stage);
        }

        if (unchanged)
        {
            var (state, failure) = wrongPassword ? (CredSspServerState.Failed, CredSspServerFailure.BadPassword)
                : manInTheMiddle ? (CredSspServerState.Failed, CredSspServerFailure.BadPubKeyAuth)
                : (CredSspServerState.Authenticated, (CredSspServerFailure?)null);
            if (run.State != state || run.Error?.Kind != failure)
            {
                throw new OracleViolationException($"the genuine exchange ended {run.State} {run.Error}, expected {state} {failure}");
            }
        }

        return run;
    }

    private static void Run(ReadOnlySpan<byte> input) => Run(input, out _);

    /// <summary>
    /// What the server accepted is what the client signed: once the proof passed, the NTLM messages the transcript
    /// carries are those the client's MIC covers, the mechListMIC is the client's, one CredSSP version and one nonce
    /// run through the exchange, the negoTokens keep one form, and the credentials handed to the password check are the
    /// ones the client sealed. A check removed from the server lets a mutated message through and breaks one of these.
    /// </summary>
    private static void CheckIntegrity(ScriptedCredSspClient client, CredSspServerRun run, CredSspClientStage stage)
    {
        var messages = run.Transcript.Select(m => TsRequest.TryParse(m, out var r, out _) ? r : null).ToList();
        if (messages.Count < 3 || messages[0] is not { NegoTokens.Count: 1 } first || messages[1] is not { NegoTokens.Count: 1 } challenge
            || messages[2] is not { NegoTokens.Count: 1 } third)
        {
            throw new OracleViolationException($"the proof was accepted after a transcript without one negoToken per message ({stage} replaced)");
        }

        var spnego = SpnegoToken.LooksLikeSpnego(first.NegoTokens[0]);
        if (SpnegoToken.LooksLikeSpnego(third.NegoTokens[0]) != spnego)
        {
            throw new OracleViolationException($"the proof was accepted with raw NTLM and SPNEGO mixed ({stage} replaced)");
        }

        byte[]? mechListMic = null;
        byte[] Ntlm(byte[] token, bool authenticate)
        {
            if (!spnego)
            {
                return token;
            }

            if (!SpnegoToken.TryParse(token, out var parsed, out _))
            {
                throw new OracleViolationException($"the proof was accepted with an unparsable SPNEGO token ({stage} replaced)");
            }

            if (authenticate)
            {
                mechListMic = parsed.HasMechListMic ? parsed.MechListMic.ToArray() : null;
            }

            return parsed.MechToken.ToArray();
        }

        if (!Ntlm(first.NegoTokens[0], false).AsSpan().SequenceEqual(client.SignedNegotiate)
            || !Ntlm(challenge.NegoTokens[0], false).AsSpan().SequenceEqual(client.SignedChallenge)
            || !Ntlm(third.NegoTokens[0], true).AsSpan().SequenceEqual(client.SignedAuthenticate))
        {
            throw new OracleViolationException($"the proof was accepted though an NTLM message differs from the one the client's MIC covers ({stage} replaced)");
        }

        if (mechListMic is not null && (client.SignedMechListMic is null || !mechListMic.AsSpan().SequenceEqual(client.SignedMechListMic)))
        {
            throw new OracleViolationException($"the proof was accepted with a mechListMIC the client did not compute ({stage} replaced)");
        }

        // The client messages the server acted on: the first two, and the last when it ended authenticated.
        var clientMessages = messages.Where((_, i) => i % 2 == 0).Take(run.State == CredSspServerState.Authenticated ? 3 : 2);
        if (clientMessages.Any(m => m is null || m.Version != first.Version))
        {
            throw new OracleViolationException($"the server went on after the client changed its CredSSP version ({stage} replaced)");
        }

        if (first.Version >= 5 && (!third.ClientNonce.SequenceEqual(client.Nonce) || (!first.ClientNonce.IsEmpty && !first.ClientNonce.SequenceEqual(client.Nonce))))
        {
            throw new OracleViolationException($"the proof was accepted with a clientNonce the client did not bind ({stage} replaced)");
        }

        if (run.State == CredSspServerState.Authenticated
            && (client.SealedCredentials is null || !TsCredentials.TryParse(client.SealedCredentials, out var sealedCredentials, out _)
                || run.Credentials is not { } checkedCredentials || (sealedCredentials.DomainName, sealedCredentials.UserName, sealedCredentials.Password) != (checkedCredentials.DomainName, checkedCredentials.UserName, checkedCredentials.Password)))
        {
            throw new OracleViolationException($"the server authenticated with credentials the client did not seal ({stage} replaced)");
        }
    }

    private static ScriptedCredSspClient Client(byte options, Func<CredSspClientStage, byte[], byte[]> tamper) => new()
    {
        Version = 2 + (((options >> 1) & 7) % 5),
        Spnego = (options & RawNtlm) == 0,
        SendMechListMic = (options & NoMechListMic) == 0,
        Domain = (options & AzureAdDomain) != 0 ? "AzureAD" : string.Empty,
        ExportedSessionKey = Enumerable.Repeat((byte)(0x55 ^ options), 16).ToArray(),
        Tamper = tamper,
    };

    /// <summary>
    /// The server challenge (and the client's session key) depend on the options, so a message spliced from another
    /// seed is not validly signed for this exchange: what the server accepts must come from this client.
    /// </summary>
    private static CredSspServer Server(byte options) =>
        CredSspServerCorpus.Server((options & ManInTheMiddle) != 0 ? CredSspServerCorpus.OtherSubjectPublicKey : null, options);

    private static byte[] Hash(byte options) => (options & WrongPassword) != 0 ? WrongHash : CredSspServerCorpus.NtHash;

    /// <summary>TSCredentials with credType 2 (smart card) and an empty TSSmartCardCreds.</summary>
    private static byte[] SmartCardCredentials => Convert.FromHexString("300ba003020102a10404023000");

    private static byte[] Edge(CredSspClientStage stage, byte options, Func<byte[], byte[]> change)
    {
        var genuine = Seed(stage, options) ?? throw new InvalidOperationException($"the exchange never reached {stage}");
        return [.. genuine[..2], .. change(genuine[2..])];
    }

    private static byte[] Rebuild(byte[] tsRequest, int? version = null, byte[]? nonce = null, IEnumerable<byte[]>? tokens = null)
    {
        if (!TsRequest.TryParse(tsRequest, out var r, out var error))
        {
            throw new InvalidOperationException($"a genuine message does not parse: {error}");
        }

        return new TsRequest(
            version ?? r.Version, tokens ?? r.NegoTokens, r.HasAuthInfo ? r.AuthInfo.ToArray() : null, r.HasPubKeyAuth ? r.PubKeyAuth.ToArray() : null,
            r.ErrorCode, nonce ?? (r.ClientNonce.IsEmpty ? null : r.ClientNonce.ToArray())).Encode();
    }

    private static byte[] FlipMechListMic(byte[] tsRequest)
    {
        if (!TsRequest.TryParse(tsRequest, out var r, out _) || !SpnegoToken.TryParse(r.NegoTokens[0], out var resp, out _) || !resp.HasMechListMic)
        {
            throw new InvalidOperationException("the genuine AUTHENTICATE has no mechListMIC");
        }

        var mic = resp.MechListMic.ToArray();
        mic[^1] ^= 1;
        return Rebuild(tsRequest, tokens: [SpnegoToken.Response(resp.State, resp.SupportedMech, resp.MechToken.ToArray(), mic).Encode()]);
    }

    private static byte[][] GenuineSeeds()
    {
        byte[] optionSets =
        [
            Options(6), Options(6, spnego: false), Options(3), Options(5, spnego: false),
            Options(6, extra: WrongPassword), Options(6, extra: ManInTheMiddle), Options(6, extra: NoMechListMic), Options(2, spnego: false, extra: AzureAdDomain),
        ];
        return [.. optionSets.SelectMany(options => Enumerable.Range(0, StageCount).Select(stage => Seed((CredSspClientStage)stage, options))).OfType<byte[]>()];
    }
}
