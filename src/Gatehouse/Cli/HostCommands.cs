using System.CommandLine;
using System.Globalization;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse host …</c>: register RDP hosts with their mapped accounts. Secrets are never printed.</summary>
internal static class HostCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("host", "Manage RDP hosts: create, list, show, update, test, trust, delete, enroll (the host's agent), status.");
        admin.AddTo(command);
        command.Subcommands.Add(CreateCommand(admin, environment));
        command.Subcommands.Add(ListCommand(admin, environment));
        command.Subcommands.Add(ShowCommand(admin, environment));
        command.Subcommands.Add(UpdateCommand(admin, environment));
        command.Subcommands.Add(HostTestCommand.Create(admin, environment));
        command.Subcommands.Add(HostTrustCommand.Create(admin, environment));
        command.Subcommands.Add(DeleteCommand(admin, environment));
        command.Subcommands.Add(HostAgentCommands.Enroll(admin, environment));
        command.Subcommands.Add(HostAgentCommands.Status(admin, environment));
        return command;
    }

    private static Command CreateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Option<string>("--name") { Description = "The host's name: what users type as the computer name (a DNS label, not an IP address).", Required = true };
        var backend = new Option<string>("--backend") { Description = "The real host's address, HOST:PORT (port 3389 when omitted; [v6]:port for IPv6).", Required = true };
        var security = new Option<string>("--backend-security") { Description = "How the gateway logs on to the host: tls (xrdp) or nla (Windows, CredSSP).", Required = true };
        security.AcceptOnlyFromAmong("tls", "nla");
        var hostGroup = new Option<string?>("--host-group") { Description = "The host group (created before with 'gatehouse hostgroup create')." };
        var aliases = new Option<string[]>("--alias") { Description = "Another name users may connect with (repeatable).", AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.ZeroOrMore };
        var adminAccount = new Option<string?>("--admin-account") { Description = "The account used for 'Virtual Machine Administrator Login' (NAME or DOMAIN\\NAME)." };
        var adminStdin = new Option<bool>("--admin-password-stdin") { Description = "Read the admin account's password from standard input (the first line)." };
        var adminFile = new Option<FileInfo?>("--admin-password-file") { Description = "Read the admin account's password from FILE (its first line)." };
        var userAccount = new Option<string?>("--user-account") { Description = "The account used for 'Virtual Machine User Login' (NAME or DOMAIN\\NAME)." };
        var userStdin = new Option<bool>("--user-password-stdin") { Description = "Read the user account's password from standard input (the first line; the second line when --admin-password-stdin is given too)." };
        var userFile = new Option<FileInfo?>("--user-password-file") { Description = "Read the user account's password from FILE (its first line)." };
        var command = new Command(
            "create",
            "Register a host. Each mapped account needs its password from standard input or a file; when both passwords come from standard input, give two lines: the admin account's password first, then the user account's. Passwords are stored encrypted and never printed. The server then connects to the host and trusts the TLS key it presents (trust on first use, printed: check it against the host's); a host that cannot be reached yet gets its key trusted at the gateway's first connection, or with 'gatehouse host test'.")
        {
            name, backend, security, hostGroup, aliases, adminAccount, adminStdin, adminFile, userAccount, userStdin, userFile,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var (backendHost, backendPort) = ParseBackend(parse.GetValue(backend)!);
            var backendSecurity = parse.GetValue(security)!.ToLowerInvariant();
            var adminName = parse.GetValue(adminAccount);
            var userName = parse.GetValue(userAccount);
            if (string.IsNullOrWhiteSpace(adminName) && string.IsNullOrWhiteSpace(userName))
            {
                throw new CliException("Give the host at least one mapped account: --admin-account NAME and/or --user-account NAME, each with its password (--…-password-stdin or --…-password-file FILE).");
            }

            // Standard input is read in a fixed order: the admin password's line first, then the user password's.
            var adminPassword = await ReadPasswordAsync(context, "admin", adminName, parse.GetValue(adminStdin), parse.GetValue(adminFile), ct).ConfigureAwait(false);
            var userPassword = await ReadPasswordAsync(context, "user", userName, parse.GetValue(userStdin), parse.GetValue(userFile), ct).ConfigureAwait(false);

            var host = await context.Client.CreateHostAsync(new CreateHostRequest(parse.GetValue(name)!, backendHost, backendPort, backendSecurity,
                parse.GetValue(hostGroup), parse.GetValue(aliases) ?? [], NullIfEmpty(adminName), adminPassword, NullIfEmpty(userName), userPassword), ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Created host {host.Name} ({host.Id}) → {backendHost}:{backendPort.ToString(CultureInfo.InvariantCulture)} over {backendSecurity}.").ConfigureAwait(false);
            await WriteKeyNoteAsync(context, host).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Give users access with: gatehouse role assignment create --role \"Virtual Machine User Login\" --assignee USER --scope /hosts/{host.Name}").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ListCommand(AdminOptions admin, CliEnvironment environment)
    {
        var output = OutputOption.Create();
        var command = new Command("list", "List the hosts (account names only, never passwords).") { output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListHostsAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["Name", "Aliases", "Backend", "Security", "Host group", "Admin account", "User account", "Agent"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.Name, string.Join(", ", r.Aliases), r.Backend, r.BackendSecurity, r.HostGroup, r.AdminAccount, r.UserAccount, r.Agent]));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command ShowCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var output = OutputOption.Create();
        var command = new Command("show", "Show a host (account names only, never passwords).") { name, output };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var row = await context.Client.GetHostAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(row).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.WriteFieldsAsync(
            [
                ("Name", row.Name),
                ("Id", row.Id.ToString()),
                ("Aliases", row.Aliases.Count == 0 ? "(none)" : string.Join(", ", row.Aliases)),
                ("Backend", row.Backend),
                ("Backend security", row.BackendSecurity),
                ("Host group", row.HostGroup),
                ("Scopes", string.Join(", ", new[] { $"/hosts/{row.Name}", row.HostGroup is null ? null : $"/hostGroups/{row.HostGroup}", "/" }.Where(s => s is not null))),
                ("Admin account", row.AdminAccount is null ? "(none)" : $"{row.AdminAccount} (password {(row.AdminPasswordSet ? "set" : "missing")})"),
                ("User account", row.UserAccount is null ? "(none)" : $"{row.UserAccount} (password {(row.UserPasswordSet ? "set" : "missing")})"),
                ("Host key", row.CertificatePin is null
                    ? $"(none trusted yet: the gateway's first connection trusts the key the host presents; 'gatehouse host test {row.Name}' records it now)"
                    : $"{row.CertificatePin} (trusted by {row.CertificatePinnedBy ?? "?"}, {CliRunner.Format(row.CertificatePinnedAt)}; 'gatehouse host trust {row.Name}' replaces it)"),
                ("Created", CliRunner.Format(row.CreatedAt)),
            ]).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command DeleteCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name." };
        var command = new Command("delete", "Delete a host, its aliases and the role assignments scoped to it (a later host with the same name starts with no access).") { name };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var deleted = await context.Client.DeleteHostAsync(parse.GetValue(name)!, ct).ConfigureAwait(false);
            var scope = $"/hosts/{deleted.Name}";
            await context.Output.WriteLineAsync($"Deleted host {deleted.Name} and {deleted.RoleAssignmentsDeleted.ToString(CultureInfo.InvariantCulture)} role assignment(s) at {scope}. Live sessions to it go on until they end or are killed ('gatehouse sessions list').").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command UpdateCommand(AdminOptions admin, CliEnvironment environment)
    {
        var name = new Argument<string>("NAME") { Description = "The host's name or alias." };
        var backend = new Option<string?>("--backend") { Description = "A new backend address, HOST:PORT (give the mapped accounts' passwords again too)." };
        var security = new Option<string?>("--backend-security") { Description = "A new backend security: tls or nla (give the mapped accounts' passwords again too)." };
        security.AcceptOnlyFromAmong("tls", "nla");
        var hostGroup = new Option<string?>("--host-group") { Description = "Move the host into this host group." };
        var noHostGroup = new Option<bool>("--no-host-group") { Description = "Take the host out of its host group (its scope is then only /hosts/NAME and /)." };
        var aliases = new Option<string[]>("--alias") { Description = "The host's aliases from now on (repeatable; replaces the old set).", Arity = ArgumentArity.ZeroOrMore };
        var noAliases = new Option<bool>("--no-aliases") { Description = "Remove every alias." };
        var adminAccount = new Option<string?>("--admin-account") { Description = "A new admin account (NAME or DOMAIN\\NAME; needs its password), or \"\" to remove it." };
        var adminStdin = new Option<bool>("--admin-password-stdin") { Description = "Read a new admin account password from standard input (the first line)." };
        var adminFile = new Option<FileInfo?>("--admin-password-file") { Description = "Read a new admin account password from FILE." };
        var userAccount = new Option<string?>("--user-account") { Description = "A new user account (NAME or DOMAIN\\NAME; needs its password), or \"\" to remove it." };
        var userStdin = new Option<bool>("--user-password-stdin") { Description = "Read a new user account password from standard input (the first line; the second with --admin-password-stdin)." };
        var userFile = new Option<FileInfo?>("--user-password-file") { Description = "Read a new user account password from FILE." };
        var command = new Command("update", "Change a host: backend, backend security, host group, aliases, mapped accounts and their passwords (what is not given stays as it is). A new --backend or --backend-security needs the password of every mapped account again in the same command (--admin-password-stdin/--admin-password-file, --user-password-stdin/--user-password-file), since the gateway sends them to the backend; the key trusted for the old backend is dropped and the new backend's is trusted on first use, as at create.")
        {
            name, backend, security, hostGroup, noHostGroup, aliases, noAliases, adminAccount, adminStdin, adminFile, userAccount, userStdin, userFile,
        };
        command.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            if (parse.GetValue(hostGroup) is not null && parse.GetValue(noHostGroup))
            {
                throw new CliException("Use either --host-group NAME or --no-host-group, not both.");
            }

            var aliasList = parse.GetValue(aliases);
            if (aliasList is { Length: > 0 } && parse.GetValue(noAliases))
            {
                throw new CliException("Use either --alias NAME (the new set) or --no-aliases, not both.");
            }

            (string Host, int Port)? target = parse.GetValue(backend) is { } text ? ParseBackend(text) : null;
            var adminPassword = await ReadNewPasswordAsync(context, "admin", parse.GetValue(adminStdin), parse.GetValue(adminFile), ct).ConfigureAwait(false);
            var userPassword = await ReadNewPasswordAsync(context, "user", parse.GetValue(userStdin), parse.GetValue(userFile), ct).ConfigureAwait(false);
            var request = new UpdateHostRequest(
                target?.Host,
                target?.Port,
                parse.GetValue(security),
                parse.GetValue(noHostGroup) ? string.Empty : parse.GetValue(hostGroup),
                parse.GetValue(noAliases) ? [] : aliasList is { Length: > 0 } ? aliasList : null,
                parse.GetValue(adminAccount),
                adminPassword,
                parse.GetValue(userAccount),
                userPassword);
            var host = await context.Client.UpdateHostAsync(parse.GetValue(name)!, request, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Updated host {host.Name}: backend {host.Backend} over {host.BackendSecurity}, host group {host.HostGroup ?? "(none)"}, aliases {(host.Aliases.Count == 0 ? "(none)" : string.Join(", ", host.Aliases))}, admin account {host.AdminAccount ?? "(none)"}, user account {host.UserAccount ?? "(none)"}.").ConfigureAwait(false);
            await WriteKeyNoteAsync(context, host).ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>After create and update: what became of the host's TLS key.</summary>
    private static async Task WriteKeyNoteAsync(CliContext context, HostView host)
    {
        if (host.CertificatePinNote is { } note)
        {
            await context.Output.WriteLineAsync($"Host key: {note}").ConfigureAwait(false);
        }
    }

    private static async Task<string?> ReadNewPasswordAsync(CliContext context, string which, bool fromStdin, FileInfo? file, CancellationToken cancellationToken)
    {
        if (fromStdin && file is not null)
        {
            throw new CliException($"Give the new {which} password from one of --{which}-password-stdin or --{which}-password-file FILE, not both.");
        }

        return fromStdin || file is not null
            ? await ReadPasswordAsync(context, which, "(new)", fromStdin, file, cancellationToken).ConfigureAwait(false)
            : null;
    }

    private static async Task<string?> ReadPasswordAsync(CliContext context, string which, string? account, bool fromStdin, FileInfo? file, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(account))
        {
            if (fromStdin || file is not null)
            {
                throw new CliException($"A {which} password was given without --{which}-account NAME; name the account it belongs to.");
            }

            return null;
        }

        if (fromStdin == (file is not null))
        {
            throw new CliException($"--{which}-account needs its password from exactly one of --{which}-password-stdin or --{which}-password-file FILE.");
        }

        if (fromStdin)
        {
            return await context.ReadSecretLineAsync($"the {which} account's password").ConfigureAwait(false);
        }

        if (!file!.Exists)
        {
            throw new CliException($"The password file {file.FullName} does not exist; check --{which}-password-file.");
        }

        using var reader = file.OpenText();
        var line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        return string.IsNullOrEmpty(line)
            ? throw new CliException($"The password file {file.FullName} is empty; put the {which} account's password on its first line.")
            : line;
    }

    private static (string Host, int Port) ParseBackend(string text)
    {
        var trimmed = text.Trim();
        string host;
        string? port = null;
        if (trimmed.StartsWith('['))
        {
            var close = trimmed.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new CliException($"--backend '{text}' is not HOST:PORT; write an IPv6 address as [2001:db8::1]:3389.");
            }

            host = trimmed[1..close];
            if (close + 1 < trimmed.Length)
            {
                port = trimmed[(close + 1)..].TrimStart(':');
            }
        }
        else
        {
            var colon = trimmed.LastIndexOf(':');
            if (colon > 0 && trimmed.IndexOf(':', StringComparison.Ordinal) == colon)
            {
                host = trimmed[..colon];
                port = trimmed[(colon + 1)..];
            }
            else
            {
                host = trimmed;
            }
        }

        if (string.IsNullOrWhiteSpace(host))
        {
            throw new CliException($"--backend '{text}' has no host; use HOST:PORT, e.g. 10.0.0.5:3389.");
        }

        var number = 3389;
        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out number) || number is < 1 or > 65535))
        {
            throw new CliException($"--backend '{text}' has no valid port; use HOST:PORT with a port from 1 to 65535.");
        }

        return (host, number);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
