using System.CommandLine;
using System.Globalization;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

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
            var query = context.Db.SignIns.AsNoTracking().Where(s => s.TenantId == context.Tenant.Id);
            if (parse.GetValue(user) is { Length: > 0 } upn)
            {
                var found = await context.Get<DirectoryService>().FindUserByUpnAsync(upn, ct).ConfigureAwait(false);
                var name = upn.Trim();
                query = found is null ? query.Where(s => s.UserPrincipalName == name) : query.Where(s => s.UserId == found.Id || s.UserPrincipalName == name);
            }

            if (parse.GetValue(host) is { Length: > 0 } hostName)
            {
                var normalized = DirectoryService.NormalizeName(hostName);
                query = query.Where(s => s.HostName == normalized);
            }

            if (parse.GetValue(result) is { Length: > 0 } outcome)
            {
                query = query.Where(s => s.Result == outcome);
            }

            if (parse.GetValue(since) is { Length: > 0 } duration)
            {
                if (!CliRunner.TryParseDuration(duration, out var span))
                {
                    throw new CliException($"--since '{duration}' is not a duration; use a number and a unit: 90s, 30m, 1h, 7d or 2w.");
                }

                var from = context.Now - span;
                query = query.Where(s => s.Time >= from);
            }

            var take = parse.GetValue(limit);
            if (take <= 0)
            {
                throw new CliException("--limit must be a positive number of rows.");
            }

            var rows = (await query.OrderByDescending(s => s.Sequence).Take(take).ToListAsync(ct).ConfigureAwait(false)).Select(ToRow).ToList();
            if (OutputOption.IsJson(parse, output))
            {
                await context.WriteJsonAsync(rows).ConfigureAwait(false);
            }
            else
            {
                context.WriteTable(
                    ["#", "Time", "User", "Host", "Protocol", "Result", "Reason"],
                    rows.Select(r => (IReadOnlyList<string?>)[r.Sequence.ToString(CultureInfo.InvariantCulture), CliRunner.Format(r.Time), r.User, r.Host, r.Protocol, r.Result, Shorten(r.Reason, 100)]));
            }

            return ExitCodes.Ok;
        });

        var id = new Argument<string>("ID") { Description = "The row's sequence number (#) or id." };
        var showOutput = OutputOption.Create();
        var show = new Command("show", "Show one sign-in attempt with the reason, the policies' outcomes and what to fix.") { id, showOutput };
        show.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var text = parse.GetValue(id)!;
            SignInRecord? record = null;
            if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
            {
                record = await context.Db.SignIns.AsNoTracking().FirstOrDefaultAsync(s => s.Sequence == sequence && s.TenantId == context.Tenant.Id, ct).ConfigureAwait(false);
            }
            else if (Guid.TryParse(text, out var guid))
            {
                record = await context.Db.SignIns.AsNoTracking().FirstOrDefaultAsync(s => s.Id == guid && s.TenantId == context.Tenant.Id, ct).ConfigureAwait(false);
            }

            if (record is null)
            {
                throw new CliException($"There is no sign-in '{text}'; 'gatehouse signins list' shows the sequence numbers (#).");
            }

            var row = ToRow(record);
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
            ]).ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var verify = new Command("verify", "Check the sign-in log's hash chain: exit code 0 when intact; otherwise 2, with every problem listed (edited, deleted, reordered rows, truncated tail).");
        verify.SetAdminAction(admin, environment, async (context, parse, ct) =>
        {
            var verification = await context.Get<SignInLogService>().VerifyAsync(ct).ConfigureAwait(false);
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
            var sessions = await context.Get<SessionStore>().ListLiveAsync(ct).ConfigureAwait(false);
            var rows = sessions.Where(s => s.TenantId == context.Tenant.Id).Select(s => new SessionRow(
                s.Id, s.UserPrincipalName, s.HostName, s.Role, s.Account, s.ClientAddress, s.Protocol, s.Node, s.StartedAt, s.KillRequestedAt, s.BytesFromClient, s.BytesFromBackend)).ToList();
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
            var session = await context.Db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == sessionId && s.TenantId == context.Tenant.Id, ct).ConfigureAwait(false);
            if (session is null || !await context.Get<SessionStore>().RequestKillAsync(sessionId, ct).ConfigureAwait(false))
            {
                throw new CliException(session is null
                    ? $"There is no session {sessionId}; 'gatehouse sessions list' shows the live sessions."
                    : $"Session {sessionId} has already ended ({session.EndReason ?? "no reason recorded"}).");
            }

            await context.Output.WriteLineAsync($"Kill requested for session {sessionId} ({session.UserPrincipalName} on {session.HostName}); node {session.Node} ends it within about a second.").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(kill);
        return command;
    }

    private static SignInRow ToRow(SignInRecord s) => new(
        s.Sequence, s.Id, s.Time, s.Result, s.UserPrincipalName, s.HostName, s.ClientAddress, s.Protocol, s.Methods, s.Code,
        s.RoleName, s.TargetAccount, s.SessionId, s.CorrelationId, s.Reason, s.UserMessage, s.Fix, s.PoliciesJson);

    private static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private sealed record SignInRow(long Sequence, Guid Id, DateTimeOffset Time, string Result, string? User, string? Host, string? ClientAddress,
        string Protocol, string? Methods, string? Code, string? Role, string? Account, Guid? SessionId, string CorrelationId, string Reason,
        string? UserMessage, string? Fix, string? Policies);

    private sealed record SessionRow(Guid Id, string User, string Host, string Role, string Account, string ClientAddress, string Protocol, string Node,
        DateTimeOffset StartedAt, DateTimeOffset? KillRequestedAt, long BytesFromClient, long BytesFromBackend);
}
