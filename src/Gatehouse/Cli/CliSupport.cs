using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gatehouse.Admin;
using Gatehouse.Admin.Operations;
using Gatehouse.Identity;
using Gatehouse.Protocol;
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

    /// <summary><c>audit --fail-on SEVERITY</c>: at least one finding is at or above that severity.</summary>
    public const int FindingsAtOrAbove = 3;
}

/// <summary>
/// The options every admin command takes (added to each top-level admin command, recursive): a running server
/// (<c>--server</c>, <c>--ca-cert</c>) or the store on the server's machine (<c>--data</c>, <c>--store</c>).
/// </summary>
internal sealed class AdminOptions
{
    public Option<string?> Data { get; } = new("--data")
    {
        Description = "The server's data directory (SQLite database, Data Protection keys and their key-encryption key keyring.kek; default ./data).",
        Recursive = true,
    };

    public Option<string?> Store { get; } = new("--store")
    {
        Description = "The server's PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…) instead of --data.",
        Recursive = true,
    };

    public Option<string?> Server { get; } = new("--server")
    {
        Description = "A running server's address (https://host:port; or GATEHOUSE_SERVER): the command goes to its admin API with the token from 'gatehouse login' or GATEHOUSE_TOKEN.",
        Recursive = true,
    };

    public Option<string?> CaCertificate { get; } = new("--ca-cert")
    {
        Description = "With --server: a PEM file to trust as the server's certificate or its issuer (or GATEHOUSE_CA_CERT; default: the one 'gatehouse login' saved, else the system's trust store).",
        Recursive = true,
    };

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Data);
        command.Options.Add(Store);
        command.Options.Add(Server);
        command.Options.Add(CaCertificate);
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

/// <summary>
/// What a command's action gets: the admin operations (on the store or over the API), the streams. Everything written
/// to <see cref="Output"/> and <see cref="Error"/>, tables included, has its control, bidirectional and other
/// invisible characters escaped (<see cref="DisplayTextWriter"/>): names come from clients and administrators.
/// </summary>
internal sealed class CliContext(IAdminClient client, TextWriter output, TextWriter error, CliEnvironment environment)
{
    private readonly DisplayTextWriter _output = output as DisplayTextWriter ?? new DisplayTextWriter(output);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>The admin operations: the store's with <c>--data</c>/<c>--store</c>, the server's with <c>--server</c>.</summary>
    public IAdminClient Client { get; } = client;

    public TextWriter Output => _output;

    public TextWriter Error { get; } = error as DisplayTextWriter ?? new DisplayTextWriter(error);

    public CliEnvironment Environment { get; } = environment;

    public async Task WriteJsonAsync<T>(T value)
    {
        // The serializer escapes control and non-ASCII characters itself (\u001b, \u202e): the JSON stays valid.
        await WriteTextAsync(JsonSerializer.Serialize(value, JsonOptions) + Output.NewLine).ConfigureAwait(false);
    }

    /// <summary>Writes multi-line text the program composed (JSON, a QR code, an .rdp file): escaped line by line, line breaks kept.</summary>
    public Task WriteTextAsync(string text) => _output.WriteTextAsync(text);

    /// <summary>Writes a table (plain text, markup never interpreted) with <paramref name="columns"/> and <paramref name="rows"/>.</summary>
    public void WriteTable(IReadOnlyList<string> columns, IEnumerable<IReadOnlyList<string?>> rows)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in columns)
        {
            table.AddColumn(new TableColumn(new Text(DisplayText.Escape(column))));
        }

        var count = 0;
        foreach (var row in rows)
        {
            table.AddRow(row.Select(v => (Spectre.Console.Rendering.IRenderable)new Text(DisplayText.Escape(v))).ToArray());
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
        // Spectre.Console writes to the stream underneath (the cells are escaped already, its own sequences are not).
        var raw = _output.Inner;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = Environment.OutputIsTerminal && ReferenceEquals(raw, Console.Out) ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(raw),
        });
        if (!(Environment.OutputIsTerminal && ReferenceEquals(raw, Console.Out)))
        {
            // Redirected output (a file, a pipe, a test): do not wrap cells at an imagined 80 columns.
            console.Profile.Width = 240;
        }

        return console;
    }
}

