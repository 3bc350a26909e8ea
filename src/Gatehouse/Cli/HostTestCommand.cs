using System.CommandLine;
using System.Globalization;
using System.Security.Authentication;
using System.Security.Cryptography;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Identity;
using Gatehouse.Protocol.X224;
using Gatehouse.Storage;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse host test NAME</c>: connects to the host's backend as the gateway does (TCP, X.224 with the mapped
/// account's cookie, TLS) and reports each step, then checks that the stored passwords of both mapped accounts can be
/// decrypted with this server's keys (they are never printed); for an NLA host it then performs the CredSSP logon with
/// each stored account and reports each one, without opening a session.
/// </summary>
internal static class HostTestCommand
{
    /// <summary>
    /// Why the test stops before the host's own logon: xrdp checks the password only after the whole connection
    /// sequence (MCS, capability exchange, finalization), inside its login screen, and shows a rejected password as text
    /// drawn on that screen, not as an RDP error a client could read; a full logon would also start a real session.
    /// </summary>
    public const string LogonNote =
        "Whether the host accepts these passwords is checked at the first sign-in, not here: xrdp verifies them only after the whole RDP connection sequence, in its own login screen, and reports a rejected password as text drawn on that screen rather than as a protocol error; a failed logon shows in 'gatehouse signins list' and on the host (xrdp-sesman log).";

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
            "Connect to the host's backend as the gateway does and report each step: TCP, X.224 negotiation (the protocol the host selected), TLS (version and the host certificate's SHA-256); then check that the stored passwords of the mapped accounts can be decrypted (never printed); for an NLA host, log on with CredSSP as each mapped account (no session is opened) and report each. Exits non-zero when a step fails, with what to fix.")
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

            var host = await Lookups.HostAsync(context, parse.GetValue(name)!, ct).ConfigureAwait(false);
            var report = new Report(context.Output);
            var ok = await RunAsync(context, host, TimeSpan.FromSeconds(seconds), report, ct).ConfigureAwait(false);
            if (!ok)
            {
                await context.Error.WriteLineAsync($"gatehouse host test: {host.Name} failed at {report.FailedStep}: {report.FailedFix}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }

            await context.Output.WriteLineAsync($"Host {host.Name}: the gateway can reach it and holds usable credentials.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static async Task<bool> RunAsync(CliContext context, Host host, TimeSpan timeout, Report report, CancellationToken cancellationToken)
    {
        var backend = host.BackendHost.Contains(':', StringComparison.Ordinal) ? $"[{host.BackendHost}]:{host.BackendPort}" : $"{host.BackendHost}:{host.BackendPort}";
        var security = host.BackendSecurity == BackendSecurity.Nla ? BackendTarget.NlaProtocols : SecurityProtocol.Ssl;
        await context.Output.WriteLineAsync($"Testing host {host.Name}: backend {backend}, security {host.BackendSecurity.ToString().ToLowerInvariant()}.").ConfigureAwait(false);

        // The gateway sends the mapped account's name as the X.224 cookie; use the account a regular sign-in gets.
        var cookieAccount = host.UserAccountName ?? host.AdminAccountName;
        var cookie = cookieAccount is null ? string.Empty : AccessService.SplitAccount(cookieAccount).Name;
        var result = await BackendConnector.ConnectAsync(new BackendTarget(host.BackendHost, host.BackendPort, security, cookie), timeout, cancellationToken).ConfigureAwait(false);
        switch (result.Failure)
        {
            case BackendFailure.Unreachable:
                return await report.FailAsync("TCP", result.Reason,
                    $"check that the host is running and that this machine reaches {backend} (address and port in 'gatehouse host show', firewalls; xrdp listens on 3389 by default).").ConfigureAwait(false);
            case BackendFailure.Protocol:
                await report.OkAsync("TCP", $"connected to {backend}").ConfigureAwait(false);
                return await report.FailAsync("X.224", result.Reason,
                    $"{backend} does not answer like an RDP server; check the backend address and port ('gatehouse host show {host.Name}').").ConfigureAwait(false);
            case BackendFailure.Negotiation:
                await report.OkAsync("TCP", $"connected to {backend}").ConfigureAwait(false);
                return await report.FailAsync("X.224", result.Reason, security == SecurityProtocol.Ssl
                    ? "let the host accept TLS (xrdp.ini: security_layer=tls or negotiate, with a certificate and key_file), or register the host with the security it offers."
                    : "let the host accept NLA (CredSSP), or register it with --backend-security tls if it is an xrdp host.").ConfigureAwait(false);
            case BackendFailure.NlaNotOffered:
                await report.OkAsync("TCP", $"connected to {backend}").ConfigureAwait(false);
                return await report.FailAsync("X.224", result.Reason,
                    $"the host does not speak NLA: register it with --backend-security tls ('gatehouse host delete {host.Name}', then 'gatehouse host create … --backend-security tls'), or turn NLA on at the host.").ConfigureAwait(false);
            case BackendFailure.Tls:
                await report.OkAsync("TCP", $"connected to {backend}").ConfigureAwait(false);
                await report.OkAsync("X.224", $"the host selected {Describe(security)}").ConfigureAwait(false);
                return await report.FailAsync("TLS", result.Reason,
                    "check the host's TLS certificate and key (xrdp.ini certificate= and key_file=, readable by xrdp) and that it allows TLS 1.2 or newer.").ConfigureAwait(false);
            default:
                break;
        }

        await using (var connection = result.Connection!)
        {
            await report.OkAsync("TCP", $"connected to {backend}").ConfigureAwait(false);
            await report.OkAsync("X.224", $"the host selected {Describe(connection.Selected)}").ConfigureAwait(false);
            await report.OkAsync("TLS", $"{TlsVersion(connection.Stream.SslProtocol)}, host certificate SHA-256 {connection.CertificateSha256}").ConfigureAwait(false);
        }

        var directory = context.Get<DirectoryService>();
        var accounts = new List<(string Role, string Account, string Password)>();
        foreach (var (role, account, secret) in new[] { ("admin", host.AdminAccountName, host.AdminSecretProtected), ("user", host.UserAccountName, host.UserSecretProtected) })
        {
            if (account is null)
            {
                await report.NoteAsync("credentials", $"no {role} account mapped ({(role == "admin" ? "Virtual Machine Administrator Login" : "Virtual Machine User Login")} sign-ins are refused)").ConfigureAwait(false);
                continue;
            }

            if (secret is null)
            {
                return await report.FailAsync("credentials", $"the {role} account {account} has no stored password",
                    $"register the host again with --{role}-account {account} and its password ('gatehouse host delete {host.Name}', then 'gatehouse host create').").ConfigureAwait(false);
            }

            string password;
            try
            {
                password = directory.UnprotectHostSecret(secret);
            }
            catch (Exception e) when (e is CryptographicException or FormatException)
            {
                return await report.FailAsync("credentials", $"the {role} account {account}'s stored password cannot be decrypted with this server's Data Protection keys",
                    $"run the command with the server's own --data directory (its keys folder) or --store; if the keys were lost, register the host again with the password ('gatehouse host delete {host.Name}', then 'gatehouse host create').").ConfigureAwait(false);
            }

            if (password.Length == 0)
            {
                return await report.FailAsync("credentials", $"the {role} account {account}'s stored password is empty",
                    $"register the host again with the {role} account's password.").ConfigureAwait(false);
            }

            await report.OkAsync("credentials", $"{role} account {account}: the stored password decrypts").ConfigureAwait(false);
            accounts.Add((role, account, password));
        }

        if (accounts.Count == 0)
        {
            return await report.FailAsync("credentials", "the host has no mapped account",
                $"register the host with --admin-account and/or --user-account and their passwords.").ConfigureAwait(false);
        }

        if (host.BackendSecurity == BackendSecurity.Nla)
        {
            // The CredSSP logon is where an NLA host checks the password, so each account is really tried (no session opens).
            var allOk = true;
            foreach (var (role, account, password) in accounts)
            {
                var (domain, user) = AccessService.SplitAccount(account);
                var logon = await BackendConnector.ConnectAsync(
                    new BackendTarget(host.BackendHost, host.BackendPort, security, user),
                    new InjectedCredentials(domain, user, password),
                    timeout,
                    cancellationToken).ConfigureAwait(false);
                if (logon.Connection is { } connection)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    await report.OkAsync("logon", $"{role} account {account}: the host accepted the NLA (CredSSP) logon").ConfigureAwait(false);
                    continue;
                }

                allOk = false;
                await report.FailAsync("logon", $"{role} account {account}: {logon.Reason}", logon.Failure == BackendFailure.Logon
                    ? $"re-enter the {role} account's password (register the host again: 'gatehouse host delete {host.Name}', then 'gatehouse host create' with --{role}-account {account} and the right password), or check the account on the host (enabled, not locked, allowed to log on remotely)."
                    : BackendAdvice.Fix(logon.Failure, host.Name, new BackendTarget(host.BackendHost, host.BackendPort, security, user))).ConfigureAwait(false);
            }

            return allOk;
        }

        await report.NoteAsync("logon", LogonNote).ConfigureAwait(false);
        return true;
    }

    private static string Describe(SecurityProtocol protocol) => protocol switch
    {
        SecurityProtocol.Ssl => "TLS (PROTOCOL_SSL)",
        SecurityProtocol.Hybrid => "NLA (PROTOCOL_HYBRID)",
        SecurityProtocol.HybridEx => "NLA (PROTOCOL_HYBRID_EX)",
        _ => protocol.ToString(),
    };

    private static string TlsVersion(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls12 => "TLS 1.2",
        SslProtocols.Tls13 => "TLS 1.3",
        _ => protocol.ToString(),
    };

    /// <summary>One line per step: <c>ok</c>, <c>FAIL</c> (with the fix) or <c>note</c>.</summary>
    private sealed class Report(TextWriter output)
    {
        public string? FailedStep { get; private set; }

        public string? FailedFix { get; private set; }

        public Task OkAsync(string step, string detail) => WriteAsync("ok", step, detail);

        public Task NoteAsync(string step, string detail) => WriteAsync("note", step, detail);

        public async Task<bool> FailAsync(string step, string detail, string fix)
        {
            FailedStep = step;
            FailedFix = char.ToUpperInvariant(fix[0]) + fix[1..];
            await WriteAsync("FAIL", step, detail).ConfigureAwait(false);
            await output.WriteLineAsync($"      {"",-12} fix: {fix}").ConfigureAwait(false);
            return false;
        }

        private Task WriteAsync(string status, string step, string detail) =>
            output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"  {status,-4} {step,-12} {detail}"));
    }
}
