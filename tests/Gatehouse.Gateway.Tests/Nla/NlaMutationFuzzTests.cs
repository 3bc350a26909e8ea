using Gatehouse.Fuzz;
using Gatehouse.Gateway.Tests.WebAccount;
using Xunit.Abstractions;

namespace Gatehouse.Gateway.Tests.Nla;

/// <summary>
/// The NLA message loop under mutation: a well-behaved CredSSP client runs the whole exchange against the real
/// connection handler, and one of its messages (chosen per test) is mutated with the fuzzer's mutators before it is
/// sent — so mutations reach every step, including those behind a valid NTLM proof (pubKeyAuth, the sealed
/// credentials), which a parser-level fuzz target cannot. The invariants, on every connection:
/// <list type="bullet">
/// <item>the gateway answers or closes, and logs exactly one sign-in entry (none only when the client, having sent a
/// message that is not one whole frame, stopped sending before it named a user: no decision, nobody to name);</item>
/// <item>a session is opened only after the directory checked the right password for the NTLM-proven user;</item>
/// <item>a refusal is logged with a reason and never leaves a session behind;</item>
/// <item>after all of it, a well-behaved client still signs in (no state leaked between connections).</item>
/// </list>
/// Deterministic per stage (fixed seeds), and never on the clock: a client whose mutated message is not one whole frame
/// stops sending, so the gateway ends on what it has (its CredSSP deadline has its own test);
/// <c>GATEHOUSE_NLA_FUZZ_ITERATIONS</c> raises the count for a longer run.
/// </summary>
public sealed class NlaMutationFuzzTests(ITestOutputHelper output)
{
    private static readonly int Iterations = int.TryParse(Environment.GetEnvironmentVariable("GATEHOUSE_NLA_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 40;

    [Theory]
    [InlineData("negotiate", 101)]
    [InlineData("authenticate", 202)]
    [InlineData("third", 303)]
    [InlineData("binding", 404)]
    [InlineData("credentials", 505)]
    public async Task MutatedMessage_IsRefusedAndLogged_AndNeverOpensASessionWithoutTheRightPassword(string stage, int seed)
    {
        await using var host = WebAccountSignInTests.TlsBackend.StartForMany();
        var directory = new FakeNlaDirectory { Grant = NlaSignInTests.Grant(host.Port) };
        await using var gateway = await NlaSignInTests.StartAsync(directory);
        var mutator = new Mutator(new Random(seed), maxLength: 16 * 1024);
        var random = new Random(seed);
        var refused = 0;
        var opened = 0;
        var reasons = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < Iterations; i++)
        {
            var changed = false;
            var sent = Array.Empty<byte>();
            byte[] Tamper(byte[] original)
            {
                var mutated = mutator.Mutate(original, []);
                changed = !mutated.AsSpan().SequenceEqual(original);
                sent = mutated;
                return mutated;
            }

            var options = new CredSspClientOptions
            {
                Version = 2 + random.Next(5),
                Spnego = random.Next(2) == 0,
                TamperNegotiate = stage == "negotiate" ? Tamper : null,
                TamperAuthenticate = stage == "authenticate" ? Tamper : null,
                TamperThird = stage == "third" ? Tamper : null,
                TamperBinding = stage == "binding" ? Tamper : null,
                TamperCredentials = stage == "credentials" ? Tamper : null,
            };
            var checksBefore = directory.PasswordChecks.Count;
            var entriesBefore = gateway.SignInLog.Entries.Count;
            CredSspOutcome outcome;
            System.Net.Security.SslStream tls;
            System.Net.Sockets.TcpClient tcp;
            try
            {
                (outcome, tls, tcp) = await CredSspTestClient.RunAsync(gateway.Port, options with { Decided = gateway.SignInLog.Next(), HalfCloseAfterPartialFrame = true }).WaitAsync(Until.Backstop);
            }
            catch (Exception e) when (e is TimeoutException or IOException)
            {
                var entries = gateway.SignInLog.Entries;
                throw new Xunit.Sdk.XunitException($"{stage} iteration {i} (seed {seed}, version {options.Version}, spnego {options.Spnego}): the client got no answer ({e.GetType().Name}); {entries.Count} log entries, last: {(entries.Count > 0 ? entries[^1].Reason : "none")}; sent {Convert.ToHexString(sent)}");
            }

            await tls.DisposeAsync();
            tcp.Dispose();

            // The connection is done at the gateway (its entry, if any, is written before that).
            await Until.TrueAsync(() => gateway.Admission.Pending == 0 && gateway.Sessions.Count == 0, $"iteration {i}: the connection ends");
            {
                var entries = gateway.SignInLog.Entries;
                var added = entries.Count - entriesBefore;
                var leftUnnamed = outcome.Stage.StartsWith("half-closed", StringComparison.Ordinal);
                Assert.True(added == 1 || (added == 0 && leftUnnamed), $"iteration {i}: {added} sign-in log entries for one connection (outcome {outcome})");
                if (added == 0)
                {
                    reasons["(left before naming a user)"] = reasons.GetValueOrDefault("(left before naming a user)") + 1;
                    refused++;
                    continue;
                }

                var entry = entries[^1];
                Assert.False(string.IsNullOrWhiteSpace(entry.Reason), $"iteration {i}: a log entry without a reason");
                reasons[entry.Reason.Split(':')[0]] = reasons.GetValueOrDefault(entry.Reason.Split(':')[0]) + 1;
                if (entry.Succeeded)
                {
                    // Only possible when the mutation left the proof and the credentials intact.
                    var checks = directory.PasswordChecks;
                    Assert.True(checks.Count == checksBefore + 1 && checks[^1] == "alice@contoso.test Correct-Horse-1", $"iteration {i}: a session opened without the right password being checked ({string.Join(", ", checks.Skip(checksBefore))}); changed={changed}");
                    opened++;
                    output.WriteLine($"iteration {i}: opened with a mutated message {Convert.ToHexString(sent)}");
                }
                else
                {
                    Assert.True(changed, $"iteration {i}: an unchanged exchange was refused: {entry.Reason}");
                    refused++;
                }
            }
        }

        // The gateway is still whole: a well-behaved client signs in.
        var (good, goodTls, goodTcp) = await CredSspTestClient.RunAsync(gateway.Port, new CredSspClientOptions());
        using (goodTcp)
        await using (goodTls)
        {
            Assert.Null(good.ErrorCode);
            Assert.True(good.ServerBindingOk);
        }

        output.WriteLine($"{stage}: {Iterations} mutated exchanges, {refused} refused, {opened} opened (mutation outside the protected bytes); reasons: {string.Join(", ", reasons.OrderByDescending(r => r.Value).Select(r => $"{r.Key} {r.Value}"))}");
        Assert.True(refused > 0, "the mutations never changed anything the gateway checks");
    }
}
