using System.CommandLine;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse host trust NAME [--fingerprint SHA256:…]</c>: reads the TLS key the host's backend presents (from the
/// server with <c>--server</c>, as the gateway sees it) and trusts it from now on in place of the old one. With
/// <c>--fingerprint</c> (the key checked on the host) it is trusted only when it is that key; without, the key is shown
/// and trusted when the operator types <c>yes</c> (then exactly the key shown), and <c>--output json</c> only shows it.
/// </summary>
internal static class HostTrustCommand
{
    public static Command Create(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var fingerprint = new Option<string?>("--fingerprint")
        {
            Description = "The key checked on the host, SHA256:<base64> (the SHA-256 of its certificate's public key, as 'gatehouse host show' and the sign-in log print it): trusted without asking, only if the host presents exactly it.",
        };
        var timeout = new Option<int>("--timeout")
        {
            Description = "Seconds to wait for the host (TCP, X.224 and TLS together; default 10).",
            DefaultValueFactory = _ => 10,
        };
        var output = OutputOption.Create();
        var command = new Command(
            "trust",
            "Trust the TLS key the host presents now, in place of the one trusted before (after 'backend_certificate_changed' in the sign-in log, once the new key was checked on the host). With --fingerprint SHA256:… it is trusted only if the host presents exactly that key; without, the key is shown and trusted when you type 'yes' (--output json without --fingerprint only shows it). Needs the right to update the host.")
        {
            name, fingerprint, timeout, output,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var seconds = parse.GetValue(timeout);
            if (seconds is < 1 or > 300)
            {
                throw new CliException("--timeout must be between 1 and 300 seconds.");
            }

            var host = parse.GetValue(name)!;
            var json = OutputOption.IsJson(parse, output);
            var given = parse.GetValue(fingerprint);
            if (string.IsNullOrWhiteSpace(given))
            {
                var shown = await context.Client.TrustHostAsync(host, new HostTrustRequest(null, DryRun: true, seconds), ct).ConfigureAwait(false);
                if (json)
                {
                    await context.WriteJsonAsync(shown).ConfigureAwait(false);
                    return ExitCodes.Ok;
                }

                await context.Output.WriteLineAsync($"{shown.Host} ({shown.Backend}) presents the TLS key {shown.PresentedKey}.").ConfigureAwait(false);
                if (!shown.Changed)
                {
                    await context.Output.WriteLineAsync($"That key is already trusted for {shown.Host}; nothing changed.").ConfigureAwait(false);
                    return ExitCodes.Ok;
                }

                await context.Output.WriteLineAsync(shown.PreviousKey is null
                    ? $"No key is trusted for {shown.Host} yet."
                    : $"Trusted until now: {shown.PreviousKey}.").ConfigureAwait(false);
                await context.Output.WriteLineAsync("Check it against the key on the host itself, then type yes to trust it:").ConfigureAwait(false);
                var answer = await context.Environment.Input.ReadLineAsync(ct).ConfigureAwait(false);
                if (!string.Equals(answer?.Trim(), "yes", StringComparison.OrdinalIgnoreCase))
                {
                    throw new CliException($"Not trusted, nothing changed. To trust the key without a question: gatehouse host trust {shown.Host} --fingerprint {shown.PresentedKey} (after checking it on the host).");
                }

                given = shown.PresentedKey;
            }

            var trusted = await context.Client.TrustHostAsync(host, new HostTrustRequest(given.Trim(), DryRun: false, seconds), ct).ConfigureAwait(false);
            if (json)
            {
                await context.WriteJsonAsync(trusted).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.Output.WriteLineAsync(!trusted.Changed
                ? $"{trusted.Host} ({trusted.Backend}): {trusted.PresentedKey} was already the trusted key; it is recorded again as checked."
                : trusted.PreviousKey is null
                    ? $"{trusted.Host} ({trusted.Backend}): trusted the TLS key {trusted.PresentedKey}."
                    : $"{trusted.Host} ({trusted.Backend}): trusted the TLS key {trusted.PresentedKey} in place of {trusted.PreviousKey}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }
}
