using System.Security.Cryptography;
using System.Text.Json;

using Gatehouse.Gateway.Agents;

namespace Gatehouse.Agents;

/// <summary>What <c>gatehouse agent join</c> records in the state directory (<c>agent.json</c>); the key is beside it.</summary>
public sealed record AgentConfig
{
    /// <summary>The server's base URL.</summary>
    public required Uri Server { get; init; }

    /// <summary>The pinned SHA-256 (hex) of the server's TLS certificate, from the enrolment token.</summary>
    public required string ServerCertificateSha256 { get; init; }

    /// <summary>The agent id the server gave.</summary>
    public required Guid AgentId { get; init; }

    /// <summary>The audience of the assertions.</summary>
    public required string Audience { get; init; }

    /// <summary>The host's name at the server.</summary>
    public string? HostName { get; init; }

    /// <summary>The local RDP port.</summary>
    public int RdpPort { get; init; } = 3389;

    /// <summary>How often the agent reports its health, in seconds.</summary>
    public int HealthIntervalSeconds { get; init; } = 30;

    /// <summary>Groups an Administrator Login gets.</summary>
    public IReadOnlyList<string> AdminGroups { get; init; } = OperatingSystem.IsWindows() ? ["Administrators", "Remote Desktop Users"] : ["sudo"];

    /// <summary>Groups a User Login gets.</summary>
    public IReadOnlyList<string> UserGroups { get; init; } = OperatingSystem.IsWindows() ? ["Remote Desktop Users"] : [];
}

/// <summary>
/// The agent's state directory (default <c>/var/lib/gatehouse-agent</c>, mode 0700): <c>agent.key</c> (its ECDSA P-256
/// private key, PKCS#8 PEM, mode 0600, never sent anywhere), <c>agent.json</c>, <c>accounts.json</c> (UPN → local
/// account, the accounts it manages) and <c>pending-rotations.json</c> (the accounts whose password was handed out for
/// a logon and not yet changed again: an agent that dies in between changes them when it starts again), each 0600.
/// </summary>
public sealed class AgentState(string directory)
{
    /// <summary>The default state directory.</summary>
    public const string DefaultDirectory = "/var/lib/gatehouse-agent";

    private readonly Lock _gate = new();

    /// <summary>The directory.</summary>
    public string Directory { get; } = Path.GetFullPath(directory);

    /// <summary>The private key's file.</summary>
    public string KeyPath => Path.Combine(Directory, "agent.key");

    private string ConfigPath => Path.Combine(Directory, "agent.json");

    private string AccountsPath => Path.Combine(Directory, "accounts.json");

    /// <summary>The file of accounts whose logon password has not been rotated yet.</summary>
    public string PendingRotationsPath => Path.Combine(Directory, "pending-rotations.json");

    /// <summary>Creates the directory (0700) and a new key pair (0600), replacing an old key.</summary>
    public ECDsa CreateKey()
    {
        EnsureDirectory();
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.Delete(KeyPath);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(KeyPath, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(key.ExportPkcs8PrivateKeyPem());
        }

        return key;
    }

    private void EnsureDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(Directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Loads the key.</summary>
    public ECDsa LoadKey()
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(KeyPath));
        return key;
    }

    /// <summary>Saves the configuration.</summary>
    public void SaveConfig(AgentConfig config) => WritePrivate(ConfigPath, JsonSerializer.Serialize(config, AgentJson.Options));

    /// <summary>Loads the configuration; a clear message when the agent has not joined.</summary>
    public AgentConfig LoadConfig() => File.Exists(ConfigPath)
        ? JsonSerializer.Deserialize<AgentConfig>(File.ReadAllText(ConfigPath), AgentJson.Options) ?? throw new InvalidDataException($"{ConfigPath} is empty")
        : throw new FileNotFoundException($"The agent has not joined: {ConfigPath} does not exist. Run 'gatehouse agent join --server URL --token T' first.");

    /// <summary>The accounts the agent manages (UPN → name).</summary>
    public Dictionary<string, string> LoadAccounts()
    {
        lock (_gate)
        {
            return File.Exists(AccountsPath)
                ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(AccountsPath), AgentJson.Options) ?? []
                : [];
        }
    }

    /// <summary>Records that <paramref name="name"/> is <paramref name="userPrincipalName"/>'s account.</summary>
    public void RecordAccount(string userPrincipalName, string name)
    {
        ArgumentNullException.ThrowIfNull(userPrincipalName);
        lock (_gate)
        {
            var accounts = File.Exists(AccountsPath)
                ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(AccountsPath), AgentJson.Options) ?? []
                : [];
            accounts[userPrincipalName.Trim().ToLowerInvariant()] = name;
            WritePrivate(AccountsPath, JsonSerializer.Serialize(accounts, AgentJson.Options));
        }
    }

    /// <summary>The accounts whose password was handed out for a logon and not yet changed again.</summary>
    public IReadOnlyList<string> LoadPendingRotations()
    {
        lock (_gate)
        {
            return [.. ReadPendingRotations()];
        }
    }

    /// <summary>
    /// Records that <paramref name="name"/>'s password is about to be handed out (before it is set, so a crash after
    /// setting it leaves the account on the list).
    /// </summary>
    public void AddPendingRotation(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_gate)
        {
            var pending = ReadPendingRotations();
            if (pending.Add(name))
            {
                WritePrivate(PendingRotationsPath, JsonSerializer.Serialize(pending.Order(StringComparer.Ordinal), AgentJson.Options));
            }
        }
    }

    /// <summary>Records that <paramref name="name"/>'s password was changed again (no one knows it).</summary>
    public void RemovePendingRotation(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_gate)
        {
            var pending = ReadPendingRotations();
            if (pending.Remove(name))
            {
                WritePrivate(PendingRotationsPath, JsonSerializer.Serialize(pending.Order(StringComparer.Ordinal), AgentJson.Options));
            }
        }
    }

    private HashSet<string> ReadPendingRotations()
    {
        if (!File.Exists(PendingRotationsPath))
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }

        try
        {
            return new HashSet<string>(JsonSerializer.Deserialize<List<string>>(File.ReadAllText(PendingRotationsPath), AgentJson.Options) ?? [], StringComparer.Ordinal);
        }
        catch (JsonException)
        {
            // A torn or edited file: nothing to trust in it; the managed accounts are rotated instead.
            return new HashSet<string>(LoadAccountsUnlocked().Values, StringComparer.Ordinal);
        }
    }

    private Dictionary<string, string> LoadAccountsUnlocked() => File.Exists(AccountsPath)
        ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(AccountsPath), AgentJson.Options) ?? []
        : [];

    private void WritePrivate(string path, string text)
    {
        EnsureDirectory();
        var temporary = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