/// <summary>
/// Runs an admin command's action: picks the mode (<c>--server</c>/<c>GATEHOUSE_SERVER</c>: the server's admin API;
/// otherwise the store at <c>--data</c> (default ./data) or <c>--store</c>, as the operator), and maps failures to one
/// sentence on stderr.
/// </summary>
internal static class CliRunner
{
    public static void SetAdminAction(this Command command, AdminOptions admin, CliEnvironment environment, Func<CliContext, ParseResult, CancellationToken, Task<int>> action, Option<string?>? configOption = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.SetAction((parse, cancellationToken) => RunAsync(parse, admin, environment, action, configOption, cancellationToken));
    }

    public static async Task<int> RunAsync(ParseResult parse, AdminOptions admin, CliEnvironment environment, Func<CliContext, ParseResult, CancellationToken, Task<int>> action, Option<string?>? configOption, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(admin);
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(action);
        var output = parse.InvocationConfiguration.Output;

        // Error sentences quote names as given (by the caller, or by a server over the API): escaped like all output.
        var error = new DisplayTextWriter(parse.InvocationConfiguration.Error);
        var name = "gatehouse " + string.Join(' ', CommandPath(parse.CommandResult));
        try
        {
            var data = parse.GetValue(admin.Data);
            var storeConnection = parse.GetValue(admin.Store);
            var local = !string.IsNullOrEmpty(data) || !string.IsNullOrEmpty(storeConnection);
            var serverFlag = parse.GetValue(admin.Server);
            if (!string.IsNullOrEmpty(serverFlag) && local)
            {
                throw new CliException("--server cannot be combined with --data or --store: use --server to manage a running server over its admin API, or --data DIR / --store CONNECTION on the server's own machine.");
            }

            // An explicit --data/--store wins over GATEHOUSE_SERVER from the environment.
            var serverText = !string.IsNullOrEmpty(serverFlag) ? serverFlag : local ? null : environment.Variable("GATEHOUSE_SERVER");
            if (!string.IsNullOrWhiteSpace(serverText))
            {
                if (configOption is not null && parse.GetValue(configOption) is not null)
                {
                    throw new CliException("--config reads the server's configuration on its own machine; with --server the server gives its public name and RDP port itself, so leave --config out.");
                }

                var server = CliHttp.ParseServer(serverText.Trim());
                var caCertificate = parse.GetValue(admin.CaCertificate) is { Length: > 0 } flag ? flag
                    : environment.Variable("GATEHOUSE_CA_CERT") is { Length: > 0 } variable ? variable
                    : CliCredentialStore.For(environment).Find(server)?.CaCertificatePath;
                using var http = CliHttp.Create(server, caCertificate, environment);
                var remote = new RemoteAdminClient(http, server, ct => CliTokenSource.GetAccessTokenAsync(server, environment, http, ct));
                return await action(new CliContext(remote, output, error, environment), parse, cancellationToken).ConfigureAwait(false);
            }

            if (parse.GetValue(admin.CaCertificate) is { Length: > 0 })
            {
                throw new CliException("--ca-cert is for --server (a running server's certificate); on the server's machine with --data or --store leave it out.");
            }

            var location = AdminStoreLocation.From(data, storeConnection, environment);
            await using var store = await AdminStore.OpenAsync(location, environment.Time, create: false, cancellationToken).ConfigureAwait(false);
            var tenant = store.TenantOrThrow;
            var configFile = configOption is null ? null : parse.GetValue(configOption);
            var operations = new AdminOperations(AdminCaller.Operator(tenant.Id), store.Scope.ServiceProvider, () =>
            {
                var addresses = ServerAddresses.Load(configFile);
                // The server's generated certificate, when it uses one (a configured certificate is known only to the server).
                var generated = Path.Combine(location.DataDirectory, Gatehouse.Hosting.TlsCertificates.FolderName, Gatehouse.Hosting.TlsCertificates.CertificateFileName);
                string? sha256 = null;
                if (File.Exists(generated))
                {
                    using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(generated));
                    sha256 = Convert.ToHexString(certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
                }

                return new GatewayInfo(addresses.PublicName, addresses.RdpPort, sha256, addresses.GatewayAddresses);
            });
            return await action(new CliContext(operations, output, error, environment), parse, cancellationToken).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (AdminProblemException e)
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
    public static string Sentence(ArgumentException e) => AdminText.Sentence(e);

    public static string Format(DateTimeOffset? time) =>
        time?.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";

    /// <summary>Parses <c>90s</c>, <c>30m</c>, <c>1h</c>, <c>7d</c>, <c>2w</c>.</summary>
    public static bool TryParseDuration(string text, out TimeSpan span) => AdminText.TryParseDuration(text, out span);

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
