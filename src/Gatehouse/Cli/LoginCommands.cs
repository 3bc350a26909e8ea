using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse login</c> (the device authorization grant against a running server: open the page, enter the code, sign
/// in; the tokens are saved for the admin commands' <c>--server</c>), <c>gatehouse login --status</c> and
/// <c>gatehouse logout</c> (revokes the sign-in at the server and forgets it).
/// </summary>
internal static class LoginCommands
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static Command CreateLogin(CliEnvironment environment)
    {
        var server = ServerOption();
        var tenant = new Option<string?>("--tenant") { Description = "The tenant to sign in to: its domain or id (default: the server's first tenant)." };
        var caCert = new Option<string?>("--ca-cert") { Description = "A PEM file to trust as the server's certificate (the server's data/tls/gatehouse.crt) when the system does not trust it." };
        var status = new Option<bool>("--status") { Description = "Show the saved sign-ins (server, user, expiry) instead of signing in; never shows tokens." };
        var output = OutputOption.Create();
        var command = new Command("login", "Sign in to a running server's admin API (device code: open the page shown, enter the code, sign in); admin commands with --server then use the saved sign-in.")
        {
            server, tenant, caCert, status, output,
        };
        command.SetAction((parse, ct) => RunAsync(parse, "gatehouse login", async (o, e) =>
        {
            if (parse.GetValue(status))
            {
                return await StatusAsync(environment, o, OutputOption.IsJson(parse, output)).ConfigureAwait(false);
            }

            return await LoginAsync(environment, ResolveServer(parse.GetValue(server), environment), parse.GetValue(tenant), parse.GetValue(caCert), OutputOption.IsJson(parse, output), o, e, ct).ConfigureAwait(false);
        }));
        return command;
    }

    public static Command CreateLogout(CliEnvironment environment)
    {
        var server = ServerOption();
        var local = new Option<bool>("--local") { Description = "Only forget the saved sign-in, without revoking it at the server (when the server is gone)." };
        var command = new Command("logout", "Sign out of a server: revoke the saved sign-in's tokens at the server and remove them from this machine.") { server, local };
        command.SetAction((parse, ct) => RunAsync(parse, "gatehouse logout", (o, e) =>
            LogoutAsync(environment, parse.GetValue(server) ?? environment.Variable("GATEHOUSE_SERVER"), parse.GetValue(local), o, ct)));
        return command;
    }

    private static Option<string?> ServerOption() => new("--server")
    {
        Description = "The server's address, https://host:port (default: GATEHOUSE_SERVER).",
    };

    private static async Task<int> RunAsync(ParseResult parse, string name, Func<TextWriter, TextWriter, Task<int>> action)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return await action(output, error).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape($"{name}: {e.Message}")).ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (IOException e)
        {
            await error.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape($"{name}: {e.Message} Check that the configuration directory is writable (GATEHOUSE_CONFIG_DIR).")).ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (UnauthorizedAccessException e)
        {
            await error.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape($"{name}: {e.Message} Check the permissions of the configuration directory (GATEHOUSE_CONFIG_DIR).")).ConfigureAwait(false);
            return ExitCodes.Failed;
        }
    }

    private static Uri ResolveServer(string? option, CliEnvironment environment)
    {
        var text = option ?? environment.Variable("GATEHOUSE_SERVER");
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new CliException("Which server? Give its address with --server https://host:port (or set GATEHOUSE_SERVER).");
        }

        return CliHttp.ParseServer(text.Trim());
    }

    private static async Task<int> LoginAsync(CliEnvironment environment, Uri server, string? tenantOption, string? caCert, bool json, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        var caPath = string.IsNullOrEmpty(caCert) ? null : Path.GetFullPath(caCert);
        if (caPath is not null && !File.Exists(caPath))
        {
            throw new CliException($"There is no file {caPath}; copy the server's data/tls/gatehouse.crt here and pass it with --ca-cert.");
        }

        var tenant = string.IsNullOrWhiteSpace(tenantOption) ? "common" : tenantOption.Trim();
        using var http = CliHttp.Create(server, caPath, environment);
        var device = await CliOAuth.RequestDeviceCodeAsync(http, tenant, cancellationToken).ConfigureAwait(false);

        // The instructions go to stderr, so that stdout carries only the result (--output json).
        // The server's text goes to a terminal: control, bidirectional and invisible characters are written out.
        var instructions = device.Message.Length > 0 ? device.Message : $"To sign in, use a web browser to open the page {device.VerificationUri} and enter the code {device.UserCode} to authenticate.";
        await error.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape(instructions)).ConfigureAwait(false);
        var tokens = await PollAsync(environment, http, tenant, device, error, cancellationToken).ConfigureAwait(false);

        var credential = new CliCredential
        {
            Server = CliCredentialStore.Key(server),
            Tenant = tokens.TenantId ?? tenant,
            User = tokens.UserPrincipalName,
            AccessToken = tokens.AccessToken,
            ExpiresAt = environment.Time.GetUtcNow() + tokens.ExpiresIn,
            RefreshToken = tokens.RefreshToken,
            CaCertificatePath = caPath,
        };
        var store = CliCredentialStore.For(environment);
        store.Save(credential);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(Describe(credential), JsonOptions)).ConfigureAwait(false);
        }
        else
        {
            await output.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape($"Signed in to {credential.Server} as {credential.User ?? "(unknown user)"} (tenant {credential.Tenant}). Admin commands with --server {credential.Server} use this sign-in; 'gatehouse logout' ends it.")).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    /// <summary>Polls the token endpoint at the interval (longer after each <c>slow_down</c>) until the user has answered or the code expires.</summary>
    private static async Task<CliTokens> PollAsync(CliEnvironment environment, HttpClient http, string tenant, DeviceAuthorization device, TextWriter error, CancellationToken cancellationToken)
    {
        var time = environment.Time;
        var deadline = time.GetUtcNow() + device.ExpiresIn;
        var interval = device.Interval;
        var indicator = environment.OutputIsTerminal && ReferenceEquals(error, Console.Error);
        var frames = "|/-\\";
        var frame = 0;
        while (true)
        {
            await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
            var (tokens, failure) = await CliOAuth.PollAsync(http, tenant, device.DeviceCode, cancellationToken).ConfigureAwait(false);
            if (tokens is not null)
            {
                if (indicator)
                {
                    await error.WriteAsync("\r \r").ConfigureAwait(false);
                }

                return tokens;
            }

            switch (failure!.Error)
            {
                case "authorization_pending":
                    break;
                case "slow_down":
                    interval += TimeSpan.FromSeconds(5);
                    break;
                case "access_denied" or "authorization_declined":
                    throw new CliException("The sign-in was cancelled in the browser; run 'gatehouse login' again and answer Continue if it was you.");
                case "expired_token":
                    throw new CliException("The code expired before the sign-in was finished; run 'gatehouse login' again and enter the new code within 15 minutes.");
                case "bad_verification_code":
                    throw new CliException("The server no longer knows this sign-in (already used or purged); run 'gatehouse login' again.");
                default:
                    throw new CliException($"The sign-in failed: {failure.Summary} Run 'gatehouse login' again.");
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw new CliException("The code expired before the sign-in was finished; run 'gatehouse login' again and enter the new code within 15 minutes.");
            }

            if (indicator)
            {
                await error.WriteAsync($"\rWaiting for the sign-in in the browser {frames[frame++ % frames.Length]}").ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> StatusAsync(CliEnvironment environment, TextWriter output, bool json)
    {
        var rows = CliCredentialStore.For(environment).List().Select(Describe).ToList();
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(rows, JsonOptions)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var now = environment.Time.GetUtcNow();
        CliTable.Write(output, environment, ["Server", "User", "Tenant", "Access token", "Renewable", "CA certificate"], rows.Select(r => (IReadOnlyList<string?>)
        [
            r.Server,
            r.User,
            r.Tenant,
            r.ExpiresAt <= now ? $"expired {CliRunner.Format(r.ExpiresAt)}" : $"valid until {CliRunner.Format(r.ExpiresAt)}",
            r.Renewable ? "yes" : "no",
            r.CaCertificate,
        ]));
        return ExitCodes.Ok;
    }

    private static async Task<int> LogoutAsync(CliEnvironment environment, string? serverText, bool localOnly, TextWriter output, CancellationToken cancellationToken)
    {
        var store = CliCredentialStore.For(environment);
        Uri server;
        if (string.IsNullOrWhiteSpace(serverText))
        {
            var saved = store.List();
            server = saved.Count switch
            {
                0 => throw new CliException("There is no saved sign-in on this machine; nothing to sign out of."),
                1 => new Uri(saved.Single().Server),
                _ => throw new CliException($"There are sign-ins to {saved.Count} servers; say which with --server ({string.Join(", ", saved.Select(c => c.Server))})."),
            };
        }
        else
        {
            server = CliHttp.ParseServer(serverText.Trim());
        }

        var credential = store.Find(server)
            ?? throw new CliException($"There is no saved sign-in to {CliCredentialStore.Key(server)}; 'gatehouse login --status' lists the saved ones.");
        if (!localOnly)
        {
            using var http = CliHttp.Create(server, credential.CaCertificatePath, environment);
            try
            {
                if (credential.RefreshToken is { Length: > 0 } refresh)
                {
                    await CliOAuth.RevokeAsync(http, credential.Tenant, refresh, isRefreshToken: true, cancellationToken).ConfigureAwait(false);
                }

                await CliOAuth.RevokeAsync(http, credential.Tenant, credential.AccessToken, isRefreshToken: false, cancellationToken).ConfigureAwait(false);
            }
            catch (CliException e)
            {
                throw new CliException($"{e.Message.TrimEnd('.')}; the sign-in was not revoked and is still saved. Try again, or forget it on this machine only with 'gatehouse logout --server {credential.Server} --local'.", e);
            }
        }

        store.Remove(server);
        await output.WriteLineAsync(Gatehouse.Protocol.DisplayText.Escape(localOnly
            ? $"Forgot the sign-in to {credential.Server} as {credential.User} on this machine (not revoked at the server: its tokens stay valid until they expire)."
            : $"Signed out of {credential.Server} ({credential.User}): the sign-in is revoked at the server and removed from this machine.")).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static SignInRow Describe(CliCredential c) =>
        new(c.Server, c.User, c.Tenant, c.ExpiresAt, !string.IsNullOrEmpty(c.RefreshToken), c.CaCertificatePath);

    /// <summary>A saved sign-in as <c>login --status</c> shows it: never a token.</summary>
    private sealed record SignInRow(string Server, string? User, string Tenant, DateTimeOffset ExpiresAt, bool Renewable, string? CaCertificate);
}

/// <summary>A table for commands that have no store (<see cref="CliContext.WriteTable"/> without a <see cref="CliContext"/>).</summary>
internal static class CliTable
{
    public static void Write(TextWriter output, CliEnvironment environment, IReadOnlyList<string> columns, IEnumerable<IReadOnlyList<string?>> rows)
    {
        var table = new Spectre.Console.Table().Border(Spectre.Console.TableBorder.Rounded);
        foreach (var column in columns)
        {
            table.AddColumn(new Spectre.Console.TableColumn(new Spectre.Console.Text(column)));
        }

        var count = 0;
        foreach (var row in rows)
        {
            table.AddRow(row.Select(v => (Spectre.Console.Rendering.IRenderable)new Spectre.Console.Text(v is null ? "-" : Gatehouse.Protocol.DisplayText.Escape(v))).ToArray());
            count++;
        }

        var terminal = environment.OutputIsTerminal && ReferenceEquals(output, Console.Out);
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = terminal ? Spectre.Console.AnsiSupport.Detect : Spectre.Console.AnsiSupport.No,
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            Interactive = Spectre.Console.InteractionSupport.No,
            Out = new Spectre.Console.AnsiConsoleOutput(output),
        });
        if (!terminal)
        {
            console.Profile.Width = 240;
        }

        console.Write(table);
        if (count == 0)
        {
            console.WriteLine("(none)");
        }
    }
}
