using System.CommandLine;
using System.Globalization;
using Gatehouse.Admin.Operations;
using QRCoder;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse user …</c>: create, list, show, disable, enable, reset-password, mfa enroll/reset, passkey list/remove, tap create/list/remove.</summary>
internal static class UserCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("user", "Manage users: create, list, show, disable, enable, reset-password, mfa, passkey, tap.");
        admin.AddTo(command);
        command.Subcommands.Add(CreateCommand(admin, environment));
        command.Subcommands.Add(ListCommand(admin, environment));
        command.Subcommands.Add(ShowCommand(admin, environment));
        command.Subcommands.Add(EnableCommand("disable", enabled: false, admin, environment));
        command.Subcommands.Add(EnableCommand("enable", enabled: true, admin, environment));
        command.Subcommands.Add(ResetPasswordCommand(admin, environment));
        command.Subcommands.Add(MfaCommand(admin, environment));
        command.Subcommands.Add(PasskeyCommand(admin, environment));
        command.Subcommands.Add(TapCommand(admin, environment));
        return command;
    }

    private static Argument<string> UpnArgument() => new("UPN") { Description = "The user's principal name, user@domain." };

    private static Command CreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var upn = new Option<string>("--upn") { Description = "User principal name, user@domain (the domain must be one of the tenant's).", Required = true };
        var displayName = new Option<string?>("--display-name") { Description = "Display name (default: the part of the UPN before @)." };
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the password from the first line of standard input (the user keeps it)." };
        var temporary = new Option<bool>("--temporary-password") { Description = "Generate a temporary password, print it once; the user must change it at the first sign-in (the default)." };
        var command = new Command("create", "Create a user. Without --password-stdin a temporary password is generated and printed once.")
        {
            upn, displayName, passwordStdin, temporary,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            if (parse.GetValue(passwordStdin) && parse.GetValue(temporary))
            {
                throw new CliException("Use either --password-stdin or --temporary-password, not both.");
            }

            var name = parse.GetValue(upn)!;
            var password = parse.GetValue(passwordStdin) ? await context.ReadSecretLineAsync("the password").ConfigureAwait(false) : null;
            var created = await context.Client.CreateUserAsync(new CreateUserRequest(name, parse.GetValue(displayName), password, TemporaryPassword: false), ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created user {created.User.UserPrincipalName} ({created.User.Id}).").ConfigureAwait(false);
            if (created.TemporaryPassword is not null)
            {
                await context.Output.WriteLineAsync($"Temporary password: {created.TemporaryPassword}").ConfigureAwait(false);
                await context.Output.WriteLineAsync("It is shown only now; the user must change it at the first sign-in.").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the users.") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListUsersAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["UPN", "Display name", "Enabled", "Temporary password", "MFA", "Object id"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.UserPrincipalName, r.DisplayName, YesNo(r.Enabled), YesNo(r.MustChangePassword), r.Mfa, r.Id.ToString()]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ShowCommand(AdminOptions admin, CliEnvironment environment)
    {
        var upn = UpnArgument();
        var output = OutputOption.Create();
        var command = new Command("show", "Show a user, their groups and role assignments.") { upn, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var details = await context.Client.GetUserAsync(parse.GetValue(upn)!, ct).ConfigureAwait(false);
            var groups = details.Groups;
            var roles = details.RoleAssignments;
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(details).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.WriteFieldsAsync(
            [
                ("UPN", details.UserPrincipalName),
                ("Object id", details.Id.ToString()),
                ("Display name", details.DisplayName),
                ("Enabled", YesNo(details.Enabled)),
                ("Temporary password", YesNo(details.MustChangePassword)),
                ("MFA", details.Mfa),
                ("Created", CliRunner.Format(details.CreatedAt)),
                ("Password changed", CliRunner.Format(details.PasswordChangedAt)),
                ("Groups", groups.Count == 0 ? "(none)" : string.Join(", ", groups)),
                ("Role assignments", roles.Count == 0 ? "(none)" : string.Join("; ", roles)),
            ]).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command EnableCommand(string name, bool enabled, AdminOptions admin, CliEnvironment environment)
    {
        var upn = UpnArgument();
        var command = new Command(name, enabled ? "Enable a user (they can sign in again). A user who holds roles needs the right to assign them." : "Disable a user: new sign-ins are refused. A user who holds roles needs the right to assign them.") { upn };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var user = await context.Client.SetUserEnabledAsync(parse.GetValue(upn)!, enabled, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"{user.UserPrincipalName} is {(enabled ? "enabled" : "disabled")}.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ResetPasswordCommand(AdminOptions admin, CliEnvironment environment)
    {
        var upn = UpnArgument();
        var passwordStdin = new Option<bool>("--password-stdin") { Description = "Read the new password from the first line of standard input (the user keeps it)." };
        var temporary = new Option<bool>("--temporary-password") { Description = "Generate a temporary password and print it once; the user must change it at the next sign-in (the default)." };
        var command = new Command("reset-password", "Set a new password. By default a temporary password is generated and printed once. For a user who holds role assignments (directly or through groups) this needs the right to assign those roles as well.") { upn, passwordStdin, temporary };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            if (parse.GetValue(passwordStdin) && parse.GetValue(temporary))
            {
                throw new CliException("Use either --password-stdin or --temporary-password, not both.");
            }

            var fromStdin = parse.GetValue(passwordStdin);
            var password = fromStdin ? await context.ReadSecretLineAsync("the new password").ConfigureAwait(false) : null;
            var reset = await context.Client.ResetPasswordAsync(parse.GetValue(upn)!, password, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"The password of {reset.UserPrincipalName} was reset.").ConfigureAwait(false);
            if (reset.TemporaryPassword is not null)
            {
                await context.Output.WriteLineAsync($"Temporary password: {reset.TemporaryPassword}").ConfigureAwait(false);
                await context.Output.WriteLineAsync("It is shown only now; the user must change it at the next sign-in.").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command MfaCommand(AdminOptions admin, CliEnvironment environment)
    {
        var command = new Command("mfa", "Multi-factor authentication methods (one-time-code apps).");

        var upn = UpnArgument();
        var noQr = new Option<bool>("--no-qr") { Description = "Print only the otpauth:// URI, no QR code." };
        var enroll = new Command("enroll", "Enroll a one-time-code app: prints the otpauth:// URI and a QR code, then reads the app's first code from standard input to confirm (the method counts only once confirmed). Enrolling again replaces the method. For a user who holds role assignments (directly or through groups) this needs the right to assign those roles as well.")
        {
            upn, noQr,
        };
        enroll.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var enrollment = await context.Client.BeginMfaEnrollmentAsync(parse.GetValue(upn)!, ct).ConfigureAwait(false);
            var user = enrollment.UserPrincipalName;
            await context.Output.WriteLineAsync(enrollment.OtpAuthUri).ConfigureAwait(false);
            if (!parse.GetValue(noQr))
            {
                using var generator = new QRCodeGenerator();
                using var data = generator.CreateQrCode(enrollment.OtpAuthUri, QRCodeGenerator.ECCLevel.M);
                using var ascii = new AsciiQRCode(data);
                await context.WriteTextAsync(ascii.GetGraphicSmall(drawQuietZones: true, invert: false, endOfLine: "\n") + context.Output.NewLine).ConfigureAwait(false);
            }

            await context.Output.WriteLineAsync($"Secret (for manual entry): {enrollment.SecretBase32}").ConfigureAwait(false);
            await context.Output.WriteLineAsync("Scan the code with the authenticator app, then enter the 6-digit code it shows:").ConfigureAwait(false);
            await context.Output.FlushAsync(ct).ConfigureAwait(false);
            for (var attempt = 1; attempt <= 3; attempt++)
            {
                var code = (await context.Environment.Input.ReadLineAsync(ct).ConfigureAwait(false))?.Trim();
                if (code is null)
                {
                    break;
                }

                if ((await context.Client.ConfirmMfaAsync(user, code, ct).ConfigureAwait(false)).Confirmed)
                {
                    await context.Output.WriteLineAsync($"MFA is enrolled and confirmed for {user}.").ConfigureAwait(false);
                    return ExitCodes.Ok;
                }

                await context.Error.WriteLineAsync("That code does not match; check the device's clock and enter the current code:").ConfigureAwait(false);
            }

            throw new CliException($"The enrollment of {user} was not confirmed, so it cannot be used to sign in; run 'gatehouse user mfa enroll {user}' again and enter the app's current code.");
        });

        var resetUpn = UpnArgument();
        var reset = new Command("reset", "Remove the user's one-time-code method (they enroll again). For a user who holds role assignments (directly or through groups) this needs the right to assign those roles as well.") { resetUpn };
        reset.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var reset = await context.Client.ResetMfaAsync(parse.GetValue(resetUpn)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"The MFA method of {reset.UserPrincipalName} was removed.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(enroll);
        command.Subcommands.Add(reset);
        return command;
    }

    private static Command TapCommand(AdminOptions admin, CliEnvironment environment)
    {
        var command = new Command("tap", "Temporary Access Passes: a pass that lets a user open the security-info page and add a first passkey (nothing else).");

        var createUpn = UpnArgument();
        var lifetime = new Option<string>("--lifetime") { Description = "How long the pass works: 10m to 8h (for example 30m, 1h, 8h).", DefaultValueFactory = _ => "1h" };
        var multiUse = new Option<bool>("--multi-use") { Description = "The pass may be used more than once until it expires (default: once)." };
        var createOutput = OutputOption.Create();
        var create = new Command("create", "Issue a Temporary Access Pass and print it once (only its hash is stored).") { createUpn, lifetime, multiUse, createOutput };
        create.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            if (ParseLifetime(parse.GetValue(lifetime)) is not { } minutes)
            {
                await context.Error.WriteLineAsync("--lifetime must be 10m to 8h, written like 30m, 90m, 1h or 8h.").ConfigureAwait(false);
                return ExitCodes.Failed;
            }

            var made = await context.Client.CreateTemporaryAccessPassAsync(parse.GetValue(createUpn)!, minutes, parse.GetValue(multiUse), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, createOutput))
            {
                await context.WriteJsonAsync(made).ConfigureAwait(false);
            }
            else
            {
                await context.Output.WriteLineAsync($"Temporary Access Pass for {made.UserPrincipalName}: {made.Pass}").ConfigureAwait(false);
                await context.Output.WriteLineAsync($"It works until {made.ExpiresAt.ToString("u", CultureInfo.InvariantCulture)}, {(made.MultiUse ? "any number of times" : "once")}, only to add a passkey at https://<public-name>/common/mysignins/security-info. It is not shown again.").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        });

        var listUpn = UpnArgument();
        var listOutput = OutputOption.Create();
        var list = new Command("list", "List the user's Temporary Access Passes (never the pass).") { listUpn, listOutput };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListTemporaryAccessPassesAsync(parse.GetValue(listUpn)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, listOutput))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["Created", "Expires", "Use", "Used"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.CreatedAt.ToString("u", CultureInfo.InvariantCulture), r.ExpiresAt.ToString("u", CultureInfo.InvariantCulture), r.MultiUse ? "multi" : "single", r.UsedAt?.ToString("u", CultureInfo.InvariantCulture) ?? "never"]));
            }

            return ExitCodes.Ok;
        });

        var removeUpn = UpnArgument();
        var remove = new Command("remove", "Remove every Temporary Access Pass of the user.") { removeUpn };
        remove.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var removed = await context.Client.RemoveTemporaryAccessPassesAsync(parse.GetValue(removeUpn)!, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"The Temporary Access Passes of {removed.UserPrincipalName} were removed.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }

    /// <summary><c>30m</c>, <c>1h</c>, <c>8h</c> → minutes, when within 10 minutes to 8 hours; otherwise null.</summary>
    internal static int? ParseLifetime(string? text)
    {
        var t = text?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(t) || t.Length > 8)
        {
            return null;
        }

        var unit = t[^1];
        if (unit is not ('m' or 'h') || !int.TryParse(t.AsSpan(0, t.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            return null;
        }

        var minutes = unit == 'h' ? value * 60L : value;
        return minutes is >= 10 and <= 480 ? (int)minutes : null;
    }

    private static Command PasskeyCommand(AdminOptions admin, CliEnvironment environment)
    {
        var command = new Command("passkey", "Passkeys (FIDO2/WebAuthn credentials) of a user: list, remove.");

        var listUpn = UpnArgument();
        var output = OutputOption.Create();
        var list = new Command("list", "List the user's passkeys.") { listUpn, output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListPasskeysAsync(parse.GetValue(listUpn)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["Name", "Created", "Last used", "Synced", "Counter", "AAGUID", "Credential"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.Name, r.CreatedAt.ToString("u", CultureInfo.InvariantCulture), r.LastUsedAt?.ToString("u", CultureInfo.InvariantCulture) ?? "never",
                        r.BackedUp ? "yes" : r.BackupEligible ? "eligible" : "no", r.SignCount.ToString(CultureInfo.InvariantCulture), r.Aaguid.ToString(), $"{r.CredentialIdPrefix}…"]));
            }

            return ExitCodes.Ok;
        });

        var removeUpn = UpnArgument();
        var name = new Option<string>("--name") { Description = "The passkey's name, as 'gatehouse user passkey list' shows it.", Required = true };
        var remove = new Command("remove", "Remove one of the user's passkeys (it can no longer sign in). For a user who holds role assignments (directly or through groups) this needs the right to assign those roles as well.")
        {
            removeUpn, name,
        };
        remove.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var passkeyName = parse.GetValue(name)!;
            var removed = await context.Client.RemovePasskeyAsync(parse.GetValue(removeUpn)!, passkeyName, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"The passkey '{passkeyName.Trim()}' of {removed.UserPrincipalName} was removed.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(remove);
        return command;
    }

    internal static string YesNo(bool value) => value ? "yes" : "no";
}
