using Gatehouse.Fuzz;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Fuzz.Targets;
using Gatehouse.Protocol.CredSsp;

namespace Gatehouse.Protocol.Tests.Fuzzing;

/// <summary>The credssp-server fuzz target reaches the whole exchange: its mutations are refused at every check, and some pass.</summary>
public sealed class CredSspServerTargetTests
{
    [Fact]
    public void Mutations_ReachEveryCheckOfTheServer_AndSomeStillAuthenticate()
    {
        // Arrange
        var target = FuzzTargets.Find(CredSspServerTargets.Name)!;
        var mutator = new Mutator(new Random(1234));
        var random = new Random(1234);
        var refusals = new Dictionary<CredSspServerFailure, int>();
        var mutatedButAuthenticated = 0;

        // Act
        for (var i = 0; i < 8000; i++)
        {
            var input = mutator.Mutate(target.Seeds[random.Next(target.Seeds.Count)], target.Seeds);
            var run = CredSspServerTargets.Run(input, out var unchanged);
            if (run.Error is { } error)
            {
                refusals[error.Kind] = refusals.GetValueOrDefault(error.Kind) + 1;
            }
            else if (run.State == CredSspServerState.Authenticated && !unchanged)
            {
                mutatedButAuthenticated++;
            }
        }

        // Assert: the checks behind a valid NTLMv2 proof are reached too, not only the parsers. (VersionChanged and
        // BadMechListMic need one given byte among hundreds: about 1 mutation in 4,000 reaches them; the step tests pin them.)
        CredSspServerFailure[] expected =
        [
            CredSspServerFailure.MalformedTsRequest, CredSspServerFailure.MalformedNegotiate, CredSspServerFailure.NtlmFlags,
            CredSspServerFailure.MalformedAuthenticate, CredSspServerFailure.BadClientNonce, CredSspServerFailure.NotAWorkAccount, CredSspServerFailure.UnknownUser,
            CredSspServerFailure.BadPassword, CredSspServerFailure.BadMic, CredSspServerFailure.BadPubKeyAuth,
            CredSspServerFailure.MalformedCredentials, CredSspServerFailure.BadAuthInfo, CredSspServerFailure.CredentialsMismatch,
        ];
        var summary = string.Join(", ", refusals.OrderBy(r => r.Key).Select(r => $"{r.Key} {r.Value}"));
        Assert.All(expected, kind => Assert.True(refusals.ContainsKey(kind), $"no mutation reached {kind}: {summary}"));
        Assert.True(mutatedButAuthenticated > 0, $"no mutated exchange authenticated: {summary}");
    }

    [Fact]
    public void Seeds_AreGenuineExchanges_WithTheirExpectedEnding()
    {
        var target = FuzzTargets.Find(CredSspServerTargets.Name)!;
        var edges = CredSspServerTargets.EdgeSeeds();
        var genuine = target.Seeds.Where(seed => !edges.Any(e => e.Input.AsSpan().SequenceEqual(seed))).ToList();
        Assert.Equal(target.Seeds.Count - edges.Count, genuine.Count);
        var endings = genuine.Select(seed =>
        {
            var run = CredSspServerTargets.Run(seed, out var unchanged);
            Assert.True(unchanged, $"seed {Hex.Format(seed.AsSpan(0, 2))} is not the genuine message");
            return run.Error?.Kind.ToString() ?? run.State.ToString();
        }).ToList();

        Assert.Contains(nameof(CredSspServerState.Authenticated), endings);
        Assert.Contains(nameof(CredSspServerFailure.BadPassword), endings);
        Assert.Contains(nameof(CredSspServerFailure.BadPubKeyAuth), endings);
        Assert.Equal(Enum.GetValues<CredSspClientStage>().Length, target.Seeds.Select(s => s[0]).Distinct().Count());
    }

    [Fact]
    public void EdgeSeeds_ReachTheirRareChecks()
    {
        var edges = CredSspServerTargets.EdgeSeeds();

        Assert.All(edges, edge =>
        {
            var run = CredSspServerTargets.Run(edge.Input, out var unchanged);
            Assert.False(unchanged);
            Assert.True(run.Error?.Kind == edge.Expected, $"expected {edge.Expected}, got {run.Error?.ToString() ?? run.State.ToString()}");
        });
        Assert.All(edges, edge => Assert.Contains(FuzzTargets.Find(CredSspServerTargets.Name)!.Seeds, seed => seed.AsSpan().SequenceEqual(edge.Input)));
    }

    [Fact]
    public void ShortInput_RunsNothing()
    {
        var run = CredSspServerTargets.Run([3], out var unchanged);
        Assert.False(unchanged);
        Assert.Empty(run.Transcript);
    }
}
