using Gatehouse.Identity;
using Microsoft.Extensions.Options;

namespace Gatehouse.Hosting;

/// <summary>
/// First run: creates the tenant for <c>Gatehouse:Domain</c> and its administrator, and prints the administrator's
/// user name and temporary password once (to the console, never to the log); the administrator holds Owner at <c>/</c>.
/// Later runs change nothing.
/// </summary>
internal sealed class BootstrapService(IServiceProvider services, IOptions<GatehouseOptions> options, HostSettings settings) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The store's hosted migration runs before this service (registration order), so the schema is there.
        await using var scope = services.CreateAsyncScope();
        var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
        var result = await directory.BootstrapAsync(options.Value.Domain, cancellationToken).ConfigureAwait(false);
        if (result.TemporaryPassword is { } password)
        {
            // The administrator manages the tenant (admin API, RBAC): Owner at /, which grants no sign-in to hosts.
            await scope.ServiceProvider.GetRequiredService<AccessService>().AssignRoleAsync(result.Tenant.Id, Gatehouse.Access.BuiltInRoles.Owner.Name, result.AdminUpn, "/", "bootstrap", cancellationToken).ConfigureAwait(false);
            await settings.Console.WriteLineAsync($$"""

                ============================================================================
                 Gatehouse first run: tenant {{options.Value.Domain}} ({{result.Tenant.Id}})
                 Administrator:      {{result.AdminUpn}}
                 Temporary password: {{password}}
                 This password is shown only now. Sign in to change it.
                ============================================================================

                """).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
