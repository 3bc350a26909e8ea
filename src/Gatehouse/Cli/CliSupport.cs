using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Spectre.Console;

namespace Gatehouse.Cli;

/// <summary>A command that cannot be carried out, with the sentence (what happened, what to do) for stderr.</summary>
internal sealed class CliException : Exception
{
    public CliException()
    {
    }

    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>What the admin commands read besides their arguments: standard input and the clock (tests replace both).</summary>
internal sealed record CliEnvironment
{
    /// <summary>Standard input (passwords with <c>--…-password-stdin</c>, the MFA confirmation code).</summary>
    public TextReader Input { get; init; } = Console.In;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>True when standard output is a terminal (tables fit its width; otherwise they are not wrapped).</summary>
    public bool OutputIsTerminal { get; init; } = !Console.IsOutputRedirected;

    /// <summary>Reads an environment variable (<c>GATEHOUSE_TOKEN</c>, <c>GATEHOUSE_SERVER</c>, …); tests replace it.</summary>
    public Func<string, string?> Variable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>
    /// The directory of the CLI's own files (the credentials <c>gatehouse login</c> saves): <c>GATEHOUSE_CONFIG_DIR</c>,
    /// else <c>$XDG_CONFIG_HOME/gatehouse</c>, else <c>~/.config/gatehouse</c>. Tests set it.
    /// </summary>
    public string? ConfigDirectory { get; init; }

    /// <summary>The HTTP handler for <c>--server</c> calls (tests pass the in-process server's); null: a real one.</summary>
    public HttpMessageHandler? HttpHandler { get; init; }
}

/// <summary>Exit codes of the admin commands.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The command could not be carried out (the sentence on stderr says why and what to do).</summary>
    public const int Failed = 1;

    /// <summary><c>signins verify</c>: the log's hash chain is broken.</summary>
    public const int Tampered = 2;
}

/// <summary>
/// The options every admin command takes (added to each top-level admin command, recursive): where the store is, and
/// <c>--server</c>, which is reserved for the REST mode and refused for now.
/// </summary>
internal sealed class AdminOptions
{
    public Option<string?> Data { get; } = new("--data")
    {
        Description = "The server's data directory (SQLite database and Data Protection keys; default ./data).",
        Recursive = true,
    };

    public Option<string?> Store { get; } = new("--store")
    {
        Description = "The server's PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…) instead of --data.",
        Recursive = true,
    };

    public Option<string?> Server { get; } = new("--server")
    {
        Description = "A running server's address (https://host:port). Not available yet: run admin commands on the server's machine with --data or --store.",
        Recursive = true,
    };

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Data);
        command.Options.Add(Store);
        command.Options.Add(Server);
    }
}

/// <summary><c>--output table|json</c> of the list commands.</summary>
internal static class OutputOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--output", "-o")
        {
            Description = "Output format: table (default) or json (stable, machine-readable).",
            DefaultValueFactory = _ => "table",
        };
        option.AcceptOnlyFromAmong("table", "json");
        return option;
    }

    public static bool IsJson(ParseResult parse, Option<string> option) =>
        string.Equals(parse.GetValue(option), "json", StringComparison.OrdinalIgnoreCase);
}

/// <summary>What a command's action gets: the open store, the tenant, the streams.</summary>
internal sealed class CliContext(AdminStore store, TextWriter output, TextWriter error, CliEnvironment environment)
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public AdminStore Store { get; } = store;

    public Tenant Tenant => Store.TenantOrThrow;

    public TextWriter Output { get; } = output;

    public TextWriter Error { get; } = error;

    public CliEnvironment Environment { get; } = environment;

    public DateTimeOffset Now => Environment.Time.GetUtcNow();

    public T Get<T>()
        where T : notnull => Store.Get<T>();

    public Gatehouse.Storage.GatehouseDbContext Db => Store.Get<Gatehouse.Storage.GatehouseDbContext>();

    public async Task WriteJsonAsync<T>(T value)
    {
        await Output.WriteLineAsync(JsonSerializer.Serialize(value, JsonOptions)).ConfigureAwait(false);
    }

    /// <summary>Writes a table (plain text, markup never interpreted) with <paramref name="columns"/> and <paramref name="rows"/>.</summary>
    public void WriteTable(IReadOnlyList<string> columns, IEnumerable<IReadOnlyList<string?>> rows)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(new Text(column)));
        }

        var count = 0;
        foreach (var row in rows)
        {
            table.AddRow(row.Select(v => (Spectre.Console.Rendering.IRenderable)new Text(v ?? "")).ToArray());
            count++;
        }

        var console = CreateConsole();
        console.Write(table);
        if (count == 0)
        {
            console.WriteLine("(none)");
        }
    }

    /// <summary>Writes "name: value" lines (the <c>show</c> commands).</summary>
    public async Task WriteFieldsAsync(IEnumerable<(string Name, string? Value)> fields)
    {
        var list = fields.ToList();
        var width = list.Max(f => f.Name.Length) + 1;
        foreach (var (name, value) in list)
        {
            await Output.WriteLineAsync($"{(name + ":").PadRight(width)} {value ?? "-"}").ConfigureAwait(false);
        }
    }

    /// <summary>Reads one line of standard input (without its line break); <paramref name="what"/> names it in the error.</summary>
    public async Task<string> ReadSecretLineAsync(string what)
    {
        var line = await Environment.Input.ReadLineAsync().ConfigureAwait(false);
        if (string.IsNullOrEmpty(line))
        {
            throw new CliException($"Expected {what} on standard input, but it was empty; pipe it in, e.g. printf '%s\\n' \"$PASSWORD\" | gatehouse ….");
        }

        return line;
    }

    private IAnsiConsole CreateConsole()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = Environment.OutputIsTerminal && ReferenceEquals(Output, Console.Out) ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(Output),
        });
        if (!(Environment.OutputIsTerminal && ReferenceEquals(Output, Console.Out)))
        {
            // Redirected output (a file, a pipe, a test): do not wrap cells at an imagined 80 columns.
            console.Profile.Width = 240;
        }

        return console;
    }
}

