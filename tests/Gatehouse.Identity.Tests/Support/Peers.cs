namespace Gatehouse.Identity.Tests.Support;

/// <summary>The convention for tests that need a real peer (PostgreSQL): fail without it unless GATEHOUSE_ALLOW_MISSING_PEERS=1.</summary>
public static class Peers
{
    public const string PostgresVariable = "GATEHOUSE_TEST_POSTGRES";
    public const string MissingPostgres = "PostgreSQL is not available: run ./scripts/test.sh or set GATEHOUSE_TEST_POSTGRES";

    public static string? PostgresConnectionString =>
        Environment.GetEnvironmentVariable(PostgresVariable) is { Length: > 0 } value ? value : null;

    public static bool AllowMissing => Environment.GetEnvironmentVariable("GATEHOUSE_ALLOW_MISSING_PEERS") == "1";

    public static string? PostgresSkipReason => PostgresConnectionString is null && AllowMissing ? MissingPostgres : null;
}
