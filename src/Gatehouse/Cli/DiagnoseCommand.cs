using System.CommandLine;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse diagnose --user UPN --host NAME [--ip ADDRESS]</c>: can this user sign in to this host, by which role
/// assignment, as which account (never the password), which policies apply, and what to fix. Built on the one access
/// call, once with a password-only sign-in (amr pwd) and once with MFA (amr pwd otp mfa); a policy requiring an
/// authentication strength is explained with the methods each sign-in path can give.
/// </summary>
internal static class DiagnoseCommand
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var user = new Option<string>("--user") { Description = "The user's UPN, or the name as typed into the client (AzureAD\\user@domain, .\\EntraID\\user@domain; DOMAIN\\user is explained as refused).", Required = true };
        var host = new Option<string>("--host") { Description = "The host's name (or alias).", Required = true };
        var ip = new Option<string?>("--ip") { Description = "The client's IP address (for location conditions)." };
        var output = OutputOption.Create();
        var command = new Command("diagnose", "Explain whether a user can sign in to a host now: the role assignment that allows it, the account the gateway logs on with, the policies (with the sign-in paths that meet an authentication strength), and what to fix.")
        {
            user, host, ip, output,
        };
        admin.AddTo(command);
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var d = await context.Client.DiagnoseAsync(new DiagnoseRequest(parse.GetValue(user), parse.GetValue(host), parse.GetValue(ip)), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(d).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var o = context.Output;
            await o.WriteLineAsync($"Can {d.User} sign in to {d.Host}{(d.HostGroup is null ? "" : $" (host group {d.HostGroup})")}{(d.ClientAddress is null ? "" : $" from {d.ClientAddress}")}?").ConfigureAwait(false);
            await o.WriteLineAsync(d.AllowedWithPassword
                ? $"Yes: {d.PasswordVerdict}."
                : d.AllowedWithMfa
                    ? $"Only with MFA: with MFA the sign-in is {d.MfaVerdict}; with a password only it is refused."
                    : "No.").ConfigureAwait(false);
            await o.WriteLineAsync().ConfigureAwait(false);
            await o.WriteLineAsync($"User:     {d.User}, {(d.UserEnabled ? "enabled" : "disabled")}{(d.MustChangePassword ? ", temporary password (must be changed first)" : "")}, MFA {(d.MfaEnrolled ? "enrolled" : "not enrolled")}").ConfigureAwait(false);
            await o.WriteLineAsync($"Role:     {d.RoleSummary}").ConfigureAwait(false);
            await o.WriteLineAsync($"Account:  {d.AccountSummary}").ConfigureAwait(false);
            await o.WriteLineAsync("Policies:").ConfigureAwait(false);
            if (d.Policies.Count == 0)
            {
                await o.WriteLineAsync("  (no Conditional Access policies)").ConfigureAwait(false);
            }

            foreach (var line in d.Policies)
            {
                await o.WriteLineAsync($"  '{line.Policy}' ({line.State}): {line.Result}. {line.Reason}").ConfigureAwait(false);
            }

            if (d.BrokenPolicy is not null)
            {
                await o.WriteLineAsync($"  unreadable: {d.BrokenPolicy}").ConfigureAwait(false);
            }

            await StrengthReport.WriteAsync(o, d.Strengths).ConfigureAwait(false);
            await o.WriteLineAsync($"Password only: {d.PasswordVerdict}").ConfigureAwait(false);
            await o.WriteLineAsync($"With MFA:      {d.MfaVerdict}{(d.AllowedWithMfa && !d.AllowedWithPassword ? " (MFA would help)" : "")}").ConfigureAwait(false);
            if (!d.AllowedWithPassword)
            {
                await o.WriteLineAsync($"The client sees: \"{d.UserMessage}\"").ConfigureAwait(false);
                await o.WriteLineAsync($"To fix:   {d.Fix}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
