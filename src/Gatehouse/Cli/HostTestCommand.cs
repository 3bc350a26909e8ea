using System.CommandLine;
using System.Globalization;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse host test NAME</c>: connects to the host's backend as the gateway does (TCP, X.224 with the mapped
/// account's cookie, TLS) and reports each step, then checks that the stored passwords of both mapped accounts can be
/// decrypted with the server's keys (they are never printed). With <c>--server</c> the server runs the test, so it is
/// the gateway's own view of the host.
/// </summary>
internal static class HostTestCommand
{
    /// <summary>Why the test stops before the host's own logon (see <see cref="Gatehouse.Admin.Operations.AdminOperations.LogonNote"/>).</summary>
    public const string LogonNote = Gatehouse.Admin.Operations.AdminOperations.LogonNote;

    public static Command Create(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var timeout = new Option<int>("--timeout")
        {
            Description = "Seconds to wait for the host (TCP, X.224 and TLS together; default 10).",
            DefaultValueFactory = _ => 10,
        };
        var command = new Command(
            "test",
            "Connect to the host's backend as the gateway does and report each step: TCP, X.224 negotiation (the protocol the host selected), TLS (version) and the host's TLS key against the trusted one (a host with none trusted yet gets the key it presents now: trust on first use); then check that the stored passwords of the mapped accounts can be decrypted (never printed). With --server the server runs the test. Exits non-zero at the first failing step, with what to fix.")
        {
            name, timeout,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var seconds = parse.GetValue(timeout);
            if (seconds is < 1 or > 300)
            {
                throw new CliException("--timeout must be between 1 and 300 seconds.");
            }

            var report = await context.Client.TestHostAsync(parse.GetValue(name)!, seconds, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Testing host {report.Host}: backend {report.Backend}, security {report.Security}.").ConfigureAwait(false);
            foreach (var step in report.Steps)
            {
                await context.Output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {step.Status,-4} {step.Step,-12} {step.Detail}")).ConfigureAwait(false);
                if (step.Fix is not null)
                {
                    await context.Output.WriteLineAsync($"      {"",-12} fix: {step.Fix}").ConfigureAwait(false);
                }
            }

            if (!report.Ok)
            {
                await context.Error.WriteLineAsync($"gatehouse host test: {report.Host} failed at {report.FailedStep}: {report.FailedFix}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }

            await context.Output.WriteLineAsync($"Host {report.Host}: the gateway can reach it and holds usable credentials.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
