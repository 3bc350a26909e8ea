using System.CommandLine;
using System.Globalization;
using Gatehouse.Admin.Operations;

namespace Gatehouse.Cli;

/// <summary><c>gatehouse signins list|show|verify</c> and <c>gatehouse sessions list|kill</c>.</summary>
internal static class LogCommands
{
    public static Command CreateSignIns(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("signins", "The sign-in log (append-only, hash-chained): list, show, verify.");
        admin.AddTo(command);

        var user = new Option<string?>("--user") { Description = "Only this user (UPN)." };
        var host = new Option<string?>("--host") { Description = "Only this host." };
        var result = new Option<string?>("--result") { Description = "Only success or failure." };
        result.AcceptOnlyFromAmong("success", "failure");
        var since = new Option<string?>("--since") { Description = "Only the last DURATION: 30m, 1h, 7d…" };
        var limit = new Option<int>("--limit") { Description = "At most this many rows, newest first (default 100).", DefaultValueFactory = _ => 100 };
        var output = OutputOption.Create();
        var list = new Command("list", "List sign-in attempts, newest first.") { user, host, result, since, limit, output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var take = parse.GetValue(limit);
            if (take <= 0)
            {
                throw new CliException("--limit must be a positive number of rows.");
            }

            var rows = await context.Client.ListSignInsAsync(new SignInQuery(parse.GetValue(user), parse.GetValue(host), parse.GetValue(result), parse.GetValue(since), take), ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["#", "Time", "User", "Host", "Protocol", "Result", "Reason"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.Sequence.ToString(CultureInfo.InvariantCulture), CliRunner.Format(r.Time), UserCell(r), r.Host, r.Protocol, r.Result, Shorten(r.Reason, 100)]));
            }

            return ExitCodes.Ok;
        });

        var id = new Argument<string>("ID") { Description = "The row's sequence number (#) or id." };
        var showOutput = OutputOption.Create();
        var show = new Command("show", "Show one sign-in attempt with the reason, the policies' outcomes and what to fix.") { id, showOutput };
        show.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var row = await context.Client.GetSignInAsync(parse.GetValue(id)!, ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, showOutput))
            {
                await context.WriteJsonAsync(row).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            await context.WriteFieldsAsync(
            [
                ("#", row.Sequence.ToString(CultureInfo.InvariantCulture)),
                ("Id", row.Id.ToString()),
                ("Time", CliRunner.Format(row.Time)),
                ("Result", row.Result),
                ("User", row.User),
                ("Host", row.Host),
                ("Client address", row.ClientAddress),
                ("Protocol", row.Protocol),
                ("Methods", row.Methods),
                ("Code", row.Code),
                ("Role", row.Role),
                ("Account", row.Account),
                ("Session", row.SessionId?.ToString()),
                ("Correlation id", row.CorrelationId),
                ("Reason", row.Reason),
                ("User saw", row.UserMessage),
                ("To fix", row.Fix),
                ("Policies", row.Policies),
                .. (row.UnknownTenant ? [("Tenant", UnknownTenantNote)] : Array.Empty<(string, string?)>()),
            ]).ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var verify = new Command("verify", "Check the sign-in log's hash chain: exit code 0 when intact; otherwise 2, with every problem listed (edited, deleted, reordered rows, truncated tail).");
        verify.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var verification = await context.Client.VerifySignInsAsync(ct).ConfigureAwait(false);
            if (verification.Intact)
            {
                await context.Output.WriteLineAsync($"The sign-in log is intact: {verification.Rows.ToString(CultureInfo.InvariantCulture)} rows, every link and hash checked.").ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            foreach (var problem in verification.Problems)
            {
                await context.Output.WriteLineAsync(problem.Sequence > 0 ? $"row {problem.Sequence.ToString(CultureInfo.InvariantCulture)}: {problem.Problem}" : problem.Problem).ConfigureAwait(false);
            }

            await context.Error.WriteLineAsync($"gatehouse signins verify: the sign-in log has been tampered with ({verification.Problems.Count.ToString(CultureInfo.InvariantCulture)} problem(s) in {verification.Rows.ToString(CultureInfo.InvariantCulture)} rows); keep a copy of the database as evidence and compare it with your backups.").ConfigureAwait(false);
            return ExitCodes.Tampered;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(show);
        command.Subcommands.Add(verify);
        return command;
    }

    public static Command CreateSessions(CliEnvironment environment)
    {
        var admin = new AdminOptions();
        var command = new Command("sessions", "Live RDP sessions relayed by the gateway: list, kill.");
        admin.AddTo(command);

        var output = OutputOption.Create();
        var list = new Command("list", "List live sessions (on every node), newest first.") { output };
        list.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var rows = await context.Client.ListSessionsAsync(ct).ConfigureAwait(false);
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["Id", "User", "Host", "Account", "Client", "Protocol", "Node", "Started", "Kill requested"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.Id.ToString(), r.User, r.Host, r.Account, r.ClientAddress, r.Protocol, r.Node, CliRunner.Format(r.StartedAt), r.KillRequestedAt is null ? "" : CliRunner.Format(r.KillRequestedAt)]));
            }

            return ExitCodes.Ok;
        });

        var id = new Argument<string>("ID") { Description = "The session's id ('gatehouse sessions list' shows them)." };
        var kill = new Command("kill", "End a live session: the node that relays it disconnects it within about a second.") { id };
        kill.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var sessionId = Lookups.ParseId(parse.GetValue(id)!, "a session");
            var session = await context.Client.KillSessionAsync(sessionId, ct).ConfigureAwait(false);
            await context.Output.WriteLineAsync($"Kill requested for session {sessionId} ({session.User} on {session.Host}); node {session.Node} ends it within about a second.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(kill);
        return command;
    }

    private const string UnknownTenantNote = "unknown (the row names no tenant: it was written before every attempt was attributed; every tenant's readers at / see it)";

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static string? UserCell(SignInView row) => row.UnknownTenant ? $"{row.User ?? "-"} (unknown tenant)" : row.User;
}
