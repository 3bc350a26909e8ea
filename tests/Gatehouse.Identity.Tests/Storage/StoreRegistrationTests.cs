using Gatehouse.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Gatehouse.Identity.Tests.Storage;

public sealed class StoreRegistrationTests
{
    [Fact]
    public async Task AddGatehouseStore_Sqlite_MigratesAtStartupAndResolvesSubclass()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gatehouse-reg-{Guid.NewGuid():N}.db");
        try
        {
            var services = new ServiceCollection();
            services.AddGatehouseStore(new StoreOptions { Provider = StoreProvider.Sqlite, ConnectionString = $"Data Source={path}" });
            await using (var provider = services.BuildServiceProvider())
            {
                foreach (var hosted in provider.GetServices<IHostedService>())
                {
                    await hosted.StartAsync(CancellationToken.None);
                    await hosted.StopAsync(CancellationToken.None);
                }

                await using var scope = provider.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<GatehouseDbContext>();
                Assert.IsType<SqliteGatehouseDbContext>(db);
                Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    [Fact]
    public void DesignTimeFactories_CreateProviderContexts()
    {
        using var sqlite = new SqliteDesignTimeFactory().CreateDbContext([]);
        Assert.Equal("Microsoft.EntityFrameworkCore.Sqlite", sqlite.Database.ProviderName);
        using var postgres = new PostgresDesignTimeFactory().CreateDbContext([]);
        Assert.Equal("Npgsql.EntityFrameworkCore.PostgreSQL", postgres.Database.ProviderName);
        Assert.DoesNotContain("Password", new StoreOptions { ConnectionString = "Password=x" }.ToString(), StringComparison.Ordinal);
    }
}
