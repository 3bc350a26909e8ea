using System.Text.Json;
using Gatehouse.Gateway.Agents;
using Gatehouse.Hosting;
using Microsoft.Extensions.Options;

namespace Gatehouse.Agents;

/// <summary>
/// The agent channel's HTTPS endpoints under <c>/agent/v1</c>: <c>join</c> (with an enrolment token), then, each
/// authenticated with a fresh assertion in <c>Authorization: Bearer</c>: <c>poll</c> (long poll for work),
/// <c>result</c> (a work item's answer) and <c>health</c>. The agent connects out; the host needs no inbound port.
/// </summary>
internal static partial class AgentEndpoints
{
    /// <summary>Largest request body accepted.</summary>
    public const int MaxBodyBytes = 16 * 1024;

    public static void MapAgentApi(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost(AgentRegistry.BasePath + "/join", JoinAsync);
        app.MapPost(AgentRegistry.BasePath + "/poll", PollAsync);
        app.MapPost(AgentRegistry.BasePath + "/result", ResultAsync);
        app.MapPost(AgentRegistry.BasePath + "/health", HealthAsync);
    }

    /// <summary>The audience the server expects: its public HTTPS name and the agent path.</summary>
    public static string Audience(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.GetRequiredService<IOptions<GatehouseOptions>>().Value;
        return $"https://{options.PublicName}{AgentRegistry.BasePath}";
    }

    private static async Task<IResult> JoinAsync(HttpContext http, CancellationToken ct)
    {
        var logger = Logger(http);
        try
        {
            var request = await BodyAsync<AgentJoinRequest>(http, ct).ConfigureAwait(false);
            var registry = http.RequestServices.GetRequiredService<AgentRegistry>();
            var audience = Audience(http.RequestServices);
            var (agent, host) = await registry.JoinAsync(request, audience, ct).ConfigureAwait(false);
            LogJoined(logger, host.Name, agent.Id, agent.OperatingSystem, host.CertificatePin);
            return Results.Json(new AgentJoinResponse(agent.Id, audience, host.Name), AgentJson.Options);
        }
        catch (AgentRefusedException e)
        {
            return Refuse(logger, http, e);
        }
    }

    private static async Task<IResult> PollAsync(HttpContext http, CancellationToken ct)
    {
        var logger = Logger(http);
        try
        {
            var agent = await AuthenticateAsync(http, ct).ConfigureAwait(false);
            var broker = http.RequestServices.GetRequiredService<AgentBroker>();
            broker.Register(agent.Id, agent.TenantId);
            // A node that shuts down answers its polls at once (no work), so its agents reconnect to the next node
            // (or to this one when it is back) instead of holding the shutdown up for the rest of the wait.
            var stopping = http.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, stopping);
            IReadOnlyList<AgentWorkItem> work;
            try
            {
                work = await broker.PollAsync(agent.Id, AgentBroker.PollWait, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                work = [];
            }

            return Results.Json(new AgentPollResponse(work), AgentJson.Options);
        }
        catch (AgentRefusedException e)
        {
            return Refuse(logger, http, e);
        }
    }

    private static async Task<IResult> ResultAsync(HttpContext http, CancellationToken ct)
    {
        var logger = Logger(http);
        try
        {
            var agent = await AuthenticateAsync(http, ct).ConfigureAwait(false);
            var result = await BodyAsync<AgentWorkResult>(http, ct).ConfigureAwait(false);
            var taken = await http.RequestServices.GetRequiredService<AgentBroker>().CompleteAsync(agent.Id, result, ct).ConfigureAwait(false);
            return Results.Json(new { taken }, AgentJson.Options);
        }
        catch (AgentRefusedException e)
        {
            return Refuse(logger, http, e);
        }
    }

    private static async Task<IResult> HealthAsync(HttpContext http, CancellationToken ct)
    {
        var logger = Logger(http);
        try
        {
            var agent = await AuthenticateAsync(http, ct).ConfigureAwait(false);
            var report = await BodyAsync<AgentHealthReport>(http, ct).ConfigureAwait(false);
            await http.RequestServices.GetRequiredService<AgentRegistry>().RecordHealthAsync(agent.Id, report, ct).ConfigureAwait(false);
            LogHealth(logger, agent.Id, report.RdpListening, report.ManagedAccounts, report.LastError);
            return Results.Json(new { recorded = true }, AgentJson.Options);
        }
        catch (AgentRefusedException e)
        {
            return Refuse(logger, http, e);
        }
    }

    private static async Task<Gatehouse.Storage.HostAgent> AuthenticateAsync(HttpContext http, CancellationToken ct)
    {
        var header = http.Request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        var assertion = header.StartsWith(Scheme, StringComparison.Ordinal) ? header[Scheme.Length..].Trim() : null;
        return await http.RequestServices.GetRequiredService<AgentRegistry>().AuthenticateAsync(assertion, Audience(http.RequestServices), ct).ConfigureAwait(false);
    }

    private static async Task<T> BodyAsync<T>(HttpContext http, CancellationToken ct)
        where T : class
    {
        if (http.Request.ContentLength is > MaxBodyBytes)
        {
            throw new AgentRefusedException(413, "agent_request_refused: the body is larger than 16 KiB");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[4096];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                throw new AgentRefusedException(413, "agent_request_refused: the body is larger than 16 KiB");
            }

            buffer.Write(chunk, 0, read);
        }

        try
        {
            return JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), AgentJson.Options)
                ?? throw new AgentRefusedException(400, "agent_request_refused: the body is JSON null");
        }
        catch (JsonException e)
        {
            throw new AgentRefusedException(400, $"agent_request_refused: the body is not the expected JSON ({e.Path})");
        }
    }

    private static IResult Refuse(ILogger logger, HttpContext http, AgentRefusedException e)
    {
        LogRefused(logger, http.Request.Path.Value ?? string.Empty, http.Connection.RemoteIpAddress?.ToString(), e.Message);
        return Results.Json(new { error = e.Message }, AgentJson.Options, statusCode: e.Status);
    }

    private static ILogger Logger(HttpContext http) => http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Gatehouse.Agents");

    [LoggerMessage(ServerEventIds.AgentJoined, LogLevel.Information, "Agent {AgentId} joined for host {Host} ({OperatingSystem}); host key pinned through the agent: {Pin}")]
    private static partial void LogJoined(ILogger logger, string host, Guid agentId, string? operatingSystem, string? pin);

    [LoggerMessage(ServerEventIds.AgentRefused, LogLevel.Warning, "Agent request to {Path} from {Address} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string path, string? address, string reason);

    [LoggerMessage(ServerEventIds.AgentHealth, LogLevel.Debug, "Agent {AgentId} health: RDP listening {RdpListening}, {ManagedAccounts} managed accounts, last error {LastError}")]
    private static partial void LogHealth(ILogger logger, Guid agentId, bool rdpListening, int managedAccounts, string? lastError);
}
