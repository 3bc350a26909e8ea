using System.CommandLine;
using Gatehouse.Access;
using Gatehouse.Identity;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse diagnose --user UPN --host NAME [--ip ADDRESS]</c>: can this user sign in to this host, by which role
/// assignment, as which account (never the password), which policies apply, and what to fix. Built on the one access
/// call, once with a password-only sign-in (amr pwd) and once with MFA (amr pwd mfa).
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
        var command = new Command("diagnose", "Explain whether a user can sign in to a host now: the role assignment that allows it, the account the gateway logs on with, the policies, and what to fix.")
        {
            user, host, ip, output,
        };
        admin.AddTo(command);
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            // The user may be given as typed into a client: map the accepted forms (AzureAD\…, .\EntraID\…) to the UPN
            // and explain a DOMAIN\user name the way the sign-in is refused.
            var typed = parse.GetValue(user)!;
            if (!Gatehouse.Gateway.Nla.NlaUserName.TryResolve(string.Empty, typed, out var upn))
            {
                throw new CliException($"'{typed}' cannot sign in: it is not a work account name. The client is told: \"{Gatehouse.Gateway.Nla.NlaUserName.EntraJoinedMessage}\" Use the user's UPN (user@domain), or AzureAD\\user@domain.");
            }

            var probe = await AccessProbe.RunAsync(context, upn, parse.GetValue(host)!, parse.GetValue(ip), mfa: false, ct).ConfigureAwait(false);
            var password = probe.Decision;
            var mfa = probe.WithMfa;
            var mfaEnrolled = probe.User.TotpConfirmedAt is not null;
            var fix = password.Allowed ? null
                : probe.MfaWouldHelp
                    ? mfaEnrolled
                        ? "Sign in with web account sign-in, which asks for the one-time code (password-only NLA/TLS sign-ins cannot do MFA)."
                        : $"Enroll the user in an authenticator app: gatehouse user mfa enroll {probe.User.UserPrincipalName}; then sign in with web account sign-in."
                    : password.Fix;
            var decisive = password.Allowed ? password : mfa.Allowed ? mfa : password;
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(new Diagnosis(
                    probe.User.UserPrincipalName, probe.Host.Name, probe.HostGroup, probe.ClientAddress?.ToString(),
                    password.Allowed, mfa.Allowed, mfaEnrolled,
                    (decisive.Rbac ?? probe.Rbac).Role?.Name, (decisive.Rbac ?? probe.Rbac).GrantedBy?.Id, (decisive.Rbac ?? probe.Rbac).GrantedBy?.Scope.ToString(), decisive.Account?.DisplayName,
                    password.Refusal.ToString(), password.Reason, password.UserMessage, mfa.Refusal.ToString(), mfa.Reason, fix, probe.PolicyLines)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var o = context.Output;
            await o.WriteLineAsync($"Can {probe.User.UserPrincipalName} sign in to {probe.Host.Name}{(probe.HostGroup is null ? "" : $" (host group {probe.HostGroup})")}{(probe.ClientAddress is null ? "" : $" from {probe.ClientAddress}")}?").ConfigureAwait(false);
            await o.WriteLineAsync(password.Allowed
                ? $"Yes: {AccessProbe.Verdict(password)}."
                : mfa.Allowed
                    ? $"Only with MFA: with MFA the sign-in is {AccessProbe.Verdict(mfa)}; with a password only it is refused."
                    : "No.").ConfigureAwait(false);
            await o.WriteLineAsync().ConfigureAwait(false);
            await o.WriteLineAsync($"User:     {probe.User.UserPrincipalName}, {(probe.User.Enabled ? "enabled" : "disabled")}{(probe.User.MustChangePassword ? ", temporary password (must be changed first)" : "")}, MFA {(mfaEnrolled ? "enrolled" : "not enrolled")}").ConfigureAwait(false);
            var rbac = decisive.Rbac ?? probe.Rbac;
            var role = rbac.Allowed
                ? $"'{rbac.Role?.Name}' assigned at {rbac.GrantedBy?.Scope} (assignment {rbac.GrantedBy?.Id}) → {(rbac.Level == LoginLevel.Administrator ? "administrator" : "regular user")}"
                : $"none. {rbac.Explanation}";
            await o.WriteLineAsync($"Role:     {role}").ConfigureAwait(false);
            var mapped = rbac.Level == LoginLevel.Administrator ? probe.Host.AdminAccountName : rbac.Level == LoginLevel.User ? probe.Host.UserAccountName : null;
            await o.WriteLineAsync(decisive.Account is { } account
                ? $"Account:  {account.DisplayName} (the gateway logs on to the host with it; the password is never shown)"
                : mapped is { Length: > 0 }
                    ? $"Account:  {mapped} would be used once the sign-in is allowed (the password is never shown)"
                    : "Account:  none (no role allows signing in, or the host has no account mapped for the role)").ConfigureAwait(false);
            await o.WriteLineAsync("Policies:").ConfigureAwait(false);
            if (probe.PolicyLines.Count == 0)
            {
                await o.WriteLineAsync("  (no Conditional Access policies)").ConfigureAwait(false);
            }

            foreach (var line in probe.PolicyLines)
            {
                await o.WriteLineAsync($"  '{line.Policy}' ({line.State}): {line.Result}. {line.Reason}").ConfigureAwait(false);
            }

            if (probe.BrokenPolicy is not null)
            {
                await o.WriteLineAsync($"  unreadable: {probe.BrokenPolicy}").ConfigureAwait(false);
            }

            await o.WriteLineAsync($"Password only: {AccessProbe.Verdict(password)}").ConfigureAwait(false);
            await o.WriteLineAsync($"With MFA:      {AccessProbe.Verdict(mfa)}{(mfa.Allowed && !password.Allowed ? " (MFA would help)" : "")}").ConfigureAwait(false);
            if (!password.Allowed)
            {
                await o.WriteLineAsync($"The client sees: \"{password.UserMessage}\"").ConfigureAwait(false);
                await o.WriteLineAsync($"To fix:   {fix}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private sealed record Diagnosis(string User, string Host, string? HostGroup, string? ClientAddress, bool AllowedWithPassword, bool AllowedWithMfa, bool MfaEnrolled,
        string? Role, Guid? RoleAssignmentId, string? Scope, string? Account, string PasswordRefusal, string PasswordReason, string? UserMessage,
        string MfaRefusal, string MfaReason, string? Fix, IReadOnlyList<PolicyLine> Policies);
}
