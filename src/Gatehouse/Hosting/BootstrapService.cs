using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// First run: creates the tenant for <c>Gatehouse:Domain</c> and its administrator, and prints the administrator's
/// user name and temporary password once (to the console, never to the log); the administrator holds Owner at <c>/</c>.
/// Later runs change nothing. Safe when several nodes start together on an empty store: the setup runs under the store's
/// startup lock (<see cref="StoreStartup.RunExclusiveAsync"/>, a PostgreSQL advisory lock), in one transaction, and a
/// unique violation on the seed rows means another node did it first: the tenant is read back and nothing is printed.
/// </summary>
internal sealed partial class BootstrapService(IServiceProvider services, IOptions<GatehouseOptions> options, HostSettings settings, ILogger<BootstrapService> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>

        // The store's hosted migration runs before this service (registration order), so the schema is there.
        services.RunExclusiveAsync("first-run setup", SeedAsync, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>One attempt at the first-run setup, in <paramref name="scope"/>; idempotent.</summary>
    internal async Task SeedAsync(IServiceProvider scope, CancellationToken cancellationToken)
    {
        var domain = options.Value.Domain;
        var db = scope.GetRequiredService<GatehouseDbContext>();
        var directory = scope.GetRequiredService<DirectoryService>();
        BootstrapResult result;
        var transaction = await db.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            try
            {
                result = await directory.BootstrapAsync(domain, cancellationToken).ConfigureAwait(false);
                if (result.TemporaryPassword is not null)
                {
                    // The administrator manages the tenant (admin API, RBAC): Owner at /, which grants no sign-in to hosts.
                    await scope.GetRequiredService<AccessService>().AssignRoleAsync(result.Tenant.Id, Gatehouse.Access.BuiltInRoles.Owner.Name, result.AdminUpn, "/", "bootstrap", cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (DbUpdateException e) when (!StoreStartup.IsUnavailable(e))
            {
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                db.ChangeTracker.Clear();

                // Another node created the seed rows between our read and our insert: read them back.
                await using var fresh = services.CreateAsyncScope();
                var tenant = await fresh.ServiceProvider.GetRequiredService<DirectoryService>().FindTenantAsync(domain, cancellationToken).ConfigureAwait(false);
                if (tenant is null)
                {
                    throw;
                }

                LogSetUpElsewhere(logger, domain, StoreStartup.Describe(e));
                return;
            }
        }

        if (result.TemporaryPassword is { } password)
        {
            await settings.Console.WriteLineAsync($$"""

                ============================================================================
                 Gatehouse first run: tenant {{domain}} ({{result.Tenant.Id}})
                 Administrator:      {{result.AdminUpn}}
                 Temporary password: {{password}}
                 This password is shown only now. Sign in to change it.
                ============================================================================

                """).ConfigureAwait(false);
        }
    }

    [LoggerMessage(ServerEventIds.FirstRunDoneElsewhere, LogLevel.Information, "First-run setup of {Domain} was done by another node at the same time; using its tenant ({Reason}).")]
    private static partial void LogSetUpElsewhere(ILogger logger, string domain, string reason);
}
