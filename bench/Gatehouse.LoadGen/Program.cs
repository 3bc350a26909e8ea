using System.CommandLine;
using System.Globalization;
using Gatehouse.LoadGen;

var requests = new Option<int>("--requests") { Description = "Requests per endpoint for /healthz, discovery and JWKS.", DefaultValueFactory = _ => 5000 };
var concurrency = new Option<int>("--concurrency") { Description = "Concurrent clients (each with its own keep-alive HTTPS connection).", DefaultValueFactory = _ => 16 };
var codes = new Option<int>("--codes") { Description = "Authorization codes minted beforehand and redeemed at the token endpoint (they live 60 s).", DefaultValueFactory = _ => 1000 };
var output = new Option<string>("--output") { Description = "table or json.", DefaultValueFactory = _ => "table" };
output.AcceptOnlyFromAmong("table", "json");

var root = new RootCommand("Measures the identity provider under local load: codes redeemed per second at the token endpoint, and discovery and JWKS against /healthz, on a real in-process host over HTTPS.")
{
    requests, concurrency, codes, output,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var settings = new LoadSettings(parse.GetValue(requests), parse.GetValue(concurrency), parse.GetValue(codes));
    if (settings.Requests < 1 || settings.Concurrency < 1 || settings.Codes < 1)
    {
        await parse.InvocationConfiguration.Error.WriteLineAsync("gatehouse-loadgen: --requests, --concurrency and --codes must be at least 1.");
        return 2;
    }

    var progress = parse.InvocationConfiguration.Error;
    var report = await LoadRun.RunAsync(settings, message => progress.WriteLine(message), cancellationToken);
    var writer = parse.InvocationConfiguration.Output;
    await writer.WriteAsync(parse.GetValue(output) == "json" ? report.ToJson() : report.ToTable());
    return report.Results.Sum(r => r.Errors) == 0 ? 0 : 1;
});

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
return await root.Parse(args).InvokeAsync();
