using System.Data.Common;
using System.Text;
using Gatehouse.Storage;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// Liveness and readiness. <c>/healthz</c> is liveness: the process answers HTTP (restart it when this fails).
/// <c>/healthz/ready</c> is readiness, what a load balancer should probe: 200 <c>ready</c> when the node has started
/// (migrations, key ring, listeners) and is not stopping, and its database answered <c>SELECT 1</c> within
/// <see cref="DatabaseOptions.ReadyTimeout"/>; otherwise 503 with one line per failed check saying why.
/// </summary>
internal static class Readiness
{
    public const string LivePath = "/healthz";
    public const string ReadyPath = "/healthz/ready";

    public static IServiceCollection AddGatehouseReadiness(this IServiceCollection services, DatabaseOptions database)
    {
        var timeout = database.ReadyTimeout > TimeSpan.Zero ? database.ReadyTimeout : TimeSpan.FromSeconds(2);
        services.AddSingleton<DatabaseReadinessState>();
        services.AddSingleton(sp => new StoreAvailability(sp.GetRequiredService<IServiceScopeFactory>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<StoreAvailability>>(), timeout));
        services.AddSingleton<Gatehouse.Gateway.Admission.IStoreAvailability>(sp => sp.GetRequiredService<StoreAvailability>());
        services.AddHealthChecks()
            .AddCheck<StartedHealthCheck>("node")
            .AddTypeActivatedCheck<DatabaseHealthCheck>("database", failureStatus: null, tags: [], args: [timeout]);
        return services;
    }

    public static void MapGatehouseHealth(this WebApplication app)
    {
        app.MapGet(LivePath, (HttpContext context) =>
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync("ok\n");
        });
        app.MapHealthChecks(ReadyPath, new HealthCheckOptions
        {
            ResponseWriter = WriteAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        });
    }

    /// <summary><c>ready</c>, or <c>not ready</c> and a line per failed check (<c>database: …</c>).</summary>
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        var text = new StringBuilder(report.Status == HealthStatus.Healthy ? "ready\n" : "not ready\n");
        foreach (var (name, entry) in report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy))
        {
            text.Append(name).Append(": ").Append(entry.Description ?? entry.Status.ToString()).Append('\n');
        }

        if (report.Status != HealthStatus.Healthy)
        {
            var retryAfter = context.RequestServices.GetRequiredService<IOptions<GatehouseOptions>>().Value.Database.RetryAfter;
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return context.Response.WriteAsync(text.ToString());
    }
}

/// <summary>Healthy once the host has started (hosted services done, listeners bound) and until it begins to stop.</summary>
internal sealed class StartedHealthCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("the node is stopping")
            : lifetime.ApplicationStarted.IsCancellationRequested ? HealthCheckResult.Healthy("started")
            : HealthCheckResult.Unhealthy("the node is still starting"));
}

/// <summary>Healthy when the database answers <c>SELECT 1</c> within the timeout.</summary>
/// <remarks>Health checks are created per probe, so whether the last one failed is kept in <see cref="DatabaseReadinessState"/>.</remarks>
internal sealed partial class DatabaseHealthCheck(IServiceScopeFactory scopes, TimeProvider time, DatabaseReadinessState state, StoreAvailability availability, ILogger<DatabaseHealthCheck> logger, TimeSpan timeout) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cancel.CancelAfter(timeout);
        try
        {
            // WaitAsync as well as the token: a provider that ignores cancellation while it connects still times out.
            await PingAsync(scopes, cancel.Token).WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
            if (Interlocked.Exchange(ref state.Failing, 0) == 1)
            {
                LogReadyAgain(logger);
            }

            availability.MarkUp();

            return HealthCheckResult.Healthy("the database answered");
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            var reason = $"the database did not answer within {timeout.TotalSeconds:0.#} s (Gatehouse:Database:ReadyTimeout)";
            return Failed(reason, reason);
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or IOException || StoreStartup.IsUnavailable(e))
        {
            // The probe's body is public (the load balancer reaches it on the public port): the error, which may name
            // the database's address, goes to the log only.
            return Failed("the database did not answer (the node's log says why)", $"the database did not answer: {StoreStartup.Describe(e)}");
        }
    }

    /// <summary>Unhealthy with <paramref name="reason"/>; <paramref name="detail"/> is logged when the check turns from healthy to failing, not at every probe.</summary>
    private HealthCheckResult Failed(string reason, string detail)
    {
        availability.MarkDown(detail);
        if (Interlocked.Exchange(ref state.Failing, 1) == 0)
        {
            LogNotReady(logger, detail);
        }

        return HealthCheckResult.Unhealthy(reason);
    }

    /// <summary><c>SELECT 1</c> on a connection of the store's pool.</summary>
    internal static async Task PingAsync(IServiceScopeFactory scopes, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await connection.CloseAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(ServerEventIds.NotReady, LogLevel.Warning, "Not ready: {Reason}. /healthz/ready answers 503 until the database answers again.")]
    private static partial void LogNotReady(ILogger logger, string reason);

    [LoggerMessage(ServerEventIds.ReadyAgain, LogLevel.Information, "Ready again: the database answers.")]
    private static partial void LogReadyAgain(ILogger logger);
}

/// <summary>Whether the last database readiness check failed (1) or not (0), so that only changes are logged.</summary>
internal sealed class DatabaseReadinessState
{
#pragma warning disable CA1051 // A field, for Interlocked.
    public int Failing;
#pragma warning restore CA1051
}