/// <summary>Runs an admin command's action: refuses <c>--server</c>, opens the store, maps failures to one sentence on stderr.</summary>
internal static class CliRunner
{
    public static void SetAdminAction(this Command command, AdminOptions admin, CliEnvironment environment, Func<CliContext, ParseResult, CancellationToken, Task<int>> action)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.SetAction((parse, cancellationToken) => RunAsync(parse, admin, environment, action, cancellationToken));
    }

    public static async Task<int> RunAsync(ParseResult parse, AdminOptions admin, CliEnvironment environment, Func<CliContext, ParseResult, CancellationToken, Task<int>> action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(action);
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var name = "gatehouse " + string.Join(' ', CommandPath(parse.CommandResult));
        if (parse.GetValue(admin.Server) is { Length: > 0 })
        {
            await error.WriteLineAsync($"{name}: --server (administration over the REST API) is not available yet; run this command on the server's machine with --data DIR (or --store CONNECTION for PostgreSQL).").ConfigureAwait(false);
            return ExitCodes.Failed;
        }

        var location = new AdminStoreLocation(Path.GetFullPath(parse.GetValue(admin.Data) ?? "./data"), parse.GetValue(admin.Store));
        try
        {
            await using var store = await AdminStore.OpenAsync(location, environment.Time, create: false, cancellationToken).ConfigureAwait(false);
            var context = new CliContext(store, output, error, environment);
            return await action(context, parse, cancellationToken).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (DirectoryException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (DbUpdateException e)
        {
            await error.WriteLineAsync($"{name}: the store refused the change ({e.GetBaseException().Message}); it probably conflicts with an existing entry, so check with the matching 'list' command.").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (IOException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message} Check the path and try again.").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (UnauthorizedAccessException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message} Run the command as the user that runs the server.").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
    }

    /// <summary>The text of an <see cref="ArgumentException"/> without .NET's "(Parameter 'x')" suffix.</summary>
    public static string Sentence(ArgumentException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", string.Empty, StringComparison.Ordinal);
        text = text.TrimEnd('.') + ".";
        return char.ToUpperInvariant(text[0]) + text[1..];
    }

    public static string Format(DateTimeOffset? time) =>
        time?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";

    /// <summary>Parses <c>90s</c>, <c>30m</c>, <c>1h</c>, <c>7d</c>, <c>2w</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan span)
    {
        span = default;
        if (string.IsNullOrWhiteSpace(text) || text.Length < 2)
        {
            return false;
        }

        var unit = char.ToLowerInvariant(text[^1]);
        if (!double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0)
        {
            return false;
        }

        TimeSpan? parsed = unit switch
        {
            's' => TimeSpan.FromSeconds(value),
            'm' => TimeSpan.FromMinutes(value),
            'h' => TimeSpan.FromHours(value),
            'd' => TimeSpan.FromDays(value),
            'w' => TimeSpan.FromDays(7 * value),
            _ => null,
        };
        span = parsed ?? default;
        return parsed is not null;
    }

    private static Stack<string> CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = result; r is System.CommandLine.Parsing.CommandResult c && c.Parent is not null; r = r.Parent)
        {
            names.Push(c.Command.Name);
        }

        return names;
    }
}
