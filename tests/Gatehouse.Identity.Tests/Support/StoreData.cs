using System.Reflection;
using Gatehouse.Storage;
using Xunit.Sdk;

namespace Gatehouse.Identity.Tests.Support;

/// <summary>Theory row: the SQLite store.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class SqliteStoreAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [[StoreProvider.Sqlite]];
}

/// <summary>Theory row: the PostgreSQL store (skipped only when GATEHOUSE_ALLOW_MISSING_PEERS=1 and no server is configured).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class PostgresStoreAttribute : DataAttribute
{
    public PostgresStoreAttribute()
    {
        if (Peers.PostgresSkipReason is { } reason)
        {
            Skip = reason;
        }
    }

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [[StoreProvider.Postgres]];
}

/// <summary>A fact that needs PostgreSQL.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (Peers.PostgresSkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
