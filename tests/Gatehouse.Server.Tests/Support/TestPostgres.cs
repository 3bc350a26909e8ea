using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;

namespace Gatehouse.Server.Tests.Support;

/// <summary>
/// The PostgreSQL of the test run (<c>GATEHOUSE_TEST_POSTGRES</c>, set by <c>scripts/test.sh</c>), as in the identity
/// tests: a test that needs it fails without it unless <c>GATEHOUSE_ALLOW_MISSING_PEERS=1</c>, which skips it.
/// </summary>
internal static class TestPostgres
{
    public const string Variable = "GATEHOUSE_TEST_POSTGRES";
    public const string Missing = "PostgreSQL is not available: run ./scripts/test.sh or set GATEHOUSE_TEST_POSTGRES";

    public static string? ConnectionString => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value ? value : null;

    public static string? SkipReason =>
        ConnectionString is null && Environment.GetEnvironmentVariable("GATEHOUSE_ALLOW_MISSING_PEERS") == "1" ? Missing : null;

    /// <summary>A new, empty database (no tables) with a random name, dropped on dispose.</summary>
    public static async Task<TestDatabase> CreateDatabaseAsync()
    {
        var baseConnection = ConnectionString ?? throw new InvalidOperationException(Missing);
        var name = "gatehouse_mn_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        await using (var connection = new NpgsqlConnection(baseConnection))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new TestDatabase(baseConnection, name);
    }
}

/// <summary>A throwaway PostgreSQL database.</summary>
internal sealed class TestDatabase(string baseConnection, string name) : IAsyncDisposable
{
    public string Name { get; } = name;

    /// <summary>The connection string of this database (optionally through another host and port, e.g. a proxy).</summary>
    public string ConnectionString(IPEndPoint? via = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(baseConnection) { Database = Name };
        if (via is not null)
        {
            builder.Host = via.Address.ToString();
            builder.Port = via.Port;
        }

        return builder.ToString();
    }

    public IPEndPoint ServerEndPoint
    {
        get
        {
            var builder = new NpgsqlConnectionStringBuilder(baseConnection);
            return new IPEndPoint(IPAddress.Parse(builder.Host == "localhost" ? "127.0.0.1" : builder.Host!), builder.Port);
        }
    }

    public async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var connection = new NpgsqlConnection(baseConnection);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{Name}\" WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync();
        }
        catch (PostgresException e)
        {
            await Console.Error.WriteLineAsync($"Test database {Name} was left behind: {e.MessageText}");
        }
    }
}

/// <summary>[Fact] that needs PostgreSQL (see <see cref="TestPostgres"/>).</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (TestPostgres.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// A TCP forwarder in front of the database that a test can take down and bring back: while down it accepts each
/// connection and closes it at once (the database "does not answer"), and going down also cuts every forwarded one.
/// </summary>
internal sealed class DatabaseProxy : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint target;
    private readonly CancellationTokenSource stop = new();
    private readonly Lock gate = new();
    private readonly List<TcpClient> open = [];
    private readonly Task acceptLoop;
    private volatile bool up;
    private int refused;

    public DatabaseProxy(IPEndPoint target, bool up)
    {
        this.target = target;
        this.up = up;
        listener.Start();
        acceptLoop = AcceptAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)listener.LocalEndpoint;

    /// <summary>Connections closed at once because the proxy was down.</summary>
    public int Refused => Volatile.Read(ref refused);

    public void Up() => up = true;

    public void Down()
    {
        up = false;
        lock (gate)
        {
            foreach (var client in open)
            {
                client.Dispose();
            }

            open.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        Down();
        try
        {
            await acceptLoop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            var client = await listener.AcceptTcpClientAsync(stop.Token);
            if (!up)
            {
                Interlocked.Increment(ref refused);
                client.Dispose();
                continue;
            }

            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        var server = new TcpClient();
        lock (gate)
        {
            open.Add(client);
            open.Add(server);
        }

        try
        {
            await server.ConnectAsync(target, stop.Token);
            var a = client.GetStream().CopyToAsync(server.GetStream(), stop.Token);
            var b = server.GetStream().CopyToAsync(client.GetStream(), stop.Token);
            await Task.WhenAny(a, b);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            client.Dispose();
            server.Dispose();
            lock (gate)
            {
                open.Remove(client);
                open.Remove(server);
            }
        }
    }
}
